// lockstep record / replay as a user runs them (child processes): a recorded
// run replays on both engines and matches its end record; --until prints the
// state at a count; a log for another guest, a damaged log and a log whose
// events were changed are refused or reported as divergent.

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LOCKSTEP_BIN, runLockstep } from "./helpers/cli.js";
import { encodeLog, parseLog } from "../host/replay/log-format.js";
import { EventKind } from "../host/replay/event-kinds.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-replay-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const lockstep = (...args: string[]) => runLockstep(tmp, ...args);
const guest = (name: string) => new URL(`../guests/bin/${name}.elf`, import.meta.url).pathname;

describe("lockstep record and replay", () => {
  it("records ticks on the host clock and replays it on both engines; --until prints the state", async () => {
    const log = join(tmp, "ticks.log");
    const rec = await lockstep("record", guest("ticks"), "--log", log, "--cmdline", "ticks=12 hz=200 every=4", "--serial", "none");
    expect(rec.status, rec.stderr).toBe(0);
    expect(rec.stderr).toMatch(/^lockstep record: \d+ instructions .* log .*ticks\.log: \d+ bytes/m);
    const parsed = parseLog(new Uint8Array(readFileSync(log)));
    expect(parsed.entries.filter((e) => e.kind === EventKind.IRQ).length).toBeGreaterThanOrEqual(12);
    expect(parsed.entries.some((e) => e.kind === EventKind.TIME)).toBe(true);

    for (const engine of ["wasm", "ts"]) {
      const r = await lockstep("replay", guest("ticks"), "--log", log, "--engine", engine, "--json");
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.matched).toBe(true);
      expect(j.stateHash.replay).toBe(j.stateHash.log);
      expect(j.icount).toBe(parsed.end.finalIcount.toString());
    }
    const mid = (parsed.end.finalIcount / 2n).toString();
    const [a, b] = await Promise.all(["wasm", "ts"].map((e) => lockstep("replay", guest("ticks"), "--log", log, "--until", mid, "--engine", e)));
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(new RegExp(`^state at instruction ${mid} `));
    expect(a.stdout).toMatch(/^eip=[0-9a-f]{8} eflags=[0-9a-f]{8} \[/m);
    expect(a.stdout).toMatch(/^next instruction at [0-9a-f]{8}: [0-9a-f]{2}( [0-9a-f]{2})*$/m);
    expect(b.stdout).toBe(a.stdout); // the engines agree on the whole state at that count
  });

  it("refuses another guest, a damaged log and a bad --until; reports a changed log as divergent", async () => {
    const log = join(tmp, "hello.log");
    const rec = await lockstep("record", guest("hello"), "--log", log, "--clock", "host", "--serial", "none");
    expect(rec.status, rec.stderr).toBe(0);
    const other = await lockstep("replay", guest("ticks"), "--log", log);
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(/recorded for another configuration: guest image/);

    const bytes = new Uint8Array(readFileSync(log));
    // A damaged end record (CRC) is refused: damage is not a cut, even at the very end.
    const cut = join(tmp, "damaged.log");
    const damaged = bytes.slice();
    damaged[damaged.length - 1] ^= 0x01;
    writeFileSync(cut, damaged);
    const c = await lockstep("replay", guest("hello"), "--log", cut);
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/not a valid replay log: CRC mismatch .*at byte offset \d+/);

    const late = await lockstep("replay", guest("hello"), "--log", log, "--until", "999999999999");
    expect(late.status).toBe(2);
    expect(late.stderr).toMatch(/past the log's end/);

    // A TIME reading set to 0, behind the guest time it anchors: a valid log
    // that the guest's run cannot follow (the replay says where).
    const tlog = join(tmp, "ticks3.log");
    const t = await lockstep("record", guest("ticks"), "--log", tlog, "--cmdline", "ticks=3 hz=200", "--serial", "none");
    expect(t.status, t.stderr).toBe(0);
    const parsed = parseLog(new Uint8Array(readFileSync(tlog)));
    const i = parsed.entries.findIndex((e) => e.kind === EventKind.TIME && e.icount > 0n);
    expect(i).toBeGreaterThan(0);
    const changed = parsed.entries.map((e) => ({ ...e, payload: e.payload.slice() }));
    new DataView(changed[i]!.payload.buffer).setBigUint64(0, 0n, true);
    const bad = join(tmp, "changed.log");
    writeFileSync(bad, encodeLog({ header: parsed.header, entries: changed, end: parsed.end }));
    const d = await lockstep("replay", guest("ticks"), "--log", bad);
    expect(d.status).toBe(1);
    expect(d.stderr).toMatch(new RegExp(`replay diverged at instruction ${parsed.entries[i]!.icount}: the log's TIME 0 ns is before the replay's guest time`));
  });

  it("record needs --log", async () => {
    const r = await lockstep("record", guest("hello"));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--log FILE/);
  });

  it("replays a log cut short up to its last complete record and says so; damage and header cuts are exit 2", async () => {
    const log = join(tmp, "ticks-cut-src.log");
    const rec = await lockstep("record", guest("ticks"), "--log", log, "--cmdline", "ticks=8 hz=200", "--serial", "none");
    expect(rec.status, rec.stderr).toBe(0);
    const bytes = new Uint8Array(readFileSync(log));
    const parsed = parseLog(bytes);
    const e = parsed.entries;
    const headerEnd = e[0]!.offset!;
    const cases = [
      { n: headerEnd + 1, entries: 0 }, // the WALLCLOCK cut: nothing to replay
      { n: e[1]!.offset!, entries: 1 },
      { n: e[Math.floor(e.length / 2)]!.offset! + 2, entries: Math.floor(e.length / 2) },
      { n: bytes.length - 1, entries: e.length }, // inside the end record
    ];
    for (const { n, entries } of cases) {
      const f = join(tmp, `cut-${n}.log`);
      writeFileSync(f, bytes.subarray(0, n));
      const lastEnd = e[entries]?.offset; // where the cut log's last complete record ends (for a cut before the last entry)
      const r = await lockstep("replay", guest("ticks"), "--log", f, "--json");
      expect(r.status, `${n}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toMatch(/cut short at byte offset \d+ .*: no end record/);
      const j = JSON.parse(r.stdout);
      expect(j.matched).toBeNull();
      expect(j.cut.entries).toBe(entries);
      if (entries > 0) {
        expect(r.stderr).toMatch(new RegExp(`; all ${entries} events of the log matched, up to its last complete record; no end record, so the final output digest and state hash cannot be compared`));
        expect(BigInt(j.icount)).toBe(BigInt(j.cut.lastIcount));
        expect(BigInt(j.icount)).toBeGreaterThanOrEqual(e[entries - 1]!.icount);
        if (entries < e.length) expect(j.cut.offset).toBe(lastEnd);
      } else {
        expect(r.stderr).toMatch(/nothing to replay \(0 instructions\)/);
        expect(j.cut.offset).toBe(headerEnd);
      }
      const i = await lockstep("log", "inspect", f, "--json");
      expect(i.status, i.stderr).toBe(0);
      const ij = JSON.parse(i.stdout);
      expect(ij.events).toBe(entries);
      expect(ij.finalIcount).toBeNull();
      expect(ij.cut.offset).toBe(j.cut.offset);
      expect(ij.cut.bytes).toBe(n - j.cut.offset);
      const t = await lockstep("log", "inspect", f);
      expect(t.stdout).toMatch(new RegExp(`, cut short at byte offset ${j.cut.offset} `));
    }
    // A flipped byte in a record with more records after it: refused with the offset.
    const flipped = bytes.slice();
    const k = Math.floor(e.length / 2);
    flipped[e[k + 1]!.offset! - 2] ^= 0x10;
    const fb = join(tmp, "flipped.log");
    writeFileSync(fb, flipped.subarray(0, e[k + 3]!.offset! + 1)); // and cut short after it too
    for (const args of [["replay", guest("ticks"), "--log", fb], ["log", "inspect", fb]]) {
      const r = await lockstep(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`CRC mismatch in record starting at byte ${e[k]!.offset} \\(at byte offset ${e[k + 1]!.offset! - 4}\\)`));
    }
    // Cut inside the header: no configuration, refused.
    const hc = join(tmp, "header-cut.log");
    writeFileSync(hc, bytes.subarray(0, headerEnd - 1));
    for (const args of [["replay", guest("ticks"), "--log", hc], ["log", "inspect", hc]]) {
      const r = await lockstep(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/not a valid replay log: truncated header \(at byte offset 0\)/);
    }
  }, 60_000);

  it("a record killed by SIGKILL leaves a log that replays (exit 0) up to where it was cut", async () => {
    const dir = mkdtempSync(join(tmp, "kill-"));
    const target = join(dir, "k.log");
    const child = spawn(process.execPath, [LOCKSTEP_BIN, "record", guest("ticks"), "--log", target, "--cmdline", "ticks=100000", "--serial", "none"], { cwd: dir, stdio: "ignore" });
    // host/cli/log-target.ts writes FILE.partial until the end record; a killed record leaves it.
    const written = () => readdirSync(dir).map((f) => join(dir, f)).filter((f) => statSync(f).size > 2000);
    const t0 = Date.now();
    while (written().length === 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const files = written();
    expect(files).toEqual([`${target}.partial`]);
    const r = await lockstep("replay", guest("ticks"), "--log", files[0]!);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/cut short at byte offset \d+/);
    expect(r.stderr).toMatch(/all \d+ events of the log matched/);
  }, 60_000);
});
