// Running the lockstep command as a user does: `node bin/lockstep.mjs ARGS...`
// in a child process, with its exit status, stdout and stderr.

import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const LOCKSTEP_BIN = join(fileURLToPath(new URL("../..", import.meta.url)), "bin", "lockstep.mjs");

export interface CliRun { status: number; stdout: string; stderr: string }

/** Runs lockstep with `args` in directory `cwd`; status -1 if it died by a signal. */
export function runLockstep(cwd: string, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [LOCKSTEP_BIN, ...args], { cwd, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ status: typeof code === "number" ? code : -1, stdout, stderr });
    });
  });
}
