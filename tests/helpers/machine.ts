// Engine set-up shared by the unit tests: a fresh engine per test, code
// loading, and whole-state snapshots for comparisons.

import { loadEngine } from "../../host/node/core-modules.js";
import { ENGINE_KINDS, type Engine, type EngineKind } from "../../host/engine/engine.js";

export { ENGINE_KINDS };
export type { Engine, EngineKind };

export const RAM_1M = 1 << 20;

/** A fresh engine in the flat power-on state (registers 0, EFLAGS = 2, RAM zeroed). */
export async function freshEngine(kind: EngineKind, ramSize = RAM_1M): Promise<Engine> {
  const e = await loadEngine(kind, { ramSize });
  e.reset();
  return e;
}

/** Writes code at `at` and points EIP at it. */
const ZERO_1M = new Uint8Array(RAM_1M);
const reused = new Map<EngineKind, Engine>();

/**
 * One engine per kind for the whole test file, returned in the power-on state
 * with its 1 MiB of RAM zeroed (through writeMem, so cached decodes are
 * retired too). Only for tests that register no MMIO range and no dirty
 * tracker, the two things reset() keeps.
 */
export async function resetEngine(kind: EngineKind): Promise<Engine> {
  let e = reused.get(kind);
  if (!e) {
    e = await loadEngine(kind, { ramSize: RAM_1M });
    reused.set(kind, e);
  }
  e.reset();
  e.writeMem(0, ZERO_1M);
  return e;
}

export function load(e: Engine, at: number, code: ArrayLike<number>): void {
  e.writeMem(at, Uint8Array.from(code));
  e.eip = at;
}

export function setRegs(e: Engine, regs: Partial<Record<number, number>>): void {
  for (const [k, v] of Object.entries(regs)) e.setReg(Number(k), v as number);
}

export interface CpuState {
  regs: number[];
  eip: number;
  eflags: number;
  icount: bigint;
  segSel: number[];
  segBase: number[];
}

export function cpuState(e: Engine): CpuState {
  const regs: number[] = [];
  for (let i = 0; i < 8; i++) regs.push(e.getReg(i));
  const segSel: number[] = [];
  const segBase: number[] = [];
  for (let s = 0; s < 6; s++) {
    segSel.push(e.getSegSelector(s));
    segBase.push(e.getSegBase(s));
  }
  return { regs, eip: e.eip, eflags: e.eflags, icount: e.icount, segSel, segBase };
}

export const rd32 = (e: Engine, a: number): number => {
  const b = e.readMem(a, 4);
  return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
};
export const wr32 = (e: Engine, a: number, v: number): void => {
  e.writeMem(a, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff));
};

/**
 * The exports object behind an engine (the wasm instance's exports or the TS
 * core), for the tests that must look under the Engine interface.
 */
export function coreOf(e: Engine): Record<string, unknown> {
  const core = (e as unknown as { core?: Record<string, unknown> }).core;
  if (!core) throw new Error("engine does not expose its core");
  return core;
}

/** Deterministic PRNG (mulberry32); the seed is the whole state. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Integer in [0, n). */
  int(n: number): number { return n <= 1 ? 0 : this.u32() % n; }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  chance(p: number): boolean { return this.u32() / 0x100000000 < p; }
}
