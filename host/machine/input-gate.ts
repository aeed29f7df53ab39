// The one gate for nondeterminism: the contract between the Machine, which
// calls it, and whoever decides what the outside world says. Everything the
// VM takes from outside itself passes through an InputGate, handed to the
// Machine at creation (the Machine never builds one itself):
//
//   time      host-clock readings (TIME anchors), RDTSC, the RTC's calendar base
//   entropy   RDRAND / RDSEED values
//   input     COM1 bytes, NIC frames, disk sector data
//
// host/replay/live-gate.ts reads the world and, when recording, writes each
// value to the replay log at the instruction count where the guest takes it;
// host/replay/replay-gate.ts reads the same values back from a log. The
// Machine calls both the same way, at the same points, so a replay retires
// the same instructions and sees the same values at the same counts.
//
// Two kinds of call:
// - asynchronous inputs: boundary() at an instruction boundary of the
//   machine's choosing; the live gate decides what arrives there, the replay
//   gate applies exactly the log's entries for that count;
// - synchronous values: rdtsc(), entropy(), diskRead(), asked for by an
//   instruction or a device at a count fixed by the guest's own execution.
// And one check: derived() reports consequences the machine computed itself
// (an interrupt delivered, a disk operation completed). The live gate logs
// them; the replay gate insists they happen at the same count with the same
// payload, which pins down a divergence to the first event that differs.

export type GateMode = "live" | "replay";

/** What the gate may look at when deciding the inputs at a boundary. */
export interface BoundaryView {
  readonly icount: bigint;
  /** Guest time now (ns). */
  readonly guestNs: number;
  /** Guest time of the next device event, or null. */
  readonly nextEventNs: number | null;
  readonly halted: boolean;
  /** Bytes the UART's receiver can take without overrunning. */
  readonly serialSpace: number;
}

/** How a gate hands asynchronous inputs to the machine (applied in call order). */
export interface InputSink {
  /** Moves guest time forward to `ns` at this boundary and brings the devices up to it. */
  setTime(ns: number): void;
  serialReceive(bytes: Uint8Array): void;
  nicReceive(frame: Uint8Array): void;
}

/** Consequences the machine derives and the replay checks. */
export type DerivedKind = "irq" | "disk-complete";

export interface InputGate {
  readonly mode: GateMode;
  /** Calendar time (ms since 1970) at guest time 0, for the RTC. */
  readonly epochMs: number;
  /** Asynchronous inputs at the boundary before instruction view.icount + 1. */
  boundary(view: BoundaryView, sink: InputSink): void;
  /** Instructions the machine may run from `icount` before it must come back to the gate; null: no limit. */
  budget(icount: bigint): number | null;
  /**
   * Asked at an input exit: should the machine make a boundary right after
   * this instruction? Live on the host clock: yes when a device event (from
   * `nextEventNs`) has come due by the host's clock, so that a guest polling a
   * device sees it complete in real time rather than after the drift of
   * guest time. Replay: never (its boundaries are the log's).
   */
  wantsBoundary(nextEventNs: () => number | null): boolean;
  /** True if the gate has more to apply at `icount` (a halted CPU must not be called idle yet). */
  pendingAt(icount: bigint): boolean;
  /**
   * The time-stamp counter for an RDTSC under the host clock, executed at
   * `view.icount` (guest time `view.guestNs`); it moves guest time to the
   * value. (Under the virtual clock the machine answers RDTSC from guest
   * time itself.)
   */
  rdtsc(view: BoundaryView, setTime: (ns: number) => void): bigint;
  /** 32 random bits for RDRAND/RDSEED at `icount`. */
  entropy(icount: bigint): number;
  /** Sector `lba`'s 512 bytes, read by the disk at `icount` (`read` reads the live store). */
  diskRead(icount: bigint, lba: number, read: () => Uint8Array): Uint8Array;
  /** A consequence the machine computed: `value` is the vector (irq) or the operation's number (disk-complete). */
  derived(icount: bigint, kind: DerivedKind, value: number): void;
  /** Live only: queue bytes arriving on COM1 / a frame arriving on the NIC. */
  queueSerial(bytes: ArrayLike<number>): void;
  queueFrame(frame: Uint8Array): void;
  /** Host time elapsed since the machine started (ns), for a live host-clock run's waits; null if time is not the host's. */
  hostElapsedNs(): number | null;
}
