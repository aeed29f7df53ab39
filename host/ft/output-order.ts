// The outside world's side of the output numbering (output-gate.ts): outputs
// released by whichever replica is live, taken once each and in number order.
// After a failover the new primary releases again what the old one may
// already have released; those repeats are dropped by their numbers, and an
// output that arrives ahead of a gap waits for it. The pair's drivers (the
// Node one, host/node/ft-pair.ts, and the browser's, web/pair.ts) hand every
// released output here.

import type { Output } from "./output-gate.js";

export class OutputOrder {
  /** The number of the last output handed on. */
  private shown = 0;
  private dropped = 0;
  private readonly waiting = new Map<number, Output>();

  /** `deliver` gets each output once, in number order (1, 2, 3, ...). */
  constructor(private readonly deliver: (o: Output) => void) {}

  /** An output as a replica released it; repeats are counted and dropped. */
  take(x: Output): void {
    if (x.seq <= this.shown || this.waiting.has(x.seq)) {
      this.dropped++;
      return;
    }
    this.waiting.set(x.seq, x);
    for (let next = this.waiting.get(this.shown + 1); next; next = this.waiting.get(this.shown + 1)) {
      this.waiting.delete(++this.shown);
      this.deliver(next);
    }
  }

  /** Outputs handed on. */
  get outputs(): number {
    return this.shown;
  }

  /** Repeats dropped by their numbers. */
  get repeats(): number {
    return this.dropped;
  }
}
