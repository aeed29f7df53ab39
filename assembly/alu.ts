// ADD OR ADC SBB AND SUB XOR CMP (the 00-3F / 80-83 group), INC DEC NEG NOT.
// Values are sign-extended or zero-extended i32; `top` is the sign-bit index
// (7, 15, 31) and results are returned untruncated: the writer truncates.

import { flagsAdd, flagsAdc, flagsSub, flagsSbb, flagsLogic, flagsIncDec, getCF } from "./flags";

export const ALU_ADD: i32 = 0;
export const ALU_OR: i32 = 1;
export const ALU_ADC: i32 = 2;
export const ALU_SBB: i32 = 3;
export const ALU_AND: i32 = 4;
export const ALU_SUB: i32 = 5;
export const ALU_XOR: i32 = 6;
export const ALU_CMP: i32 = 7;

/** Applies ALU operation op (the ModRM reg / opcode bits 3..5) and sets flags. */
// @ts-ignore: decorator
@inline export function alu(op: i32, a: i32, b: i32, top: i32): i32 {
  let r: i32;
  switch (op) {
    case ALU_ADD: r = (a + b) | 0; flagsAdd(a, b, r, top); return r;
    case ALU_OR: r = a | b; flagsLogic(r, top); return r;
    case ALU_ADC: r = (a + b + getCF()) | 0; flagsAdc(a, b, r, top); return r;
    case ALU_SBB: r = (a - b - getCF()) | 0; flagsSbb(a, b, r, top); return r;
    case ALU_AND: r = a & b; flagsLogic(r, top); return r;
    case ALU_SUB: r = (a - b) | 0; flagsSub(a, b, r, top); return r;
    case ALU_XOR: r = a ^ b; flagsLogic(r, top); return r;
    default: r = (a - b) | 0; flagsSub(a, b, r, top); return r; // CMP
  }
}

export function inc(a: i32, top: i32): i32 {
  const r = (a + 1) | 0;
  flagsIncDec(a, r, top, false);
  return r;
}
export function dec(a: i32, top: i32): i32 {
  const r = (a - 1) | 0;
  flagsIncDec(a, r, top, true);
  return r;
}
/** NEG: 0 - a; CF = (a != 0), which the SUB carry formula yields. */
export function neg(a: i32, top: i32): i32 {
  const r = (0 - a) | 0;
  flagsSub(0, a, r, top);
  return r;
}
