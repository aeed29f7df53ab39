// host/ft/output-order.ts: the outside world takes each output once and in
// number order, whatever order and how many times the replicas release
// them (after a failover the new primary releases again what the old one
// may already have released).

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { Output } from "../../host/ft/output-gate.js";
import { OutputOrder } from "../../host/ft/output-order.js";

const out = (seq: number): Output => ({ seq, icount: BigInt(seq * 10), channel: "serial", value: 64 + (seq % 26) });

describe("OutputOrder", () => {
  test("repeats are dropped and counted; an output ahead of a gap waits for it", () => {
    const got: number[] = [];
    const o = new OutputOrder((x) => got.push(x.seq));
    for (const s of [1, 2, 2, 4, 1, 3, 5, 4]) o.take(out(s));
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(o.outputs).toBe(5);
    expect(o.repeats).toBe(3);
  });

  test("any interleaving of two replicas' releases, with repeats, is taken as 1..n once each", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }), fc.array(fc.nat(), { maxLength: 80 }), fc.integer({ min: 0, max: 40 }),
      (n, noise, overlap) => {
        // The old primary released 1..k; the new one releases from k-overlap+1 to n; a few stray repeats besides.
        const k = Math.min(n, Math.max(0, n - overlap));
        const first = Array.from({ length: k }, (_, i) => i + 1);
        const second = Array.from({ length: n - Math.max(0, k - overlap) }, (_, i) => Math.max(0, k - overlap) + i + 1);
        const stray = noise.map((x) => (x % n) + 1);
        const got: number[] = [];
        const o = new OutputOrder((x) => got.push(x.seq));
        for (const s of [...first, ...second, ...stray]) o.take(out(s));
        expect(got).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        expect(o.repeats).toBe(first.length + second.length + stray.length - n);
      },
    ));
  });
});
