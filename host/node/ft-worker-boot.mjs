// A worker thread's entry: Node cannot load TypeScript by itself, so the
// worker registers tsx first (as bin/lockstep.mjs does for the main thread),
// then runs the replica (ft-worker.ts).
import { register } from "tsx/esm/api";

register();
await import(new URL("./ft-worker.ts", import.meta.url).href);
