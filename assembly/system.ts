// System instructions of the 0F 01 group: LGDT, LIDT, SGDT, SIDT
// (SDM Vol. 2A). The pseudo-descriptor is a 16-bit limit followed by a
// 32-bit base (24 bits with a 16-bit operand size). The other 0F 01 forms
// (SMSW, LMSW, INVLPG...) and the 0F 00 group (LLDT, LTR...) are #UD for now.

import { st, setSt } from "./target/wasm";
import { S_GDT_BASE, S_GDT_LIMIT, S_IDT_BASE, S_IDT_LIMIT, S_IDT_SET, VEC_UD } from "./state";
import { fetch8, isO16, modrmEA, linear, lastSeg, modrmOffsetLast } from "./decode";
import { rd16, rd32, wr16, wr32, aborted } from "./memory";
import { fault } from "./exits";

export function system01(): void {
  const m = fetch8();
  const sub = (m >> 3) & 7;
  if (m >= 0xc0 || sub > 3) { fault(VEC_UD, -1); return; }
  const a = modrmEA(m);
  const next = linear(lastSeg(), (modrmOffsetLast() + 2) | 0);
  if (aborted()) return;
  const isIdt = (sub & 1) != 0;
  if (sub >= 2) { // LGDT / LIDT
    const limit = rd16(a);
    let base = rd32(next);
    if (aborted()) return;
    if (isO16()) base &= 0xffffff;
    setSt(isIdt ? S_IDT_BASE : S_GDT_BASE, base);
    setSt(isIdt ? S_IDT_LIMIT : S_GDT_LIMIT, limit);
    if (isIdt) setSt(S_IDT_SET, 1);
  } else { // SGDT / SIDT
    wr16(a, st(isIdt ? S_IDT_LIMIT : S_GDT_LIMIT));
    wr32(next, st(isIdt ? S_IDT_BASE : S_GDT_BASE));
  }
}
