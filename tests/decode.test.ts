// Instruction decoding: every ModRM/SIB effective-address form (32- and
// 16-bit), segment defaults and overrides, prefix combinations and the 15-byte
// instruction length limit. Every expected address below is worked out by
// hand from SDM Vol. 2A Tables 2-1 (16-bit ModRM), 2-2 (32-bit ModRM) and
// 2-3 (SIB), with the register values listed in REGS / REGS16.

import { describe, expect, it } from "vitest";
import { ExitReason } from "../host/engine/engine.js";
import { ENGINE_KINDS, resetEngine, load, rd32, wr32, cpuState, type Engine } from "./helpers/machine.js";
import { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, FS, GS, SS, DS, HLT, NOP, bytesHex, hex } from "./helpers/x86.js";

const CODE = 0x1000;

const REGS = [0x00001000, 0x00000100, 0x00000020, 0x00010000, 0x00008000, 0x00200000, 0x03000000, 0x40000000];

async function engine(kind: "wasm" | "ts"): Promise<Engine> {
  return resetEngine(kind);
}

/** rel32 bytes of a CALL/JMP whose next instruction is at `next`, to `target`. */
const le32rel = (next: number, target: number): number[] => {
  const v = (target - next) >>> 0;
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
};

function setAll(e: Engine, regs: number[]): void {
  regs.forEach((v, i) => e.setReg(i, v));
}

/** Executes one instruction and returns the exit. */
function exec1(e: Engine, code: number[]): ReturnType<Engine["step"]> {
  load(e, CODE, code);
  return e.step();
}

// LEA EAX, m (8D /0) or LEA reg, m with the ModRM bytes written out by hand.
const LEA32: [string, number[], number][] = [
  ["[eax]", [0x00], 0x00001000],
  ["[ecx]", [0x01], 0x00000100],
  ["[edx]", [0x02], 0x00000020],
  ["[ebx]", [0x03], 0x00010000],
  ["[esi]", [0x06], 0x03000000],
  ["[edi]", [0x07], 0x40000000],
  ["[disp32] (mod 00 rm 101)", [0x05, 0x78, 0x56, 0x34, 0x12], 0x12345678],
  ["[eax+127] disp8", [0x40, 0x7f], 0x0000107f],
  ["[eax-128] disp8 sign-extended", [0x40, 0x80], 0x00000f80],
  ["[eax-1] disp8 sign-extended", [0x40, 0xff], 0x00000fff],
  ["[ebp+0] (mod 01 rm 101)", [0x45, 0x00], 0x00200000],
  ["[ebp-16]", [0x45, 0xf0], 0x001ffff0],
  ["[esi+disp8]", [0x46, 0x10], 0x03000010],
  ["[eax+0x80000000] disp32", [0x80, 0x00, 0x00, 0x00, 0x80], 0x80001000],
  ["[ebp-1] disp32", [0x85, 0xff, 0xff, 0xff, 0xff], 0x001fffff],
  ["[eax-0x1000] wraps to 0", [0x80, 0x00, 0xf0, 0xff, 0xff], 0x00000000],
  ["[edi+disp32]", [0x87, 0x00, 0x00, 0x00, 0xc0], 0x00000000],
  ["SIB [esp]", [0x04, 0x24], 0x00008000],
  ["SIB [eax], index 100 = none", [0x04, 0x20], 0x00001000],
  ["SIB [eax], no index: the scale is ignored", [0x04, 0xa0], 0x00001000],
  ["SIB [eax+ecx]", [0x04, 0x08], 0x00001100],
  ["SIB [eax+ecx*2]", [0x04, 0x48], 0x00001200],
  ["SIB [eax+ecx*4]", [0x04, 0x88], 0x00001400],
  ["SIB [eax+ecx*8]", [0x04, 0xc8], 0x00001800],
  ["SIB [ecx*1+disp32] (base 101, mod 00: no base)", [0x04, 0x0d, 0x00, 0x00, 0x01, 0x00], 0x00010100],
  ["SIB [ecx*8+disp32]", [0x04, 0xcd, 0x10, 0x00, 0x00, 0x00], 0x00000810],
  ["SIB [disp32] (no base, no index)", [0x04, 0x25, 0x44, 0x33, 0x22, 0x11], 0x11223344],
  ["SIB [ebp+ecx+disp8] (base 101, mod 01: EBP)", [0x44, 0x0d, 0x10], 0x00200110],
  ["SIB [ebp+ecx+disp32] (base 101, mod 10: EBP)", [0x84, 0x0d, 0x00, 0x01, 0x00, 0x00], 0x00200200],
  ["SIB [eax+ecx-128] disp8 sign-extended", [0x44, 0x08, 0x80], 0x00001080],
  ["SIB [esp-4]", [0x44, 0x24, 0xfc], 0x00007ffc],
  ["SIB [esi+edi]", [0x04, 0x3e], 0x43000000],
  ["SIB [edi+esi*8]", [0x04, 0xf7], 0x58000000],
  ["SIB [edi+edi*4] wraps mod 2^32", [0x04, 0xbf], 0x40000000],
  ["SIB [ebp*2+disp32]", [0x04, 0x6d, 0x01, 0x00, 0x00, 0x00], 0x00400001],
];

// LEA EAX, m with a 67 prefix: 16-bit addressing (Table 2-1), the 16-bit
// offset zero-extended into the 32-bit destination.
// BX = 0x1000, SI = 0x0200, DI = 0x0030, BP = 0x4000; upper halves are noise.
const REGS16 = [0xffffffff, 0x12340000, 0x0, 0xabcd1000, 0x00008000, 0x77774000, 0x55550200, 0x99990030];
const LEA16: [string, number[], number][] = [
  ["[bx+si]", [0x00], 0x1200],
  ["[bx+di]", [0x01], 0x1030],
  ["[bp+si]", [0x02], 0x4200],
  ["[bp+di]", [0x03], 0x4030],
  ["[si]", [0x04], 0x0200],
  ["[di]", [0x05], 0x0030],
  ["[disp16] (mod 00 rm 110)", [0x06, 0x34, 0x12], 0x1234],
  ["[bx]", [0x07], 0x1000],
  ["[bx+si+disp8]", [0x40, 0x05], 0x1205],
  ["[bx+si-128] disp8 sign-extended", [0x40, 0x80], 0x1180],
  ["[bp+0] (mod 01 rm 110: BP)", [0x46, 0x00], 0x4000],
  ["[bp-2]", [0x46, 0xfe], 0x3ffe],
  ["[di+disp16]", [0x85, 0x00, 0x01], 0x0130],
  ["[bp+0x8000]", [0x86, 0x00, 0x80], 0xc000],
  ["[bx+0xf000] wraps at 64 KiB", [0x87, 0x00, 0xf0], 0x0000],
  ["[bx-0x1001] wraps below 0", [0x87, 0xff, 0xef], 0xffff],
  ["[bp+di+disp16]", [0x83, 0x10, 0x00], 0x4040],
];

describe.each(ENGINE_KINDS)("decode (%s)", (kind) => {
  it.each(LEA32)("32-bit EA %s", async (_n, mrm, want) => {
    const e = await engine(kind);
    setAll(e, REGS);
    const x = exec1(e, [0x8d, ...mrm]);
    expect(x).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
    expect(hex(e.getReg(EAX))).toBe(hex(want));
    expect(e.eip).toBe(CODE + 1 + mrm.length);
    for (let r = 1; r < 8; r++) expect(e.getReg(r)).toBe(REGS[r]);
  });

  it("LEA's reg field picks the destination", async () => {
    const e = await engine(kind);
    setAll(e, REGS);
    exec1(e, [0x8d, 0x3c, 0x48]); // lea edi, [eax+ecx*2]
    expect(hex(e.getReg(EDI))).toBe(hex(0x1200));
    exec1(e, [0x8d, 0x64, 0x24, 0x08]); // lea esp, [esp+8]
    expect(hex(e.getReg(ESP))).toBe(hex(0x8008));
  });

  it("LEA with a register operand (mod 11) is #UD", async () => {
    const e = await engine(kind);
    setAll(e, REGS);
    expect(exec1(e, [0x8d, 0xc1])).toMatchObject({ reason: ExitReason.Fault, vector: 6, executed: 0 });
    expect(e.eip).toBe(CODE);
  });

  it.each(LEA16)("16-bit EA (67 prefix) %s", async (_n, mrm, want) => {
    const e = await engine(kind);
    setAll(e, REGS16);
    const x = exec1(e, [0x67, 0x8d, ...mrm]);
    expect(x).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
    expect(hex(e.getReg(EAX))).toBe(hex(want));
    expect(e.eip).toBe(CODE + 2 + mrm.length);
  });

  it("16-bit EA wrap: [bx+si] with BX = 0xffff, SI = 2 is 1", async () => {
    const e = await engine(kind);
    e.setReg(EBX, 0x0000ffff); e.setReg(ESI, 0x00000002);
    exec1(e, [0x67, 0x8d, 0x00]);
    expect(hex(e.getReg(EAX))).toBe(hex(1));
  });

  it("LEA with a 16-bit operand size writes only AX", async () => {
    const e = await engine(kind);
    setAll(e, REGS);
    e.setReg(EAX, 0xdead0000);
    exec1(e, [0x66, 0x8d, 0x04, 0x3e]); // lea ax, [esi+edi] = 0x43000000 -> ax = 0x0000
    expect(hex(e.getReg(EAX))).toBe(hex(0xdead0000));
    exec1(e, [0x66, 0x8d, 0x44, 0x08, 0x34]); // lea ax, [eax+ecx+0x34] = 0xdead0134
    expect(hex(e.getReg(EAX))).toBe(hex(0xdead0134));
  });

  it("memory operands read through the decoded address (32-bit and 16-bit forms)", async () => {
    const e = await engine(kind);
    wr32(e, 0x2468, 0x11111111);
    wr32(e, 0x3000 + 0x20 * 4 - 8, 0x22222222);
    wr32(e, 0x1230, 0x33333333);
    e.setReg(EBX, 0x2400); e.setReg(EDX, 0x20); e.setReg(ESI, 0x1200);
    exec1(e, [0x8b, 0x43, 0x68]); // mov eax, [ebx+0x68]
    expect(hex(e.getReg(EAX))).toBe(hex(0x11111111));
    exec1(e, [0x8b, 0x0c, 0x95, 0xf8, 0x2f, 0x00, 0x00]); // mov ecx, [edx*4+0x2ff8]
    expect(hex(e.getReg(ECX))).toBe(hex(0x22222222));
    wr32(e, 0x1200, 0x44444444);
    exec1(e, [0x67, 0x8b, 0x2a]); // mov ebp, [bp+si]: BP = 0 here, SI = 0x1200
    expect(hex(e.getReg(EBP))).toBe(hex(0x44444444));
    exec1(e, [0x67, 0x8b, 0x44, 0x30]); // mov eax, [si+0x30]
    expect(hex(e.getReg(EAX))).toBe(hex(0x33333333));
  });

  describe("segments", () => {
    it("an FS override adds the FS base (mov eax, fs:[disp32] / fs:[ebx])", async () => {
      const e = await engine(kind);
      e.setSegBase(FS, 0x20000);
      wr32(e, 0x1234, 0x0badbad0);
      wr32(e, 0x21234, 0xaabbccdd);
      exec1(e, [0x64, 0x8b, 0x05, 0x34, 0x12, 0x00, 0x00]);
      expect(hex(e.getReg(EAX))).toBe(hex(0xaabbccdd));
      e.setReg(EBX, 0x1230);
      exec1(e, [0x64, 0x8b, 0x4b, 0x04]); // mov ecx, fs:[ebx+4]
      expect(hex(e.getReg(ECX))).toBe(hex(0xaabbccdd));
      exec1(e, [0x8b, 0x4b, 0x04]); // no override: DS, base 0
      expect(hex(e.getReg(ECX))).toBe(hex(0x0badbad0));
    });

    it("a GS base plus offset wraps modulo 2^32", async () => {
      const e = await engine(kind);
      e.setSegBase(GS, 0xfffff000);
      wr32(e, 0x2000, 0x600df00d);
      exec1(e, [0x65, 0xa1, 0x00, 0x30, 0x00, 0x00]); // mov eax, gs:[0x3000]
      expect(hex(e.getReg(EAX))).toBe(hex(0x600df00d));
      e.setReg(EAX, 0x5a5a5a5a);
      exec1(e, [0x65, 0xa3, 0x04, 0x30, 0x00, 0x00]); // mov gs:[0x3004], eax
      expect(hex(rd32(e, 0x2004))).toBe(hex(0x5a5a5a5a));
    });

    it("an FS override applies to 16-bit addressing, and LEA ignores it", async () => {
      const e = await engine(kind);
      e.setSegBase(FS, 0x30000);
      wr32(e, 0x30100, 0x01020304);
      e.setReg(EBX, 0xffff0100);
      exec1(e, [0x64, 0x67, 0x8b, 0x07]); // mov eax, fs:[bx]
      expect(hex(e.getReg(EAX))).toBe(hex(0x01020304));
      exec1(e, [0x67, 0x64, 0x8b, 0x0f]); // same, prefixes in the other order: mov ecx, fs:[bx]
      expect(hex(e.getReg(ECX))).toBe(hex(0x01020304));
      exec1(e, [0x64, 0x8d, 0x43, 0x10]); // lea eax, fs:[ebx+0x10]: just the offset
      expect(hex(e.getReg(EAX))).toBe(hex(0xffff0110));
    });

    it("a segment override changes the string source (DS:ESI) but never ES:EDI", async () => {
      const e = await engine(kind);
      e.setSegBase(FS, 0x40000);
      e.writeMem(0x40010, Uint8Array.of(0xf5));
      e.writeMem(0x00010, Uint8Array.of(0xd5));
      e.setReg(ESI, 0x10); e.setReg(EDI, 0x5000);
      exec1(e, [0x64, 0xa4]); // movsb with FS source
      expect(e.readMem(0x5000, 1)[0]).toBe(0xf5);
      expect(e.readMem(0x45000, 1)[0]).toBe(0);
      e.setReg(EDI, 0x10);
      e.setReg(EAX, 0xd5);
      exec1(e, [0x64, 0xae]); // scasb compares AL with ES:[EDI]; the override cannot move it
      expect(e.eflags & 0x40).toBe(0x40);
    });

    // These need a non-zero SS or DS base, which the Engine API lets the host set.
    it("EBP/ESP-based forms default to SS, the others to DS (SDM Vol. 1 3.7.5)", async () => {
      const e = await engine(kind);
      e.setSegBase(SS, 0x30000);
      e.setSegBase(DS, 0x10000);
      const put = (lin: number, v: number) => wr32(e, lin, v);
      // Mark every candidate location: value = linear address, so the read tells where it went.
      for (const off of [0x100, 0x104, 0x200, 0x300, 0x400, 0x1100]) {
        put(0x10000 + off, 0x10000 + off);
        put(0x30000 + off, 0x30000 + off);
      }
      e.setReg(EBP, 0x100); e.setReg(EBX, 0x200); e.setReg(ESP, 0x300); e.setReg(ESI, 0x1000);
      const cases: [string, number[], number][] = [
        ["[ebp+4]", [0x8b, 0x45, 0x04], 0x30104],
        ["[ebx]", [0x8b, 0x03], 0x10200],
        ["[esp]", [0x8b, 0x04, 0x24], 0x30300],
        ["SIB base EBP (mod 01)", [0x8b, 0x44, 0x25, 0x00], 0x30100],
        ["SIB base 101 mod 00 (no base) is DS", [0x8b, 0x04, 0x25, 0x00, 0x04, 0x00, 0x00], 0x10400],
        ["SIB index EBP, base EBX is DS", [0x8b, 0x04, 0x2b], 0x10300],
        ["[ebp] with a DS override", [0x3e, 0x8b, 0x45, 0x00], 0x10100],
        ["[ebx] with an SS override", [0x36, 0x8b, 0x03], 0x30200],
        ["16-bit [bp+si]", [0x67, 0x8b, 0x02], 0x31100],
        ["16-bit [bp+disp8]", [0x67, 0x8b, 0x46, 0x04], 0x30104],
        ["16-bit [disp16] is DS", [0x67, 0x8b, 0x06, 0x00, 0x02], 0x10200],
        ["16-bit [bx+si] is DS", [0x67, 0x8b, 0x00], 0x11200],
      ];
      put(0x11200, 0x11200); put(0x31100, 0x31100); put(0x30100, 0x30100);
      const bad: string[] = [];
      for (const [n, code, want] of cases) {
        e.setReg(EAX, 0);
        exec1(e, code);
        if (e.getReg(EAX) !== want) bad.push(`${n}: got ${hex(e.getReg(EAX))} want ${hex(want)}`);
      }
      expect(bad).toEqual([]);
    });
  });

  describe("prefixes", () => {
    it("66 and 67 together, in either order: mov ax, [bx]", async () => {
      for (const code of [[0x66, 0x67, 0x8b, 0x07], [0x67, 0x66, 0x8b, 0x07]]) {
        const e = await engine(kind);
        wr32(e, 0x0234, 0xcafe1234);
        e.setReg(EAX, 0x99999999); e.setReg(EBX, 0x77770234);
        exec1(e, code);
        expect(hex(e.getReg(EAX))).toBe(hex(0x99991234));
        expect(e.eip).toBe(CODE + 4);
      }
    });

    it("a redundant 66 66 still gives a 16-bit immediate (length 5)", async () => {
      const e = await engine(kind);
      e.setReg(EAX, 0xffffffff);
      load(e, CODE, [0x66, 0x66, 0xb8, 0x34, 0x12, 0x40]); // mov ax, 0x1234; inc eax
      e.run(2);
      expect(hex(e.getReg(EAX))).toBe(hex(0xffff1235));
      expect(e.eip).toBe(CODE + 6);
    });

    it("66 selects imm16 and sign-extends imm8 to 16 bits", async () => {
      const e = await engine(kind);
      e.setReg(EAX, 0x12340001);
      load(e, CODE, [0x66, 0x81, 0xc0, 0x00, 0x10, 0x66, 0x83, 0xc0, 0xff, HLT]); // add ax, 0x1000; add ax, -1
      e.run(10);
      expect(hex(e.getReg(EAX))).toBe(hex(0x12341000));
      expect(e.eip).toBe(CODE + 10);
    });

    it("67 with moffs: a 16-bit offset; with 66 and 64: mov ax, fs:[moffs16]", async () => {
      const e = await engine(kind);
      e.setSegBase(FS, 0x20000);
      e.writeMem(0x1234, Uint8Array.of(0x42));
      e.writeMem(0x21234, Uint8Array.of(0x78, 0x56));
      load(e, CODE, [0x67, 0xa0, 0x34, 0x12, 0x64, 0x66, 0x67, 0xa1, 0x34, 0x12, HLT]);
      e.setReg(EAX, 0xaaaaaaaa);
      e.step();
      expect(hex(e.getReg(EAX))).toBe(hex(0xaaaaaa42));
      expect(e.eip).toBe(CODE + 4);
      e.step();
      expect(hex(e.getReg(EAX))).toBe(hex(0xaaaa5678));
      expect(e.eip).toBe(CODE + 10);
    });

    it("67 on a string instruction uses SI/DI and keeps the upper halves", async () => {
      const e = await engine(kind);
      e.writeMem(0x0010, Uint8Array.of(0x99));
      e.setReg(ESI, 0xffff0010); e.setReg(EDI, 0xeeee0020);
      exec1(e, [0x67, 0xa4]); // movsb (16-bit addresses)
      expect(e.readMem(0x0020, 1)[0]).toBe(0x99);
      expect(hex(e.getReg(ESI))).toBe(hex(0xffff0011));
      expect(hex(e.getReg(EDI))).toBe(hex(0xeeee0021));
    });

    it("67 on JECXZ / LOOP tests CX, not ECX", async () => {
      const e = await engine(kind);
      e.setReg(ECX, 0x00010000);
      load(e, CODE, [0x67, 0xe3, 0x10]); // jcxz +0x10: CX = 0, taken
      e.step();
      expect(e.eip).toBe(CODE + 3 + 0x10);
      e.setReg(ECX, 0x00010001);
      load(e, CODE, [0x67, 0xe2, 0x10]); // loop with CX: CX 1 -> 0, not taken; upper ECX kept
      e.step();
      expect(e.eip).toBe(CODE + 3);
      expect(hex(e.getReg(ECX))).toBe(hex(0x00010000));
    });

    it("F3 90 is PAUSE: nothing changes but EIP", async () => {
      const e = await engine(kind);
      setAll(e, REGS);
      const before = cpuState(e);
      expect(exec1(e, [0xf3, 0x90])).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
      expect(cpuState(e).regs).toEqual(before.regs);
      expect(e.eip).toBe(CODE + 2);
    });

    it("segment overrides with zero bases (2E 36 3E 26) change nothing", async () => {
      const e = await engine(kind);
      wr32(e, 0x2000, 0x31415926);
      e.setReg(EBX, 0x2000);
      for (const p of [0x2e, 0x36, 0x3e, 0x26]) {
        e.setReg(EAX, 0);
        exec1(e, [p, 0x8b, 0x03]);
        expect(hex(e.getReg(EAX))).toBe(hex(0x31415926));
      }
    });

    it("LOCK on a read-modify-write memory instruction works (lock add [ebx], eax)", async () => {
      const e = await engine(kind);
      wr32(e, 0x2000, 41);
      e.setReg(EBX, 0x2000); e.setReg(EAX, 1);
      expect(exec1(e, [0xf0, 0x01, 0x03])).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
      expect(rd32(e, 0x2000)).toBe(42);
    });

    it.each([
      ["lock mov [ebx], eax", [0xf0, 0x89, 0x03]],
      ["lock add eax, eax (register destination)", [0xf0, 0x01, 0xc0]],
      ["lock nop", [0xf0, 0x90]],
    ])("LOCK where the SDM forbids it is #UD: %s", async (_n, code) => {
      const e = await engine(kind);
      e.setReg(EBX, 0x2000); e.setReg(EAX, 5);
      const x = exec1(e, code);
      expect(x).toMatchObject({ reason: ExitReason.Fault, vector: 6, executed: 0 });
      expect(e.eip).toBe(CODE);
      expect(rd32(e, 0x2000)).toBe(0);
      expect(e.getReg(EAX)).toBe(5);
    });
  });

  describe("the 15-byte instruction length limit (SDM Vol. 3A 6.15, #GP(0))", () => {
    it("14 redundant prefixes + NOP (15 bytes) execute", async () => {
      const e = await engine(kind);
      const x = exec1(e, [...new Array(14).fill(0x3e), NOP]);
      expect(x).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
      expect(e.eip).toBe(CODE + 15);
    });

    it("15 redundant prefixes + NOP (16 bytes) is #GP(0), nothing retired", async () => {
      const e = await engine(kind);
      const x = exec1(e, [...new Array(15).fill(0x3e), NOP]);
      expect(x).toMatchObject({ reason: ExitReason.Fault, vector: 13, errorCode: 0, executed: 0 });
      expect(e.eip).toBe(CODE);
      expect(e.icount).toBe(0n);
    });

    // add dword [esp+disp32], imm32 is 11 bytes: 81 84 24 disp32 imm32.
    const addLong = [0x81, 0x84, 0x24, 0x00, 0x01, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12];

    it("4 prefixes + an 11-byte instruction (15 bytes) execute", async () => {
      const e = await engine(kind);
      e.setReg(ESP, 0x3000);
      const code = [0x3e, 0x3e, 0x3e, 0x3e, ...addLong];
      expect(code.length).toBe(15);
      const x = exec1(e, code);
      expect(x).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
      expect(hex(rd32(e, 0x3100))).toBe(hex(0x12345678));
      expect(e.eip).toBe(CODE + 15);
    });

    it.each([
      ["5 x 3E + add [esp+disp32], imm32", [0x3e, 0x3e, 0x3e, 0x3e, 0x3e, ...addLong]],
      ["6 x 3E + mov dword [disp32], imm32", [0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0xc7, 0x05, 0x00, 0x31, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12]],
      ["11 x 3E + mov eax, imm32", [...new Array(11).fill(0x3e), 0xb8, 0x78, 0x56, 0x34, 0x12]],
    ])("a 16-byte instruction (%s) is #GP(0) and changes nothing", async (_n, code) => {
      const e = await engine(kind);
      e.setReg(ESP, 0x3000);
      expect(code.length, bytesHex(code)).toBe(16);
      const before = cpuState(e);
      const x = exec1(e, code);
      expect(x).toMatchObject({ reason: ExitReason.Fault, vector: 13, errorCode: 0, executed: 0 });
      expect(e.eip).toBe(CODE);
      expect(cpuState(e).regs).toEqual(before.regs);
      expect(rd32(e, 0x3100)).toBe(0);
    });
  });

  describe("code that changes is decoded afresh", () => {
    it("the host rewriting code with writeMem between runs", async () => {
      const e = await engine(kind);
      load(e, CODE, [0xb8, 1, 0, 0, 0, HLT]); // mov eax, 1
      expect(e.run(10).reason).toBe(ExitReason.Hlt);
      expect(e.getReg(EAX)).toBe(1);
      load(e, CODE, [0xb8, 2, 0, 0, 0, HLT]); // mov eax, 2 at the same address
      expect(e.run(10).reason).toBe(ExitReason.Hlt);
      expect(e.getReg(EAX)).toBe(2);
      load(e, CODE, [0x31, 0xc0, 0x40, HLT]); // xor eax, eax; inc eax: different lengths
      expect(e.run(10)).toMatchObject({ reason: ExitReason.Hlt, executed: 3 });
      expect(e.getReg(EAX)).toBe(1);
    });

    // SDM Vol. 3A 11.6: a store to a code location the processor has fetched
    // or cached is detected, and the modified instruction executes as stored.
    it("a guest store into the next instruction's immediate", async () => {
      const e = await engine(kind);
      // mov byte [CODE+8], 0x42; mov al, 0x00 (its immediate is at CODE+8); hlt
      load(e, CODE, [0xc6, 0x05, 0x08, 0x10, 0x00, 0x00, 0x42, 0xb0, 0x00, HLT]);
      expect(e.run(10).reason).toBe(ExitReason.Hlt);
      expect(hex(e.getReg(EAX) & 0xff)).toBe(hex(0x42, 8));
    });

    it("a loop that increments the immediate of an instruction it has already executed", async () => {
      const e = await engine(kind);
      // L: mov eax, 0x10; inc byte [L+1]; dec ecx; jnz L; hlt
      load(e, CODE, [0xb8, 0x10, 0, 0, 0, 0xfe, 0x05, 0x01, 0x10, 0x00, 0x00, 0x49, 0x75, 0xf2, HLT]);
      e.setReg(ECX, 3);
      for (const budget of [1000, 1]) {
        e.eip = CODE; e.setReg(ECX, 3); e.writeMem(CODE + 1, Uint8Array.of(0x10));
        let x = e.run(budget);
        while (x.reason === ExitReason.Budget) x = e.run(budget);
        expect(x.reason).toBe(ExitReason.Hlt);
        expect(hex(e.getReg(EAX))).toBe(hex(0x12));
        expect(e.readMem(CODE + 1, 1)[0]).toBe(0x13);
      }
    });

    it("REP MOVSB copying new code over code that already ran, then jumping to it", async () => {
      const e = await engine(kind);
      const target = 0x1800;
      // At target: mov eax, 0x11111111; ret. Run it once via call.
      e.writeMem(target, Uint8Array.of(0xb8, 0x11, 0x11, 0x11, 0x11, 0xc3));
      e.writeMem(0x1900, Uint8Array.of(0xb8, 0x22, 0x22, 0x22, 0x22, 0xc3)); // the replacement
      e.setReg(ESP, 0x7000);
      load(e, CODE, [
        0xe8, ...le32rel(CODE + 5, target), // call target
        0xbe, 0x00, 0x19, 0x00, 0x00, // mov esi, 0x1900
        0xbf, 0x00, 0x18, 0x00, 0x00, // mov edi, 0x1800
        0xb9, 0x06, 0x00, 0x00, 0x00, // mov ecx, 6
        0xfc, 0xf3, 0xa4, // cld; rep movsb
        0xe8, ...le32rel(CODE + 28, target), // call target
        HLT,
      ]);
      expect(e.run(1000).reason).toBe(ExitReason.Hlt);
      expect(hex(e.getReg(EAX))).toBe(hex(0x22222222));
    });
  });

  it("keeps the unused registers alone (sanity of the harness)", async () => {
    const e = await engine(kind);
    setAll(e, REGS);
    exec1(e, [0x8d, 0x04, 0x08]);
    expect([ECX, EDX, EBX, ESP, EBP, ESI, EDI].map((r) => e.getReg(r))).toEqual(REGS.slice(1));
  });
});
