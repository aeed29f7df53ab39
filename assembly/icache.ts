// The decoded-instruction cache.
//
// The common instruction forms (32-bit operands and addressing, at most a
// segment-override prefix) are decoded once into an 8-word entry keyed by the
// instruction's linear address; dispatch.ts executes them from the entry, with
// no byte fetching or ModRM decoding. Everything else gets an H_SLOW entry and
// runs through the byte interpreter (exec.ts), which stays the reference
// semantics: both paths call the same ALU, shift and flag code.
//
// Validity: every store to RAM bumps the generation word of its 256-byte line
// (memory.ts stored()); an entry records the generation of the line it was
// decoded from and is used only while that is unchanged. An instruction that
// crosses a line boundary is never cached (it would depend on two lines).
//
// Entry words: 0 tag (linear address), 1 line generation, 2 info, 3 disp (or
// branch displacement, or immediate), 4 immediate.
// info bits: 0-7 handler, 8-11 length, 12-15 reg, 16-19 base, 20-23 index
// (or a sub-operation), 24-25 scale, 26-28 segment, 29-31 the sub-operation
// of a memory form that needs the index field for its address.
// A memory operand's offset is R[base] + (R[index] << scale) + disp, where a
// missing base or index is ZERO_REG (a state word that is always 0).

import { setIc, ram8, ram32, lineGen } from "./target/wasm";
import { ZERO_REG, SEG_DS, SEG_SS, SEG_ES, SEG_CS, SEG_FS, SEG_GS, EAX } from "./state";

export const IC_MASK: i32 = 0xffff;

export const H_SLOW: i32 = 0;
export const H_NOP: i32 = 1;
export const H_MOV_RR: i32 = 2;    // R[reg] = R[base]
export const H_MOV_MR: i32 = 3;    // [mem] = R[reg]
export const H_MOV_RM: i32 = 4;    // R[reg] = [mem]
export const H_LEA: i32 = 5;       // R[reg] = offset
export const H_MOV_RI: i32 = 6;    // R[reg] = imm
export const H_MOV_MI: i32 = 7;    // [mem] = imm
export const H_TEST_RR: i32 = 8;
export const H_TEST_MR: i32 = 9;
export const H_TEST_RI: i32 = 10;
export const H_INC_R: i32 = 11;
export const H_DEC_R: i32 = 12;
export const H_PUSH_R: i32 = 13;
export const H_POP_R: i32 = 14;
export const H_PUSH_I: i32 = 15;
export const H_JCC: i32 = 16;      // cc in index, displacement in disp
export const H_JMP: i32 = 17;
export const H_CALL: i32 = 18;
export const H_RET: i32 = 19;
export const H_SHIFT_RI: i32 = 20; // shift op in index, count in imm
export const H_MOVZX8_R: i32 = 21;
export const H_MOVZX8_M: i32 = 22;
export const H_MOVZX16_R: i32 = 23;
export const H_MOVZX16_M: i32 = 24;
export const H_MOVSX8_R: i32 = 25;
export const H_MOVSX8_M: i32 = 26;
export const H_MOVSX16_R: i32 = 27;
export const H_MOVSX16_M: i32 = 28;
export const H_MOV8_RR: i32 = 29;  // reg8[reg] = reg8[base]
export const H_MOV8_RM: i32 = 30;
export const H_MOV8_MR: i32 = 31;
export const H_ALU8_RR: i32 = 32;  // op in index
export const H_ALU8_RM: i32 = 33;
export const H_ALU8_MR: i32 = 34;
export const H_ALU8_RI: i32 = 35;
export const H_ALU8_MI: i32 = 36;
export const H_JMP_R: i32 = 37;
export const H_JMP_M: i32 = 38;
export const H_CALL_R: i32 = 39;
export const H_CALL_M: i32 = 40;
export const H_SETCC_R: i32 = 41;  // cc in index
export const H_IMUL_RR: i32 = 42;
export const H_IMUL_RM: i32 = 43;
export const H_IMUL_RRI: i32 = 44; // R[reg] = R[base] * imm
export const H_CMOV_RR: i32 = 45;  // cc in index
export const H_PUSH_M: i32 = 46;
// 32-bit ALU forms: handler = base id + ALU op (ADD OR ADC SBB AND SUB XOR CMP).
export const H_ALU_RR: i32 = 64;   // R[reg] = R[reg] op R[base]
export const H_ALU_MR: i32 = 72;   // [mem] = [mem] op R[reg]
export const H_ALU_RM: i32 = 80;   // R[reg] = R[reg] op [mem]
export const H_ALU_RI: i32 = 88;   // R[reg] = R[reg] op imm
export const H_ALU_MI: i32 = 96;   // [mem] = [mem] op imm

// Decoding state for the entry being built.
let q: i32 = 0;        // next byte to read
let base: i32 = 0;
let index: i32 = 0;
let scale: i32 = 0;
let disp: i32 = 0;
let seg: i32 = 0;
let segOvr: i32 = -1;

// @ts-ignore: decorator
@inline function byte(): i32 { const v = ram8(q); q = (q + 1) | 0; return v; }
// @ts-ignore: decorator
@inline function sbyte(): i32 { const v = (ram8(q) << 24) >> 24; q = (q + 1) | 0; return v; }
// @ts-ignore: decorator
@inline function dword(): i32 { const v = ram32(q); q = (q + 4) | 0; return v; }

/** Decodes a memory ModRM (mod != 3) with 32-bit addressing into base/index/scale/disp/seg. */
function memOperand(m: i32): void {
  const mod = m >> 6;
  const rm = m & 7;
  base = ZERO_REG; index = ZERO_REG; scale = 0; disp = 0;
  let s = SEG_DS;
  if (rm == 4) {
    const sib = byte();
    const b = sib & 7;
    const x = (sib >> 3) & 7;
    if (x != 4) { index = x; scale = sib >> 6; }
    if (b == 5 && mod == 0) disp = dword();
    else { base = b; if (b == 4 || b == 5) s = SEG_SS; }
  } else if (rm == 5 && mod == 0) {
    disp = dword();
  } else {
    base = rm;
    if (rm == 5) s = SEG_SS;
  }
  if (mod == 1) disp = sbyte();
  else if (mod == 2) disp = dword();
  seg = segOvr >= 0 ? segOvr : s;
}

function pack(h: i32, reg: i32): i32 {
  return h | (reg << 12) | (base << 16) | (index << 20) | (scale << 24) | (seg << 26);
}

/**
 * Fills entry e (a word index) for the instruction at linear address pc,
 * which the caller knows to be inside RAM.
 */
export function icDecode(pc: i32, e: i32): void {
  q = pc;
  base = ZERO_REG; index = ZERO_REG; scale = 0; disp = 0; seg = SEG_DS; segOvr = -1;
  let imm: i32 = 0;
  let info: i32 = H_SLOW;
  let op = byte();
  switch (op) {
    case 0x26: segOvr = SEG_ES; op = byte(); break;
    case 0x2e: segOvr = SEG_CS; op = byte(); break;
    case 0x36: segOvr = SEG_SS; op = byte(); break;
    case 0x3e: segOvr = SEG_DS; op = byte(); break;
    case 0x64: segOvr = SEG_FS; op = byte(); break;
    case 0x65: segOvr = SEG_GS; op = byte(); break;
    default: break;
  }
  switch (op) {
    // ALU r/m32, r32 and r32, r/m32 (01 09 ... 39, 03 0B ... 3B)
    case 0x01: case 0x09: case 0x11: case 0x19: case 0x21: case 0x29: case 0x31: case 0x39: {
      const m = byte();
      const reg = (m >> 3) & 7;
      if (m >= 0xc0) { base = reg; info = pack(H_ALU_RR + (op >> 3), m & 7); }
      else { memOperand(m); info = pack(H_ALU_MR + (op >> 3), reg); }
      break;
    }
    case 0x03: case 0x0b: case 0x13: case 0x1b: case 0x23: case 0x2b: case 0x33: case 0x3b: {
      const m = byte();
      const reg = (m >> 3) & 7;
      if (m >= 0xc0) { base = m & 7; info = pack(H_ALU_RR + (op >> 3), reg); }
      else { memOperand(m); info = pack(H_ALU_RM + (op >> 3), reg); }
      break;
    }
    case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d:
      imm = dword();
      info = pack(H_ALU_RI + (op >> 3), EAX);
      break;
    // 8-bit ALU: r/m8, r8 / r8, r/m8 / AL, imm8
    case 0x00: case 0x08: case 0x10: case 0x18: case 0x20: case 0x28: case 0x30: case 0x38: {
      const m = byte();
      const reg = (m >> 3) & 7;
      index = op >> 3;
      if (m >= 0xc0) { base = reg; info = pack(H_ALU8_RR, m & 7); }
      else { const x = index; memOperand(m); info = packMemSub(H_ALU8_MR, reg, x); }
      break;
    }
    case 0x02: case 0x0a: case 0x12: case 0x1a: case 0x22: case 0x2a: case 0x32: case 0x3a: {
      const m = byte();
      const reg = (m >> 3) & 7;
      index = op >> 3;
      if (m >= 0xc0) { base = m & 7; info = pack(H_ALU8_RR, reg); }
      else { const x = index; memOperand(m); info = packMemSub(H_ALU8_RM, reg, x); }
      break;
    }
    case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c:
      imm = byte();
      index = op >> 3;
      info = pack(H_ALU8_RI, 0);
      break;
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
      info = pack(H_INC_R, op & 7);
      break;
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
      info = pack(H_DEC_R, op & 7);
      break;
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
      info = pack(H_PUSH_R, op & 7);
      break;
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
      info = pack(H_POP_R, op & 7);
      break;
    case 0x68: imm = dword(); info = pack(H_PUSH_I, 0); break;
    case 0x6a: imm = sbyte(); info = pack(H_PUSH_I, 0); break;
    case 0x69: case 0x6b: {
      const m = byte();
      if (m < 0xc0) break; // memory form: slow path
      base = m & 7;
      imm = op == 0x6b ? sbyte() : dword();
      info = pack(H_IMUL_RRI, (m >> 3) & 7);
      break;
    }
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
      disp = sbyte();
      index = op & 15;
      info = pack(H_JCC, 0);
      break;
    case 0x80: case 0x82: {
      const m = byte();
      const sub = (m >> 3) & 7;
      if (m >= 0xc0) { imm = byte(); index = sub; info = pack(H_ALU8_RI, m & 7); }
      else { memOperand(m); imm = byte(); info = packMemSub(H_ALU8_MI, 0, sub); }
      break;
    }
    case 0x81: case 0x83: {
      const m = byte();
      const sub = (m >> 3) & 7;
      if (m >= 0xc0) {
        imm = op == 0x83 ? sbyte() : dword();
        info = pack(H_ALU_RI + sub, m & 7);
      } else {
        memOperand(m);
        imm = op == 0x83 ? sbyte() : dword();
        info = pack(H_ALU_MI + sub, 0);
      }
      break;
    }
    case 0x84: case 0x85: {
      if (op == 0x84) break;
      const m = byte();
      const reg = (m >> 3) & 7;
      if (m >= 0xc0) { base = m & 7; info = pack(H_TEST_RR, reg); }
      else { memOperand(m); info = pack(H_TEST_MR, reg); }
      break;
    }
    case 0x88: case 0x8a: {
      const m = byte();
      const reg = (m >> 3) & 7;
      if (m >= 0xc0) {
        if (op == 0x88) { base = reg; info = pack(H_MOV8_RR, m & 7); }
        else { base = m & 7; info = pack(H_MOV8_RR, reg); }
      } else {
        memOperand(m);
        info = pack(op == 0x88 ? H_MOV8_MR : H_MOV8_RM, reg);
      }
      break;
    }
    case 0x89: case 0x8b: {
      const m = byte();
      const reg = (m >> 3) & 7;
      if (m >= 0xc0) {
        if (op == 0x89) { base = reg; info = pack(H_MOV_RR, m & 7); }
        else { base = m & 7; info = pack(H_MOV_RR, reg); }
      } else {
        memOperand(m);
        info = pack(op == 0x89 ? H_MOV_MR : H_MOV_RM, reg);
      }
      break;
    }
    case 0x8d: {
      const m = byte();
      if (m >= 0xc0) break; // #UD: slow path raises it
      memOperand(m);
      info = pack(H_LEA, (m >> 3) & 7);
      break;
    }
    case 0x90: info = pack(H_NOP, 0); break;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      imm = dword();
      info = pack(H_MOV_RI, op & 7);
      break;
    case 0xc1: case 0xd1: {
      const m = byte();
      if (m < 0xc0) break;
      imm = op == 0xd1 ? 1 : byte();
      index = (m >> 3) & 7;
      info = pack(H_SHIFT_RI, m & 7);
      break;
    }
    case 0xc3: info = pack(H_RET, 0); break;
    case 0xc7: {
      const m = byte();
      if (((m >> 3) & 7) != 0) break;
      if (m >= 0xc0) { imm = dword(); info = pack(H_MOV_RI, m & 7); }
      else { memOperand(m); imm = dword(); info = pack(H_MOV_MI, 0); }
      break;
    }
    case 0xe8: disp = dword(); info = pack(H_CALL, 0); break;
    case 0xe9: disp = dword(); info = pack(H_JMP, 0); break;
    case 0xeb: disp = sbyte(); info = pack(H_JMP, 0); break;
    case 0xf7: {
      const m = byte();
      if (((m >> 3) & 7) != 0 || m < 0xc0) break;
      imm = dword();
      info = pack(H_TEST_RI, m & 7);
      break;
    }
    case 0xa9: imm = dword(); info = pack(H_TEST_RI, EAX); break;
    case 0xff: {
      const m = byte();
      const sub = (m >> 3) & 7;
      if (m >= 0xc0) {
        if (sub == 0) info = pack(H_INC_R, m & 7);
        else if (sub == 1) info = pack(H_DEC_R, m & 7);
        else if (sub == 2) { base = m & 7; info = pack(H_CALL_R, 0); }
        else if (sub == 4) { base = m & 7; info = pack(H_JMP_R, 0); }
      } else if (sub == 2 || sub == 4 || sub == 6) {
        memOperand(m);
        info = pack(sub == 2 ? H_CALL_M : sub == 4 ? H_JMP_M : H_PUSH_M, 0);
      }
      break;
    }
    case 0x0f: info = decode0f(); imm = imm0f; break;
    default: break;
  }
  const len = (q - pc) | 0;
  // Never cache across a 256-byte line (see above), nor anything not decoded.
  if ((info & 0xff) == H_SLOW || (pc & 0xff) + len > 256) info = H_SLOW;
  setIc(e, pc);
  setIc(e + 1, lineGen(pc));
  setIc(e + 2, info | (len << 8));
  setIc(e + 3, disp);
  setIc(e + 4, imm);
}

let imm0f: i32 = 0;

/** The decoding variables to their initial values (they never outlive one icDecode, but a reused core must equal a fresh one). */
export function icacheReset(): void {
  q = 0; base = 0; index = 0; scale = 0; disp = 0; seg = 0; segOvr = -1; imm0f = 0;
}

function decode0f(): i32 {
  const op = byte();
  imm0f = 0;
  if (op >= 0x80 && op <= 0x8f) {
    disp = dword();
    index = op & 15;
    return pack(H_JCC, 0);
  }
  const m = byte();
  const reg = (m >> 3) & 7;
  const isReg = m >= 0xc0;
  if (isReg) base = m & 7; else memOperand(m);
  switch (op) {
    case 0xb6: return pack(isReg ? H_MOVZX8_R : H_MOVZX8_M, reg);
    case 0xb7: return pack(isReg ? H_MOVZX16_R : H_MOVZX16_M, reg);
    case 0xbe: return pack(isReg ? H_MOVSX8_R : H_MOVSX8_M, reg);
    case 0xbf: return pack(isReg ? H_MOVSX16_R : H_MOVSX16_M, reg);
    case 0xaf: return pack(isReg ? H_IMUL_RR : H_IMUL_RM, reg);
    default: break;
  }
  if (op >= 0x90 && op <= 0x9f && isReg) { index = op & 15; base = ZERO_REG; return pack(H_SETCC_R, m & 7); }
  if (op >= 0x40 && op <= 0x4f && isReg) { index = op & 15; return pack(H_CMOV_RR, reg); }
  if (op == 0x1f) return pack(H_NOP, 0); // multi-byte NOP: the operand is decoded, never accessed
  return H_SLOW;
}

/** pack() for a memory form with a sub-operation: the index field addresses memory, so the sub-op goes in bits 29-31. */
function packMemSub(h: i32, reg: i32, sub: i32): i32 {
  return pack(h, reg) | (sub << 29);
}
