// Engine over either build of the core: both export the same functions
// (CoreExports) and differ only in how guest RAM and the dirty map are reached.

import type { CoreExports } from "./core-exports.js";
import { ExitReason, type ArchState, type Engine, type EngineKind, type Exit, type InterruptResult, type MmioWrite } from "./engine.js";

const INTERRUPT_RESULTS: InterruptResult[] = ["blocked", "delivered", "triple-fault", "no-idt"];
import {
  S_EIP, S_SEL, S_BASE, S_ICOUNT_LO, S_ICOUNT_HI, S_EXIT_ADDR, S_EXIT_SIZE, S_EXIT_VALUE,
  S_EXIT_VECTOR, S_EXIT_ERROR, S_EXIT_NEXT, S_EXECUTED, S_MMIOW_COUNT, S_MMIOW, S_HALTED,
  S_LIMIT, S_ATTR, S_CR0, S_GDT_BASE, S_GDT_LIMIT, S_IDT_BASE, S_IDT_LIMIT, S_SHADOW, S_IRQ_PENDING,
  S_IDT_SET, S_DELIVERING, S_FIRST_VECTOR, S_PENDING_EXIT,
} from "../../assembly/state.js";

export class CoreEngine implements Engine {
  private live: CoreExports<unknown> | null;
  private readonly ramView: Uint8Array;
  private readonly dirty: Uint8Array;
  private readonly release: () => void;

  /**
   * `lease` ties the core to this engine (core-pool.ts): it returns what
   * dispose() calls to hand the core back.
   */
  constructor(
    readonly kind: EngineKind,
    core: CoreExports<unknown>,
    readonly ramSize: number,
    views: { ram: Uint8Array; dirty: Uint8Array },
    lease?: (owner: object) => () => void,
  ) {
    this.live = core;
    this.ramView = views.ram;
    this.dirty = views.dirty;
    this.release = lease ? lease(this) : () => {};
  }

  /** The core, while this engine owns it. */
  private get core(): CoreExports<unknown> {
    const c = this.live;
    if (c === null) throw new Error(`this ${this.kind} engine was disposed: its core now belongs to another engine (create a new one)`);
    return c;
  }
  get ram(): Uint8Array {
    this.core;
    return this.ramView;
  }
  get disposed(): boolean { return this.live === null; }

  dispose(): void {
    if (this.live === null) return;
    this.live = null;
    this.release();
  }

  reset(): void { this.core.reset(); this.lastReason = ExitReason.Budget; }
  getReg(i: number): number { return this.core.getState(i & 7) >>> 0; }
  setReg(i: number, v: number): void { this.core.setState(i & 7, v | 0); }
  get eip(): number { return this.core.getState(S_EIP) >>> 0; }
  set eip(v: number) { this.core.setState(S_EIP, v | 0); }
  get eflags(): number { return this.core.getEflags() >>> 0; }
  set eflags(v: number) { this.core.setEflags(v | 0); }
  getSegSelector(seg: number): number { return this.core.getState(S_SEL + seg) & 0xffff; }
  setSegSelector(seg: number, sel: number): void { this.core.setState(S_SEL + seg, sel & 0xffff); }
  getSegBase(seg: number): number { return this.core.getState(S_BASE + seg) >>> 0; }
  setSegBase(seg: number, base: number): void { this.core.setState(S_BASE + seg, base | 0); }

  readMem(addr: number, len: number): Uint8Array {
    checkRange(addr, len, this.ramSize);
    return this.ram.slice(addr, addr + len);
  }
  writeMem(addr: number, bytes: Uint8Array): void {
    checkRange(addr, bytes.length, this.ramSize);
    this.ram.set(bytes, addr);
    // Dirty pages, and cached decodes of code in those bytes retired.
    this.core.hostWrote(addr, bytes.length);
  }

  run(budget: number): Exit {
    if (!Number.isInteger(budget) || budget < 1 || budget > 0x7fffffff) {
      throw new RangeError(`run: budget must be an integer in [1, 2^31), got ${budget}`);
    }
    return this.exitInfo(this.core.run(budget));
  }
  step(): Exit { return this.exitInfo(this.core.step()); }
  answer(a: number, b = 0, c = 0, d = 0): void {
    if (this.lastReason === ExitReason.MmioRead) {
      if (this.core.answerMmio(a | 0) < 0) throw new RangeError("answer: too many MMIO reads in one instruction");
    } else {
      this.core.setAnswer(a | 0, b | 0, c | 0, d | 0);
    }
  }

  get icount(): bigint {
    const lo = BigInt(this.core.getState(S_ICOUNT_LO) >>> 0);
    const hi = BigInt(this.core.getState(S_ICOUNT_HI) >>> 0);
    return (hi << 32n) | lo;
  }
  setIcount(v: bigint): void {
    this.core.setState(S_ICOUNT_LO, Number(BigInt.asIntN(32, v)));
    this.core.setState(S_ICOUNT_HI, Number(BigInt.asIntN(32, v >> 32n)));
  }

  addMmio(start: number, end: number): void {
    if (this.core.addMmio(start | 0, end | 0) < 0) {
      throw new RangeError(`addMmio: cannot add [0x${start.toString(16)}, 0x${end.toString(16)}) (empty range or 8 ranges already)`);
    }
  }
  dirtyMap(): Uint8Array { this.core; return this.dirty; }

  archState(): ArchState {
    const w = (i: number) => this.core.getState(i) >>> 0;
    const words = (at: number, n: number) => Array.from({ length: n }, (_, i) => w(at + i));
    return {
      regs: words(0, 8), eip: this.eip, eflags: this.eflags,
      segSel: words(S_SEL, 6), segBase: words(S_BASE, 6), segLimit: words(S_LIMIT, 6), segAttr: words(S_ATTR, 6),
      cr: words(S_CR0, 4), gdt: [w(S_GDT_BASE), w(S_GDT_LIMIT)], idt: [w(S_IDT_BASE), w(S_IDT_LIMIT)],
      icount: this.icount.toString(), halted: w(S_HALTED), shadow: w(S_SHADOW), irqPending: w(S_IRQ_PENDING),
      idtLoaded: w(S_IDT_SET), delivering: w(S_DELIVERING), firstVector: w(S_FIRST_VECTOR), pendingExit: w(S_PENDING_EXIT),
    };
  }

  setArchState(s: ArchState): void {
    checkArchState(s);
    const c = this.core;
    const put = (at: number, words: readonly number[]) => words.forEach((v, i) => c.setState(at + i, v | 0));
    put(0, s.regs);
    c.setState(S_EIP, s.eip | 0);
    put(S_SEL, s.segSel);
    put(S_BASE, s.segBase);
    put(S_LIMIT, s.segLimit);
    put(S_ATTR, s.segAttr);
    put(S_CR0, s.cr);
    put(S_GDT_BASE, [s.gdt[0]]); put(S_GDT_LIMIT, [s.gdt[1]]);
    put(S_IDT_BASE, [s.idt[0]]); put(S_IDT_LIMIT, [s.idt[1]]);
    this.setIcount(BigInt(s.icount));
    c.setState(S_HALTED, s.halted); c.setState(S_SHADOW, s.shadow); c.setState(S_IRQ_PENDING, s.irqPending);
    c.setState(S_IDT_SET, s.idtLoaded); c.setState(S_DELIVERING, s.delivering);
    c.setState(S_FIRST_VECTOR, s.firstVector | 0); c.setState(S_PENDING_EXIT, s.pendingExit);
    c.setEflags(s.eflags | 0);
    c.stateLoaded();
    this.lastReason = ExitReason.Budget;
  }

  get interruptible(): boolean { return this.core.interruptible() !== 0; }
  get halted(): boolean { return this.core.getState(S_HALTED) !== 0; }
  raiseInterrupt(vector: number): InterruptResult {
    if (!Number.isInteger(vector) || vector < 0 || vector > 255) throw new RangeError(`raiseInterrupt: vector must be 0..255, got ${vector}`);
    return INTERRUPT_RESULTS[this.core.raiseInterrupt(vector)];
  }
  setIrqPending(pending: boolean): void { this.core.setIrqPending(pending ? 1 : 0); }

  private lastReason: ExitReason = ExitReason.Budget;

  private exitInfo(reason: ExitReason): Exit {
    this.lastReason = reason;
    const c = this.core;
    const e: Exit = { reason, executed: c.getState(S_EXECUTED) };
    switch (reason) {
      case ExitReason.In:
        e.port = c.getState(S_EXIT_ADDR) & 0xffff;
        e.size = c.getState(S_EXIT_SIZE);
        break;
      case ExitReason.Out:
        e.port = c.getState(S_EXIT_ADDR) & 0xffff;
        e.size = c.getState(S_EXIT_SIZE);
        e.value = c.getState(S_EXIT_VALUE) >>> 0;
        break;
      case ExitReason.MmioRead:
        e.addr = c.getState(S_EXIT_ADDR) >>> 0;
        e.size = c.getState(S_EXIT_SIZE);
        break;
      case ExitReason.MmioWrite: {
        const n = c.getState(S_MMIOW_COUNT);
        const w: MmioWrite[] = [];
        for (let i = 0; i < n; i++) {
          w.push({
            addr: c.getState(S_MMIOW + 3 * i) >>> 0,
            size: c.getState(S_MMIOW + 3 * i + 1),
            value: c.getState(S_MMIOW + 3 * i + 2) >>> 0,
          });
        }
        e.mmioWrites = w;
        break;
      }
      case ExitReason.Cpuid:
        e.leaf = c.getState(S_EXIT_ADDR) >>> 0;
        e.subleaf = c.getState(S_EXIT_SIZE) >>> 0;
        break;
      case ExitReason.Rdrand:
      case ExitReason.Rdseed:
        e.size = c.getState(S_EXIT_SIZE);
        break;
      case ExitReason.Int:
        e.vector = c.getState(S_EXIT_VECTOR);
        e.nextEip = c.getState(S_EXIT_NEXT) >>> 0;
        break;
      case ExitReason.Fault:
      case ExitReason.TripleFault:
        e.vector = c.getState(S_EXIT_VECTOR);
        e.errorCode = c.getState(S_EXIT_ERROR);
        break;
      default:
        break;
    }
    return e;
  }
}

// The shape of ArchState, for setArchState's checks: array fields and their
// lengths, and the 0/1 flags.
const WORD_ARRAYS: [keyof ArchState, number][] = [
  ["regs", 8], ["segSel", 6], ["segBase", 6], ["segLimit", 6], ["segAttr", 6], ["cr", 4], ["gdt", 2], ["idt", 2],
];
const WORDS: (keyof ArchState)[] = ["eip", "eflags", "firstVector", "delivering"];
const BITS: (keyof ArchState)[] = ["halted", "shadow", "irqPending", "idtLoaded"];

const isWord = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

function checkArchState(s: ArchState): void {
  const bad = (field: string, want: string, got: unknown) => {
    const shown = typeof got === "string" ? JSON.stringify(got) : Array.isArray(got) ? `an array of ${got.length}` : String(got);
    throw new TypeError(`setArchState: ${field} must be ${want}, got ${shown}`);
  };
  if (s === null || typeof s !== "object") bad("the state", "an object (from archState())", s);
  for (const [k, n] of WORD_ARRAYS) {
    const a = s[k];
    if (!Array.isArray(a) || a.length !== n) bad(k, `an array of ${n} unsigned 32-bit words`, a);
    (a as unknown[]).forEach((v, i) => { if (!isWord(v)) bad(`${k}[${i}]`, "an unsigned 32-bit integer", v); });
  }
  for (const k of WORDS) if (!isWord(s[k])) bad(k, "an unsigned 32-bit integer", s[k]);
  for (const k of BITS) if (s[k] !== 0 && s[k] !== 1) bad(k, "0 or 1", s[k]);
  for (let i = 0; i < 6; i++) if (s.segSel[i] > 0xffff) bad(`segSel[${i}]`, "a 16-bit selector", s.segSel[i]);
  if (typeof s.icount !== "string" || !/^(0|[1-9][0-9]*)$/.test(s.icount) || BigInt(s.icount) >= 1n << 64n) {
    bad("icount", "a decimal string of an unsigned 64-bit count", s.icount);
  }
  if (!isWord(s.pendingExit) || (s.pendingExit !== 0 && ExitReason[s.pendingExit] === undefined)) {
    bad("pendingExit", "0 or an exit reason", s.pendingExit);
  }
}

function checkRange(addr: number, len: number, size: number): void {
  if (!Number.isInteger(addr) || !Number.isInteger(len) || addr < 0 || len < 0 || addr + len > size) {
    throw new RangeError(`guest memory access [0x${addr.toString(16)}, +${len}) is outside RAM (0..0x${size.toString(16)})`);
  }
}
