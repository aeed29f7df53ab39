// Helpers shared by the 8-bit ISA devices: how a 16- or 32-bit IN/OUT reaches
// a device whose registers are one byte wide, and small state-checking helpers
// for loadState.
//
// On a PC a wide access to an 8-bit device is split by the bus into byte
// cycles at consecutive ports, lowest port (and lowest byte) first. A device
// answers the bytes whose ports it decodes; the other bytes read as 0xFF (an
// undriven bus) and their writes go nowhere. The byte cycles have their side
// effects in that order (a 16-bit IN from a UART's RBR also reads its IER).

import type { AccessSize } from "./device.js";

/** True if `port` lies in one of the ranges. */
export function decodes(ranges: readonly (readonly [number, number])[], port: number): boolean {
  for (const [start, end] of ranges) if (port >= start && port < end) return true;
  return false;
}

/** A wide read as byte reads at port, port+1, ... (bytes outside `ranges` read 0xFF). */
export function readBytes(
  ranges: readonly (readonly [number, number])[],
  port: number,
  size: AccessSize,
  readByte: (port: number) => number,
): number {
  let v = 0;
  for (let i = 0; i < size; i++) {
    const p = (port + i) & 0xffff;
    const b = decodes(ranges, p) ? readByte(p) & 0xff : 0xff;
    v |= b << (8 * i);
  }
  return v >>> 0;
}

/** A wide write as byte writes at port, port+1, ... (bytes outside `ranges` are dropped). */
export function writeBytes(
  ranges: readonly (readonly [number, number])[],
  port: number,
  size: AccessSize,
  value: number,
  writeByte: (port: number, value: number) => void,
): void {
  for (let i = 0; i < size; i++) {
    const p = (port + i) & 0xffff;
    if (decodes(ranges, p)) writeByte(p, (value >>> (8 * i)) & 0xff);
  }
}

/** Mask of the low `size` bytes. */
export function sizeMask(size: AccessSize): number {
  return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
}

// ---- loadState checking: snapshots come from files, so check what we read ----

export function asRecord(state: unknown, what: string): Record<string, unknown> {
  if (typeof state !== "object" || state === null || Array.isArray(state)) throw new TypeError(`${what}: state is not an object`);
  return state as Record<string, unknown>;
}

export function int(r: Record<string, unknown>, key: string, what: string, min = 0, max = 0xffffffff): number {
  const v = r[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new TypeError(`${what}: state.${key} is not an integer in [${min}, ${max}]`);
  return v;
}

/** A finite number (guest times in ns may exceed 2^32). */
export function num(r: Record<string, unknown>, key: string, what: string): number {
  const v = r[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new TypeError(`${what}: state.${key} is not a finite number`);
  return v;
}

export function bool(r: Record<string, unknown>, key: string, what: string): boolean {
  const v = r[key];
  if (typeof v !== "boolean") throw new TypeError(`${what}: state.${key} is not a boolean`);
  return v;
}

export function bytes(r: Record<string, unknown>, key: string, what: string, maxLen: number): number[] {
  const v = r[key];
  if (!Array.isArray(v) || v.length > maxLen || !v.every((b) => typeof b === "number" && Number.isInteger(b) && b >= 0 && b <= 0xff))
    throw new TypeError(`${what}: state.${key} is not an array of at most ${maxLen} bytes`);
  return v.slice();
}
