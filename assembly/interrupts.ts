// Interrupt and exception delivery through the IDT, and IRET (SDM Vol. 3A
// 6.12 "Exception and Interrupt Handling", Vol. 2A "INT n", "IRET").
// At CPL 0 with 32-bit interrupt and trap gates; no task gates, no 16-bit
// gates, no privilege change (so no stack switch), no virtual-8086 mode.
// Delivery counts as no instruction.

import { st, setSt, leu } from "./target/wasm";
import {
  S_IDT_BASE, S_IDT_LIMIT, S_IDT_SET, S_SEL, S_BASE, SEG_CS, ESP, S_EXIT, S_ABORT, S_EXIT_VECTOR,
  S_EXIT_ERROR, S_HALTED, S_PENDING_EXIT, EXIT_TRIPLE_FAULT, VEC_GP, VEC_NP, VEC_DF, IF, TF, FLAGS_WRITABLE,
} from "./state";
import { rd32, aborted } from "./memory";
import { getFlags, setFlags } from "./flags";
import { push32, peekN } from "./stack";
import { loadCS } from "./segment";
import { fault } from "./exits";
import { setIp, isO16 } from "./decode";

const NT: i32 = 0x4000;
const RF: i32 = 0x10000;
const VM: i32 = 0x20000;

/** Whether exceptions and INT n go through the IDT (the guest executed LIDT). */
// @ts-ignore: decorator
@inline export function idtActive(): bool { return st(S_IDT_SET) != 0; }

/** Exceptions that push an error code. */
export function hasErrorCode(vec: i32): bool {
  return vec == 8 || (vec >= 10 && vec <= 14) || vec == 17;
}

/**
 * Delivers vector `vec` with return address `retEip` (and error code `err`
 * unless -1). `ext` is 1 for an event external to the program (hardware
 * interrupt or exception), 0 for INT n; it goes into the error code of a
 * fault raised while reading the IDT. Returns false, with that fault raised,
 * if delivery itself faulted; the CPU state is then as before.
 */
export function deliver(vec: i32, retEip: i32, err: i32, ext: i32): bool {
  const gateErr = (vec << 3) | 2 | ext;
  if (!leu((vec << 3) | 7, st(S_IDT_LIMIT))) { fault(VEC_GP, gateErr); return false; }
  const a = (st(S_IDT_BASE) + (vec << 3)) | 0;
  const lo = rd32(a);
  const hi = rd32((a + 4) | 0);
  if (aborted()) return false;
  const type = (hi >> 8) & 0x1f;                 // S bit and gate type
  if (type != 0x0e && type != 0x0f) { fault(VEC_GP, gateErr); return false; }
  if ((hi & 0x8000) == 0) { fault(VEC_NP, gateErr); return false; }
  const sel = lo >>> 16;
  const offset = (lo & 0xffff) | (hi & 0xffff0000);

  // The frame goes on the current stack (same privilege level).
  const sp0 = st(ESP);
  const flags = getFlags();
  push32(flags);
  if (!aborted()) push32(st(S_SEL + SEG_CS) & 0xffff);
  if (!aborted()) push32(retEip);
  if (!aborted() && err >= 0) push32(err);
  if (aborted()) { setSt(ESP, sp0); return false; }
  if (!loadCS(sel, offset)) { setSt(ESP, sp0); return false; }

  let f = flags & ~(TF | NT | RF | VM);
  if (type == 0x0e) f &= ~IF;                   // an interrupt gate masks interrupts
  setFlags(f);
  setIp((st(S_BASE + SEG_CS) + offset) | 0);
  setSt(S_HALTED, 0);
  return true;
}

/**
 * The current instruction faulted (S_EXIT = FAULT, aborted) at `eip`: deliver
 * the exception through the IDT. A fault while delivering it becomes a double
 * fault (#DF, error code 0); a fault while delivering that is a triple fault,
 * which ends run() with EXIT_TRIPLE_FAULT (vector: the first exception,
 * error: the last). Returns true if execution can go on.
 */
export function deliverException(eip: i32): bool {
  const first = st(S_EXIT_VECTOR);
  const err = hasErrorCode(first) ? st(S_EXIT_ERROR) : -1;
  clearFault();
  if (deliver(first, eip, err, 1)) return true;
  if (first != VEC_DF) {
    clearFault();
    if (deliver(VEC_DF, eip, 0, 1)) return true;
  }
  const last = st(S_EXIT_VECTOR);
  setSt(S_EXIT, EXIT_TRIPLE_FAULT);
  setSt(S_PENDING_EXIT, EXIT_TRIPLE_FAULT); // and it stays dead
  setSt(S_EXIT_VECTOR, first);
  setSt(S_EXIT_ERROR, last);
  setSt(S_ABORT, 1);
  return false;
}

function clearFault(): void {
  setSt(S_EXIT, 0);
  setSt(S_ABORT, 0);
}

/** IRET at CPL 0 to CPL 0 (SDM Vol. 2A "IRET", protected-mode return to the same privilege level). */
export function iret(): void {
  const osz = isO16() ? 2 : 4;
  if ((getFlags() & NT) != 0) { fault(VEC_GP, 0); return; }  // task return: no task switching
  const eip = peekN(0, osz);
  const cs = peekN(osz, osz) & 0xffff;
  const fl = peekN(2 * osz, osz);
  if (aborted()) return;
  if ((cs & 3) != 0) { fault(VEC_GP, cs & 0xfffc); return; } // return to an outer ring
  if (osz == 4 && (fl & VM) != 0) { fault(VEC_GP, 0); return; } // virtual-8086 mode
  const target = osz == 2 ? eip & 0xffff : eip;
  if (!loadCS(cs, target)) return;
  setSt(ESP, (st(ESP) + 3 * osz) | 0);
  const writable = osz == 2 ? FLAGS_WRITABLE & 0xffff : FLAGS_WRITABLE | RF;
  setFlags((getFlags() & ~writable) | (fl & writable));
  setIp((st(S_BASE + SEG_CS) + target) | 0);
}
