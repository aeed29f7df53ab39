// The machine: an engine, guest RAM loaded by the Multiboot/ELF loader, and
// the PC devices on the port bus, driven by one run loop that turns the
// core's exits into device accesses and injects hardware interrupts between
// instructions. docs/machine.md describes the machine the guest sees.
//
// Time is guest time in nanoseconds, from one GuestClock: with the virtual
// clock it is derived from the instruction count (10 ns an instruction, plus
// the time skipped while the CPU idles in HLT), so a run is deterministic; with
// the host clock it follows the host's monotonic clock, as on real hardware.
// Devices see time, calendar time, entropy and outside input only through the
// sources handed in here (the replay layer stands behind them).

import { createEngine } from "../engine/load.js";
import { ExitReason, type Engine, type EngineKind, type Exit } from "../engine/engine.js";
import type { GuestClock, WallClock } from "../devices/device.js";
import { PortBus } from "./bus.js";
import { Pic8259 } from "../devices/pic8259.js";
import { Pit8254 } from "../devices/pit8254.js";
import { Uart16550 } from "../devices/uart16550.js";
import { CmosRtc } from "../devices/cmos-rtc.js";
import { DebugPort } from "../devices/debug-port.js";
import { ExitPort } from "../devices/exit-port.js";
import { AtaDisk } from "../devices/ata-disk.js";
import type { BlockStore } from "../devices/block-store.js";
import { Pvnic } from "../devices/pvnic.js";
import { loadMultiboot, applyBootState, type BootImage } from "./multiboot.js";
import { cpuidAnswer } from "./simple-run.js";

export type ClockMode = "host" | "virtual";

/** Guest time per retired instruction under the virtual clock. */
export const VIRTUAL_NS_PER_INSTRUCTION = 10;
/** The calendar time at guest time 0 under the virtual clock. */
export const VIRTUAL_EPOCH_MS = Date.UTC(2026, 0, 1);
/** Device events in a row that may pass without waking a halted guest before runSync calls it idle. */
export const MAX_IDLE_SKIPS = 16;
/** Instructions per run() slice when nothing is due sooner. */
export const SLICE = 200_000;

export interface MachineConfig {
  engine: EngineKind;
  /** Guest RAM in bytes. */
  ramSize: number;
  clock: ClockMode;
  /** The Multiboot command line. */
  cmdline?: string;
  disk?: BlockStore;
  /** Attach the paravirtual NIC (ports 0xC000, IRQ 11). */
  nic?: boolean;
  /** Bytes the guest sends on COM1 and on the debug console. */
  onSerial?: (byte: number) => void;
  onDebugcon?: (byte: number) => void;
  /** Frames the guest transmits on the NIC. */
  onTransmit?: (frame: Uint8Array) => void;
  /** Calendar time for the RTC; default: the host's. */
  wallClock?: WallClock;
  /** The host's monotonic clock in ns (host clock mode); default: performance.now. */
  hostNs?: () => number;
  /** 32 random bits for RDRAND/RDSEED; default: crypto (host clock), a seeded generator (virtual). */
  entropy?: () => number;
}

export type StopReason =
  | "exit-port"      // the guest wrote its status to port 0xF4
  | "halted"         // HLT with interrupts off, nothing can wake it
  | "idle"           // HLT, and nothing is scheduled: waiting for outside input
  | "fault"          // an exception with no IDT loaded
  | "int"            // INT n with no IDT loaded
  | "triple-fault"
  | "limit";         // the instruction limit

export interface RunOutcome {
  reason: StopReason;
  /** The value written to port 0xF4 (exit-port). */
  exitStatus?: number;
  /** The exit that stopped the run (fault, int, triple-fault). */
  exit?: Exit;
  instructions: bigint;
}

/** A 32-bit xorshift: deterministic "entropy" for the virtual clock. */
function seededEntropy(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

function hostEntropy(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

export class Machine implements GuestClock {
  readonly bus = new PortBus();
  readonly pic = new Pic8259();
  readonly pit: Pit8254;
  readonly uart: Uart16550;
  readonly rtc: CmosRtc;
  readonly debugcon: DebugPort;
  readonly exitPort: ExitPort;
  readonly disk?: AtaDisk;
  readonly nic?: Pvnic;
  boot!: BootImage;

  private idleNs = 0;
  private readonly hostNs: () => number;
  private readonly hostStart: number;
  private readonly entropy: () => number;
  private exitStatus: number | null = null;
  private pendingSerial: number[] = [];

  private constructor(readonly engine: Engine, readonly config: MachineConfig) {
    this.hostNs = config.hostNs ?? (() => performance.now() * 1e6);
    this.hostStart = this.hostNs();
    this.entropy = config.entropy ?? (config.clock === "virtual" ? seededEntropy(0x6c6f636b) : hostEntropy);
    // Calendar time: the host's, or under the virtual clock a fixed epoch
    // (2026-01-01 UTC) plus guest time, so a virtual run is deterministic.
    const wall: WallClock = config.wallClock ??
      (config.clock === "virtual" ? { epochMs: () => VIRTUAL_EPOCH_MS + this.nowNs() / 1e6 } : { epochMs: () => Date.now() });
    this.bus.attach(this.pic);
    this.pit = new Pit8254({ clock: this, irq: this.pic.line(0) });
    this.uart = new Uart16550({ clock: this, irq: this.pic.line(4), onTransmit: (b) => config.onSerial?.(b) });
    this.rtc = new CmosRtc({ wallClock: wall, memoryBytes: config.ramSize });
    this.debugcon = new DebugPort({ onOutput: (b) => config.onDebugcon?.(b) });
    this.exitPort = new ExitPort({ onExit: (v) => { this.exitStatus = v >>> 0; } });
    for (const d of [this.pit, this.uart, this.rtc, this.debugcon, this.exitPort]) this.bus.attach(d);
    if (config.disk) {
      this.disk = new AtaDisk({ store: config.disk, clock: this, irq: this.pic.line(14) });
      this.bus.attach(this.disk);
    }
    if (config.nic) {
      this.nic = new Pvnic({
        memory: { read: (a, n) => engine.readMem(a, n), write: (a, b) => engine.writeMem(a, b) },
        irq: this.pic.line(11),
      });
      if (config.onTransmit) this.nic.onTransmit(config.onTransmit);
      this.bus.attach(this.nic);
    }
  }

  /** Creates the machine and boots `image` (a Multiboot kernel or an ELF32 executable). */
  static async create(image: Uint8Array, config: MachineConfig): Promise<Machine> {
    const engine = await createEngine(config.engine, { ramSize: config.ramSize });
    const m = new Machine(engine, config);
    engine.reset();
    m.boot = loadMultiboot(engine, image, { cmdline: config.cmdline ?? "" });
    applyBootState(engine, m.boot.state);
    return m;
  }

  /** Guest time (ns). */
  nowNs(): number {
    if (this.config.clock === "virtual") return Number(this.engine.icount) * VIRTUAL_NS_PER_INSTRUCTION + this.idleNs;
    return this.hostNs() - this.hostStart;
  }

  /** Bytes arriving on COM1 from outside; handed to the UART between instructions. */
  serialInput(bytes: Uint8Array | readonly number[]): void {
    for (const b of bytes) this.pendingSerial.push(b & 0xff);
  }

  private timed(): { nextEventNs(): number | null; advance(now: number): void }[] {
    const t: { nextEventNs(): number | null; advance(now: number): void }[] = [this.pit, this.uart];
    if (this.disk) t.push(this.disk);
    return t;
  }

  private nextEventNs(): number | null {
    let next: number | null = null;
    for (const d of this.timed()) {
      const t = d.nextEventNs();
      if (t !== null && (next === null || t < next)) next = t;
    }
    return next;
  }

  /** Brings devices up to now, feeds pending input, and delivers an interrupt if one can go. */
  private service(): void {
    const now = this.nowNs();
    for (const d of this.timed()) d.advance(now);
    if (this.pendingSerial.length > 0) {
      const n = Math.min(this.pendingSerial.length, this.uart.rxSpace());
      if (n > 0) this.uart.receive(this.pendingSerial.splice(0, n));
    }
    const vector = this.pic.pendingVector();
    if (vector === null) { this.engine.setIrqPending(false); return; }
    if (!this.engine.interruptible) { this.engine.setIrqPending(true); return; }
    // Acknowledged and delivered; a guest with no IDT yet simply misses it.
    this.engine.raiseInterrupt(this.pic.acknowledge());
    this.engine.setIrqPending(false);
  }

  /**
   * Runs until the guest stops, goes idle or `maxInstructions` more retire.
   * Never waits for real time: with the host clock an idle guest returns
   * "idle" (the async run() waits instead); with the virtual clock time skips
   * to the next device event.
   */
  runSync(maxInstructions = Number.MAX_SAFE_INTEGER): RunOutcome {
    const start = this.engine.icount;
    const limit = start + BigInt(maxInstructions);
    let idleSkips = 0;
    for (;;) {
      if (this.exitStatus !== null) return this.outcome("exit-port", start);
      this.service();
      // A halted CPU waits for an interrupt: it is not run until service() delivers one.
      if (this.engine.halted) {
        if ((this.engine.eflags & 0x200) === 0) return this.outcome("halted", start);
        const next = this.nextEventNs();
        if (next === null || this.config.clock === "host") return this.outcome("idle", start);
        // Virtual clock: nothing happens until the next device event; skip to
        // it. A device whose interrupt is masked (the PIT's power-on square
        // wave when the guest never programs it) keeps having events that
        // wake nothing: after a few such skips the guest is idle.
        if (++idleSkips > MAX_IDLE_SKIPS) return this.outcome("idle", start);
        const now = this.nowNs();
        if (next > now) this.idleNs += next - now;
        continue;
      }
      const left = limit - this.engine.icount;
      if (left <= 0n) return this.outcome("limit", start);
      let budget = Math.min(SLICE, Number(left));
      if (this.config.clock === "virtual") {
        const next = this.nextEventNs();
        if (next !== null) {
          const until = Math.ceil((next - this.nowNs()) / VIRTUAL_NS_PER_INSTRUCTION);
          budget = Math.max(1, Math.min(budget, until));
        }
      }
      const x = this.engine.run(budget);
      if (x.executed > 0) idleSkips = 0;
      switch (x.reason) {
        case ExitReason.Budget:
        case ExitReason.IrqWindow:
          break;
        case ExitReason.In:
          this.engine.answer(this.bus.read(x.port!, x.size as 1 | 2 | 4));
          break;
        case ExitReason.Out:
          this.bus.write(x.port!, x.size as 1 | 2 | 4, x.value!);
          break;
        case ExitReason.Rdtsc: {
          const t = BigInt(Math.floor(this.nowNs())); // a 1 GHz time-stamp counter
          this.engine.answer(Number(t & 0xffffffffn), Number(t >> 32n));
          break;
        }
        case ExitReason.Rdrand:
        case ExitReason.Rdseed:
          this.engine.answer(this.entropy(), 1);
          break;
        case ExitReason.Cpuid: {
          const [a, b, c, d] = cpuidAnswer(x.leaf!, x.subleaf!);
          this.engine.answer(a, b, c, d);
          break;
        }
        case ExitReason.MmioRead:
          this.engine.answer(0xffffffff); // no MMIO devices: unassigned
          break;
        case ExitReason.MmioWrite:
          break;
        case ExitReason.Hlt:
          break; // the loop's top waits for an interrupt
        case ExitReason.Fault:
          return this.outcome("fault", start, x);
        case ExitReason.Int:
          return this.outcome("int", start, x);
        case ExitReason.TripleFault:
          return this.outcome("triple-fault", start, x);
      }
    }
  }

  /**
   * The host-clock run: like runSync, but an idle guest waits (in real time)
   * for its next device event or for outside input, until `keepGoing()` says
   * stop. Yields to the event loop between slices so input can arrive.
   */
  async run(maxInstructions = Number.MAX_SAFE_INTEGER, keepGoing: () => boolean = () => true): Promise<RunOutcome> {
    const start = this.engine.icount;
    const limit = start + BigInt(maxInstructions);
    for (;;) {
      const left = limit - this.engine.icount;
      const r = this.runSync(Number(left < 5_000_000n ? left : 5_000_000n));
      if (r.reason !== "limit" && r.reason !== "idle") return { ...r, instructions: this.engine.icount - start };
      if (this.engine.icount >= limit) return this.outcome("limit", start);
      if (!keepGoing()) return { ...r, instructions: this.engine.icount - start };
      if (r.reason === "idle") {
        const next = this.nextEventNs();
        const waitMs = next === null ? 10 : Math.max(0, Math.min(10, (next - this.nowNs()) / 1e6));
        await new Promise((res) => setTimeout(res, waitMs));
      } else {
        await new Promise((res) => setImmediate(res));
      }
    }
  }

  private outcome(reason: StopReason, start: bigint, exit?: Exit): RunOutcome {
    const o: RunOutcome = { reason, instructions: this.engine.icount - start };
    if (reason === "exit-port") o.exitStatus = this.exitStatus!;
    if (exit) o.exit = exit;
    return o;
  }
}
