// The replay gate's entry queue: a long log is taken whole (no argument-list
// limit), entries come out in order, and appending while consuming works (the
// backup will be fed that way).

import { describe, expect, it } from "vitest";
import { type LogEntry } from "../../host/replay/log-format.js";
import { EventKind } from "../../host/replay/event-kinds.js";
import { EntryQueue } from "../../host/replay/replay-gate.js";

const entry = (i: number): LogEntry => ({ icount: BigInt(i), kind: EventKind.IRQ, payload: Uint8Array.of(i & 0xff) });

describe("EntryQueue", () => {
  it("takes a log of a million entries and gives them back in order", () => {
    const n = 1_000_000;
    const q = new EntryQueue(Array.from({ length: n }, (_, i) => entry(i)));
    expect(q.length).toBe(n);
    for (let i = 0; i < n; i++) {
      if (q.peek()!.icount !== BigInt(i)) throw new Error(`entry ${i} out of order`);
      q.take();
    }
    expect(q.length).toBe(0);
    expect(q.consumed).toBe(n);
    expect(q.peek()).toBeUndefined();
  });

  it("keeps order when entries are appended while it is consumed", () => {
    const q = new EntryQueue([entry(0), entry(1)]);
    expect(q.take().icount).toBe(0n);
    q.push(Array.from({ length: 10_000 }, (_, i) => entry(i + 2)));
    for (let i = 1; i < 10_002; i++) expect(q.take().icount).toBe(BigInt(i));
    expect(() => q.take()).toThrow(/empty/);
  });
});
