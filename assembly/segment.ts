// Segment registers. Flat model for now: every base is 0 except FS/GS, which
// the host may set; loading a selector changes only the selector. The GDT,
// descriptor checks and #GP come with protected-mode segmentation.

import { st, setSt } from "./target/wasm";
import { S_SEL, ESP, SEG_SS } from "./state";
import { isO16, linear } from "./decode";
import { wrN } from "./memory";
import { push16, popN } from "./stack";
import { aborted } from "./memory";

export function loadSeg(s: i32, sel: i32): void {
  setSt(S_SEL + s, sel & 0xffff);
}

/**
 * PUSH Sreg. With a 32-bit operand size ESP moves by 4 but only the low word is
 * written, leaving the upper half of the slot as it was (what recent Intel
 * parts do; SDM Vol. 2B "PUSH").
 */
export function pushSeg(s: i32): void {
  const sel = st(S_SEL + s) & 0xffff;
  if (isO16()) { push16(sel); return; }
  const sp = (st(ESP) - 4) | 0;
  wrN(linear(SEG_SS, sp), 2, sel);
  setSt(ESP, sp);
}

export function popSeg(s: i32): void {
  const v = popN(isO16() ? 2 : 4);
  if (aborted()) return;
  loadSeg(s, v);
}
