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
    ["the channel cut both ways at instruction 30000", ["--fail", "partition@30000"]],
    ["over loopback TCP, no fault", ["--transport", "tcp"]],
    ["over loopback TCP, the primary stopped dead at instruction 30000", ["--transport", "tcp", "--fail", "primary@30000"]],
    ["over loopback TCP, the channel cut at instruction 30000", ["--transport", "tcp", "--fail", "partition@30000"]],
  ])("%s: stdout is byte for byte the solo run's, exit status the guest's", async (_, extra) => {
    const want = await soloRun();
    const r = await runLockstep(REPO, "ft", GUEST, ...ARGS, ...FAST, ...extra);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout, r.stderr).toBe(want);
    // The console alone cannot tell a pair from a backup that took over:
    // which replica failed, and that nothing else did, is on stderr.
    expect(r.stderr).not.toMatch(/worker failed|Error/);
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

  it("refuses a malformed --fail and a heartbeat not below the timeout (status 2)", async () => {
    for (const bad of [["--fail", "primary"], ["--fail", "both@3"], ["--heartbeat-ms", "500", "--timeout-ms", "400"]]) {
      const r = await runLockstep(REPO, "ft", GUEST, ...bad);
      expect(r.status, bad.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^lockstep: /);
    }
    expect(parseFail("backup@2s")).toEqual({ who: "backup", at: { ms: 2000 } });
    expect(parseFail("partition@250ms")).toEqual({ who: "partition", at: { ms: 250 } });
    expect(parseFail("primary@1500ms")).toEqual({ who: "primary", at: { ms: 1500 } });
    expect(parseFail("primary@120000000")).toEqual({ who: "primary", at: { icount: 120_000_000n } });
  });
});
