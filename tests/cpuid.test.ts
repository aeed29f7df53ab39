// CPUID: the fixed CPU description of host/machine/cpuid.ts, leaf by leaf as
// docs/machine.md ("CPUID") lists it, and what a guest reads when it executes
// CPUID on the machine (both engines, virtual clock).

import { describe, expect, it } from "vitest";
import {
  cpuidAnswer, CPUID_1_ECX, CPUID_1_EDX, CPUID_7_EBX, CPUID_BRAND, CPUID_MAX_BASIC, CPUID_MAX_EXT, CPUID_SIGNATURE, CPUID_VENDOR,
} from "../host/machine/cpuid.js";
import { Machine } from "../host/machine/machine.js";
import { bootLive } from "../host/node/boot.js";
import { ENGINE_KINDS } from "../host/engine/engine.js";
import { buildElf, PF_R, PF_W, PF_X } from "./helpers/elf-builder.js";
import { rd32 } from "./helpers/machine.js";
import { le32 } from "./helpers/x86.js";

/** The ASCII of four registers' little-endian bytes, trailing NULs dropped. */
const ascii = (regs: number[]) =>
  regs.flatMap((v) => le32(v)).map((b) => String.fromCharCode(b)).join("").replace(/\0+$/, "");

describe("cpuidAnswer", () => {
  it("leaf 0: the highest basic leaf, 7, and the vendor LockstepCPU in EBX, EDX, ECX", () => {
    const [a, b, c, d] = cpuidAnswer(0, 0);
    expect(a).toBe(7);
    expect(CPUID_MAX_BASIC).toBe(7);
    expect(ascii([b, d, c])).toBe("LockstepCPU ");
    expect(CPUID_VENDOR).toBe("LockstepCPU ");
  });

  it("leaf 1: family 6 model 1 stepping 0; RDRAND; TSC, CX8, CMOV and no FPU, MMX or SSE", () => {
    const [a, b, c, d] = cpuidAnswer(1, 0);
    expect(a).toBe(0x610);
    expect(CPUID_SIGNATURE).toBe(0x610);
    expect(b).toBe(0);
    expect(c).toBe(CPUID_1_ECX);
    expect(c).toBe(1 << 30);
    expect(d).toBe(CPUID_1_EDX);
    expect(d).toBe((1 << 4) | (1 << 8) | (1 << 15));
    expect(d & 1).toBe(0); // FPU
    expect(d & ((1 << 23) | (1 << 25) | (1 << 26))).toBe(0); // MMX, SSE, SSE2
  });

  it("leaf 7: RDSEED in subleaf 0's EBX; other subleaves are zeros", () => {
    expect(cpuidAnswer(7, 0)).toEqual([0, CPUID_7_EBX, 0, 0]);
    expect(CPUID_7_EBX).toBe(1 << 18);
    expect(cpuidAnswer(7, 1)).toEqual([0, 0, 0, 0]);
  });

  it("the extended leaves: 0x80000004 the highest, the brand string in 0x80000002-4", () => {
    expect(cpuidAnswer(0x80000000, 0)).toEqual([0x80000004, 0, 0, 0]);
    expect(CPUID_MAX_EXT).toBe(0x80000004);
    const brand = ascii([0x80000002, 0x80000003, 0x80000004].flatMap((l) => cpuidAnswer(l, 0)));
    expect(brand).toBe("Lockstep virtual i386 CPU");
    expect(CPUID_BRAND).toBe(brand);
  });

  it("reads any other leaf as zeros", () => {
    for (const leaf of [2, 3, 6, 8, 0x12345, 0x80000001, 0x80000005, 0xffffffff, -1]) {
      expect(cpuidAnswer(leaf, 0), `leaf ${leaf}`).toEqual([0, 0, 0, 0]);
    }
  });
});

describe.each(ENGINE_KINDS)("CPUID on the machine (%s engine)", (kind) => {
  it("answers a guest with the fixed LockstepCPU description", async () => {
    const DATA = 0x180000;
    const EAX = 0, ECX = 1, EDX = 2, EBX = 3;
    const movEaxImm = (v: number) => [0xb8, ...le32(v)];
    const movEcxImm = (v: number) => [0xb9, ...le32(v)];
    const store = (reg: number, addr: number) => [0x89, 0x05 | (reg << 3), ...le32(addr)];
    const cpuid = (leaf: number, subleaf: number, at: number) => [
      ...movEaxImm(leaf), ...movEcxImm(subleaf), 0x0f, 0xa2,
      ...store(EAX, at), ...store(EBX, at + 4), ...store(ECX, at + 8), ...store(EDX, at + 12),
    ];
    const leaves: [number, number][] = [[0, 0], [1, 0], [7, 0], [0x80000000, 0], [0x80000002, 0], [0x80000003, 0], [0x80000004, 0], [0x40000000, 0]];
    const code = [...leaves.flatMap(([l, s], i) => cpuid(l, s, DATA + 16 * i)), ...movEaxImm(0), 0xe7, 0xf4 /* out 0xf4, eax */];
    const elf = buildElf(0x100000, [
      { paddr: 0x100000, data: code, flags: PF_R | PF_X },
      { paddr: DATA, memsz: 0x1000, flags: PF_R | PF_W },
    ]);
    const m = await bootLive(elf, { engine: kind, ramSize: 2 << 20, clock: "virtual" });
    expect(m.runSync(10_000)).toMatchObject({ reason: "exit-port", exitStatus: 0 });
    leaves.forEach(([l, s], i) => {
      const got = [0, 4, 8, 12].map((o) => rd32(m.engine, DATA + 16 * i + o));
      expect(got, `leaf ${l.toString(16)}`).toEqual(cpuidAnswer(l, s));
    });
    expect(ascii([rd32(m.engine, DATA + 4), rd32(m.engine, DATA + 12), rd32(m.engine, DATA + 8)])).toBe("LockstepCPU ");
  });
});
