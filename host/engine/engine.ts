// The one interface every CPU engine implements. Tests, benchmarks, the
// machine and the fault-tolerance layers talk to this, never to a build.

export type EngineKind = "wasm" | "ts";
export const ENGINE_KINDS: readonly EngineKind[] = ["wasm", "ts"];

/** Why run()/step() returned (the values of assembly/state.ts EXIT_*). */
export enum ExitReason {
  Budget = 0,
  Hlt = 1,
  In = 2,
  Out = 3,
  MmioRead = 4,
  MmioWrite = 5,
  Rdtsc = 6,
  Rdrand = 7,
  Rdseed = 8,
  Cpuid = 9,
  Int = 10,
  Fault = 11,
  /** A fault while delivering a double fault: the machine is dead until reset (vector: first exception, errorCode: last). */
  TripleFault = 12,
  /** An interrupt the host is holding (setIrqPending) can be delivered now; the last instruction retired. */
  IrqWindow = 13,
}

/** Architectural CPU state as unsigned 32-bit words (icount as a decimal string). */
export interface ArchState {
  regs: number[];
  eip: number;
  eflags: number;
  /** ES CS SS DS FS GS. */
  segSel: number[];
  segBase: number[];
  segLimit: number[];
  segAttr: number[];
  cr: number[];
  gdt: [number, number];
  idt: [number, number];
  icount: string;
  halted: number;
  shadow: number;
  irqPending: number;
  idtLoaded: number;
  delivering: number;
  firstVector: number;
  pendingExit: number;
}

/** What raiseInterrupt() did. */
export type InterruptResult = "delivered" | "blocked" | "no-idt" | "triple-fault";

export const REG_NAMES = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;
export type RegName = (typeof REG_NAMES)[number];
export const SEG_NAMES = ["es", "cs", "ss", "ds", "fs", "gs"] as const;

export interface MmioWrite {
  addr: number;
  size: number;
  value: number;
}

/** What a run()/step() call ended with. Fields not meaningful for a reason are absent. */
export interface Exit {
  reason: ExitReason;
  /** Instructions retired by this call (each REP iteration is one). */
  executed: number;
  /** IN/OUT/INS/OUTS: the port. */
  port?: number;
  /** IN/OUT: 1, 2 or 4; MMIO: the access size. */
  size?: number;
  /** OUT: the value written. */
  value?: number;
  /** MMIO read: the address. */
  addr?: number;
  /** MMIO write(s) made by the retired instruction, in order. */
  mmioWrites?: MmioWrite[];
  /** CPUID: EAX and ECX in. */
  leaf?: number;
  subleaf?: number;
  /** Fault or INT n: the vector; error code or -1. */
  vector?: number;
  errorCode?: number;
  /** INT n: EIP of the following instruction. */
  nextEip?: number;
}

/**
 * A CPU with its guest RAM. Input exits (IN, MMIO read, RDTSC, RDRAND/RDSEED,
 * CPUID) leave EIP on the instruction: call answer() and run again, and the
 * instruction completes with the value. Output exits (OUT, MMIO write, HLT)
 * come after the instruction retired.
 */
export interface Engine {
  readonly kind: EngineKind;
  /** Guest RAM size in bytes. */
  readonly ramSize: number;
  /** Zero-copy view of guest RAM. Writes through it are not dirty-tracked: use writeMem. */
  readonly ram: Uint8Array;

  /** Registers to the flat 32-bit power-on state; RAM and MMIO ranges are kept. */
  reset(): void;
  /** General register i (0..7 = EAX..EDI) as an unsigned 32-bit number. */
  getReg(i: number): number;
  setReg(i: number, v: number): void;
  eip: number;
  /** EFLAGS with every lazy flag computed. */
  eflags: number;
  getSegSelector(seg: number): number;
  setSegSelector(seg: number, sel: number): void;
  getSegBase(seg: number): number;
  /** Sets a segment base (the host may set FS and GS; the others stay 0 in the flat model). */
  setSegBase(seg: number, base: number): void;

  /** Copies len bytes of guest memory starting at a guest physical address (RAM only). */
  readMem(addr: number, len: number): Uint8Array;
  /** Writes bytes into guest RAM, marking the pages dirty. */
  writeMem(addr: number, bytes: Uint8Array): void;

  /** Retires up to `budget` instructions (1 ≤ budget < 2^31); stops early on an exit. */
  run(budget: number): Exit;
  /** Executes one whole architectural instruction, all REP iterations included. */
  step(): Exit;
  /** Supplies the value for the last input exit (RDTSC: lo, hi; RDRAND: value, ok; CPUID: eax, ebx, ecx, edx). */
  answer(a: number, b?: number, c?: number, d?: number): void;
  /** Retired-instruction count since reset. */
  readonly icount: bigint;
  setIcount(v: bigint): void;

  /** True when an external interrupt could be delivered now (IF set, no STI/MOV SS shadow). */
  readonly interruptible: boolean;
  /**
   * True after a HLT exit until an interrupt is delivered or run() is called
   * again. The CPU waits for an interrupt by the host not running it: run()
   * after HLT simply goes on with the next instruction.
   */
  readonly halted: boolean;
  /**
   * Delivers external interrupt `vector` through the guest's IDT now, between
   * instructions (no instruction counted). "blocked": IF clear or in a shadow —
   * hold it, and call setIrqPending(true) so run() stops (IrqWindow) as soon as
   * it can be delivered. "no-idt": the guest never loaded an IDT.
   */
  raiseInterrupt(vector: number): InterruptResult;
  setIrqPending(pending: boolean): void;

  /** Registers guest physical [start, end) as MMIO (at most 8 ranges). */
  addMmio(start: number, end: number): void;

  /**
   * Every piece of architectural CPU state, by name: what a state hash or a
   * snapshot must cover (registers, EFLAGS, segment selectors, bases, limits
   * and attributes, control registers, descriptor tables, the instruction
   * count, and the interrupt state: halted, shadow, the host's pending flag).
   * Transient exit bookkeeping is left out.
   */
  archState(): ArchState;
  /**
   * The exact inverse of archState(): every field is loaded (EFLAGS as a
   * whole, leaving no lazy flag state behind) and no cached decode survives.
   * RAM is not part of it: load that with writeMem. Throws a TypeError naming
   * the field when `s` is not a well-formed ArchState.
   */
  setArchState(s: ArchState): void;

  /** The core's dirty-page bytemap (one byte per 4 KiB page). Only DirtyTracker reads and clears it. */
  dirtyMap(): Uint8Array;

  /**
   * Releases the core (its state, RAM and caches) for reuse by the next engine
   * of this kind. Afterwards every method throws, and views taken earlier
   * (ram, dirtyMap()) must not be used: they may show another engine's
   * memory. An engine that is dropped without dispose() releases its core
   * when it is garbage-collected. Calling it again does nothing.
   */
  dispose(): void;
}
