// No guest address can reach the core's own state.
//
// The guest runs loads, stores, string instructions, pushes and segment-based
// accesses at the edges of RAM and far outside it (just past the end, across
// the 4 GiB wrap, at 0x80000000, and at the addresses that would alias the
// core's own state words / dirty map / the start of wasm memory if RAM were
// reached without a bounds check). The architected outcome (the brief's
// memory rules): a byte outside RAM (and not MMIO) reads 0xFF and ignores
// writes; linear addresses are 32 bits, so base + offset and the bytes of a
// multi-byte access wrap modulo 2^32.
//
// After the run we check the registers against a byte-level model of those
// rules, the RAM byte for byte, and the whole core memory (for wasm: every
// byte of linear memory) outside RAM: state words may change only at the
// architected fields (registers, EIP, icount, exit info...), the dirty map
// only at the pages the guest wrote, and any other byte only if it also
// changes when the *same code* runs with harmless in-RAM addresses (core
// bookkeeping such as a decode cache, which does not depend on the data).

import { describe, expect, it } from "vitest";
import { ExitReason } from "../host/engine/engine.js";
import { DirtyTracker } from "../host/engine/dirty.js";
import {
  S_EIP, S_BASE, S_ICOUNT_LO, S_ICOUNT_HI, S_EXIT, S_EXIT_ADDR, S_EXIT_SIZE, S_EXIT_VALUE, S_EXIT_VECTOR,
  S_EXIT_ERROR, S_EXIT_NEXT, S_ABORT, S_ANSWER_VALID, S_ANSWER, S_LEFT, S_STEP_MODE, S_INSTR_EIP,
  S_EXECUTED, S_MMIOW_COUNT, S_MMIOW, S_SCRATCH, SEG_FS, SEG_GS,
} from "../assembly/state.js";
import { ENGINE_KINDS, freshEngine, coreOf, RAM_1M, type Engine, type EngineKind } from "./helpers/machine.js";
import { EAX, ECX, EDX, EBX, ESP, ESI, EDI, CF, ZF, hex } from "./helpers/x86.js";

const RS = RAM_1M;
const CODE = 0x8000;
const DATA = 0xa1b2c3d4;

// ---- the byte-level model of guest memory -------------------------------------
class Model {
  readonly ram: Uint8Array;
  readonly written = new Set<number>(); // pages
  constructor(init: Uint8Array) { this.ram = init.slice(); }
  rd(a: number, n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const b = (a + i) >>> 0;
      v |= (b < RS ? this.ram[b] : 0xff) << (8 * i);
    }
    return v >>> 0;
  }
  wr(a: number, n: number, v: number): void {
    for (let i = 0; i < n; i++) {
      const b = (a + i) >>> 0;
      if (b < RS) { this.ram[b] = (v >>> (8 * i)) & 0xff; this.written.add(b >>> 12); }
    }
  }
}

function pattern(): Uint8Array {
  const p = new Uint8Array(RS);
  for (let i = 0; i < RS; i++) p[i] = ((i * 131) ^ (i >>> 9) ^ 0x5c) & 0xff;
  return p;
}

// ---- access to the memory under the Engine interface ---------------------------
interface CoreMem {
  /** Bytes of the whole core memory, freshly read. */
  bytes(): Uint8Array;
  ram: [number, number];   // [start, end) of guest RAM in bytes()
  state: number;           // byte offset of state word 0
  stateWords: number;
  dirty: [number, number]; // [start, end) of the dirty bytemap
  pad: [number, number];   // the 16 bytes after RAM
}

function coreMem(e: Engine): CoreMem {
  const core = coreOf(e);
  if (e.kind === "wasm") {
    const mem = core.memory as WebAssembly.Memory;
    const ramBase = (core.ramBase as () => number)();
    const dirtyBase = (core.dirtyBase as () => number)();
    return {
      bytes: () => new Uint8Array(mem.buffer).slice(),
      ram: [ramBase, ramBase + RS],
      state: (core.stateBase as () => number)(),
      stateWords: 1024,
      dirty: [dirtyBase, dirtyBase + 0x40000],
      pad: [ramBase + RS, ramBase + RS + 16],
    };
  }
  // The TS core keeps separate typed arrays: lay them end to end.
  const ram = (core.ramBase as () => Uint8Array)();
  const dirty = (core.dirtyBase as () => Uint8Array)();
  const st = (core.stateBase as () => Int32Array)();
  const stBytes = () => new Uint8Array(st.buffer, st.byteOffset, st.byteLength);
  const r0 = 0, d0 = ram.length, s0 = ram.length + dirty.length;
  return {
    bytes: () => {
      const out = new Uint8Array(ram.length + dirty.length + st.byteLength);
      out.set(ram, r0); out.set(dirty, d0); out.set(stBytes(), s0);
      return out;
    },
    ram: [r0, RS],
    state: s0,
    stateWords: st.length,
    dirty: [d0, d0 + dirty.length],
    pad: [RS, RS + 16],
  };
}

// State words the architecture (or the exit protocol) may change while the guest runs.
const MUTABLE_WORDS = new Set<number>([
  0, 1, 2, 3, 4, 5, 6, 7, S_EIP, S_BASE + SEG_FS, S_BASE + SEG_GS, S_ICOUNT_LO, S_ICOUNT_HI,
  S_EXIT, S_EXIT_ADDR, S_EXIT_SIZE, S_EXIT_VALUE, S_EXIT_VECTOR, S_EXIT_ERROR, S_EXIT_NEXT, S_ABORT,
  S_ANSWER_VALID, S_ANSWER, S_ANSWER + 1, S_ANSWER + 2, S_ANSWER + 3, S_LEFT, S_STEP_MODE, S_INSTR_EIP,
  S_EXECUTED, S_MMIOW_COUNT, ...Array.from({ length: 12 }, (_, i) => S_MMIOW + i),
  ...Array.from({ length: 8 }, (_, i) => S_SCRATCH + i),
]);

/** Offsets outside RAM that changed between two images. */
function changedOutsideRam(m: CoreMem, a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i] && !(i >= m.ram[0] && i < m.ram[1])) out.push(i);
  }
  return out;
}

// ---- the hostile operations -----------------------------------------------------
type Regs = Record<number, number>;
interface Op {
  name: string;
  code: number[];
  regs: Regs;
  /** Harmless in-RAM register values for the control run (defaults: regs). */
  ctl?: Regs;
  fs?: number; gs?: number;
  ctlFs?: number; ctlGs?: number;
  /** Hostile run: expected registers after the op and its stores, from the model before it. */
  effect: (m: Model, r: Regs) => { regs: Regs; writes?: [number, number, number][]; flags?: [number, number] };
  exit?: Partial<{ reason: ExitReason; vector: number }>;
}

function hostileOps(alias: { state: number; dirty: number; zero: number; pad: number }): Op[] {
  const ops: Op[] = [];
  const SCR = 0x3000; // control scratch
  // MOV stores then loads, 4/2/1 bytes, at every edge address.
  const edges = [RS, RS + 1, RS + 2, RS + 3, RS + 15, RS + 16, RS + 0x1000, RS - 1, RS - 2, RS - 3,
    0x80000000, 0xfffffffc, 0xfffffffd, 0xfffffffe, 0xffffffff, alias.state, (alias.state + 0x20) >>> 0,
    alias.dirty, (alias.dirty + 0x100) >>> 0, alias.zero, alias.pad, 0x7fffffff];
  for (const a of edges) {
    const ctlA = a < RS ? a : a >= 0xfffffffc ? 0 : SCR; // wrapping forms touch RAM 0..2 in the hostile run
    for (const [size, st, ld] of [[4, [0x89, 0x03], [0x8b, 0x0b]], [2, [0x66, 0x89, 0x03], [0x66, 0x8b, 0x0b]], [1, [0x88, 0x03], [0x8a, 0x0b]]] as const) {
      const mask = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
      ops.push({
        name: `mov [${hex(a)}], ${size * 8}-bit`, code: [...st], regs: { [EBX]: a, [EAX]: DATA }, ctl: { [EBX]: ctlA },
        effect: () => ({ regs: {}, writes: [[a, size, DATA]] }),
      });
      ops.push({
        name: `mov ${size * 8}-bit, [${hex(a)}]`, code: [...ld], regs: { [EBX]: a, [ECX]: 0x13579bdf }, ctl: { [EBX]: ctlA },
        effect: (m) => ({ regs: { [ECX]: ((0x13579bdf & ~mask) | m.rd(a, size)) >>> 0 } }),
      });
    }
  }
  // Effective-address arithmetic wraps: [ebx + 0x7fffffff] with EBX = 0x80000001 is address 0.
  ops.push({
    name: "mov edx, [ebx+0x7fffffff] (wraps to 0)", code: [0x8b, 0x93, 0xff, 0xff, 0xff, 0x7f],
    regs: { [EBX]: 0x80000001 }, ctl: { [EBX]: 0x80000001 },
    effect: (m) => ({ regs: { [EDX]: m.rd(0, 4) } }),
  });
  // String instructions.
  ops.push({
    name: "rep stosd from RS-8, 4 dwords", code: [0xf3, 0xab], regs: { [EDI]: RS - 8, [ECX]: 4, [EAX]: DATA },
    ctl: { [EDI]: RS - 16 },
    effect: () => ({ regs: { [EDI]: RS + 8, [ECX]: 0 }, writes: [[RS - 8, 4, DATA], [RS - 4, 4, DATA], [RS, 4, DATA], [RS + 4, 4, DATA]] }),
  });
  ops.push({
    name: "rep movsb from RS-2 into RAM", code: [0xf3, 0xa4], regs: { [ESI]: RS - 2, [EDI]: 0x2000, [ECX]: 4 },
    ctl: { [ESI]: RS - 4 },
    effect: (m) => ({ regs: { [ESI]: RS + 2, [EDI]: 0x2004, [ECX]: 0 }, writes: [[0x2000, 4, m.rd(RS - 2, 4)]] }),
  });
  ops.push({
    name: "rep movsd into RS-4, 3 dwords", code: [0xf3, 0xa5], regs: { [ESI]: 0x2100, [EDI]: RS - 4, [ECX]: 3 },
    ctl: { [EDI]: RS - 12 },
    effect: (m) => ({ regs: { [ESI]: 0x210c, [EDI]: RS + 8, [ECX]: 0 }, writes: [[RS - 4, 4, m.rd(0x2100, 4)], [RS, 4, m.rd(0x2104, 4)], [RS + 4, 4, m.rd(0x2108, 4)]] }),
  });
  ops.push({
    name: "rep stosb across the 4 GiB wrap", code: [0xf3, 0xaa], regs: { [EDI]: 0xfffffffe, [ECX]: 4, [EAX]: DATA },
    ctl: { [EDI]: 0 },
    effect: () => ({ regs: { [EDI]: 2, [ECX]: 0 }, writes: [[0xfffffffe, 1, DATA], [0xffffffff, 1, DATA], [0, 1, DATA], [1, 1, DATA]] }),
  });
  ops.push({
    name: "lodsd at 0xfffffffe", code: [0xad], regs: { [ESI]: 0xfffffffe }, ctl: { [ESI]: 0 },
    effect: (m) => ({ regs: { [EAX]: m.rd(0xfffffffe, 4), [ESI]: 2 } }),
  });
  ops.push({
    name: "cmpsd of two outside-RAM dwords (equal: all ones)", code: [0xa7], regs: { [ESI]: 0xfffffff0, [EDI]: RS + 0x100 },
    ctl: { [ESI]: SCR, [EDI]: SCR },
    effect: () => ({ regs: { [ESI]: 0xfffffff4, [EDI]: RS + 0x104 }, flags: [ZF, ZF] }),
  });
  ops.push({
    name: "scasd at RS with EAX = all ones", code: [0xaf], regs: { [EDI]: RS, [EAX]: 0xffffffff }, ctl: { [EDI]: SCR },
    effect: () => ({ regs: { [EDI]: RS + 4 }, flags: [ZF, ZF] }),
  });
  // The stack.
  const pushPop = (name: string, esp: number, ctlEsp: number) => {
    ops.push({
      name: `push eax, ESP = ${hex(esp)}`, code: [0x50], regs: { [ESP]: esp, [EAX]: DATA }, ctl: { [ESP]: ctlEsp },
      effect: () => ({ regs: { [ESP]: (esp - 4) >>> 0 }, writes: [[(esp - 4) >>> 0, 4, DATA]] }),
    });
    ops.push({
      name: `pop ecx, ${name}`, code: [0x59], regs: { [ESP]: (esp - 4) >>> 0 }, ctl: { [ESP]: ctlEsp - 4 },
      effect: (m) => ({ regs: { [ESP]: esp, [ECX]: m.rd((esp - 4) >>> 0, 4) } }),
    });
  };
  pushPop("ESP near 0 (wraps)", 2, 0x10);
  pushPop("ESP = 0", 0, SCR);
  pushPop("ESP past RAM", RS + 0x100, SCR);
  pushPop("ESP straddling the RAM end", RS + 2, RS);
  pushPop("ESP at 0x80000000", 0x80000000, SCR);
  ops.push({
    name: "pusha with ESP past RAM", code: [0x60], regs: { [ESP]: RS + 0x40 }, ctl: { [ESP]: SCR },
    effect: () => ({ regs: { [ESP]: RS + 0x20 } }),
  });
  ops.push({
    name: "popa from past RAM: all ones", code: [0x61], regs: { [ESP]: RS + 0x20 }, ctl: { [ESP]: SCR - 0x20 },
    effect: () => ({ regs: { [EAX]: 0xffffffff, [ECX]: 0xffffffff, [EDX]: 0xffffffff, [EBX]: 0xffffffff, 5: 0xffffffff, [ESI]: 0xffffffff, [EDI]: 0xffffffff, [ESP]: RS + 0x40 } }),
  });
  // Segment bases that wrap.
  ops.push({
    name: "mov fs:[0x2000], eax with FS base 0xfffff000 (linear 0x1000)", code: [0x64, 0x89, 0x03], regs: { [EBX]: 0x2000, [EAX]: DATA },
    fs: 0xfffff000, ctlFs: 0, ctl: { [EBX]: 0x1000 },
    effect: () => ({ regs: {}, writes: [[0x1000, 4, DATA]] }),
  });
  ops.push({
    name: "mov ecx, gs:[1] with GS base 0xffffffff (linear 0)", code: [0x65, 0x8b, 0x0b], regs: { [EBX]: 1 },
    gs: 0xffffffff, ctlGs: 0,
    effect: (m) => ({ regs: { [ECX]: m.rd(0, 4) } }),
  });
  ops.push({
    name: "mov gs:[ebx], eax with GS base 0x80000000 + 0x80000010 (linear 0x10)", code: [0x65, 0x89, 0x03], regs: { [EBX]: 0x80000010, [EAX]: DATA },
    gs: 0x80000000, ctlGs: 0, ctl: { [EBX]: 0x10 },
    effect: () => ({ regs: {}, writes: [[0x10, 4, DATA]] }),
  });
  ops.push({
    name: "mov fs:[0], eax with FS base at the state alias", code: [0x64, 0x89, 0x03], regs: { [EBX]: 0, [EAX]: DATA },
    fs: alias.state, ctlFs: 0, ctl: { [EBX]: SCR },
    effect: () => ({ regs: {}, writes: [[alias.state, 4, DATA]] }),
  });
  ops.push({
    name: "mov ecx, fs:[0x10] with FS base at the dirty-map alias", code: [0x64, 0x8b, 0x4b, 0x10], regs: { [EBX]: 0 },
    fs: alias.dirty, ctlFs: 0, ctl: { [EBX]: SCR },
    effect: (m) => ({ regs: { [ECX]: m.rd((alias.dirty + 0x10) >>> 0, 4) } }),
  });
  // Read-modify-write forms.
  ops.push({
    name: "xchg [RS], eax", code: [0x87, 0x03], regs: { [EBX]: RS, [EAX]: DATA }, ctl: { [EBX]: SCR },
    effect: (m) => ({ regs: { [EAX]: m.rd(RS, 4) }, writes: [[RS, 4, DATA]] }),
  });
  ops.push({
    name: "add [0xfffffffe], eax (wraps)", code: [0x01, 0x03], regs: { [EBX]: 0xfffffffe, [EAX]: DATA }, ctl: { [EBX]: 0 },
    effect: (m) => ({ regs: {}, writes: [[0xfffffffe, 4, (m.rd(0xfffffffe, 4) + DATA) >>> 0]] }),
  });
  ops.push({
    name: "bts [0], ecx with ECX = 0x7fffffff (dword at 0x0ffffffc)", code: [0x0f, 0xab, 0x0b], regs: { [EBX]: 0, [ECX]: 0x7fffffff },
    ctl: { [ECX]: 0 },
    effect: () => ({ regs: {}, flags: [CF, CF] }),
  });
  ops.push({
    name: "bts [RS-4], ecx with ECX = -1 (dword at RS-8, in RAM)", code: [0x0f, 0xab, 0x0b], regs: { [EBX]: RS - 4, [ECX]: 0xffffffff },
    effect: (m) => ({ regs: {}, writes: [[RS - 8, 4, (m.rd(RS - 8, 4) | 0x80000000) >>> 0]], flags: [CF, m.rd(RS - 8, 4) >>> 31 ? CF : 0] }),
  });
  ops.push({
    name: "cmpxchg8b [0xfffffffc] (wraps; mismatch loads EDX:EAX)", code: [0x0f, 0xc7, 0x0b], regs: { [EBX]: 0xfffffffc, [EAX]: 1, [EDX]: 2 },
    ctl: { [EBX]: 0xfffffffc },
    effect: (m) => ({ regs: { [EAX]: m.rd(0xfffffffc, 4), [EDX]: m.rd(0, 4) }, writes: [[0xfffffffc, 4, m.rd(0xfffffffc, 4)], [0, 4, m.rd(0, 4)]], flags: [ZF, 0] }),
  });
  return ops;
}

// ---- running the ops ------------------------------------------------------------
interface RunResult {
  before: Uint8Array;
  after: Uint8Array;
  mem: CoreMem;
  model: Model;
  problems: string[];
}

async function runOps(kind: EngineKind, variant: "hostile" | "control", extraTouches: number[] = []): Promise<RunResult> {
  const e = await freshEngine(kind);
  const init = pattern();
  e.ram.set(init);
  const mem = coreMem(e);
  const ramBase = mem.ram[0];
  const alias = {
    state: (mem.state - ramBase) >>> 0,
    dirty: (mem.dirty[0] - ramBase) >>> 0,
    zero: (0 - ramBase) >>> 0,
    pad: RS + 8,
  };
  const ops = hostileOps(alias);
  // Lay the ops out one after another; the control run has a tail that stores
  // into each RAM line the hostile run stored into (mov [ebx], al).
  const at: number[] = [];
  const code: number[] = [];
  for (const op of ops) { at.push(CODE + code.length); code.push(...op.code); }
  const touchAt = CODE + code.length;
  code.push(0x88, 0x03);
  e.writeMem(CODE, Uint8Array.from(code));
  const model = new Model(e.ram.subarray(0, RS));
  new DirtyTracker(e).register("setup").take(); // start from an empty dirty map
  const before = mem.bytes();
  const problems: string[] = [];

  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const regs = variant === "hostile" ? op.regs : { ...op.regs, ...(op.ctl ?? {}) };
    for (const [r, v] of Object.entries(regs)) e.setReg(Number(r), v);
    e.setSegBase(SEG_FS, variant === "hostile" ? op.fs ?? 0 : op.ctlFs ?? op.fs ?? 0);
    e.setSegBase(SEG_GS, variant === "hostile" ? op.gs ?? 0 : op.ctlGs ?? op.gs ?? 0);
    e.eflags = 0x2;
    e.eip = at[i];
    const regsBefore: number[] = [];
    for (let r = 0; r < 8; r++) regsBefore.push(e.getReg(r));
    const eff = variant === "hostile" ? op.effect(model, regs) : undefined;
    const x = e.step();
    if (variant === "control") continue;
    if (x.reason !== ExitReason.Budget || x.executed < 1) problems.push(`${op.name}: exit ${JSON.stringify(x)}`);
    if (e.eip !== at[i] + op.code.length) problems.push(`${op.name}: EIP ${hex(e.eip)}`);
    for (const [a, n, v] of eff!.writes ?? []) model.wr(a, n, v);
    for (let r = 0; r < 8; r++) {
      const want = r in eff!.regs ? eff!.regs[r] >>> 0 : regsBefore[r];
      if (e.getReg(r) !== want) problems.push(`${op.name}: reg ${r} = ${hex(e.getReg(r))}, want ${hex(want)}`);
    }
    if (eff!.flags) {
      const [mask, val] = eff!.flags;
      if ((e.eflags & mask) !== val) problems.push(`${op.name}: flags ${hex(e.eflags, 3)} & ${hex(mask, 3)} != ${hex(val, 3)}`);
    }
  }
  if (variant === "control") {
    for (const a of extraTouches) {
      e.setReg(EBX, a);
      e.eip = touchAt;
      e.step();
    }
  }
  const after = mem.bytes();
  return { before, after, mem, model, problems };
}

describe.each(ENGINE_KINDS)("isolation (%s)", (kind) => {
  it("guest accesses at and beyond the RAM edges follow the memory rules and never touch core state", async () => {
    const h = await runOps(kind, "hostile");
    expect(h.problems).toEqual([]);

    // RAM: exactly what the model says the guest wrote.
    const m = h.mem;
    const ram = h.after.subarray(m.ram[0], m.ram[1]);
    const ramDiff: string[] = [];
    for (let i = 0; i < RS && ramDiff.length < 10; i++) {
      if (ram[i] !== h.model.ram[i]) ramDiff.push(`ram[${hex(i)}] = ${hex(ram[i], 2)}, want ${hex(h.model.ram[i], 2)}`);
    }
    expect(ramDiff).toEqual([]);

    // The control run: same code, harmless addresses, plus stores into every
    // RAM line the hostile run stored into.
    const touches = [...h.model.written].flatMap((p) => Array.from({ length: 16 }, (_, k) => p * 4096 + k * 256));
    const c = await runOps(kind, "control", touches);
    const bookkeeping = new Set(changedOutsideRam(c.mem, c.before, c.after));

    // Outside RAM, classify every changed byte.
    expect(h.after.length).toBe(h.before.length);
    const bad: string[] = [];
    for (const i of changedOutsideRam(m, h.before, h.after)) {
      const desc = `offset ${hex(i)}: ${hex(h.before[i], 2)} -> ${hex(h.after[i], 2)}`;
      if (i >= m.pad[0] && i < m.pad[1]) { bad.push(`RAM padding ${desc}`); continue; }
      if (i >= m.state && i < m.state + 4 * m.stateWords) {
        const w = (i - m.state) >>> 2;
        if (!MUTABLE_WORDS.has(w)) bad.push(`state word ${w} ${desc}`);
        continue;
      }
      if (i >= m.dirty[0] && i < m.dirty[1]) {
        const p = i - m.dirty[0];
        if (!h.model.written.has(p) || h.after[i] !== 1) bad.push(`dirty byte for page ${hex(p, 5)} ${desc}`);
        continue;
      }
      if (!bookkeeping.has(i)) bad.push(`core memory ${desc}`);
      if (bad.length > 20) break;
    }
    expect(bad).toEqual([]);

    // Every page the guest wrote is marked; the padding after RAM is still all ones.
    for (const p of h.model.written) expect(h.after[m.dirty[0] + p], `dirty page ${p}`).toBe(1);
    expect(Array.from(h.after.subarray(m.pad[0], m.pad[1]))).toEqual(new Array(16).fill(0xff));
  });

  it("code fetch outside RAM is #UD at that EIP, and an instruction whose tail runs past RAM fetches all ones", async () => {
    // Each EIP on a fresh engine, so that one failure (a wasm trap) does not hide the
    // others. Nothing executes, so nothing outside RAM but exit-state words may change.
    const problems: string[] = [];
    for (const eip of [RS, RS + 1, RS + 0x1000, 0x80000000, 0xfffffff0, 0xfffffffc, 0xffffffff]) {
      const f = await freshEngine(kind);
      const fm = coreMem(f);
      f.eip = eip;
      const before = fm.bytes();
      try {
        const x = f.step();
        if (x.reason !== ExitReason.Fault || x.vector !== 6 || x.executed !== 0 || f.eip !== eip || f.icount !== 0n) {
          problems.push(`EIP ${hex(eip)}: ${JSON.stringify(x)}, EIP after ${hex(f.eip)}`);
        }
      } catch (err) {
        problems.push(`EIP ${hex(eip)}: step() threw ${(err as Error).message}`);
        continue;
      }
      const after = fm.bytes();
      for (const i of changedOutsideRam(fm, before, after)) {
        const inState = i >= fm.state && i < fm.state + 4 * fm.stateWords && MUTABLE_WORDS.has((i - fm.state) >>> 2);
        if (!inState) { problems.push(`EIP ${hex(eip)}: core memory offset ${hex(i)} changed`); break; }
      }
    }
    expect(problems).toEqual([]);

    const e = await freshEngine(kind);
    // mov eax, imm32 whose opcode is the last RAM byte: the immediate reads as 0xffffffff.
    e.writeMem(RS - 1, Uint8Array.of(0xb8));
    e.eip = RS - 1;
    expect(e.step()).toMatchObject({ reason: ExitReason.Budget, executed: 1 });
    expect(hex(e.getReg(EAX))).toBe(hex(0xffffffff));
    expect(e.eip).toBe(RS + 4);
    expect(e.step()).toMatchObject({ reason: ExitReason.Fault, vector: 6 });
    // A jump out of RAM, then a RET to an all-ones return address popped from outside RAM.
    e.writeMem(0x1000, Uint8Array.of(0xff, 0xe0)); // jmp eax
    e.eip = 0x1000;
    e.setReg(EAX, 0x80000000);
    expect(e.run(10)).toMatchObject({ reason: ExitReason.Fault, vector: 6, executed: 1 });
    expect(e.eip).toBe(0x80000000);
    e.writeMem(0x1000, Uint8Array.of(0xc3)); // ret
    e.eip = 0x1000;
    e.setReg(ESP, RS + 0x100);
    expect(e.run(10)).toMatchObject({ reason: ExitReason.Fault, vector: 6, executed: 1 });
    expect(e.eip).toBe(0xffffffff);
    expect(e.getReg(ESP)).toBe(RS + 0x104);
  });

  describe("MMIO", () => {
    const MM = 0xe0000000;

    it("a write exits after the instruction retired, with (addr, size, value), and touches no RAM", async () => {
      const e = await freshEngine(kind);
      e.addMmio(MM, MM + 0x1000);
      const ramBefore = e.ram.slice();
      e.writeMem(0x1000, Uint8Array.of(0x89, 0x03, 0x66, 0x89, 0x4b, 0x06, 0x88, 0x53, 0x09, 0xf4)); // mov [ebx],eax; mov [ebx+6],cx; mov [ebx+9],dl
      ramBefore.set(e.ram.subarray(0x1000, 0x100a), 0x1000);
      e.eip = 0x1000;
      e.setReg(EBX, MM + 0x10); e.setReg(EAX, 0x11223344); e.setReg(ECX, 0x5566); e.setReg(EDX, 0x77);
      const want = [
        { addr: MM + 0x10, size: 4, value: 0x11223344, eip: 0x1002 },
        { addr: MM + 0x16, size: 2, value: 0x5566, eip: 0x1006 },
        { addr: MM + 0x19, size: 1, value: 0x77, eip: 0x1009 },
      ];
      for (const [k, w] of want.entries()) {
        const x = e.run(100);
        expect(x).toMatchObject({ reason: ExitReason.MmioWrite, executed: 1 });
        expect(x.mmioWrites).toEqual([{ addr: w.addr, size: w.size, value: w.value }]);
        expect(e.eip).toBe(w.eip);
        expect(e.icount).toBe(BigInt(k + 1));
      }
      expect(e.run(100).reason).toBe(ExitReason.Hlt);
      expect(Buffer.from(e.ram).equals(Buffer.from(ramBefore))).toBe(true);
    });

    it("a read exits before the instruction (EIP on it, nothing retired); answer() completes it", async () => {
      const e = await freshEngine(kind);
      e.addMmio(MM, MM + 0x1000);
      // add ecx, [ebx+4]; movzx edx, word [ebx+8]
      e.writeMem(0x1000, Uint8Array.of(0x03, 0x4b, 0x04, 0x0f, 0xb7, 0x53, 0x08, 0xf4));
      e.eip = 0x1000;
      e.setReg(EBX, MM); e.setReg(ECX, 5);
      let x = e.run(100);
      expect(x).toMatchObject({ reason: ExitReason.MmioRead, addr: MM + 4, size: 4, executed: 0 });
      expect(e.eip).toBe(0x1000);
      expect(e.getReg(ECX)).toBe(5);
      e.answer(0x100);
      x = e.run(100);
      expect(e.getReg(ECX)).toBe(0x105);
      expect(x).toMatchObject({ reason: ExitReason.MmioRead, addr: MM + 8, size: 2, executed: 1 });
      expect(e.eip).toBe(0x1003);
      e.answer(0xabcd);
      expect(e.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 2 });
      expect(e.getReg(EDX)).toBe(0xabcd);
    });

    it("a read-modify-write of MMIO: a read exit, then the write exit after it retires, counted once", async () => {
      const e = await freshEngine(kind);
      e.addMmio(MM, MM + 0x1000);
      e.writeMem(0x1000, Uint8Array.of(0x01, 0x43, 0x08, 0xf4)); // add [ebx+8], eax
      e.eip = 0x1000;
      e.setReg(EBX, MM); e.setReg(EAX, 0x10);
      expect(e.run(100)).toMatchObject({ reason: ExitReason.MmioRead, addr: MM + 8, size: 4, executed: 0 });
      e.answer(0xfffffff8);
      const x = e.run(100);
      expect(x).toMatchObject({ reason: ExitReason.MmioWrite, executed: 1 });
      expect(x.mmioWrites).toEqual([{ addr: MM + 8, size: 4, value: 0x8 }]);
      expect(e.eflags & CF).toBe(CF);
      expect(e.icount).toBe(1n);
    });

    it("PUSHA onto an MMIO stack reports all eight writes, in order (SDM PUSHA)", async () => {
      const e = await freshEngine(kind);
      e.addMmio(MM, MM + 0x1000);
      e.writeMem(0x1000, Uint8Array.of(0x60, 0xf4));
      e.eip = 0x1000;
      e.setReg(ESP, MM + 0x100);
      const vals = [0x10, 0x11, 0x12, 0x13, MM + 0x100, 0x15, 0x16, 0x17];
      vals.forEach((v, r) => { if (r !== ESP) e.setReg(r, v); });
      const x = e.run(100);
      expect(x).toMatchObject({ reason: ExitReason.MmioWrite, executed: 1 });
      expect(x.mmioWrites).toEqual(vals.map((v, i) => ({ addr: MM + 0xfc - 4 * i, size: 4, value: v })));
      expect(e.getReg(ESP)).toBe(MM + 0xe0);
    });

    it("an instruction with two MMIO reads (CMPSD) completes once the host has answered each read", async () => {
      const e = await freshEngine(kind);
      e.addMmio(MM, MM + 0x1000);
      e.writeMem(0x1000, Uint8Array.of(0xa7, 0xf4)); // cmpsd
      e.eip = 0x1000;
      e.setReg(ESI, MM + 0x10); e.setReg(EDI, MM + 0x20);
      // A device whose register at address a reads as a & 0xff.
      const asked: number[] = [];
      let x = e.run(100);
      while (x.reason === ExitReason.MmioRead && asked.length < 8) {
        expect(x.executed).toBe(0);
        expect(e.eip).toBe(0x1000);
        asked.push(x.addr!);
        e.answer(x.addr! & 0xff);
        x = e.run(100);
      }
      expect(asked.length, `read exits at ${asked.map((a) => hex(a)).join(", ")}`).toBeLessThanOrEqual(2);
      expect(new Set(asked)).toEqual(new Set([MM + 0x10, MM + 0x20]));
      expect(x).toMatchObject({ reason: ExitReason.Hlt, executed: 2 });
      // [ESI] - [EDI] = 0x10 - 0x20: borrow, not zero.
      expect(e.eflags & (CF | ZF)).toBe(CF);
      expect(e.getReg(ESI)).toBe(MM + 0x14);
      expect(e.getReg(EDI)).toBe(MM + 0x24);
    });

    it("an MMIO read exit leaves no partial effect: ENTER 8, 2 reading its frame link from MMIO", async () => {
      const e = await freshEngine(kind);
      e.addMmio(MM, MM + 0x1000);
      e.writeMem(0x1000, Uint8Array.of(0xc8, 0x08, 0x00, 0x02, 0xf4)); // enter 8, 2
      e.eip = 0x1000;
      e.setReg(ESP, 0x8000); e.setReg(5, MM + 0x100);
      const x = e.run(100);
      expect(x).toMatchObject({ reason: ExitReason.MmioRead, addr: MM + 0xfc, size: 4, executed: 0 });
      // Aborted: as if it had not started.
      expect(hex(e.getReg(ESP))).toBe(hex(0x8000));
      expect(hex(e.getReg(5))).toBe(hex(MM + 0x100));
      expect(e.eip).toBe(0x1000);
      e.answer(0x12345678);
      expect(e.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 2 });
      // SDM ENTER, level 2: push EBP; push [EBP-4]; push the frame pointer; EBP = frame; ESP -= 8.
      expect(hex(e.getReg(5))).toBe(hex(0x7ffc));
      expect(hex(e.getReg(ESP))).toBe(hex(0x7fec));
      const stack = e.readMem(0x7ff4, 12);
      const dw = (i: number) => (stack[i] | (stack[i + 1] << 8) | (stack[i + 2] << 16) | (stack[i + 3] << 24)) >>> 0;
      expect([dw(8), dw(4), dw(0)].map((v) => hex(v))).toEqual([hex(MM + 0x100), hex(0x12345678), hex(0x7ffc)]);
    });

    it("an access next to a range but outside it is ordinary unassigned memory", async () => {
      const e = await freshEngine(kind);
      e.addMmio(MM, MM + 0x1000);
      e.writeMem(0x1000, Uint8Array.of(0x8b, 0x03, 0x89, 0x03, 0xf4)); // mov eax, [ebx]; mov [ebx], eax
      e.eip = 0x1000;
      e.setReg(EBX, MM + 0x1000);
      expect(e.run(100)).toMatchObject({ reason: ExitReason.Hlt, executed: 3 });
      expect(e.getReg(EAX)).toBe(0xffffffff);
    });
  });
});
