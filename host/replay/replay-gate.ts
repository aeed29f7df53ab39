// The replay side of the gate (gate.ts): every outside value comes from the
// log, at the instruction count the log gives, and nothing else is read: no
// clock, no socket, no file. The machine's own consequences (interrupts
// delivered, disk completions) must match the log's checks, so the first
// instruction where a replay departs from the recording is reported with
// what differed.
//
// The entries arrive through an EntryQueue, filled from a whole log or, for a
// backup following a primary, as they come over the channel.

import type { ClockMode } from "../machine/guest-time.js";
import { EventKind, kindName, LogFormatError, type LogEntry } from "./log-format.js";
import { DivergenceError, type BoundaryView, type DerivedKind, type GateMode, type InputGate, type InputSink } from "./gate.js";
import { VIRTUAL_EPOCH_MS } from "./live-gate.js";

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
const INPUT_KINDS = new Set<number>([EventKind.TIME, EventKind.SERIAL_RX, EventKind.NIC_RX]);
/**
 * Entries an instruction asks for while it executes: the exit comes with the
 * count before that instruction retires, so the run must be allowed one
 * instruction past the entry's count to reach it. (DISK_READ_DATA is taken
 * when the disk completes an operation, between instructions, like a check.)
 */
const INSTRUCTION_KINDS = new Set<number>([EventKind.RDTSC, EventKind.ENTROPY]);
const DERIVED = { irq: EventKind.IRQ, "disk-complete": EventKind.DISK_COMPLETE } as const;
/** Payload sizes the replay needs beyond those the framing already fixes (fixedPayloadSize). */
const PAYLOAD_SIZE = new Map<number, number>([
  [EventKind.ENTROPY, 4], [EventKind.IRQ, 1], [EventKind.DISK_COMPLETE, 1], [EventKind.DISK_READ_DATA, 516],
]);

const describe = (e: LogEntry) => `${kindName(e.kind)} at instruction ${e.icount}`;
const hexBytes = (b: Uint8Array) => Array.from(b.subarray(0, 16), (x) => x.toString(16).padStart(2, "0")).join(" ") + (b.length > 16 ? " …" : "");

function u64(e: LogEntry): number {
  const v = new DataView(e.payload.buffer, e.payload.byteOffset).getBigUint64(0, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new LogFormatError(e.offset ?? 0, `${kindName(e.kind)} value ${v} is too large`);
  return Number(v);
}

export interface ReplayGateOptions {
  clock: ClockMode;
  /** The log's entries (the WALLCLOCK entry first under the host clock). */
  queue: EntryQueue;
}

export class ReplayGate implements InputGate {
  readonly mode: GateMode = "replay";
  readonly epochMs: number;
  private readonly q: EntryQueue;
  private stuckAt = -1;

  constructor(opts: ReplayGateOptions) {
    this.q = opts.queue;
    if (opts.clock === "virtual") {
      this.epochMs = VIRTUAL_EPOCH_MS;
    } else {
      const e = this.q.peek();
      if (!e || e.kind !== EventKind.WALLCLOCK) {
        throw new LogFormatError(e?.offset ?? 0, `a host-clock log must begin with WALLCLOCK, found ${e ? kindName(e.kind) : "no entries"}`);
      }
      this.epochMs = u64(this.take());
    }
  }

  private take(): LogEntry {
    const e = this.q.take();
    const want = PAYLOAD_SIZE.get(e.kind);
    if (want !== undefined && e.payload.length !== want) {
      throw new LogFormatError(e.offset ?? 0, `${kindName(e.kind)} payload must be ${want} bytes, got ${e.payload.length}`);
    }
    return e;
  }

  /** Takes the entry the machine says comes now: `kind` at `icount`. */
  private expect(icount: bigint, kind: number, what: string): LogEntry {
    const e = this.q.peek();
    if (!e) throw new DivergenceError(icount, `the guest ${what} but the log has no more events`);
    if (e.icount !== icount || e.kind !== kind) {
      throw new DivergenceError(icount, `the guest ${what} but the log's next event is ${describe(e)}`, e.offset);
    }
    return this.take();
  }

  boundary(v: BoundaryView, sink: InputSink): void {
    for (;;) {
      const e = this.q.peek();
      if (!e) return;
      if (e.icount < v.icount) throw new DivergenceError(v.icount, `the log's next event, ${describe(e)}, was passed`, e.offset);
      if (e.icount !== v.icount || !INPUT_KINDS.has(e.kind)) return;
      this.take();
      switch (e.kind) {
        case EventKind.TIME: {
          const ns = u64(e);
          if (ns < v.guestNs) throw new DivergenceError(v.icount, `the log's TIME ${ns} ns is before the replay's guest time ${v.guestNs} ns`, e.offset);
          sink.setTime(ns);
          break;
        }
        case EventKind.SERIAL_RX:
          if (e.payload.length > v.serialSpace) {
            throw new DivergenceError(v.icount, `the log delivers ${e.payload.length} serial bytes but COM1 has room for ${v.serialSpace}`, e.offset);
          }
          sink.serialReceive(e.payload);
          break;
        case EventKind.NIC_RX:
          sink.nicReceive(e.payload);
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

  rdtsc(icount: bigint, guestNs: number, setTime: (ns: number) => void): bigint {
    const e = this.expect(icount, EventKind.RDTSC, "executed RDTSC");
    const v = u64(e);
    if (v < Math.ceil(guestNs)) throw new DivergenceError(icount, `the log's RDTSC ${v} is before the replay's guest time ${guestNs} ns`, e.offset);
    setTime(v);
    return BigInt(v);
  }

  entropy(icount: bigint): number {
    const e = this.expect(icount, EventKind.ENTROPY, "executed RDRAND/RDSEED");
    return new DataView(e.payload.buffer, e.payload.byteOffset).getUint32(0, true);
  }

  diskRead(icount: bigint, lba: number): Uint8Array {
    const e = this.expect(icount, EventKind.DISK_READ_DATA, `read disk sector ${lba}`);
    const logged = new DataView(e.payload.buffer, e.payload.byteOffset).getUint32(0, true);
    if (logged !== lba) throw new DivergenceError(icount, `the disk read sector ${lba} but the log has sector ${logged}`, e.offset);
    return e.payload.slice(4);
  }

  derived(icount: bigint, kind: DerivedKind, payload: Uint8Array): void {
    const what = kind === "irq" ? `delivered interrupt vector 0x${payload[0]!.toString(16)}` : `completed a disk operation (${payload[0]})`;
    const e = this.expect(icount, DERIVED[kind], what);
    if (e.payload.length !== payload.length || e.payload.some((b, i) => b !== payload[i])) {
      throw new DivergenceError(icount, `the replay ${what} but the log has ${hexBytes(e.payload)}`, e.offset);
    }
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
