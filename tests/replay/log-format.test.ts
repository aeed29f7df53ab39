// The replay log format (host/replay/log-format.ts, docs/log-format.md):
// round trips through the writer and the streaming reader, and refusal of
// truncated, corrupted or malformed logs with a LogFormatError and an offset.

import { describe, expect, it } from "vitest";
import { END_KIND, EventKind, kindSpec, MAX_PAYLOAD } from "../../host/replay/event-kinds.js";
import {
  LOG_MAGIC,
  LOG_VERSION,
  LogFormatError,
  LogReader,
  LogWriter,
  MAX_ICOUNT,
  crc32,
  encodeLog,
  encodeVarint,
  inspect,
  parseLog,
  type LogEntry,
} from "../../host/replay/log-format.js";

// Small seeded PRNG (xorshift32) so failures reproduce.
function prng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  return {
    u32: next,
    int: (n: number) => next() % n,
    bytes(n: number) {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
  };
}

const KINDS = Object.values(EventKind);
const hash = (fill: number) => new Uint8Array(32).fill(fill);

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function randomLog(seed: number, count: number, start: bigint) {
  const r = prng(seed);
  const entries: LogEntry[] = [];
  let ic = start;
  for (let i = 0; i < count; i++) {
    const step = r.int(4) === 0 ? 0n : BigInt(r.u32()) * BigInt(1 + r.int(1000));
    ic = ic + step > MAX_ICOUNT ? ic : ic + step;
    const kind = KINDS[r.int(KINDS.length)]!;
    const spec = kindSpec(kind)!;
    const len = spec.size ?? Math.max(spec.minSize, r.int(8) === 0 ? r.int(3000) : r.int(40));
    const payload = r.bytes(len);
    // 64-bit values must fit a double exactly (the event table's rule).
    if (spec.size === 8) payload.fill(0, 6);
    entries.push({ icount: ic, kind, payload });
  }
  const end = { finalIcount: ic + BigInt(r.int(100)), guestNs: BigInt(r.u32()) * 1000n, outputDigest: r.bytes(32), stateHash: r.bytes(32) };
  if (end.finalIcount > MAX_ICOUNT) end.finalIcount = MAX_ICOUNT;
  return { header: { configHash: r.bytes(32), startIcount: start, config: r.bytes(r.int(300)) }, entries, end };
}

function strip(entries: LogEntry[]) {
  return entries.map(({ icount, kind, payload }) => ({ icount, kind, payload }));
}

/** Parses `bytes` through the streaming reader, split at the given sizes (cycled). */
function streamParse(bytes: Uint8Array, sizes: number[]) {
  const r = new LogReader();
  const entries: LogEntry[] = [];
  for (let o = 0, i = 0; o < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    entries.push(...r.push(bytes.subarray(o, o + n)));
    o += n;
  }
  const { header, end } = r.finish();
  return { header, entries, end };
}

function expectFormatError(f: () => unknown, reason?: RegExp, offset?: number): LogFormatError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(LogFormatError);
  const e = err as LogFormatError;
  expect(Number.isInteger(e.offset)).toBe(true);
  if (reason) expect(e.reason).toMatch(reason);
  if (offset !== undefined) expect(e.offset).toBe(offset);
  return e;
}

/** A record with a correct CRC appended, for building malformed logs by hand. */
function rec(...parts: (number[] | Uint8Array)[]): Uint8Array {
  const body = concat(parts.map((p) => Uint8Array.from(p)));
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32(body), true);
  return concat([body, crc]);
}
const header = (start = 0n, version = LOG_VERSION) => rec(LOG_MAGIC, [version], hash(7), encodeVarint(start), [0]);
const endRec = (delta = 0n) => rec(encodeVarint(delta), [END_KIND], [0], hash(1), hash(2));

describe("varints", () => {
  it("encode as minimal unsigned LEB128 up to 2^64-1", () => {
    expect([...encodeVarint(0n)]).toEqual([0]);
    expect([...encodeVarint(127n)]).toEqual([127]);
    expect([...encodeVarint(128n)]).toEqual([0x80, 1]);
    expect([...encodeVarint(300n)]).toEqual([0xac, 0x02]);
    expect([...encodeVarint(MAX_ICOUNT)]).toEqual([...Array(9).fill(0xff), 1]);
    expect(() => encodeVarint(MAX_ICOUNT + 1n)).toThrow(RangeError);
    expect(() => encodeVarint(-1n)).toThrow(RangeError);
  });
});

describe("round trips", () => {
  it("an empty log (header and end record only)", () => {
    const log = { header: { configHash: hash(9), startIcount: 5n }, entries: [], end: { finalIcount: 5n, guestNs: 0n, outputDigest: hash(1), stateHash: hash(2) } };
    const bytes = encodeLog(log);
    const p = parseLog(bytes);
    expect(p.header).toEqual({ version: LOG_VERSION, configHash: hash(9), startIcount: 5n, config: new Uint8Array(0), configOffset: 5 + 1 + 32 + 1 + 1 });
    expect(p.entries).toEqual([]);
    expect(p.end).toEqual(log.end);
    expect([...bytes.subarray(0, 5)]).toEqual([...new TextEncoder().encode("LSLOG")]);
    expect(bytes[5]).toBe(LOG_VERSION);
  });

  for (const seed of [1, 2, 3, 42, 1234567]) {
    it(`random entries, seed ${seed}, whole and streamed`, () => {
      const log = randomLog(seed, 300, BigInt(prng(seed).u32()));
      const bytes = encodeLog(log);
      const whole = parseLog(bytes);
      expect(whole.header.configHash).toEqual(log.header.configHash);
      expect(whole.header.startIcount).toBe(log.header.startIcount);
      expect(whole.header.config).toEqual(log.header.config);
      expect(strip(whole.entries)).toEqual(log.entries);
      expect(whole.end).toEqual(log.end);
      // Entry offsets point at real records.
      const configLength = log.header.config.length;
      expect(whole.header.configOffset).toBe(5 + 1 + 32 + encodeVarint(log.header.startIcount).length + encodeVarint(BigInt(configLength)).length);
      expect(whole.entries[0]!.offset).toBe(whole.header.configOffset! + configLength + 4);
      for (let i = 1; i < whole.entries.length; i++) {
        const prev = whole.entries[i - 1]!;
        const size = encodeVarint(whole.entries[i - 1]!.icount - (i > 1 ? whole.entries[i - 2]!.icount : log.header.startIcount)).length + 1 + encodeVarint(BigInt(prev.payload.length)).length + prev.payload.length + 4;
        expect(whole.entries[i]!.offset).toBe(prev.offset! + size);
      }
      const r = prng(seed + 99);
      const splits = [[1], [2], [3], [7], [64], [4096], Array.from({ length: 50 }, () => 1 + r.int(200))];
      for (const sizes of splits) {
        const s = streamParse(bytes, sizes);
        expect(strip(s.entries)).toEqual(log.entries);
        expect(s.end).toEqual(log.end);
        expect(s.entries.map((e) => e.offset)).toEqual(whole.entries.map((e) => e.offset));
      }
    });
  }

  it("icounts near 2^64", () => {
    const start = MAX_ICOUNT - 10_000n;
    const log = randomLog(7, 100, start);
    log.entries.push({ icount: MAX_ICOUNT, kind: EventKind.IRQ, payload: Uint8Array.of(32) });
    log.end.finalIcount = MAX_ICOUNT;
    const p = parseLog(encodeLog(log));
    expect(strip(p.entries)).toEqual(log.entries);
    expect(p.end.finalIcount).toBe(MAX_ICOUNT);
    // One huge delta: from 0 straight to 2^64-1.
    const big = { header: { configHash: hash(0), startIcount: 0n }, entries: [{ icount: MAX_ICOUNT, kind: EventKind.ENTROPY, payload: Uint8Array.of(3, 3, 3, 3) }], end: { finalIcount: MAX_ICOUNT, guestNs: 0n, outputDigest: hash(4), stateHash: hash(5) } };
    const b = encodeLog(big);
    expect(strip(parseLog(b).entries)).toEqual(big.entries);
    expect(strip(streamParse(b, [1]).entries)).toEqual(big.entries);
  });

  it("the writer emits a chunk per record and the reader yields each entry as it completes", () => {
    const chunks: Uint8Array[] = [];
    const w = new LogWriter((c) => chunks.push(c), hash(1), 100n);
    const r = new LogReader();
    expect(r.push(chunks[0]!)).toEqual([]);
    expect(r.header?.startIcount).toBe(100n);
    w.append(100n, EventKind.TIME, Uint8Array.of(1, 1, 1, 1, 1, 1, 0, 0));
    w.append(150n, EventKind.SERIAL_RX, Uint8Array.of(0x41));
    w.append(150n, EventKind.NIC_RX, new Uint8Array(MAX_PAYLOAD));
    const got = chunks.slice(1).map((c) => r.push(c));
    expect(got.map((g) => g.map((e) => [e.icount, e.kind]))).toEqual([[[100n, 1]], [[150n, 4]], [[150n, 5]]]);
    expect(r.end).toBeNull();
    expect(() => r.finish()).toThrow(/missing end record/);
    w.end(200n, 0n, hash(8), hash(9));
    const r2 = new LogReader();
    for (const c of chunks) r2.push(c);
    expect(r2.finish().end.finalIcount).toBe(200n);
    expect(w.bytesWritten).toBe(concat(chunks).length);
  });
});

describe("writer refuses bad input", () => {
  const w = () => new LogWriter(() => {}, hash(0), 10n);
  it("decreasing icounts", () => {
    const x = w();
    expect(() => x.append(9n, EventKind.IRQ, Uint8Array.of(1))).toThrow(/before/);
    x.append(20n, EventKind.IRQ, Uint8Array.of(1));
    expect(() => x.append(19n, EventKind.IRQ, Uint8Array.of(1))).toThrow(/before/);
    expect(() => x.end(19n, 0n, hash(0), hash(0))).toThrow(/before/);
  });
  it("unknown kinds, oversize or mis-sized payloads, icounts past 2^64-1, wrong hash sizes, use after end", () => {
    const x = w();
    expect(() => x.append(10n, 0, new Uint8Array())).toThrow(/unknown/);
    expect(() => x.append(10n, END_KIND, new Uint8Array())).toThrow(/unknown/);
    expect(() => x.append(10n, 99, new Uint8Array())).toThrow(/unknown/);
    expect(() => x.append(10n, EventKind.NIC_RX, new Uint8Array(MAX_PAYLOAD + 1))).toThrow(/exceeds/);
    expect(() => x.append(10n, EventKind.TIME, new Uint8Array(4))).toThrow(/8 bytes/);
    expect(() => x.append(MAX_ICOUNT + 1n, EventKind.IRQ, Uint8Array.of(1))).toThrow(/2\^64/);
    expect(() => x.end(10n, 0n, new Uint8Array(31), hash(0))).toThrow(/32 bytes/);
    expect(() => new LogWriter(() => {}, new Uint8Array(16))).toThrow(/32 bytes/);
    x.end(10n, 0n, hash(0), hash(0));
    expect(() => x.append(10n, EventKind.IRQ, Uint8Array.of(1))).toThrow(/ended/);
    expect(() => x.end(10n, 0n, hash(0), hash(0))).toThrow(/ended/);
  });
});

describe("reader refuses truncated and corrupted logs", () => {
  const small = encodeLog({
    header: { configHash: hash(0xab), startIcount: 1000n },
    entries: [
      { icount: 1000n, kind: EventKind.TIME, payload: Uint8Array.of(1, 2, 3, 4, 5, 6, 0, 0) },
      { icount: 1300n, kind: EventKind.SERIAL_RX, payload: Uint8Array.of(0x68, 0x69) },
      { icount: 1_000_000n, kind: EventKind.DISK_COMPLETE, payload: Uint8Array.of(1) },
      { icount: 1_000_200n, kind: EventKind.IRQ, payload: Uint8Array.of(33) },
    ],
    end: { finalIcount: 2_000_000n, guestNs: 0n, outputDigest: hash(0x11), stateHash: hash(0x22) },
  });

  it("truncation at every byte offset", () => {
    expect(parseLog(small).entries).toHaveLength(4);
    for (let n = 0; n < small.length; n++) {
      const cut = small.subarray(0, n);
      const e = expectFormatError(() => parseLog(cut));
      expect(e.offset).toBeLessThanOrEqual(n);
      expect(e.reason).toMatch(/truncated|missing end/);
      // Streaming, byte by byte, ends the same way.
      const r = new LogReader();
      for (let i = 0; i < n; i++) r.push(cut.subarray(i, i + 1));
      expectFormatError(() => r.finish());
    }
  });

  it("every single-byte corruption is refused", () => {
    for (let i = 0; i < small.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const bad = small.slice();
        bad[i]! ^= x;
        expectFormatError(() => parseLog(bad));
        expectFormatError(() => streamParse(bad, [1]));
      }
    }
  });

  it("bad magic", () => {
    const bad = small.slice();
    bad[2] = 0x58;
    expectFormatError(() => parseLog(bad), /bad magic/, 2);
    expectFormatError(() => parseLog(new TextEncoder().encode("hello world, not a log at all")), /bad magic/, 0);
  });

  it("unsupported version, even with a valid CRC", () => {
    expectFormatError(() => parseLog(concat([header(0n, 2), endRec()])), /unsupported version 2/, 5);
    expectFormatError(() => parseLog(concat([header(0n, 0), endRec()])), /unsupported version 0/, 5);
  });

  it("CRC mismatch names the record", () => {
    const bad = small.slice();
    bad[40]! ^= 0x04; // inside the start-icount varint / header CRC region
    expectFormatError(() => parseLog(bad));
    const h = header();
    const e = rec([0], [EventKind.IRQ], [1], [5]);
    e[3]! ^= 1; // payload byte
    expectFormatError(() => parseLog(concat([h, e, endRec()])), /CRC mismatch/, h.length + 4);
  });

  it("varints that are too long, overflow 64 bits, or are not minimal", () => {
    const h = header();
    expectFormatError(() => parseLog(concat([h, rec(Array(10).fill(0x80), [1], [EventKind.IRQ], [1], [0]), endRec()])), /too long/, h.length + 9);
    expectFormatError(() => parseLog(concat([h, rec([...Array(9).fill(0xff), 0x02], [EventKind.IRQ], [1], [0]), endRec()])), /overflows 64 bits/, h.length + 9);
    expectFormatError(() => parseLog(concat([h, rec([0x85, 0x00], [EventKind.IRQ], [1], [0]), endRec()])), /non-minimal/, h.length + 1);
    // A too-long varint is refused as soon as it is seen, before the record completes.
    const r = new LogReader();
    r.push(h);
    expectFormatError(() => r.push(Uint8Array.from(Array(11).fill(0x80))), /too long/);
    // And the reader stays failed.
    expectFormatError(() => r.push(Uint8Array.of(0)), /too long/);
    expectFormatError(() => r.finish(), /too long/);
  });

  it("payload length beyond the maximum", () => {
    const h = header();
    const len = encodeVarint(BigInt(MAX_PAYLOAD + 1));
    expectFormatError(() => parseLog(concat([h, rec([0], [EventKind.NIC_RX], len), endRec()])), /exceeds 65536/, h.length + 2);
    // The header's configuration has the same limit, refused from its length.
    const bigConfig = rec(LOG_MAGIC, [LOG_VERSION], hash(7), [0], encodeVarint(65537n));
    expectFormatError(() => new LogReader().push(bigConfig), /configuration length 65537 exceeds 65536/, 5 + 1 + 32 + 1);
    const huge = encodeVarint(1n << 40n);
    // Refused from the length alone, without waiting for the payload.
    expectFormatError(() => new LogReader().push(concat([h, Uint8Array.of(0, EventKind.NIC_RX), huge])), /exceeds/, h.length + 2);
  });

  it("mis-sized fixed payloads", () => {
    const h = header();
    expectFormatError(() => parseLog(concat([h, rec([0], [EventKind.RDTSC], [4], [1, 2, 3, 4]), endRec()])), /RDTSC payload must be 8/, h.length + 2);
  });

  it("unknown kinds, with the kind byte's offset", () => {
    const h = header();
    for (const k of [0, 11, 0x7f, 0xfe]) {
      expectFormatError(() => parseLog(concat([h, rec([3], [k], [0]), endRec()])), new RegExp(`unknown event kind ${k}`), h.length + 1);
    }
  });

  it("icount past 2^64-1", () => {
    const h = header(MAX_ICOUNT - 5n);
    expectFormatError(() => parseLog(concat([h, rec([6], [EventKind.IRQ], [1], [0]), endRec()])), /past 2\^64-1/, h.length);
    const h2 = header(MAX_ICOUNT);
    expectFormatError(() => parseLog(concat([h2, endRec(1n)])), /past 2\^64-1/, h2.length);
    expect(parseLog(concat([h2, rec([0], [EventKind.IRQ], [1], [0]), endRec(0n)])).end.finalIcount).toBe(MAX_ICOUNT);
  });

  it("data after the end record", () => {
    expectFormatError(() => parseLog(concat([small, Uint8Array.of(0)])), /after the end record/, small.length);
    expectFormatError(() => parseLog(concat([small, small])), /after the end record/, small.length);
    const r = new LogReader();
    r.push(small);
    expect(r.finish().end.finalIcount).toBe(2_000_000n);
    expectFormatError(() => r.push(Uint8Array.of(1)), /after the end record/, small.length);
  });

  it("missing end record", () => {
    const chunks: Uint8Array[] = [];
    const w = new LogWriter((c) => chunks.push(c), hash(0));
    w.append(1n, EventKind.IRQ, Uint8Array.of(1));
    const bytes = concat(chunks);
    expectFormatError(() => parseLog(bytes), /missing end record/, bytes.length);
  });
});

describe("inspect", () => {
  it("counts entries and bytes per kind, matching the encoding", () => {
    const log = randomLog(5, 200, 77n);
    const bytes = encodeLog(log);
    const p = parseLog(bytes);
    const s = inspect(p.entries, p.header.startIcount);
    expect(s.entries).toBe(200);
    expect(s.firstIcount).toBe(log.entries[0]!.icount);
    expect(s.lastIcount).toBe(log.entries[199]!.icount);
    let total = 0;
    for (const k of KINDS) {
      const mine = log.entries.filter((e) => e.kind === k);
      const name = Object.entries(EventKind).find(([, v]) => v === k)![0];
      if (mine.length === 0) continue;
      expect(s.byKind[name]!.count).toBe(mine.length);
      expect(s.byKind[name]!.payloadBytes).toBe(mine.reduce((n, e) => n + e.payload.length, 0));
      total += s.byKind[name]!.count;
    }
    expect(total).toBe(200);
    // Entry bytes = whole log minus the header and the end record.
    const empty = encodeLog({ ...log, entries: [], end: { ...log.end, finalIcount: log.header.startIcount } });
    const endDelta = encodeVarint(log.end.finalIcount - log.entries[199]!.icount).length;
    expect(s.encodedBytes).toBe(bytes.length - empty.length - (endDelta - 1));
    expect(inspect([])).toEqual({ entries: 0, firstIcount: null, lastIcount: null, payloadBytes: 0, encodedBytes: 0, byKind: {} });
  });
});
