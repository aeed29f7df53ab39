// The fault-tolerant pair's channel protocol: the one framed, versioned wire
// format that every transport (in-process, worker MessagePort, TCP) carries
// between primary and backup. A pure codec over Uint8Array/DataView, so it
// runs in a browser as it is. Byte-by-byte description: docs/ft-protocol.md.
//
//   frame = "LSFT" version:u8 type:u8 number:varint length:varint body:length tag:32
//
// The tag is BLAKE3 of every byte before it, keyed with the channel's 32-byte
// pre-shared key when there is one. LOG bodies carry log entries in exactly
// the replay log's entry encoding (host/replay/log-format.ts encodeEntry /
// readEntry), so a backup can write what it received to a log file unchanged.
// The streaming reader, with the numbering rules, is host/ft/frame-reader.ts.

import { createKeyedHash, createStreamHash } from "../common/hash.js";
import {
  encodeEntry,
  encodeVarint,
  HASH_BYTES,
  LogFormatError,
  MAX_ICOUNT,
  NEED_MORE,
  readEntry,
  readVarint,
  varintLength,
  type LogEntry,
} from "../replay/log-format.js";
import type { Output, OutputChannel } from "./output-gate.js";

export const WIRE_MAGIC = new Uint8Array([0x4c, 0x53, 0x46, 0x54]); // "LSFT"
export const WIRE_VERSION = 1;
/** Largest body a frame may carry; a reader refuses a larger length before reading the body. */
export const MAX_FRAME_BODY = 1 << 20;
export const TAG_BYTES = 32;
/** Longest header: magic, version, type and two 10-byte varints. */
export const MAX_HEADER = 4 + 1 + 1 + 10 + 10;
/** Shortest frame: a 1-byte number, an empty body. Above MAX_HEADER, so a reader may take MAX_HEADER bytes before it knows a frame's length. */
export const MIN_FRAME = 4 + 1 + 1 + 1 + 1 + TAG_BYTES;
export const MAX_FRAME = MAX_HEADER + MAX_FRAME_BODY + TAG_BYTES;
export const MAX_REPLICA_BYTES = 64;
export const MAX_BYE_TEXT = 1024;
export const PAGE_BYTES = 4096;
/** Pages in one PAGES frame: its body stays under MAX_FRAME_BODY. */
export const MAX_FRAME_PAGES = 240;
/** Bytes of a page's or a part's hash in CHECK and REPAIR (BLAKE3 cut to 128 bits: host/ft/divergence.ts). */
export const SHORT_HASH_BYTES = 16;
/** Named registers in a CHECK, parts (device state), and a register's name length. */
export const MAX_CHECK_REGS = 256;
export const MAX_CHECK_PARTS = 64;
export const MAX_CHECK_NAME = 24;
/** Page entries in one CHECK or REPAIR frame: the body stays under MAX_FRAME_BODY. */
export const MAX_CHECK_PAGES = 50_000;
/** Pages a CHECK's scrub may cover. */
export const MAX_SCRUB_PAGES = 4096;
/** Outputs in one OUTPUTS frame (a NIC frame or a disk sector each at most: the body stays under MAX_FRAME_BODY). */
export const MAX_FRAME_OUTPUTS = 512;
/** Longest output value on the wire: a NIC frame (the device's own limit is far below). */
export const MAX_OUTPUT_BYTES = 1536;

/** Frame type codes: the wire's bytes, never renumber one. 0 is reserved. */
export const FrameType = { HELLO: 1, LOG: 2, PROGRESS: 3, ACK: 4, RELEASE: 5, HEARTBEAT: 6, BYE: 7, RAN: 8, PAGES: 9, STATE: 10, CHECK: 11, REPAIR: 12, CHECKPOINT: 13, OUTPUTS: 14 } as const;
type TypeName = Frame["type"];
const TYPE_CODE: Record<TypeName, number> = {
  hello: FrameType.HELLO,
  log: FrameType.LOG,
  progress: FrameType.PROGRESS,
  ack: FrameType.ACK,
  release: FrameType.RELEASE,
  heartbeat: FrameType.HEARTBEAT,
  bye: FrameType.BYE,
  ran: FrameType.RAN,
  pages: FrameType.PAGES,
  state: FrameType.STATE,
  check: FrameType.CHECK,
  repair: FrameType.REPAIR,
  checkpoint: FrameType.CHECKPOINT,
  outputs: FrameType.OUTPUTS,
};
const TYPE_NAME = new Map<number, TypeName>(Object.entries(TYPE_CODE).map(([n, c]) => [c, n as TypeName]));

export function isKnownFrameType(code: number): boolean {
  return TYPE_NAME.has(code);
}

/** BYE reason codes. A reader accepts any u8: a BYE ends the channel whatever its reason. */
export const ByeCode = { STOP: 0, GUEST_EXITED: 1, CONFIG_MISMATCH: 2, STALE_EPOCH: 3, PROTOCOL_ERROR: 4 } as const;

export type WireRole = "primary" | "backup";
const ROLE_CODE: Record<WireRole, number> = { primary: 1, backup: 2 };

export type Frame =
  /** First frame each way: who I am, which protocol versions I speak, which VM I run. */
  | { type: "hello"; role: WireRole; version: number; configHash: Uint8Array; epoch: number; startIcount: bigint; replica: string }
  /** Log entries in order; the first entry's delta is relative to `base`. */
  | { type: "log"; base: bigint; entries: LogEntry[] }
  /** The primary's instruction count: the backup may run up to it. */
  | { type: "progress"; icount: bigint }
  /** The backup holds the log up to this instruction count. */
  | { type: "ack"; icount: bigint }
  /** The backup's guest has run to this instruction count (flow control: how far behind it runs). */
  | { type: "ran"; icount: bigint }
  /** The primary's highest released output sequence number. */
  | { type: "release"; seq: number }
  /** State transfer to a new backup: guest RAM pages (4 KiB each; null: all zero) of a pre-copy round. */
  | { type: "pages"; round: number; pages: { index: number; data: Uint8Array | null }[] }
  /**
   * State transfer, last: the machine at instruction `icount` — its state
   * without RAM (canonical JSON), the last output number made, the state
   * hash over it and the RAM the PAGES built — after which the log follows.
   */
  | { type: "state"; icount: bigint; outputSeq: number; stateHash: Uint8Array; json: Uint8Array }
  /**
   * A divergence check (host/ft/divergence.ts): the primary's digest at
   * instruction `icount` — its registers by name, a hash of each part of
   * the device state, and a hash per entry of the pages dirtied since the
   * last check (entry n covers pages [n*span, (n+1)*span); span is 1 unless
   * the pages would not fit one frame); and the scrub: a hash of each page
   * from `first` on, dirty or not, so that RAM the dirty tracker did not
   * see change is compared too, a stretch per check.
   */
  | { type: "check"; icount: bigint; regs: { name: string; value: bigint }[]; parts: { name: string; hash: Uint8Array }[]; span: number; pages: { index: number; hash: Uint8Array }[]; scrub: { first: number; hashes: Uint8Array[] } }
  /**
   * A backup that found a divergence at `icount` asks for repair: `full`, a
   * whole transfer; else its RAM's page hashes (null: an all-zero page), a
   * frame holding pages [first, first + hashes.length) of `total`.
   */
  | { type: "repair"; icount: bigint; full: boolean; total: number; first: number; hashes: (Uint8Array | null)[] }
  /**
   * Checkpoint mode (docs/ft-checkpoint.md), last frame of checkpoint `n`:
   * the machine at instruction `icount`, its state without RAM (canonical
   * JSON), `pages` pages sent before it in PAGES frames of round `n`, the
   * outputs up to number `outputSeq` made (those after the last checkpoint's
   * came in OUTPUTS frames), and the state hash over all of it (all zero:
   * not computed).
   */
  | { type: "checkpoint"; n: number; icount: bigint; outputSeq: number; pages: number; stateHash: Uint8Array; json: Uint8Array }
  /** Checkpoint mode: outputs the guest made during checkpoint `n`'s epoch, in number order. */
  | { type: "outputs"; n: number; outputs: Output[] }
  /** The sender's monotonic time in ms (informational). */
  | { type: "heartbeat"; ms: number }
  /** An orderly stop: a ByeCode and a text. */
  | { type: "bye"; code: number; reason: string };

/** A frame as a reader accepted it. */
export interface ReceivedFrame {
  number: number;
  frame: Frame;
  /** Stream offset of the frame's first byte. */
  offset: number;
}

/** Anything a peer sent that is not a valid frame. After one, a reader stays failed. */
export class WireError extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`ft wire: ${reason} at byte ${offset}`);
    this.name = "WireError";
  }
}

// ---------------------------------------------------------------- tag

/** Computes frame tags: keyed BLAKE3 with the channel key, or plain BLAKE3 without one. */
export interface FrameTagger {
  readonly keyed: boolean;
  tag(bytes: Uint8Array): Uint8Array;
}

/** A tagger for a channel with the pre-shared 32-byte `key`, or without a key (the tag then only catches corruption). */
export async function frameTagger(key?: Uint8Array | null): Promise<FrameTagger> {
  const h = key ? await createKeyedHash(key) : await createStreamHash();
  return {
    keyed: !!key,
    tag(bytes) {
      h.init();
      h.update(bytes);
      return h.digest("binary");
    },
  };
}

/** Compares without stopping at the first difference, so the time taken says nothing about where a forged tag went wrong. */
function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  let d = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

// ---------------------------------------------------------------- bodies: encode

const utf8 = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function safeVarint(v: number, what: string, min = 0): Uint8Array {
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${what} must be a safe integer >= ${min}, got ${v}`);
  return encodeVarint(BigInt(v));
}

function icountVarint(v: bigint, what: string): Uint8Array {
  if (typeof v !== "bigint" || v < 0n || v > MAX_ICOUNT) throw new RangeError(`${what} must be a bigint in 0..2^64-1, got ${v}`);
  return encodeVarint(v);
}

function shortHash(h: Uint8Array, what: string): Uint8Array {
  if (!(h instanceof Uint8Array) || h.length !== SHORT_HASH_BYTES) throw new RangeError(`${what}: a hash must be ${SHORT_HASH_BYTES} bytes`);
  return h;
}

function text(s: string, max: number, what: string, min = 0): Uint8Array[] {
  const b = utf8.encode(s);
  if (b.length < min || b.length > max) throw new RangeError(`${what} must be ${min}..${max} bytes of UTF-8, got ${b.length}`);
  return [encodeVarint(BigInt(b.length)), b];
}

/** The body bytes of `frame`. Throws RangeError/TypeError for a frame that cannot be sent. */
export function encodeBody(frame: Frame): Uint8Array {
  switch (frame.type) {
    case "hello": {
      const role = ROLE_CODE[frame.role];
      if (!role) throw new RangeError(`unknown role ${String(frame.role)}`);
      if (!(frame.configHash instanceof Uint8Array) || frame.configHash.length !== HASH_BYTES) throw new RangeError(`config hash must be ${HASH_BYTES} bytes`);
      return concat([
        Uint8Array.of(role),
        safeVarint(frame.version, "protocol version", 1),
        frame.configHash,
        safeVarint(frame.epoch, "epoch"),
        icountVarint(frame.startIcount, "start icount"),
        ...text(frame.replica, MAX_REPLICA_BYTES, "replica id", 1),
      ]);
    }
    case "log": {
      const parts = [icountVarint(frame.base, "LOG base icount")];
      let prev = frame.base;
      for (const e of frame.entries) {
        parts.push(encodeEntry(prev, e.icount, e.kind, e.payload));
        prev = e.icount;
      }
      return concat(parts);
    }
    case "progress":
    case "ack":
    case "ran":
      return icountVarint(frame.icount, `${frame.type} icount`);
    case "release":
      return safeVarint(frame.seq, "release sequence number");
    case "pages": {
      if (frame.pages.length > MAX_FRAME_PAGES) throw new RangeError(`PAGES of ${frame.pages.length} pages: at most ${MAX_FRAME_PAGES}`);
      const parts = [safeVarint(frame.round, "PAGES round"), safeVarint(frame.pages.length, "PAGES count")];
      for (const p of frame.pages) {
        parts.push(safeVarint(p.index, "page index"));
        if (p.data === null) parts.push(Uint8Array.of(0));
        else {
          if (p.data.length !== PAGE_BYTES) throw new RangeError(`page ${p.index}: ${p.data.length} bytes, not ${PAGE_BYTES}`);
          parts.push(Uint8Array.of(1), p.data);
        }
      }
      return concat(parts);
    }
    case "state":
      if (frame.stateHash.length !== HASH_BYTES) throw new RangeError(`state hash must be ${HASH_BYTES} bytes`);
      return concat([icountVarint(frame.icount, "STATE icount"), safeVarint(frame.outputSeq, "STATE output number"), frame.stateHash, frame.json]);
    case "check": {
      if (frame.regs.length > MAX_CHECK_REGS) throw new RangeError(`CHECK of ${frame.regs.length} registers: at most ${MAX_CHECK_REGS}`);
      if (frame.parts.length > MAX_CHECK_PARTS) throw new RangeError(`CHECK of ${frame.parts.length} parts: at most ${MAX_CHECK_PARTS}`);
      if (frame.pages.length > MAX_CHECK_PAGES) throw new RangeError(`CHECK of ${frame.pages.length} pages: at most ${MAX_CHECK_PAGES}`);
      const parts = [icountVarint(frame.icount, "CHECK icount"), safeVarint(frame.regs.length, "CHECK register count")];
      for (const r of frame.regs) parts.push(...text(r.name, MAX_CHECK_NAME, "register name", 1), icountVarint(r.value, `register ${r.name}`));
      parts.push(safeVarint(frame.parts.length, "CHECK part count"));
      for (const p of frame.parts) parts.push(...text(p.name, MAX_CHECK_NAME, "part name", 1), shortHash(p.hash, `part ${p.name}`));
      parts.push(safeVarint(frame.span, "CHECK page span", 1), safeVarint(frame.pages.length, "CHECK page count"));
      let next = 0;
      for (const p of frame.pages) {
        // Indices strictly increase: each is sent as its gap from the one after the last.
        if (!Number.isSafeInteger(p.index) || p.index < next) throw new RangeError(`CHECK page indices must increase, got ${p.index} after ${next - 1}`);
        parts.push(safeVarint(p.index - next, "page index gap"), shortHash(p.hash, `page ${p.index}`));
        next = p.index + 1;
      }
      if (frame.scrub.hashes.length > MAX_SCRUB_PAGES) throw new RangeError(`CHECK scrub of ${frame.scrub.hashes.length} pages: at most ${MAX_SCRUB_PAGES}`);
      parts.push(safeVarint(frame.scrub.first, "CHECK scrub first page"), safeVarint(frame.scrub.hashes.length, "CHECK scrub count"));
      for (const h of frame.scrub.hashes) parts.push(shortHash(h, "scrub page"));
      return concat(parts);
    }
    case "repair": {
      const head = [icountVarint(frame.icount, "REPAIR icount"), Uint8Array.of(frame.full ? 1 : 0)];
      if (frame.full) return concat(head);
      if (frame.hashes.length > MAX_CHECK_PAGES) throw new RangeError(`REPAIR of ${frame.hashes.length} pages: at most ${MAX_CHECK_PAGES}`);
      if (!Number.isSafeInteger(frame.total) || frame.total < 1 || frame.first + frame.hashes.length > frame.total) throw new RangeError(`REPAIR pages ${frame.first}+${frame.hashes.length} outside a RAM of ${frame.total} pages`);
      const parts = [...head, safeVarint(frame.total, "REPAIR page total", 1), safeVarint(frame.first, "REPAIR first page"), safeVarint(frame.hashes.length, "REPAIR page count")];
      for (const h of frame.hashes) parts.push(h === null ? Uint8Array.of(0) : concat([Uint8Array.of(1), shortHash(h, "page hash")]));
      return concat(parts);
    }
    case "checkpoint":
      if (frame.stateHash.length !== HASH_BYTES) throw new RangeError(`state hash must be ${HASH_BYTES} bytes`);
      return concat([
        safeVarint(frame.n, "checkpoint number", 1),
        icountVarint(frame.icount, "CHECKPOINT icount"),
        safeVarint(frame.outputSeq, "CHECKPOINT output number"),
        safeVarint(frame.pages, "CHECKPOINT page count"),
        frame.stateHash,
        frame.json,
      ]);
    case "outputs": {
      if (frame.outputs.length > MAX_FRAME_OUTPUTS) throw new RangeError(`OUTPUTS of ${frame.outputs.length} outputs: at most ${MAX_FRAME_OUTPUTS}`);
      const parts = [safeVarint(frame.n, "checkpoint number", 1), safeVarint(frame.outputs.length, "OUTPUTS count")];
      for (const o of frame.outputs) parts.push(...encodeOutput(o));
      return concat(parts);
    }
    case "heartbeat":
      return safeVarint(frame.ms, "heartbeat time");
    case "bye":
      if (!Number.isInteger(frame.code) || frame.code < 0 || frame.code > 255) throw new RangeError(`BYE code must be 0..255, got ${frame.code}`);
      return concat([Uint8Array.of(frame.code), ...text(frame.reason, MAX_BYE_TEXT, "BYE text")]);
    default:
      throw new RangeError(`unknown frame type ${String((frame as { type: unknown }).type)}`);
  }
}

/** Output channels by their wire code (OUTPUTS frames): never renumber one. */
const CHANNEL_CODE: Record<OutputChannel, number> = { serial: 1, debugcon: 2, frame: 3, exit: 4, disk: 5, flush: 6 };
const CHANNEL_NAME = new Map<number, OutputChannel>(Object.entries(CHANNEL_CODE).map(([n, c]) => [c, n as OutputChannel]));
const SECTOR_BYTES = 512;

/** One output's bytes in an OUTPUTS body: seq, icount, channel, then the channel's value. */
function encodeOutput(o: Output): Uint8Array[] {
  const head = [safeVarint(o.seq, "output number", 1), icountVarint(o.icount, "output icount"), Uint8Array.of(CHANNEL_CODE[o.channel] ?? 0)];
  const bytes = (what: string, max: number, min = 0): Uint8Array => {
    if (!(o.value instanceof Uint8Array) || o.value.length < min || o.value.length > max) throw new RangeError(`output ${o.seq}: a ${what} of ${min}..${max} bytes`);
    return o.value;
  };
  const byte = (): Uint8Array => {
    if (typeof o.value !== "number" || !Number.isInteger(o.value) || o.value < 0 || o.value > 255) throw new RangeError(`output ${o.seq}: a ${o.channel} byte must be 0..255`);
    return Uint8Array.of(o.value);
  };
  switch (o.channel) {
    case "serial":
    case "debugcon":
      return [...head, byte()];
    case "exit":
      if (typeof o.value !== "number") throw new RangeError(`output ${o.seq}: an exit status must be a number`);
      return [...head, safeVarint(o.value, "exit status")];
    case "frame": {
      const f = bytes("NIC frame", MAX_OUTPUT_BYTES);
      return [...head, encodeVarint(BigInt(f.length)), f];
    }
    case "disk":
      return [...head, safeVarint(o.lba ?? -1, "disk output sector"), bytes("sector", SECTOR_BYTES, SECTOR_BYTES)];
    case "flush":
      return head;
    default:
      throw new RangeError(`output ${o.seq}: unknown channel ${String(o.channel)}`);
  }
}

/** Splits a checkpoint's outputs into OUTPUTS frames that fit. */
export function outputBatches(n: number, outputs: readonly Output[]): Frame[] {
  const out: Frame[] = [];
  for (let i = 0; i < outputs.length; i += MAX_FRAME_OUTPUTS) out.push({ type: "outputs", n, outputs: outputs.slice(i, i + MAX_FRAME_OUTPUTS) });
  return out;
}

// ---------------------------------------------------------------- frames: encode

/** The whole frame: header, body, tag. `number` is the frame's number on its channel (1 for the first). */
export function encodeFrame(frame: Frame, number: number, tagger: FrameTagger): Uint8Array {
  const body = encodeBody(frame);
  if (body.length > MAX_FRAME_BODY) throw new RangeError(`${frame.type} body of ${body.length} bytes exceeds ${MAX_FRAME_BODY} (split the batch: logBatches)`);
  return sealFrame(TYPE_CODE[frame.type], number, body, tagger);
}

/**
 * A frame around any body bytes, with a valid tag. encodeFrame's last step;
 * exported so tests can hand a reader well-sealed frames with bodies no
 * encoder would write.
 */
export function sealFrame(typeCode: number, number: number, body: Uint8Array, tagger: FrameTagger): Uint8Array {
  const head = concat([WIRE_MAGIC, Uint8Array.of(WIRE_VERSION, typeCode), safeVarint(number, "frame number", 1), encodeVarint(BigInt(body.length))]);
  const out = new Uint8Array(head.length + body.length + TAG_BYTES);
  out.set(head, 0);
  out.set(body, head.length);
  out.set(tagger.tag(out.subarray(0, head.length + body.length)), head.length + body.length);
  return out;
}

/** Numbers the frames it encodes: 1 for the first, +1 for each after it. */
export class FrameWriter {
  private n = 0;
  constructor(private readonly tagger: FrameTagger) {}

  /** The number of the last frame encoded (0 before the first). */
  get sent(): number {
    return this.n;
  }

  encode(frame: Frame): Uint8Array {
    const bytes = encodeFrame(frame, this.n + 1, this.tagger);
    this.n++;
    return bytes;
  }
}

/**
 * Splits entries into LOG frames whose bodies fit `maxBody`: each batch's base
 * is the previous batch's last icount, so the deltas are those of one log.
 */
export function logBatches(base: bigint, entries: readonly LogEntry[], maxBody = MAX_FRAME_BODY): Frame[] {
  const out: Frame[] = [];
  let batch: LogEntry[] = [];
  let batchBase = base;
  let size = varintLength(base);
  let prev = base;
  for (const e of entries) {
    const n = varintLength(e.icount - prev) + 1 + varintLength(BigInt(e.payload.length)) + e.payload.length + 4;
    if (batch.length > 0 && size + n > maxBody) {
      out.push({ type: "log", base: batchBase, entries: batch });
      batch = [];
      batchBase = prev;
      size = varintLength(prev);
    }
    batch.push(e);
    size += n;
    prev = e.icount;
  }
  if (batch.length > 0) out.push({ type: "log", base: batchBase, entries: batch });
  return out;
}

// ---------------------------------------------------------------- frames: decode

/** A frame's header and tag, checked; its body not yet decoded. */
export interface FrameBounds {
  /** Position of the frame's first byte. */
  start: number;
  typeCode: number;
  number: number;
  bodyStart: number;
  bodyEnd: number;
  /** Position after the tag. */
  end: number;
}

/** Not a whole frame yet: `total` is its whole length once the header has been read, else null. */
export interface NeedMoreBytes {
  more: true;
  total: number | null;
}

function varintAt(buf: Uint8Array, pos: number, limit: number, base: number, what: string): [bigint, number] | null {
  try {
    const r = readVarint(buf, pos, limit, base, what);
    return r === NEED_MORE ? null : r;
  } catch (e) {
    if (e instanceof LogFormatError) throw new WireError(e.offset, e.reason);
    throw e;
  }
}

/**
 * Checks the frame starting at buf[pos] (bytes up to `limit` are present;
 * `base` turns positions into stream offsets): magic, version, type, number,
 * length (refused before the body is read), then the tag once every byte is
 * there. Never reads past `limit`.
 */
export function frameBoundsAt(buf: Uint8Array, pos: number, limit: number, base: number, tagger: FrameTagger): FrameBounds | NeedMoreBytes {
  const partial: NeedMoreBytes = { more: true, total: null };
  for (let i = 0; i < WIRE_MAGIC.length; i++) {
    if (pos + i >= limit) return partial;
    if (buf[pos + i] !== WIRE_MAGIC[i]) throw new WireError(base + pos + i, "bad magic (not an LSFT frame)");
  }
  let p = pos + 4;
  if (p >= limit) return partial;
  if (buf[p] !== WIRE_VERSION) throw new WireError(base + p, `unsupported protocol version ${buf[p]} (this reader knows ${WIRE_VERSION})`);
  p++;
  if (p >= limit) return partial;
  const typeCode = buf[p]!;
  if (!isKnownFrameType(typeCode)) throw new WireError(base + p, `unknown frame type ${typeCode}`);
  p++;
  const numberAt = p;
  const n = varintAt(buf, p, limit, base, "frame number");
  if (!n) return partial;
  if (n[0] === 0n) throw new WireError(base + numberAt, "frame number 0 (numbering starts at 1)");
  if (n[0] > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(base + numberAt, `frame number ${n[0]} above 2^53-1`);
  p = n[1];
  const lengthAt = p;
  const l = varintAt(buf, p, limit, base, "body length");
  if (!l) return partial;
  if (l[0] > BigInt(MAX_FRAME_BODY)) throw new WireError(base + lengthAt, `body length ${l[0]} exceeds ${MAX_FRAME_BODY}`);
  const bodyStart = l[1];
  const bodyEnd = bodyStart + Number(l[0]);
  const end = bodyEnd + TAG_BYTES;
  if (end > limit) return { more: true, total: end - pos };
  if (!tagsEqual(tagger.tag(buf.subarray(pos, bodyEnd)), buf.subarray(bodyEnd, end)))
    throw new WireError(base + bodyEnd, `tag mismatch (frame ${n[0]} is corrupt, or was sealed with ${tagger.keyed ? "another key or none" : "a key"})`);
  return { start: pos, typeCode, number: Number(n[0]), bodyStart, bodyEnd, end };
}

/** Reads a body's fields in order; every fault is a WireError at its stream offset. */
class BodyCursor {
  constructor(
    private readonly buf: Uint8Array,
    public pos: number,
    private readonly end: number,
    private readonly base: number,
    private readonly what: string,
  ) {}

  fail(at: number, reason: string): never {
    throw new WireError(this.base + at, `${this.what}: ${reason}`);
  }

  u8(field: string): number {
    if (this.pos >= this.end) this.fail(this.pos, `body ends before ${field}`);
    return this.buf[this.pos++]!;
  }

  varint(field: string): bigint {
    const r = varintAt(this.buf, this.pos, this.end, this.base, `${this.what} ${field}`);
    if (!r) this.fail(this.pos, `body ends inside ${field}`);
    this.pos = r[1];
    return r[0];
  }

  safe(field: string, min = 0): number {
    const at = this.pos;
    const v = this.varint(field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(min)) this.fail(at, `${field} ${v} outside ${min}..2^53-1`);
    return Number(v);
  }

  bytes(n: number, field: string): Uint8Array {
    if (this.pos + n > this.end) this.fail(this.pos, `body ends inside ${field}`);
    const b = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  text(max: number, field: string, min = 0): string {
    const at = this.pos;
    const n = this.varint(`${field} length`);
    if (n > BigInt(max) || n < BigInt(min)) this.fail(at, `${field} length ${n} outside ${min}..${max}`);
    const textAt = this.pos;
    const b = this.bytes(Number(n), field);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(b);
    } catch {
      return this.fail(textAt, `${field} is not valid UTF-8`);
    }
  }

  done(): void {
    if (this.pos !== this.end) this.fail(this.pos, `${this.end - this.pos} bytes after the last field`);
  }
}

/** One output of an OUTPUTS body (encodeOutput's reader). */
function decodeOutput(c: BodyCursor): Output {
  const seq = c.safe("output number", 1);
  const icount = c.varint("output icount");
  const chAt = c.pos;
  const code = c.u8("output channel");
  const channel = CHANNEL_NAME.get(code) ?? c.fail(chAt, `unknown output channel ${code}`);
  switch (channel) {
    case "serial":
    case "debugcon":
      return { seq, icount, channel, value: c.u8("output byte") };
    case "exit": {
      const at = c.pos;
      const v = c.safe("exit status");
      if (v > 0xffffffff) c.fail(at, `exit status ${v} above 2^32-1`);
      return { seq, icount, channel, value: v };
    }
    case "frame": {
      const at = c.pos;
      const len = c.safe("NIC frame length");
      if (len > MAX_OUTPUT_BYTES) c.fail(at, `NIC frame of ${len} bytes: at most ${MAX_OUTPUT_BYTES}`);
      return { seq, icount, channel, value: c.bytes(len, "NIC frame") };
    }
    case "disk": {
      const lba = c.safe("disk sector");
      return { seq, icount, channel, value: c.bytes(SECTOR_BYTES, "sector data"), lba };
    }
    case "flush":
      return { seq, icount, channel, value: 0 };
  }
}

/** Decodes the body of a frame whose bounds frameBoundsAt accepted. */
export function decodeBody(buf: Uint8Array, b: FrameBounds, base: number): Frame {
  const name = TYPE_NAME.get(b.typeCode)!;
  const c = new BodyCursor(buf, b.bodyStart, b.bodyEnd, base, name.toUpperCase());
  let frame: Frame;
  switch (name) {
    case "hello": {
      const roleAt = c.pos;
      const roleCode = c.u8("role");
      const role = roleCode === 1 ? "primary" : roleCode === 2 ? "backup" : c.fail(roleAt, `unknown role ${roleCode}`);
      const version = c.safe("protocol version", 1);
      const configHash = c.bytes(HASH_BYTES, "config hash");
      const epoch = c.safe("epoch");
      const startIcount = c.varint("start icount");
      const replica = c.text(MAX_REPLICA_BYTES, "replica id", 1);
      frame = { type: "hello", role, version, configHash, epoch, startIcount, replica };
      break;
    }
    case "log": {
      const logBase = c.varint("base icount");
      const entries: LogEntry[] = [];
      let prev = logBase;
      while (c.pos < b.bodyEnd) {
        let r;
        try {
          r = readEntry(buf, c.pos, b.bodyEnd, prev, base);
        } catch (e) {
          if (e instanceof LogFormatError) throw new WireError(e.offset, `LOG entry ${entries.length}: ${e.reason}`);
          throw e;
        }
        if (r === NEED_MORE) return c.fail(c.pos, `body ends inside entry ${entries.length}`);
        const [e, next] = r;
        entries.push({ icount: e.icount, kind: e.kind, payload: e.payload });
        prev = e.icount;
        c.pos = next;
      }
      frame = { type: "log", base: logBase, entries };
      break;
    }
    case "progress":
    case "ack":
    case "ran":
      frame = { type: name, icount: c.varint("icount") };
      break;
    case "release":
      frame = { type: "release", seq: c.safe("sequence number") };
      break;
    case "pages": {
      const round = c.safe("round");
      const countAt = c.pos;
      const n = c.safe("page count");
      if (n > MAX_FRAME_PAGES) c.fail(countAt, `${n} pages: at most ${MAX_FRAME_PAGES}`);
      const pages: { index: number; data: Uint8Array | null }[] = [];
      for (let i = 0; i < n; i++) {
        const index = c.safe("page index");
        const kindAt = c.pos;
        const kind = c.u8("page kind");
        if (kind > 1) c.fail(kindAt, `page kind ${kind} (0 zero, 1 raw)`);
        pages.push({ index, data: kind === 0 ? null : c.bytes(PAGE_BYTES, "page data").slice() });
      }
      frame = { type: "pages", round, pages };
      break;
    }
    case "state": {
      const icount = c.varint("icount");
      const outputSeq = c.safe("output number");
      const stateHash = c.bytes(HASH_BYTES, "state hash").slice();
      const json = c.bytes(b.bodyEnd - c.pos, "state").slice();
      frame = { type: "state", icount, outputSeq, stateHash, json };
      break;
    }
    case "check": {
      const icount = c.varint("icount");
      const regsAt = c.pos;
      const nRegs = c.safe("register count");
      if (nRegs > MAX_CHECK_REGS) c.fail(regsAt, `${nRegs} registers: at most ${MAX_CHECK_REGS}`);
      const regs: { name: string; value: bigint }[] = [];
      for (let i = 0; i < nRegs; i++) regs.push({ name: c.text(MAX_CHECK_NAME, "register name", 1), value: c.varint("register value") });
      const partsAt = c.pos;
      const nParts = c.safe("part count");
      if (nParts > MAX_CHECK_PARTS) c.fail(partsAt, `${nParts} parts: at most ${MAX_CHECK_PARTS}`);
      const parts: { name: string; hash: Uint8Array }[] = [];
      for (let i = 0; i < nParts; i++) parts.push({ name: c.text(MAX_CHECK_NAME, "part name", 1), hash: c.bytes(SHORT_HASH_BYTES, "part hash") });
      const span = c.safe("page span", 1);
      const pagesAt = c.pos;
      const nPages = c.safe("page count");
      if (nPages > MAX_CHECK_PAGES) c.fail(pagesAt, `${nPages} pages: at most ${MAX_CHECK_PAGES}`);
      const pages: { index: number; hash: Uint8Array }[] = [];
      let next = 0;
      for (let i = 0; i < nPages; i++) {
        const gapAt = c.pos;
        const index = next + c.safe("page index gap");
        if (!Number.isSafeInteger(index)) c.fail(gapAt, "page index above 2^53-1");
        pages.push({ index, hash: c.bytes(SHORT_HASH_BYTES, "page hash") });
        next = index + 1;
      }
      const first = c.safe("scrub first page");
      const scrubAt = c.pos;
      const nScrub = c.safe("scrub count");
      if (nScrub > MAX_SCRUB_PAGES) c.fail(scrubAt, `scrub of ${nScrub} pages: at most ${MAX_SCRUB_PAGES}`);
      const hashes: Uint8Array[] = [];
      for (let i = 0; i < nScrub; i++) hashes.push(c.bytes(SHORT_HASH_BYTES, "scrub hash"));
      frame = { type: "check", icount, regs, parts, span, pages, scrub: { first, hashes } };
      break;
    }
    case "repair": {
      const icount = c.varint("icount");
      const modeAt = c.pos;
      const mode = c.u8("mode");
      if (mode > 1) c.fail(modeAt, `mode ${mode} (0 page hashes, 1 full)`);
      if (mode === 1) {
        frame = { type: "repair", icount, full: true, total: 0, first: 0, hashes: [] };
        break;
      }
      const total = c.safe("page total", 1);
      const first = c.safe("first page");
      const countAt = c.pos;
      const n = c.safe("page count");
      if (n > MAX_CHECK_PAGES) c.fail(countAt, `${n} pages: at most ${MAX_CHECK_PAGES}`);
      if (first + n > total) c.fail(countAt, `pages ${first}+${n} outside a RAM of ${total} pages`);
      const hashes: (Uint8Array | null)[] = [];
      for (let i = 0; i < n; i++) {
        const kindAt = c.pos;
        const kind = c.u8("page kind");
        if (kind > 1) c.fail(kindAt, `page kind ${kind} (0 zero, 1 hashed)`);
        hashes.push(kind === 0 ? null : c.bytes(SHORT_HASH_BYTES, "page hash"));
      }
      frame = { type: "repair", icount, full: false, total, first, hashes };
      break;
    }
    case "checkpoint": {
      const n = c.safe("checkpoint number", 1);
      const icount = c.varint("icount");
      const outputSeq = c.safe("output number");
      const pages = c.safe("page count");
      const stateHash = c.bytes(HASH_BYTES, "state hash").slice();
      const json = c.bytes(b.bodyEnd - c.pos, "state").slice();
      frame = { type: "checkpoint", n, icount, outputSeq, pages, stateHash, json };
      break;
    }
    case "outputs": {
      const n = c.safe("checkpoint number", 1);
      const countAt = c.pos;
      const count = c.safe("output count");
      if (count > MAX_FRAME_OUTPUTS) c.fail(countAt, `${count} outputs: at most ${MAX_FRAME_OUTPUTS}`);
      const outputs: Output[] = [];
      for (let i = 0; i < count; i++) outputs.push(decodeOutput(c));
      frame = { type: "outputs", n, outputs };
      break;
    }
    case "heartbeat":
      frame = { type: "heartbeat", ms: c.safe("time") };
      break;
    case "bye":
      frame = { type: "bye", code: c.u8("code"), reason: c.text(MAX_BYE_TEXT, "text") };
      break;
  }
  c.done();
  return frame;
}

/**
 * Exactly one frame in `bytes` (one postMessage on a worker port): returns its
 * number and value, or throws WireError (a frame cut short is an error here).
 * Stateless: numbering is the caller's, or use FrameReader.pushMessage.
 * `base` is the stream offset of bytes[0], for error offsets.
 */
export function decodeFrame(bytes: Uint8Array, tagger: FrameTagger, base = 0): ReceivedFrame {
  const b = frameBoundsAt(bytes, 0, bytes.length, base, tagger);
  if ("more" in b) throw new WireError(base + bytes.length, `frame cut short (${bytes.length} of ${b.total ?? "at least " + MIN_FRAME} bytes)`);
  if (b.end !== bytes.length) throw new WireError(base + b.end, `${bytes.length - b.end} bytes after the frame`);
  return { number: b.number, frame: decodeBody(bytes, b, base), offset: base };
}
