#!/usr/bin/env node
// The lockstep command: registers tsx so Node can load the TypeScript sources,
// then hands the arguments to host/cli/main.ts. Paths are resolved from this
// file, so it works from any working directory and through `npx lockstep`.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });

// A closed pipe (lockstep ... | head) ends the output, not the process with a trace.
process.stdout.on("error", (e) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

const { main } = await import(new URL("../host/cli/main.ts", import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
