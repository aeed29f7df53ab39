// The stack: SS-relative pushes and pops with a 32-bit stack pointer (SS is a
// flat 32-bit segment for now). A push writes memory before moving ESP and a
// pop reads before moving it, so an aborted instruction leaves ESP as it was.

import { st, setSt } from "./target/wasm";
import { ESP, SEG_SS, S_ABORT } from "./state";
import { linear } from "./decode";
import { rd16, rd32, wr16, wr32 } from "./memory";

// @ts-ignore: decorator
@inline export function push32(v: i32): void {
  const sp = (st(ESP) - 4) | 0;
  wr32(linear(SEG_SS, sp), v);
  setSt(ESP, sp);
}
export function push16(v: i32): void {
  const sp = (st(ESP) - 2) | 0;
  wr16(linear(SEG_SS, sp), v);
  setSt(ESP, sp);
}
export function pushN(v: i32, size: i32): void {
  if (size == 4) push32(v); else push16(v);
}
/** Pops a dword; callers must check aborted() before using the value. */
// @ts-ignore: decorator
@inline export function pop32(): i32 {
  const sp = st(ESP);
  const v = rd32(linear(SEG_SS, sp));
  if (st(S_ABORT) == 0) setSt(ESP, (sp + 4) | 0);
  return v;
}
export function pop16(): i32 {
  const sp = st(ESP);
  const v = rd16(linear(SEG_SS, sp));
  if (st(S_ABORT) == 0) setSt(ESP, (sp + 2) | 0);
  return v;
}
export function popN(size: i32): i32 {
  return size == 4 ? pop32() : pop16();
}
/** Reads the value `off` bytes above the stack top without popping. */
export function peekN(off: i32, size: i32): i32 {
  const a = linear(SEG_SS, (st(ESP) + off) | 0);
  return size == 4 ? rd32(a) : rd16(a);
}
