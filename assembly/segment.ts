// Segment registers in protected mode (SDM Vol. 3A chapter 3, and "MOV",
// "POP", "JMP", "CALL" in Vol. 2). A selector load reads the descriptor from
// the GDT, checks it, and caches base, limit and attributes in the state.
// At CPL 0 only; no LDT (a TI=1 selector is #GP), no call or task gates, no
// 16-bit code segments (#GP on a far transfer to one).
//
// Access checks (decode.ts linear()): while every segment is flat (base any,
// limit 4 GiB, usable, expand-up) nothing is checked; otherwise an offset
// past the limit or a use of a null segment raises #GP(0) (#SS(0) for SS).
// Not checked yet: the last byte of a multi-byte access against the limit,
// writes through read-only segments, and EIP against the CS limit.

import { st, setSt } from "./target/wasm";
import {
  S_SEL, S_BASE, S_LIMIT, S_ATTR, ATTR_DB, ATTR_UNUSABLE, S_GDT_BASE, S_GDT_LIMIT,
  ESP, SEG_SS, SEG_CS, VEC_GP, VEC_NP, VEC_SS,
} from "./state";
import { isO16, linear, setSegsFlat } from "./decode";
import { rd32, wrN, rd8, wr8, aborted } from "./memory";
import { push16, popN } from "./stack";
import { fault } from "./exits";
import { leu } from "./target/wasm";

let descLo: i32 = 0;
let descHi: i32 = 0;
export function segmentReset(): void { descLo = 0; descHi = 0; }

/** Base, limit (byte-granular, last valid offset) and access byte of the descriptor in descLo/descHi. */
function descBase(): i32 { return ((descLo >>> 16) & 0xffff) | ((descHi & 0xff) << 16) | (descHi & 0xff000000); }
function descLimit(): i32 {
  const raw = (descLo & 0xffff) | (descHi & 0xf0000);
  return (descHi & 0x800000) != 0 ? (raw << 12) | 0xfff : raw;
}
function descAccess(): i32 { return (descHi >>> 8) & 0xff; }

/**
 * Reads the GDT descriptor of `sel` into descLo/descHi. Faults #GP(selector)
 * for an LDT selector or one past the GDT limit; returns false if it faulted
 * or the read aborted.
 */
function readDesc(sel: i32): bool {
  const idx = sel & 0xfff8;
  if ((sel & 4) != 0 || !leu(idx | 7, st(S_GDT_LIMIT))) { fault(VEC_GP, sel & 0xfffc); return false; }
  const a = (st(S_GDT_BASE) + idx) | 0;
  descLo = rd32(a);
  descHi = rd32((a + 4) | 0);
  return !aborted();
}

/** Sets the descriptor's accessed bit in the GDT, as the processor does on a load. */
function markAccessed(sel: i32): void {
  if ((descHi & 0x100) != 0) return;
  const a = (st(S_GDT_BASE) + (sel & 0xfff8) + 5) | 0;
  wr8(a, rd8(a) | 1);
}

function commit(s: i32, sel: i32, base: i32, limit: i32, attr: i32): void {
  setSt(S_SEL + s, sel & 0xffff);
  setSt(S_BASE + s, base);
  setSt(S_LIMIT + s, limit);
  setSt(S_ATTR + s, attr);
  refreshFlat();
}

/** Recomputes whether every segment is flat (decode.ts skips the checks then). */
export function refreshFlat(): void {
  let flat = true;
  for (let s = 0; s < 6; s++) {
    const attr = st(S_ATTR + s);
    const expandDown = (attr & 0x8) == 0 && (attr & 0x4) != 0;
    if (st(S_LIMIT + s) != -1 || (attr & ATTR_UNUSABLE) != 0 || expandDown) flat = false;
  }
  setSegsFlat(flat);
}

/** Flat 4 GiB segments with selector 0 (the state after reset and the loader's default). */
export function flatSegments(): void {
  for (let s = 0; s < 6; s++) {
    setSt(S_SEL + s, 0);
    setSt(S_BASE + s, 0);
    setSt(S_LIMIT + s, -1);
    setSt(S_ATTR + s, (s == SEG_CS ? 0x9b : 0x93) | ATTR_DB);
  }
  refreshFlat();
}

/**
 * MOV/POP to a data segment register or SS (s != CS). Returns false if it
 * faulted. SDM Vol. 2B "MOV", protected-mode operation.
 */
export function loadSeg(s: i32, sel: i32): bool {
  sel &= 0xffff;
  const idx = sel & 0xfffc;
  if ((sel & 0xfff8) == 0 && (sel & 4) == 0) {
    // A null selector: fine for DS ES FS GS (the segment becomes unusable), #GP(0) for SS.
    if (s == SEG_SS) { fault(VEC_GP, 0); return false; }
    commit(s, sel, 0, 0, ATTR_UNUSABLE);
    return true;
  }
  if (!readDesc(sel)) return false;
  const acc = descAccess();
  const type = acc & 0xf;
  const code = (type & 8) != 0;
  const dpl = (acc >> 5) & 3;
  const rpl = sel & 3;
  if ((acc & 0x10) == 0) { fault(VEC_GP, idx); return false; }              // system descriptor
  if (s == SEG_SS) {
    if (code || (type & 2) == 0 || rpl != 0 || dpl != 0) { fault(VEC_GP, idx); return false; }
    if ((acc & 0x80) == 0) { fault(VEC_SS, idx); return false; }
  } else {
    if (code && (type & 2) == 0) { fault(VEC_GP, idx); return false; }     // execute-only code
    if ((!code || (type & 4) == 0) && dpl < rpl) { fault(VEC_GP, idx); return false; }
    if ((acc & 0x80) == 0) { fault(VEC_NP, idx); return false; }
  }
  markAccessed(sel);
  commit(s, sel, descBase(), descLimit(), acc | 1 | ((descHi & 0x400000) != 0 ? ATTR_DB : 0));
  return true;
}

/**
 * Loads CS for a far JMP/CALL/RET or IRET to `sel`:`offset` at CPL 0.
 * Returns false if it faulted (nothing changed).
 */
export function loadCS(sel: i32, offset: i32): bool {
  sel &= 0xffff;
  const idx = sel & 0xfffc;
  if ((sel & 0xfff8) == 0 && (sel & 4) == 0) { fault(VEC_GP, 0); return false; }
  if (!readDesc(sel)) return false;
  const acc = descAccess();
  const type = acc & 0xf;
  const dpl = (acc >> 5) & 3;
  // Only code segments (no call/task gates); conforming: DPL <= CPL (0);
  // non-conforming: DPL = CPL and RPL <= CPL. 16-bit code is not supported.
  if ((acc & 0x10) == 0 || (type & 8) == 0) { fault(VEC_GP, idx); return false; }
  if (dpl != 0 || (sel & 3) != 0) { fault(VEC_GP, idx); return false; }
  if ((descHi & 0x400000) == 0) { fault(VEC_GP, idx); return false; }
  if ((acc & 0x80) == 0) { fault(VEC_NP, idx); return false; }
  const limit = descLimit();
  if (!leu(offset, limit)) { fault(VEC_GP, 0); return false; }
  markAccessed(sel);
  commit(SEG_CS, sel, descBase(), limit, acc | 1 | ATTR_DB);
  return true;
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
  const a = linear(SEG_SS, sp);
  if (aborted()) return;
  wrN(a, 2, sel);
  setSt(ESP, sp);
}

/** POP Sreg: the selector is checked and loaded before ESP moves. */
export function popSeg(s: i32): void {
  const size = isO16() ? 2 : 4;
  const saved = st(ESP);
  const v = popN(size);
  if (aborted()) return;
  if (!loadSeg(s, v & 0xffff)) setSt(ESP, saved);
}
