// `lockstep ft GUEST` prints the guest's console exactly as `lockstep run
// GUEST` does — not a byte lost, none repeated — with no fault and with the
// primary or the backup stopped dead at an instruction count, with the
// channel cut both ways, over a MessagePort and over loopback TCP (docs/ft.md).
// Both commands run as a user runs them (tests/helpers/cli.ts); the virtual
// clock makes the solo run's bytes a fixed reference.

import { describe, expect, it } from "vitest";
import { parseFail } from "../host/cli/ft.js";
import { runLockstep } from "./helpers/cli.js";

const REPO = new URL("..", import.meta.url).pathname;
const GUEST = "guests/bin/ticks.elf";
const ARGS = ["--clock", "virtual", "--cmdline", "ticks=50 every=10 hz=100"];
const FAST = ["--timeout-ms", "300", "--heartbeat-ms", "20"];

describe("lockstep ft", () => {
  let solo: string | null = null;
  const soloRun = async () => {
    if (solo === null) {
      const r = await runLockstep(REPO, "run", GUEST, ...ARGS);
      expect(r.status).toBe(0);
      solo = r.stdout;
    }
    return solo;
  };

  it.each([
    ["no fault", []],
    ["the primary stopped dead at instruction 30000", ["--fail", "primary@30000"]],
    ["the primary stopped dead at instruction 55000, near the end", ["--fail", "primary@55000"]],
    ["the backup stopped dead at instruction 20000", ["--fail", "backup@20000", "--backup-engine", "ts"]],
    ["the backup on the TS engine, the replicas compared every 20000 instructions", ["--backup-engine", "ts", "--check-every", "20000"]],
    ["the channel cut both ways at instruction 30000", ["--fail", "partition@30000"]],
    ["over loopback TCP, no fault", ["--transport", "tcp"]],
    ["over loopback TCP, the primary stopped dead at instruction 30000", ["--transport", "tcp", "--fail", "primary@30000"]],
    ["over loopback TCP, the channel cut at instruction 30000", ["--transport", "tcp", "--fail", "partition@30000"]],
    ["checkpoint mode, no fault", ["--mode", "checkpoint", "--epoch", "5ms"]],
    ["checkpoint mode, the primary stopped dead at instruction 30000", ["--mode", "checkpoint", "--epoch", "5", "--fail", "primary@30000"]],
    ["checkpoint mode over loopback TCP, the primary stopped dead at instruction 45000", ["--mode", "checkpoint", "--transport", "tcp", "--fail", "primary@45000"]],
  ])("%s: stdout is byte for byte the solo run's, exit status the guest's", async (_, extra) => {
    const want = await soloRun();
    const r = await runLockstep(REPO, "ft", GUEST, ...ARGS, ...FAST, ...extra);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout, r.stderr).toBe(want);
    // The console alone cannot tell a pair from a backup that took over:
    // which replica failed, and that nothing else did, is on stderr.
    expect(r.stderr).not.toMatch(/worker failed|Error|diverged|untrusted/);
    const who = extra.find((a) => a.includes("@"))?.split("@")[0];
    if (who === "primary") expect(r.stderr).toMatch(/backup is live at instruction \d+ \(epoch 2\)/);
    // The backup acknowledges what it receives, not what it ran: it may
    // have held the whole log before it stopped, and the primary finish paired.
    if (who === "backup") expect(r.stderr).toMatch(/primary won epoch 2|primary done at instruction \d+ \(stopped, epoch 1\)/);
    if (who === "partition") {
      // Both claimed epoch 2: exactly one won (and went on), the other lost and stopped.
      const won = r.stderr.match(/backup won epoch 2|primary won epoch 2/g) ?? [];
      const lost = r.stderr.match(/(backup|primary) lost epoch 2/g) ?? [];
      expect(won.length + lost.length, r.stderr).toBeGreaterThanOrEqual(1);
      expect(won, r.stderr).toHaveLength(1);
      expect(lost.length, r.stderr).toBeLessThanOrEqual(1);
    }
    if (extra.includes("checkpoint") && who === undefined) expect(r.stderr).toMatch(/the primary sent \d+ checkpoints, [\d.]+ MiB \([\d.]+ KiB each\), pause [\d.]+ ms mean.*; the backup applied \d+ checkpoints/);
    if (who === "primary" && extra.includes("checkpoint")) expect(r.stderr).toMatch(/resumed from checkpoint \d+/);
    if (who === undefined) {
      expect(r.stderr).not.toMatch(/epoch 2/);
      expect(r.stderr).toMatch(/primary done at instruction \d+ \(\w+, epoch 1\); backup done at instruction \d+/);
    }
  });

  it("over loopback TCP with --respawn: the primary stopped dead, a new backup worker joins the live one over TCP; the console is the solo run's", async () => {
    const long = ["--clock", "virtual", "--mem", "8M", "--cmdline", "ticks=100000 every=5000"];
    const want = (await runLockstep(REPO, "run", GUEST, ...long)).stdout;
    const r = await runLockstep(REPO, "ft", GUEST, ...long, ...FAST, "--transport", "tcp", "--respawn", "--fail", "primary@300000");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout, r.stderr).toBe(want);
    expect(r.stderr).toMatch(/backup is live at instruction \d+ \(epoch 2\)/);
    expect(r.stderr).toMatch(/primary: a new backup has the state at instruction \d+ after .* ms in all: paired again/);
    expect(r.stderr).toMatch(/backup: joined the primary at instruction \d+ \(state transferred\)/);
  }, 60_000);

  it("--status on shows both replicas, the lag, the log rate and the held outputs on stderr; stdout stays the console", async () => {
    // A generous timeout: a failover is not what this test is about, and a loaded machine can starve a worker.
    const r = await runLockstep(REPO, "ft", GUEST, "--cmdline", "ticks=60 every=20 hz=100", "--status", "on", "--timeout-ms", "3000");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/lockstep ft: primary \S+ \(paired, epoch 1\) \| backup \S+ \(following\) \| lag \S+ instr( \| log [\d.]+ Mbit\/s)? \| held \d+/);
    expect(r.stdout).toMatch(/^ticks: PIT channel 0 at 100 Hz/);
    expect(r.stdout).not.toMatch(/lockstep ft:/);
  });

  it("--fail corrupt@ICOUNT: the backup's flipped bit is found at the next check and repaired; stdout is the solo run's", async () => {
    // A longer run, so the pair is still going when the repair is done; a long timeout, so a busy host fails nothing.
    const args = ["--clock", "virtual", "--cmdline", "ticks=50000 every=25000 hz=1000"];
    const solo = await runLockstep(REPO, "run", GUEST, ...args);
    const r = await runLockstep(REPO, "ft", GUEST, ...args, "--check-every", "1000000", "--fail", "corrupt@2000000", "--timeout-ms", "3000", "--heartbeat-ms", "50");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout, r.stderr).toBe(solo.stdout);
    const flipped = BigInt(/backup: one bit of RAM flipped \(page 8191\) at instruction (\d+) \(--fail corrupt\)/.exec(r.stderr)?.[1] ?? "-1");
    const found = BigInt(/backup: divergence at instruction (\d+): page 8191 differs \(dirtied on the backup only\)/.exec(r.stderr)?.[1] ?? "-1");
    // Within one interval: the first check at or after the flip.
    expect(flipped, r.stderr).toBeGreaterThanOrEqual(2_000_000n);
    expect(found - flipped, r.stderr).toBeGreaterThanOrEqual(0n);
    expect(found - flipped, r.stderr).toBeLessThanOrEqual(1_000_000n);
    expect(r.stderr).toMatch(/primary: the backup is repaired at instruction \d+/);
    expect(r.stderr).toMatch(/backup: repaired: the primary's state installed at instruction \d+; trusted again/);
    expect(r.stderr).not.toMatch(/epoch 2|worker failed|Error/);
  });

  it("refuses a malformed --fail, --epoch or --mode, a heartbeat not below the timeout, and what checkpoint mode lacks (status 2)", async () => {
    for (const bad of [
      ["--fail", "primary"], ["--fail", "both@3"], ["--heartbeat-ms", "500", "--timeout-ms", "400"],
      ["--epoch", "25ms"], ["--mode", "checkpoint", "--epoch", "0ms"], ["--mode", "checkpoint", "--epoch", "fast"], ["--mode", "both"],
    ]) {
      const r = await runLockstep(REPO, "ft", GUEST, ...bad);
      expect(r.status, bad.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^lockstep: /);
    }
    expect(parseFail("backup@2s")).toEqual({ who: "backup", at: { ms: 2000 } });
    expect(parseFail("partition@250ms")).toEqual({ who: "partition", at: { ms: 250 } });
    expect(parseFail("primary@1500ms")).toEqual({ who: "primary", at: { ms: 1500 } });
    expect(parseFail("primary@120000000")).toEqual({ who: "primary", at: { icount: 120_000_000n } });
    expect(parseFail("corrupt@5000")).toEqual({ who: "corrupt", at: { icount: 5000n } });
    expect(() => parseFail("corrupt@2s")).toThrow(/corrupt@ICOUNT takes an instruction count/);
  });
});
