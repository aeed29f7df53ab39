// Register and ModRM r/m operands of a run-time size (1, 2 or 4 bytes).
// rmRead() decodes a memory operand and remembers its address, so the
// read-modify-write forms can write back with rmWrite() without decoding twice.

import { st, setSt, reg8, setReg8, reg16, setReg16 } from "./target/wasm";
import { modrmEA } from "./decode";
import { rdN, wrN } from "./memory";

let ea: i32 = 0;
export function operandReset(): void { ea = 0; }

// @ts-ignore: decorator
@inline export function lastEA(): i32 { return ea; }
// @ts-ignore: decorator
@inline export function setEA(a: i32): void { ea = a; }

export function regRead(r: i32, size: i32): i32 {
  return size == 4 ? st(r) : size == 2 ? reg16(r) : reg8(r);
}
export function regWrite(r: i32, size: i32, v: i32): void {
  if (size == 4) setSt(r, v); else if (size == 2) setReg16(r, v & 0xffff); else setReg8(r, v & 0xff);
}
export function rmRead(m: i32, size: i32): i32 {
  if (m >= 0xc0) return regRead(m & 7, size);
  ea = modrmEA(m);
  return rdN(ea, size);
}
/** Writes the r/m operand of the ModRM byte m; for memory, at the address rmRead()/rmAddr() decoded. */
export function rmWrite(m: i32, size: i32, v: i32): void {
  if (m >= 0xc0) regWrite(m & 7, size, v); else wrN(ea, size, v);
}
/** Decodes a memory operand's address without reading it (write-only forms). */
export function rmAddr(m: i32): void {
  if (m < 0xc0) ea = modrmEA(m);
}
/** Sign bit index for an operand size. */
// @ts-ignore: decorator
@inline export function topBit(size: i32): i32 { return (size << 3) - 1; }
/** Sign-extends the low `size` bytes of v. */
export function sext(v: i32, size: i32): i32 {
  return size == 4 ? v : size == 2 ? (v << 16) >> 16 : (v << 24) >> 24;
}
export function zext(v: i32, size: i32): i32 {
  return size == 4 ? v : size == 2 ? v & 0xffff : v & 0xff;
}
