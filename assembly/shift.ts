// ROL ROR RCL RCR SHL SHR SAL SAR (the C0/C1/D0-D3 group) and SHLD/SHRD.
// SDM Vol. 2B "RCL/RCR/ROL/ROR" and "SAL/SAR/SHL/SHR": the count is masked to
// 5 bits; a masked count of 0 changes nothing, not even flags.
//
// Undefined results get fixed values (docs/cpu.md lists them):
// - OF for counts > 1 uses the count-1 formula;
// - AF after SHL/SHR/SAR/SHLD/SHRD is cleared;
// - CF for SHL/SHR counts >= the operand size is the last bit shifted out of
//   the value held in a 32-bit register (0 once everything has left).

import { flagsResult, getCF, setFlagBits } from "./flags";
import { CF, OF } from "./state";

export const SH_ROL: i32 = 0;
export const SH_ROR: i32 = 1;
export const SH_RCL: i32 = 2;
export const SH_RCR: i32 = 3;
export const SH_SHL: i32 = 4;
export const SH_SHR: i32 = 5;
export const SH_SAL: i32 = 6;
export const SH_SAR: i32 = 7;

/** Returns the shifted value; `v` zero-extended to the operand size, `top` = sign-bit index. */
export function shift(op: i32, v: i32, count: i32, top: i32): i32 {
  const c = count & 0x1f;
  if (c == 0) return v;
  const bits = top + 1;
  const mask: i32 = top == 31 ? -1 : (1 << bits) - 1;
  let r: i32 = 0;
  let cf: i32 = 0;
  switch (op) {
    case SH_ROL: {
      const k = c & top;                 // c mod size (size is a power of two)
      r = k == 0 ? v : ((v << k) | (v >>> (bits - k))) & mask;
      cf = r & 1;
      setRotFlags(cf, ((r >>> top) & 1) ^ cf);
      return r;
    }
    case SH_ROR: {
      const k = c & top;
      r = k == 0 ? v : ((v >>> k) | (v << (bits - k))) & mask;
      cf = (r >>> top) & 1;
      setRotFlags(cf, cf ^ ((r >>> (top - 1)) & 1));
      return r;
    }
    case SH_RCL: {
      const k = c % (bits + 1);
      if (k == 0) return v;
      r = v; cf = getCF();
      for (let i = 0; i < k; i++) {
        const out = (r >>> top) & 1;
        r = ((r << 1) | cf) & mask;
        cf = out;
      }
      setRotFlags(cf, ((r >>> top) & 1) ^ cf);
      return r;
    }
    case SH_RCR: {
      const k = c % (bits + 1);
      if (k == 0) return v;
      r = v; cf = getCF();
      for (let i = 0; i < k; i++) {
        const out = r & 1;
        r = ((r >>> 1) | (cf << top)) & mask;
        cf = out;
      }
      setRotFlags(cf, ((r >>> top) & 1) ^ ((r >>> (top - 1)) & 1));
      return r;
    }
    case SH_SHR: {
      r = v >>> c;
      cf = (v >>> (c - 1)) & 1;
      flagsResult(r, top, cf, (v >>> top) & 1, 0);
      return r;
    }
    case SH_SAR: {
      const sv = (v << (31 - top)) >> (31 - top);  // sign-extend to 32 bits
      r = (sv >> c) & mask;
      cf = (sv >> (c - 1)) & 1;
      flagsResult(r, top, cf, 0, 0);
      return r;
    }
    default: { // SHL, SAL
      r = (v << c) & mask;
      cf = c > bits ? 0 : (v >>> (bits - c)) & 1;
      if (top == 31) cf = (v >>> (32 - c)) & 1;
      flagsResult(r, top, cf, ((r >>> top) & 1) ^ cf, 0);
      return r;
    }
  }
}

function setRotFlags(cf: i32, ovf: i32): void {
  setFlagBits(CF, cf != 0);
  setFlagBits(OF, ovf != 0);
}

/**
 * SHLD (left = true) / SHRD: shifts dst, filling from src. For 16-bit operands
 * with counts above 16 (result undefined in the SDM) we shift the 48-bit
 * pattern dst:src:dst, as Intel parts do.
 */
export function shiftDouble(left: bool, dst: i32, src: i32, count: i32, top: i32): i32 {
  const c = count & 0x1f;
  if (c == 0) return dst;
  let r: i32 = 0;
  let cf: i32 = 0;
  if (top == 31) {
    if (left) {
      r = (dst << c) | (src >>> (32 - c));
      cf = (dst >>> (32 - c)) & 1;
    } else {
      r = (dst >>> c) | (src << (32 - c));
      cf = (dst >>> (c - 1)) & 1;
    }
  } else {
    // 16-bit: work on dst:src (32 bits) and, past 16, on src:dst.
    if (left) {
      const hi = c <= 16 ? ((dst << 16) | src) : ((src << 16) | dst);
      const k = c <= 16 ? c : c - 16;
      r = ((hi << k) >>> 16) & 0xffff;
      cf = k == 0 ? 0 : (hi >>> (32 - k)) & 1;
      if (k == 16) r = c <= 16 ? src : dst;
    } else {
      const lo = c <= 16 ? ((src << 16) | dst) : ((dst << 16) | src);
      const k = c <= 16 ? c : c - 16;
      r = (lo >>> k) & 0xffff;
      cf = (lo >>> (k - 1)) & 1;
    }
  }
  const ovf = ((r ^ dst) >>> top) & 1;
  flagsResult(r, top, cf, ovf, 0);
  return r;
}
