// DAA DAS AAA AAS AAM AAD: SDM Vol. 2A pseudo-code. Undefined flags: OF is
// cleared by all six; AAA/AAS set SF/ZF/PF from the final AL; AAM/AAD clear
// CF and AF.

import { reg8, setReg8, reg16, setReg16 } from "./target/wasm";
import { getAF, getCF, flagsResult } from "./flags";
import { fault } from "./exits";
import { VEC_DE } from "./state";

export function daa(): void {
  const oldAl = reg8(0);
  const oldCf = getCF();
  let al = oldAl;
  let cf: i32 = 0;
  let af: i32 = 0;
  if ((al & 0xf) > 9 || getAF() != 0) {
    cf = oldCf | (al > 0xf9 ? 1 : 0);
    al = (al + 6) & 0xff;
    af = 1;
  }
  if (oldAl > 0x99 || oldCf != 0) { al = (al + 0x60) & 0xff; cf = 1; } else cf = 0;
  setReg8(0, al);
  flagsResult(al, 7, cf, 0, af);
}

export function das(): void {
  const oldAl = reg8(0);
  const oldCf = getCF();
  let al = oldAl;
  let cf: i32 = 0;
  let af: i32 = 0;
  if ((al & 0xf) > 9 || getAF() != 0) {
    cf = oldCf | (al < 6 ? 1 : 0);
    al = (al - 6) & 0xff;
    af = 1;
  }
  if (oldAl > 0x99 || oldCf != 0) { al = (al - 0x60) & 0xff; cf = 1; }
  setReg8(0, al);
  flagsResult(al, 7, cf, 0, af);
}

export function aaa(): void {
  let ax = reg16(0);
  let c: i32 = 0;
  if ((ax & 0xf) > 9 || getAF() != 0) { ax = (ax + 0x106) & 0xffff; c = 1; }
  ax &= 0xff0f;
  setReg16(0, ax);
  flagsResult(ax & 0xff, 7, c, 0, c);
}

export function aas(): void {
  let ax = reg16(0);
  let c: i32 = 0;
  if ((ax & 0xf) > 9 || getAF() != 0) {
    // AX - 6 (a borrow out of AL reaches AH), then AH - 1: SDM "AAS".
    ax = (ax - 6) & 0xffff;
    ax = (((ax >> 8) - 1) & 0xff) << 8 | (ax & 0xff);
    c = 1;
  }
  ax &= 0xff0f;
  setReg16(0, ax);
  flagsResult(ax & 0xff, 7, c, 0, c);
}

export function aam(base: i32): void {
  if (base == 0) { fault(VEC_DE, -1); return; }
  const al = reg8(0);
  const q = (al / base) | 0;
  const r = al - q * base;
  setReg16(0, ((q & 0xff) << 8) | r);
  flagsResult(r, 7, 0, 0, 0);
}

export function aad(base: i32): void {
  const al = (reg8(0) + reg8(4) * base) & 0xff;
  setReg16(0, al);
  flagsResult(al, 7, 0, 0, 0);
}
