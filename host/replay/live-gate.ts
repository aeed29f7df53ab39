// The live side of the gate (host/machine/input-gate.ts): reads the world — the host's clocks,
// its entropy, the bytes and frames that arrive — and, when recording, logs
// every value at the instruction count where the guest takes it.
//
// Host clock: guest time follows the host's monotonic clock, but only through
// TIME anchors taken at instruction boundaries: when a device event has come
// due by the host's clock, when input is about to arrive, when the guest has
// been running for RESYNC_NS since the last reading, and at every RDTSC.
// Between anchors guest time advances at NS_PER_INSTRUCTION.host, so
// everything the guest sees about time is a function of the instruction
// count and the logged anchors.
//
// Two rules keep a late host (a driver woken after several timer periods, a
// busy machine) from squeezing device events together, so a guest sees one
// timer interrupt per period as on hardware (docs/replay.md, "Readings"):
// - a reading never moves guest time past the next device event that has not
//   fired: time catches up with the host event by event;
// - a running guest's time is moved only after it has run RUN_GAP_NS of its
//   own time (instructions x 1 ns) since the last reading; a halted guest's
//   at once. A guest that takes a tick and goes back to HLT within that gap
//   therefore takes the next tick halted too, not inside the handler of this
//   one or in the loop around its HLT.
// Virtual clock: time is the instruction count's; nothing about it is read
// from the host or logged.

import { VIRTUAL_EPOCH_MS, type ClockMode } from "../machine/guest-time.js";
import type { BoundaryView, DerivedKind, GateMode, InputGate, InputSink } from "../machine/input-gate.js";
import { KINDS, type KindSpec } from "./event-kinds.js";
/** Longest a running (not halted) guest goes without a host-clock reading (host clock). */
export const RESYNC_NS = 10_000_000;
/** Guest time a running guest executes between two readings that move its time (host clock). */
export const RUN_GAP_NS = 100_000;

/** Where the live gate reads the world; tests substitute their own. */
export interface World {
  /** The host's monotonic clock (ns). */
  hostNs(): number;
  /** Calendar time now (ms since 1970). */
  epochMs(): number;
  /** 32 random bits. */
  entropy(): number;
}

/** A 32-bit xorshift: deterministic "entropy" for the virtual clock. */
export function seededEntropy(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

/** The seed of the virtual clock's default entropy ("lock"). */
export const VIRTUAL_ENTROPY_SEED = 0x6c6f636b;

export const HOST_WORLD: World = {
  hostNs: () => performance.now() * 1e6,
  epochMs: () => Date.now(),
  entropy: () => crypto.getRandomValues(new Uint32Array(1))[0]!,
};

/** Receives each logged event (a LogWriter's append, or a network channel). */
export type EventSink = (icount: bigint, kind: number, payload: Uint8Array) => void;

export interface LiveGateOptions {
  clock: ClockMode;
  /** Sources; by default the host's (entropy: a seeded generator under the virtual clock). */
  world?: Partial<World>;
  /** Where to log events; none: a plain run. */
  record?: EventSink;
  /** The instruction count the machine starts at (where the calendar base is logged). */
  startIcount?: bigint;
  /**
   * Guest time when this gate takes over a machine that has already run (a
   * backup going live): the host's clock at the first boundary counts as
   * this guest time, so time goes on from where the guest is.
   */
  startGuestNs?: number;
}

/** The log kind of each consequence the machine reports. */
export const DERIVED_KINDS = { irq: KINDS.IRQ, "disk-complete": KINDS.DISK_COMPLETE } as const;

export class LiveGate implements InputGate {
  readonly mode: GateMode = "live";
  readonly epochMs: number;
  private readonly clock: ClockMode;
  private readonly hostNs: () => number;
  private readonly random: () => number;
  /** Host time at the first boundary: guest time 0 is when the guest starts running, not when the machine was built. */
  private hostStart: number | null = null;
  private readonly record: EventSink | null;
  /** Host time of the last reading, and the guest time it set. */
  private lastReading = 0;
  private lastAnchorNs: number;
  private readonly startGuestNs: number;
  private serial: number[] = [];
  private frames: Uint8Array[] = [];

  constructor(opts: LiveGateOptions) {
    const w = opts.world ?? {};
    this.clock = opts.clock;
    this.startGuestNs = opts.startGuestNs ?? 0;
    this.lastAnchorNs = this.startGuestNs;
    this.record = opts.record ?? null;
    this.hostNs = w.hostNs ?? HOST_WORLD.hostNs;
    this.random = w.entropy ?? (opts.clock === "virtual" ? seededEntropy(VIRTUAL_ENTROPY_SEED) : HOST_WORLD.entropy);
    if (opts.clock === "virtual") {
      this.epochMs = VIRTUAL_EPOCH_MS;
    } else {
      this.epochMs = Math.floor((w.epochMs ?? HOST_WORLD.epochMs)());
      this.log(opts.startIcount ?? 0n, KINDS.WALLCLOCK, this.epochMs);
    }
  }

  private log<V>(icount: bigint, kind: KindSpec<V>, value: V): void {
    this.record?.(icount, kind.code, kind.encode(value));
  }

  /** Host time since the start, whole ns (never negative), plus the guest time the gate took over at. */
  private elapsed(): number {
    this.hostStart ??= this.hostNs();
    return this.startGuestNs + Math.max(0, Math.floor(this.hostNs() - this.hostStart));
  }

  hostElapsedNs(): number | null {
    return this.clock === "host" ? this.elapsed() : null;
  }

  boundary(v: BoundaryView, sink: InputSink): void {
    if (this.clock === "host") {
      // A reading is logged only when it matters: a device event has come
      // due, input is about to arrive (the guest may look at the time when
      // it wakes for it), or the guest has been running a while. A guest
      // idling in HLT does not age between readings, so it needs none.
      const h = this.elapsed();
      const next = v.nextEventNs; // a walk over the timed devices: read once
      const due = next !== null && next <= h;
      const input = (this.serial.length > 0 && v.serialSpace > 0) || this.frames.length > 0;
      const stale = !v.halted && h - this.lastReading >= RESYNC_NS;
      if (due || input || stale) {
        const guestNs = v.guestNs;
        const target = this.target(v.halted, guestNs, next, h);
        if (target > guestNs) {
          this.lastReading = h;
          this.setTime(v.icount, target, sink.setTime);
        }
      }
    }
    if (this.serial.length > 0 && v.serialSpace > 0) {
      const bytes = Uint8Array.from(this.serial.splice(0, Math.min(this.serial.length, v.serialSpace)));
      this.log(v.icount, KINDS.SERIAL_RX, bytes);
      sink.serialReceive(bytes);
    }
    while (this.frames.length > 0) {
      const f = this.frames.shift()!;
      this.log(v.icount, KINDS.NIC_RX, f);
      sink.nicReceive(f);
    }
  }

  /**
   * Where a reading of `h` may move guest time now: not past the next device
   * event, and, for a running guest that has not yet run RUN_GAP_NS since the
   * last reading, nowhere (its own time).
   */
  private target(halted: boolean, guestNs: number, next: number | null, h: number): number {
    if (!halted && guestNs - this.lastAnchorNs < RUN_GAP_NS) return guestNs;
    return next !== null ? Math.min(h, next) : h;
  }

  private setTime(icount: bigint, ns: number, set: (ns: number) => void): void {
    this.lastAnchorNs = ns;
    this.log(icount, KINDS.TIME, ns);
    set(ns);
  }

  budget(): number | null {
    return null;
  }

  pendingAt(): boolean {
    return false;
  }

  wantsBoundary(nextEventNs: () => number | null): boolean {
    if (this.clock !== "host") return false;
    const next = nextEventNs();
    return next !== null && this.elapsed() >= next;
  }

  rdtsc(view: BoundaryView, setTime: (ns: number) => void): bigint {
    // A fresh reading under the same rules as a boundary's, never behind
    // guest time; it becomes the new anchor.
    const h = this.elapsed();
    const guestNs = view.guestNs;
    const v = Math.max(this.target(view.halted, guestNs, view.nextEventNs, h), Math.ceil(guestNs));
    this.lastReading = h;
    this.lastAnchorNs = v;
    this.log(view.icount, KINDS.RDTSC, v);
    setTime(v);
    return BigInt(v);
  }

  entropy(icount: bigint): number {
    const v = this.random() >>> 0;
    this.log(icount, KINDS.ENTROPY, v);
    return v;
  }

  diskRead(icount: bigint, lba: number, read: () => Uint8Array): Uint8Array {
    const data = read();
    if (this.record) this.log(icount, KINDS.DISK_READ_DATA, { lba, data });
    return data;
  }

  derived(icount: bigint, kind: DerivedKind, value: number): void {
    this.log(icount, DERIVED_KINDS[kind], value);
  }

  queueSerial(bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) this.serial.push(bytes[i]! & 0xff);
  }

  queueFrame(frame: Uint8Array): void {
    this.frames.push(frame.slice());
  }
}
