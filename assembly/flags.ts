// EFLAGS with lazy status flags.
//
// Arithmetic records its operands and result instead of computing six flags
// that the next instruction usually overwrites. `lzMask` says which status bits
// are still to be derived from (lzOp, lzA, lzB, lzR, lzTop); every other bit of
// EFLAGS lives in `fl`. Carry and overflow come from the operand/result bits at
// the sign position, which is exact for ADC/SBB too (the carry-in is implied by
// a ^ b ^ r), so one formula serves ADD/ADC/INC and one SUB/SBB/CMP/DEC/NEG.

import { CF, PF, AF, ZF, SF, OF, STATUS } from "./state";
import { parity8, ltu, leu } from "./target/wasm";

// Lazy operation kinds. ADC/SBB use the ADD/SUB formulas but get kinds of
// their own, because cond() shortcuts SUB (CMP) conditions to direct compares
// of the operands, which a carry-in would make wrong.
export const LZ_ADD: i32 = 0;
export const LZ_SUB: i32 = 1;
export const LZ_ADC: i32 = 2;
export const LZ_SBB: i32 = 3;

let fl: i32 = 2;      // materialized EFLAGS (bit 1 always set)
let lzMask: i32 = 0;  // status bits to compute lazily
let lzOp: i32 = 0;
let lzA: i32 = 0;
let lzB: i32 = 0;
let lzR: i32 = 0;
let lzTop: i32 = 31;  // index of the sign bit: 7, 15 or 31

// @ts-ignore: decorator
@inline function sizeMask(top: i32): i32 { return top == 31 ? -1 : (2 << top) - 1; }

export function getCF(): i32 {
  if ((lzMask & CF) == 0) return fl & CF;
  const a = lzA, b = lzB, r = lzR;
  const c = (lzOp & 1) == 0 ? (a & b) | ((a ^ b) & ~r) : (~a & b) | (~(a ^ b) & r);
  return (c >>> lzTop) & 1;
}
export function getZF(): i32 {
  if ((lzMask & ZF) == 0) return (fl >> 6) & 1;
  return (lzR & sizeMask(lzTop)) == 0 ? 1 : 0;
}
export function getSF(): i32 {
  if ((lzMask & SF) == 0) return (fl >> 7) & 1;
  return (lzR >>> lzTop) & 1;
}
export function getOF(): i32 {
  if ((lzMask & OF) == 0) return (fl >> 11) & 1;
  const a = lzA, b = lzB, r = lzR;
  const o = (lzOp & 1) == 0 ? (a ^ r) & (b ^ r) : (a ^ b) & (a ^ r);
  return (o >>> lzTop) & 1;
}
export function getPF(): i32 {
  if ((lzMask & PF) == 0) return (fl >> 2) & 1;
  return parity8(lzR);
}
export function getAF(): i32 {
  if ((lzMask & AF) == 0) return (fl >> 4) & 1;
  return ((lzA ^ lzB ^ lzR) >> 4) & 1;
}

/** The whole EFLAGS register, lazy bits computed. */
export function getFlags(): i32 {
  if (lzMask == 0) return fl;
  let f = fl & ~lzMask;
  if (lzMask & CF) f |= getCF();
  if (lzMask & PF) f |= getPF() << 2;
  if (lzMask & AF) f |= getAF() << 4;
  if (lzMask & ZF) f |= getZF() << 6;
  if (lzMask & SF) f |= getSF() << 7;
  if (lzMask & OF) f |= getOF() << 11;
  return f;
}
/** Replaces EFLAGS wholesale (bit 1 forced on, bits 3, 5, 15 forced off). */
export function setFlags(v: i32): void {
  fl = (v | 2) & ~0x8028;
  lzMask = 0;
}
/** Materializes the lazy bits so single flags can be edited in `fl`. */
function settle(): void {
  if (lzMask != 0) { fl = getFlags(); lzMask = 0; }
}
export function setFlagBits(mask: i32, on: bool): void {
  settle();
  fl = on ? fl | mask : fl & ~mask;
}
/** Non-status bits (IF, DF, TF, IOPL...) never go lazy: read them directly. */
// @ts-ignore: decorator
@inline export function rawFlags(): i32 { return fl; }
export function getDF(): i32 { return (fl >> 10) & 1; }

// ---- recording results -------------------------------------------------------
// @ts-ignore: decorator
@inline export function flagsAdd(a: i32, b: i32, r: i32, top: i32): void {
  lzOp = LZ_ADD; lzA = a; lzB = b; lzR = r; lzTop = top; lzMask = STATUS;
}
// @ts-ignore: decorator
@inline export function flagsSub(a: i32, b: i32, r: i32, top: i32): void {
  lzOp = LZ_SUB; lzA = a; lzB = b; lzR = r; lzTop = top; lzMask = STATUS;
}
// @ts-ignore: decorator
@inline export function flagsAdc(a: i32, b: i32, r: i32, top: i32): void {
  lzOp = LZ_ADC; lzA = a; lzB = b; lzR = r; lzTop = top; lzMask = STATUS;
}
// @ts-ignore: decorator
@inline export function flagsSbb(a: i32, b: i32, r: i32, top: i32): void {
  lzOp = LZ_SBB; lzA = a; lzB = b; lzR = r; lzTop = top; lzMask = STATUS;
}
/** AND/OR/XOR/TEST: CF = OF = 0; AF is undefined and we clear it (as Intel and AMD parts do). */
// @ts-ignore: decorator
@inline export function flagsLogic(r: i32, top: i32): void {
  fl &= ~(CF | OF | AF);
  lzR = r; lzTop = top; lzMask = ZF | SF | PF;
}
/** INC/DEC: like ADD/SUB 1 but CF is preserved. */
export function flagsIncDec(a: i32, r: i32, top: i32, isDec: bool): void {
  const cf = getCF();
  fl = (fl & ~CF) | cf;
  lzOp = isDec ? LZ_SUB : LZ_ADD; lzA = a; lzB = 1; lzR = r; lzTop = top;
  lzMask = STATUS & ~CF;
}
/**
 * Sets the status flags from explicit CF/OF/AF values and a result for ZF/SF/PF
 * (shifts, multiplies, BCD...). cf, of, af are 0 or 1.
 */
export function flagsResult(r: i32, top: i32, cf: i32, ovf: i32, af: i32): void {
  fl = (fl & ~(CF | OF | AF)) | cf | (ovf << 11) | (af << 4);
  lzR = r; lzTop = top; lzMask = ZF | SF | PF;
}
/** Sets all six status flags explicitly (bits in their EFLAGS positions). */
export function flagsStatus(bits: i32): void {
  fl = (fl & ~STATUS) | (bits & STATUS);
  lzMask = 0;
}

/** Condition code cc (the low nibble of Jcc/SETcc/CMOVcc) on the current flags. */
// @ts-ignore: decorator
@inline export function cond(cc: i32): bool {
  // Fast path: the flags still describe a 32-bit SUB/CMP, so the condition is a
  // direct comparison of its operands.
  if (lzMask == STATUS && lzOp == LZ_SUB && lzTop == 31) {
    const a = lzA, b = lzB;
    let t: bool = false;
    switch (cc >> 1) {
      case 1: t = ltu(a, b); break;          // B
      case 2: t = a == b; break;             // Z
      case 3: t = leu(a, b); break;          // BE
      case 4: t = lzR < 0; break;            // S
      case 6: t = a < b; break;              // L
      case 7: t = a <= b; break;             // LE
      default: return condSlow(cc);          // O, P
    }
    return t != ((cc & 1) != 0);
  }
  return condSlow(cc);
}

function condSlow(cc: i32): bool {
  let r: i32 = 0;
  switch (cc >> 1) {
    case 0: r = getOF(); break;                                  // O
    case 1: r = getCF(); break;                                  // B
    case 2: r = getZF(); break;                                  // Z
    case 3: r = getCF() | getZF(); break;                        // BE
    case 4: r = getSF(); break;                                  // S
    case 5: r = getPF(); break;                                  // P
    case 6: r = getSF() ^ getOF(); break;                        // L
    default: r = (getSF() ^ getOF()) | getZF(); break;           // LE
  }
  return (r ^ (cc & 1)) != 0;
}

export function flagsReset(): void {
  fl = 2; lzMask = 0; lzOp = 0; lzA = 0; lzB = 0; lzR = 0; lzTop = 31;
}
