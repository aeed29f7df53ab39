// A bench worker thread's entry: registers tsx (Node cannot load TypeScript by
// itself), then runs bench/workers/solo.ts.
import { register } from "tsx/esm/api";

register();
await import(new URL("./solo.ts", import.meta.url).href);
