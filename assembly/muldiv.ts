// MUL, IMUL (one, two and three operands), DIV, IDIV. SDM Vol. 2A/2B.
// The undefined flags (SF ZF AF PF after multiplies, all six after divides)
// get fixed values: after a multiply SF/ZF/PF follow the low half of the
// result and AF is cleared; a divide leaves every flag as it was.

import { st, setSt, reg16, setReg16, reg8, mulU64, mulS64, mulHigh, divU64, divS64, divRemainder, imul as imul32, sdiv32 } from "./target/wasm";
import { flagsResult } from "./flags";
import { fault } from "./exits";
import { EAX, EDX, VEC_DE } from "./state";

/** One-operand MUL (signed = false) or IMUL of AL/AX/EAX by src; size in bytes. */
export function mul1(src: i32, size: i32, signed: bool): void {
  if (size == 1) {
    const a = reg8(0);
    let r: i32;
    let over: i32;
    if (signed) {
      r = ((a << 24) >> 24) * ((src << 24) >> 24);
      over = r != ((r << 24) >> 24) ? 1 : 0;
    } else {
      r = a * (src & 0xff);
      over = (r >> 8) != 0 ? 1 : 0;
    }
    setReg16(EAX, r & 0xffff);
    flagsResult(r, 7, over, over, 0);
  } else if (size == 2) {
    const a = reg16(EAX);
    let r: i32;
    let over: i32;
    if (signed) {
      r = ((a << 16) >> 16) * ((src << 16) >> 16);
      over = r != ((r << 16) >> 16) ? 1 : 0;
    } else {
      r = imul32(a, src & 0xffff);
      over = (r >>> 16) != 0 ? 1 : 0;
    }
    setReg16(EAX, r & 0xffff);
    setReg16(EDX, (r >>> 16) & 0xffff);
    flagsResult(r, 15, over, over, 0);
  } else {
    const a = st(EAX);
    const lo = signed ? mulS64(a, src) : mulU64(a, src);
    const hi = mulHigh();
    const over = signed ? (hi != (lo >> 31) ? 1 : 0) : (hi != 0 ? 1 : 0);
    setSt(EAX, lo);
    setSt(EDX, hi);
    flagsResult(lo, 31, over, over, 0);
  }
}

/** Two/three-operand IMUL: returns a*b truncated to the size, sets CF=OF on overflow. */
export function imulTrunc(a: i32, b: i32, size: i32): i32 {
  if (size == 2) {
    const r = ((a << 16) >> 16) * ((b << 16) >> 16);
    const over = r != ((r << 16) >> 16) ? 1 : 0;
    flagsResult(r, 15, over, over, 0);
    return r & 0xffff;
  }
  const lo = mulS64(a, b);
  const over = mulHigh() != (lo >> 31) ? 1 : 0;
  flagsResult(lo, 31, over, over, 0);
  return lo;
}

/** DIV/IDIV of AX, DX:AX or EDX:EAX by src. Raises #DE (and changes nothing) on a zero divisor or an overflowing quotient. */
export function div1(src: i32, size: i32, signed: bool): void {
  if (size == 1) {
    const d = signed ? (src << 24) >> 24 : src & 0xff;
    if (d == 0) { fault(VEC_DE, -1); return; }
    const n = signed ? (reg16(EAX) << 16) >> 16 : reg16(EAX);
    // |n| < 2^15 so doubles divide exactly; truncate toward zero as IDIV does.
    const q = sdiv32(n, d);
    const r = n - imul32(q, d);
    if (signed ? (q < -128 || q > 127) : q > 255) { fault(VEC_DE, -1); return; }
    setReg16(EAX, ((r & 0xff) << 8) | (q & 0xff));
  } else if (size == 2) {
    const d = signed ? (src << 16) >> 16 : src & 0xffff;
    if (d == 0) { fault(VEC_DE, -1); return; }
    const n = (reg16(EDX) << 16) | reg16(EAX);
    let q: i32;
    let r: i32;
    if (signed) {
      if (n == -0x80000000 && d == -1) { fault(VEC_DE, -1); return; }
      q = sdiv32(n, d);
      r = (n - imul32(q, d)) | 0;
      if (q < -32768 || q > 32767) { fault(VEC_DE, -1); return; }
    } else {
      q = divU64(0, n, d);
      r = divRemainder();
      if (q > 0xffff || q < 0) { fault(VEC_DE, -1); return; }
    }
    setReg16(EAX, q & 0xffff);
    setReg16(EDX, r & 0xffff);
  } else {
    if (src == 0) { fault(VEC_DE, -1); return; }
    const q = signed ? divS64(st(EDX), st(EAX), src) : divU64(st(EDX), st(EAX), src);
    if (mulHigh() != 0) { fault(VEC_DE, -1); return; }
    setSt(EAX, q);
    setSt(EDX, divRemainder());
  }
}

