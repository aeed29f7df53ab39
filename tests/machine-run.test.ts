// The machine's run loop (Machine.runSync, host/machine/machine.ts) on small
// hand-encoded guests, both engines, virtual clock: the debug console and the
// exit port, the entry state of a plain ELF, the answers to the inputs a CPU
// asks the host for (RDTSC, RDRAND, IN from unassigned ports), why a run
// stops (exit, HLT, fault, INT n, the instruction limit) and, on the
// benchmark guest, that both engines do the same thing.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { describeOutcome } from "../host/cli/run.js";
import { ENGINE_KINDS, type EngineKind } from "../host/engine/engine.js";
import { LoadError } from "../host/machine/elf.js";
import { Machine, VIRTUAL_NS_PER_INSTRUCTION } from "../host/machine/machine.js";
import { bootLive } from "../host/node/boot.js";
import { machineStateJson } from "../host/replay/state-hash.js";
import { buildElf, codeElf, PF_R, PF_W, PF_X } from "./helpers/elf-builder.js";
import { cpuState, rd32 } from "./helpers/machine.js";
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
const RDTSC = [0x0f, 0x31], RDRAND_EAX = [0x0f, 0xc7, 0xf0];
const CLI = 0xfa, STI = 0xfb, HLT = 0xf4, NOP = 0x90, UD2 = [0x0f, 0x0b], JMP_SELF = [0xeb, 0xfe];
const PUSHFD = 0x9c, POP_EAX = 0x58, MOV_EAX_ESP = [0x89, 0xe0];
const EAX = 0, EBX = 3;

const print = (s: string) => [...s].flatMap((c) => [...movAlImm(c.charCodeAt(0)), ...outAl(0xe9)]);
const exitWith = (v: number) => [...movEaxImm(v), ...outEax(0xf4)];

/** An image with code at 1 MiB and a writable data page at DATA. */
const withData = (code: number[]) =>
  buildElf(0x100000, [
    { paddr: 0x100000, data: code, flags: PF_R | PF_X },
    { paddr: DATA, memsz: 0x1000, flags: PF_R | PF_W },
  ]);

/** A machine with `elf` booted, and what it printed on the debug console. */
async function boot(kind: EngineKind, elf: Uint8Array, ramSize = RAM) {
  const out: number[] = [];
  const m = await bootLive(elf, { engine: kind, ramSize, clock: "virtual", onDebugcon: (b) => out.push(b) });
  return { m, debugcon: () => Buffer.from(out).toString("latin1") };
}

/** Boots `elf` and runs it for at most `max` instructions. */
async function run(kind: EngineKind, elf: Uint8Array, max = 1_000_000) {
  const g = await boot(kind, elf);
  return { ...g, r: g.m.runSync(max) };
}

describe.each(ENGINE_KINDS)("Machine.runSync (%s engine, virtual clock)", (kind) => {
  it("prints what the guest writes to port 0xE9 and stops with the status written to port 0xF4", async () => {
    const { m, r, debugcon } = await run(kind, codeElf([...print("hi\nyo"), ...exitWith(42), HLT]));
    expect(r).toMatchObject({ reason: "exit-port", exitStatus: 42, instructions: 12n }); // 5 × (mov al; out) + mov eax; out
    expect(debugcon()).toBe("hi\nyo");
    expect(m.boot.entry).toBe(0x100000);
  });

  it("masks a byte-wide exit write to 8 bits, keeps a dword whole", async () => {
    expect((await run(kind, codeElf([...movEaxImm(0x1234), ...outAl(0xf4)]))).r.exitStatus).toBe(0x34);
    expect((await run(kind, codeElf(exitWith(0xdeadbeef)))).r.exitStatus).toBe(0xdeadbeef);
  });

  it("enters a plain ELF with EAX = EBX = 0 and ESP at the top of RAM", async () => {
    const code = [...store(EAX, DATA), ...store(EBX, DATA + 4), ...MOV_EAX_ESP, ...outEax(0xf4)];
    const { m, r } = await run(kind, withData(code));
    expect(rd32(m.engine, DATA)).toBe(0);
    expect(rd32(m.engine, DATA + 4)).toBe(0);
    expect(r.exitStatus).toBe(RAM);
  });

  it("answers RDTSC with guest time in ns: 10 ns an instruction", async () => {
    const { r } = await run(kind, codeElf([NOP, NOP, NOP, ...RDTSC, ...outEax(0xf4)]));
    expect(VIRTUAL_NS_PER_INSTRUCTION).toBe(10);
    expect(r.exitStatus).toBe(3 * VIRTUAL_NS_PER_INSTRUCTION);
  });

  it("answers RDRAND deterministically, with CF set", async () => {
    const code = [...RDRAND_EAX, ...store(EAX, DATA), PUSHFD, POP_EAX, ...store(EAX, DATA + 4), ...RDRAND_EAX, ...store(EAX, DATA + 8), ...exitWith(0)];
    const a = await run(kind, withData(code));
    const b = await run(kind, withData(code));
    const values = (m: Machine) => [rd32(m.engine, DATA), rd32(m.engine, DATA + 8)];
    expect(values(a.m)).toEqual(values(b.m));
    expect(values(a.m)[0]).not.toBe(values(a.m)[1]);
    expect(rd32(a.m.engine, DATA + 4) & 1).toBe(1);
  });

  it("reads all ones from unassigned ports and 0xE9 from the debug console", async () => {
    const code = [
      ...movEaxImm(0), ...inAl(0x80), ...store(EAX, DATA), ...inEax(0x84), ...store(EAX, DATA + 4),
      ...movEaxImm(0), ...inAl(0xe9), ...store(EAX, DATA + 8), ...exitWith(0),
    ];
    const { m } = await run(kind, withData(code));
    expect([rd32(m.engine, DATA), rd32(m.engine, DATA + 4), rd32(m.engine, DATA + 8)]).toEqual([0xff, 0xffffffff, 0xe9]);
  });

  it("stops on HLT with interrupts off: halted, EIP past the HLT", async () => {
    const { m, r, debugcon } = await run(kind, codeElf([...print("x"), CLI, HLT]));
    expect(r).toMatchObject({ reason: "halted", instructions: 4n });
    expect(r.exitStatus).toBeUndefined();
    expect(m.engine.eip).toBe(0x100006);
    expect(describeOutcome(m, r)).toBe("HLT at 0x00100005 with interrupts disabled");
    expect(debugcon()).toBe("x");
  });

  it("returns idle on HLT with interrupts on and nothing that can wake the guest", async () => {
    const { m, r } = await run(kind, codeElf([STI, HLT]));
    expect(r).toMatchObject({ reason: "idle", instructions: 2n });
    expect(m.engine.eip).toBe(0x100002);
    expect(describeOutcome(m, r)).toBe("HLT at 0x00100001 with interrupts enabled but no interrupt sources");
  });

  it("stops on a fault with no IDT: the exit with the vector, EIP at the faulting instruction", async () => {
    const { m, r } = await run(kind, codeElf([NOP, ...UD2, 0xaa, 0xbb]));
    expect(r).toMatchObject({ reason: "fault", instructions: 1n, exit: { vector: 6 } });
    expect(m.engine.eip).toBe(0x100001);
    expect(describeOutcome(m, r)).toMatch(/^#UD invalid opcode \(vector 6\) at EIP 0x00100001, bytes 0f 0b aa bb/);
  });

  it("stops on INT n with no IDT", async () => {
    const { m, r } = await run(kind, codeElf([NOP, 0xcd, 0x80]));
    expect(r).toMatchObject({ reason: "int", instructions: 1n, exit: { vector: 0x80 } });
    expect(m.engine.eip).toBe(0x100001);
  });

  it("stops at exactly the instruction limit, however the run is split", async () => {
    const { m } = await boot(kind, codeElf(JMP_SELF));
    expect(m.runSync(0)).toMatchObject({ reason: "limit", instructions: 0n });
    expect(m.runSync(100_000)).toMatchObject({ reason: "limit", instructions: 100_000n });
    expect(m.runSync(150_001)).toMatchObject({ reason: "limit", instructions: 150_001n });
    expect(m.engine.icount).toBe(250_001n);
    const whole = (await run(kind, codeElf(JMP_SELF), 250_001)).r;
    expect(whole).toMatchObject({ reason: "limit", instructions: 250_001n });
  });

  it("refuses an image that is neither ELF nor Multiboot", async () => {
    await expect(bootLive(new Uint8Array(10), { engine: kind, ramSize: RAM, clock: "virtual" })).rejects.toThrow(LoadError);
  });
});

describe("the benchmark guest on the machine", () => {
  const bench = new Uint8Array(readFileSync(new URL("../guests/bin/bench.elf", import.meta.url)));

  it("runs identically on both engines for the first 20 million instructions", async () => {
    const results = [];
    for (const kind of ENGINE_KINDS) {
      const serial: number[] = [];
      const m = await bootLive(bench, { engine: kind, ramSize: 8 << 20, clock: "virtual", onSerial: (b) => serial.push(b) });
      const r = m.runSync(20_000_000);
      results.push({ r, output: Buffer.from(serial).toString("latin1"), cpu: cpuState(m.engine), devices: machineStateJson(m) });
    }
    expect(results[0].r).toEqual({ reason: "limit", instructions: 20_000_000n });
    expect(results[0].output).toMatch(/^lockstep cpu bench: \d+ kernels\n/);
    expect(results[1]).toEqual(results[0]);
  });
});
