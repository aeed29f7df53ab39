// The one table of replay-log event kinds. Each kind's code, name, payload
// size, encoder, decoder and phase are written here once; the log writer and
// reader (log-format.ts), the live gate (live-gate.ts), the replay gate
// (replay-gate.ts) and the logging channel all derive what they need from it.
// docs/log-format.md describes the same table for readers of the bytes.

/** Largest payload a single entry may carry. */
export const MAX_PAYLOAD = 64 * 1024;

/**
 * When the guest takes an entry's value, which fixes where the replay applies it:
 * - start: once, before the first instruction (the RTC's calendar base);
 * - boundary: outside input applied between instructions, at a boundary the
 *   live side chose (the replay stops there);
 * - instruction: asked for by an instruction as it executes; logged at the
 *   count before it retires, so the replay runs one instruction past it;
 * - device: asked for by a device between instructions (disk data when an
 *   operation completes);
 * - check: a consequence the machine computes itself; the replay must
 *   reproduce it at the same count with the same payload.
 */
export type Phase = "start" | "boundary" | "instruction" | "device" | "check";

/** A disk sector as the disk read it. */
export interface SectorRead {
  lba: number;
  data: Uint8Array;
}

export interface KindSpec<V> {
  readonly code: number;
  readonly name: string;
  readonly phase: Phase;
  /** Payload bytes the format fixes, or null for any length up to `maxSize`. */
  readonly size: number | null;
  readonly minSize: number;
  encode(value: V): Uint8Array;
  /** Decodes a payload the reader accepted (check() returned null). */
  decode(payload: Uint8Array): V;
  /** Why the payload is not a valid value of this kind, or null if it is. */
  check(payload: Uint8Array): string | null;
}

const SECTOR_BYTES = 512;
const view = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset, p.byteLength);

function sizeCheck(name: string, size: number | null, minSize: number, p: Uint8Array): string | null {
  if (size !== null && p.length !== size) return `${name} payload must be ${size} bytes, got ${p.length}`;
  if (p.length < minSize) return `${name} payload must be at least ${minSize} bytes, got ${p.length}`;
  if (p.length > MAX_PAYLOAD) return `${name} payload of ${p.length} bytes exceeds ${MAX_PAYLOAD}`;
  return null;
}

function kind<V>(code: number, name: string, phase: Phase, size: number | null, codec: {
  encode(v: V): Uint8Array;
  decode(p: Uint8Array): V;
  /** Checks beyond the size. */
  valid?(p: Uint8Array): string | null;
  minSize?: number;
}): KindSpec<V> {
  const minSize = codec.minSize ?? 0;
  return {
    code, name, phase, size, minSize, encode: codec.encode, decode: codec.decode,
    check: (p) => sizeCheck(name, size, minSize, p) ?? codec.valid?.(p) ?? null,
  };
}

/** An unsigned 64-bit value that JavaScript numbers hold exactly (nanoseconds, milliseconds, counter values). */
const u64 = {
  encode(v: number): Uint8Array {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a non-negative safe integer: ${v}`);
    const b = new Uint8Array(8);
    view(b).setBigUint64(0, BigInt(v), true);
    return b;
  },
  decode: (p: Uint8Array): number => Number(view(p).getBigUint64(0, true)),
  valid(p: Uint8Array): string | null {
    const v = view(p).getBigUint64(0, true);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? `value ${v} is too large (over 2^53 - 1)` : null;
  },
};
const u32 = {
  encode(v: number): Uint8Array {
    const b = new Uint8Array(4);
    view(b).setUint32(0, v >>> 0, true);
    return b;
  },
  decode: (p: Uint8Array): number => view(p).getUint32(0, true),
};
const u8 = {
  encode: (v: number): Uint8Array => Uint8Array.of(v & 0xff),
  decode: (p: Uint8Array): number => p[0]!,
};
/** Bytes as they are (copied on encode and decode: a payload never aliases a caller's buffer). */
const bytes = (minSize: number) => ({
  encode: (v: Uint8Array): Uint8Array => v.slice(),
  decode: (p: Uint8Array): Uint8Array => p.slice(),
  minSize,
});
const sector = {
  encode(v: SectorRead): Uint8Array {
    if (v.data.length !== SECTOR_BYTES) throw new RangeError(`a sector is ${SECTOR_BYTES} bytes, got ${v.data.length}`);
    const b = new Uint8Array(4 + SECTOR_BYTES);
    view(b).setUint32(0, v.lba >>> 0, true);
    b.set(v.data, 4);
    return b;
  },
  decode: (p: Uint8Array): SectorRead => ({ lba: view(p).getUint32(0, true), data: p.slice(4) }),
};

/** Every kind, by its name. Codes are the log's bytes: never renumber one. 0 is reserved; 0xFF is the end record. */
export const KINDS = {
  /** Guest time set from the host clock: ns. */
  TIME: kind(1, "TIME", "boundary", 8, u64),
  /** The value an RDTSC read. */
  RDTSC: kind(2, "RDTSC", "instruction", 8, u64),
  /** An RDRAND/RDSEED value. */
  ENTROPY: kind(3, "ENTROPY", "instruction", 4, u32),
  /** Bytes into COM1's receiver. */
  SERIAL_RX: kind(4, "SERIAL_RX", "boundary", null, bytes(1)),
  /** One frame into the NIC. */
  NIC_RX: kind(5, "NIC_RX", "boundary", null, bytes(0)),
  /** A disk operation completed (check): the operation's number (host/devices/ata-disk.ts ATA_OPERATIONS). */
  DISK_COMPLETE: kind(6, "DISK_COMPLETE", "check", 1, u8),
  /** A sector the disk read: LBA and 512 bytes. */
  DISK_READ_DATA: kind(7, "DISK_READ_DATA", "device", 4 + SECTOR_BYTES, sector),
  /** An interrupt delivered (check): the vector. */
  IRQ: kind(8, "IRQ", "check", 1, u8),
  /** Calendar time at guest time 0: ms since 1970. */
  WALLCLOCK: kind(9, "WALLCLOCK", "start", 8, u64),
} as const;

export type KindName = keyof typeof KINDS;

/** Codes by name (EventKind.TIME === 1), for code that handles raw entries. */
export const EventKind = Object.fromEntries(Object.entries(KINDS).map(([n, k]) => [n, k.code])) as { readonly [N in KindName]: (typeof KINDS)[N]["code"] };
export type EventKind = (typeof EventKind)[KindName];

/** The end record's kind byte. */
export const END_KIND = 0xff;

const BY_CODE = new Map<number, KindSpec<unknown>>(Object.values(KINDS).map((k) => [k.code, k as KindSpec<unknown>]));

/** The spec of `code`, or undefined for a code the format does not define. */
export function kindSpec(code: number): KindSpec<unknown> | undefined {
  return BY_CODE.get(code);
}

export function kindName(code: number): string {
  return code === END_KIND ? "END" : (BY_CODE.get(code)?.name ?? `unknown(${code})`);
}

export function isKnownKind(code: number): boolean {
  return BY_CODE.has(code);
}

/** The codes of the kinds in `phase`. */
export function codesIn(phase: Phase): ReadonlySet<number> {
  return new Set(Object.values(KINDS).filter((k) => k.phase === phase).map((k) => k.code));
}
