// The kv guest's on-disk layout (docs/kv-protocol.md, "On-disk layout") read
// and written from the host: for inspecting a disk image the guest wrote, and
// for building images in tests (a log that is nearly full, a torn record).
// An independent implementation of the format the guest's kvlog.c writes.

import { crc32, u16, u32, put16, put32 } from "./protocol.js";

export const SECTOR = 512;
export const SB_VERSION = 1;
export const REGION_START = 64;
export const REGION_SECTORS = 2048;
export const NREGIONS = 2;
export const DISK_MIN_SECTORS = REGION_START + NREGIONS * REGION_SECTORS;
export const REC_HDR = 40;
const SB_MAGIC = [0x4c, 0x4b, 0x56, 0x53]; // "LKVS"
const REC_MAGIC = [0x4c, 0x4b, 0x56, 0x52]; // "LKVR"

export enum RecordType {
  Set = 1,
  Delete = 2,
  Client = 3,
}

export interface LogRecord {
  type: RecordType;
  key: Uint8Array;
  value: Uint8Array;
  /** 0: the record updates no client. */
  client: number;
  last: number;
  requestCrc: number;
  reply: Uint8Array;
}

export interface DiskState {
  /** The generation of the valid superblock (0: none, an unformatted disk). */
  generation: number;
  /** The records of the current region, in order, up to the first invalid one. */
  records: LogRecord[];
  /** Where each record starts (sector within the region). */
  positions: number[];
  /** The first sector after the last valid record. */
  end: number;
  /** The state the records give: keys (hex) to values, clients to their last number, CRC and reply. */
  store: Map<string, { key: Uint8Array; value: Uint8Array }>;
  clients: Map<number, { last: number; requestCrc: number; reply: Uint8Array }>;
}


export const regionLba = (generation: number) => REGION_START + (generation & 1) * REGION_SECTORS;
export const sectorsFor = (len: number) => Math.ceil(len / SECTOR);

export function encodeSuperblock(generation: number): Uint8Array {
  const b = new Uint8Array(SECTOR);
  b.set(SB_MAGIC, 0);
  put32(b, 4, SB_VERSION);
  put32(b, 8, generation);
  put32(b, 12, REGION_SECTORS);
  put32(b, 16, REGION_START);
  put32(b, 20, NREGIONS);
  put32(b, 28, crc32(b.subarray(0, 28)));
  return b;
}

/** The generation in the superblock read from sector `which` (0 or 1), or 0 if it is not valid. */
export function decodeSuperblock(b: Uint8Array, which: number): number {
  if (SB_MAGIC.some((m, k) => b[k] !== m) || u32(b, 4) !== SB_VERSION) return 0;
  if (u32(b, 12) !== REGION_SECTORS || u32(b, 16) !== REGION_START || u32(b, 20) !== NREGIONS) return 0;
  if (u32(b, 28) !== crc32(b.subarray(0, 28))) return 0;
  const g = u32(b, 8);
  return g !== 0 && (g & 1) === which ? g : 0;
}

/** A record as whole sectors (zero-padded). */
export function encodeRecord(generation: number, seq: number, r: LogRecord): Uint8Array {
  const len = REC_HDR + r.key.length + r.value.length + r.reply.length;
  const b = new Uint8Array(sectorsFor(len) * SECTOR);
  b.set(REC_MAGIC, 0);
  put32(b, 4, generation);
  put32(b, 8, seq);
  put16(b, 12, len);
  b[14] = r.type;
  put32(b, 16, r.client);
  put32(b, 20, r.last);
  put32(b, 24, r.requestCrc);
  put16(b, 28, r.key.length);
  put16(b, 30, r.value.length);
  put16(b, 32, r.reply.length);
  b.set(r.key, REC_HDR);
  b.set(r.value, REC_HDR + r.key.length);
  b.set(r.reply, REC_HDR + r.key.length + r.value.length);
  put32(b, 36, crc32(b.subarray(0, len)));
  return b;
}

/** Reads `count` sectors at `lba` from an image. */
export type SectorReader = (lba: number, count: number) => Uint8Array;

/** The record at `at` in generation's region with sequence number seq, and its sector count; null if not valid. */
function readRecord(read: SectorReader, generation: number, at: number, seq: number): { rec: LogRecord; sectors: number } | null {
  if (at >= REGION_SECTORS) return null;
  const first = read(regionLba(generation) + at, 1);
  if (REC_MAGIC.some((m, k) => first[k] !== m) || u32(first, 4) !== generation || u32(first, 8) !== seq) return null;
  const len = u16(first, 12);
  const n = sectorsFor(len);
  if (len < REC_HDR || n > 4 || at + n > REGION_SECTORS) return null;
  const b = n > 1 ? read(regionLba(generation) + at, n) : first;
  const body = b.slice(0, len);
  const crc = u32(body, 36);
  put32(body, 36, 0);
  if (crc32(body) !== crc) return null;
  const type = b[14], kl = u16(b, 28), vl = u16(b, 30), rl = u16(b, 32);
  if (REC_HDR + kl + vl + rl !== len || kl > 64 || vl > 512) return null;
  const client = u32(b, 16);
  const ok = type === RecordType.Set ? kl > 0 : type === RecordType.Delete ? kl > 0 && vl === 0 : type === RecordType.Client ? kl === 0 && vl === 0 && client !== 0 : false;
  if (!ok || (client === 0) !== (rl === 0)) return null;
  return {
    rec: {
      type, client, last: u32(b, 20), requestCrc: u32(b, 24),
      key: b.slice(REC_HDR, REC_HDR + kl), value: b.slice(REC_HDR + kl, REC_HDR + kl + vl), reply: b.slice(REC_HDR + kl + vl, len),
    },
    sectors: n,
  };
}

/** Reads the superblocks and the current region's log as the guest recovers it. */
export function readDisk(read: SectorReader): DiskState {
  const generation = Math.max(decodeSuperblock(read(0, 1), 0), decodeSuperblock(read(1, 1), 1));
  const state: DiskState = { generation, records: [], positions: [], end: 0, store: new Map(), clients: new Map() };
  if (!generation) return state;
  let at = 0;
  for (let seq = 0; ; seq++) {
    const r = readRecord(read, generation, at, seq);
    if (!r) break;
    state.records.push(r.rec);
    state.positions.push(at);
    const id = Buffer.from(r.rec.key).toString("hex");
    if (r.rec.type === RecordType.Set) state.store.set(id, { key: r.rec.key, value: r.rec.value });
    else if (r.rec.type === RecordType.Delete) state.store.delete(id);
    if (r.rec.client) {
      state.clients.delete(r.rec.client); // re-inserted last: Map order is log order
      state.clients.set(r.rec.client, { last: r.rec.last, requestCrc: r.rec.requestCrc, reply: r.rec.reply });
    }
    at += r.sectors;
  }
  state.end = at;
  return state;
}
