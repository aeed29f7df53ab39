// The minimal driver (host/machine/simple-run.ts) on both engines: console
// output, exit status, the deterministic CPUID/RDTSC/RDRAND/IN answers, the
// stop reasons, the instruction limit, and the benchmark guest.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cpuidAnswer, simpleRun, CPUID_1_ECX, CPUID_1_EDX } from "../host/machine/simple-run.js";
import { ElfError } from "../host/machine/elf.js";
import { codeElf, buildElf, PF_R, PF_W, PF_X } from "./helpers/elf-builder.js";
import { ENGINE_KINDS, freshEngine, rd32 } from "./helpers/machine.js";
import { le32 } from "./helpers/x86.js";

const RAM = 2 << 20;
const DATA = 0x180000;

// A few hand-encoded instructions (SDM Vol. 2).
const movAlImm = (v: number) => [0xb0, v];
const movEaxImm = (v: number) => [0xb8, ...le32(v)];
const outAl = (port: number) => [0xe6, port];
const outEax = (port: number) => [0xe7, port];
const inAl = (port: number) => [0xe4, port];
const inEax = (port: number) => [0xe5, port];
/** MOV [disp32], r32 (89 /r, mod 00 rm 101). */
const store = (reg: number, addr: number) => [0x89, 0x05 | (reg << 3), ...le32(addr)];
const CPUID = [0x0f, 0xa2], RDTSC = [0x0f, 0x31], RDRAND_EAX = [0x0f, 0xc7, 0xf0];
const CLI = 0xfa, STI = 0xfb, HLT = 0xf4, NOP = 0x90, UD2 = [0x0f, 0x0b], JMP_SELF = [0xeb, 0xfe];
const PUSHFD = 0x9c, POP_EAX = 0x58;
const EAX = 0, ECX = 1, EDX = 2, EBX = 3;

const print = (s: string) => [...s].flatMap((c) => [...movAlImm(c.charCodeAt(0)), ...outAl(0xe9)]);
const exitWith = (v: number) => [...movEaxImm(v), ...outEax(0xf4)];
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

/** An image with code at 1 MiB and a writable data page at DATA. */
const withData = (code: number[]) =>
  buildElf(0x100000, [
    { paddr: 0x100000, data: code, flags: PF_R | PF_X },
    { paddr: DATA, memsz: 0x1000, flags: PF_R | PF_W },
  ]);

describe.each(ENGINE_KINDS)("simpleRun (%s)", (kind) => {
  const run = async (elf: Uint8Array, opts = {}) => {
    const e = await freshEngine(kind, RAM);
    return { e, r: simpleRun(e, elf, opts) };
  };

  it("collects console output and stops with the status written to port 0xF4", async () => {
    const chunks: string[] = [];
    const { r } = await run(codeElf([...print("hi\nyo"), ...exitWith(42), HLT]), { onOutput: (b: Uint8Array) => chunks.push(text(b)) });
    expect(r).toMatchObject({ reason: "exit", exitStatus: 42 });
    expect(text(r.output)).toBe("hi\nyo");
    expect(chunks.join("")).toBe("hi\nyo");
    expect(r.instructions).toBe(12); // 5 × (mov al; out) + mov eax; out
    expect(r.image.entry).toBe(0x100000);
  });

  it("masks a byte-wide exit write to 8 bits, keeps a dword whole", async () => {
    expect((await run(codeElf([...movEaxImm(0x1234), ...outAl(0xf4)]))).r.exitStatus).toBe(0x34);
    expect((await run(codeElf(exitWith(0xdeadbeef)))).r.exitStatus).toBe(0xdeadbeef);
  });

  it("enters with EAX = 0x2BADB002, EBX = 0 and ESP at the top of RAM", async () => {
    const code = [...store(EAX, DATA), ...store(EBX, DATA + 4), 0x89, 0xe0 /* mov eax, esp */, ...outEax(0xf4)];
    const { e, r } = await run(withData(code));
    expect(rd32(e, DATA)).toBe(0x2badb002);
    expect(rd32(e, DATA + 4)).toBe(0);
    expect(r.exitStatus).toBe(RAM);
  });

  it("answers CPUID with the fixed LockstepCPU description", async () => {
    const code = [
      ...movEaxImm(0), ...CPUID, ...store(EBX, DATA), ...store(EDX, DATA + 4), ...store(ECX, DATA + 8), ...store(EAX, DATA + 12),
      ...movEaxImm(1), ...CPUID, ...store(EAX, DATA + 16), ...store(ECX, DATA + 20), ...store(EDX, DATA + 24),
      ...exitWith(0),
    ];
    const { e } = await run(withData(code));
    expect(text(e.readMem(DATA, 12))).toBe("LockstepCPU ");
    expect(rd32(e, DATA + 12)).toBeGreaterThanOrEqual(1);
    expect((rd32(e, DATA + 16) >>> 8) & 0xf).toBe(6); // family
    expect(rd32(e, DATA + 20)).toBe(CPUID_1_ECX);
    expect(rd32(e, DATA + 24)).toBe(CPUID_1_EDX);
  });

  it("answers RDTSC with the retired-instruction count", async () => {
    const { r } = await run(codeElf([NOP, NOP, NOP, ...RDTSC, ...outEax(0xf4)]));
    expect(r.exitStatus).toBe(3);
  });

  it("answers RDRAND deterministically, with CF set", async () => {
    const code = [...RDRAND_EAX, ...store(EAX, DATA), PUSHFD, POP_EAX, ...store(EAX, DATA + 4), ...RDRAND_EAX, ...store(EAX, DATA + 8), ...exitWith(0)];
    const a = await run(withData(code));
    const b = await run(withData(code));
    const values = (e: typeof a.e) => [rd32(e, DATA), rd32(e, DATA + 8)];
    expect(values(a.e)).toEqual(values(b.e));
    expect(values(a.e)[0]).not.toBe(values(a.e)[1]);
    expect(rd32(a.e, DATA + 4) & 1).toBe(1);
  });

  it("reads all ones from unassigned ports and 0xE9 from the debug console", async () => {
    const code = [...movEaxImm(0), ...inAl(0x80), ...store(EAX, DATA), ...inEax(0x70), ...store(EAX, DATA + 4), ...movEaxImm(0), ...inAl(0xe9), ...store(EAX, DATA + 8), ...exitWith(0)];
    const { e } = await run(withData(code));
    expect([rd32(e, DATA), rd32(e, DATA + 4), rd32(e, DATA + 8)]).toEqual([0xff, 0xffffffff, 0xe9]);
  });

  it("stops on HLT, reporting the HLT's address and IF", async () => {
    let { r } = await run(codeElf([...print("x"), CLI, HLT]));
    expect(r).toMatchObject({ reason: "halt", exitStatus: null, detail: { eip: 0x100005, interruptsEnabled: false } });
    expect(text(r.output)).toBe("x");
    ({ r } = await run(codeElf([STI, HLT])));
    expect(r).toMatchObject({ reason: "halt", detail: { eip: 0x100001, interruptsEnabled: true } });
  });

  it("stops on a fault with the vector, EIP and instruction bytes", async () => {
    const { r } = await run(codeElf([NOP, ...UD2, 0xaa, 0xbb]));
    expect(r).toMatchObject({ reason: "fault", exitStatus: null, instructions: 1, detail: { vector: 6, eip: 0x100001 } });
    expect(Array.from(r.detail.bytes!.subarray(0, 4))).toEqual([0x0f, 0x0b, 0xaa, 0xbb]);
    expect(r.detail.message).toMatch(/#UD invalid opcode \(vector 6\) at EIP 0x00100001, bytes 0f 0b aa bb/);
  });

  it("stops on INT n", async () => {
    const { r } = await run(codeElf([NOP, 0xcd, 0x80]));
    expect(r).toMatchObject({ reason: "int", detail: { vector: 0x80, eip: 0x100001 } });
  });

  it("stops at exactly maxInstructions", async () => {
    const { r } = await run(codeElf(JMP_SELF), { maxInstructions: 250_001, slice: 100_000 });
    expect(r).toMatchObject({ reason: "limit", instructions: 250_001, exitStatus: null });
    const zero = await run(codeElf(JMP_SELF), { maxInstructions: 0 });
    expect(zero.r).toMatchObject({ reason: "limit", instructions: 0 });
  });

  it("refuses a bad image with ElfError and a slice below 100,000 with RangeError", async () => {
    const e = await freshEngine(kind, RAM);
    expect(() => simpleRun(e, new Uint8Array(10))).toThrow(ElfError);
    expect(() => simpleRun(e, codeElf([HLT]), { slice: 1000 })).toThrow(RangeError);
  });
});

describe("cpuidAnswer", () => {
  it("has no FPU bit, and the brand string in the extended leaves", () => {
    expect(cpuidAnswer(1, 0)[3] & 1).toBe(0);
    const brand = [0x80000002, 0x80000003, 0x80000004]
      .flatMap((l) => cpuidAnswer(l, 0))
      .flatMap((v) => le32(v))
      .map((b) => String.fromCharCode(b))
      .join("")
      .replace(/\0+$/, "");
    expect(brand).toBe("Lockstep virtual i386 CPU");
    expect(cpuidAnswer(0x12345, 0)).toEqual([0, 0, 0, 0]);
  });
});

describe("the benchmark guest", () => {
  const bench = new Uint8Array(readFileSync(new URL("../guests/bin/bench.elf", import.meta.url)));

  it("passes its own checks on the wasm engine", async () => {
    const e = await freshEngine("wasm", 8 << 20);
    const r = simpleRun(e, bench);
    expect(text(r.output)).toMatch(/^total +[0-9a-f]{8} ok\nPASS\n$/m);
    expect(r).toMatchObject({ reason: "exit", exitStatus: 0 });
  });

  it("runs identically on both engines for the first 20 million instructions", async () => {
    const results = [];
    for (const kind of ENGINE_KINDS) {
      const e = await freshEngine(kind, 8 << 20);
      const r = simpleRun(e, bench, { maxInstructions: 20_000_000 });
      const regs = Array.from({ length: 8 }, (_, i) => e.getReg(i));
      results.push({ reason: r.reason, instructions: r.instructions, output: text(r.output), eip: e.eip, eflags: e.eflags, regs });
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[0].reason).toBe("limit");
  });
});
