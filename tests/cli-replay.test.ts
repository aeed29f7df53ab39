// lockstep record / replay as a user runs them (child processes): a recorded
// run replays on both engines and matches its end record; --until prints the
// state at a count; a log for another guest, a damaged log and a log whose
// events were changed are refused or reported as divergent.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runLockstep } from "./helpers/cli.js";
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
    const cut = join(tmp, "cut.log");
    writeFileSync(cut, bytes.subarray(0, bytes.length - 3));
    const c = await lockstep("replay", guest("hello"), "--log", cut);
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/not a valid replay log: .*at byte offset \d+/);

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
});
