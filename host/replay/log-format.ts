// The replay log: a compact, versioned binary record of every nondeterministic
// input the guest sees, each stamped with the instruction count (icount) at
// which it is delivered. Byte-by-byte description: docs/log-format.md.
//
// Layout (version 1):
//   header  = "LSLOG" version:u8 configHash:32 startIcount:varint configLength:varint config crc32:u32le
//   entry   = delta:varint kind:u8 length:varint payload:length crc32:u32le
//   end     = delta:varint 0xFF guestNs:varint outputDigest:32 stateHash:32 crc32:u32le
// Varints are unsigned LEB128, minimal, at most 64 bits. Each record's CRC32
// (IEEE) covers every byte of that record before the CRC itself.

import { END_KIND, isKnownKind, kindName, kindSpec, MAX_PAYLOAD } from "./event-kinds.js";

export const LOG_MAGIC = new Uint8Array([0x4c, 0x53, 0x4c, 0x4f, 0x47]); // "LSLOG"
export const LOG_VERSION = 1;
export const HASH_BYTES = 32;
export const MAX_ICOUNT = (1n << 64n) - 1n;

/** Why `payload` is not valid for `kind` (the event table's rule), or null. */
function payloadProblem(kind: number, payload: Uint8Array): string | null {
  const spec = kindSpec(kind);
  return spec ? spec.check(payload) : `unknown event kind ${kind}`;
}

export class LogFormatError extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`replay log: ${reason} at byte ${offset}`);
    this.name = "LogFormatError";
  }
}

export interface LogHeader {
  version: number;
  configHash: Uint8Array;
  startIcount: bigint;
  /** The VM configuration the log belongs to (the recorder's encoding; may be empty). */
  config: Uint8Array;
  /** Byte offset of `config` in the log (set by the reader). */
  configOffset?: number;
}
export interface LogEntry {
  icount: bigint;
  kind: number;
  payload: Uint8Array;
  /** Byte offset of the entry's first byte in the log. */
  offset?: number;
}
export interface LogEnd {
  finalIcount: bigint;
  /** Guest time at the final count (ns): what the log's rates are per. */
  guestNs: bigint;
  outputDigest: Uint8Array;
  stateHash: Uint8Array;
}
export interface ParsedLog {
  header: LogHeader;
  entries: LogEntry[];
  end: LogEnd;
}
/**
 * Where a log was cut short: `offset` is where its last complete record ends,
 * `bytes` how many bytes of an incomplete record follow (0: the log stops
 * cleanly after a record, only the end record is missing).
 */
export interface LogCut {
  offset: number;
  bytes: number;
}
/** A log read with `allowCut`: complete (`end` set, `cut` null) or cut short (`end` null, `cut` set). */
export interface ReadLog {
  header: LogHeader;
  entries: LogEntry[];
  end: LogEnd | null;
  cut: LogCut | null;
}

// ---------------------------------------------------------------- CRC32

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------- varints

export function varintLength(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** Unsigned LEB128 of 0 <= v <= 2^64-1. */
export function encodeVarint(v: bigint): Uint8Array {
  if (v < 0n || v > MAX_ICOUNT) throw new RangeError(`varint out of range: ${v}`);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

/** What readVarint and readEntry return when the bytes end inside the item (exported for the FT wire codec, host/ft/wire.ts). */
export const NEED_MORE = Symbol("need-more");
export type NeedMore = typeof NEED_MORE;

/**
 * Decodes a varint at buf[pos..limit). Returns [value, nextPos], or NEED_MORE
 * if the bytes end inside it. `base` converts positions to log offsets.
 */
export function readVarint(buf: Uint8Array, pos: number, limit: number, base: number, what: string): [bigint, number] | NeedMore {
  let v = 0n;
  for (let i = 0; ; i++) {
    if (pos + i >= limit) return NEED_MORE;
    const b = buf[pos + i]!;
    if (i === 9 && b & 0x80) throw new LogFormatError(base + pos + i, `${what}: varint too long (over 10 bytes)`);
    if (i === 9 && b > 1) throw new LogFormatError(base + pos + i, `${what}: varint overflows 64 bits`);
    v |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) throw new LogFormatError(base + pos + i, `${what}: non-minimal varint`);
      return [v, pos + i + 1];
    }
  }
}

// ---------------------------------------------------------------- writer

function checkHash(h: Uint8Array, what: string): void {
  if (!(h instanceof Uint8Array) || h.length !== HASH_BYTES) throw new RangeError(`${what} must be ${HASH_BYTES} bytes`);
}

function withCrc(parts: Uint8Array[]): Uint8Array {
  let n = 4;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  new DataView(out.buffer).setUint32(o, crc32(out, 0, o), true);
  return out;
}

function checkedDelta(prev: bigint, icount: bigint, what: string): Uint8Array {
  if (typeof icount !== "bigint") throw new TypeError(`${what} must be a bigint`);
  if (icount > MAX_ICOUNT) throw new RangeError(`${what} ${icount} exceeds 2^64-1`);
  if (icount < prev) throw new RangeError(`${what} ${icount} is before the previous icount ${prev}`);
  return encodeVarint(icount - prev);
}

/**
 * One entry's bytes (delta from `prev`, kind, length, payload, CRC): the
 * log's entry encoding, shared by LogWriter and the FT channel's LOG frames
 * (host/ft/wire.ts), so the two can never drift apart.
 */
export function encodeEntry(prev: bigint, icount: bigint, kind: number, payload: Uint8Array): Uint8Array {
  const problem = payloadProblem(kind, payload);
  if (problem) throw new RangeError(problem);
  const d = checkedDelta(prev, icount, "icount");
  return withCrc([d, Uint8Array.of(kind), encodeVarint(BigInt(payload.length)), payload]);
}

/**
 * Reads one entry at buf[pos..limit) whose delta is relative to `prev`:
 * [entry, position after it], or NEED_MORE if the bytes end inside it.
 * Throws LogFormatError at `base` + the offending position. An end record is
 * not an entry: its kind byte is refused as unknown. Shared by LogReader and
 * the FT channel's LOG frames (host/ft/wire.ts).
 */
export function readEntry(buf: Uint8Array, pos: number, limit: number, prev: bigint, base: number): [LogEntry, number] | NeedMore {
  const d = readVarint(buf, pos, limit, base, "icount delta");
  if (d === NEED_MORE) return NEED_MORE;
  let p = d[1];
  const icount = prev + d[0];
  if (icount > MAX_ICOUNT) throw new LogFormatError(base + pos, `icount past 2^64-1 (previous ${prev} + delta ${d[0]})`);
  if (p >= limit) return NEED_MORE;
  const kind = buf[p]!;
  if (!isKnownKind(kind)) throw new LogFormatError(base + p, `unknown event kind ${kind}`);
  p++;
  const lenPos = p;
  const l = readVarint(buf, p, limit, base, "payload length");
  if (l === NEED_MORE) return NEED_MORE;
  if (l[0] > BigInt(MAX_PAYLOAD)) throw new LogFormatError(base + lenPos, `payload length ${l[0]} exceeds ${MAX_PAYLOAD}`);
  const len = Number(l[0]);
  const fixed = kindSpec(kind)!.size;
  if (fixed !== null && len !== fixed) throw new LogFormatError(base + lenPos, `${kindName(kind)} payload must be ${fixed} bytes, got ${len}`);
  p = l[1];
  if (p + len + 4 > limit) return NEED_MORE;
  const payload = buf.slice(p, p + len);
  const want = new DataView(buf.buffer, buf.byteOffset).getUint32(p + len, true);
  if (want !== crc32(buf, pos, p + len)) throw new LogFormatError(base + p + len, `CRC mismatch in record starting at byte ${base + pos}`);
  // The CRC held, so a payload the table refuses was written that way.
  const problem = payloadProblem(kind, payload);
  if (problem) throw new LogFormatError(base + p, problem);
  return [{ icount, kind, payload, offset: base + pos }, p + len + 4];
}

/**
 * Streaming writer: each record becomes one chunk handed to `sink`. The
 * header is emitted by the constructor.
 */
export class LogWriter {
  private last: bigint;
  private ended = false;
  /** Bytes emitted so far. */
  bytesWritten = 0;

  constructor(
    private readonly sink: (chunk: Uint8Array) => void,
    configHash: Uint8Array,
    startIcount: bigint = 0n,
    config: Uint8Array = new Uint8Array(0),
  ) {
    checkHash(configHash, "config hash");
    if (startIcount < 0n || startIcount > MAX_ICOUNT) throw new RangeError(`start icount out of range: ${startIcount}`);
    if (config.length > MAX_PAYLOAD) throw new RangeError(`configuration of ${config.length} bytes exceeds ${MAX_PAYLOAD}`);
    this.last = startIcount;
    this.emit(withCrc([LOG_MAGIC, Uint8Array.of(LOG_VERSION), configHash, encodeVarint(startIcount), encodeVarint(BigInt(config.length)), config]));
  }

  private emit(chunk: Uint8Array): void {
    this.bytesWritten += chunk.length;
    this.sink(chunk);
  }

  private delta(icount: bigint, what: string): Uint8Array {
    if (this.ended) throw new Error("replay log: already ended");
    return checkedDelta(this.last, icount, what);
  }

  append(icount: bigint, kind: number, payload: Uint8Array): void {
    if (this.ended) throw new Error("replay log: already ended");
    this.emit(encodeEntry(this.last, icount, kind, payload));
    this.last = icount;
  }

  end(finalIcount: bigint, guestNs: bigint, outputDigest: Uint8Array, stateHash: Uint8Array): void {
    checkHash(outputDigest, "output digest");
    checkHash(stateHash, "state hash");
    if (typeof guestNs !== "bigint" || guestNs < 0n || guestNs > MAX_ICOUNT) throw new RangeError(`guest time ${guestNs} is not a 64-bit unsigned bigint`);
    const d = this.delta(finalIcount, "final icount");
    this.emit(withCrc([d, Uint8Array.of(END_KIND), encodeVarint(guestNs), outputDigest, stateHash]));
    this.last = finalIcount;
    this.ended = true;
  }
}

// ---------------------------------------------------------------- reader

/**
 * Streaming reader: push() bytes as they arrive, in chunks of any size; each
 * call returns the entries completed by it. The header and end record appear
 * in `header` / `end` once parsed. finish() checks the log is complete.
 * After a LogFormatError the reader stays failed.
 */
export class LogReader {
  header: LogHeader | null = null;
  end: LogEnd | null = null;
  private buf = new Uint8Array(256);
  private start = 0; // first unconsumed byte in buf
  private fill = 0; // end of valid bytes in buf
  private base = 0; // log offset of buf[0]
  private last = 0n;
  private failed: LogFormatError | null = null;

  /** Log offset of the first byte not yet consumed. */
  get offset(): number {
    return this.base + this.start;
  }

  push(chunk: Uint8Array): LogEntry[] {
    if (this.failed) throw this.failed;
    try {
      return this.pushInner(chunk);
    } catch (e) {
      if (e instanceof LogFormatError) this.failed = e;
      throw e;
    }
  }

  private pushInner(chunk: Uint8Array): LogEntry[] {
    if (chunk.length === 0) return [];
    if (this.end) throw new LogFormatError(this.base + this.fill, "data after the end record");
    this.append(chunk);
    const out: LogEntry[] = [];
    for (;;) {
      if (this.end) {
        if (this.fill > this.start) throw new LogFormatError(this.offset, "data after the end record");
        break;
      }
      const r = this.header ? this.parseRecord() : this.parseHeader();
      if (r === NEED_MORE) break;
      if (r) out.push(r);
    }
    return out;
  }

  private append(chunk: Uint8Array): void {
    if (this.fill + chunk.length > this.buf.length) {
      const live = this.fill - this.start;
      let size = this.buf.length;
      while (size < live + chunk.length) size *= 2;
      const nb = size === this.buf.length ? this.buf : new Uint8Array(size);
      if (nb === this.buf) this.buf.copyWithin(0, this.start, this.fill);
      else nb.set(this.buf.subarray(this.start, this.fill));
      this.buf = nb;
      this.base += this.start;
      this.fill = live;
      this.start = 0;
    }
    this.buf.set(chunk, this.fill);
    this.fill += chunk.length;
  }

  private checkCrc(pos: number): number | NeedMore {
    if (pos + 4 > this.fill) return NEED_MORE;
    const want = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(pos, true);
    const got = crc32(this.buf, this.start, pos);
    if (want !== got) throw new LogFormatError(this.base + pos, `CRC mismatch in record starting at byte ${this.offset}`);
    return pos + 4;
  }

  private parseHeader(): null | NeedMore {
    const b = this.buf;
    let p = this.start;
    for (let i = 0; i < LOG_MAGIC.length; i++, p++) {
      if (p >= this.fill) return NEED_MORE;
      if (b[p] !== LOG_MAGIC[i]) throw new LogFormatError(this.base + p, "bad magic (not a LSLOG replay log)");
    }
    if (p >= this.fill) return NEED_MORE;
    const version = b[p]!;
    if (version !== LOG_VERSION) throw new LogFormatError(this.base + p, `unsupported version ${version} (this reader knows ${LOG_VERSION})`);
    p++;
    if (p + HASH_BYTES > this.fill) return NEED_MORE;
    const configHash = b.slice(p, p + HASH_BYTES);
    p += HASH_BYTES;
    const v = readVarint(b, p, this.fill, this.base, "start icount");
    if (v === NEED_MORE) return NEED_MORE;
    const lenPos = v[1];
    const l = readVarint(b, lenPos, this.fill, this.base, "configuration length");
    if (l === NEED_MORE) return NEED_MORE;
    if (l[0] > BigInt(MAX_PAYLOAD)) throw new LogFormatError(this.base + lenPos, `configuration length ${l[0]} exceeds ${MAX_PAYLOAD}`);
    const configAt = l[1];
    const configEnd = configAt + Number(l[0]);
    if (configEnd > this.fill) return NEED_MORE;
    const q = this.checkCrc(configEnd);
    if (q === NEED_MORE) return NEED_MORE;
    this.header = { version, configHash, startIcount: v[0], config: b.slice(configAt, configEnd), configOffset: this.base + configAt };
    this.last = v[0];
    this.start = q;
    return null;
  }

  private parseRecord(): LogEntry | null | NeedMore {
    const b = this.buf;
    const recStart = this.start;
    const d = readVarint(b, recStart, this.fill, this.base, "icount delta");
    if (d === NEED_MORE) return NEED_MORE;
    let p = d[1];
    const icount = this.last + d[0];
    if (icount > MAX_ICOUNT) throw new LogFormatError(this.base + recStart, `icount past 2^64-1 (previous ${this.last} + delta ${d[0]})`);
    if (p >= this.fill) return NEED_MORE;
    const kind = b[p]!;
    if (kind === END_KIND) {
      p++;
      const g = readVarint(b, p, this.fill, this.base, "guest time");
      if (g === NEED_MORE) return NEED_MORE;
      p = g[1];
      if (p + 2 * HASH_BYTES > this.fill) return NEED_MORE;
      const outputDigest = b.slice(p, p + HASH_BYTES);
      const stateHash = b.slice(p + HASH_BYTES, p + 2 * HASH_BYTES);
      const q = this.checkCrc(p + 2 * HASH_BYTES);
      if (q === NEED_MORE) return NEED_MORE;
      this.end = { finalIcount: icount, guestNs: g[0], outputDigest, stateHash };
      this.last = icount;
      this.start = q;
      return null;
    }
    const r = readEntry(b, recStart, this.fill, this.last, this.base);
    if (r === NEED_MORE) return NEED_MORE;
    this.last = icount;
    this.start = r[1];
    return r[0];
  }

  /** Declares the input complete; throws unless a whole log, end record included, was read. */
  finish(): { header: LogHeader; end: LogEnd } {
    if (this.failed) throw this.failed;
    if (!this.header) this.failed = new LogFormatError(this.offset, "truncated header");
    else if (!this.end)
      this.failed = new LogFormatError(
        this.offset,
        this.fill > this.start ? "truncated record (log ends inside it)" : "missing end record",
      );
    if (this.failed) throw this.failed;
    return { header: this.header!, end: this.end! };
  }

  /**
   * Declares the input over, accepting a log cut short (a recorder killed,
   * a disk full, a primary that died mid-stream): what was read is usable up
   * to its last complete record. A cut is only this: the bytes after that
   * record are a strict prefix of a record (push() is waiting for more), or
   * there are none. Anything push() refused (a CRC mismatch, even in the
   * last record) is still thrown, and so is a log cut inside its header,
   * which has no configuration to replay.
   */
  finishPartial(): { header: LogHeader; end: LogEnd | null; cut: LogCut | null } {
    if (this.failed) throw this.failed;
    if (!this.header) {
      this.failed = new LogFormatError(this.offset, "truncated header");
      throw this.failed;
    }
    if (this.end) return { header: this.header, end: this.end, cut: null };
    return { header: this.header, end: null, cut: { offset: this.offset, bytes: this.fill - this.start } };
  }
}

/**
 * Parses a log held in memory. By default it must be complete (end record
 * included); with `allowCut` a log cut short after its header is returned
 * with `end: null` and where it was cut (LogReader.finishPartial).
 */
export function parseLog(bytes: Uint8Array): ParsedLog;
export function parseLog(bytes: Uint8Array, opts: { allowCut: true }): ReadLog;
export function parseLog(bytes: Uint8Array, opts?: { allowCut?: boolean }): ParsedLog | ReadLog {
  const r = new LogReader();
  const entries = r.push(bytes);
  if (opts?.allowCut) return { entries, ...r.finishPartial() };
  const { header, end } = r.finish();
  return { header, entries, end };
}

/** Encodes a whole log in memory (convenience over LogWriter). */
export function encodeLog(log: { header: Omit<LogHeader, "version" | "config"> & { config?: Uint8Array }; entries: LogEntry[]; end: LogEnd }): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new LogWriter((c) => chunks.push(c), log.header.configHash, log.header.startIcount, log.header.config);
  for (const e of log.entries) w.append(e.icount, e.kind, e.payload);
  w.end(log.end.finalIcount, log.end.guestNs, log.end.outputDigest, log.end.stateHash);
  const out = new Uint8Array(w.bytesWritten);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

// ---------------------------------------------------------------- inspect

export interface KindStats {
  count: number;
  /** Payload bytes only. */
  payloadBytes: number;
  /** Whole encoded entries: delta, kind, length, payload and CRC. */
  encodedBytes: number;
}
export interface LogSummary {
  entries: number;
  firstIcount: bigint | null;
  lastIcount: bigint | null;
  payloadBytes: number;
  encodedBytes: number;
  byKind: Record<string, KindStats>;
}

/**
 * Per-kind counts and sizes. `startIcount` (the header's) makes the first
 * entry's encoded size exact; without it the first delta is taken as 0.
 */
export function inspect(entries: readonly LogEntry[], startIcount?: bigint): LogSummary {
  const byKind: Record<string, KindStats> = {};
  let prev = startIcount ?? entries[0]?.icount ?? 0n;
  let payloadBytes = 0;
  let encodedBytes = 0;
  for (const e of entries) {
    const name = kindName(e.kind);
    const s = (byKind[name] ??= { count: 0, payloadBytes: 0, encodedBytes: 0 });
    const enc = varintLength(e.icount - prev) + 1 + varintLength(BigInt(e.payload.length)) + e.payload.length + 4;
    s.count++;
    s.payloadBytes += e.payload.length;
    s.encodedBytes += enc;
    payloadBytes += e.payload.length;
    encodedBytes += enc;
    prev = e.icount;
  }
  return {
    entries: entries.length,
    firstIcount: entries[0]?.icount ?? null,
    lastIcount: entries.at(-1)?.icount ?? null,
    payloadBytes,
    encodedBytes,
    byKind,
  };
}
