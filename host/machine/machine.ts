// The machine: an engine, guest RAM loaded by the Multiboot/ELF loader, and
// the PC devices on the port bus, driven by one run loop that turns the
// core's exits into device accesses and injects hardware interrupts between
// instructions. docs/machine.md describes the machine the guest sees.
//
// Time is guest time in nanoseconds (guest-time.ts): a function of the
// instruction count and of anchors set at instruction boundaries. With the
// virtual clock the anchors are the idle skips (10 ns an instruction plus the
// time skipped while the CPU idles in HLT); with the host clock they are
// readings of the host's clock. Every value from outside the VM — clock
// readings, entropy, COM1 bytes, NIC frames, disk data — comes through one
// InputGate (input-gate.ts) that the caller hands in: live, it reads the
// world and can log what it read; in replay it reads the log. Devices never
// see anything else.
//
// The machine decides and never waits: runSync() runs until the guest stops,
// goes idle or a limit is reached. Waiting in real time for an idle guest is
// a driver's job (host/machine/realtime.ts).

import { ExitReason, type ArchState, type Engine, type Exit } from "../engine/engine.js";
import type { GuestClock, TimedDevice } from "../devices/device.js";
import { PortBus } from "./bus.js";
import { Pic8259 } from "../devices/pic8259.js";
import { Pit8254 } from "../devices/pit8254.js";
import { Uart16550 } from "../devices/uart16550.js";
import { CmosRtc } from "../devices/cmos-rtc.js";
import { DebugPort } from "../devices/debug-port.js";
import { ExitPort } from "../devices/exit-port.js";
import { AtaDisk, type AtaOperation } from "../devices/ata-disk.js";
import { DirtyTracker } from "../engine/dirty.js";
import type { BlockStore } from "../devices/block-store.js";
import { Pvnic } from "../devices/pvnic.js";
import { loadMultiboot, applyBootState, LoadError, type BootImage } from "./multiboot.js";
import { isBzImage, loadLinux } from "./linux-boot.js";
import { cpuidAnswer } from "./cpuid.js";
import { GuestTime, NS_PER_INSTRUCTION, type ClockMode, type GuestTimeState } from "./guest-time.js";
import type { BoundaryView, InputGate, InputSink } from "./input-gate.js";
import { GatedBlockStore } from "./gated-store.js";

export type { ClockMode };

/** Guest time per retired instruction under the virtual clock. */
export const VIRTUAL_NS_PER_INSTRUCTION = NS_PER_INSTRUCTION.virtual;
/** Device events in a row that may pass without waking a halted guest before it counts as idle (virtual clock). */
export const MAX_IDLE_SKIPS = 16;
/** Instructions per run() slice when nothing is due sooner. */
export const SLICE = 200_000;

export interface MachineConfig {
  /** The CPU with its guest RAM (host/engine/load.ts createEngine); the machine owns it from now on. */
  engine: Engine;
  clock: ClockMode;
  /** The Multiboot or Linux command line. */
  cmdline?: string;
  /** A Linux bzImage's initial RAM disk (host/machine/linux-boot.ts); refused for other images. */
  initrd?: Uint8Array;
  disk?: BlockStore;
  /** Attach the paravirtual NIC (ports 0xC000, IRQ 11). */
  nic?: boolean;
  /** Bytes the guest sends on COM1 and on the debug console. */
  onSerial?: (byte: number) => void;
  onDebugcon?: (byte: number) => void;
  /** Frames the guest transmits on the NIC. */
  onTransmit?: (frame: Uint8Array) => void;
  /** The status the guest writes to the exit port (0xF4). */
  onExit?: (status: number) => void;
  /** Where every outside value comes from (input-gate.ts): a live gate, or a replay gate reading a log. */
  gate: InputGate;
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

/** Disk operations by the number a DISK_COMPLETE check carries (docs/log-format.md). */
export const ATA_OPS: readonly AtaOperation[] = ["identify", "read", "write", "flush", "reset"];

/**
 * Everything a machine's future depends on, each part listed once: what
 * saveState() writes and loadState() reads, what the state hash covers
 * (host/replay/state-hash.ts) and what a snapshot carries. Plain data
 * (JSON-able apart from `ram`).
 */
export interface MachineState {
  cpu: ArchState;
  ram: Uint8Array;
  time: GuestTimeState;
  /** Calendar time at guest time 0 (ms since 1970): the RTC's base. */
  wallEpochMs: number;
  idleSkips: number;
  exitStatus: number | null;
  devices: Record<string, unknown>;
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
  readonly gate: InputGate;
  readonly time: GuestTime;
  boot!: BootImage;

  /** Calendar time at guest time 0: the gate's at creation, a snapshot's after loadState. */
  private wallEpochMs: number;
  private exitStatus: number | null = null;
  /**
   * Device events skipped in a row while halted without waking the guest
   * (virtual clock). At MAX_IDLE_SKIPS the guest is parked: idle until an
   * input arrives. It is machine state, not a per-call count, so that where
   * idle time ends does not depend on how the host slices the run.
   */
  private idleSkips = 0;
  private readonly view: BoundaryView;

  /** The devices with events of their own (asked after every exit: built once). */
  private readonly timed: TimedDevice[];
  private readonly sink: InputSink;

  readonly engine: Engine;

  private constructor(readonly config: MachineConfig) {
    const engine = config.engine;
    this.engine = engine;
    this.gate = config.gate;
    this.time = new GuestTime(NS_PER_INSTRUCTION[config.clock]);
    // Calendar time is the gate's base (the host's at the start, or the
    // virtual clock's fixed epoch) plus guest time.
    this.wallEpochMs = this.gate.epochMs;
    const wall = { epochMs: () => this.wallEpochMs + this.nowNs() / 1e6 };
    this.bus.attach(this.pic);
    this.pit = new Pit8254({ clock: this, irq: this.pic.line(0) });
    this.uart = new Uart16550({ clock: this, irq: this.pic.line(4), onTransmit: (b) => config.onSerial?.(b) });
    this.rtc = new CmosRtc({ wallClock: wall, memoryBytes: engine.ramSize });
    this.debugcon = new DebugPort({ onOutput: (b) => config.onDebugcon?.(b) });
    this.exitPort = new ExitPort({ onExit: (v) => { this.exitStatus = v >>> 0; config.onExit?.(v >>> 0); } });
    for (const d of [this.pit, this.uart, this.rtc, this.debugcon, this.exitPort]) this.bus.attach(d);
    if (config.disk) {
      const store = new GatedBlockStore(config.disk, this.gate, () => this.engine.icount);
      this.disk = new AtaDisk({ store, clock: this, irq: this.pic.line(14) });
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
    this.timed = this.disk ? [this.pit, this.uart, this.disk] : [this.pit, this.uart];
    const m = this;
    this.view = {
      get icount() { return m.engine.icount; },
      get guestNs() { return m.nowNs(); },
      get nextEventNs() { return m.nextEventNs(); },
      get halted() { return m.engine.halted; },
      get serialSpace() { return m.uart.rxSpace(); },
    };
    this.sink = {
      setTime: (ns) => this.time.set(this.engine.icount, ns),
      serialReceive: (bytes) => { this.uart.receive(bytes); this.idleSkips = 0; },
      nicReceive: (frame) => {
        if (!this.nic) throw new Error("a frame for a machine without a NIC");
        this.nic.receive(frame);
        this.idleSkips = 0;
      },
    };
  }

  /** Builds the machine around `config.engine` and boots `image` (a Multiboot kernel, an ELF32 executable or a Linux bzImage). */
  static create(image: Uint8Array, config: MachineConfig): Machine {
    const m = new Machine(config);
    const engine = config.engine;
    engine.reset();
    if (isBzImage(image)) m.boot = loadLinux(engine, image, { cmdline: config.cmdline ?? "", initrd: config.initrd });
    else if (config.initrd) throw new LoadError("an initrd is for a Linux bzImage; this image is not one", 0);
    else m.boot = loadMultiboot(engine, image, { cmdline: config.cmdline ?? "" });
    applyBootState(engine, m.boot.state);
    return m;
  }

  private dirtyTracker: DirtyTracker | null = null;

  /**
   * The one dirty-page tracker of this machine's engine (host/engine/dirty.ts):
   * state transfer and checks register their own users on it, so none
   * clears marks another still needs.
   */
  get dirty(): DirtyTracker {
    return (this.dirtyTracker ??= new DirtyTracker(this.engine));
  }

  /** Releases the engine (its memory goes back to the engine pool). The machine is unusable after. */
  dispose(): void {
    this.engine.dispose();
  }

  /** Guest time (ns): a function of the instruction count and the gate's time anchors. */
  nowNs(): number {
    return this.time.at(this.engine.icount);
  }

  /** Bytes arriving on COM1 from outside; the gate hands them to the UART at an instruction boundary. */
  serialInput(bytes: Uint8Array | readonly number[]): void {
    this.gate.queueSerial(bytes);
  }

  /** A frame arriving on the NIC from outside; delivered at an instruction boundary. */
  nicInput(frame: Uint8Array): void {
    if (!this.nic) throw new Error("this machine has no NIC");
    this.gate.queueFrame(frame);
  }

  private nextEventNs(): number | null {
    let next: number | null = null;
    for (const d of this.timed) {
      const t = d.nextEventNs();
      if (t !== null && (next === null || t < next)) next = t;
    }
    return next;
  }

  /**
   * Brings the timed devices up to guest time now: fires the timer edges,
   * UART timeouts and disk completion that are due. After it, device state
   * depends only on the instructions retired and the inputs taken, not on
   * where the host happened to cut the run (the PIT remembers how far it was
   * last brought up), which the state hash relies on.
   */
  private settle(): void {
    const now = this.nowNs();
    this.pit.advance(now);
    this.uart.advance(now);
    if (this.disk) {
      const due = this.disk.nextEventNs();
      if (due !== null && due <= now) {
        const done = this.disk.completeNow()!;
        this.gate.derived(this.engine.icount, "disk-complete", ATA_OPS.indexOf(done.op));
      }
    }
  }

  /**
   * Brings devices up to guest time now and delivers an interrupt if one can
   * go. Everything here follows from machine state: the gate only checks the
   * consequences (a replay must complete the same disk operations and
   * deliver the same vectors at the same counts).
   */
  private service(): void {
    this.settle();
    const vector = this.pic.pendingVector();
    if (vector === null) { this.engine.setIrqPending(false); return; }
    if (!this.engine.interruptible) { this.engine.setIrqPending(true); return; }
    // Acknowledged and delivered; a guest with no IDT yet simply misses it.
    const v = this.pic.acknowledge();
    this.gate.derived(this.engine.icount, "irq", v);
    this.engine.raiseInterrupt(v);
    this.engine.setIrqPending(false);
  }

  /**
   * Whether outside input may arrive at this boundary. Not while a halted
   * guest is part-way through skipping idle time (virtual clock): the live
   * host cannot hand over input then, and the replay must not either.
   */
  private acceptsInput(): boolean {
    return !(this.engine.halted && this.config.clock === "virtual" && (this.engine.eflags & 0x200) !== 0 &&
      this.idleSkips < MAX_IDLE_SKIPS && this.nextEventNs() !== null);
  }

  /**
   * Runs until the guest stops, goes idle or `maxInstructions` more retire.
   * Never waits for real time: with the host clock an idle guest returns
   * "idle" (the async run() waits instead); with the virtual clock time skips
   * to the next device event.
   *
   * `yieldIf`, asked between the engine's runs (not after an input exit),
   * ends the call early as "limit" when it says so: a driver that must stay
   * responsive bounds a call's real time with it (a guest polling a device
   * by the host clock can take many ms per slice). Where it stops changes
   * nothing a replay depends on: every boundary is one a replay can stop at.
   */
  runSync(maxInstructions = Number.MAX_SAFE_INTEGER, yieldIf?: () => boolean): RunOutcome {
    const start = this.engine.icount;
    let ranOnce = false;
    const limit = start + BigInt(maxInstructions);
    const rate = this.time.nsPerInstruction;
    // After an input exit (IN, RDTSC, RDRAND, CPUID, MMIO read) the answered
    // instruction has not retired yet: it is resumed at once, with no
    // boundary in between, because a replay can only stop between
    // instructions and must see every boundary where the recording did.
    let resume = false;
    /** The resumed instruction is to retire alone, so that a boundary comes right after it. */
    let resumeAlone = false;
    const nextEvent = () => this.nextEventNs();
    for (;;) {
      if (!resume) {
        if (this.exitStatus !== null) return this.outcome("exit-port", start);
        if (this.acceptsInput()) this.gate.boundary(this.view, this.sink);
        this.service();
        // A halted CPU waits for an interrupt: it is not run until service() delivers one.
        if (this.engine.halted) {
          if ((this.engine.eflags & 0x200) === 0) return this.outcome("halted", start);
          if (this.config.clock === "virtual" && this.idleSkips < MAX_IDLE_SKIPS) {
            // Nothing happens until the next device event: skip to it. A device
            // whose interrupt is masked (the PIT's power-on square wave when the
            // guest never programs it) keeps having events that wake nothing:
            // after a few such skips the guest is parked, idle.
            const next = this.nextEventNs();
            if (next !== null) {
              this.idleSkips++;
              const now = this.nowNs();
              if (next > now) this.time.skip(next - now);
              continue;
            }
            this.idleSkips = MAX_IDLE_SKIPS;
          }
          if (this.gate.pendingAt(this.engine.icount)) continue;
          return this.outcome("idle", start);
        }
      }
      const left = limit - this.engine.icount;
      if (left <= 0n && !resume) return this.outcome("limit", start);
      if (ranOnce && !resume && yieldIf?.()) return this.outcome("limit", start);
      ranOnce = true;
      let budget = Math.min(SLICE, Math.max(1, Number(left)));
      // Stop exactly where the next device event falls due, so it fires at
      // the same count however the run is sliced.
      const next = this.nextEventNs();
      if (next !== null) {
        const until = Math.ceil((next - this.nowNs()) / rate);
        budget = Math.max(1, Math.min(budget, until));
      }
      const g = this.gate.budget(this.engine.icount);
      if (g !== null) {
        if (g === 0 && !resume) continue; // an input due here first
        budget = Math.max(1, Math.min(budget, g));
      }
      if (resumeAlone) budget = 1;
      resume = false;
      resumeAlone = false;
      const x = this.engine.run(budget);
      if (x.executed > 0) this.idleSkips = 0;
      switch (x.reason) {
        case ExitReason.Budget:
        case ExitReason.IrqWindow:
          break;
        case ExitReason.In:
          this.engine.answer(this.bus.read(x.port!, x.size as 1 | 2 | 4));
          resume = true;
          // A guest polling a device whose completion the host clock says is due.
          resumeAlone = this.gate.wantsBoundary(nextEvent);
          break;
        case ExitReason.Out:
          this.bus.write(x.port!, x.size as 1 | 2 | 4, x.value!);
          break;
        case ExitReason.Rdtsc: {
          const icount = this.engine.icount;
          // A 1 GHz counter on guest time; under the host clock a fresh reading of it, through the gate.
          const t = this.config.clock === "virtual" ? BigInt(Math.floor(this.nowNs()))
            : this.gate.rdtsc(this.view, (ns) => this.time.set(icount, ns));
          this.engine.answer(Number(t & 0xffffffffn), Number(t >> 32n));
          resume = true;
          break;
        }
        case ExitReason.Rdrand:
        case ExitReason.Rdseed:
          this.engine.answer(this.gate.entropy(this.engine.icount), 1);
          resume = true;
          break;
        case ExitReason.Cpuid: {
          const [a, b, c, d] = cpuidAnswer(x.leaf!, x.subleaf!);
          this.engine.answer(a, b, c, d);
          resume = true;
          break;
        }
        case ExitReason.MmioRead:
          this.engine.answer(0xffffffff); // no MMIO devices: unassigned
          resume = true;
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
   * For a driver whose guest went idle under the host clock: how long (ms of
   * real time) it may wait before running again — until the next device
   * event by the host's clock, at most 10 ms so that input is looked at.
   */
  idleWaitMs(): number {
    const next = this.nextEventNs();
    const host = this.gate.hostElapsedNs() ?? this.nowNs();
    return next === null ? 10 : Math.max(0, Math.min(10, (next - host) / 1e6));
  }

  /**
   * The machine's whole state at an instruction boundary (between runSync
   * calls). `ram: "view"` gives the engine's live RAM instead of a copy, for
   * a reader that is done with it before the machine runs again (a hash).
   */
  saveState(opts: { ram?: "copy" | "view" } = {}): MachineState {
    return {
      cpu: this.engine.archState(),
      ram: opts.ram === "view" ? this.engine.ram : this.engine.ram.slice(),
      time: this.time.saveState(),
      wallEpochMs: this.wallEpochMs,
      idleSkips: this.idleSkips,
      exitStatus: this.exitStatus,
      devices: this.deviceStates(),
    };
  }

  /**
   * Puts this machine in `s` (saved by a machine of the same configuration,
   * on either engine). A state that does not fit is refused with a TypeError
   * naming the part, and leaves the machine as it was.
   */
  loadState(s: MachineState): void {
    const undo = this.saveState();
    try {
      this.applyState(s);
    } catch (e) {
      this.applyState(undo);
      throw e;
    }
  }

  private applyState(s: MachineState): void {
    const fail = (what: string): never => { throw new TypeError(`machine state: ${what}`); };
    if (!(s.ram instanceof Uint8Array) || s.ram.length !== this.engine.ramSize) fail(`ram must be ${this.engine.ramSize} bytes`);
    if (!Number.isFinite(s.wallEpochMs)) fail("wallEpochMs is not a number");
    if (!Number.isInteger(s.idleSkips) || s.idleSkips < 0 || s.idleSkips > MAX_IDLE_SKIPS) fail("idleSkips out of range");
    if (s.exitStatus !== null && !(Number.isInteger(s.exitStatus) && s.exitStatus >= 0 && s.exitStatus <= 0xffffffff)) fail("exitStatus out of range");
    const want = Object.keys(this.deviceStates()).sort().join(",");
    if (typeof s.devices !== "object" || s.devices === null || Object.keys(s.devices).sort().join(",") !== want) {
      fail(`devices must be exactly ${want}`);
    }
    // Each device and the CPU check their own parts as they load them.
    this.pic.loadState(s.devices.pic);
    this.pit.loadState(s.devices.pit);
    this.uart.loadState(s.devices.uart);
    this.rtc.loadState(s.devices.rtc);
    this.debugcon.loadState(s.devices.debugcon);
    this.exitPort.loadState(s.devices.exitPort);
    this.disk?.loadState(s.devices.disk);
    this.nic?.loadState(s.devices.nic);
    this.time.loadState(s.time);
    this.engine.setArchState(s.cpu);
    this.engine.writeMem(0, s.ram);
    this.wallEpochMs = s.wallEpochMs;
    this.idleSkips = s.idleSkips;
    this.exitStatus = s.exitStatus;
  }

  /** Each device's saved state, by name. */
  private deviceStates(): Record<string, unknown> {
    const devices: Record<string, unknown> = {
      pic: this.pic.saveState(),
      pit: this.pit.saveState(),
      uart: this.uart.saveState(),
      rtc: this.rtc.saveState(),
      debugcon: this.debugcon.saveState(),
      exitPort: this.exitPort.saveState(),
    };
    if (this.disk) devices.disk = this.disk.saveState();
    if (this.nic) devices.nic = this.nic.saveState();
    return devices;
  }

  /** How runSync ends: with the devices settled, whatever stopped it. */
  private outcome(reason: StopReason, start: bigint, exit?: Exit): RunOutcome {
    this.settle();
    const o: RunOutcome = { reason, instructions: this.engine.icount - start };
    if (reason === "exit-port") o.exitStatus = this.exitStatus!;
    if (exit) o.exit = exit;
    return o;
  }
}
