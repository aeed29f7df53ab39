// What replay() refuses, and how a log that does not describe the run shows
// up (host/replay/session.ts, log-format.ts, replay-gate.ts):
//
// - another guest image: ConfigMismatchError before anything runs, naming
//   the guest image and both images' hashes and sizes;
// - a configuration (or a header hash) that was changed, with a valid CRC:
//   LogFormatError about the configuration hash, at the configuration;
// - a truncated log or a changed byte: LogFormatError with the offset of the
//   record that is cut or damaged (checked at every cut point and every byte);
// - events that were changed and re-encoded with valid CRCs: a changed
//   serial byte replays to the end with both digests unmatched; a changed
//   TIME, a dropped IRQ check or a disk sector with another LBA throw a
//   DivergenceError at the exact count and log offset;
// - `until` past the log's end (or before its start): RangeError.

import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { MemoryBlockStore } from "../../host/devices/block-store.js";
import { NS_PER_INSTRUCTION } from "../../host/machine/guest-time.js";
import { DivergenceError } from "../../host/replay/divergence.js";
import { hashBytes, initHash, toHex } from "../../host/common/hash.js";
import { encodeLog, LogFormatError, parseLog, varintLength, type LogEntry, type ParsedLog } from "../../host/replay/log-format.js";
import { kindName } from "../../host/replay/event-kinds.js";
import { replay } from "../../host/replay/session.js";
import { ConfigMismatchError } from "../../host/replay/vm-config.js";
import { loadEngine } from "../../host/node/core-modules.js";
import {
  drive, EventKind, fakeWorld, guestImage, recordRun, replayInWorker, replayRun, steppingClock, text, type Recorded,
} from "../helpers/replay.js";

const u64 = (e: LogEntry) => new DataView(e.payload.buffer, e.payload.byteOffset).getBigUint64(0, true);
const u64le = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
};
/** The log with its entries replaced (header and end record kept), re-encoded with valid CRCs and parsed again. */
function rewrite(log: ParsedLog, entries: LogEntry[], header = log.header): ParsedLog {
  return parseLog(encodeLog({ header, entries: entries.map(({ icount, kind, payload }) => ({ icount, kind, payload })), end: log.end }));
}

/** Runs `f`, expecting it to throw an instance of `cls`; returns the error. */
async function rejection<T extends Error>(f: () => Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  let err: unknown;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  expect(err, "it should have thrown").toBeInstanceOf(cls);
  return err as T;
}

const ticks = guestImage("ticks");
const hello = guestImage("hello");

/** ticks on the host clock with a fake clock: 30 ticks, TIME, RDTSC and IRQ entries. */
let hostTicks: Recorded;
/** ticks on the virtual clock with "abc" then 'q' on the serial line. */
let serialTicks: Recorded;

beforeAll(async () => {
  await initHash();
  hostTicks = await recordRun(
    { image: ticks, engine: "wasm", clock: "host", cmdline: "ticks=30 every=10 hz=100", world: fakeWorld(steppingClock([250_000]).hostNs, 7) },
    (m) => drive(m, { slices: [5000], maxInstructions: 20_000_000 }),
  );
  serialTicks = await recordRun({ image: ticks, engine: "wasm", clock: "virtual", cmdline: "ticks=100000 every=5 hz=1000" }, (m, out) =>
    drive(m, {
      slices: [3000],
      inputs: [{ gap: 4, serial: new TextEncoder().encode("abc") }, { gap: 20, serial: Uint8Array.of(0x71) }],
      ready: () => out.serial.length > 0,
      maxInstructions: 20_000_000,
    }),
  );
  for (const r of [hostTicks, serialTicks]) expect(r.driven.last).toMatchObject({ reason: "exit-port", exitStatus: 0 });
  // The untouched logs replay exactly: every refusal below is the change's doing.
  for (const r of [hostTicks, serialTicks]) expect((await replay(ticks, r.log, { loadEngine, engine: "wasm" })).matched).toEqual({ outputDigest: true, stateHash: true });
});

describe("another guest image", () => {
  it("is refused with a ConfigMismatchError naming the guest image, before anything runs", async () => {
    const out: number[] = [];
    const err = await rejection(() => replay(hello, serialTicks.log, { loadEngine, engine: "wasm", onSerial: (b) => out.push(b) }), ConfigMismatchError);
    const logged = toHex(hashBytes(ticks)).slice(0, 16);
    const given = toHex(hashBytes(hello)).slice(0, 16);
    expect(err.message).toContain(`guest image (log: ${logged}…, ${ticks.length} bytes; given: ${given}…, ${hello.length} bytes)`);
    // Nothing else differs from the log's configuration: the image is the whole complaint.
    expect(err.message).toBe(`this log was recorded for another configuration: guest image (log: ${logged}…, ${ticks.length} bytes; given: ${given}…, ${hello.length} bytes)`);
    expect(out).toEqual([]); // the guest never ran
  });

  it("is refused even when it differs from the recorded one in a single byte", async () => {
    const patched = ticks.slice();
    patched[patched.length - 1] ^= 0x01;
    const err = await rejection(() => replay(patched, hostTicks.log, { loadEngine, engine: "ts" }), ConfigMismatchError);
    expect(err.message).toMatch(/guest image \(log: [0-9a-f]{16}…, \d+ bytes; given: [0-9a-f]{16}…, \d+ bytes\)/);
    expect(err.message).toContain(toHex(hashBytes(patched)).slice(0, 16));
  });
});

describe("a changed configuration", () => {
  // The header: magic, version, hash, start count 0, then the configuration's length (2 bytes for these).
  const CONFIG_OFFSET = 5 + 1 + 32 + 1 + 2;

  it("a configuration changed in the header (valid CRC) is refused with a LogFormatError about the configuration hash, at the configuration", async () => {
    const log = serialTicks.log;
    expect(log.header.configOffset).toBe(CONFIG_OFFSET);
    const json = JSON.parse(new TextDecoder().decode(log.header.config));
    expect(json.cmdline).toBe("ticks=100000 every=5 hz=1000");
    for (const change of [{ cmdline: "ticks=100000 every=5 hz=100" }, { ramSize: 16 << 20 }, { clock: "host" }]) {
      const config = new TextEncoder().encode(JSON.stringify({ ...json, ...change }));
      const bad = rewrite(log, log.entries, { ...log.header, config });
      const err = await rejection(() => replay(ticks, bad, { loadEngine, engine: "wasm" }), LogFormatError);
      expect(err.message, JSON.stringify(change)).toMatch(/the configuration does not hash to the header's configuration hash/);
      expect(err.offset).toBe(bad.header.configOffset);
    }
  });

  it("a header whose configuration hash was changed is refused the same way", async () => {
    const log = serialTicks.log;
    const configHash = log.header.configHash.slice();
    configHash[31] ^= 0x80;
    const err = await rejection(() => replay(ticks, rewrite(log, log.entries, { ...log.header, configHash }), { loadEngine, engine: "wasm" }), LogFormatError);
    expect(err.message).toContain(`the configuration does not hash to the header's configuration hash (${toHex(configHash).slice(0, 16)}…)`);
    expect(err.offset).toBe(CONFIG_OFFSET);
  });

  it("a configuration that is not JSON is refused with a LogFormatError at the configuration", async () => {
    const log = serialTicks.log;
    const bad = rewrite(log, log.entries, { ...log.header, config: new TextEncoder().encode("{not json") });
    const err = await rejection(() => replay(ticks, bad, { loadEngine, engine: "wasm" }), LogFormatError);
    expect(err.message).toMatch(/configuration is not UTF-8 JSON/);
    expect(err.offset).toBe(5 + 1 + 32 + 1 + 1);
  });
});

describe("a damaged log", () => {
  /** Where each record starts: the header at 0, every entry, then the end record (delta, 0xFF, guest time, two hashes, CRC). */
  function recordStarts(log: ParsedLog, length: number): number[] {
    const last = log.entries.at(-1)!;
    const endLength = varintLength(log.end.finalIcount - last.icount) + 1 + varintLength(log.end.guestNs) + 64 + 4;
    return [0, ...log.entries.map((e) => e.offset!), length - endLength];
  }
  const containing = (starts: number[], pos: number) => starts.filter((s) => s <= pos).at(-1)!;

  it("cut at every length: LogFormatError at the start of the record that is cut", () => {
    const bytes = hostTicks.bytes;
    const starts = recordStarts(hostTicks.log, bytes.length);
    for (let n = 0; n < bytes.length; n++) {
      let err: unknown;
      try {
        parseLog(bytes.subarray(0, n));
      } catch (e) {
        err = e;
      }
      if (!(err instanceof LogFormatError)) expect.fail(`a log cut to ${n} bytes was not refused with a LogFormatError (${String(err)})`);
      const want = containing(starts, n);
      if (err.offset !== want) expect.fail(`cut to ${n} bytes: offset ${err.offset}, want ${want} (${err.message})`);
      expect(err.message).toMatch(n === 0 || n < starts[1]! ? /truncated header/ : n === want ? /missing end record/ : /truncated record/);
    }
  });

  it("a byte changed anywhere: LogFormatError at or after the start of the record that holds it", () => {
    const bytes = hostTicks.bytes;
    const starts = recordStarts(hostTicks.log, bytes.length);
    fc.assert(
      fc.property(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, mask) => {
        const bad = bytes.slice();
        bad[pos] ^= mask;
        let err: unknown;
        try {
          parseLog(bad);
        } catch (e) {
          err = e;
        }
        expect(err, `byte ${pos} ^ ${mask} was not refused`).toBeInstanceOf(LogFormatError);
        const off = (err as LogFormatError).offset;
        expect(off).toBeGreaterThanOrEqual(containing(starts, pos));
        expect(off).toBeLessThanOrEqual(bytes.length);
        expect((err as LogFormatError).message).toContain(`at byte ${off}`);
      }),
      { seed: 0x0f11b, numRuns: 3000 },
    );
    // And every byte with one bit flipped (the CRCs catch it, or the framing does).
    for (let pos = 0; pos < bytes.length; pos++) {
      const bad = bytes.slice();
      bad[pos] ^= 0x10;
      expect(() => parseLog(bad), `byte ${pos}`).toThrow(LogFormatError);
    }
  });
});

describe("changed events (re-encoded, valid CRCs)", () => {
  it("a changed SERIAL_RX byte: the replay runs to the end, and neither the output digest nor the state hash matches", async () => {
    const log = serialTicks.log;
    const i = log.entries.findIndex((e) => e.kind === EventKind.SERIAL_RX);
    expect(text([...log.entries[i]!.payload])).toBe("abc");
    const payload = new TextEncoder().encode("axc");
    const { result, out } = await replayRun(ticks, rewrite(log, log.entries.map((e, k) => (k === i ? { ...e, payload } : e))), { engine: "ts" });
    expect(result.icount).toBe(log.end.finalIcount);
    expect(result.matched).toEqual({ outputDigest: false, stateHash: false });
    // The guest echoed what the log said it received.
    const recorded = text(serialTicks.out.serial);
    expect(recorded).toContain("abc");
    expect(text(out.serial)).toBe(recorded.replace("abc", "axc"));
  });

  // Regression (fixed in d37004e): such a replay used to never return. A TIME reading that made the
  // PIT fire (a TIME followed, at the same count, by IRQ 0x20) is set back to the guest's own time
  // there (the previous anchor plus 1 ns an instruction). If the replaying CPU is halted there, no
  // timer is due and the log's next entry is the IRQ check at that count: Machine.runSync's halted
  // branch used to take `gate.pendingAt(icount)` (true for any entry at this count) as input still
  // to come, and looped forever. Which readings were needed depends on the recording (a timer can
  // also come due by guest time's own drift at the same count, and then the reading changes
  // nothing), so the first few candidates are each replayed, in a worker so that a return of the
  // spin fails this test after 20 s instead of hanging the whole run: none may spin, each either
  // matches or stops with a DivergenceError, and at least one is the halted case, stopped exactly
  // at its count with the IRQ named.
  it("a TIME moved back to the guest's own time: where the timer interrupt the log has does not come, DivergenceError there", async () => {
    const log = hostTicks.log;
    const e = log.entries;
    const rate = BigInt(NS_PER_INSTRUCTION.host);
    const candidates = e
      .map((x, j) => j)
      .filter((j) => e[j]!.kind === EventKind.TIME && e[j + 1]?.kind === EventKind.IRQ && e[j + 1]!.icount === e[j]!.icount && e[j + 1]!.payload[0] === 0x20)
      .slice(0, 4);
    expect(candidates.length).toBeGreaterThan(0);
    const good = await replayInWorker(ticks, hostTicks.bytes, { engine: "wasm" }, 20_000);
    expect(good).toEqual({ kind: "done", icount: log.end.finalIcount, matched: { outputDigest: true, stateHash: true } });
    let stopped = 0;
    for (const k of candidates) {
      // Guest time there without that reading: the previous anchor (TIME or RDTSC) plus 1 ns an instruction.
      const prev = e.slice(0, k).filter((x) => x.kind === EventKind.TIME || x.kind === EventKind.RDTSC).at(-1)!;
      const own = u64(prev) + (e[k]!.icount - prev.icount) * rate;
      expect(own).toBeLessThan(u64(e[k]!));
      const entries = e.map((x, j) => (j === k ? { ...x, payload: u64le(own) } : x));
      const bytes = encodeLog({ header: log.header, entries: entries.map(({ icount, kind, payload }) => ({ icount, kind, payload })), end: log.end });
      const bad = parseLog(bytes);
      const r = await replayInWorker(ticks, bytes, { engine: "wasm" }, 20_000);
      const shown = JSON.stringify(r, (_, v) => (typeof v === "bigint" ? String(v) : v));
      expect(r.kind, `TIME #${k} at ${e[k]!.icount}: the replay did not return (does it spin in Machine.runSync?): ${shown}`).not.toBe("timeout");
      if (r.kind === "done") continue; // the reading was not needed: the timer came due by guest time there anyway
      expect(r, shown).toMatchObject({ kind: "error", name: "DivergenceError" });
      if (r.kind !== "error" || r.icount !== e[k]!.icount) continue; // diverged later, at a check that differs
      // The guest stays halted: the replay stops there, naming the entry it never reached.
      expect(r.offset).toBe(bad.entries[k + 1]!.offset);
      expect(r.detail).toBe(`the guest stopped (idle) but the log goes on to instruction ${log.end.finalIcount}; its next event is IRQ at instruction ${e[k]!.icount}`);
      stopped++;
    }
    expect(stopped, "no candidate reading was one the halted guest needed").toBeGreaterThan(0);
  }, 120_000);

  it("a TIME moved past the next reading: DivergenceError no later than that reading (there: it is behind the replay's guest time)", async () => {
    const log = hostTicks.log;
    const e = log.entries;
    const anchor = (x: LogEntry) => x.kind === EventKind.TIME || x.kind === EventKind.RDTSC;
    // A TIME followed, after entries at its own count only, by the next time anchor at a later count.
    let k = -1, m = -1;
    for (let j = 0; j < e.length && k < 0; j++) {
      if (e[j]!.kind !== EventKind.TIME) continue;
      let n = j + 1;
      while (n < e.length && e[n]!.icount === e[j]!.icount && !anchor(e[n]!)) n++;
      if (n < e.length && anchor(e[n]!) && e[n]!.icount > e[j]!.icount) { k = j; m = n; }
    }
    expect(k).toBeGreaterThan(0);
    const next = e[m]!;
    const moved = u64(next) + 5_000_000n;
    const bad = rewrite(log, e.map((x, j) => (j === k ? { ...x, payload: u64le(moved) } : x)));
    const err = await rejection(() => replay(ticks, bad, { loadEngine, engine: "ts" }), DivergenceError);
    expect(err.icount).toBeGreaterThan(e[k]!.icount);
    expect(err.icount).toBeLessThanOrEqual(next.icount);
    if (err.icount === next.icount) {
      const guestNs = moved + (next.icount - e[k]!.icount) * BigInt(NS_PER_INSTRUCTION.host);
      expect(err.offset).toBe(bad.entries[m]!.offset);
      expect(err.detail).toBe(next.kind === EventKind.TIME
        ? `the log's TIME ${u64(next)} ns is before the replay's guest time ${guestNs} ns`
        : `the log's RDTSC ${u64(next)} is before the replay's guest time ${guestNs} ns`);
    }
  });

  it("an IRQ check dropped: DivergenceError where the replay delivers it", async () => {
    const log = hostTicks.log;
    const k = log.entries.findIndex((x) => x.kind === EventKind.IRQ);
    const irq = log.entries[k]!;
    const bad = rewrite(log, log.entries.filter((_, j) => j !== k));
    const err = await rejection(() => replay(ticks, bad, { loadEngine, engine: "wasm" }), DivergenceError);
    const next = bad.entries[k]!;
    expect(err.icount).toBe(irq.icount);
    expect(err.offset).toBe(next.offset);
    expect(err.detail).toBe(`the guest delivered interrupt vector 0x${irq.payload[0]!.toString(16)} but the log's next event is ${kindName(next.kind)} at instruction ${next.icount}`);
  });

  it("a disk sector logged with another LBA: DivergenceError at the read", async () => {
    const image = guestImage("diskregs");
    const rec = await recordRun({ image, engine: "wasm", clock: "virtual", disk: () => new MemoryBlockStore(2048) }, (m) => drive(m, { slices: [1_000_000], maxInstructions: 30_000_000 }));
    expect(rec.driven.last).toMatchObject({ reason: "exit-port", exitStatus: 0 });
    const log = rec.log;
    const k = log.entries.findIndex((x) => x.kind === EventKind.DISK_READ_DATA);
    const entry = log.entries[k]!;
    const lba = new DataView(entry.payload.buffer, entry.payload.byteOffset).getUint32(0, true);
    const payload = entry.payload.slice();
    new DataView(payload.buffer).setUint32(0, lba + 1, true);
    const bad = rewrite(log, log.entries.map((x, j) => (j === k ? { ...x, payload } : x)));
    const err = await rejection(() => replay(image, bad, { loadEngine, engine: "ts" }), DivergenceError);
    expect(err.icount).toBe(entry.icount);
    expect(err.offset).toBe(bad.entries[k]!.offset);
    expect(err.detail).toBe(`the disk read sector ${lba} but the log has sector ${lba + 1}`);
  });
});

describe("until", () => {
  it("past the log's end, or before its start, is a RangeError and nothing runs", async () => {
    const log = serialTicks.log;
    const end = log.end.finalIcount;
    const out: number[] = [];
    const past = await rejection(() => replay(ticks, log, { loadEngine, engine: "wasm", until: end + 1n, onSerial: (b) => out.push(b) }), RangeError);
    expect(past.message).toBe(`--until ${end + 1n} is past the log's end at instruction ${end}`);
    const before = await rejection(() => replay(ticks, log, { loadEngine, engine: "wasm", until: -1n, onSerial: (b) => out.push(b) }), RangeError);
    expect(before.message).toBe(`--until -1 is before the log's start at instruction 0`);
    expect(out).toEqual([]);
    // The end itself is fine, and is matched against the end record.
    expect((await replay(ticks, log, { loadEngine, engine: "wasm", until: end })).matched).toEqual({ outputDigest: true, stateHash: true });
  });
});
