// A minimal machine for running one ELF guest on an Engine, before there are
// devices: the debug console (port 0xE9) for output, isa-debug-exit (port
// 0xF4) to stop with a status, and deterministic answers for the inputs the
// CPU asks the host for (CPUID, RDTSC, RDRAND/RDSEED, IN). Everything a guest
// observes depends only on the image and the instruction count, so two runs
// of the same image, on either engine, retire the same instructions and
// print the same bytes.

import { ExitReason, type Engine, type Exit } from "../engine/engine.js";
import { loadElf, MULTIBOOT_BOOTLOADER_MAGIC, type ElfImage } from "./elf.js";

export const DEBUGCON_PORT = 0xe9;
export const EXIT_PORT = 0xf4;
/** The smallest slice run() is given between checks. */
export const MIN_SLICE = 100_000;
export const DEFAULT_SLICE = 1_000_000;

const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4;
const EFLAGS_IF = 1 << 9;

/** Why the run stopped. */
export type StopReason =
  /** The guest wrote its exit status to port 0xF4. */
  | "exit"
  /** HLT with no interrupt that could wake it (interrupts off, or no interrupt sources yet). */
  | "halt"
  /** A CPU exception (no IDT yet: it stops the machine). */
  | "fault"
  /** INT n (no IDT yet). */
  | "int"
  /** The max-instructions limit was reached. */
  | "limit";

export interface SimpleRunOptions {
  /** Instructions per engine.run() call (at least 100,000). */
  slice?: number;
  /** Stop after this many retired instructions (default: no limit). */
  maxInstructions?: number;
  /** Receives the guest's console output as it is produced (in chunks, at the latest every slice). */
  onOutput?: (bytes: Uint8Array) => void;
  /** Keep the output in the result (default true). */
  collectOutput?: boolean;
}

export interface StopDetail {
  /** Fault or INT: the vector; fault error code (-1 if none). */
  vector?: number;
  errorCode?: number;
  /** EIP of the instruction that faulted, executed INT or HLT. */
  eip: number;
  /** Up to 16 bytes of guest memory at eip (for reporting unimplemented instructions). */
  bytes?: Uint8Array;
  /** HLT: whether EFLAGS.IF was set. */
  interruptsEnabled?: boolean;
  /** Human-readable one-line description. */
  message: string;
}

export interface SimpleRunResult {
  /** The value written to port 0xF4 (masked to the write's size); null if the guest never wrote one. */
  exitStatus: number | null;
  reason: StopReason;
  detail: StopDetail;
  /** Everything the guest wrote to port 0xE9 (empty if collectOutput is false). */
  output: Uint8Array;
  /** Instructions retired in this run. */
  instructions: number;
  /** Wall-clock seconds spent in the run loop (loading excluded). */
  seconds: number;
  image: ElfImage;
}

export const VECTOR_NAMES: Record<number, string> = {
  0: "#DE divide error", 1: "#DB debug", 3: "#BP breakpoint", 4: "#OF overflow", 5: "#BR bound range",
  6: "#UD invalid opcode", 7: "#NM device not available", 8: "#DF double fault", 10: "#TS invalid TSS",
  11: "#NP segment not present", 12: "#SS stack fault", 13: "#GP general protection", 14: "#PF page fault",
  16: "#MF x87 error", 17: "#AC alignment check", 18: "#MC machine check", 19: "#XM SIMD exception",
};

const hex8 = (n: number) => "0x" + (n >>> 0).toString(16).padStart(8, "0");
const bytesHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
const sizeMask = (size: number) => (size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1);

// ---- CPUID: a fixed, deterministic CPU description

/** The vendor string, 12 bytes: EBX, EDX, ECX of leaf 0. */
export const CPUID_VENDOR = "LockstepCPU ";
export const CPUID_BRAND = "Lockstep virtual i386 CPU";
/** Leaf 1 EAX: family 6, model 1, stepping 0 (CMOV, CX8 and TSC are P6-era features). */
const CPUID_SIGNATURE = (6 << 8) | (1 << 4) | 0;
/** Leaf 1 EDX: TSC (4), CX8 (8), CMOV (15). No FPU, MSR, APIC, MMX or SSE. */
export const CPUID_1_EDX = (1 << 4) | (1 << 8) | (1 << 15);
/** Leaf 1 ECX: RDRAND (30). */
export const CPUID_1_ECX = 1 << 30;
/** Leaf 7 subleaf 0 EBX: RDSEED (18). */
export const CPUID_7_EBX = 1 << 18;
const CPUID_MAX_BASIC = 7;
const CPUID_MAX_EXT = 0x80000004;

function str4(s: string, at: number): number {
  let v = 0;
  for (let i = 3; i >= 0; i--) v = (v << 8) | (s.charCodeAt(at + i) || 0);
  return v >>> 0;
}

/** EAX, EBX, ECX, EDX for CPUID leaf/subleaf. Leaves not listed read as zeros. */
export function cpuidAnswer(leaf: number, subleaf: number): [number, number, number, number] {
  leaf >>>= 0;
  switch (leaf) {
    case 0:
      return [CPUID_MAX_BASIC, str4(CPUID_VENDOR, 0), str4(CPUID_VENDOR, 8), str4(CPUID_VENDOR, 4)];
    case 1:
      return [CPUID_SIGNATURE, 0, CPUID_1_ECX, CPUID_1_EDX];
    case 7:
      return subleaf === 0 ? [0, CPUID_7_EBX, 0, 0] : [0, 0, 0, 0];
    case 0x80000000:
      return [CPUID_MAX_EXT, 0, 0, 0];
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const brand = CPUID_BRAND.padEnd(48, "\0");
      const at = (leaf - 0x80000002) * 16;
      return [str4(brand, at), str4(brand, at + 4), str4(brand, at + 8), str4(brand, at + 12)];
    }
    default:
      return [0, 0, 0, 0];
  }
}

/** RDRAND/RDSEED values: xorshift32 from a fixed seed, so runs repeat exactly. */
export class DeterministicRandom {
  constructor(private state = 0x2545f491) {}
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
}

/** Buffers console bytes and hands them to a sink in chunks. */
class OutputBuffer {
  private chunks: Uint8Array[] = [];
  private pending = new Uint8Array(4096);
  private n = 0;
  constructor(private readonly sink: ((b: Uint8Array) => void) | undefined, private readonly keep: boolean) {}
  push(byte: number): void {
    this.pending[this.n++] = byte;
    if (this.n === this.pending.length || byte === 0x0a) this.flush();
  }
  flush(): void {
    if (this.n === 0) return;
    const chunk = this.pending.slice(0, this.n);
    this.n = 0;
    if (this.keep) this.chunks.push(chunk);
    this.sink?.(chunk);
  }
  all(): Uint8Array {
    const total = this.chunks.reduce((s, c) => s + c.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/**
 * Loads the ELF image into the engine (after reset()), sets EIP = entry,
 * ESP = top of RAM, EAX = the Multiboot loader magic (EBX = 0: no boot
 * information structure yet) and runs until the guest exits, halts, faults or
 * reaches the limit. Throws ElfError for a refused image.
 */
export function simpleRun(engine: Engine, elf: Uint8Array, opts: SimpleRunOptions = {}): SimpleRunResult {
  const slice = opts.slice ?? DEFAULT_SLICE;
  if (!Number.isInteger(slice) || slice < MIN_SLICE || slice > 0x7fffffff) {
    throw new RangeError(`slice must be an integer in [${MIN_SLICE}, 2^31), got ${slice}`);
  }
  const limit = opts.maxInstructions ?? Infinity;
  if (limit !== Infinity && (!Number.isSafeInteger(limit) || limit < 0)) {
    throw new RangeError(`maxInstructions must be a non-negative integer, got ${limit}`);
  }

  engine.reset();
  engine.setIcount(0n);
  const image = loadElf(engine, elf);
  engine.eip = image.entry;
  engine.setReg(ESP, engine.ramSize >>> 0);
  engine.setReg(EAX, MULTIBOOT_BOOTLOADER_MAGIC);
  engine.setReg(EBX, 0);

  const out = new OutputBuffer(opts.onOutput, opts.collectOutput ?? true);
  const rng = new DeterministicRandom();
  let executed = 0;
  let exitStatus: number | null = null;
  let reason: StopReason | undefined;
  let detail: StopDetail | undefined;
  const at = () => engine.eip;

  const start = performance.now();
  while (reason === undefined) {
    const budget = Math.min(slice, limit - executed);
    if (budget <= 0) {
      reason = "limit";
      detail = { eip: at(), message: `instruction limit ${limit} reached at EIP ${hex8(at())}` };
      break;
    }
    const e: Exit = engine.run(budget);
    executed += e.executed;
    switch (e.reason) {
      case ExitReason.Budget:
        out.flush();
        break;
      case ExitReason.Out:
        if (e.port === DEBUGCON_PORT) out.push(e.value! & 0xff);
        else if (e.port === EXIT_PORT) {
          exitStatus = (e.value! & sizeMask(e.size!)) >>> 0;
          reason = "exit";
          detail = { eip: at(), message: `guest exit status ${exitStatus}` };
        }
        // Writes to other ports go nowhere (no devices yet).
        break;
      case ExitReason.In:
        // The debug console reads back 0xE9 (as Bochs and QEMU do); unassigned ports float high.
        engine.answer(e.port === DEBUGCON_PORT ? DEBUGCON_PORT : sizeMask(e.size!));
        break;
      case ExitReason.Cpuid: {
        const [a, b, c, d] = cpuidAnswer(e.leaf!, e.subleaf!);
        engine.answer(a, b, c, d);
        break;
      }
      case ExitReason.Rdtsc: {
        // The virtual time stamp counter is the retired-instruction count.
        const t = engine.icount;
        engine.answer(Number(t & 0xffffffffn), Number((t >> 32n) & 0xffffffffn));
        break;
      }
      case ExitReason.Rdrand:
      case ExitReason.Rdseed:
        engine.answer(rng.next() & sizeMask(e.size!), 1);
        break;
      case ExitReason.MmioRead:
        engine.answer(sizeMask(e.size!)); // no MMIO devices yet
        break;
      case ExitReason.MmioWrite:
        break;
      case ExitReason.Hlt: {
        // EIP is past the HLT. With no devices there is no interrupt to wait for.
        const ie = (engine.eflags & EFLAGS_IF) !== 0;
        const hltEip = (at() - 1) >>> 0;
        reason = "halt";
        detail = {
          eip: hltEip,
          interruptsEnabled: ie,
          message: `HLT at ${hex8(hltEip)} with interrupts ${ie ? "enabled but no interrupt sources" : "disabled"}`,
        };
        break;
      }
      case ExitReason.Fault: {
        const eip = at();
        const bytes = peek(engine, eip);
        reason = "fault";
        detail = {
          vector: e.vector!, errorCode: e.errorCode!, eip, bytes,
          message: `${VECTOR_NAMES[e.vector!] ?? "exception"} (vector ${e.vector}${e.errorCode! >= 0 ? `, error code ${hex8(e.errorCode!)}` : ""}) at EIP ${hex8(eip)}, bytes ${bytesHex(bytes)}`,
        };
        break;
      }
      case ExitReason.Int: {
        const eip = at();
        reason = "int";
        detail = { vector: e.vector!, eip, bytes: peek(engine, eip), message: `INT ${hex2(e.vector!)} at EIP ${hex8(eip)} (no IDT yet)` };
        break;
      }
      default:
        throw new Error(`simpleRun: unexpected exit reason ${e.reason}`);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  out.flush();
  return { exitStatus, reason, detail: detail!, output: out.all(), instructions: executed, seconds, image };
}

const hex2 = (n: number) => "0x" + n.toString(16).padStart(2, "0");

/** Up to 16 bytes of RAM at addr (fewer at the end of RAM, none outside it). */
function peek(engine: Engine, addr: number): Uint8Array {
  if (addr >= engine.ramSize) return new Uint8Array(0);
  return engine.readMem(addr, Math.min(16, engine.ramSize - addr));
}
