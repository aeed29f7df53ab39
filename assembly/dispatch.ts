// The run loop: executes from the decoded-instruction cache (icache.ts) and
// hands every other instruction to the byte interpreter (exec.ts).
//
// A cached handler must behave exactly like exec.ts on the same bytes: it uses
// the same ALU/shift/flag functions, and whenever a memory operand is not
// wholly inside RAM (MMIO, unassigned memory) it commits nothing and lets the
// byte interpreter execute the instruction instead. The conformance corpus
// runs through this loop, so both paths are checked against the reference.

import { st, setSt, ic, lineGen, ltu, leu, ram8, ram16, ram32, setRam8, setRam32, reg8, setReg8, icClearTags } from "./target/wasm";
import {
  S_BASE, SEG_CS, SEG_SS, ESP, S_LEFT, S_EXIT, S_ABORT, S_MMIOW_COUNT, S_MMIOR_COUNT, S_SHADOW,
  S_IRQ_PENDING, EXIT_FAULT, EXIT_IRQ_WINDOW, IF,
} from "./state";
import { idtActive, deliverException } from "./interrupts";
import { getIp, setIp, allSegsFlat } from "./decode";
import { exec, instrStart } from "./exec";
import { ramEnd, stored } from "./memory";
import { alu, inc, dec } from "./alu";
import { cond, flagsLogic, rawFlags } from "./flags";
import { shift } from "./shift";
import { imulTrunc } from "./muldiv";
import {
  IC_MASK, icDecode, H_SLOW, H_NOP, H_MOV_RR, H_MOV_MR, H_MOV_RM, H_LEA, H_MOV_RI, H_MOV_MI,
  H_TEST_RR, H_TEST_MR, H_TEST_RI, H_INC_R, H_DEC_R, H_PUSH_R, H_POP_R, H_PUSH_I, H_JCC, H_JMP,
  H_CALL, H_RET, H_SHIFT_RI, H_MOVZX8_R, H_MOVZX8_M, H_MOVZX16_R, H_MOVZX16_M, H_MOVSX8_R,
  H_MOVSX8_M, H_MOVSX16_R, H_MOVSX16_M, H_MOV8_RR, H_MOV8_RM, H_MOV8_MR, H_ALU8_RR, H_ALU8_RM,
  H_ALU8_MR, H_ALU8_RI, H_ALU8_MI, H_JMP_R, H_JMP_M, H_CALL_R, H_CALL_M, H_SETCC_R, H_IMUL_RR,
  H_IMUL_RM, H_IMUL_RRI, H_CMOV_RR, H_PUSH_M, H_ALU_RR, H_ALU_MR, H_ALU_RM, H_ALU_RI, H_ALU_MI,
} from "./icache";

// Entry fields.
// @ts-ignore: decorator
@inline function fReg(info: i32): i32 { return (info >> 12) & 15; }
// @ts-ignore: decorator
@inline function fBase(info: i32): i32 { return (info >> 16) & 15; }
// @ts-ignore: decorator
@inline function fIndex(info: i32): i32 { return (info >> 20) & 15; }
// @ts-ignore: decorator
@inline function fSub(info: i32): i32 { return info >>> 29; }
/** Offset of the entry's memory operand (no segment): LEA's result. */
// @ts-ignore: decorator
@inline function offsetOf(info: i32, e: i32): i32 {
  return (st(fBase(info)) + (st(fIndex(info)) << ((info >> 24) & 3)) + ic(e + 3)) | 0;
}
/** Linear address of the entry's memory operand. */
// @ts-ignore: decorator
@inline function addrOf(info: i32, e: i32): i32 {
  return (offsetOf(info, e) + st(S_BASE + ((info >> 26) & 7))) | 0;
}
// A memory operand the cached handlers may use directly: inside RAM, and no
// segment checks to make (all segments flat); else the byte interpreter runs it.
// @ts-ignore: decorator
@inline function fits4(a: i32): bool { return allSegsFlat() && leu(a, (ramEnd() - 4) | 0); }
// @ts-ignore: decorator
@inline function fits2(a: i32): bool { return allSegsFlat() && leu(a, (ramEnd() - 2) | 0); }
// @ts-ignore: decorator
@inline function fits1(a: i32): bool { return allSegsFlat() && ltu(a, ramEnd()); }
// @ts-ignore: decorator
@inline function put32(a: i32, v: i32): void { setRam32(a, v); stored(a); stored((a + 3) | 0); }
// @ts-ignore: decorator
@inline function put8(a: i32, v: i32): void { setRam8(a, v); stored(a); }
/** Linear address of the stack slot at ESP + off. */
// @ts-ignore: decorator
@inline function stackAddr(sp: i32): i32 { return (sp + st(S_BASE + SEG_SS)) | 0; }

// Byte-interpreter mode (an engine option): nothing is decoded into the
// cache, so every instruction runs through exec.ts. Checked only on a cache
// miss, so the cached path pays nothing for it.
let bytesOnly: bool = false;
/** Sets byte-interpreter mode; the cache is emptied so no earlier decode is used. */
export function setBytesOnly(on: bool): void {
  bytesOnly = on;
  icClearTags();
}

/** Runs up to `budget` instructions from the fetch pointer; returns how many are left. */
export function runLoop(budget: i32): i32 {
  let pc = getIp();
  let left = budget;
  // Where the loop must stop early: one instruction after an STI / MOV SS
  // shadow begins (or, if the run starts inside one, after its first).
  // `left` once the shadow is over; the loop stops there only if the host is
  // waiting to deliver an interrupt.
  let shadowEnd = st(S_SHADOW) != 0 ? budget - 1 : -1;
  let stop = shadowEnd > 0 && st(S_IRQ_PENDING) != 0 ? shadowEnd : 0;
  while (left > stop) {
    const e = (pc & IC_MASK) << 3;
    let info: i32 = H_SLOW;
    if (ic(e) == pc && ic(e + 1) == lineGen(pc)) info = ic(e + 2);
    else if (!bytesOnly && ltu(pc, ramEnd())) { icDecode(pc, e); info = ic(e + 2); }
    let npc = (pc + ((info >> 8) & 15)) | 0;
    let fast = true;
    switch (info & 0xff) {
      case H_NOP: break;
      case H_MOV_RR: setSt(fReg(info), st(fBase(info))); break;
      case H_MOV_RM: {
        const a = addrOf(info, e);
        if (fits4(a)) setSt(fReg(info), ram32(a)); else fast = false;
        break;
      }
      case H_MOV_MR: {
        const a = addrOf(info, e);
        if (fits4(a)) put32(a, st(fReg(info))); else fast = false;
        break;
      }
      case H_LEA: setSt(fReg(info), offsetOf(info, e)); break;
      case H_MOV_RI: setSt(fReg(info), ic(e + 4)); break;
      case H_MOV_MI: {
        const a = addrOf(info, e);
        if (fits4(a)) put32(a, ic(e + 4)); else fast = false;
        break;
      }

      // 32-bit ALU, one case per operation so alu() folds to straight code.
      case H_ALU_RR + 0: aluRR(0, info); break;
      case H_ALU_RR + 1: aluRR(1, info); break;
      case H_ALU_RR + 2: aluRR(2, info); break;
      case H_ALU_RR + 3: aluRR(3, info); break;
      case H_ALU_RR + 4: aluRR(4, info); break;
      case H_ALU_RR + 5: aluRR(5, info); break;
      case H_ALU_RR + 6: aluRR(6, info); break;
      case H_ALU_RR + 7: aluRR(7, info); break;
      case H_ALU_RI + 0: aluRI(0, info, e); break;
      case H_ALU_RI + 1: aluRI(1, info, e); break;
      case H_ALU_RI + 2: aluRI(2, info, e); break;
      case H_ALU_RI + 3: aluRI(3, info, e); break;
      case H_ALU_RI + 4: aluRI(4, info, e); break;
      case H_ALU_RI + 5: aluRI(5, info, e); break;
      case H_ALU_RI + 6: aluRI(6, info, e); break;
      case H_ALU_RI + 7: aluRI(7, info, e); break;
      case H_ALU_RM + 0: fast = aluRM(0, info, e); break;
      case H_ALU_RM + 1: fast = aluRM(1, info, e); break;
      case H_ALU_RM + 2: fast = aluRM(2, info, e); break;
      case H_ALU_RM + 3: fast = aluRM(3, info, e); break;
      case H_ALU_RM + 4: fast = aluRM(4, info, e); break;
      case H_ALU_RM + 5: fast = aluRM(5, info, e); break;
      case H_ALU_RM + 6: fast = aluRM(6, info, e); break;
      case H_ALU_RM + 7: fast = aluRM(7, info, e); break;
      case H_ALU_MR + 0: case H_ALU_MR + 1: case H_ALU_MR + 2: case H_ALU_MR + 3:
      case H_ALU_MR + 4: case H_ALU_MR + 5: case H_ALU_MR + 6: case H_ALU_MR + 7: {
        const a = addrOf(info, e);
        if (!fits4(a)) { fast = false; break; }
        const op = info & 7;
        const r = alu(op, ram32(a), st(fReg(info)), 31);
        if (op != 7) put32(a, r);
        break;
      }
      case H_ALU_MI + 0: case H_ALU_MI + 1: case H_ALU_MI + 2: case H_ALU_MI + 3:
      case H_ALU_MI + 4: case H_ALU_MI + 5: case H_ALU_MI + 6: case H_ALU_MI + 7: {
        const a = addrOf(info, e);
        if (!fits4(a)) { fast = false; break; }
        const op = info & 7;
        const r = alu(op, ram32(a), ic(e + 4), 31);
        if (op != 7) put32(a, r);
        break;
      }

      // 8-bit ALU and moves
      case H_ALU8_RR: {
        const op = fIndex(info);
        const r = alu(op, reg8(fReg(info)), reg8(fBase(info)), 7);
        if (op != 7) setReg8(fReg(info), r);
        break;
      }
      case H_ALU8_RI: {
        const op = fIndex(info);
        const r = alu(op, reg8(fReg(info)), ic(e + 4), 7);
        if (op != 7) setReg8(fReg(info), r);
        break;
      }
      case H_ALU8_RM: {
        const a = addrOf(info, e);
        if (!fits1(a)) { fast = false; break; }
        const op = fSub(info);
        const r = alu(op, reg8(fReg(info)), ram8(a), 7);
        if (op != 7) setReg8(fReg(info), r);
        break;
      }
      case H_ALU8_MR: {
        const a = addrOf(info, e);
        if (!fits1(a)) { fast = false; break; }
        const op = fSub(info);
        const r = alu(op, ram8(a), reg8(fReg(info)), 7);
        if (op != 7) put8(a, r);
        break;
      }
      case H_ALU8_MI: {
        const a = addrOf(info, e);
        if (!fits1(a)) { fast = false; break; }
        const op = fSub(info);
        const r = alu(op, ram8(a), ic(e + 4), 7);
        if (op != 7) put8(a, r);
        break;
      }
      case H_MOV8_RR: setReg8(fReg(info), reg8(fBase(info))); break;
      case H_MOV8_RM: {
        const a = addrOf(info, e);
        if (fits1(a)) setReg8(fReg(info), ram8(a)); else fast = false;
        break;
      }
      case H_MOV8_MR: {
        const a = addrOf(info, e);
        if (fits1(a)) put8(a, reg8(fReg(info))); else fast = false;
        break;
      }
      case H_MOVZX8_R: setSt(fReg(info), reg8(fBase(info))); break;
      case H_MOVSX8_R: setSt(fReg(info), (reg8(fBase(info)) << 24) >> 24); break;
      case H_MOVZX16_R: setSt(fReg(info), st(fBase(info)) & 0xffff); break;
      case H_MOVSX16_R: setSt(fReg(info), (st(fBase(info)) << 16) >> 16); break;
      case H_MOVZX8_M: case H_MOVSX8_M: {
        const a = addrOf(info, e);
        if (!fits1(a)) { fast = false; break; }
        const v = ram8(a);
        setSt(fReg(info), (info & 0xff) == H_MOVZX8_M ? v : (v << 24) >> 24);
        break;
      }
      case H_MOVZX16_M: case H_MOVSX16_M: {
        const a = addrOf(info, e);
        if (!fits2(a)) { fast = false; break; }
        const v = ram16(a);
        setSt(fReg(info), (info & 0xff) == H_MOVZX16_M ? v : (v << 16) >> 16);
        break;
      }

      // TEST, INC/DEC, shifts, IMUL, SETcc, CMOVcc
      case H_TEST_RR: flagsLogic(st(fReg(info)) & st(fBase(info)), 31); break;
      case H_TEST_RI: flagsLogic(st(fReg(info)) & ic(e + 4), 31); break;
      case H_TEST_MR: {
        const a = addrOf(info, e);
        if (fits4(a)) flagsLogic(ram32(a) & st(fReg(info)), 31); else fast = false;
        break;
      }
      case H_INC_R: setSt(fReg(info), inc(st(fReg(info)), 31)); break;
      case H_DEC_R: setSt(fReg(info), dec(st(fReg(info)), 31)); break;
      case H_SHIFT_RI: {
        const c = ic(e + 4);
        if ((c & 0x1f) != 0) setSt(fReg(info), shift(fIndex(info), st(fReg(info)), c, 31));
        break;
      }
      case H_IMUL_RR: setSt(fReg(info), imulTrunc(st(fReg(info)), st(fBase(info)), 4)); break;
      case H_IMUL_RRI: setSt(fReg(info), imulTrunc(st(fBase(info)), ic(e + 4), 4)); break;
      case H_IMUL_RM: {
        const a = addrOf(info, e);
        if (fits4(a)) setSt(fReg(info), imulTrunc(st(fReg(info)), ram32(a), 4)); else fast = false;
        break;
      }
      case H_SETCC_R: setReg8(fReg(info), cond(fIndex(info)) ? 1 : 0); break;
      case H_CMOV_RR: if (cond(fIndex(info))) setSt(fReg(info), st(fBase(info))); break;

      // Stack and control transfer
      case H_PUSH_R: case H_PUSH_I: {
        const sp = (st(ESP) - 4) | 0;
        const a = stackAddr(sp);
        if (!fits4(a)) { fast = false; break; }
        put32(a, (info & 0xff) == H_PUSH_R ? st(fReg(info)) : ic(e + 4));
        setSt(ESP, sp);
        break;
      }
      case H_PUSH_M: {
        const m = addrOf(info, e);
        const sp = (st(ESP) - 4) | 0;
        const a = stackAddr(sp);
        if (!fits4(m) || !fits4(a)) { fast = false; break; }
        put32(a, ram32(m));
        setSt(ESP, sp);
        break;
      }
      case H_POP_R: {
        const sp = st(ESP);
        const a = stackAddr(sp);
        if (!fits4(a)) { fast = false; break; }
        setSt(ESP, (sp + 4) | 0);
        setSt(fReg(info), ram32(a)); // POP ESP: the popped value wins
        break;
      }
      case H_JCC: if (cond(fIndex(info))) npc = (npc + ic(e + 3)) | 0; break;
      case H_JMP: npc = (npc + ic(e + 3)) | 0; break;
      case H_CALL: case H_CALL_R: case H_CALL_M: {
        const sp = (st(ESP) - 4) | 0;
        const a = stackAddr(sp);
        const cs = st(S_BASE + SEG_CS);
        let target: i32;
        if ((info & 0xff) == H_CALL) target = (npc + ic(e + 3)) | 0;
        else if ((info & 0xff) == H_CALL_R) target = (st(fBase(info)) + cs) | 0;
        else {
          const m = addrOf(info, e);
          if (!fits4(m)) { fast = false; break; }
          target = (ram32(m) + cs) | 0;
        }
        if (!fits4(a)) { fast = false; break; }
        put32(a, (npc - cs) | 0);
        setSt(ESP, sp);
        npc = target;
        break;
      }
      case H_RET: {
        const sp = st(ESP);
        const a = stackAddr(sp);
        if (!fits4(a)) { fast = false; break; }
        setSt(ESP, (sp + 4) | 0);
        npc = (ram32(a) + st(S_BASE + SEG_CS)) | 0;
        break;
      }
      case H_JMP_R: npc = (st(fBase(info)) + st(S_BASE + SEG_CS)) | 0; break;
      case H_JMP_M: {
        const m = addrOf(info, e);
        if (fits4(m)) npc = (ram32(m) + st(S_BASE + SEG_CS)) | 0; else fast = false;
        break;
      }
      default: fast = false; break; // H_SLOW
    }
    if (fast) {
      pc = npc;
      left--;
      continue;
    }
    // The byte interpreter: REP loops and exits need the budget and the flags.
    setIp(pc);
    setSt(S_LEFT, left);
    // A shadow is over once the instruction after it retired.
    if (shadowEnd >= 0 && left <= shadowEnd) { setSt(S_SHADOW, 0); shadowEnd = -1; }
    const shadowBefore = st(S_SHADOW);
    exec();
    left = st(S_LEFT);
    if (st(S_EXIT) != 0) {
      if (st(S_ABORT) == 0) { left--; pc = getIp(); setSt(S_MMIOR_COUNT, 0); }
      else {
        pc = instrStart();            // did not retire: EIP stays on it
        setSt(S_MMIOW_COUNT, 0);      // and it wrote nothing
        // With an IDT, a fault is delivered here and execution goes on (no
        // instruction counted); without one, or on a triple fault, run() ends.
        if (st(S_EXIT) == EXIT_FAULT && idtActive()) {
          setIp(pc);
          if (deliverException((pc - st(S_BASE + SEG_CS)) | 0)) { pc = getIp(); continue; }
        }
      }
      break;
    }
    pc = getIp();
    left--;
    setSt(S_MMIOR_COUNT, 0); // it retired: its MMIO read answers are used up
    // STI (IF was 0) or a load of SS: interrupts wait for one more instruction.
    if (shadowBefore == 0 && st(S_SHADOW) != 0) {
      shadowEnd = left - 1;
      stop = shadowEnd > 0 && st(S_IRQ_PENDING) != 0 ? shadowEnd : 0;
      continue;
    }
    // The host waits to deliver an interrupt and it just became possible
    // (only the byte interpreter runs STI, POPF, IRET...).
    if (st(S_IRQ_PENDING) != 0 && (rawFlags() & IF) != 0 && st(S_SHADOW) == 0) {
      setSt(S_EXIT, EXIT_IRQ_WINDOW);
      break;
    }
  }
  // The instruction after the shadow retired: interrupts are possible again,
  // and if that is why the loop stopped, say so.
  if (shadowEnd >= 0 && left <= shadowEnd && st(S_SHADOW) != 0) {
    setSt(S_SHADOW, 0);
    if (st(S_EXIT) == 0 && st(S_IRQ_PENDING) != 0 && (rawFlags() & IF) != 0) setSt(S_EXIT, EXIT_IRQ_WINDOW);
  }
  setIp(pc);
  return left;
}

// @ts-ignore: decorator
@inline function aluRR(op: i32, info: i32): void {
  const r = alu(op, st(fReg(info)), st(fBase(info)), 31);
  if (op != 7) setSt(fReg(info), r);
}
// @ts-ignore: decorator
@inline function aluRI(op: i32, info: i32, e: i32): void {
  const r = alu(op, st(fReg(info)), ic(e + 4), 31);
  if (op != 7) setSt(fReg(info), r);
}
// @ts-ignore: decorator
@inline function aluRM(op: i32, info: i32, e: i32): bool {
  const a = addrOf(info, e);
  if (!fits4(a)) return false;
  const r = alu(op, st(fReg(info)), ram32(a), 31);
  if (op != 7) setSt(fReg(info), r);
  return true;
}
