// The kv wire protocol (docs/kv-protocol.md): request and reply frames,
// encoding and strict decoding. A frame that breaks a rule is refused with a
// KvProtocolError naming the field and its byte offset.

export const KV_MAGIC = Uint8Array.of(0x4c, 0x53, 0x4b, 0x56); // "LSKV"
export const KV_VERSION = 1;
export const KV_HEADER = 24;
export const KV_MAX_KEY = 64;
export const KV_MAX_VALUE = 512;
export const KV_MAX_LIST_BYTES = 1024;
export const KV_MAX_KEYS = 256;
export const KV_MAX_CLIENTS = 64;
/** The largest frame either side sends (a CAS request with the longest key and values). */
export const KV_MAX_FRAME = KV_HEADER + KV_MAX_KEY + 2 * KV_MAX_VALUE;

export const KIND_REQUEST = 0;
export const KIND_REPLY = 1;

export enum Op {
  Get = 1,
  Put = 2,
  Del = 3,
  Incr = 4,
  Cas = 5,
  Count = 6,
  List = 7,
  Ping = 8,
  Stats = 9,
  Hello = 10,
}

export enum Status {
  Ok = 0,
  NotFound = 1,
  Mismatch = 2,
  NotNumber = 3,
  Range = 4,
  Full = 5,
  TooLarge = 6,
  BadRequest = 7,
  Stale = 8,
  IoError = 9,
  BadVersion = 10,
}

export const REQ_FLAG_EXPECT_ABSENT = 1 << 0;
export const REPLY_FLAG_REPLAYED = 1 << 0;
export const REPLY_FLAG_MORE = 1 << 1;

export const OP_NAMES: Record<Op, string> = {
  [Op.Get]: "GET", [Op.Put]: "PUT", [Op.Del]: "DEL", [Op.Incr]: "INCR", [Op.Cas]: "CAS",
  [Op.Count]: "COUNT", [Op.List]: "LIST", [Op.Ping]: "PING", [Op.Stats]: "STATS", [Op.Hello]: "HELLO",
};

export const STATUS_NAMES: Record<Status, string> = {
  [Status.Ok]: "OK", [Status.NotFound]: "NOT_FOUND", [Status.Mismatch]: "MISMATCH", [Status.NotNumber]: "NOT_NUMBER",
  [Status.Range]: "RANGE", [Status.Full]: "FULL", [Status.TooLarge]: "TOO_LARGE", [Status.BadRequest]: "BAD_REQUEST",
  [Status.Stale]: "STALE", [Status.IoError]: "IO_ERROR", [Status.BadVersion]: "BAD_VERSION",
};

export const opName = (op: number) => OP_NAMES[op as Op] ?? `opcode ${op}`;
export const statusName = (s: number) => STATUS_NAMES[s as Status] ?? `status ${s}`;

export interface KvRequest {
  op: Op;
  flags: number;
  clientId: number;
  requestNumber: number;
  key: Uint8Array;
  value: Uint8Array;
  value2: Uint8Array;
}

export interface KvReply {
  op: Op;
  status: Status;
  clientId: number;
  requestNumber: number;
  flags: number;
  result: number;
  value: Uint8Array;
}

/** The STATS reply's eight counters, in order. */
export const STATS_FIELDS = [
  "keys", "keyCapacity", "clients", "clientCapacity", "generation", "logRecords", "requests", "replays",
] as const;
export type KvStats = Record<(typeof STATS_FIELDS)[number], number>;

/** A frame that breaks the protocol: `field` names what is wrong and `offset` where it is in the frame. */
export class KvProtocolError extends Error {
  constructor(readonly field: string, readonly offset: number, what: string) {
    super(`${field} at offset ${offset}: ${what}`);
    this.name = "KvProtocolError";
  }
}

/** Per-operation field rules: which of key/value/value2 may be present and their bounds. */
interface FieldRule { min: number; max: number }
interface OpRule { key: FieldRule; value: FieldRule; value2: FieldRule; flags: number; zeroRequestNumber?: boolean }
const NONE: FieldRule = { min: 0, max: 0 };
const KEY: FieldRule = { min: 1, max: KV_MAX_KEY };
const VALUE: FieldRule = { min: 0, max: KV_MAX_VALUE };
export const OP_RULES: Record<Op, OpRule> = {
  [Op.Get]: { key: KEY, value: NONE, value2: NONE, flags: 0 },
  [Op.Put]: { key: KEY, value: VALUE, value2: NONE, flags: 0 },
  [Op.Del]: { key: KEY, value: NONE, value2: NONE, flags: 0 },
  [Op.Incr]: { key: KEY, value: { min: 0, max: 20 }, value2: NONE, flags: 0 },
  [Op.Cas]: { key: KEY, value: VALUE, value2: VALUE, flags: REQ_FLAG_EXPECT_ABSENT },
  [Op.Count]: { key: NONE, value: NONE, value2: NONE, flags: 0 },
  [Op.List]: { key: { min: 0, max: KV_MAX_KEY }, value: { min: 0, max: KV_MAX_KEY }, value2: NONE, flags: 0 },
  [Op.Ping]: { key: NONE, value: VALUE, value2: NONE, flags: 0 },
  [Op.Stats]: { key: NONE, value: NONE, value2: NONE, flags: 0 },
  [Op.Hello]: { key: NONE, value: NONE, value2: NONE, flags: 0, zeroRequestNumber: true },
};

const isOp = (n: number): n is Op => Object.hasOwn(OP_NAMES, n);
const isStatus = (n: number): n is Status => Object.hasOwn(STATUS_NAMES, n);

/** Little-endian field access (also used by the on-disk layout in disk-layout.ts). */
export const u16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
export const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
export function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}
export function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, v & 0xffff);
  put16(b, at + 2, v >>> 16);
}
const hex = (b: ArrayLike<number>) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

function checkU32(field: string, offset: number, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new KvProtocolError(field, offset, `${v} is not a 32-bit unsigned integer`);
}

/** Problems a request's fields have, found without the frame (shared by encode and decode). */
function checkRequestFields(r: KvRequest, where: (f: string) => number): void {
  if (!isOp(r.op)) throw new KvProtocolError("opcode", where("opcode"), `unknown opcode ${r.op}`);
  const rule = OP_RULES[r.op];
  if (r.flags & ~rule.flags) {
    throw new KvProtocolError("flags", where("flags"), `0x${r.flags.toString(16)} has bits not defined for ${opName(r.op)}`);
  }
  if (r.clientId === 0) throw new KvProtocolError("client_id", where("client_id"), "must not be 0");
  if (rule.zeroRequestNumber) {
    if (r.requestNumber !== 0) throw new KvProtocolError("request_number", where("request_number"), `must be 0 for HELLO, got ${r.requestNumber}`);
  } else if (r.requestNumber === 0) throw new KvProtocolError("request_number", where("request_number"), `must not be 0 for ${opName(r.op)}`);
  const lens: [string, Uint8Array, FieldRule][] = [["key_len", r.key, rule.key], ["value_len", r.value, rule.value], ["value2_len", r.value2, rule.value2]];
  for (const [name, bytes, fr] of lens) {
    if (bytes.length < fr.min || bytes.length > fr.max) {
      const bound = fr.max === 0 ? "must be 0" : `must be ${fr.min}..${fr.max}`;
      throw new KvProtocolError(name, where(name), `${bytes.length} ${bound} for ${opName(r.op)}`);
    }
  }
  if (r.op === Op.Cas && r.flags & REQ_FLAG_EXPECT_ABSENT && r.value.length !== 0) {
    throw new KvProtocolError("value_len", where("value_len"), "must be 0 for CAS with EXPECT_ABSENT");
  }
}

const REQ_OFFSETS: Record<string, number> = {
  magic: 0, version: 4, kind: 5, opcode: 6, flags: 7, client_id: 8, request_number: 12,
  key_len: 16, value_len: 18, value2_len: 20, reserved: 22,
};
const REPLY_OFFSETS: Record<string, number> = {
  magic: 0, version: 4, kind: 5, opcode: 6, status: 7, client_id: 8, request_number: 12,
  value_len: 16, flags: 18, reserved: 19, result: 20,
};

export function encodeRequest(r: KvRequest): Uint8Array {
  checkU32("client_id", 8, r.clientId);
  checkU32("request_number", 12, r.requestNumber);
  checkRequestFields(r, (f) => REQ_OFFSETS[f]);
  const b = new Uint8Array(KV_HEADER + r.key.length + r.value.length + r.value2.length);
  b.set(KV_MAGIC, 0);
  b[4] = KV_VERSION;
  b[5] = KIND_REQUEST;
  b[6] = r.op;
  b[7] = r.flags;
  put32(b, 8, r.clientId);
  put32(b, 12, r.requestNumber);
  put16(b, 16, r.key.length);
  put16(b, 18, r.value.length);
  put16(b, 20, r.value2.length);
  b.set(r.key, KV_HEADER);
  b.set(r.value, KV_HEADER + r.key.length);
  b.set(r.value2, KV_HEADER + r.key.length + r.value.length);
  return b;
}

/** The header checks both frame kinds share. */
function checkHeader(b: Uint8Array, kind: number): void {
  if (b.length < KV_HEADER) throw new KvProtocolError("frame", b.length, `${b.length} bytes is shorter than the ${KV_HEADER}-byte header`);
  for (let k = 0; k < 4; k++) {
    if (b[k] !== KV_MAGIC[k]) throw new KvProtocolError("magic", 0, `expected 4c 53 4b 56 ("LSKV"), got ${hex(b.subarray(0, 4))}`);
  }
  if (b[4] !== KV_VERSION) throw new KvProtocolError("version", 4, `expected ${KV_VERSION}, got ${b[4]}`);
  if (b[5] !== kind) {
    throw new KvProtocolError("kind", 5, `expected ${kind} (${kind === KIND_REQUEST ? "request" : "reply"}), got ${b[5]}`);
  }
}

export function decodeRequest(b: Uint8Array): KvRequest {
  checkHeader(b, KIND_REQUEST);
  if (u16(b, 22) !== 0) throw new KvProtocolError("reserved", 22, `must be 0, got ${u16(b, 22)}`);
  const kl = u16(b, 16), vl = u16(b, 18), v2l = u16(b, 20);
  const total = KV_HEADER + kl + vl + v2l;
  if (b.length !== total) {
    throw new KvProtocolError("frame", Math.min(b.length, total), `length ${b.length} does not match the header (24 + key_len ${kl} + value_len ${vl} + value2_len ${v2l} = ${total})`);
  }
  const r: KvRequest = {
    op: b[6],
    flags: b[7],
    clientId: u32(b, 8),
    requestNumber: u32(b, 12),
    key: b.slice(KV_HEADER, KV_HEADER + kl),
    value: b.slice(KV_HEADER + kl, KV_HEADER + kl + vl),
    value2: b.slice(KV_HEADER + kl + vl, total),
  };
  checkRequestFields(r, (f) => REQ_OFFSETS[f]);
  return r;
}

export function encodeReply(r: KvReply): Uint8Array {
  checkU32("client_id", 8, r.clientId);
  checkU32("request_number", 12, r.requestNumber);
  checkU32("result", 20, r.result);
  if (!isOp(r.op)) throw new KvProtocolError("opcode", 6, `unknown opcode ${r.op}`);
  if (!isStatus(r.status)) throw new KvProtocolError("status", 7, `unknown status ${r.status}`);
  if (r.flags & ~(REPLY_FLAG_REPLAYED | REPLY_FLAG_MORE)) throw new KvProtocolError("flags", 18, `undefined bits in 0x${r.flags.toString(16)}`);
  if (r.value.length > KV_MAX_LIST_BYTES) throw new KvProtocolError("value_len", 16, `${r.value.length} exceeds ${KV_MAX_LIST_BYTES}`);
  const b = new Uint8Array(KV_HEADER + r.value.length);
  b.set(KV_MAGIC, 0);
  b[4] = KV_VERSION;
  b[5] = KIND_REPLY;
  b[6] = r.op;
  b[7] = r.status;
  put32(b, 8, r.clientId);
  put32(b, 12, r.requestNumber);
  put16(b, 16, r.value.length);
  b[18] = r.flags;
  put32(b, 20, r.result);
  b.set(r.value, KV_HEADER);
  return b;
}

export function decodeReply(b: Uint8Array): KvReply {
  checkHeader(b, KIND_REPLY);
  if (!isOp(b[6])) throw new KvProtocolError("opcode", 6, `unknown opcode ${b[6]}`);
  if (!isStatus(b[7])) throw new KvProtocolError("status", 7, `unknown status ${b[7]}`);
  if (b[18] & ~(REPLY_FLAG_REPLAYED | REPLY_FLAG_MORE)) throw new KvProtocolError("flags", 18, `undefined bits in 0x${b[18].toString(16)}`);
  if (b[19] !== 0) throw new KvProtocolError("reserved", 19, `must be 0, got ${b[19]}`);
  const vl = u16(b, 16);
  if (vl > KV_MAX_LIST_BYTES) throw new KvProtocolError("value_len", 16, `${vl} exceeds ${KV_MAX_LIST_BYTES}`);
  if (b.length !== KV_HEADER + vl) {
    throw new KvProtocolError("frame", Math.min(b.length, KV_HEADER + vl), `length ${b.length} does not match the header (24 + value_len ${vl} = ${KV_HEADER + vl})`);
  }
  return {
    op: b[6], status: b[7], clientId: u32(b, 8), requestNumber: u32(b, 12), flags: b[18], result: u32(b, 20), value: b.slice(KV_HEADER),
  };
}

/** A request with empty fields and flags 0, then the given ones. */
export function request(op: Op, clientId: number, requestNumber: number, fields: Partial<Pick<KvRequest, "key" | "value" | "value2" | "flags">> = {}): KvRequest {
  const empty = new Uint8Array(0);
  return { op, flags: fields.flags ?? 0, clientId, requestNumber, key: fields.key ?? empty, value: fields.value ?? empty, value2: fields.value2 ?? empty };
}

/** The keys in a LIST reply's value: (u8 length, bytes)*. */
export function decodeListValue(v: Uint8Array): Uint8Array[] {
  const keys: Uint8Array[] = [];
  let at = 0;
  while (at < v.length) {
    const n = v[at];
    if (n < 1 || n > KV_MAX_KEY) throw new KvProtocolError("list entry", KV_HEADER + at, `key length ${n} must be 1..${KV_MAX_KEY}`);
    if (at + 1 + n > v.length) throw new KvProtocolError("list entry", KV_HEADER + at, `key of ${n} bytes runs past the end of the value`);
    keys.push(v.slice(at + 1, at + 1 + n));
    at += 1 + n;
  }
  return keys;
}

export function encodeListValue(keys: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(keys.reduce((s, k) => s + 1 + k.length, 0));
  let at = 0;
  for (const k of keys) {
    out[at] = k.length;
    out.set(k, at + 1);
    at += 1 + k.length;
  }
  return out;
}

export function decodeStats(v: Uint8Array): KvStats {
  if (v.length !== 4 * STATS_FIELDS.length) throw new KvProtocolError("value_len", 16, `a STATS reply holds ${4 * STATS_FIELDS.length} bytes, got ${v.length}`);
  return Object.fromEntries(STATS_FIELDS.map((f, k) => [f, u32(v, 4 * k)])) as KvStats;
}

export function encodeStats(s: KvStats): Uint8Array {
  const b = new Uint8Array(4 * STATS_FIELDS.length);
  STATS_FIELDS.forEach((f, k) => put32(b, 4 * k, s[f]));
  return b;
}

/** Unsigned byte-wise order, a prefix first (the order LIST uses). */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) return a[k] - b[k];
  return a.length - b.length;
}

/** CRC-32 (IEEE 802.3, reflected, as zlib): the request checksum the server remembers. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let k = 0; k < b.length; k++) c = CRC_TABLE[(c ^ b[k]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** INCR's decimal grammar: optional '-', 1..19 digits, within int64. Undefined if not a decimal integer. */
export function parseDecimal(b: Uint8Array): bigint | undefined {
  const s = new TextDecoder().decode(b);
  if (!/^-?[0-9]{1,19}$/.test(s)) return undefined;
  const v = BigInt(s);
  if (v < -(2n ** 63n) || v >= 2n ** 63n) return undefined;
  return v;
}
