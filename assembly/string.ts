// MOVS CMPS STOS LODS SCAS INS OUTS, with REP/REPE/REPNE.
//
// Each iteration of a REP instruction counts as one instruction on the VM's
// clock. EIP stays on the instruction until its last iteration, so a run whose
// budget ends mid-string returns with ECX/ESI/EDI describing the iterations
// done, exactly as a real CPU would be interrupted. step() (S_STEP_MODE) runs
// every iteration. A REP with a zero count does nothing and counts once.

import { st, setSt, reg16, setReg16, ltu } from "./target/wasm";
import { EAX, ECX, ESI, EDI, EDX, SEG_ES, S_LEFT, S_STEP_MODE, S_EXIT, EXIT_IN, EXIT_OUT } from "./state";
import { linear, dataSeg, isA16, getRep, setIp } from "./decode";
import { rdN, wrN, aborted } from "./memory";
import { getDF, getZF, flagsSub } from "./flags";
import { regRead, regWrite } from "./operand";
import { input, answer, output } from "./exits";

export const STR_MOVS: i32 = 0;
export const STR_CMPS: i32 = 1;
export const STR_STOS: i32 = 2;
export const STR_LODS: i32 = 3;
export const STR_SCAS: i32 = 4;
export const STR_INS: i32 = 5;
export const STR_OUTS: i32 = 6;

function getIndex(r: i32): i32 { return isA16() ? reg16(r) : st(r); }
function setIndex(r: i32, v: i32): void { if (isA16()) setReg16(r, v & 0xffff); else setSt(r, v); }

/** One iteration of string op `kind` on `size`-byte elements. */
function iteration(kind: i32, size: i32): void {
  const delta = getDF() != 0 ? -size : size;
  switch (kind) {
    case STR_MOVS: {
      const si = getIndex(ESI), di = getIndex(EDI);
      const v = rdN(linear(dataSeg(), si), size);
      if (aborted()) return;
      wrN(linear(SEG_ES, di), size, v);
      setIndex(ESI, (si + delta) | 0);
      setIndex(EDI, (di + delta) | 0);
      return;
    }
    case STR_CMPS: {
      const si = getIndex(ESI), di = getIndex(EDI);
      const a = rdN(linear(dataSeg(), si), size);
      const b = rdN(linear(SEG_ES, di), size);
      if (aborted()) return;
      flagsSub(a, b, (a - b) | 0, (size << 3) - 1);
      setIndex(ESI, (si + delta) | 0);
      setIndex(EDI, (di + delta) | 0);
      return;
    }
    case STR_STOS: {
      const di = getIndex(EDI);
      wrN(linear(SEG_ES, di), size, regRead(EAX, size));
      setIndex(EDI, (di + delta) | 0);
      return;
    }
    case STR_LODS: {
      const si = getIndex(ESI);
      const v = rdN(linear(dataSeg(), si), size);
      if (aborted()) return;
      regWrite(EAX, size, v);
      setIndex(ESI, (si + delta) | 0);
      return;
    }
    case STR_SCAS: {
      const di = getIndex(EDI);
      const b = rdN(linear(SEG_ES, di), size);
      if (aborted()) return;
      const a = regRead(EAX, size);
      flagsSub(a, b, (a - b) | 0, (size << 3) - 1);
      setIndex(EDI, (di + delta) | 0);
      return;
    }
    case STR_INS: {
      const port = reg16(EDX);
      if (!input(EXIT_IN, port, size)) return;
      const di = getIndex(EDI);
      wrN(linear(SEG_ES, di), size, answer(0));
      setIndex(EDI, (di + delta) | 0);
      return;
    }
    default: { // OUTS
      const si = getIndex(ESI);
      const v = rdN(linear(dataSeg(), si), size);
      if (aborted()) return;
      setIndex(ESI, (si + delta) | 0);
      output(EXIT_OUT, reg16(EDX), size, size == 4 ? v : size == 2 ? v & 0xffff : v & 0xff);
      return;
    }
  }
}

/** Executes a string instruction that starts at linear address `start`. */
export function stringOp(kind: i32, size: i32, start: i32): void {
  const rep = getRep();
  if (rep == 0) { iteration(kind, size); return; }
  let cnt = getIndex(ECX);
  if (cnt == 0) return;
  const stepMode = st(S_STEP_MODE) != 0;
  const cond = kind == STR_CMPS || kind == STR_SCAS;
  let left = st(S_LEFT);
  for (;;) {
    iteration(kind, size);
    if (aborted()) { setSt(S_LEFT, left); return; }
    cnt = (cnt - 1) | 0;
    setIndex(ECX, cnt);
    if (cnt == 0) break;
    if (cond && (getZF() != 0) != (rep == 0xf3)) break; // REPE stops on ZF=0, REPNE on ZF=1
    // More iterations remain: stop here if the budget is spent or the host
    // must see an output first; EIP stays on this instruction.
    if (st(S_EXIT) != 0 || (!stepMode && left <= 1)) {
      setIp(start);
      setSt(S_LEFT, left);
      return;
    }
    left = (left - 1) | 0;
  }
  setSt(S_LEFT, left);
}
