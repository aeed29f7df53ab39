// The instruction-counting rules of the VM clock, each in its own test, on
// both engines. Expected counts follow the rules stated in host/engine/engine.ts
// and assembly/cpu.ts: retired instructions count, REP iterations count one
// each, faulting or aborted (input) instructions do not count.

import { describe, expect, it } from "vitest";
import { ExitReason } from "../host/engine/engine.js";
import { ENGINE_KINDS, freshEngine, load, cpuState, rd32, wr32, type Engine } from "./helpers/machine.js";
import { EAX, ECX, EDX, EBX, ESI, EDI, CF, DF, ZF, movRI, NOP, HLT, le32 } from "./helpers/x86.js";

const CODE = 0x1000;
const SRC = 0x4000;
const DST = 0x5000;
const STACK = 0x8000;
const MMIO = 0xd0000000;

async function engine(kind: "wasm" | "ts"): Promise<Engine> {
  const e = await freshEngine(kind);
  e.setReg(4, STACK);
  return e;
}

describe.each(ENGINE_KINDS)("icount rules (%s)", (kind) => {
  it("is 64-bit: the low word carries into the high word", async () => {
    const e = await engine(kind);
    load(e, CODE, new Array(16).fill(NOP));
    e.setIcount(0xfffffffdn);
    expect(e.icount).toBe(0xfffffffdn);
    const x = e.run(5);
    expect(x).toMatchObject({ reason: ExitReason.Budget, executed: 5 });
    expect(e.icount).toBe(0x100000002n);

    // A carry out of a high word that is already non-zero, and one step at a time.
    e.eip = CODE;
    e.setIcount(0x7_ffffffffn);
    expect(e.step().executed).toBe(1);
    expect(e.icount).toBe(0x8_00000000n);
    e.setIcount(0xffff_fffe_ffffffffn);
    e.run(3);
    expect(e.icount).toBe(0xffff_ffff_00000002n);
  });

  it("counts each REP iteration as one instruction", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf3, 0xa4, HLT]); // rep movsb; hlt
    e.setReg(ECX, 10); e.setReg(ESI, SRC); e.setReg(EDI, DST);
    e.writeMem(SRC, Uint8Array.from({ length: 10 }, (_, i) => i + 1));
    const x = e.run(1000);
    expect(x).toMatchObject({ reason: ExitReason.Hlt, executed: 11 });
    expect(e.icount).toBe(11n);
    expect(e.getReg(ECX)).toBe(0);
    expect(e.getReg(ESI)).toBe(SRC + 10);
    expect(e.getReg(EDI)).toBe(DST + 10);
    expect(Array.from(e.readMem(DST, 11))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0]);
  });

  it("counts a REP with ECX = 0 once and changes nothing else", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf3, 0xa5, HLT]); // rep movsd; hlt
    e.setReg(ECX, 0); e.setReg(ESI, SRC); e.setReg(EDI, DST);
    wr32(e, SRC, 0x12345678);
    expect(e.run(1)).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
    expect(e.icount).toBe(1n);
    expect(e.eip).toBe(CODE + 2);
    expect(e.getReg(ESI)).toBe(SRC);
    expect(e.getReg(EDI)).toBe(DST);
    expect(rd32(e, DST)).toBe(0);
  });

  it("stops a REP between iterations when the budget runs out, EIP on the REP", async () => {
    const e = await engine(kind);
    load(e, CODE, [NOP, 0xf3, 0xa4, HLT]); // nop; rep movsb; hlt
    e.setReg(ECX, 10); e.setReg(ESI, SRC); e.setReg(EDI, DST);
    e.writeMem(SRC, Uint8Array.from({ length: 10 }, (_, i) => 0xa0 + i));
    e.step(); // the NOP
    const x = e.run(3);
    expect(x).toMatchObject({ reason: ExitReason.Budget, executed: 3 });
    expect(e.icount).toBe(4n);
    expect(e.eip).toBe(CODE + 1);
    expect(e.getReg(ECX)).toBe(7);
    expect(e.getReg(ESI)).toBe(SRC + 3);
    expect(e.getReg(EDI)).toBe(DST + 3);
    expect(Array.from(e.readMem(DST, 4))).toEqual([0xa0, 0xa1, 0xa2, 0]);

    const y = e.run(1);
    expect(y.executed).toBe(1);
    expect(e.getReg(ECX)).toBe(6);
    expect(e.eip).toBe(CODE + 1);

    // The rest: 6 iterations, then the HLT.
    expect(e.run(1000)).toMatchObject({ reason: ExitReason.Hlt, executed: 7 });
    expect(e.icount).toBe(12n);
    expect(e.eip).toBe(CODE + 4);
    expect(Array.from(e.readMem(DST, 10))).toEqual(Array.from({ length: 10 }, (_, i) => 0xa0 + i));
  });

  it("stops a descending (DF = 1) REP STOSD mid-way with EDI moved down", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf3, 0xab, HLT]); // rep stosd
    e.eflags = 0x2 | DF;
    e.setReg(EAX, 0xdeadbeef); e.setReg(ECX, 5); e.setReg(EDI, DST + 16);
    expect(e.run(2).executed).toBe(2);
    expect(e.getReg(ECX)).toBe(3);
    expect(e.getReg(EDI)).toBe(DST + 8);
    expect(e.eip).toBe(CODE);
    expect(rd32(e, DST + 16)).toBe(0xdeadbeef);
    expect(rd32(e, DST + 12)).toBe(0xdeadbeef);
    expect(rd32(e, DST + 8)).toBe(0);
  });

  it("counts the iterations a REPE CMPSB did before it stopped on a mismatch", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf3, 0xa6, HLT]); // repe cmpsb
    e.writeMem(SRC, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    e.writeMem(DST, Uint8Array.of(1, 2, 3, 9, 5, 6, 7, 8, 9, 10));
    e.setReg(ECX, 10); e.setReg(ESI, SRC); e.setReg(EDI, DST);
    const x = e.run(1000);
    expect(x).toMatchObject({ reason: ExitReason.Hlt, executed: 5 }); // 4 iterations + HLT
    expect(e.getReg(ECX)).toBe(6);
    expect(e.getReg(ESI)).toBe(SRC + 4);
    expect(e.getReg(EDI)).toBe(DST + 4);
    expect(e.eflags & ZF).toBe(0);
    expect(e.eflags & CF).toBe(CF); // 4 - 9 borrows
  });

  it("counts the iterations a REPNE SCASB did before it found the byte", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf2, 0xae, HLT]); // repne scasb
    e.writeMem(DST, Uint8Array.of(7, 8, 0x42, 9));
    e.setReg(EAX, 0x42); e.setReg(ECX, 100); e.setReg(EDI, DST);
    expect(e.step()).toMatchObject({ reason: ExitReason.Budget, executed: 3 });
    expect(e.icount).toBe(3n);
    expect(e.getReg(ECX)).toBe(97);
    expect(e.getReg(EDI)).toBe(DST + 3);
    expect(e.eflags & ZF).toBe(ZF);
    expect(e.eip).toBe(CODE + 2);
  });

  it("does not count a faulting DIV: #DE with EIP on it and registers unchanged", async () => {
    const e = await engine(kind);
    load(e, CODE, [NOP, NOP, 0xf7, 0xf3, HLT]); // nop; nop; div ebx
    e.setReg(EAX, 1234); e.setReg(EDX, 5); e.setReg(EBX, 0);
    e.eflags = 0x2 | CF | ZF;
    const before = cpuState(e);
    const x = e.run(10);
    expect(x).toMatchObject({ reason: ExitReason.Fault, vector: 0, executed: 2 });
    const after = cpuState(e);
    expect(after.eip).toBe(CODE + 2);
    expect(after.icount).toBe(2n);
    expect(after.regs).toEqual(before.regs);
    expect(after.eflags).toBe(before.eflags);
    // Running again faults again and still counts nothing.
    expect(e.run(10)).toMatchObject({ reason: ExitReason.Fault, vector: 0, executed: 0 });
    expect(e.icount).toBe(2n);
  });

  it("does not count a DIV whose quotient overflows (#DE)", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf6, 0xf3]); // div bl: AX = 0x1000 / 2 = 0x800 does not fit in AL
    e.setReg(EAX, 0x1000); e.setReg(EBX, 2);
    expect(e.step()).toMatchObject({ reason: ExitReason.Fault, vector: 0, executed: 0 });
    expect(e.icount).toBe(0n);
    expect(e.getReg(EAX)).toBe(0x1000);
    expect(e.eip).toBe(CODE);
  });

  it.each([
    ["UD2", [0x0f, 0x0b]],
    ["x87 FADD st, st(0)", [0xd8, 0xc0]],
  ])("raises #UD at an unimplemented opcode (%s), never skipping it", async (_n, bytes) => {
    const e = await engine(kind);
    load(e, CODE, [NOP, ...bytes, NOP, HLT]);
    const before = cpuState(e);
    const x = e.run(100);
    expect(x).toMatchObject({ reason: ExitReason.Fault, vector: 6, executed: 1 });
    expect(e.eip).toBe(CODE + 1);
    expect(e.icount).toBe(1n);
    expect(cpuState(e).regs).toEqual(before.regs);
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Fault, vector: 6, executed: 0 });
    expect(e.eip).toBe(CODE + 1);
  });

  it("counts IN once, when the answered instruction completes", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xec, HLT]); // in al, dx
    e.setReg(EDX, 0x3f8); e.setReg(EAX, 0x11223344);
    const x = e.run(100);
    expect(x).toMatchObject({ reason: ExitReason.In, port: 0x3f8, size: 1, executed: 0 });
    expect(e.icount).toBe(0n);
    expect(e.eip).toBe(CODE);
    expect(e.getReg(EAX)).toBe(0x11223344);
    e.answer(0x5a);
    expect(e.run(1)).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
    expect(e.icount).toBe(1n);
    expect(e.getReg(EAX)).toBe(0x1122335a);
    expect(e.eip).toBe(CODE + 1);
  });

  it("counts OUT once, exiting after it retired", async () => {
    const e = await engine(kind);
    load(e, CODE, [0x66, 0xe7, 0x80, HLT]); // out 0x80, ax
    e.setReg(EAX, 0xabcd1234);
    const x = e.run(100);
    expect(x).toMatchObject({ reason: ExitReason.Out, port: 0x80, size: 2, value: 0x1234, executed: 1 });
    expect(e.icount).toBe(1n);
    expect(e.eip).toBe(CODE + 3);
  });

  it("counts RDTSC once, when answered", async () => {
    const e = await engine(kind);
    load(e, CODE, [0x0f, 0x31, HLT]);
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Rdtsc, executed: 0 });
    expect(e.icount).toBe(0n);
    expect(e.eip).toBe(CODE);
    e.answer(0x89abcdef, 0x01234567);
    expect(e.run(1).executed).toBe(1);
    expect(e.icount).toBe(1n);
    expect(e.getReg(EAX)).toBe(0x89abcdef);
    expect(e.getReg(EDX)).toBe(0x01234567);
    expect(e.eip).toBe(CODE + 2);
  });

  it("counts CPUID once, when answered", async () => {
    const e = await engine(kind);
    load(e, CODE, [0x0f, 0xa2, HLT]);
    e.setReg(EAX, 7); e.setReg(ECX, 1);
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Cpuid, leaf: 7, subleaf: 1, executed: 0 });
    expect(e.icount).toBe(0n);
    e.answer(0x11, 0x22, 0x33, 0x44);
    expect(e.run(1).executed).toBe(1);
    expect(e.icount).toBe(1n);
    expect([e.getReg(EAX), e.getReg(EBX), e.getReg(ECX), e.getReg(EDX)]).toEqual([0x11, 0x22, 0x33, 0x44]);
    expect(e.eip).toBe(CODE + 2);
  });

  it("counts RDRAND once, when answered", async () => {
    const e = await engine(kind);
    load(e, CODE, [0x0f, 0xc7, 0xf2, HLT]); // rdrand edx
    e.eflags = 0x2 | ZF;
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Rdrand, size: 4, executed: 0 });
    expect(e.icount).toBe(0n);
    expect(e.eip).toBe(CODE);
    e.answer(0xcafef00d, 1);
    expect(e.run(1).executed).toBe(1);
    expect(e.icount).toBe(1n);
    expect(e.getReg(EDX)).toBe(0xcafef00d);
    expect(e.eflags & 0x8d5).toBe(CF); // CF = 1, OF SF ZF AF PF = 0 (SDM RDRAND)
    expect(e.eip).toBe(CODE + 3);
  });

  it("counts an MMIO read once, when answered", async () => {
    const e = await engine(kind);
    e.addMmio(MMIO, MMIO + 0x1000);
    load(e, CODE, [0x8b, 0x05, ...le32(MMIO + 0x10), HLT]); // mov eax, [MMIO+0x10]
    expect(e.run(100)).toMatchObject({ reason: ExitReason.MmioRead, addr: MMIO + 0x10, size: 4, executed: 0 });
    expect(e.icount).toBe(0n);
    expect(e.eip).toBe(CODE);
    e.answer(0x0badf00d);
    expect(e.run(1).executed).toBe(1);
    expect(e.icount).toBe(1n);
    expect(e.getReg(EAX)).toBe(0x0badf00d);
    expect(e.eip).toBe(CODE + 6);
  });

  it("counts an MMIO write once, exiting after it retired", async () => {
    const e = await engine(kind);
    e.addMmio(MMIO, MMIO + 0x1000);
    load(e, CODE, [0x66, 0x89, 0x1d, ...le32(MMIO + 0x22), HLT]); // mov [MMIO+0x22], bx
    e.setReg(EBX, 0x7777beef);
    const x = e.run(100);
    expect(x).toMatchObject({ reason: ExitReason.MmioWrite, executed: 1 });
    expect(x.mmioWrites).toEqual([{ addr: MMIO + 0x22, size: 2, value: 0xbeef }]);
    expect(e.icount).toBe(1n);
    expect(e.eip).toBe(CODE + 7);
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 1 });
    expect(e.icount).toBe(2n);
  });

  it("counts HLT once, with EIP after it", async () => {
    const e = await engine(kind);
    load(e, CODE, [NOP, HLT, NOP, HLT]);
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 2 });
    expect(e.icount).toBe(2n);
    expect(e.eip).toBe(CODE + 2);
    expect(e.halted).toBe(true);
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 2 });
    expect(e.icount).toBe(4n);
    expect(e.eip).toBe(CODE + 4);
  });

  it("run(budget) executes exactly budget instructions when nothing exits", async () => {
    const e = await engine(kind);
    // A loop: inc eax; dec ecx; jnz -4 (3 instructions per turn), 1000 turns.
    load(e, CODE, [0x40, 0x49, 0x75, 0xfc, HLT]);
    e.setReg(ECX, 1000);
    for (const budget of [1, 2, 7, 37, 1000]) {
      const before = e.icount;
      const x = e.run(budget);
      expect(x).toMatchObject({ reason: ExitReason.Budget, executed: budget });
      expect(e.icount - before).toBe(BigInt(budget));
    }
    // 1047 executed so far: 349 turns; EAX = 349, ECX = 651, back at the INC.
    expect(e.getReg(EAX)).toBe(349);
    expect(e.getReg(ECX)).toBe(651);
    expect(e.eip).toBe(CODE);
    expect(e.run(0x7fffffff)).toMatchObject({ reason: ExitReason.Hlt, executed: 651 * 3 + 1 });
    expect(e.icount).toBe(3001n);
  });

  it("run(budget) stops early at an exit and Exit.executed says how many retired", async () => {
    const e = await engine(kind);
    load(e, CODE, [NOP, NOP, NOP, 0xe6, 0x10, NOP, 0xe4, 0x20, NOP]); // nop x3; out 0x10, al; nop; in al, 0x20
    expect(e.run(10)).toMatchObject({ reason: ExitReason.Out, executed: 4 });
    expect(e.run(10)).toMatchObject({ reason: ExitReason.In, executed: 1 });
    expect(e.icount).toBe(5n);
    e.answer(1);
    expect(e.run(2)).toMatchObject({ reason: ExitReason.Budget, executed: 2 });
    expect(e.icount).toBe(7n);
  });

  it("step() completes a whole REP instruction, counting every iteration", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf3, 0xaa, NOP]); // rep stosb
    e.setReg(EAX, 0x5c); e.setReg(ECX, 10); e.setReg(EDI, DST);
    const x = e.step();
    expect(x).toMatchObject({ reason: ExitReason.Budget, executed: 10 });
    expect(e.icount).toBe(10n);
    expect(e.getReg(ECX)).toBe(0);
    expect(e.getReg(EDI)).toBe(DST + 10);
    expect(e.eip).toBe(CODE + 2);
    expect(Array.from(e.readMem(DST, 11))).toEqual([...new Array(10).fill(0x5c), 0]);
    expect(e.step()).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
    expect(e.eip).toBe(CODE + 3);
  });

  it("step() finishes a REP that a run(budget) left half done", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf3, 0xa4]);
    e.setReg(ECX, 8); e.setReg(ESI, SRC); e.setReg(EDI, DST);
    expect(e.run(5).executed).toBe(5);
    expect(e.getReg(ECX)).toBe(3);
    expect(e.step().executed).toBe(3);
    expect(e.getReg(ECX)).toBe(0);
    expect(e.eip).toBe(CODE + 2);
    expect(e.icount).toBe(8n);
  });

  it("counts REP INSB iterations one by one across input exits", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf3, 0x6c, HLT]); // rep insb
    e.setReg(ECX, 3); e.setReg(EDI, DST); e.setReg(EDX, 0x60);
    for (let i = 0; i < 3; i++) {
      const x = e.run(100);
      expect(x).toMatchObject({ reason: ExitReason.In, port: 0x60, size: 1 });
      expect(x.executed).toBe(i === 0 ? 0 : 1);
      expect(e.eip).toBe(CODE);
      expect(e.getReg(ECX)).toBe(3 - i);
      expect(e.icount).toBe(BigInt(i));
      e.answer(0x30 + i);
    }
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 2 });
    expect(e.icount).toBe(4n);
    expect(Array.from(e.readMem(DST, 3))).toEqual([0x30, 0x31, 0x32]);
  });

  it("counts REP OUTSB iterations one by one, one OUT exit each", async () => {
    const e = await engine(kind);
    load(e, CODE, [0xf3, 0x6e, HLT]); // rep outsb
    e.writeMem(SRC, Uint8Array.of(9, 8, 7));
    e.setReg(ECX, 3); e.setReg(ESI, SRC); e.setReg(EDX, 0x61);
    for (let i = 0; i < 3; i++) {
      const x = e.run(100);
      expect(x).toMatchObject({ reason: ExitReason.Out, port: 0x61, size: 1, value: 9 - i, executed: 1 });
      expect(e.icount).toBe(BigInt(i + 1));
      expect(e.getReg(ECX)).toBe(2 - i);
      expect(e.eip).toBe(i < 2 ? CODE : CODE + 2);
    }
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 1 });
  });

  it("counts REP STOSD into MMIO one iteration per MMIO-write exit", async () => {
    const e = await engine(kind);
    e.addMmio(MMIO, MMIO + 0x100);
    load(e, CODE, [0xf3, 0xab, HLT]);
    e.setReg(EAX, 0x01020304); e.setReg(ECX, 2); e.setReg(EDI, MMIO + 8);
    const x1 = e.run(100);
    expect(x1).toMatchObject({ reason: ExitReason.MmioWrite, executed: 1 });
    expect(x1.mmioWrites).toEqual([{ addr: MMIO + 8, size: 4, value: 0x01020304 }]);
    expect(e.eip).toBe(CODE);
    const x2 = e.run(100);
    expect(x2).toMatchObject({ reason: ExitReason.MmioWrite, executed: 1 });
    expect(x2.mmioWrites).toEqual([{ addr: MMIO + 12, size: 4, value: 0x01020304 }]);
    expect(e.eip).toBe(CODE + 2);
    expect(e.icount).toBe(2n);
  });

  it("does not count an INT n exit, and reports the next EIP", async () => {
    const e = await engine(kind);
    load(e, CODE, [NOP, 0xcd, 0x21, HLT]);
    expect(e.run(100)).toMatchObject({ reason: ExitReason.Int, vector: 0x21, nextEip: CODE + 3, executed: 1 });
    expect(e.eip).toBe(CODE + 1);
    expect(e.icount).toBe(1n);
  });
});
