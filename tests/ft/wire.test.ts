// The FT channel's wire format (host/ft/wire.ts, host/ft/frame-reader.ts,
// docs/ft-protocol.md): round trips in chunks of every size, truncation,
// bit flips, keys, numbering, lengths, fuzzing, and LOG frames against the
// log file's own reader.

import fc from "fast-check";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { hashBytes, initHash, toHex } from "../../host/common/hash.js";
import { FrameReader } from "../../host/ft/frame-reader.js";
import {
  decodeFrame,
  encodeFrame,
  FrameType,
  FrameWriter,
  frameTagger,
  logBatches,
  MAX_FRAME_BODY,
  outputBatches,
  sealFrame,
  WireError,
  type Frame,
  type FrameTagger,
  type ReceivedFrame,
} from "../../host/ft/wire.js";
import type { Output } from "../../host/ft/output-gate.js";
import { KINDS } from "../../host/replay/event-kinds.js";
import { encodeLog, encodeVarint, parseLog, type LogEntry } from "../../host/replay/log-format.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (r: () => number, n: number) => Math.floor(r() * n);
const bytes = (r: () => number, n: number) => Uint8Array.from({ length: n }, () => int(r, 256));
const big = (r: () => number, bits: number) => {
  let v = 0n;
  for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(int(r, 65536));
  return v & ((1n << BigInt(bits)) - 1n);
};

/** Valid entries of every kind, non-decreasing from `base`. */
function randomEntries(r: () => number, base: bigint, n: number): LogEntry[] {
  const out: LogEntry[] = [];
  let ic = base;
  for (let i = 0; i < n; i++) {
    ic += int(r, 4) === 0 ? 0n : big(r, 1 + int(r, 40));
    const k = int(r, 9);
    const e =
      k === 0 ? { kind: KINDS.TIME.code, payload: KINDS.TIME.encode(int(r, 2 ** 40)) }
      : k === 1 ? { kind: KINDS.RDTSC.code, payload: KINDS.RDTSC.encode(int(r, 2 ** 40)) }
      : k === 2 ? { kind: KINDS.ENTROPY.code, payload: KINDS.ENTROPY.encode(int(r, 2 ** 32)) }
      : k === 3 ? { kind: KINDS.SERIAL_RX.code, payload: bytes(r, 1 + int(r, 16)) }
      : k === 4 ? { kind: KINDS.NIC_RX.code, payload: bytes(r, 1 + int(r, 300)) }
      : k === 5 ? { kind: KINDS.DISK_COMPLETE.code, payload: KINDS.DISK_COMPLETE.encode(int(r, 5)) }
      : k === 6 ? { kind: KINDS.DISK_READ_DATA.code, payload: KINDS.DISK_READ_DATA.encode({ lba: int(r, 1 << 20), data: bytes(r, 512) }) }
      : k === 7 ? { kind: KINDS.IRQ.code, payload: KINDS.IRQ.encode(32 + int(r, 16)) }
      : { kind: KINDS.WALLCLOCK.code, payload: KINDS.WALLCLOCK.encode(int(r, 2 ** 42)) };
    out.push({ icount: ic, ...e });
  }
  return out;
}

const TYPES: Frame["type"][] = ["hello", "log", "progress", "ack", "release", "heartbeat", "bye", "ran", "pages", "state", "check", "repair", "checkpoint", "outputs"];
const REPLICAS = ["primary", "b", "réplica-ü", "x".repeat(64), "備份"];

function randomFrame(r: () => number, type: Frame["type"]): Frame {
  switch (type) {
    case "hello":
      return { type, role: int(r, 2) ? "primary" : "backup", version: 1 + int(r, 3), configHash: bytes(r, 32), epoch: int(r, 2) ? int(r, 100) : Number.MAX_SAFE_INTEGER, startIcount: big(r, 64), replica: REPLICAS[int(r, REPLICAS.length)]! };
    case "log": {
      const base = big(r, 48);
      return { type, base, entries: randomEntries(r, base, int(r, 12)) };
    }
    case "progress":
    case "ack":
    case "ran":
      return { type, icount: int(r, 3) === 0 ? (1n << 64n) - 1n : big(r, 1 + int(r, 64)) };
    case "release":
      return { type, seq: int(r, 2) ? int(r, 1000) : Number.MAX_SAFE_INTEGER };
    case "heartbeat":
      return { type, ms: int(r, 2 ** 45) };
    case "pages":
      return { type, round: int(r, 9), pages: Array.from({ length: int(r, 5) }, () => ({ index: int(r, 1 << 18), data: int(r, 2) ? null : Uint8Array.from({ length: 4096 }, () => int(r, 256)) })) };
    case "state":
      return { type, icount: big(r, 40), outputSeq: int(r, 100000), stateHash: Uint8Array.from({ length: 32 }, () => int(r, 256)), json: new TextEncoder().encode(`{"cpu":${int(r, 1000)}}`) };
    case "checkpoint":
      return { type, n: 1 + int(r, 1000), icount: big(r, 40), outputSeq: int(r, 100000), pages: int(r, 9000), stateHash: int(r, 2) ? new Uint8Array(32) : bytes(r, 32), json: new TextEncoder().encode(`{"cpu":${int(r, 1000)}}`) };
    case "outputs":
      return { type, n: 1 + int(r, 1000), outputs: randomOutputs(r, int(r, 6)) };
    case "bye":
      return { type, code: int(r, 256), reason: ["", "guest exited", "epoch 3 is stale: ünïcode ✓", "z".repeat(1024)][int(r, 4)]! };
    case "check": {
      let index = -1;
      const pages = Array.from({ length: int(r, 6) }, () => ({ index: (index += 1 + int(r, 3) * int(r, 5000)), hash: bytes(r, 16) }));
      return {
        type, icount: big(r, 40), span: int(r, 3) === 0 ? 1 + int(r, 64) : 1,
        regs: ["eax", "eip", "cs.base", "icount"].slice(0, int(r, 5)).map((name) => ({ name, value: name === "icount" ? big(r, 64) : big(r, 32) })),
        parts: ["machine", "pit", "uart"].slice(0, int(r, 4)).map((name) => ({ name, hash: bytes(r, 16) })),
        pages,
        scrub: { first: int(r, 3) === 0 ? 0 : int(r, 1 << 20), hashes: Array.from({ length: int(r, 4) }, () => bytes(r, 16)) },
      };
    }
    case "repair": {
      if (int(r, 4) === 0) return { type, icount: big(r, 40), full: true, total: 0, first: 0, hashes: [] };
      const n = int(r, 6);
      const first = int(r, 100);
      return { type, icount: big(r, 40), full: false, total: first + n + int(r, 3), first, hashes: Array.from({ length: n }, () => (int(r, 2) ? null : bytes(r, 16))) };
    }
  }
}

/** Outputs of every channel, numbered on from a random start. */
function randomOutputs(r: () => number, n: number): Output[] {
  let seq = 1 + int(r, 1000);
  let icount = big(r, 40);
  return Array.from({ length: n }, (): Output => {
    icount += BigInt(int(r, 500));
    const k = int(r, 6);
    const o = { seq: seq++, icount };
    return k === 0 ? { ...o, channel: "serial", value: int(r, 256) }
      : k === 1 ? { ...o, channel: "debugcon", value: int(r, 256) }
      : k === 2 ? { ...o, channel: "frame", value: bytes(r, int(r, 1515)) }
      : k === 3 ? { ...o, channel: "exit", value: int(r, 2) ? int(r, 256) : 0xffffffff }
      : k === 4 ? { ...o, channel: "disk", value: bytes(r, 512), lba: int(r, 1 << 30) }
      : { ...o, channel: "flush", value: 0 };
  });
}

/** HELLO, then every other type a few times. */
function randomStream(r: () => number): Frame[] {
  const frames: Frame[] = [randomFrame(r, "hello")];
  for (let i = 0; i < 2; i++) {
    for (const t of TYPES.slice(1)) {
      const f = randomFrame(r, t);
      // Raw pages are 4 KiB each: the stream is cut at every byte, so keep it short (raw pages round-trip elsewhere).
      frames.push(f.type === "pages" ? { ...f, pages: f.pages.map((p) => ({ index: p.index, data: null })) } : f);
    }
  }
  return frames;
}

/** HELLO and every other type once, with short bodies: a stream short enough to read in chunks of every size up to its length. */
function shortStream(r: () => number): Frame[] {
  const frames: Frame[] = [randomFrame(r, "hello")];
  for (const t of TYPES.slice(1)) {
    let f = randomFrame(r, t);
    while (f.type === "bye" ? f.reason.length > 100 : f.type === "log" ? f.entries.length === 0 || f.entries.some((e) => e.payload.length > 40) : f.type === "pages" ? f.pages.length === 0 || f.pages.some((p) => p.data !== null) : f.type === "outputs" ? f.outputs.some((o) => o.value instanceof Uint8Array) : false) f = randomFrame(r, t);
    frames.push(f);
  }
  return frames;
}

function encodeStream(frames: Frame[], tagger: FrameTagger): { bytes: Uint8Array; ends: number[] } {
  const w = new FrameWriter(tagger);
  const parts = frames.map((f) => w.encode(f));
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  const ends: number[] = [];
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
    ends.push(o);
  }
  return { bytes, ends };
}

function feed(reader: FrameReader, bytes: Uint8Array, size: number): ReceivedFrame[] {
  const out: ReceivedFrame[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(...reader.push(bytes.subarray(i, i + size)));
  return out;
}

/** Runs `f`, returning the WireError it threw; fails on anything else, or on no throw. */
function wireError(f: () => unknown): WireError {
  try {
    f();
  } catch (e) {
    if (e instanceof WireError) return e;
    throw new Error(`expected a WireError, got ${String(e)}`);
  }
  throw new Error("expected a WireError, nothing was thrown");
}

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
let plain: FrameTagger;
let keyed: FrameTagger;
let otherKey: FrameTagger;

beforeAll(async () => {
  await initHash();
  plain = await frameTagger();
  keyed = await frameTagger(KEY);
  otherKey = await frameTagger(Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 0xff : i)));
});

describe("round trip", () => {
  it("every type, seeded random bodies, keyed and unkeyed, through encodeFrame/decodeFrame", () => {
    const r = rng(1);
    for (let i = 0; i < 40; i++)
      for (const t of TYPES) {
        const f = randomFrame(r, t);
        for (const tg of [plain, keyed]) {
          const n = 1 + int(r, 2 ** 40);
          expect(decodeFrame(encodeFrame(f, n, tg), tg)).toEqual({ number: n, frame: f, offset: 0 });
        }
      }
  });

  it("a stream of every type read back in chunks of every size from 1 to its length", () => {
    const frames = shortStream(rng(2));
    const { bytes, ends } = encodeStream(frames, keyed);
    expect(bytes.length).toBeGreaterThan(300);
    for (let size = 1; size <= bytes.length; size++) {
      const reader = new FrameReader(keyed);
      const got = feed(reader, bytes, size);
      expect(got.map((g) => g.frame)).toEqual(frames);
      expect(got.map((g) => g.number)).toEqual(frames.map((_, i) => i + 1));
      expect(got.map((g) => g.offset)).toEqual([0, ...ends.slice(0, -1)]);
      expect(reader.offset).toBe(bytes.length);
      expect(reader.pending).toBe(0);
      reader.finish();
    }
  });

  it("random chunk boundaries (fast-check, fixed seed)", () => {
    const frames = randomStream(rng(3));
    const { bytes } = encodeStream(frames, plain);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 30 }), (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const reader = new FrameReader(plain);
        const got: Frame[] = [];
        for (let i = 1; i < at.length; i++) got.push(...reader.push(bytes.subarray(at[i - 1], at[i])).map((g) => g.frame));
        reader.finish();
        expect(got).toEqual(frames);
      }),
      { seed: 20260701, numRuns: 200 },
    );
  });

  it("one frame per message (pushMessage)", () => {
    const frames = randomStream(rng(4));
    const w = new FrameWriter(keyed);
    const reader = new FrameReader(keyed);
    expect(frames.flatMap((f) => reader.pushMessage(w.encode(f)).map((g) => g.frame))).toEqual(frames);
    expect(w.sent).toBe(frames.length);
  });

  it("several whole frames per message (pushMessage), at every grouping", () => {
    const frames = randomStream(rng(12));
    const w = new FrameWriter(keyed);
    const encoded = frames.map((f) => w.encode(f));
    const r = rng(13);
    for (let trial = 0; trial < 50; trial++) {
      const reader = new FrameReader(keyed);
      const got: Frame[] = [];
      for (let i = 0; i < encoded.length; ) {
        const n = 1 + Math.floor(r() * 4);
        const group = encoded.slice(i, i + n);
        const msg = new Uint8Array(group.reduce((k, g) => k + g.length, 0));
        group.reduce((at, g) => (msg.set(g, at), at + g.length), 0);
        got.push(...reader.pushMessage(msg).map((g) => g.frame));
        i += n;
      }
      expect(got).toEqual(frames);
    }
  });
});

describe("truncation", () => {
  it("a stream cut at every byte: no error while it waits for more, an error at finish unless cut between frames", () => {
    const frames = randomStream(rng(5));
    const { bytes, ends } = encodeStream(frames, keyed);
    for (let cut = 0; cut < bytes.length; cut++) {
      const reader = new FrameReader(keyed);
      const got = reader.push(bytes.subarray(0, cut));
      const whole = ends.filter((e) => e <= cut).length;
      expect(got.length).toBe(whole);
      const boundary = cut === 0 || ends.includes(cut);
      if (boundary) reader.finish();
      else {
        const e = wireError(() => reader.finish());
        expect(e.reason).toMatch(/stream ends inside a frame/);
        expect(e.offset).toBe(cut);
        expect(wireError(() => reader.push(bytes.subarray(cut)))).toBe(e); // stays failed
      }
    }
  });

  it("one message cut at every byte is refused", () => {
    const f = encodeFrame(randomFrame(rng(6), "log"), 1, plain);
    for (let cut = 0; cut < f.length; cut++) {
      expect(wireError(() => decodeFrame(f.subarray(0, cut), plain)).reason).toMatch(/cut short/);
      expect(wireError(() => new FrameReader(plain).pushMessage(f.subarray(0, cut))).reason).toMatch(cut === 0 ? /an empty message/ : /cut short/);
    }
  });

  it("a message of whole frames that ends inside the next one is refused, at the message's end", () => {
    const w = new FrameWriter(plain);
    const a = w.encode(randomFrame(rng(14), "hello"));
    const b = w.encode({ type: "progress", icount: 5n });
    const msg = new Uint8Array(a.length + b.length - 1);
    msg.set(a);
    msg.set(b.subarray(0, b.length - 1), a.length);
    const e = wireError(() => new FrameReader(plain).pushMessage(msg));
    expect(e.reason).toMatch(/message holds a frame cut short/);
    expect(e.offset).toBe(msg.length);
  });
});

describe("corruption and keys", () => {
  it("every single-bit flip of a frame of every type is refused, with the tag catching every flip after the header", () => {
    const r = rng(7);
    for (const t of TYPES)
      for (const tg of [plain, keyed]) {
        // A raw page is 4 KiB: flipping each of its bits is a minute's work and tests nothing a short frame does not.
        const x = randomFrame(r, t);
        const f = encodeFrame(x.type === "pages" ? { ...x, pages: [{ index: 3, data: null }, { index: 9, data: null }] } : x, 1, tg);
        const bodyStart = f.length - 32 - decodeBodyBytes(f).length;
        for (let bit = 0; bit < f.length * 8; bit++) {
          const g = f.slice();
          g[bit >> 3]! ^= 1 << (bit & 7);
          const e = wireError(() => decodeFrame(g, tg));
          // A streamed copy fails too: at push, or at finish if the flip made the length longer.
          const reader = new FrameReader(tg);
          wireError(() => {
            reader.push(g);
            reader.finish();
          });
          if (bit >> 3 >= bodyStart) expect(e.reason).toMatch(/tag mismatch/);
        }
      }
  });

  it("a flip in the body is refused by the tag at the tag's offset", () => {
    const f = encodeFrame({ type: "ack", icount: 123456n }, 1, plain);
    const g = f.slice();
    g[f.length - 33]! ^= 0x10; // the body's last byte
    const e = wireError(() => decodeFrame(g, plain));
    expect(e.reason).toMatch(/tag mismatch/);
    expect(e.offset).toBe(f.length - 32);
  });

  it("a peer with another key, or none, is refused; the same key is accepted", () => {
    const hello = randomFrame(rng(8), "hello");
    const sealed = encodeFrame(hello, 1, keyed);
    expect(wireError(() => new FrameReader(otherKey).push(sealed)).reason).toMatch(/tag mismatch.*another key/);
    expect(wireError(() => new FrameReader(plain).push(sealed)).reason).toMatch(/tag mismatch/);
    expect(wireError(() => new FrameReader(keyed).push(encodeFrame(hello, 1, plain))).reason).toMatch(/tag mismatch/);
    expect(new FrameReader(keyed).push(sealed)[0]!.frame).toEqual(hello);
    expect(keyed.keyed && !plain.keyed).toBe(true);
  });

  it("a keyed tag is BLAKE3 keyed with the channel key, an unkeyed one plain BLAKE3 (independent computation via hash-wasm)", async () => {
    const { blake3 } = await import("hash-wasm");
    const f = encodeFrame({ type: "heartbeat", ms: 42 }, 7, keyed);
    expect(toHex(f.subarray(f.length - 32))).toBe(await blake3(f.subarray(0, f.length - 32), 256, KEY));
    const g = encodeFrame({ type: "heartbeat", ms: 42 }, 7, plain);
    expect(toHex(g.subarray(g.length - 32))).toBe(await blake3(g.subarray(0, g.length - 32)));
  });
});

describe("numbering", () => {
  const stream = (numbers: number[], tg: FrameTagger) => {
    const r = rng(9);
    return numbers.map((n) => encodeFrame(n === 1 ? randomFrame(r, "hello") : { type: "progress", icount: BigInt(n * 100) }, n, tg));
  };

  it("duplicates and replays of earlier frames are dropped and counted", () => {
    const parts = stream([1, 2, 2, 3, 1, 3, 2, 4], plain);
    const reader = new FrameReader(plain);
    const got = parts.flatMap((p) => reader.push(p));
    expect(got.map((g) => g.number)).toEqual([1, 2, 3, 4]);
    expect(got.slice(1).map((g) => g.frame)).toEqual([2, 3, 4].map((n) => ({ type: "progress", icount: BigInt(n * 100) })));
    expect(reader.dropped).toBe(4);
    expect(reader.last).toBe(4);

    const m = new FrameReader(plain);
    expect(parts.map((p) => m.pushMessage(p)[0]?.number ?? null)).toEqual([1, 2, null, 3, null, null, null, 4]);
    expect(m.dropped).toBe(4);
  });

  it("a gap is refused at the frame's offset, and the reader stays failed", () => {
    const parts = stream([1, 2, 4], plain);
    const reader = new FrameReader(plain);
    reader.push(parts[0]!);
    reader.push(parts[1]!);
    const e = wireError(() => reader.push(parts[2]!));
    expect(e.reason).toMatch(/frame number 4 after 2/);
    expect(e.offset).toBe(parts[0]!.length + parts[1]!.length);
    expect(reader.error).toBe(e);
    expect(wireError(() => reader.push(parts[1]!))).toBe(e);
    expect(wireError(() => reader.finish())).toBe(e);
  });

  it("a stream starting past 1 is a gap", () => {
    expect(wireError(() => new FrameReader(plain).push(stream([2], plain)[0]!)).reason).toMatch(/frame number 2 after 0/);
  });

  it("frame 1 must be HELLO, and no later frame may be", () => {
    const notHello = encodeFrame({ type: "ack", icount: 1n }, 1, plain);
    expect(wireError(() => new FrameReader(plain).push(notHello)).reason).toMatch(/first frame is not HELLO/);
    const r = rng(10);
    const again = [encodeFrame(randomFrame(r, "hello"), 1, plain), encodeFrame(randomFrame(r, "hello"), 2, plain)];
    const reader = new FrameReader(plain);
    reader.push(again[0]!);
    expect(wireError(() => reader.push(again[1]!)).reason).toMatch(/HELLO again/);
  });

  it("frame number 0 is refused; the writer numbers from 1", () => {
    const f = sealFrame(FrameType.ACK, 1, encodeVarint(5n), plain);
    f[6] = 0; // the number's only byte
    expect(wireError(() => decodeFrame(f, plain)).reason).toMatch(/frame number 0/);
    const w = new FrameWriter(plain);
    expect(decodeFrame(w.encode({ type: "ack", icount: 0n }), plain).number).toBe(1);
    expect(decodeFrame(w.encode({ type: "ack", icount: 0n }), plain).number).toBe(2);
  });
});

describe("header refusals", () => {
  const header = (version: number, type: number, number: number, length: number) =>
    Uint8Array.from([0x4c, 0x53, 0x46, 0x54, version, type, ...encodeVarint(BigInt(number)), ...encodeVarint(BigInt(length))]);

  it("a length over the maximum is refused from the header alone, nothing buffered for it", () => {
    const h = header(1, FrameType.LOG, 1, MAX_FRAME_BODY + 1);
    const reader = new FrameReader(plain);
    const e = wireError(() => reader.push(h));
    expect(e.reason).toMatch(/body length 1048577 exceeds 1048576/);
    expect(e.offset).toBe(7);
    // The same header a byte at a time: refused at its last byte.
    const slow = new FrameReader(plain);
    for (let i = 0; i < h.length - 1; i++) expect(slow.push(h.subarray(i, i + 1))).toEqual([]);
    expect(wireError(() => slow.push(h.subarray(h.length - 1))).offset).toBe(7);
  });

  it("a length at the maximum waits for its body holding only what arrived", () => {
    const reader = new FrameReader(plain);
    const h = header(1, FrameType.LOG, 1, MAX_FRAME_BODY);
    expect(reader.push(h)).toEqual([]);
    expect(reader.pending).toBe(h.length);
  });

  it("bad magic, an unknown version, an unknown type: refused at that byte", () => {
    expect(wireError(() => new FrameReader(plain).push(Uint8Array.of(0x4c, 0x53, 0x4c)))).toMatchObject({ offset: 2, reason: expect.stringMatching(/bad magic/) });
    expect(wireError(() => new FrameReader(plain).push(header(2, 1, 1, 0)))).toMatchObject({ offset: 4, reason: expect.stringMatching(/unsupported protocol version 2 \(this reader knows 1\)/) });
    for (const t of [0, 99, 255]) expect(wireError(() => new FrameReader(plain).push(header(1, t, 1, 0)))).toMatchObject({ offset: 5, reason: `unknown frame type ${t}` });
  });

  it("an overlong or non-minimal varint in the header is refused", () => {
    const long = Uint8Array.from([0x4c, 0x53, 0x46, 0x54, 1, 1, ...new Array(10).fill(0x80), 0]);
    expect(wireError(() => new FrameReader(plain).push(long)).reason).toMatch(/frame number: varint too long/);
    const nonMinimal = Uint8Array.from([0x4c, 0x53, 0x46, 0x54, 1, 1, 0x81, 0x00]);
    expect(wireError(() => new FrameReader(plain).push(nonMinimal)).reason).toMatch(/non-minimal/);
  });
});

describe("bodies", () => {
  it("well-sealed bodies no encoder writes are refused with the body's offset", () => {
    const cases: [number, number[], RegExp][] = [
      [FrameType.ACK, [], /ACK: body ends inside icount/],
      [FrameType.ACK, [5, 0], /ACK: 1 bytes after the last field/],
      [FrameType.RELEASE, [...encodeVarint(1n << 53n)], /sequence number 9007199254740992 outside/],
      [FrameType.HELLO, [3], /unknown role 3/],
      [FrameType.HELLO, [1, 0], /protocol version 0 outside 1/],
      [FrameType.BYE, [0, 2, 0xc3, 0x28], /text is not valid UTF-8/],
      [FrameType.BYE, [0, ...encodeVarint(1025n)], /text length 1025 outside 0..1024/],
      [FrameType.LOG, [0, 0, 0xff], /LOG entry 0: unknown event kind 255/],
      [FrameType.LOG, [0, 0, 3, 4, 1, 2, 3, 4], /LOG: body ends inside entry 0/],
      [FrameType.PAGES, [0, ...encodeVarint(241n)], /241 pages: at most 240/],
      [FrameType.PAGES, [0, 1, 7, 2], /page kind 2/],
      [FrameType.PAGES, [0, 1, 7, 1, 0xaa, 0xbb], /PAGES: .*page data/],
      [FrameType.PAGES, [0, 2, 7, 0], /PAGES: body ends inside page index/],
      [FrameType.STATE, [5, 3, 1, 2], /STATE: body ends inside state hash/],
      [FrameType.CHECK, [5, ...encodeVarint(257n)], /CHECK: 257 registers: at most 256/],
      [FrameType.CHECK, [5, 1, 0], /CHECK: register name length 0 outside 1\.\.24/],
      [FrameType.CHECK, [5, 0, ...encodeVarint(65n)], /CHECK: 65 parts: at most 64/],
      [FrameType.CHECK, [5, 0, 1, 1, 0x61, 9], /CHECK: body ends inside part hash/],
      [FrameType.CHECK, [5, 0, 0, 0], /CHECK: page span 0 outside 1\.\./],
      [FrameType.CHECK, [5, 0, 0, 1, ...encodeVarint(50_001n)], /CHECK: 50001 pages: at most 50000/],
      [FrameType.CHECK, [5, 0, 0, 1, 1, 3], /CHECK: body ends inside page hash/],
      [FrameType.CHECK, [5, 0, 0, 1, 0, 0, ...encodeVarint(4097n)], /CHECK: scrub of 4097 pages: at most 4096/],
      [FrameType.CHECK, [5, 0, 0, 1, 0, 0, 1, 9], /CHECK: body ends inside scrub hash/],
      [FrameType.REPAIR, [5, 2], /REPAIR: mode 2/],
      [FrameType.REPAIR, [5, 1, 0], /REPAIR: 1 bytes after the last field/],
      [FrameType.REPAIR, [5, 0, 0], /REPAIR: page total 0 outside 1\.\./],
      [FrameType.REPAIR, [5, 0, 4, 3, 2], /REPAIR: pages 3\+2 outside a RAM of 4 pages/],
      [FrameType.REPAIR, [5, 0, 4, 0, 1, 2], /REPAIR: page kind 2/],
      [FrameType.REPAIR, [5, 0, 4, 0, 1, 1, 7], /REPAIR: body ends inside page hash/],
      [FrameType.CHECKPOINT, [0, 5, 0, 0, ...new Array(32).fill(0)], /CHECKPOINT: checkpoint number 0 outside 1/],
      [FrameType.CHECKPOINT, [1, 5, 0, 3, 1, 2], /CHECKPOINT: body ends inside state hash/],
      [FrameType.OUTPUTS, [0, 0], /OUTPUTS: checkpoint number 0 outside 1/],
      [FrameType.OUTPUTS, [1, ...encodeVarint(513n)], /513 outputs: at most 512/],
      [FrameType.OUTPUTS, [1, 1, 1, 5, 9], /unknown output channel 9/],
      [FrameType.OUTPUTS, [1, 1, 0, 5, 1, 65], /output number 0 outside 1/],
      [FrameType.OUTPUTS, [1, 1, 1, 5, 3, ...encodeVarint(1537n)], /NIC frame of 1537 bytes: at most 1536/],
      [FrameType.OUTPUTS, [1, 1, 1, 5, 5, 7, 1, 2], /OUTPUTS: body ends inside sector data/],
      [FrameType.OUTPUTS, [1, 1, 1, 5, 4, ...encodeVarint(1n << 32n)], /exit status 4294967296 above 2\^32-1/],
      [FrameType.OUTPUTS, [1, 2, 1, 5, 1, 65], /OUTPUTS: body ends inside output number/],
    ];
    for (const [type, body, want] of cases) {
      const f = sealFrame(type, 1, Uint8Array.from(body), plain);
      const e = wireError(() => decodeFrame(f, plain));
      expect(e.reason).toMatch(want);
      expect(e.offset).toBeGreaterThanOrEqual(8);
      expect(e.offset).toBeLessThanOrEqual(f.length - 32);
    }
  });

  it("a LOG entry with a bad CRC is refused even under a good tag", () => {
    const body = encodeFrame({ type: "log", base: 0n, entries: [{ icount: 5n, kind: KINDS.IRQ.code, payload: Uint8Array.of(32) }] }, 1, plain).subarray(8, -32).slice();
    body[body.length - 1]! ^= 1;
    expect(wireError(() => decodeFrame(sealFrame(FrameType.LOG, 1, body, plain), plain)).reason).toMatch(/LOG entry 0: CRC mismatch/);
  });

  it("the encoders refuse what they cannot send", () => {
    const hash = new Uint8Array(32);
    expect(() => encodeFrame({ type: "hello", role: "backup", version: 1, configHash: hash, epoch: 1, startIcount: 0n, replica: "" }, 1, plain)).toThrow(RangeError);
    expect(() => encodeFrame({ type: "hello", role: "backup", version: 1, configHash: hash, epoch: 1, startIcount: 0n, replica: "x".repeat(65) }, 1, plain)).toThrow(RangeError);
    expect(() => encodeFrame({ type: "hello", role: "backup", version: 1, configHash: hash.subarray(1), epoch: 1, startIcount: 0n, replica: "b" }, 1, plain)).toThrow(RangeError);
    expect(() => encodeFrame({ type: "ack", icount: 1n << 64n }, 1, plain)).toThrow(RangeError);
    expect(() => encodeFrame({ type: "release", seq: -1 }, 1, plain)).toThrow(RangeError);
    expect(() => encodeFrame({ type: "bye", code: 256, reason: "" }, 1, plain)).toThrow(RangeError);
    expect(() => encodeFrame({ type: "checkpoint", n: 0, icount: 1n, outputSeq: 0, pages: 0, stateHash: hash, json: new Uint8Array() }, 1, plain)).toThrow(RangeError);
    expect(() => encodeFrame({ type: "outputs", n: 1, outputs: [{ seq: 1, icount: 1n, channel: "serial", value: 256 }] }, 1, plain)).toThrow(/serial byte must be 0..255/);
    expect(() => encodeFrame({ type: "outputs", n: 1, outputs: [{ seq: 1, icount: 1n, channel: "disk", value: new Uint8Array(511), lba: 3 }] }, 1, plain)).toThrow(/sector of 512..512 bytes/);
    expect(() => encodeFrame({ type: "outputs", n: 1, outputs: Array.from({ length: 513 }, (_, i) => ({ seq: i + 1, icount: 1n, channel: "flush" as const, value: 0 })) }, 1, plain)).toThrow(/at most 512/);
    expect(outputBatches(3, Array.from({ length: 1025 }, (_, i) => ({ seq: i + 1, icount: 1n, channel: "flush" as const, value: 0 }))).map((f) => (f as { outputs: Output[] }).outputs.length)).toEqual([512, 512, 1]);
    expect(() => encodeFrame({ type: "ack", icount: 1n }, 0, plain)).toThrow(RangeError);
    expect(() => encodeFrame({ type: "log", base: 10n, entries: [{ icount: 9n, kind: KINDS.IRQ.code, payload: Uint8Array.of(1) }] }, 1, plain)).toThrow(/before the previous icount/);
    const big = Array.from({ length: 17 }, (_, i) => ({ icount: BigInt(i), kind: KINDS.NIC_RX.code, payload: new Uint8Array(65536) }));
    expect(() => encodeFrame({ type: "log", base: 0n, entries: big }, 1, plain)).toThrow(/exceeds 1048576/);
    const batches = logBatches(0n, big);
    expect(batches.length).toBe(2);
    const w = new FrameWriter(plain);
    const back = batches.flatMap((b) => (decodeFrame(w.encode(b), plain).frame as { entries: LogEntry[] }).entries);
    // (Compared by hash: toEqual over 1 MiB of typed arrays is slow.)
    const digest = (es: LogEntry[]) => es.map((e) => `${e.icount}:${e.kind}:${toHex(hashBytes(e.payload))}`);
    expect(digest(back)).toEqual(digest(big));
  });
});

describe("LOG frames carry the log file's entries", () => {
  it("decode to the LogEntry values the log file's reader gives, and hold its exact entry bytes", () => {
    const r = rng(11);
    for (let round = 0; round < 20; round++) {
      const start = big(r, 40);
      const entries = randomEntries(r, start, 1 + int(r, 60));
      const last = entries.at(-1)!.icount;
      const file = encodeLog({ header: { configHash: bytes(r, 32), startIcount: start }, entries, end: { finalIcount: last, guestNs: 1n, outputDigest: new Uint8Array(32), stateHash: new Uint8Array(32) } });
      const fromFile = parseLog(file).entries.map(({ icount, kind, payload }) => ({ icount, kind, payload }));
      // Small batches, so that bases other than the start are used.
      const w = new FrameWriter(keyed);
      const reader = new FrameReader(keyed);
      reader.push(w.encode(randomFrame(r, "hello")));
      const frames = logBatches(start, entries, 200 + int(r, 2000)).map((f) => w.encode(f));
      const got = frames.flatMap((f) => reader.push(f)).flatMap((g) => (g.frame as { entries: LogEntry[] }).entries);
      expect(got).toEqual(fromFile);
      // The entries' bytes, batch after batch, are the file's bytes between its header and its end record.
      const entryBytes = frames.map((f) => {
        const body = decodeBodyBytes(f);
        return body.subarray(encodeVarint((decodeFrame(f, keyed, 0).frame as { base: bigint }).base).length);
      });
      const firstEntry = parseLog(file).entries[0]!.offset!;
      const joined = Uint8Array.from(entryBytes.flatMap((b) => [...b]));
      expect(toHex(file.subarray(firstEntry, firstEntry + joined.length))).toBe(toHex(joined));
      expect(file[firstEntry + joined.length + varintLength0(file, firstEntry + joined.length)]).toBe(0xff); // the end record follows
    }
  });
});

/** A frame's body bytes, from its header's length (the test reads the layout itself, as docs/ft-protocol.md gives it). */
function decodeBodyBytes(f: Uint8Array): Uint8Array {
  let p = 6;
  while (f[p]! & 0x80) p++;
  p++;
  let len = 0;
  for (let s = 0; ; s += 7) {
    len |= (f[p]! & 0x7f) << s;
    if (!(f[p++]! & 0x80)) break;
  }
  return f.subarray(p, p + len);
}
function varintLength0(b: Uint8Array, p: number): number {
  let n = 1;
  while (b[p++]! & 0x80) n++;
  return n;
}

describe("fuzz: a peer can make the reader throw only WireError", () => {
  const onlyWireErrors = (f: () => void) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
    }
  };

  it("random bytes, in random chunks", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 1, max: 64 }), fc.boolean(), (b, size, magic) => {
        const data = magic ? Uint8Array.from([0x4c, 0x53, 0x46, 0x54, 1, ...b]) : b;
        onlyWireErrors(() => {
          const reader = new FrameReader(plain);
          feed(reader, data, size);
          reader.finish();
        });
        onlyWireErrors(() => decodeFrame(data, plain));
      }),
      { seed: 1234, numRuns: 2000 },
    );
  });

  it("valid streams with bytes overwritten, inserted and deleted", () => {
    const { bytes } = encodeStream(randomStream(rng(12)), plain);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 })), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 500 }), (edits, size) => {
        const b = [...bytes];
        for (const [at, v, op] of edits) {
          if (op === 0) b[at % b.length] = v;
          else if (op === 1) b.splice(at % (b.length + 1), 0, v);
          else b.splice(at % b.length, 1);
        }
        onlyWireErrors(() => {
          const reader = new FrameReader(plain);
          feed(reader, Uint8Array.from(b), size);
          reader.finish();
        });
      }),
      { seed: 5678, numRuns: 500 },
    );
  });

  it("random bodies under valid tags, of every type (the body decoders)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 14 }), fc.uint8Array({ maxLength: 200 }), fc.boolean(), (type, body, lead) => {
        // A plausible start makes the decoders go deeper than the first field.
        const b = lead && type === FrameType.LOG ? Uint8Array.from([0, 1, 3, ...body]) : lead && type === FrameType.HELLO ? Uint8Array.from([1, 1, ...new Array(32).fill(7), ...body]) : body;
        onlyWireErrors(() => decodeFrame(sealFrame(type, 1, b, plain), plain));
      }),
      { seed: 9012, numRuns: 3000 },
    );
  });
});

describe("docs/ft-protocol.md", () => {
  it("holds the example frames this test generates", () => {
    const hex = (b: Uint8Array) => toHex(b).replace(/(..)(?!$)/g, "$1 ").replace(/((?:.. ){16})/g, "$1\n").replace(/ \n/g, "\n").trim();
    const ack = encodeFrame({ type: "ack", icount: 1000n }, 2, plain);
    const logFrame = encodeFrame({ type: "log", base: 5000n, entries: [{ icount: 5010n, kind: KINDS.IRQ.code, payload: Uint8Array.of(0x20) }] }, 3, keyed);
    const doc = readFileSync(new URL("../../docs/ft-protocol.md", import.meta.url), "utf8");
    for (const example of [
      `ACK of icount 1000 as frame 2, no key:\n\n\`\`\`\n${hex(ack)}\n\`\`\``,
      `LOG of one IRQ entry (vector 0x20 at icount 5010, base 5000) as frame 3, key 00 01 02 .. 1f:\n\n\`\`\`\n${hex(logFrame)}\n\`\`\``,
    ])
      expect(doc, `docs/ft-protocol.md should contain:\n${example}`).toContain(example);
  });
});
