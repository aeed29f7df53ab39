// The one-byte opcode map: fetch, prefixes, dispatch.
// Two-byte (0F xx) opcodes are in exec0f.ts; each instruction group's
// arithmetic lives in its own file (alu, shift, muldiv, bcd, bits, string).
//
// Rule for every handler: read everything that can abort (memory, host input)
// first, check aborted(), then commit. An aborted instruction must leave the
// registers and memory as they were, because it will run again from its start.

import { st, setSt, reg8, setReg8, reg16, setReg16, ltu, ram8 } from "./target/wasm";
import {
  EAX, ECX, EDX, EBX, ESP, EBP, S_EIP, S_BASE, S_SEL, SEG_CS, SEG_ES, SEG_SS, SEG_DS, SEG_FS, SEG_GS,
  S_RAMSIZE, S_EXIT, S_ABORT, EXIT_HLT, EXIT_IN, EXIT_OUT, VEC_UD, VEC_GP, VEC_BP, VEC_OF,
  CF, IF, DF, FLAGS_WRITABLE, S_SCRATCH, S_MMIOR_POS, S_HALTED, S_SHADOW,
} from "./state";
import {
  fetch8, fetchS8, fetch16, fetch32, getIp, setIp, resetPrefixes, setSegOverride, setOpsize16,
  setAdsize16, setRep, isO16, isA16, dataSeg, linear, modrmOffset, modrmEA, setLock, hasLock,
  lastSeg, modrmOffsetLast,
} from "./decode";
import { instrLength, lockAllowed } from "./length";
import { rd8, rdN, wr8, wrN, rd32, wr32, aborted, ramEnd } from "./memory";
import {
  getFlags, setFlags, setFlagBits, getCF, getOF, getZF, cond, flagsLogic, rawFlags,
} from "./flags";
import { alu, inc, dec, neg, ALU_CMP } from "./alu";
import { shift } from "./shift";
import { mul1, div1, imulTrunc } from "./muldiv";
import { daa, das, aaa, aas, aam, aad } from "./bcd";
import { regRead, regWrite, rmRead, rmWrite, rmAddr, lastEA, topBit, sext, zext } from "./operand";
import { push32, pushN, popN, peekN, push16 } from "./stack";
import { stringOp, STR_MOVS, STR_CMPS, STR_STOS, STR_LODS, STR_SCAS, STR_INS, STR_OUTS } from "./string";
import { fault, softInt, input, answer, output } from "./exits";
import { nextEip, jumpTo, jumpRel } from "./control";
import { loadSeg, loadCS, pushSeg, popSeg } from "./segment";
import { deliver, iret, idtActive } from "./interrupts";
import { exec0f } from "./exec0f";

let start: i32 = 0; // linear address of the current instruction's first byte
export function execReset(): void { start = 0; }

/**
 * Executes one instruction (or, for REP string instructions, a run of
 * iterations) at the fetch pointer. During run() the fetch pointer is the
 * canonical EIP (cpu.ts writes it back to S_EIP when run() returns); an
 * aborted instruction puts it back at its first byte.
 */
export function exec(): void {
  start = getIp();
  setSt(S_MMIOR_POS, 0); // MMIO read answers are taken in order from the first
  // Code outside RAM would fetch all-ones bytes (FF FF..., an undefined
  // opcode): report it as #UD at that address.
  if (!ltu(start, ramEnd())) { fault(VEC_UD, -1); return; }
  resetPrefixes();
  execOp(fetch8());
}

/** Linear address where the current instruction starts. */
export function instrStart(): i32 { return start; }

function opSize(): i32 { return isO16() ? 2 : 4; }
function fetchImm(size: i32): i32 {
  return size == 4 ? fetch32() : size == 2 ? fetch16() : fetch8();
}

// Inlined into run()'s loop: a call per instruction costs more than the work of a simple one.
// @ts-ignore: decorator
@inline function execOp(first: i32): void {
  let op = first;
  // Prefixes are cases of the same switch (one dispatch for the common
  // prefix-free instruction); each fetches the next byte and dispatches again.
  for (;;) {
  switch (op) {
    case 0x26: setSegOverride(SEG_ES); op = nextPrefixed(); continue;
    case 0x2e: setSegOverride(SEG_CS); op = nextPrefixed(); continue;
    case 0x36: setSegOverride(SEG_SS); op = nextPrefixed(); continue;
    case 0x3e: setSegOverride(SEG_DS); op = nextPrefixed(); continue;
    case 0x64: setSegOverride(SEG_FS); op = nextPrefixed(); continue;
    case 0x65: setSegOverride(SEG_GS); op = nextPrefixed(); continue;
    case 0x66: setOpsize16(); op = nextPrefixed(); continue;
    case 0x67: setAdsize16(); op = nextPrefixed(); continue;
    case 0xf0: setLock(); op = nextPrefixed(); continue; // one CPU: a legal LOCK changes nothing
    case 0xf2: setRep(0xf2); op = nextPrefixed(); continue;
    case 0xf3: setRep(0xf3); op = nextPrefixed(); continue;
    case -1: return; // too many prefixes: #GP raised by nextPrefixed

    // ---- ALU: 00-3F (x0 r/m8,r8  x1 r/m,r  x2 r8,r/m8  x3 r,r/m  x4 AL,imm8  x5 eAX,imm)
    case 0x00: case 0x08: case 0x10: case 0x18: case 0x20: case 0x28: case 0x30: case 0x38: {
      const m = fetch8();
      const b = reg8((m >> 3) & 7);
      const a = rmRead(m, 1);
      if (aborted()) return;
      const r = alu(op >> 3, a, b, 7);
      if ((op >> 3) != ALU_CMP) rmWrite(m, 1, r);
      return;
    }
    case 0x01: case 0x09: case 0x11: case 0x19: case 0x21: case 0x29: case 0x31: case 0x39: {
      const m = fetch8();
      if (isO16()) {
        const b = reg16((m >> 3) & 7);
        const a = rmRead(m, 2);
        if (aborted()) return;
        const r = alu(op >> 3, a, b, 15);
        if ((op >> 3) != ALU_CMP) rmWrite(m, 2, r);
        return;
      }
      const b = st((m >> 3) & 7);
      if (m >= 0xc0) {
        const r = alu(op >> 3, st(m & 7), b, 31);
        if ((op >> 3) != ALU_CMP) setSt(m & 7, r);
        return;
      }
      const ea = modrmEA(m);
      const a = rd32(ea);
      if (aborted()) return;
      const r = alu(op >> 3, a, b, 31);
      if ((op >> 3) != ALU_CMP) wr32(ea, r);
      return;
    }
    case 0x02: case 0x0a: case 0x12: case 0x1a: case 0x22: case 0x2a: case 0x32: case 0x3a: {
      const m = fetch8();
      const reg = (m >> 3) & 7;
      const b = rmRead(m, 1);
      if (aborted()) return;
      const r = alu(op >> 3, reg8(reg), b, 7);
      if ((op >> 3) != ALU_CMP) setReg8(reg, r);
      return;
    }
    case 0x03: case 0x0b: case 0x13: case 0x1b: case 0x23: case 0x2b: case 0x33: case 0x3b: {
      const m = fetch8();
      const reg = (m >> 3) & 7;
      if (isO16()) {
        const b = rmRead(m, 2);
        if (aborted()) return;
        const r = alu(op >> 3, reg16(reg), b, 15);
        if ((op >> 3) != ALU_CMP) setReg16(reg, r & 0xffff);
        return;
      }
      let b: i32;
      if (m >= 0xc0) b = st(m & 7);
      else {
        b = rd32(modrmEA(m));
        if (aborted()) return;
      }
      const r = alu(op >> 3, st(reg), b, 31);
      if ((op >> 3) != ALU_CMP) setSt(reg, r);
      return;
    }
    case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c: {
      const r = alu(op >> 3, reg8(0), fetch8(), 7);
      if ((op >> 3) != ALU_CMP) setReg8(0, r);
      return;
    }
    case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d: {
      const size = opSize();
      const r = alu(op >> 3, regRead(EAX, size), fetchImm(size), topBit(size));
      if ((op >> 3) != ALU_CMP) regWrite(EAX, size, r);
      return;
    }

    // ---- segment register push/pop
    case 0x06: pushSeg(SEG_ES); return;
    case 0x0e: pushSeg(SEG_CS); return;
    case 0x16: pushSeg(SEG_SS); return;
    case 0x1e: pushSeg(SEG_DS); return;
    case 0x07: popSeg(SEG_ES); return;
    case 0x17: popSeg(SEG_SS); if (!aborted()) setSt(S_SHADOW, 1); return;
    case 0x1f: popSeg(SEG_DS); return;
    case 0x0f: exec0f(); return;

    // ---- BCD
    case 0x27: daa(); return;
    case 0x2f: das(); return;
    case 0x37: aaa(); return;
    case 0x3f: aas(); return;

    // ---- INC/DEC/PUSH/POP r
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47: {
      const r = op & 7;
      if (isO16()) setReg16(r, inc(reg16(r), 15) & 0xffff);
      else setSt(r, inc(st(r), 31));
      return;
    }
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
      const r = op & 7;
      if (isO16()) setReg16(r, dec(reg16(r), 15) & 0xffff);
      else setSt(r, dec(st(r), 31));
      return;
    }
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57: {
      if (isO16()) push16(reg16(op & 7));
      else push32(st(op & 7));
      return;
    }
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f: {
      const size = opSize();
      const v = popN(size);
      if (aborted()) return;
      regWrite(op & 7, size, v);
      return;
    }
    case 0x60: { // PUSHA: pushes the ESP value from before the first push
      const size = opSize();
      const sp = st(ESP);
      for (let r = 0; r < 8; r++) pushN(r == ESP ? sp : regRead(r, size), size);
      return;
    }
    case 0x61: { // POPA: the saved ESP is skipped
      const size = opSize();
      for (let i = 0; i < 8; i++) {
        const v = peekN(i * size, size);
        if (aborted()) return;
        setSt(S_SCRATCH + i, v);
      }
      for (let i = 0; i < 8; i++) {
        const r = 7 - i;
        if (r != ESP) regWrite(r, size, st(S_SCRATCH + i));
      }
      setSt(ESP, (st(ESP) + 8 * size) | 0);
      return;
    }

    // ---- PUSH imm, IMUL imm
    case 0x68: pushN(fetchImm(opSize()), opSize()); return;
    case 0x6a: pushN(fetchS8(), opSize()); return;
    case 0x69: case 0x6b: {
      const size = opSize();
      const m = fetch8();
      const a = rmRead(m, size);
      if (aborted()) return;
      const b = op == 0x6b ? fetchS8() : fetchImm(size);
      regWrite((m >> 3) & 7, size, imulTrunc(a, b, size));
      return;
    }

    // ---- string I/O
    case 0x6c: stringOp(STR_INS, 1, start); return;
    case 0x6d: stringOp(STR_INS, opSize(), start); return;
    case 0x6e: stringOp(STR_OUTS, 1, start); return;
    case 0x6f: stringOp(STR_OUTS, opSize(), start); return;

    // ---- Jcc rel8
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f: {
      const rel = fetchS8();
      if (cond(op & 15)) jumpRel(rel);
      return;
    }

    // ---- group 1: ALU r/m, imm
    case 0x80: case 0x82: {
      const m = fetch8();
      const a = rmRead(m, 1);
      if (aborted()) return;
      const aop = (m >> 3) & 7;
      const r = alu(aop, a, fetch8(), 7);
      if (aop != ALU_CMP) rmWrite(m, 1, r);
      return;
    }
    case 0x81: case 0x83: {
      const size = opSize();
      const m = fetch8();
      const aop = (m >> 3) & 7;
      if (m >= 0xc0 && size == 4) {
        const b = op == 0x83 ? fetchS8() : fetch32();
        const r = alu(aop, st(m & 7), b, 31);
        if (aop != ALU_CMP) setSt(m & 7, r);
        return;
      }
      const a = rmRead(m, size);
      if (aborted()) return;
      const b = op == 0x83 ? fetchS8() & (size == 4 ? -1 : 0xffff) : fetchImm(size);
      const r = alu(aop, a, b, topBit(size));
      if (aop != ALU_CMP) rmWrite(m, size, r);
      return;
    }

    // ---- TEST, XCHG, MOV
    case 0x84: case 0x85: {
      const size = op == 0x84 ? 1 : opSize();
      const m = fetch8();
      const a = rmRead(m, size);
      if (aborted()) return;
      flagsLogic(a & regRead((m >> 3) & 7, size), topBit(size));
      return;
    }
    case 0x86: case 0x87: {
      const size = op == 0x86 ? 1 : opSize();
      const m = fetch8();
      const a = rmRead(m, size);
      if (aborted()) return;
      const reg = (m >> 3) & 7;
      const b = regRead(reg, size);
      rmWrite(m, size, b);
      regWrite(reg, size, a);
      return;
    }
    case 0x88: {
      const m = fetch8();
      const v = reg8((m >> 3) & 7);
      if (m >= 0xc0) setReg8(m & 7, v);
      else wr8(modrmEA(m), v);
      return;
    }
    case 0x89: {
      const m = fetch8();
      if (isO16()) { rmAddr(m); rmWrite(m, 2, reg16((m >> 3) & 7)); return; }
      const v = st((m >> 3) & 7);
      if (m >= 0xc0) setSt(m & 7, v);
      else wr32(modrmEA(m), v);
      return;
    }
    case 0x8a: {
      const m = fetch8();
      const v = rmRead(m, 1);
      if (aborted()) return;
      setReg8((m >> 3) & 7, v);
      return;
    }
    case 0x8b: {
      const m = fetch8();
      if (isO16()) {
        const v = rmRead(m, 2);
        if (aborted()) return;
        setReg16((m >> 3) & 7, v);
        return;
      }
      if (m >= 0xc0) { setSt((m >> 3) & 7, st(m & 7)); return; }
      const v = rd32(modrmEA(m));
      if (aborted()) return;
      setSt((m >> 3) & 7, v);
      return;
    }
    case 0x8c: { // MOV r/m16, Sreg: a register destination gets the selector zero-extended
      const m = fetch8();
      const sreg = (m >> 3) & 7;
      if (sreg > 5) { fault(VEC_UD, -1); return; }
      const sel = st(S_SEL + sreg) & 0xffff;
      if (m >= 0xc0) regWrite(m & 7, opSize(), sel);
      else wrN(modrmEA(m), 2, sel);
      return;
    }
    case 0x8d: { // LEA
      const m = fetch8();
      if (m >= 0xc0) { fault(VEC_UD, -1); return; }
      regWrite((m >> 3) & 7, opSize(), modrmOffset(m));
      return;
    }
    case 0x8e: { // MOV Sreg, r/m16
      const m = fetch8();
      const sreg = (m >> 3) & 7;
      if (sreg == SEG_CS || sreg > 5) { fault(VEC_UD, -1); return; }
      const sel = rmRead(m, 2);
      if (aborted()) return;
      if (loadSeg(sreg, sel) && sreg == SEG_SS) setSt(S_SHADOW, 1); // MOV SS: no interrupt before the next instruction
      return;
    }
    case 0x8f: { // POP r/m: ESP is incremented before the destination address is computed
      const m = fetch8();
      if (((m >> 3) & 7) != 0) { fault(VEC_UD, -1); return; }
      const size = opSize();
      const v = popN(size);
      if (aborted()) return;
      if (m >= 0xc0) regWrite(m & 7, size, v);
      else wrN(modrmEA(m), size, v);
      return;
    }

    // ---- XCHG eAX, r / NOP / PAUSE
    case 0x90: return;
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97: {
      const size = opSize();
      const a = regRead(EAX, size);
      regWrite(EAX, size, regRead(op & 7, size));
      regWrite(op & 7, size, a);
      return;
    }
    case 0x98: // CBW / CWDE
      if (isO16()) setReg16(EAX, ((reg8(0) << 24) >> 24) & 0xffff);
      else setSt(EAX, (reg16(EAX) << 16) >> 16);
      return;
    case 0x99: // CWD / CDQ
      if (isO16()) setReg16(EDX, (reg16(EAX) & 0x8000) != 0 ? 0xffff : 0);
      else setSt(EDX, st(EAX) >> 31);
      return;
    case 0x9b: return; // WAIT: no FPU, so nothing is ever pending
    case 0x9c: { // PUSHF: RF and VM read as 0 in the pushed image
      const f = getFlags() & 0xfcffff;
      if (isO16()) push16(f & 0xffff); else push32(f);
      return;
    }
    case 0x9d: { // POPF
      const size = opSize();
      const v = popN(size);
      if (aborted()) return;
      const writable = size == 2 ? FLAGS_WRITABLE & 0xffff : FLAGS_WRITABLE;
      setFlags((getFlags() & ~writable) | (v & writable));
      return;
    }
    case 0x9e: // SAHF: SF ZF AF PF CF from AH
      setFlags((getFlags() & ~0xd5) | (reg8(4) & 0xd5));
      return;
    case 0x9f: // LAHF
      setReg8(4, getFlags() & 0xff);
      return;

    // ---- MOV moffs
    case 0xa0: case 0xa1: case 0xa2: case 0xa3: {
      const off = isA16() ? fetch16() : fetch32();
      const a = linear(dataSeg(), off);
      const size = (op & 1) == 0 ? 1 : opSize();
      if (op < 0xa2) {
        const v = rdN(a, size);
        if (aborted()) return;
        regWrite(EAX, size, v);
      } else {
        wrN(a, size, regRead(EAX, size));
      }
      return;
    }

    // ---- string instructions
    case 0xa4: stringOp(STR_MOVS, 1, start); return;
    case 0xa5: stringOp(STR_MOVS, opSize(), start); return;
    case 0xa6: stringOp(STR_CMPS, 1, start); return;
    case 0xa7: stringOp(STR_CMPS, opSize(), start); return;
    case 0xa8: flagsLogic(reg8(0) & fetch8(), 7); return;
    case 0xa9: {
      const size = opSize();
      flagsLogic(regRead(EAX, size) & fetchImm(size), topBit(size));
      return;
    }
    case 0xaa: stringOp(STR_STOS, 1, start); return;
    case 0xab: stringOp(STR_STOS, opSize(), start); return;
    case 0xac: stringOp(STR_LODS, 1, start); return;
    case 0xad: stringOp(STR_LODS, opSize(), start); return;
    case 0xae: stringOp(STR_SCAS, 1, start); return;
    case 0xaf: stringOp(STR_SCAS, opSize(), start); return;

    // ---- MOV r, imm
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
      setReg8(op & 7, fetch8());
      return;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      if (isO16()) setReg16(op & 7, fetch16());
      else setSt(op & 7, fetch32());
      return;

    // ---- group 2: shifts and rotates
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      const size = (op & 1) == 0 ? 1 : opSize();
      const m = fetch8();
      const v = rmRead(m, size);
      if (aborted()) return;
      const count = op < 0xd0 ? fetch8() : op < 0xd2 ? 1 : reg8(ECX);
      if ((count & 0x1f) == 0) return;
      rmWrite(m, size, shift((m >> 3) & 7, zext(v, size), count, topBit(size)));
      return;
    }

    // ---- RET, MOV r/m imm, ENTER, LEAVE
    case 0xc2: case 0xc3: {
      const size = opSize();
      const extra = op == 0xc2 ? fetch16() : 0;
      const t = popN(size);
      if (aborted()) return;
      setSt(ESP, (st(ESP) + extra) | 0);
      jumpTo(t);
      return;
    }
    case 0xc6: case 0xc7: {
      const size = op == 0xc6 ? 1 : opSize();
      const m = fetch8();
      if (((m >> 3) & 7) != 0) { fault(VEC_UD, -1); return; }
      rmAddr(m);
      rmWrite(m, size, fetchImm(size));
      return;
    }
    case 0xc8: enter(fetch16(), fetch8() & 31); return;
    case 0xc9: { // LEAVE
      const size = opSize();
      const saved = st(ESP);
      setSt(ESP, st(EBP));
      const v = popN(size);
      if (aborted()) { setSt(ESP, saved); return; }
      regWrite(EBP, size, v);
      return;
    }

    // ---- software interrupts: through the IDT once the guest has one
    case 0xcc: intN(VEC_BP); return;
    case 0xcd: intN(fetch8()); return;
    case 0xce: if (getOF() != 0) intN(VEC_OF); return;
    case 0xf1: intN(1); return;
    case 0xcf: iret(); return;

    // ---- far transfers and far pointers
    case 0xea: { // JMP ptr16:32
      const off = isO16() ? fetch16() : fetch32();
      const sel = fetch16();
      if (loadCS(sel, off)) setIp((st(S_BASE + SEG_CS) + off) | 0);
      return;
    }
    case 0x9a: { // CALL ptr16:32
      const off = isO16() ? fetch16() : fetch32();
      farCall(fetch16(), off);
      return;
    }
    case 0xca: case 0xcb: { // RETF [imm16]
      const extra = op == 0xca ? fetch16() : 0;
      const size = opSize();
      const eip = peekN(0, size);
      const cs = peekN(size, size) & 0xffff;
      if (aborted()) return;
      const target = size == 2 ? eip & 0xffff : eip;
      if (!loadCS(cs, target)) return;
      setSt(ESP, (st(ESP) + 2 * size + extra) | 0);
      setIp((st(S_BASE + SEG_CS) + target) | 0);
      return;
    }
    case 0xc4: loadFarPointer(SEG_ES); return; // LES
    case 0xc5: loadFarPointer(SEG_DS); return; // LDS

    // ---- BCD, SALC, XLAT
    case 0xd4: aam(fetch8()); return;
    case 0xd5: aad(fetch8()); return;
    case 0xd6: setReg8(0, getCF() != 0 ? 0xff : 0); return; // SALC (undocumented, all parts)
    case 0xd7: {
      const base = isA16() ? reg16(EBX) : st(EBX);
      const off = isA16() ? (base + reg8(0)) & 0xffff : (base + reg8(0)) | 0;
      const v = rd8(linear(dataSeg(), off));
      if (aborted()) return;
      setReg8(0, v);
      return;
    }

    // ---- LOOP/JECXZ
    case 0xe0: case 0xe1: case 0xe2: {
      const rel = fetchS8();
      let c: i32;
      if (isA16()) { c = (reg16(ECX) - 1) & 0xffff; setReg16(ECX, c); }
      else { c = (st(ECX) - 1) | 0; setSt(ECX, c); }
      let take = c != 0;
      if (op == 0xe1) take = take && getZF() != 0;
      else if (op == 0xe0) take = take && getZF() == 0;
      if (take) jumpRel(rel);
      return;
    }
    case 0xe3: {
      const rel = fetchS8();
      if ((isA16() ? reg16(ECX) : st(ECX)) == 0) jumpRel(rel);
      return;
    }

    // ---- port I/O
    case 0xe4: case 0xe5: case 0xec: case 0xed: {
      const size = (op & 1) == 0 ? 1 : opSize();
      const port = op < 0xe8 ? fetch8() : reg16(EDX);
      if (!input(EXIT_IN, port, size)) return;
      regWrite(EAX, size, answer(0));
      return;
    }
    case 0xe6: case 0xe7: case 0xee: case 0xef: {
      const size = (op & 1) == 0 ? 1 : opSize();
      const port = op < 0xe8 ? fetch8() : reg16(EDX);
      output(EXIT_OUT, port, size, zext(regRead(EAX, size), size));
      return;
    }

    // ---- CALL/JMP near
    case 0xe8: {
      const size = opSize();
      const rel = size == 4 ? fetch32() : fetchS16();
      const ret = nextEip();
      pushN(ret, size);
      jumpTo((ret + rel) | 0);
      return;
    }
    case 0xe9: jumpRel(isO16() ? fetchS16() : fetch32()); return;
    case 0xeb: jumpRel(fetchS8()); return;

    // ---- HLT and flag instructions
    case 0xf4: setSt(S_EXIT, EXIT_HLT); setSt(S_HALTED, 1); return;
    case 0xf5: setFlagBits(CF, getCF() == 0); return;
    case 0xf8: setFlagBits(CF, false); return;
    case 0xf9: setFlagBits(CF, true); return;
    case 0xfa: setFlagBits(IF, false); return;
    case 0xfb: // STI: interrupts wait one more instruction when IF was 0 (SDM "STI")
      if ((rawFlags() & IF) == 0) setSt(S_SHADOW, 1);
      setFlagBits(IF, true);
      return;
    case 0xfc: setFlagBits(DF, false); return;
    case 0xfd: setFlagBits(DF, true); return;

    case 0xf6: case 0xf7: group3(op == 0xf6 ? 1 : opSize()); return;
    case 0xfe: { // INC/DEC r/m8
      const m = fetch8();
      const sub = (m >> 3) & 7;
      if (sub > 1) { fault(VEC_UD, -1); return; }
      const v = rmRead(m, 1);
      if (aborted()) return;
      rmWrite(m, 1, sub == 0 ? inc(v, 7) : dec(v, 7));
      return;
    }
    case 0xff: group5(); return;

    default:
      // Not implemented (far transfers, IRET, BOUND, ARPL, LES/LDS, x87...):
      // #UD at this instruction, never a silent skip.
      fault(VEC_UD, -1);
      return;
  }
  }
}

/**
 * The byte after a prefix. An instruction longer than 15 bytes raises #GP(0)
 * (SDM Vol. 3A 6.15): 15 prefixes leave no room for an opcode. Returns -1
 * (dispatched to "stop", the fault already raised) in that case.
 */
function nextPrefixed(): i32 {
  if (((getIp() - start) | 0) >= 15) { fault(VEC_GP, 0); return -1; }
  const q = getIp();
  const b = ram8(q);
  if (!isPrefix(b)) {
    // The prefix run ends here. Only an instruction with five or more
    // prefixes can exceed 15 bytes (the longest unprefixed form is 11).
    if (((q - start) | 0) >= 5 && instrLength(start, q, isO16(), isA16()) > 15) { fault(VEC_GP, 0); return -1; }
    if (hasLock() && !lockAllowed(q)) { fault(VEC_UD, -1); return -1; }
  }
  return fetch8();
}

function isPrefix(b: i32): bool {
  return b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65 ||
    b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3;
}

function fetchS16(): i32 { return (fetch16() << 16) >> 16; }

function group3(size: i32): void {
  const m = fetch8();
  const sub = (m >> 3) & 7;
  const v = rmRead(m, size);
  if (aborted()) return;
  switch (sub) {
    case 0: case 1: flagsLogic(v & fetchImm(size), topBit(size)); return; // TEST (/1 is an alias)
    case 2: rmWrite(m, size, ~v); return;                               // NOT: no flags
    case 3: rmWrite(m, size, neg(v, topBit(size))); return;
    case 4: mul1(v, size, false); return;
    case 5: mul1(v, size, true); return;
    case 6: div1(v, size, false); return;
    default: div1(v, size, true); return;
  }
}

function group5(): void {
  const m = fetch8();
  const sub = (m >> 3) & 7;
  const size = opSize();
  switch (sub) {
    case 0: case 1: {
      const v = rmRead(m, size);
      if (aborted()) return;
      rmWrite(m, size, sub == 0 ? inc(v, topBit(size)) : dec(v, topBit(size)));
      return;
    }
    case 2: { // CALL r/m
      const t = rmRead(m, size);
      if (aborted()) return;
      pushN(nextEip(), size);
      jumpTo(t);
      return;
    }
    case 4: { // JMP r/m
      const t = rmRead(m, size);
      if (aborted()) return;
      jumpTo(t);
      return;
    }
    case 6: { // PUSH r/m
      const v = rmRead(m, size);
      if (aborted()) return;
      pushN(v, size);
      return;
    }
    case 3: case 5: { // CALL m16:32 / JMP m16:32
      if (m >= 0xc0) { fault(VEC_UD, -1); return; }
      const a = modrmEA(m);
      const off = size == 4 ? rd32(a) : rdN(a, 2);
      const sel = rdN(linear(lastSeg(), (modrmOffsetLast() + size) | 0), 2);
      if (aborted()) return;
      if (sub == 3) farCall(sel, off);
      else if (loadCS(sel, off)) setIp((st(S_BASE + SEG_CS) + off) | 0);
      return;
    }
    default: fault(VEC_UD, -1); return; // /7 undefined
  }
}

/**
 * ENTER size, level (SDM Vol. 2A "ENTER", 32-bit stack). The SDM interleaves
 * the frame-link reads with the pushes. To abort cleanly on an MMIO read, the
 * links are read first; during the pushes a link whose bytes were just pushed
 * over is read again from memory, which is what the interleaved order sees.
 */
function enter(size: i32, level: i32): void {
  const osz = opSize();
  const ebp = st(EBP);
  for (let i = 1; i < level; i++) {
    const v = rdN(linear(SEG_SS, (ebp - i * osz) | 0), osz);
    if (aborted()) return;
    setSt(S_SCRATCH + i, v);
  }
  const top = st(ESP);
  pushN(regRead(EBP, osz), osz);
  const frame = st(ESP);
  if (level > 0) {
    for (let i = 1; i < level; i++) {
      const off = (ebp - i * osz) | 0;
      const sp = st(ESP);
      // Does [off, off+osz) meet the bytes pushed so far, [sp, top)?
      const hit = ltu((off - sp) | 0, (top - sp) | 0) || ltu((sp - off) | 0, osz);
      pushN(hit ? rdN(linear(SEG_SS, off), osz) : st(S_SCRATCH + i), osz);
    }
    pushN(frame, osz);
  }
  regWrite(EBP, osz, frame);
  setSt(ESP, (st(ESP) - size) | 0);
}

/** INT n / INT3 / INTO / INT1: a trap; returns to the next instruction. */
function intN(vec: i32): void {
  if (!idtActive()) { softInt(vec, nextEip()); return; }
  deliver(vec, nextEip(), -1, 0);
}

/** CALL ptr16:32 / m16:32: push CS and the return EIP, then load CS (undone if that faults). */
function farCall(sel: i32, off: i32): void {
  const size = opSize();
  const sp0 = st(ESP);
  pushN(st(S_SEL + SEG_CS) & 0xffff, size);
  if (!aborted()) pushN(nextEip(), size);
  if (aborted()) { setSt(ESP, sp0); return; }
  const target = size == 2 ? off & 0xffff : off;
  if (!loadCS(sel, target)) { setSt(ESP, sp0); return; }
  setIp((st(S_BASE + SEG_CS) + target) | 0);
}

/** LDS/LES/LFS/LGS/LSS r, m16:32. */
export function loadFarPointer(seg: i32): void {
  const m = fetch8();
  if (m >= 0xc0) { fault(VEC_UD, -1); return; }
  const size = opSize();
  const a = modrmEA(m);
  const off = rdN(a, size);
  const sel = rdN(linear(lastSeg(), (modrmOffsetLast() + size) | 0), 2);
  if (aborted()) return;
  if (!loadSeg(seg, sel)) return;
  if (seg == SEG_SS) setSt(S_SHADOW, 1);
  regWrite((m >> 3) & 7, size, off);
}
