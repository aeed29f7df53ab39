// Protected-mode segmentation and interrupt delivery (SDM Vol. 3A chapters 3
// and 6): GDT loads, far jumps, IDT delivery of INT n, exceptions with and
// without error codes, IRET, external interrupts injected by the host, the
// STI shadow, HLT, double and triple faults. Expected stack frames and
// selectors are written out from the SDM rules, not read from the engine.

import { describe, expect, it } from "vitest";
import { ExitReason, type Engine } from "../host/engine/engine.js";
import { ENGINE_KINDS, freshEngine, load, rd32 } from "./helpers/machine.js";
import { EAX, EBX, ECX, ESP, IF, le16, le32, modrm } from "./helpers/x86.js";

const GDT = 0x1000;
const IDT = 0x2000;
const CODE = 0x10000;
const STACK = 0x80000;
const HANDLERS = 0x20000;

/** An 8-byte segment descriptor. */
function desc(base: number, limit: number, access: number, flags: number): number[] {
  return [
    limit & 0xff, (limit >>> 8) & 0xff, base & 0xff, (base >>> 8) & 0xff, (base >>> 16) & 0xff,
    access, (flags << 4) | ((limit >>> 16) & 0xf), (base >>> 24) & 0xff,
  ];
}
/** A 32-bit gate (type 0xE interrupt, 0xF trap), present, DPL 0. */
function gate(sel: number, offset: number, type: number): number[] {
  return [offset & 0xff, (offset >>> 8) & 0xff, sel & 0xff, sel >>> 8, 0, 0x80 | type, (offset >>> 16) & 0xff, offset >>> 24];
}

/** GDT: 0 null, 0x08 flat code, 0x10 flat data, 0x18 data limited to 64 KiB, 0x20 not-present data. */
function setupTables(e: Engine, idtEntries: number): void {
  const gdt = [
    ...desc(0, 0, 0, 0),
    ...desc(0, 0xfffff, 0x9a, 0xc),
    ...desc(0, 0xfffff, 0x92, 0xc),
    ...desc(0, 0xffff, 0x92, 0x4),
    ...desc(0, 0xfffff, 0x12, 0xc),
  ];
  e.writeMem(GDT, Uint8Array.from(gdt));
  const idt: number[] = [];
  for (let v = 0; v < idtEntries; v++) idt.push(...gate(0x08, HANDLERS + v * 16, v === 0x31 ? 0xf : 0xe));
  e.writeMem(IDT, Uint8Array.from(idt));
  // The pseudo-descriptors at 0x3000 (GDTR) and 0x3008 (IDTR).
  e.writeMem(0x3000, Uint8Array.from([...le16(gdt.length - 1), ...le32(GDT)]));
  e.writeMem(0x3008, Uint8Array.from([...le16(idtEntries * 8 - 1), ...le32(IDT)]));
  // Every handler: mov [0x4000 + 4*v], esp ; inc dword [0x5000] ; iret  (the vector's slot records ESP at entry)
  for (let v = 0; v < idtEntries; v++) {
    const h = [0x89, modrm(0, ESP, 5), ...le32(0x4000 + 4 * v), 0xff, modrm(0, 0, 5), ...le32(0x5000), 0xcf];
    e.writeMem(HANDLERS + v * 16, Uint8Array.from(h));
  }
}

/** lgdt [0x3000]; jmp far 0x08:next; mov ax,0x10; mov ds/es/ss/fs/gs, ax; lidt [0x3008] */
function prologue(): number[] {
  const p = [0x0f, 0x01, modrm(0, 2, 5), ...le32(0x3000)];
  const farJmpAt = CODE + p.length;
  p.push(0xea, ...le32(farJmpAt + 7), ...le16(0x08));
  p.push(0x66, 0xb8, ...le16(0x10));
  for (const sreg of [3, 0, 2, 4, 5]) p.push(0x8e, modrm(3, sreg, EAX));
  p.push(0x0f, 0x01, modrm(0, 3, 5), ...le32(0x3008));
  return p;
}

async function machine(kind: "wasm" | "ts", body: number[], idtEntries = 64): Promise<Engine> {
  const e = await freshEngine(kind);
  setupTables(e, idtEntries);
  load(e, CODE, [...prologue(), ...body]);
  e.eip = CODE;
  e.setReg(ESP, STACK);
  return e;
}

/** Runs until an exit other than Budget; fails on a fault or after too many instructions. */
function runTo(e: Engine, limit = 10_000) {
  const x = e.run(limit);
  return x;
}

describe.each(ENGINE_KINDS)("segmentation and interrupts (%s)", (kind) => {
  it("LGDT, a far jump and data segment loads set selectors, with the accessed bit written to the GDT", async () => {
    const e = await machine(kind, [0xf4]);
    const x = runTo(e);
    expect(x.reason).toBe(ExitReason.Hlt);
    expect(e.getSegSelector(1)).toBe(0x08);
    for (const s of [0, 2, 3, 4, 5]) expect(e.getSegSelector(s)).toBe(0x10);
    // The access bytes at GDT+8+5 and GDT+16+5 gained bit 0 (accessed).
    expect(e.ram[GDT + 8 + 5]).toBe(0x9b);
    expect(e.ram[GDT + 16 + 5]).toBe(0x93);
  });

  it("INT n goes through an interrupt gate: frame EIP, CS, EFLAGS; IF cleared; IRET returns", async () => {
    // sti; int 0x30; mov ebx, [0x5000]; hlt
    const e = await machine(kind, [0xfb, 0xcd, 0x30, 0x8b, modrm(0, EBX, 5), ...le32(0x5000), 0xf4]);
    const x = runTo(e);
    expect(x.reason).toBe(ExitReason.Hlt);
    expect(e.getReg(EBX)).toBe(1);
    const espAtEntry = rd32(e, 0x4000 + 4 * 0x30);
    expect(espAtEntry).toBe(STACK - 12);
    const intEnd = CODE + prologue().length + 1 + 2;
    expect(rd32(e, STACK - 12)).toBe(intEnd);          // return EIP: after INT
    expect(rd32(e, STACK - 8)).toBe(0x08);             // CS
    expect(rd32(e, STACK - 4) & IF).toBe(IF);          // EFLAGS pushed with IF set
    expect(e.getReg(ESP)).toBe(STACK);
    expect(e.eflags & IF).toBe(IF);                    // restored by IRET
  });

  it("#DE goes through the IDT with the faulting EIP and no error code; delivery counts no instruction", async () => {
    // xor ecx, ecx; div ecx  -> the handler's IRET returns to the div again, so make the
    // handler for vector 0 skip it: it records ESP and returns to the div, which faults again;
    // stop after the first delivery instead: count instructions.
    const e = await machine(kind, [0x31, modrm(3, ECX, ECX), 0xf7, modrm(3, 6, ECX), 0xf4]);
    const pro = prologue().length;
    // Run the prologue and the xor (prologue instruction count: lgdt, jmp, mov ax, 5 movs, lidt = 9).
    expect(e.run(9 + 1).reason).toBe(ExitReason.Budget);
    const before = e.icount;
    const x = e.run(1); // the div faults (not counted), #DE is delivered, the handler's first MOV runs
    expect(x.executed).toBe(1);
    expect(e.icount - before).toBe(1n);
    expect(rd32(e, 0x4000)).toBe(STACK - 12);
    expect(rd32(e, STACK - 12)).toBe(CODE + pro + 2);  // EIP of the div
    expect(rd32(e, STACK - 8)).toBe(0x08);
  });

  it("#GP with an error code: MOV DS with a selector past the GDT limit pushes the selector", async () => {
    // mov ax, 0x48; mov ds, ax
    const e = await machine(kind, [0x66, 0xb8, ...le16(0x48), 0x8e, modrm(3, 3, EAX), 0xf4]);
    const x = e.run(9 + 2 + 1); // prologue, mov ax, the faulting mov ds (delivered), handler's first instruction
    expect(x.reason).toBe(ExitReason.Budget);
    expect(rd32(e, 0x4000 + 4 * 13)).toBe(STACK - 16);
    expect(rd32(e, STACK - 16)).toBe(0x48);            // error code: the selector
    expect(rd32(e, STACK - 12)).toBe(CODE + prologue().length + 4); // EIP of mov ds
    expect(e.getSegSelector(3)).toBe(0x10);            // DS unchanged
  });

  it("a not-present data segment is #NP(selector); a null SS is #GP(0)", async () => {
    const e = await machine(kind, [0x66, 0xb8, ...le16(0x20), 0x8e, modrm(3, 0, EAX), 0xf4]);
    e.run(9 + 2 + 1);
    expect(rd32(e, 0x4000 + 4 * 11)).toBe(STACK - 16);
    expect(rd32(e, STACK - 16)).toBe(0x20);
    const f = await machine(kind, [0x31, modrm(3, EAX, EAX), 0x8e, modrm(3, 2, EAX), 0xf4]);
    f.run(9 + 2 + 1);
    expect(rd32(f, 0x4000 + 4 * 13)).toBe(STACK - 16);
    expect(rd32(f, STACK - 16)).toBe(0);
  });

  it("a segment limit is honoured: an access past a 64 KiB data segment is #GP(0)", async () => {
    // mov ax, 0x18; mov es, ax; mov eax, es:[0x10000]
    const e = await machine(kind, [0x66, 0xb8, ...le16(0x18), 0x8e, modrm(3, 0, EAX), 0x26, 0xa1, ...le32(0x10000), 0xf4]);
    e.run(9 + 3 + 1);
    expect(rd32(e, 0x4000 + 4 * 13)).toBe(STACK - 16);
    expect(rd32(e, STACK - 16)).toBe(0);
    // The same load inside the limit works.
    const f = await machine(kind, [0x66, 0xb8, ...le16(0x18), 0x8e, modrm(3, 0, EAX), 0x26, 0xa1, ...le32(0xfffc), 0xf4]);
    expect(f.run(100).reason).toBe(ExitReason.Hlt);
  });

  it("external interrupts: delivered when IF=1, blocked when IF=0, and they wake a halted CPU", async () => {
    // cli; hlt; (then) sti; hlt
    const e = await machine(kind, [0xfa, 0xf4, 0xfb, 0xf4, 0xf4]);
    expect(e.run(100).reason).toBe(ExitReason.Hlt);
    expect(e.halted).toBe(true);
    expect(e.raiseInterrupt(0x20)).toBe("blocked");
    // Resume after the HLT by hand (the host would deliver an NMI-like wake-up); set IF via EFLAGS.
    e.eflags = e.eflags | IF;
    expect(e.raiseInterrupt(0x20)).toBe("delivered");
    expect(e.halted).toBe(false);
    expect(rd32(e, e.getReg(ESP))).toBe(CODE + prologue().length + 2); // returns after the HLT
    const x = e.run(100);
    expect(rd32(e, 0x5000)).toBe(1);
    expect(x.reason).toBe(ExitReason.Hlt);
  });

  it("the STI shadow: a pending interrupt waits for the instruction after STI (IrqWindow then)", async () => {
    // cli; sti; nop; nop; hlt
    const e = await machine(kind, [0xfa, 0xfb, 0x90, 0x90, 0xf4]);
    e.run(9 + 1); // through CLI
    e.setIrqPending(true);
    const x = e.run(100);
    expect(x).toMatchObject({ reason: ExitReason.IrqWindow, executed: 2 }); // STI and the first NOP
    expect(e.interruptible).toBe(true);
    expect(e.raiseInterrupt(0x21)).toBe("delivered");
    e.setIrqPending(false);
    expect(e.run(100).reason).toBe(ExitReason.Hlt);
    expect(rd32(e, 0x5000)).toBe(1);
  });

  it("a run that ends right after STI leaves the shadow for the next run's first instruction", async () => {
    const e = await machine(kind, [0xfa, 0xfb, 0x90, 0x90, 0xf4]);
    e.run(9 + 2); // through STI
    expect(e.interruptible).toBe(false);
    expect(e.raiseInterrupt(0x21)).toBe("blocked");
    e.setIrqPending(true);
    expect(e.run(100)).toMatchObject({ reason: ExitReason.IrqWindow, executed: 1 });
    expect(e.interruptible).toBe(true);
    // Without a pending interrupt the shadow just ends: the run goes on to HLT.
    const f = await machine(kind, [0xfa, 0xfb, 0x90, 0x90, 0xf4]);
    f.run(9 + 2);
    expect(f.interruptible).toBe(false);
    expect(f.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 3 });
    expect(f.interruptible).toBe(true);
  });

  it("a fault while delivering a fault is a double fault; a fault delivering that is a triple fault", async () => {
    // IDT with only 16 entries: INT 0x30 is past the limit -> #GP(0x30*8+2) -> delivered (vector 13 exists).
    const e = await machine(kind, [0xcd, 0x30, 0xf4], 16);
    e.run(9 + 1 + 1);
    expect(rd32(e, 0x4000 + 4 * 13)).toBe(STACK - 16);
    expect(rd32(e, STACK - 16)).toBe(0x30 * 8 + 2);
    // IDT with 4 entries: #DE past... use INT 0x30 -> #GP(vector 13 past the limit too) -> #DF (8, past) -> triple.
    const f = await machine(kind, [0xcd, 0x30, 0xf4], 4);
    const x = f.run(100);
    expect(x.reason).toBe(ExitReason.TripleFault);
    expect(x.vector).toBe(13);
    expect(f.run(100).reason).toBe(ExitReason.TripleFault); // and it stays dead
  });

  it("without LIDT, exceptions and INT n still exit to the host", async () => {
    const e = await freshEngine(kind);
    load(e, CODE, [0xcd, 0x30]);
    e.eip = CODE;
    expect(e.run(10)).toMatchObject({ reason: ExitReason.Int, vector: 0x30, executed: 0 });
    expect(e.raiseInterrupt(0x20)).toBe("blocked"); // IF=0 after reset
    e.eflags = e.eflags | IF;
    expect(e.raiseInterrupt(0x20)).toBe("no-idt");
  });
});
