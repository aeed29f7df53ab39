// Instruction length and LOCK legality, decided before an instruction with a
// long prefix run or a LOCK prefix executes, so that #GP (longer than 15
// bytes, SDM Vol. 3A 6.15) and #UD (LOCK on a form that cannot be locked,
// SDM Vol. 2A "LOCK") are raised before anything is committed.

import { ram8 } from "./target/wasm";

/** Bytes of ModRM + SIB + displacement at q (address size 32 unless a16). */
function modrmBytes(q: i32, a16: bool): i32 {
  const m = ram8(q);
  const mod = m >> 6;
  const rm = m & 7;
  if (mod == 3) return 1;
  if (a16) return 1 + (mod == 1 ? 1 : mod == 2 ? 2 : rm == 6 ? 2 : 0);
  let n = 1;
  if (rm == 4) {
    n++;
    if ((ram8((q + 1) | 0) & 7) == 5 && mod == 0) n += 4;
  } else if (rm == 5 && mod == 0) n += 4;
  if (mod == 1) n += 1; else if (mod == 2) n += 4;
  return n;
}

function hasModrm1(op: i32): bool {
  if (op < 0x40) return (op & 4) == 0;
  return op == 0x62 || op == 0x63 || op == 0x69 || op == 0x6b || (op >= 0x80 && op <= 0x8f) ||
    op == 0xc0 || op == 0xc1 || (op >= 0xc4 && op <= 0xc7) || (op >= 0xd0 && op <= 0xd3) ||
    (op >= 0xd8 && op <= 0xdf) || op == 0xf6 || op == 0xf7 || op == 0xfe || op == 0xff;
}

/** Immediate bytes of a one-byte opcode (modrm = its ModRM byte, when it has one). */
function imm1(op: i32, modrm: i32, o16: bool, a16: bool): i32 {
  const z = o16 ? 2 : 4;
  if (op < 0x40) return (op & 7) == 4 ? 1 : (op & 7) == 5 ? z : 0;
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0xb0 && op <= 0xb7) || (op >= 0xe0 && op <= 0xe7)) return 1;
  if (op >= 0xb8 && op <= 0xbf) return z;
  if (op >= 0xa0 && op <= 0xa3) return a16 ? 2 : 4;
  switch (op) {
    case 0x6a: case 0x6b: case 0x80: case 0x82: case 0x83: case 0xa8: case 0xc0: case 0xc1:
    case 0xc6: case 0xcd: case 0xd4: case 0xd5: case 0xeb: return 1;
    case 0x68: case 0x69: case 0x81: case 0xa9: case 0xc7: case 0xe8: case 0xe9: return z;
    case 0xc2: case 0xca: return 2;
    case 0xc8: return 3;
    case 0x9a: case 0xea: return z + 2;
    case 0xf6: return ((modrm >> 3) & 7) < 2 ? 1 : 0;
    case 0xf7: return ((modrm >> 3) & 7) < 2 ? z : 0;
    default: return 0;
  }
}

/** Length of the instruction whose opcode (after prefixes) is at q, prefixes counted from start. */
export function instrLength(start: i32, q: i32, o16: bool, a16: bool): i32 {
  const op = ram8(q);
  let n = (q - start + 1) | 0;
  if (op == 0x0f) {
    const op2 = ram8((q + 1) | 0);
    n++;
    if (op2 >= 0x80 && op2 <= 0x8f) return n + (o16 ? 2 : 4);
    const noModrm = op2 == 0x05 || op2 == 0x06 || op2 == 0x07 || op2 == 0x08 || op2 == 0x09 ||
      op2 == 0x0b || op2 == 0x30 || op2 == 0x31 || op2 == 0x32 || op2 == 0x33 || op2 == 0x34 ||
      op2 == 0x35 || op2 == 0x77 || op2 == 0xa0 || op2 == 0xa1 || op2 == 0xa2 || op2 == 0xa8 ||
      op2 == 0xa9 || op2 == 0xaa || (op2 >= 0xc8 && op2 <= 0xcf);
    if (noModrm) return n;
    n += modrmBytes((q + 2) | 0, a16);
    if (op2 == 0xa4 || op2 == 0xac || op2 == 0xba || op2 == 0x70 || op2 == 0x71 || op2 == 0x72 ||
        op2 == 0x73 || op2 == 0xc2 || op2 == 0xc4 || op2 == 0xc5 || op2 == 0xc6) n++;
    return n;
  }
  let modrm = 0;
  if (hasModrm1(op)) {
    modrm = ram8((q + 1) | 0);
    n += modrmBytes((q + 1) | 0, a16);
  }
  return n + imm1(op, modrm, o16, a16);
}

/** Whether a LOCK prefix is legal on the instruction whose opcode is at q: a read-modify-write with a memory destination. */
export function lockAllowed(q: i32): bool {
  const op = ram8(q);
  if (op == 0x0f) {
    const op2 = ram8((q + 1) | 0);
    const m = ram8((q + 2) | 0);
    if (m >= 0xc0) return false;
    const sub = (m >> 3) & 7;
    return op2 == 0xab || op2 == 0xb3 || op2 == 0xbb || op2 == 0xb0 || op2 == 0xb1 ||
      op2 == 0xc0 || op2 == 0xc1 || (op2 == 0xba && sub >= 5) || (op2 == 0xc7 && sub == 1);
  }
  const m = ram8((q + 1) | 0);
  if (m >= 0xc0) return false;
  const sub = (m >> 3) & 7;
  if (op < 0x40) return (op & 7) < 2 && (op >> 3) != 7;   // ALU r/m, r (not CMP)
  if (op >= 0x80 && op <= 0x83) return sub != 7;          // ALU r/m, imm (not CMP)
  if (op == 0x86 || op == 0x87) return true;              // XCHG
  if (op == 0xf6 || op == 0xf7) return sub == 2 || sub == 3; // NOT, NEG
  if (op == 0xfe || op == 0xff) return sub < 2;           // INC, DEC
  return false;
}
