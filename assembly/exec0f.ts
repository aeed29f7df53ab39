// The two-byte opcode map (0F xx). Same rule as exec.ts: read, check
// aborted(), then commit.

import { st, setSt, setReg8, reg16, setReg16 } from "./target/wasm";
import {
  EAX, ECX, EDX, EBX, S_SEL, SEG_FS, SEG_GS, S_CR0, S_CR2, S_CR3, S_CR4, ESP, SEG_SS,
  EXIT_RDTSC, EXIT_CPUID, EXIT_RDRAND, EXIT_RDSEED, VEC_UD, CF, ZF, STATUS,
} from "./state";
import { fetch8, fetch16, fetch32, isO16, modrmEA } from "./decode";
import { pushSeg, popSeg } from "./segment";
import { loadFarPointer } from "./exec";
import { system01 } from "./system";
import { rdN, wrN, rd32, wr32, aborted } from "./memory";
import { getFlags, setFlags, cond, flagsSub, flagsStatus } from "./flags";
import { shiftDouble } from "./shift";
import { imulTrunc } from "./muldiv";
import { bitOp, bitScan, BT_TEST } from "./bits";
import { regRead, regWrite, rmRead, rmWrite, rmAddr, lastEA, topBit, sext } from "./operand";
import { fault, input, answer } from "./exits";
import { jumpRel } from "./control";
import { alu, ALU_ADD } from "./alu";

function opSize(): i32 { return isO16() ? 2 : 4; }

export function exec0f(): void {
  const op = fetch8();
  switch (op) {
    case 0x01: system01(); return;                      // LGDT LIDT SGDT SIDT
    case 0x06: setSt(S_CR0, st(S_CR0) & ~8); return; // CLTS
    case 0xb2: loadFarPointer(SEG_SS); return;         // LSS
    case 0xb4: loadFarPointer(SEG_FS); return;         // LFS
    case 0xb5: loadFarPointer(SEG_GS); return;         // LGS
    case 0x08: case 0x09: return;                       // INVD, WBINVD: no caches to model
    case 0x18: case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d: case 0x1e: case 0x1f: {
      // Hint NOPs / multi-byte NOP (0F 1F /0): decode the operand, touch nothing.
      rmAddr(fetch8());
      return;
    }
    case 0x20: case 0x22: { // MOV r32, CRn / MOV CRn, r32 (the ModRM is always a register)
      const m = fetch8();
      const cr = (m >> 3) & 7;
      let slot: i32 = -1;
      if (cr == 0) slot = S_CR0; else if (cr == 2) slot = S_CR2;
      else if (cr == 3) slot = S_CR3; else if (cr == 4) slot = S_CR4;
      if (slot < 0) { fault(VEC_UD, -1); return; }
      if (op == 0x20) setSt(m & 7, st(slot));
      else setSt(slot, st(m & 7));
      return;
    }
    case 0x31: { // RDTSC: the host supplies the time stamp
      if (!input(EXIT_RDTSC, 0, 8)) return;
      setSt(EAX, answer(0));
      setSt(EDX, answer(1));
      return;
    }
    case 0xa2: { // CPUID: the host supplies the four registers
      if (!input(EXIT_CPUID, st(EAX), st(ECX))) return;
      setSt(EAX, answer(0));
      setSt(EBX, answer(1));
      setSt(ECX, answer(2));
      setSt(EDX, answer(3));
      return;
    }
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
      // CMOVcc: the source is read whatever the condition.
      const size = opSize();
      const m = fetch8();
      const v = rmRead(m, size);
      if (aborted()) return;
      if (cond(op & 15)) regWrite((m >> 3) & 7, size, v);
      return;
    }
    case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85: case 0x86: case 0x87:
    case 0x88: case 0x89: case 0x8a: case 0x8b: case 0x8c: case 0x8d: case 0x8e: case 0x8f: {
      const rel = isO16() ? (fetch16() << 16) >> 16 : fetch32();
      if (cond(op & 15)) jumpRel(rel);
      return;
    }
    case 0x90: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
    case 0x98: case 0x99: case 0x9a: case 0x9b: case 0x9c: case 0x9d: case 0x9e: case 0x9f: {
      const m = fetch8();
      const v = cond(op & 15) ? 1 : 0;
      if (m >= 0xc0) setReg8(m & 7, v);
      else wrN(modrmEA(m), 1, v);
      return;
    }
    case 0xa0: pushSeg(SEG_FS); return;
    case 0xa8: pushSeg(SEG_GS); return;
    case 0xa1: popSeg(SEG_FS); return;
    case 0xa9: popSeg(SEG_GS); return;
    case 0xa3: bitTestReg(BT_TEST); return;
    case 0xab: bitTestReg(1); return;
    case 0xb3: bitTestReg(2); return;
    case 0xbb: bitTestReg(3); return;
    case 0xba: { // BT/BTS/BTR/BTC r/m, imm8
      const m = fetch8();
      const sub = (m >> 3) & 7;
      if (sub < 4) { fault(VEC_UD, -1); return; }
      const size = opSize();
      const v = rmRead(m, size);
      if (aborted()) return;
      const bit = fetch8() & ((size << 3) - 1);
      const r = bitOp(sub - 4, v, bit);
      if (sub != 4) rmWrite(m, size, r);
      return;
    }
    case 0xa4: case 0xa5: case 0xac: case 0xad: { // SHLD / SHRD
      const size = opSize();
      const m = fetch8();
      const v = rmRead(m, size);
      if (aborted()) return;
      const count = (op & 1) == 0 ? fetch8() : st(ECX) & 0xff;
      if ((count & 0x1f) == 0) return;
      const src = regRead((m >> 3) & 7, size);
      rmWrite(m, size, shiftDouble(op < 0xa8, v, src, count, topBit(size)));
      return;
    }
    case 0xaf: { // IMUL r, r/m
      const size = opSize();
      const m = fetch8();
      const b = rmRead(m, size);
      if (aborted()) return;
      const reg = (m >> 3) & 7;
      regWrite(reg, size, imulTrunc(regRead(reg, size), b, size));
      return;
    }
    case 0xb0: case 0xb1: { // CMPXCHG r/m, r
      const size = op == 0xb0 ? 1 : opSize();
      const m = fetch8();
      const d = rmRead(m, size);
      if (aborted()) return;
      const acc = regRead(EAX, size);
      alu(7, acc, d, topBit(size)); // flags as CMP accumulator, destination
      if (acc == d) rmWrite(m, size, regRead((m >> 3) & 7, size));
      else {
        // The destination is written back with its own value (a locked
        // read-modify-write always writes); the accumulator gets it.
        if (m < 0xc0) wrN(lastEA(), size, d);
        regWrite(EAX, size, d);
      }
      return;
    }
    case 0xb6: case 0xb7: case 0xbe: case 0xbf: { // MOVZX / MOVSX
      const src = (op & 1) == 0 ? 1 : 2;
      const m = fetch8();
      const v = rmRead(m, src);
      if (aborted()) return;
      regWrite((m >> 3) & 7, opSize(), op < 0xb8 ? v : sext(v, src));
      return;
    }
    case 0xbc: case 0xbd: { // BSF / BSR
      const size = opSize();
      const m = fetch8();
      const v = rmRead(m, size);
      if (aborted()) return;
      const r = bitScan(op == 0xbc, v);
      if (r >= 0) regWrite((m >> 3) & 7, size, r);
      return;
    }
    case 0xc0: case 0xc1: { // XADD r/m, r
      const size = op == 0xc0 ? 1 : opSize();
      const m = fetch8();
      const d = rmRead(m, size);
      if (aborted()) return;
      const reg = (m >> 3) & 7;
      const s = regRead(reg, size);
      const sum = alu(ALU_ADD, d, s, topBit(size));
      regWrite(reg, size, d);
      rmWrite(m, size, sum);
      return;
    }
    case 0xc7: {
      const m = fetch8();
      const sub = (m >> 3) & 7;
      if (sub == 1 && m < 0xc0) { cmpxchg8b(m); return; }
      if ((sub == 6 || sub == 7) && m >= 0xc0) { // RDRAND / RDSEED r
        const size = opSize();
        if (!input(sub == 6 ? EXIT_RDRAND : EXIT_RDSEED, 0, size)) return;
        const ok = answer(1) != 0;
        regWrite(m & 7, size, ok ? answer(0) : 0);
        flagsStatus(ok ? CF : 0); // CF = valid; OF SF ZF AF PF cleared
        return;
      }
      fault(VEC_UD, -1);
      return;
    }
    case 0xc8: case 0xc9: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf: {
      const r = op & 7;
      if (isO16()) { setReg16(r, 0); return; } // BSWAP r16 is undefined; parts clear the word
      const v = st(r);
      setSt(r, (v >>> 24) | ((v >> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24));
      return;
    }
    default:
      // UD2 (0F 0B) and every two-byte opcode not implemented yet.
      fault(VEC_UD, -1);
      return;
  }
}

/** BT/BTS/BTR/BTC r/m, r: a memory operand is a bit string (the offset may reach outside the operand). */
function bitTestReg(kind: i32): void {
  const size = opSize();
  const m = fetch8();
  const reg = (m >> 3) & 7;
  if (m >= 0xc0) {
    const bit = regRead(reg, size) & ((size << 3) - 1);
    const r = bitOp(kind, regRead(m & 7, size), bit);
    if (kind != BT_TEST) regWrite(m & 7, size, r);
    return;
  }
  const off = sext(regRead(reg, size), size);
  const a = (modrmEA(m) + (size == 4 ? (off >> 5) << 2 : (off >> 4) << 1)) | 0;
  const v = rdN(a, size);
  if (aborted()) return;
  const r = bitOp(kind, v, off & ((size << 3) - 1));
  if (kind != BT_TEST) wrN(a, size, r);
}

/** CMPXCHG8B m64: only ZF is affected. */
function cmpxchg8b(m: i32): void {
  const a = modrmEA(m);
  const lo = rd32(a);
  const hi = rd32((a + 4) | 0);
  if (aborted()) return;
  const f = getFlags();
  if (lo == st(EAX) && hi == st(EDX)) {
    wr32(a, st(EBX));
    wr32((a + 4) | 0, st(ECX));
    setFlags(f | ZF);
  } else {
    wr32(a, lo);
    wr32((a + 4) | 0, hi);
    setSt(EAX, lo);
    setSt(EDX, hi);
    setFlags(f & ~ZF);
  }
}

