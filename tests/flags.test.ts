// EFLAGS: lazy status flags materialized by PUSHF / LAHF / the host, CF kept by
// INC/DEC, ADC/SBB carry chains, SAHF/LAHF, and the POPF writable mask.
//
// Expected values are either worked out by hand in the tables below or come
// from `ref()`, which applies the SDM's definitions directly: CF = carry or
// borrow out of the most significant bit (unsigned result out of range), OF =
// signed result out of range, AF = carry/borrow out of bit 3, ZF/SF/PF from the
// truncated result (PF: even number of 1 bits in the low byte).

import { describe, expect, it } from "vitest";
import { ExitReason } from "../host/engine/engine.js";
import { ENGINE_KINDS, resetEngine, load, rd32, Rng, type Engine } from "./helpers/machine.js";
import {
  EAX, ECX, EDX, EBX, ESI, EDI, ESP, CF, PF, AF, ZF, SF, OF, IF, DF, STATUS, HLT, hex,
} from "./helpers/x86.js";

const CODE = 0x1000;
const STACK = 0x8000;
const AC = 0x40000;

async function engine(kind: "wasm" | "ts"): Promise<Engine> {
  const e = await resetEngine(kind);
  e.setReg(ESP, STACK);
  return e;
}

/** Runs `code` + PUSHFD + HLT; returns [engine's EFLAGS, the pushed image]. */
function runThenPushf(e: Engine, code: number[]): [number, number] {
  load(e, CODE, [...code, 0x9c, HLT]);
  const x = e.run(100);
  expect(x.reason).toBe(ExitReason.Hlt);
  return [e.eflags, rd32(e, e.getReg(ESP))];
}

const parity = (v: number): number => {
  let c = 0;
  for (let i = 0; i < 8; i++) c += (v >> i) & 1;
  return c % 2 === 0 ? PF : 0;
};

/** SDM definitions of the six status flags for ADD/ADC (sub=false) and SUB/SBB/CMP (sub=true). */
function ref(sub: boolean, a: number, b: number, cin: number, bits: 8 | 16 | 32): { r: number; f: number } {
  const mod = 2 ** bits;
  const half = 2 ** (bits - 1);
  const sgn = (v: number) => (v >= half ? v - mod : v);
  const full = sub ? a - b - cin : a + b + cin;
  const sfull = sub ? sgn(a) - sgn(b) - cin : sgn(a) + sgn(b) + cin;
  const low = sub ? (a & 15) - (b & 15) - cin : (a & 15) + (b & 15) + cin;
  const r = ((full % mod) + mod) % mod;
  let f = 0;
  if (full < 0 || full >= mod) f |= CF;
  if (sfull < -half || sfull >= half) f |= OF;
  if (low < 0 || low > 15) f |= AF;
  if (r === 0) f |= ZF;
  if (r >= half) f |= SF;
  f |= parity(r & 0xff);
  return { r, f };
}

const EDGES32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 0x0f, 0x10];

describe.each(ENGINE_KINDS)("flags (%s)", (kind) => {
  // add/sub eax, ebx with the values and flags worked out by hand.
  it.each([
    ["add", 0x7fffffff, 1, 0x80000000, PF | AF | SF | OF],
    ["add", 0xffffffff, 1, 0, CF | PF | AF | ZF],
    ["add", 0x80000000, 0x80000000, 0, CF | PF | ZF | OF],
    ["add", 1, 2, 3, PF],
    ["add", 0x0f, 1, 0x10, AF],
    ["add", 0x12345678, 0x0fedcba8, 0x22222220, AF],
    ["sub", 0, 1, 0xffffffff, CF | PF | AF | SF],
    ["sub", 0x80000000, 1, 0x7fffffff, PF | AF | OF],
    ["sub", 5, 5, 0, PF | ZF],
    ["sub", 0x10, 1, 0x0f, PF | AF],
  ] as const)("%s %s, %s = %s materializes to the hand-computed flags through PUSHF", async (op, a, b, r, f) => {
    const e = await engine(kind);
    e.eflags = 0x2 | IF | DF; // non-status bits must survive
    e.setReg(EAX, a); e.setReg(EBX, b);
    const [fl, pushed] = runThenPushf(e, [op === "add" ? 0x01 : 0x29, 0xd8]);
    expect(e.getReg(EAX)).toBe(r);
    const want = 0x2 | IF | DF | f;
    expect(hex(pushed)).toBe(hex(want));
    expect(hex(fl)).toBe(hex(want));
  });

  it.each([
    ["add al, bl", [0x00, 0xd8], 0x123456ff, 0x01, 0x12345600, CF | PF | AF | ZF],
    ["add al, bl", [0x00, 0xd8], 0x0000007f, 0x01, 0x00000080, AF | SF | OF],
    ["add ax, bx", [0x66, 0x01, 0xd8], 0xabcdffff, 0x0001, 0xabcd0000, CF | PF | AF | ZF],
    ["add ax, bx", [0x66, 0x01, 0xd8], 0x00007fff, 0x0001, 0x00008000, PF | AF | SF | OF],
    ["sub ah, bl", [0x28, 0xdc], 0x00000000, 0x01, 0x0000ff00, CF | PF | AF | SF],
  ] as const)("8/16-bit %s: width-correct flags, upper bits kept", async (_n, code, a, b, r, f) => {
    const e = await engine(kind);
    e.setReg(EAX, a); e.setReg(EBX, b);
    const [fl, pushed] = runThenPushf(e, [...code]);
    expect(hex(e.getReg(EAX))).toBe(hex(r));
    expect(hex(pushed)).toBe(hex(0x2 | f));
    expect(hex(fl)).toBe(hex(0x2 | f));
  });

  it("ADD/SUB/ADC/SBB/CMP of every width agree with the SDM flag definitions (edge-value sweep)", async () => {
    const e = await engine(kind);
    const rng = new Rng(0x5eed);
    const vals = [...EDGES32];
    for (let i = 0; i < 16; i++) vals.push(rng.u32());
    // opcode (r/m, r form) for each operation; modrm C8 = op eax, ecx.
    const ops = [
      { name: "add", op: 0x01, sub: false, carry: false, writes: true },
      { name: "adc", op: 0x11, sub: false, carry: true, writes: true },
      { name: "sub", op: 0x29, sub: true, carry: false, writes: true },
      { name: "sbb", op: 0x19, sub: true, carry: true, writes: true },
      { name: "cmp", op: 0x39, sub: true, carry: false, writes: false },
    ];
    const failures: string[] = [];
    let checked = 0;
    for (const bits of [8, 16, 32] as const) {
      const mask = bits === 32 ? 0xffffffff : 2 ** bits - 1;
      for (const o of ops) {
        const opcode = bits === 8 ? o.op - 1 : o.op;
        const code = bits === 16 ? [0x66, opcode, 0xc8] : [opcode, 0xc8];
        load(e, CODE, [...code, HLT]);
        for (const av of vals) for (const bv of vals) for (const cin of o.carry ? [0, 1] : [0]) {
          const a = (av & mask) >>> 0, b = (bv & mask) >>> 0;
          e.eip = CODE;
          e.setReg(EAX, ((0x5a5a5a5a & ~mask) | a) >>> 0); // distinct upper bits that must survive
          e.setReg(ECX, b);
          // Stale status flags must not leak into the result; ADD/SUB/CMP ignore a stale CF.
          e.eflags = 0x2 | (STATUS & ~CF) | ((o.carry ? cin : 1) ? CF : 0);
          e.run(2);
          const want = ref(o.sub, a, b, cin, bits);
          const gotR = e.getReg(EAX);
          const wantR = o.writes ? ((0x5a5a5a5a & ~mask) | want.r) >>> 0 : ((0x5a5a5a5a & ~mask) | a) >>> 0;
          const gotF = e.eflags & STATUS;
          checked++;
          if (gotR !== wantR || gotF !== want.f) {
            failures.push(`${o.name}${bits} ${hex(a)},${hex(b)} cf=${cin}: result ${hex(gotR)} want ${hex(wantR)}, flags ${hex(gotF, 3)} want ${hex(want.f, 3)}`);
          }
        }
      }
    }
    expect(failures.slice(0, 20)).toEqual([]);
    expect(checked).toBe(3 * 7 * vals.length * vals.length);
  });

  it.each([
    ["inc eax", [0x40], 0xffffffff, 0, PF | AF | ZF],
    ["inc eax", [0x40], 0x7fffffff, 0x80000000, PF | AF | SF | OF],
    ["dec eax", [0x48], 0, 0xffffffff, PF | AF | SF],
    ["dec eax", [0x48], 0x80000000, 0x7fffffff, PF | AF | OF],
    ["inc al", [0xfe, 0xc0], 0x123456ff, 0x12345600, PF | AF | ZF],
    ["dec ax", [0x66, 0x48], 0xffff8000, 0xffff7fff, PF | AF | OF],
  ] as const)("%s keeps CF (0 and 1) and sets the others", async (_n, code, a, r, f) => {
    for (const cf of [0, CF]) {
      const e = await engine(kind);
      e.setReg(EAX, a);
      e.eflags = 0x2 | cf;
      const [fl, pushed] = runThenPushf(e, [...code]);
      expect(hex(e.getReg(EAX))).toBe(hex(r));
      expect(hex(pushed)).toBe(hex(0x2 | cf | f));
      expect(hex(fl)).toBe(hex(0x2 | cf | f));
    }
  });

  it("INC/DEC after an ADD/SUB keep the CF that the ADD/SUB produced", async () => {
    const e = await engine(kind);
    // add al, bl (0xff + 1: CF = 1); inc ecx (0 -> 1)
    e.setReg(EAX, 0xff); e.setReg(EBX, 1); e.setReg(ECX, 0);
    let [fl] = runThenPushf(e, [0x00, 0xd8, 0x41]);
    expect(hex(fl)).toBe(hex(0x2 | CF)); // 1: odd parity, nothing else
    // sub eax, ebx (0 - 1: CF = 1); dec ecx (5 -> 4)
    e.setReg(EAX, 0); e.setReg(EBX, 1); e.setReg(ECX, 5);
    [fl] = runThenPushf(e, [0x29, 0xd8, 0x49]);
    expect(hex(fl)).toBe(hex(0x2 | CF));
    // add eax, ebx (1 + 1: CF = 0); inc dword [0x2000] (0xffffffff -> 0)
    e.setReg(EAX, 1); e.setReg(EBX, 1);
    e.writeMem(0x2000, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    [fl] = runThenPushf(e, [0x01, 0xd8, 0xff, 0x05, 0x00, 0x20, 0x00, 0x00]);
    expect(rd32(e, 0x2000)).toBe(0);
    expect(hex(fl)).toBe(hex(0x2 | PF | AF | ZF));
  });

  it("ADC/SBB chains: 96-bit add and subtract carry through three words", async () => {
    const e = await engine(kind);
    const rng = new Rng(96);
    const M = (1n << 96n) - 1n;
    const words = (v: bigint) => [Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn), Number((v >> 64n) & 0xffffffffn)];
    const sgn = (v: bigint) => (v >> 95n ? v - (1n << 96n) : v);
    const cases: [bigint, bigint][] = [[M, 1n], [0n, 1n], [1n << 95n, 1n << 95n], [(1n << 95n) - 1n, 1n], [0xffffffffn, 1n], [0xffffffffffffffffn, 1n]];
    for (let i = 0; i < 40; i++) {
      const r = () => (BigInt(rng.u32()) << 64n) | (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
      cases.push([r(), r()]);
    }
    for (const sub of [false, true]) {
      // add/sub eax, ebx; adc/sbb ecx, esi; adc/sbb edx, edi
      const code = sub ? [0x29, 0xd8, 0x19, 0xf1, 0x19, 0xfa] : [0x01, 0xd8, 0x11, 0xf1, 0x11, 0xfa];
      for (const [a, b] of cases) {
        const [a0, a1, a2] = words(a), [b0, b1, b2] = words(b);
        e.setReg(EAX, a0); e.setReg(ECX, a1); e.setReg(EDX, a2);
        e.setReg(EBX, b0); e.setReg(ESI, b1); e.setReg(EDI, b2);
        e.eflags = 0x2 | CF; // the first ADD/SUB must ignore it
        runThenPushf(e, code);
        const full = sub ? a - b : a + b;
        const r = full & M;
        expect([e.getReg(EAX), e.getReg(ECX), e.getReg(EDX)], `${sub ? "sub" : "add"} ${a} ${b}`).toEqual(words(r));
        const sfull = sub ? sgn(a) - sgn(b) : sgn(a) + sgn(b);
        const f = e.eflags;
        expect(f & CF).toBe(full < 0n || full > M ? CF : 0);
        expect(f & OF).toBe(sfull < -(1n << 95n) || sfull >= 1n << 95n ? OF : 0);
        expect(f & SF).toBe(r >> 95n ? SF : 0);
        expect(f & ZF).toBe(r >> 64n === 0n ? ZF : 0); // ZF reflects the last word only
      }
    }
  });

  it.each([
    ["adc al, bl", [0x10, 0xd8], 0xff, 0xff, 0xff, CF | PF | AF | SF],
    ["adc al, bl", [0x10, 0xd8], 0x7f, 0x00, 0x80, AF | SF | OF],
    ["sbb al, bl", [0x18, 0xd8], 0x00, 0xff, 0x00, CF | PF | AF | ZF],
    ["sbb al, bl", [0x18, 0xd8], 0x80, 0x00, 0x7f, AF | OF],
    ["adc eax, ebx", [0x11, 0xd8], 0xffffffff, 0, 0, CF | PF | AF | ZF],
    ["sbb eax, ebx", [0x19, 0xd8], 0, 0xffffffff, 0, CF | PF | AF | ZF],
  ] as const)("%s with carry-in 1: hand-computed edge", async (_n, code, a, b, r, f) => {
    const e = await engine(kind);
    e.setReg(EAX, a); e.setReg(EBX, b); e.eflags = 0x2 | CF;
    const [fl] = runThenPushf(e, [...code]);
    expect(hex(e.getReg(EAX))).toBe(hex(r));
    expect(hex(fl)).toBe(hex(0x2 | f));
  });

  it("SAHF loads SF ZF AF PF CF from AH; bit 1 stays set, bits 3 and 5 clear, OF untouched", async () => {
    const e = await engine(kind);
    e.eflags = 0x2 | OF | DF;
    e.setReg(EAX, 0xff00);
    let [fl] = runThenPushf(e, [0x9e]);
    expect(hex(fl)).toBe(hex(0x2 | OF | DF | SF | ZF | AF | PF | CF));
    e.setReg(EAX, 0x2a00); // only bits 1, 3, 5 set in AH
    [fl] = runThenPushf(e, [0x9e]);
    expect(hex(fl)).toBe(hex(0x2 | OF | DF));
  });

  it("LAHF stores SF:ZF:0:AF:0:PF:1:CF into AH, materializing lazy flags", async () => {
    const e = await engine(kind);
    e.setReg(EAX, 0x123400ff); e.setReg(EBX, 1);
    load(e, CODE, [0x00, 0xd8, 0x9f, HLT]); // add al, bl; lahf
    e.run(10);
    expect(hex(e.getReg(EAX))).toBe(hex(0x12340000 | ((0x2 | CF | PF | AF | ZF) << 8)));
    e.setReg(EAX, 0x0000ff00); e.eflags = 0x2 | OF;
    load(e, CODE, [0x9e, 0x9f, HLT]); // sahf; lahf
    e.run(10);
    expect(hex(e.getReg(EAX))).toBe(hex(0x0000d700));
  });

  it("STC/CLC/CMC act on a lazily computed CF and leave the other lazy flags intact", async () => {
    const e = await engine(kind);
    e.setReg(EAX, 0x7fffffff); e.setReg(EBX, 1);
    let [fl] = runThenPushf(e, [0x01, 0xd8, 0xf5]); // add; cmc
    expect(hex(fl)).toBe(hex(0x2 | PF | AF | SF | OF | CF));
    e.setReg(EAX, 0xffffffff); e.setReg(EBX, 1);
    [fl] = runThenPushf(e, [0x01, 0xd8, 0xf8]); // add; clc
    expect(hex(fl)).toBe(hex(0x2 | PF | AF | ZF));
    e.setReg(EAX, 1); e.setReg(EBX, 2);
    [fl] = runThenPushf(e, [0x01, 0xd8, 0xf9]); // add; stc
    expect(hex(fl)).toBe(hex(0x2 | PF | CF));
  });

  it("AND/OR/XOR clear CF and OF left by an ADD; SF ZF PF follow the result (AF undefined)", async () => {
    const e = await engine(kind);
    const known = ~AF & 0xffffffff;
    for (const [op, a, b, r, f] of [
      [0x21, 0x80000000, 0x80000000, 0x80000000, SF | PF],
      [0x09, 0, 0, 0, ZF | PF],
      [0x31, 0x0f, 0x0e, 0x01, 0],
    ] as const) {
      e.setReg(EAX, 0x80000000); e.setReg(EBX, 0x80000000);
      load(e, CODE, [0x01, 0xd8, HLT]); // add eax, ebx: CF = OF = 1
      e.run(10);
      expect(e.eflags & (CF | OF)).toBe(CF | OF);
      e.setReg(EAX, a); e.setReg(EBX, b);
      const [fl] = runThenPushf(e, [op, 0xd8]);
      expect(hex(e.getReg(EAX))).toBe(hex(r));
      expect(hex(fl & known)).toBe(hex(0x2 | f));
    }
  });

  it("SHL by 1: CF = bit shifted out, OF = MSB(result) XOR CF (AF undefined)", async () => {
    const e = await engine(kind);
    e.setReg(EAX, 0xc0000000);
    const [fl] = runThenPushf(e, [0xd1, 0xe0]);
    expect(hex(e.getReg(EAX))).toBe(hex(0x80000000));
    expect(hex(fl & ~AF)).toBe(hex(0x2 | CF | SF | PF));
    e.setReg(EAX, 0x40000001);
    const [fl2] = runThenPushf(e, [0xd1, 0xe0]);
    expect(hex(e.getReg(EAX))).toBe(hex(0x80000002));
    expect(hex(fl2 & ~AF)).toBe(hex(0x2 | SF | OF));
  });

  it("SETcc after CMP follows the SDM condition definitions (signed and unsigned)", async () => {
    const e = await engine(kind);
    // cmp eax, ebx; then setcc into a byte of memory per condition code 0..15.
    const code = [0x39, 0xd8];
    for (let cc = 0; cc < 16; cc++) code.push(0x0f, 0x90 + cc, 0x05, ...[0x00 + cc, 0x30, 0, 0]);
    code.push(HLT);
    const vals = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x12345678, 0x80000001, 0xfffffffe];
    for (const a of vals) for (const b of vals) {
      e.setReg(EAX, a); e.setReg(EBX, b);
      load(e, CODE, code);
      e.run(100);
      const got = Array.from(e.readMem(0x3000, 16));
      const sa = a | 0, sb = b | 0;
      const diff = (a - b) >>> 0;
      const of = (sa - sb > 0x7fffffff || sa - sb < -0x80000000);
      const sf = diff >= 0x80000000;
      const pf = parity(diff & 0xff) !== 0;
      const conds = [of, a < b, a === b, a <= b, sf, pf, sa < sb, sa <= sb];
      const want: number[] = [];
      for (let cc = 0; cc < 16; cc++) want.push(conds[cc >> 1] !== ((cc & 1) === 1) ? 1 : 0);
      expect(got, `cmp ${hex(a)}, ${hex(b)}`).toEqual(want);
    }
  });

  it("POPFD: writable bits change, bit 1 stays set, bits 3, 5, 15 and reserved bits stay clear", async () => {
    const e = await engine(kind);
    // push 0xfffffeff (all ones but TF: no single-step trap to model); popfd; pushfd; pop eax
    load(e, CODE, [0x68, 0xff, 0xfe, 0xff, 0xff, 0x9d, 0x9c, 0x58, HLT]);
    e.run(100);
    const v = e.getReg(EAX);
    // CF PF AF ZF SF IF DF OF, IOPL (12-13), NT (14), AC (18), ID (21); not TF (cleared in
    // the source); RF (16) cleared, VM (17) VIF (19) VIP (20) unaffected (0), 22-31 reserved.
    const want = 0x2 | CF | PF | AF | ZF | SF | IF | DF | OF | 0x3000 | 0x4000 | AC | 0x200000;
    expect(hex(v)).toBe(hex(want));
    expect(hex(e.eflags)).toBe(hex(want));
    // And all zeros: only bit 1 remains.
    e.setReg(ESP, STACK);
    load(e, CODE, [0x6a, 0x00, 0x9d, 0x9c, 0x58, HLT]); // push 0; popfd; pushfd; pop eax
    e.run(100);
    expect(hex(e.getReg(EAX))).toBe(hex(0x2));
    expect(hex(e.eflags)).toBe(hex(0x2));
  });

  it("POPF (16-bit) changes only the low word and keeps AC and ID", async () => {
    const e = await engine(kind);
    e.eflags = 0x2 | AC | 0x200000;
    // push word 0xfeff; popf (o16); pushfd; pop eax
    load(e, CODE, [0x66, 0x68, 0xff, 0xfe, 0x66, 0x9d, 0x9c, 0x58, HLT]);
    e.run(100);
    const want = 0x2 | CF | PF | AF | ZF | SF | IF | DF | OF | 0x3000 | 0x4000 | AC | 0x200000;
    expect(hex(e.getReg(EAX))).toBe(hex(want));
    expect(e.getReg(ESP)).toBe(STACK);
  });

  it("PUSHF/POPF round-trip the lazy flags of a SUB exactly", async () => {
    const e = await engine(kind);
    e.setReg(EAX, 0x80000000); e.setReg(EBX, 1);
    // sub eax, ebx; pushfd; xor ecx, ecx (changes status); popfd; pushfd
    const [fl, pushed] = runThenPushf(e, [0x29, 0xd8, 0x9c, 0x31, 0xc9, 0x9d]);
    expect(hex(pushed)).toBe(hex(0x2 | PF | AF | OF));
    expect(hex(fl)).toBe(hex(0x2 | PF | AF | OF));
  });

  it("the host's EFLAGS setter applies the fixed bits too (bit 1 set, 3/5/15 clear)", async () => {
    const e = await engine(kind);
    e.eflags = 0x8028 | CF;
    expect(hex(e.eflags)).toBe(hex(0x2 | CF));
  });
});
