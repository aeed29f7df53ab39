// Interrupting lockstep record with SIGINT or SIGTERM: the summary says
// "interrupted by SIG...", the exit status is 128 + the signal number (130,
// 143), and the log is complete: it has its end record and replays (exit 0).

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LOCKSTEP_BIN, runLockstep } from "./helpers/cli.js";
import { parseLog } from "../host/replay/log-format.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-signals-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ticks = new URL("../guests/bin/ticks.elf", import.meta.url).pathname;

/** Starts a long ticks record, sends `signal` once it has printed a tick line, and waits for the end. */
function interruptRecord(log: string, signal: NodeJS.Signals): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // ticks=100000 at 100 Hz is ~17 minutes of guest time: it only ends by the signal.
    const child = spawn(process.execPath, [LOCKSTEP_BIN, "record", ticks, "--log", log, "--cmdline", "ticks=100000"], { cwd: tmp, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let sent = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (!sent && /^tick \d+:/m.test(stdout)) {
        sent = true;
        child.kill(signal);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

describe("an interrupted record", () => {
  it.each([["SIGINT", 130], ["SIGTERM", 143]] as const)("%s: says interrupted, exits %i, and the log replays", async (signal, status) => {
    const log = join(tmp, `${signal}.log`);
    const r = await interruptRecord(log, signal);
    expect(r.status, r.stderr).toBe(status);
    expect(r.stderr).toMatch(new RegExp(`^lockstep record: \\d+ instructions .*; interrupted by ${signal} at EIP 0x[0-9a-f]{8}; log .*: \\d+ bytes`));
    expect(r.stderr).not.toMatch(/instruction limit|no interrupt sources/);
    const parsed = parseLog(new Uint8Array(readFileSync(log)));
    expect(parsed.end.finalIcount).toBeGreaterThan(0n);
    const replay = await runLockstep(tmp, "replay", ticks, "--log", log);
    expect(replay.status, replay.stderr).toBe(0);
  }, 60_000);

  it("leaves no temporary file beside the logs", () => {
    expect(readdirSync(tmp).filter((f) => !f.endsWith(".log"))).toEqual([]);
  });
});
