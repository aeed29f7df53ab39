// Running the lockstep command as a user does: `node bin/lockstep.mjs ARGS...`
// in a child process, with its exit status, stdout and stderr.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
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

/** A lockstep process left running (replicas, standbys): its output so far and its end (-9 when SIGKILLed). */
export interface LockstepProc { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> }

/** Starts lockstep with `args` in `cwd`; `children`, when given, collects it so a test can kill what is left. */
export function startLockstep(cwd: string, args: string[], children?: ChildProcess[]): LockstepProc {
  const child = spawn(process.execPath, [LOCKSTEP_BIN, ...args], { cwd });
  children?.push(child);
  let out = "", err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exit = new Promise<number | null>((res) => child.on("exit", (code, sig) => res(sig === "SIGKILL" ? -9 : code)));
  return { child, out: () => out, err: () => err, exit };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freeTcpPort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}
