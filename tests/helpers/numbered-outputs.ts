// Replicas' stdout under `--outputs numbered` (one JSON line per output,
// with its number): what a client that takes each number once sees.

import { expect } from "vitest";

/** Each output number once, from every replica's numbered stream: the serial bytes in order. Fails on a number with two values, or a gap. */
export function mergeNumbered(...streams: string[]): string {
  const seen = new Map<number, { channel: string; value: number }>();
  for (const s of streams) {
    for (const line of s.split("\n")) {
      if (!line) continue;
      const o = JSON.parse(line) as { seq: number; channel: string; value: number };
      const had = seen.get(o.seq);
      if (had) expect(had, `output ${o.seq} differs between the replicas`).toEqual({ channel: o.channel, value: o.value });
      else seen.set(o.seq, { channel: o.channel, value: o.value });
    }
  }
  const seqs = [...seen.keys()].sort((a, b) => a - b);
  expect(seqs.every((s, i) => s === i + 1), "the numbers run 1..N without a gap").toBe(true);
  return Buffer.from(seqs.filter((s) => seen.get(s)!.channel === "serial").map((s) => seen.get(s)!.value)).toString("latin1");
}
