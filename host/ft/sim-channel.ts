// One direction of the simulated channel: the frames a sender's FramedLink
// (link.ts) puts on the wire, delayed and, from a seed, damaged the way a
// faulty network or transport would — dropped, duplicated, two swapped,
// corrupted, delayed by a jitter — or cut. The receiving FramedLink's reader
// (frame-reader.ts) then applies the protocol's rules: a repeat is dropped
// and counted; a gap, a swap or a corrupted frame closes the link.
//
// Pure and clock-free: the caller says what time it is.

import { seededEntropy } from "../replay/live-gate.js";

/** Frame-level faults on one direction, each a chance per frame sent (0..1). */
export interface ChannelNoise {
  drop?: number;
  duplicate?: number;
  /** The frame is held back and goes after the next one sent. */
  reorder?: number;
  /** One bit of the frame flipped. */
  corrupt?: number;
  /** Extra delay of each frame, 0..jitterMs ms; frames stay in order (a stream). */
  jitterMs?: number;
}

/** What the direction did to the frames put on it (for reports and the soak's counts). */
export interface ChannelCounts {
  sent: number;
  /** Messages handed to the receiver (pieces of frames, on a stream). */
  delivered: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  /** Frames lost to a cut or to the sender's death. */
  lost: number;
}

interface Item {
  at: number;
  bytes: Uint8Array | null; // null: the sender's end closed (a FIN)
}

export class SimChannel {
  readonly counts: ChannelCounts = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, reordered: 0, corrupted: 0, lost: 0 };
  /** Nothing put on a cut direction arrives. */
  cut = false;
  /** In arrival order (items due at one time keep the order they were put in). */
  private q: Item[] = [];
  /** When the last in-order frame arrives: later frames never overtake it. */
  private lastAt = 0;
  private held: Uint8Array | null = null;
  private readonly r: () => number;

  /**
   * `split`: a byte stream (TCP) rather than one frame per message: each
   * frame arrives in up to three pieces cut at seeded points, so the
   * receiving reader meets frames cut short.
   */
  constructor(private readonly delayMs: number, private readonly noise: ChannelNoise = {}, seed = 1, private readonly split = false) {
    this.r = seededEntropy(seed);
  }

  private chance(p: number | undefined): boolean {
    return p !== undefined && p > 0 && this.r() / 0x1_0000_0000 < p;
  }

  private enqueue(at: number, bytes: Uint8Array | null): void {
    if (this.split && bytes !== null && bytes.length > 1) {
      const cuts = [this.r() % bytes.length, this.r() % bytes.length].filter((c) => c > 0).sort((x, y) => x - y);
      let from = 0;
      for (const c of [...cuts, bytes.length]) {
        if (c > from) this.put(at, bytes.subarray(from, c));
        from = c;
      }
      return;
    }
    this.put(at, bytes);
  }

  private put(at: number, bytes: Uint8Array | null): void {
    const item = { at, bytes };
    let k = this.q.length;
    while (k > 0 && (this.q[k - 1]!.at > at)) k--;
    this.q.splice(k, 0, item);
  }

  private inOrder(nowMs: number): number {
    const j = this.noise.jitterMs ? this.r() % (this.noise.jitterMs + 1) : 0;
    this.lastAt = Math.max(this.lastAt, nowMs + this.delayMs + j);
    return this.lastAt;
  }

  /** A frame's bytes, put on the wire now. */
  send(bytes: Uint8Array, nowMs: number): void {
    this.counts.sent++;
    if (this.cut) { this.counts.lost++; return; }
    if (this.chance(this.noise.drop)) { this.counts.dropped++; return; }
    if (this.chance(this.noise.corrupt)) {
      bytes = bytes.slice();
      const bit = this.r() % (bytes.length * 8);
      bytes[bit >> 3]! ^= 1 << (bit & 7);
      this.counts.corrupted++;
    }
    if (this.held === null && this.chance(this.noise.reorder)) {
      this.held = bytes;
      this.counts.reordered++;
      return;
    }
    const at = this.inOrder(nowMs);
    this.enqueue(at, bytes);
    if (this.held !== null) {
      this.enqueue(at, this.held);
      this.held = null;
    }
    // A copy a little later, possibly after frames sent after it: the reader must take it for a repeat.
    if (this.chance(this.noise.duplicate)) {
      this.counts.duplicated++;
      this.enqueue(at + (this.r() % 3), bytes);
    }
  }

  /** The sender's end closed: the receiver learns it after what was already in flight. */
  close(nowMs: number): void {
    if (this.cut) return;
    this.enqueue(this.inOrder(nowMs), null);
  }

  /** Everything in flight is lost (a cut, or a sender that died with its buffers). */
  loseInFlight(): void {
    this.counts.lost += this.q.filter((x) => x.bytes !== null).length + (this.held ? 1 : 0);
    this.q = [];
    this.held = null;
  }

  /** The next item due by `nowMs`: a frame's bytes, "end" for a closed sender, or undefined. */
  take(nowMs: number): Uint8Array | "end" | undefined {
    const first = this.q[0];
    if (!first || first.at > nowMs) return undefined;
    this.q.shift();
    if (first.bytes === null) return "end";
    this.counts.delivered++;
    return first.bytes;
  }

  get inFlight(): number {
    return this.q.length;
  }
}
