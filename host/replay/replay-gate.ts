// The replay side of the gate (host/machine/input-gate.ts): every outside value comes from the
// log, at the instruction count the log gives, and nothing else is read: no
// clock, no socket, no file. The machine's own consequences (interrupts
// delivered, disk completions) must match the log's checks, so the first
// instruction where a replay departs from the recording is reported with
// what differed.
//
// The entries arrive through an EntryQueue, filled from a whole log or, for a
// backup following a primary, as they come over the channel.

import { VIRTUAL_EPOCH_MS, type ClockMode } from "../machine/guest-time.js";
import type { BoundaryView, DerivedKind, GateMode, InputGate, InputSink } from "../machine/input-gate.js";
import { codesIn, kindName, KINDS, type KindSpec } from "./event-kinds.js";
import { LogFormatError, type LogEntry } from "./log-format.js";
import { DivergenceError } from "./divergence.js";
import { DERIVED_KINDS } from "./live-gate.js";

/** Entries in log order; consumed from the front, appended at the back. */
export class EntryQueue {
  private items: LogEntry[] = [];
  private pos = 0;
  /** Entries taken so far. */
  consumed = 0;

  constructor(entries: readonly LogEntry[] = []) {
    this.push(entries);
  }
  /** Appends entries (an array, not spread arguments: a log can hold millions). */
  push(entries: readonly LogEntry[]): void {
    for (const e of entries) this.items.push(e);
  }
  peek(): LogEntry | undefined {
    return this.items[this.pos];
  }
  take(): LogEntry {
    const e = this.items[this.pos++];
    if (!e) throw new Error("EntryQueue.take on an empty queue");
    this.consumed++;
    if (this.pos > 4096 && this.pos * 2 > this.items.length) {
      this.items = this.items.slice(this.pos);
      this.pos = 0;
    }
    return e;
  }
  get length(): number {
    return this.items.length - this.pos;
  }
}

/** Entries applied at boundary(): outside input that arrives between instructions. */
const INPUT_KINDS = codesIn("boundary");
/**
 * Entries an instruction asks for while it executes: the exit comes with the
 * count before that instruction retires, so the run must be allowed one
 * instruction past the entry's count to reach it.
 */
const INSTRUCTION_KINDS = codesIn("instruction");

const describe = (e: LogEntry) => `${kindName(e.kind)} at instruction ${e.icount}`;
const hexBytes = (b: Uint8Array) => Array.from(b.subarray(0, 16), (x) => x.toString(16).padStart(2, "0")).join(" ") + (b.length > 16 ? " …" : "");

/**
 * The entry's value as `kind` says. Its payload was checked against the
 * event table where its bytes were read (host/replay/log-format.ts, for a
 * file and for the channel's LOG frames alike), so it is not checked again.
 */
function valueOf<V>(e: LogEntry, kind: KindSpec<V>): V {
  return kind.decode(e.payload);
}

export interface ReplayGateOptions {
  clock: ClockMode;
  /** The log's entries (the WALLCLOCK entry first under the host clock). */
  queue: EntryQueue;
  /**
   * The calendar base, when the log does not start at the beginning (a
   * backup that received the machine's state at some count, host/ft/
   * state-transfer.ts): no WALLCLOCK entry is expected then.
   */
  epochMs?: number;
}

export class ReplayGate implements InputGate {
  readonly mode: GateMode = "replay";
  readonly epochMs: number;
  private readonly q: EntryQueue;
  private stuckAt = -1;

  constructor(opts: ReplayGateOptions) {
    this.q = opts.queue;
    if (opts.epochMs !== undefined) {
      this.epochMs = opts.epochMs;
    } else if (opts.clock === "virtual") {
      this.epochMs = VIRTUAL_EPOCH_MS;
    } else {
      const e = this.q.peek();
      if (!e || e.kind !== KINDS.WALLCLOCK.code) {
        throw new LogFormatError(e?.offset ?? 0, `a host-clock log must begin with WALLCLOCK, found ${e ? kindName(e.kind) : "no entries"}`);
      }
      this.epochMs = valueOf(this.q.take(), KINDS.WALLCLOCK);
    }
  }

  /** Takes the entry the machine says comes now, `kind` at `icount`, and its value. */
  private expect<V>(icount: bigint, kind: KindSpec<V>, what: string): { e: LogEntry; v: V } {
    const e = this.q.peek();
    if (!e) throw new DivergenceError(icount, `the guest ${what} but the log has no more events`);
    if (e.icount !== icount || e.kind !== kind.code) {
      throw new DivergenceError(icount, `the guest ${what} but the log's next event is ${describe(e)}`, e.offset);
    }
    const v = valueOf(e, kind);
    this.q.take();
    return { e, v };
  }

  boundary(v: BoundaryView, sink: InputSink): void {
    for (;;) {
      const e = this.q.peek();
      if (!e) return;
      if (e.icount < v.icount) throw new DivergenceError(v.icount, `the log's next event, ${describe(e)}, was passed`, e.offset);
      if (e.icount !== v.icount || !INPUT_KINDS.has(e.kind)) return;
      switch (e.kind) {
        case KINDS.TIME.code: {
          const ns = valueOf(e, KINDS.TIME);
          if (ns < v.guestNs) throw new DivergenceError(v.icount, `the log's TIME ${ns} ns is before the replay's guest time ${v.guestNs} ns`, e.offset);
          this.q.take();
          sink.setTime(ns);
          break;
        }
        case KINDS.SERIAL_RX.code: {
          const bytes = valueOf(e, KINDS.SERIAL_RX);
          if (bytes.length > v.serialSpace) {
            throw new DivergenceError(v.icount, `the log delivers ${bytes.length} serial bytes but COM1 has room for ${v.serialSpace}`, e.offset);
          }
          this.q.take();
          sink.serialReceive(bytes);
          break;
        }
        case KINDS.NIC_RX.code:
          this.q.take();
          sink.nicReceive(valueOf(e, KINDS.NIC_RX));
          break;
      }
    }
  }

  budget(icount: bigint): number | null {
    const e = this.q.peek();
    if (!e) return null;
    if (e.icount < icount) throw new DivergenceError(icount, `the log's next event, ${describe(e)}, was passed`, e.offset);
    const gap = e.icount - icount;
    if (INSTRUCTION_KINDS.has(e.kind)) return Number(gap + 1n > 0x7fffffffn ? 0x7fffffffn : gap + 1n);
    if (gap === 0n) {
      if (!INPUT_KINDS.has(e.kind)) {
        throw new DivergenceError(icount, `the log has ${describe(e)} (${hexBytes(e.payload)}) but the replay did not produce it`, e.offset);
      }
      // An input the boundary has not taken yet: come back without running,
      // but only once per entry.
      if (this.stuckAt === this.q.consumed) throw new DivergenceError(icount, `the replay cannot apply ${describe(e)}`, e.offset);
      this.stuckAt = this.q.consumed;
      return 0;
    }
    return Number(gap > 0x7fffffffn ? 0x7fffffffn : gap);
  }

  /** Entries not yet consumed. */
  get remaining(): number {
    return this.q.length;
  }

  wantsBoundary(): boolean {
    return false;
  }

  /** True if the log has an input for this count still to apply (a halted guest must not be called idle yet). */
  pendingAt(icount: bigint): boolean {
    const e = this.q.peek();
    return e !== undefined && e.icount === icount && INPUT_KINDS.has(e.kind);
  }

  /** The next entry not yet used, in words ("IRQ at instruction 1234") and its log offset; null at the end. */
  next(): { what: string; offset?: number } | null {
    const e = this.q.peek();
    return e ? { what: describe(e), offset: e.offset } : null;
  }

  rdtsc(view: BoundaryView, setTime: (ns: number) => void): bigint {
    const icount = view.icount;
    const guestNs = view.guestNs;
    const { e, v } = this.expect(icount, KINDS.RDTSC, "executed RDTSC");
    if (v < Math.ceil(guestNs)) throw new DivergenceError(icount, `the log's RDTSC ${v} is before the replay's guest time ${guestNs} ns`, e.offset);
    setTime(v);
    return BigInt(v);
  }

  entropy(icount: bigint): number {
    return this.expect(icount, KINDS.ENTROPY, "executed RDRAND/RDSEED").v;
  }

  diskRead(icount: bigint, lba: number): Uint8Array {
    const { e, v } = this.expect(icount, KINDS.DISK_READ_DATA, `read disk sector ${lba}`);
    if (v.lba !== lba) throw new DivergenceError(icount, `the disk read sector ${lba} but the log has sector ${v.lba}`, e.offset);
    return v.data;
  }

  derived(icount: bigint, kind: DerivedKind, value: number): void {
    const what = kind === "irq" ? `delivered interrupt vector 0x${value.toString(16)}` : `completed a disk operation (${value})`;
    const { e, v } = this.expect(icount, DERIVED_KINDS[kind], what);
    if (v !== value) throw new DivergenceError(icount, `the replay ${what} but the log has ${hexBytes(e.payload)}`, e.offset);
  }

  queueSerial(): void {
    throw new Error("a replaying machine takes its input from the log");
  }
  queueFrame(): void {
    throw new Error("a replaying machine takes its input from the log");
  }
  hostElapsedNs(): null {
    return null;
  }
}
