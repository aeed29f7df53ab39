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

function checkRange(addr: number, len: number, size: number): void {
  if (!Number.isInteger(addr) || !Number.isInteger(len) || addr < 0 || len < 0 || addr + len > size) {
    throw new RangeError(`guest memory access [0x${addr.toString(16)}, +${len}) is outside RAM (0..0x${size.toString(16)})`);
  }
}
