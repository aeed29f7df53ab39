// The Output Rule (the VMware FT design): no output reaches the outside world
// before the backup has acknowledged the log up to the instruction count that
// produced it. The primary's guest keeps running meanwhile; its outputs wait
// here, in order, and leave when an acknowledgement covers them.
//
// Outputs are numbered in the order the guest produced them (one number per
// COM1 byte, debug-console byte, NIC frame, exit status, disk sector written
// or disk flush: the disk is shared, so its writes are outputs too,
// docs/ft-disk.md). Both replicas
// number them the same way, because both produce the same outputs in the same
// order: that is how a client tells a repeat (after a failover the new
// primary sends again what the old one may already have released) from new
// output.

/** Where an output goes. */
export type OutputChannel = "serial" | "debugcon" | "frame" | "exit" | "disk" | "flush";

export interface Output {
  /** 1 for the guest's first output, +1 for each after it. */
  seq: number;
  /** The instruction count when the output was made (the instruction that made it has retired). */
  icount: bigint;
  channel: OutputChannel;
  /** The byte (serial, debugcon), the exit status (exit), the frame, or the sector's 512 bytes (disk); 0 for a flush. */
  value: number | Uint8Array;
  /** The sector written (disk only). */
  lba?: number;
}

/** Numbers a machine's outputs as it makes them. */
export class OutputCounter {
  private last: number;

  /** `start`: the number of the last output already made (a backup that joins from a transferred state). */
  constructor(private readonly icount: () => bigint, start = 0) {
    this.last = start;
  }

  /** The number the next output will get, less one. */
  get seq(): number {
    return this.last;
  }

  next(channel: OutputChannel, value: number | Uint8Array, lba?: number): Output {
    const o: Output = { seq: ++this.last, icount: this.icount(), channel, value: value instanceof Uint8Array ? value.slice() : value };
    if (lba !== undefined) o.lba = lba;
    return o;
  }
}

export class OutputGate {
  private held: Output[] = [];
  private head = 0;
  /** The highest instruction count the backup has acknowledged. */
  private acked = -1n;
  /** Checkpoint mode: the highest output number a checkpoint the backup holds covers. */
  private ackedSeq = 0;
  /** The last output released. */
  released = 0;

  /** An output the guest just made: released at once if the acknowledgement already covers it. */
  hold(o: Output): Output[] {
    this.held.push(o);
    return this.drain();
  }

  /** The backup holds the log up to `icount`: every output made at or before it may go. */
  ack(icount: bigint): Output[] {
    if (icount > this.acked) this.acked = icount;
    return this.drain();
  }

  /**
   * Checkpoint mode: the backup holds a checkpoint that covers every output
   * up to number `seq` (outputs are covered by number, not by count: a
   * device can make one at the checkpoint's count after it was taken).
   */
  ackSeq(seq: number): Output[] {
    if (seq > this.ackedSeq) this.ackedSeq = seq;
    return this.drain();
  }

  /** Without a backup (it failed, and this primary won the arbiter to go on alone): everything held goes. */
  releaseAll(): Output[] {
    this.acked = BigInt(Number.MAX_SAFE_INTEGER) << 16n;
    return this.drain();
  }

  /** Outputs waiting for an acknowledgement. */
  get waiting(): number {
    return this.held.length - this.head;
  }

  /** The instruction count of the oldest output waiting, or null. */
  get oldestIcount(): bigint | null {
    return this.head < this.held.length ? this.held[this.head]!.icount : null;
  }

  private drain(): Output[] {
    const out: Output[] = [];
    const covered = (o: Output) => o.icount <= this.acked || o.seq <= this.ackedSeq;
    while (this.head < this.held.length && covered(this.held[this.head]!)) out.push(this.held[this.head++]!);
    if (this.head > 1024 && this.head * 2 > this.held.length) {
      this.held = this.held.slice(this.head);
      this.head = 0;
    }
    if (out.length > 0) this.released = out[out.length - 1]!.seq;
    return out;
  }
}

/** How long outputs waited between being made and being released: the Output Rule's cost, ms. */
export interface HoldFigures {
  outputs: number;
  meanMs: number;
  maxMs: number;
}

/** The same for one channel, with its median and 99th percentile (to HOLD_BUCKET_MS, from a histogram). */
export interface ChannelHoldFigures extends HoldFigures {
  medianMs: number;
  p99Ms: number;
}

/** The hold-time histogram's resolution and reach: holds past HOLD_BUCKETS buckets count in the last. */
export const HOLD_BUCKET_MS = 0.01;
const HOLD_BUCKETS = 10_000;

/**
 * Measures the Output Rule's delay on one replica: each output's time made
 * (the driver's clock) until its release, over all outputs and per channel
 * (a kv reply is a frame, a console byte serial). Outputs leave in number
 * order, so a queue suffices.
 */
export class HoldTimes {
  private made: { seq: number; ms: number; channel: string }[] = [];
  private head = 0;
  private total = 0;
  readonly figures: HoldFigures = { outputs: 0, meanMs: 0, maxMs: 0 };
  private readonly channels = new Map<string, { hist: Uint32Array; total: number; f: HoldFigures }>();

  madeAt(seq: number, ms: number, channel = "serial"): void {
    this.made.push({ seq, ms, channel });
  }

  /** Per channel: the outputs released so far, their mean, median, 99th percentile and longest hold. */
  byChannel(): Record<string, ChannelHoldFigures> {
    const out: Record<string, ChannelHoldFigures> = {};
    for (const [name, c] of this.channels) {
      const at = (q: number) => {
        const want = Math.ceil(q * c.f.outputs);
        let seen = 0;
        for (let i = 0; i < HOLD_BUCKETS; i++) if ((seen += c.hist[i]!) >= want) return (i + 0.5) * HOLD_BUCKET_MS;
        return c.f.maxMs;
      };
      out[name] = { ...c.f, medianMs: Math.min(at(0.5), c.f.maxMs), p99Ms: Math.min(at(0.99), c.f.maxMs) };
    }
    return out;
  }

  /** Every output up to number `seq` was released at `ms`. */
  releasedAt(seq: number, ms: number): void {
    const f = this.figures;
    while (this.head < this.made.length && this.made[this.head]!.seq <= seq) {
      const m = this.made[this.head++]!;
      const d = ms - m.ms;
      f.outputs++;
      this.total += d;
      if (d > f.maxMs) f.maxMs = d;
      let c = this.channels.get(m.channel);
      if (!c) this.channels.set(m.channel, (c = { hist: new Uint32Array(HOLD_BUCKETS), total: 0, f: { outputs: 0, meanMs: 0, maxMs: 0 } }));
      c.hist[Math.min(HOLD_BUCKETS - 1, Math.max(0, Math.floor(d / HOLD_BUCKET_MS)))]!++;
      c.f.outputs++;
      c.total += d;
      c.f.meanMs = c.total / c.f.outputs;
      if (d > c.f.maxMs) c.f.maxMs = d;
    }
    f.meanMs = f.outputs > 0 ? this.total / f.outputs : 0;
    if (this.head > 1024 && this.head * 2 > this.made.length) {
      this.made = this.made.slice(this.head);
      this.head = 0;
    }
  }
}
