// Random but well-formed i386 code for differential testing. A program is a
// list of instructions drawn from templates; every instruction's start and
// length is recorded so that a harness can step over one that faults. Memory
// operands are built so that their address lands in the data area (through
// any ModRM/SIB form, with or without a segment override or 16-bit
// addressing), except for the templates that deliberately reach outside RAM
// or into the MMIO window.
//
// Templates draw every choice from a `Rand`, so the same generator serves a
// seeded PRNG and fast-check (which supplies the numbers and can shrink them).

import { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, le16, le32, modrm, sib } from "./x86.js";

export interface Rand {
  u32(): number;
  int(n: number): number;
  range(lo: number, hi: number): number;
  pick<T>(a: readonly T[]): T;
  chance(p: number): boolean;
}

/** A Rand replaying a list of numbers (cycling; all zeros when empty). */
export class ListRand implements Rand {
  private i = 0;
  constructor(private readonly words: readonly number[]) {}
  u32(): number { return this.words.length === 0 ? 0 : this.words[this.i++ % this.words.length] >>> 0; }
  int(n: number): number { return n <= 1 ? 0 : this.u32() % n; }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  chance(p: number): boolean { return this.u32() / 0x100000000 < p; }
}

// ---- the machine layout the programs assume -------------------------------------
export const LAYOUT = {
  ram: 1 << 20,
  code: 0x20000,
  dataLo: 0x4000,
  dataHi: 0xc000,
  stackTop: 0xe000,
  mmio: 0xc0000000,
  mmioSize: 0x1000,
  fsBase: 0x4000,
  gsBase: 0xffff4000, // gs:[0x10000 + x] is linear 0x4000 + x (wraps)
} as const;

const SEG_PREFIX: [number, number][] = [
  [-1, 0], [0x64, LAYOUT.fsBase], [0x65, LAYOUT.gsBase], [0x26, 0], [0x2e, 0], [0x36, 0], [0x3e, 0],
];

export interface Program {
  bytes: Uint8Array;
  /** Offset of every instruction start -> its length (to step over faults). */
  starts: Map<number, number>;
  /** Offset just past the final HLT. */
  end: number;
}

type Bytes = number[];

/** Builds a program. `emit` appends one instruction; templates may emit several. */
export class Builder {
  readonly out: Bytes = [];
  readonly starts = new Map<number, number>();
  /** Registers templates must not write (ESP always; ECX inside LOOP bodies). */
  avoid = new Set<number>([ESP]);
  depth = 0;
  constructor(readonly r: Rand) {}

  emit(b: Bytes): void {
    this.starts.set(this.out.length, b.length);
    this.out.push(...b);
  }

  // ---- register choices ----
  /** A 32/16-bit register that may be written. */
  dst(): number {
    const ok = [EAX, ECX, EDX, EBX, EBP, ESI, EDI].filter((x) => !this.avoid.has(x));
    return this.r.pick(ok);
  }
  /** An 8-bit register encoding (AL..BH) whose 32-bit register may be written. */
  dst8(): number {
    const ok = [0, 1, 2, 3, 4, 5, 6, 7].filter((x) => !this.avoid.has(x & 3));
    return this.r.pick(ok);
  }
  any(): number { return this.r.int(8); }

  /** An interesting 32-bit value. */
  val(): number {
    const r = this.r;
    switch (r.int(6)) {
      case 0: return r.pick([0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe]);
      case 1: return r.int(16);
      case 2: return (r.u32() & 0xff) >>> 0;
      case 3: return (0 - r.int(16)) >>> 0;
      default: return r.u32();
    }
  }

  movRI(reg: number, v: number): void { this.emit([0xb8 + reg, ...le32(v)]); }

  /**
   * A memory operand whose linear address is in the data area, `room` bytes
   * from its end. Emits the register set-up instructions; returns the prefix
   * bytes and the ModRM (+SIB, displacement) bytes for ModRM reg field `reg`.
   */
  mem(reg: number, room = 16): { pre: Bytes; rm: Bytes } {
    const r = this.r;
    const lin = r.range(LAYOUT.dataLo, LAYOUT.dataHi - room);
    const a16 = r.chance(0.15);
    let seg = r.pick(SEG_PREFIX);
    if (a16 && seg[0] === 0x65) seg = [-1, 0];
    const pre: Bytes = seg[0] >= 0 ? [seg[0]] : [];
    const off = (lin - seg[1]) >>> 0;
    if (a16) {
      pre.push(0x67);
      return { pre, rm: this.mem16(reg, off & 0xffff) };
    }
    return { pre, rm: this.mem32(reg, off) };
  }

  /** Free registers for address set-up (writable, and not ESP). */
  private addrRegs(): number[] {
    return [EAX, ECX, EDX, EBX, EBP, ESI, EDI].filter((x) => !this.avoid.has(x));
  }

  private mem32(reg: number, off: number): Bytes {
    const r = this.r;
    const regs = this.addrRegs();
    const form = regs.length < 2 ? 0 : r.int(7);
    const disp = () => {
      const k = r.int(3);
      return k === 0 ? { mod: 0, d: 0 } : k === 1 ? { mod: 1, d: r.range(-128, 127) } : { mod: 2, d: r.u32() | 0 };
    };
    const dispBytes = (mod: number, d: number) => (mod === 1 ? [d & 0xff] : mod === 2 ? le32(d) : []);
    switch (form) {
      case 0: // [disp32]
        return [modrm(0, reg, 5), ...le32(off)];
      case 1: case 2: { // [base + disp]
        const b = r.pick(regs);
        let { mod, d } = disp();
        if (b === EBP && mod === 0) mod = 1; // mod 00 rm 101 is disp32
        this.movRI(b, (off - d) >>> 0);
        return [modrm(mod, reg, b), ...dispBytes(mod, d)];
      }
      case 3: case 4: { // SIB [base + index*scale + disp]
        const b = r.pick(regs);
        const idx = r.pick(regs.filter((x) => x !== b));
        const sc = r.int(4);
        let { mod, d } = disp();
        if (b === EBP && mod === 0) mod = 1;
        const iv = r.chance(0.5) ? r.int(64) : r.u32();
        this.movRI(idx, iv);
        this.movRI(b, (off - d - Math.imul(iv, 1 << sc)) >>> 0);
        return [modrm(mod, reg, 4), sib(sc, idx, b), ...dispBytes(mod, d)];
      }
      case 5: { // SIB without base: [index*scale + disp32]
        const idx = r.pick(regs);
        const sc = r.int(4);
        const iv = r.int(0x1000);
        this.movRI(idx, iv);
        return [modrm(0, reg, 4), sib(sc, idx, 5), ...le32((off - Math.imul(iv, 1 << sc)) >>> 0)];
      }
      default: { // SIB without index (index 100), any scale bits
        const b = r.pick(regs);
        let { mod, d } = disp();
        if (b === EBP && mod === 0) mod = 1;
        this.movRI(b, (off - d) >>> 0);
        return [modrm(mod, reg, 4), sib(r.int(4), 4, b), ...dispBytes(mod, d)];
      }
    }
  }

  private mem16(reg: number, off: number): Bytes {
    const r = this.r;
    // rm: 0 bx+si, 1 bx+di, 2 bp+si, 3 bp+di, 4 si, 5 di, 6 bp / disp16, 7 bx
    const pairs: [number, number][] = [[EBX, ESI], [EBX, EDI], [EBP, ESI], [EBP, EDI], [ESI, -1], [EDI, -1], [EBP, -1], [EBX, -1]];
    const usable = [0, 1, 2, 3, 4, 5, 6, 7].filter((rm) => pairs[rm].every((x) => x < 0 || !this.avoid.has(x)));
    const rm = usable.length === 0 ? 6 : r.pick(usable);
    let mod = r.int(3);
    if (usable.length === 0) mod = 0;
    if (rm === 6 && mod === 0) return [modrm(0, reg, 6), ...le16(off)];
    const d = mod === 0 ? 0 : mod === 1 ? r.range(-128, 127) : r.int(0x10000);
    const [a, b] = pairs[rm];
    const hi = () => (r.u32() & 0xffff0000) >>> 0; // upper halves are ignored
    if (b < 0) {
      this.movRI(a, (hi() | ((off - d) & 0xffff)) >>> 0);
    } else {
      const av = r.int(0x10000);
      this.movRI(a, (hi() | av) >>> 0);
      this.movRI(b, (hi() | ((off - d - av) & 0xffff)) >>> 0);
    }
    const db = mod === 1 ? [d & 0xff] : mod === 2 ? le16(d) : [];
    return [modrm(mod, reg, rm), ...db];
  }

  /** mem() whose address set-up leaves the registers in `keep` alone. */
  memKeeping(keep: number[], reg: number, room = 16): { pre: Bytes; rm: Bytes } {
    const added = keep.filter((x) => !this.avoid.has(x));
    for (const x of added) this.avoid.add(x);
    try { return this.mem(reg, room); } finally { for (const x of added) this.avoid.delete(x); }
  }

  /** A register (mod 11) or memory r/m operand. */
  rm(reg: number, dstReg: boolean, size: 1 | 2 | 4, room = 16): { pre: Bytes; rm: Bytes } {
    if (this.r.chance(0.45)) {
      const x = dstReg ? (size === 1 ? this.dst8() : this.dst()) : this.any();
      return { pre: [], rm: [modrm(3, reg, x)] };
    }
    return this.mem(reg, room);
  }
}

// ---- templates ------------------------------------------------------------------
type Template = (b: Builder) => void;

const opsz = (size: 1 | 2 | 4): Bytes => (size === 2 ? [0x66] : []);
const pickSize = (b: Builder): 1 | 2 | 4 => b.r.pick([1, 2, 4, 4] as const);
const imm = (size: 1 | 2 | 4, v: number): Bytes => (size === 1 ? [v & 0xff] : size === 2 ? le16(v) : le32(v));

const alu: Template = (b) => {
  const r = b.r;
  const size = pickSize(b);
  const op = r.int(8);
  const form = r.int(4);
  if (form === 0) { // op r/m, r
    const reg = b.any();
    const { pre, rm } = b.rm(reg, true, size);
    b.emit([...pre, ...opsz(size), (op << 3) | (size === 1 ? 0 : 1), ...rm]);
  } else if (form === 1) { // op r, r/m
    const reg = size === 1 ? b.dst8() : b.dst();
    const { pre, rm } = b.rm(reg, false, size);
    b.emit([...pre, ...opsz(size), (op << 3) | (size === 1 ? 2 : 3), ...rm]);
  } else if (form === 2) { // group 1: 80 / 81 / 83
    const { pre, rm } = b.rm(op, true, size);
    if (size === 1) b.emit([...pre, r.pick([0x80, 0x82]), ...rm, r.int(256)]);
    else if (r.chance(0.5)) b.emit([...pre, ...opsz(size), 0x83, ...rm, r.int(256)]);
    else b.emit([...pre, ...opsz(size), 0x81, ...rm, ...imm(size, b.val())]);
  } else { // AL / eAX, imm
    if (b.avoid.has(EAX)) return;
    b.emit([...opsz(size), (op << 3) | (size === 1 ? 4 : 5), ...imm(size, b.val())]);
  }
};

const incdec: Template = (b) => {
  const r = b.r;
  if (r.chance(0.4)) {
    const d = b.dst();
    b.emit([...(r.chance(0.3) ? [0x66] : []), (r.chance(0.5) ? 0x40 : 0x48) + d]);
  } else {
    const size = pickSize(b);
    const { pre, rm } = b.rm(r.int(2), true, size);
    b.emit([...pre, ...opsz(size), size === 1 ? 0xfe : 0xff, ...rm]);
  }
};

const group3: Template = (b) => {
  const r = b.r;
  const size = pickSize(b);
  const sub = r.pick([0, 2, 3, 4, 5, 6, 7, 0, 2, 3]);
  if (sub >= 4 && (b.avoid.has(EAX) || b.avoid.has(EDX))) return;
  if (sub >= 6) { // DIV / IDIV: a dividend that fits most of the time; #DE is allowed
    const dv = r.chance(0.1) ? 0 : b.val();
    if (!r.chance(0.15)) {
      b.movRI(EDX, r.pick([0, 0, 0xffffffff, r.int(4)]));
    }
    const reg = [EBX, ESI, EDI, EBP, ECX].filter((x) => !b.avoid.has(x));
    const s = r.pick(reg);
    if (r.chance(0.5)) {
      b.movRI(s, dv);
      b.emit([...opsz(size), size === 1 ? 0xf6 : 0xf7, modrm(3, sub, s)]);
    } else {
      const { pre, rm } = b.memKeeping([EAX, EDX], sub);
      b.emit([...pre, ...opsz(size), size === 1 ? 0xf6 : 0xf7, ...rm]);
    }
    return;
  }
  const { pre, rm } = b.rm(sub, true, size);
  b.emit([...pre, ...opsz(size), size === 1 ? 0xf6 : 0xf7, ...rm, ...(sub === 0 ? imm(size, b.val()) : [])]);
};

const imul: Template = (b) => {
  const r = b.r;
  const size: 2 | 4 = r.chance(0.3) ? 2 : 4;
  const reg = b.dst();
  const { pre, rm } = b.rm(reg, false, size);
  const k = r.int(3);
  if (k === 0) b.emit([...pre, ...opsz(size), 0x0f, 0xaf, ...rm]);
  else if (k === 1) b.emit([...pre, ...opsz(size), 0x6b, ...rm, r.int(256)]);
  else b.emit([...pre, ...opsz(size), 0x69, ...rm, ...imm(size, b.val())]);
};

const shifts: Template = (b) => {
  const r = b.r;
  const size = pickSize(b);
  const sub = r.int(8);
  const { pre, rm } = b.rm(sub, true, size);
  const k = r.int(3);
  const cnt = r.pick([0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, r.int(256)]);
  if (k === 0) b.emit([...pre, ...opsz(size), size === 1 ? 0xc0 : 0xc1, ...rm, cnt]);
  else if (k === 1) b.emit([...pre, ...opsz(size), size === 1 ? 0xd0 : 0xd1, ...rm]);
  else {
    if (!b.avoid.has(ECX) && r.chance(0.7)) b.emit([0xb1, cnt]); // mov cl, cnt
    b.emit([...pre, ...opsz(size), size === 1 ? 0xd2 : 0xd3, ...rm]);
  }
};

const shiftDouble: Template = (b) => {
  const r = b.r;
  const size: 2 | 4 = r.chance(0.3) ? 2 : 4;
  const { pre, rm } = b.rm(b.any(), true, size);
  const left = r.chance(0.5);
  if (r.chance(0.5)) b.emit([...pre, ...opsz(size), 0x0f, left ? 0xa4 : 0xac, ...rm, r.pick([0, 1, 4, 15, 16, 17, 31, r.int(256)])]);
  else b.emit([...pre, ...opsz(size), 0x0f, left ? 0xa5 : 0xad, ...rm]);
};

const bitops: Template = (b) => {
  const r = b.r;
  const size: 2 | 4 = r.chance(0.3) ? 2 : 4;
  const kind = r.int(4); // bt bts btr btc
  if (r.chance(0.4)) { // imm form
    const { pre, rm } = b.rm(4 + kind, true, size);
    b.emit([...pre, ...opsz(size), 0x0f, 0xba, ...rm, r.int(256)]);
  } else if (r.chance(0.5)) { // register bit string
    b.emit([...opsz(size), 0x0f, 0xa3 + kind * 8, modrm(3, b.any(), kind === 0 ? b.any() : b.dst())]);
  } else { // memory bit string with a small signed offset
    const oreg = b.dst();
    const { pre, rm } = b.memKeeping([oreg], oreg, 64);
    b.movRI(oreg, (r.range(-256, 256)) >>> 0);
    b.emit([...pre, ...opsz(size), 0x0f, 0xa3 + kind * 8, ...rm]);
  }
};

const bitscan: Template = (b) => {
  const r = b.r;
  const size: 2 | 4 = r.chance(0.3) ? 2 : 4;
  const reg = b.dst();
  const { pre, rm } = b.rm(reg, false, size);
  b.emit([...pre, ...opsz(size), 0x0f, r.chance(0.5) ? 0xbc : 0xbd, ...rm]);
};

const bcd: Template = (b) => {
  const r = b.r;
  if (b.avoid.has(EAX)) return;
  const k = r.int(7);
  if (k < 4) b.emit([[0x27, 0x2f, 0x37, 0x3f][k]]);
  else if (k === 4) b.emit([0xd4, r.chance(0.05) ? 0 : r.pick([10, r.int(256)])]); // AAM (0: #DE)
  else if (k === 5) b.emit([0xd5, r.pick([10, r.int(256)])]);
  else b.emit([0xd6]); // SALC
};

const strings: Template = (b) => {
  const r = b.r;
  for (const x of [ECX, ESI, EDI, EAX]) if (b.avoid.has(x)) return;
  const a16 = r.chance(0.15);
  const size = pickSize(b);
  const op = r.pick([0xa4, 0xa6, 0xaa, 0xac, 0xae]) + (size === 1 ? 0 : 1);
  const std = r.chance(0.3);
  const mid = () => r.range(LAYOUT.dataLo + 0x100, LAYOUT.dataHi - 0x100);
  b.emit([std ? 0xfd : 0xfc]);
  // With 16-bit addressing the upper halves are ignored: make them noise.
  const hi = () => (a16 ? r.u32() & 0xffff0000 : 0);
  b.movRI(ESI, (hi() | mid()) >>> 0);
  b.movRI(EDI, (hi() | mid()) >>> 0);
  b.movRI(ECX, r.chance(0.1) ? 0 : r.int(9) + (a16 ? (r.u32() & 0xffff0000) >>> 0 : 0));
  const rep = r.pick([[], [0xf3], [0xf3], [0xf2]]);
  const seg = r.chance(0.2) ? [r.pick([0x26, 0x2e, 0x36, 0x3e, 0x64])] : [];
  if (seg[0] === 0x64) { // FS base 0x4000: keep the source inside the data area
    b.movRI(ESI, ((a16 ? (r.u32() & 0xffff0000) : 0) | (mid() - LAYOUT.fsBase)) >>> 0);
  }
  b.emit([...rep, ...seg, ...(a16 ? [0x67] : []), ...opsz(size), op]);
};

const stack: Template = (b) => {
  const r = b.r;
  switch (r.int(9)) {
    case 0: b.emit([0x50 + b.any()]); b.emit([0x58 + b.dst()]); return;
    case 1: b.emit([0x50 + b.any()]); return;
    case 2: b.emit([0x58 + b.dst()]); return;
    case 3: if (r.chance(0.5)) b.emit([0x6a, r.int(256)]); else b.emit([0x68, ...le32(b.val())]); return;
    case 4: { // push / pop r/m (memory), 16 or 32 bit
      const size: 2 | 4 = r.chance(0.3) ? 2 : 4;
      const { pre, rm } = b.mem(r.chance(0.5) ? 6 : 0);
      if ((rm[0] >> 3 & 7) === 6) b.emit([...pre, ...opsz(size), 0xff, ...rm]);
      else b.emit([...pre, ...opsz(size), 0x8f, ...rm]);
      return;
    }
    case 5: b.emit([0x9c]); if (r.chance(0.7)) b.emit([0x9d]); return; // pushf / popf
    case 6: { // push imm; popf: random flags, TF excluded
      b.emit([0x68, ...le32(b.val() & ~0x100)]);
      b.emit([0x9d]);
      return;
    }
    case 7: if ([EAX, ECX, EDX, EBX, EBP, ESI, EDI].some((x) => b.avoid.has(x))) return; b.emit([0x60]); b.emit([0x61]); return;
    default: b.emit([0x66, 0x50 + b.any()]); b.emit([0x66, 0x58 + b.dst()]); return;
  }
};

const lea: Template = (b) => {
  const r = b.r;
  const reg = b.dst();
  // Any form: LEA touches no memory, so random registers are fine.
  const a16 = r.chance(0.2);
  const mod = r.int(3);
  const rmf = r.int(8);
  const bytes: Bytes = [...(r.chance(0.2) ? [0x66] : []), ...(a16 ? [0x67] : []), 0x8d, modrm(mod, reg, rmf)];
  if (a16) {
    if (mod === 0 && rmf === 6) bytes.push(...le16(r.u32()));
    else if (mod === 1) bytes.push(r.int(256));
    else if (mod === 2) bytes.push(...le16(r.u32()));
  } else {
    if (rmf === 4) bytes.push(r.int(256)); // any SIB
    const sibBase5 = rmf === 4 && (bytes[bytes.length - 1] & 7) === 5;
    if ((mod === 0 && rmf === 5) || (mod === 0 && sibBase5) || mod === 2) bytes.push(...le32(r.u32()));
    else if (mod === 1) bytes.push(r.int(256));
  }
  b.emit(bytes);
};

const movx: Template = (b) => {
  const r = b.r;
  const reg = b.dst();
  const from: 1 | 2 = r.chance(0.5) ? 1 : 2;
  const { pre, rm } = b.rm(reg, false, from);
  b.emit([...pre, ...(r.chance(0.2) ? [0x66] : []), 0x0f, (r.chance(0.5) ? 0xb6 : 0xbe) + (from - 1), ...rm]);
};

const condMoves: Template = (b) => {
  const r = b.r;
  if (r.chance(0.5)) { // SETcc
    const { pre, rm } = b.rm(0, true, 1);
    b.emit([...pre, 0x0f, 0x90 + r.int(16), ...rm]);
  } else { // CMOVcc
    const size: 2 | 4 = r.chance(0.3) ? 2 : 4;
    const reg = b.dst();
    const { pre, rm } = b.rm(reg, false, size);
    b.emit([...pre, ...opsz(size), 0x0f, 0x40 + r.int(16), ...rm]);
  }
};

const exchanges: Template = (b) => {
  const r = b.r;
  const size = pickSize(b);
  switch (r.int(5)) {
    case 0: { const reg = size === 1 ? b.dst8() : b.dst(); const { pre, rm } = b.rm(reg, true, size); b.emit([...pre, ...opsz(size), size === 1 ? 0x86 : 0x87, ...rm]); return; }
    case 1: if (!b.avoid.has(EAX)) b.emit([...(r.chance(0.3) ? [0x66] : []), 0x90 + b.dst()]); return;
    case 2: { const reg = size === 1 ? b.dst8() : b.dst(); const { pre, rm } = b.rm(reg, true, size); b.emit([...pre, ...opsz(size), 0x0f, size === 1 ? 0xc0 : 0xc1, ...rm]); return; }
    case 3: { if (b.avoid.has(EAX)) return; const { pre, rm } = b.rm(b.any(), true, size); b.emit([...pre, ...opsz(size), 0x0f, size === 1 ? 0xb0 : 0xb1, ...rm]); return; }
    default: {
      if ([EAX, EDX].some((x) => b.avoid.has(x))) return;
      const { pre, rm } = b.memKeeping([EAX], 1);
      if (r.chance(0.5)) b.emit([0x8b, modrm(0, EAX, 5), ...le32(LAYOUT.dataLo + 0x40)]); // sometimes equal
      b.emit([...pre, 0x0f, 0xc7, ...rm]);
      return;
    }
  }
};

const moves: Template = (b) => {
  const r = b.r;
  const size = pickSize(b);
  switch (r.int(6)) {
    case 0: b.movRI(b.dst(), b.val()); return;
    case 1: { const reg = b.any(); const { pre, rm } = b.rm(reg, true, size); b.emit([...pre, ...opsz(size), size === 1 ? 0x88 : 0x89, ...rm]); return; }
    case 2: { const reg = size === 1 ? b.dst8() : b.dst(); const { pre, rm } = b.rm(reg, false, size); b.emit([...pre, ...opsz(size), size === 1 ? 0x8a : 0x8b, ...rm]); return; }
    case 3: { const { pre, rm } = b.rm(0, true, size); b.emit([...pre, ...opsz(size), size === 1 ? 0xc6 : 0xc7, ...rm, ...imm(size, b.val())]); return; }
    case 4: { // moffs
      if (b.avoid.has(EAX)) return;
      const a = r.range(LAYOUT.dataLo, LAYOUT.dataHi - 8);
      b.emit([...opsz(size), r.pick([0xa0, 0xa2]) + (size === 1 ? 0 : 1), ...le32(a)]);
      return;
    }
    default: b.emit([0xb0 + b.dst8(), r.int(256)]); return;
  }
};

const misc: Template = (b) => {
  const r = b.r;
  const k = r.int(12);
  if (k === 0 && !b.avoid.has(EAX)) b.emit([...(r.chance(0.5) ? [0x66] : []), 0x98]);
  else if (k === 1 && !b.avoid.has(EDX)) b.emit([...(r.chance(0.5) ? [0x66] : []), 0x99]);
  else if (k === 2) b.emit([r.pick([0xf5, 0xf8, 0xf9, 0xfc, 0xfd, 0xfa, 0xfb])]);
  else if (k === 3) b.emit([0x9e]);
  else if (k === 4 && !b.avoid.has(EAX)) b.emit([0x9f]);
  else if (k === 5) b.emit([0x0f, 0xc8 + b.dst()]);
  else if (k === 6) b.emit([r.pick([0x90, 0x9b])]);
  else if (k === 7 && !b.avoid.has(EAX) && !b.avoid.has(EBX)) { b.movRI(EBX, r.range(LAYOUT.dataLo, LAYOUT.dataHi - 256)); b.emit([0xd7]); }
  else if (k === 8) b.emit([0x8c, modrm(3, r.int(6), b.dst())]); // mov r, sreg
  else if (k === 9) b.emit([r.pick([0x06, 0x0e, 0x16, 0x1e])]); // push sreg
  else if (k === 10) b.emit([0x0f, 0x1f, modrm(0, 0, 0)]); // nop [eax]
  else b.emit([0x90]);
};

const io: Template = (b) => {
  const r = b.r;
  const k = r.int(10);
  if (b.avoid.has(EAX) || b.avoid.has(EDX)) return;
  switch (k) {
    case 0: b.emit([r.pick([0xe4, 0xe5]), r.int(256)]); return;
    case 1: b.emit([r.pick([0xe6, 0xe7]), r.int(256)]); return;
    case 2: b.emit([...(r.chance(0.3) ? [0x66] : []), r.pick([0xec, 0xed, 0xee, 0xef])]); return;
    case 3: b.emit([0x0f, 0x31]); return; // RDTSC
    case 4: if (!b.avoid.has(ECX) && !b.avoid.has(EBX)) b.emit([0x0f, 0xa2]); return; // CPUID
    case 5: b.emit([0x0f, 0xc7, modrm(3, 6, b.dst())]); return; // RDRAND
    case 6: { // MMIO read or write, any size
      const size = pickSize(b);
      const a = LAYOUT.mmio + r.int(LAYOUT.mmioSize - 4);
      b.emit([...opsz(size), r.pick([0x8a, 0x88]) + (size === 1 ? 0 : 1), modrm(0, b.dst8() & 3, 5), ...le32(a)]);
      return;
    }
    case 7: { // read-modify-write of MMIO: a read exit, then a write exit
      const a = LAYOUT.mmio + r.int(LAYOUT.mmioSize - 4);
      b.emit([0x01, modrm(0, b.any(), 5), ...le32(a)]);
      return;
    }
    case 8: { // INS / OUTS with a small count
      if (b.avoid.has(ECX) || b.avoid.has(EDI) || b.avoid.has(ESI)) return;
      b.emit([0xfc]);
      b.movRI(EDI, r.range(LAYOUT.dataLo, LAYOUT.dataHi - 64));
      b.movRI(ESI, r.range(LAYOUT.dataLo, LAYOUT.dataHi - 64));
      b.movRI(ECX, r.int(4));
      b.emit([...(r.chance(0.7) ? [0xf3] : []), r.pick([0x6c, 0x6d, 0x6e, 0x6f])]);
      return;
    }
    default: b.emit([0xcd, r.int(256)]); return; // INT n
  }
};

const outside: Template = (b) => {
  // Loads and stores outside RAM (all ones / ignored) and across the RAM end.
  const r = b.r;
  const a = r.pick([LAYOUT.ram - 2, LAYOUT.ram, LAYOUT.ram + 0x100, 0x80000000, 0xfffffffe, 0xfffffffc]);
  const size = pickSize(b);
  const reg = size === 1 ? b.dst8() : b.dst();
  b.emit([...opsz(size), r.pick([0x8a, 0x88]) + (size === 1 ? 0 : 1), modrm(0, reg, 5), ...le32(a)]);
};

const faults: Template = (b) => {
  const r = b.r;
  b.emit(r.pick([[0x0f, 0x0b], [0xd8, 0xc0], [0x0f, 0xff], [0x8d, 0xc0], [0xfe, 0xf8]]));
};

const hlt: Template = (b) => b.emit([0xf4]);

const enterLeave: Template = (b) => {
  const r = b.r;
  if (b.avoid.has(EBP)) return;
  if (r.chance(0.6)) b.movRI(EBP, r.range(LAYOUT.dataLo + 0x40, LAYOUT.dataHi - 8));
  b.emit([0xc8, ...le16(r.int(64)), r.int(4)]);
  b.emit([0xc9]);
};

const callRet: Template = (b) => {
  // call +2; jmp +1; ret  (call lands on the RET, which returns to the JMP)
  b.emit([0xe8, 2, 0, 0, 0]);
  b.emit([0xeb, 1]);
  b.emit([0xc3]);
};

const SIMPLE: Template[] = [alu, alu, alu, incdec, group3, imul, shifts, shifts, shiftDouble, bitops, bitscan, bcd, lea, movx, condMoves, exchanges, moves, moves, misc];
const ALL: Template[] = [...SIMPLE, ...SIMPLE, strings, strings, stack, stack, io, outside, faults, enterLeave, callRet, hlt];

/** Forward conditional / unconditional jump over a small block. */
function jumpOver(b: Builder): void {
  const r = b.r;
  const inner = new Builder(r);
  inner.avoid = b.avoid;
  inner.depth = b.depth + 1;
  const n = r.range(1, 3);
  for (let i = 0; i < n; i++) gen1(inner);
  const len = inner.out.length;
  const k = r.int(4);
  let head: Bytes;
  if (k === 0 && len <= 127) head = [0xeb, len];
  else if (k === 1 && !b.avoid.has(ECX) && len <= 127) head = [...(r.chance(0.3) ? [0x67] : []), 0xe3, len];
  else if (len <= 127 && r.chance(0.5)) head = [0x70 + r.int(16), len];
  else head = [0x0f, 0x80 + r.int(16), ...le32(len)];
  b.emit(head);
  const base = b.out.length;
  for (const [o, l] of inner.starts) b.starts.set(base + o, l);
  b.out.push(...inner.out);
}

/** A bounded loop: mov ecx, n; body (ECX untouched); loop/loopz/loopnz or dec+jnz. */
function loop(b: Builder): void {
  const r = b.r;
  if (b.avoid.has(ECX) || b.depth > 1) return;
  b.movRI(ECX, r.range(1, 6));
  const inner = new Builder(r);
  inner.avoid = new Set([...b.avoid, ECX]);
  inner.depth = b.depth + 1;
  const n = r.range(1, 4);
  for (let i = 0; i < n; i++) r.pick(SIMPLE)(inner);
  const base = b.out.length;
  for (const [o, l] of inner.starts) b.starts.set(base + o, l);
  b.out.push(...inner.out);
  const len = inner.out.length;
  if (len + 2 <= 128 && r.chance(0.7)) {
    b.emit([r.pick([0xe2, 0xe2, 0xe1, 0xe0]), (-(len + 2)) & 0xff]);
  } else {
    b.emit([0x49]); // dec ecx
    b.emit([0x0f, 0x85, ...le32(-(len + 1 + 6))]);
  }
}

export function gen1(b: Builder): void {
  const r = b.r;
  const x = r.int(100);
  if (x < 4 && b.depth < 2) jumpOver(b);
  else if (x < 7 && b.depth === 0) loop(b);
  else r.pick(ALL)(b);
}

/** Generates a program of `n` template draws (each one or a few instructions), ending with HLT. */
export function generate(r: Rand, n: number): Program {
  const b = new Builder(r);
  for (let i = 0; i < n; i++) gen1(b);
  b.emit([0xf4]);
  return { bytes: Uint8Array.from(b.out), starts: b.starts, end: b.out.length };
}

/** Builds a program from explicit template choices (for fast-check): [templateIndex, words]. */
export function generateFrom(choices: readonly { t: number; w: readonly number[] }[]): Program {
  const b = new Builder(new ListRand([]));
  for (const c of choices) {
    const r = new ListRand(c.w);
    (b as { r: Rand }).r = r;
    const all = TEMPLATE_COUNT;
    const t = c.t % all;
    if (t < ALL.length) ALL[t](b);
    else if (t === ALL.length) jumpOver(b);
    else loop(b);
  }
  b.emit([0xf4]);
  return { bytes: Uint8Array.from(b.out), starts: b.starts, end: b.out.length };
}
export const TEMPLATE_COUNT = ALL.length + 2;

export const REGS_ALL = [EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI];
