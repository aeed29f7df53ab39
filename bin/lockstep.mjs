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

// Under npx (or an npm script) this process is npm's grandchild, through
// `sh -c`: a signal to npm reaches the shell, which dies without passing it
// on, and lockstep would run on as an orphan holding its ports (so
// `npx lockstep run ... &` then `kill $!` would not stop the VM). When the
// parent npm gave us goes away, take it as SIGTERM: a run ends as on Ctrl-C.
if (process.env.npm_lifecycle_event !== undefined) {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, "SIGTERM");
  }, 200).unref();
}

const { main } = await import(new URL("../host/cli/main.ts", import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
