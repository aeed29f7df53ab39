// A replay log cut short (docs/log-format.md "Reading", docs/replay.md "A log
// cut short"): read with allowCut it is usable up to its last complete
// record, at every byte offset after the header; its replay uses every entry
// and stops in the state a replay of the whole log has at that count. A
// damaged record is still refused, even the last one, and so is a cut
// inside the header.

import { describe, expect, it } from "vitest";
import { LogFormatError, LogReader, parseLog, type LogEntry } from "../../host/replay/log-format.js";
import { Recording, replay, cutLogEnd, type CutReplayResult } from "../../host/replay/session.js";
import { kindSpec } from "../../host/replay/event-kinds.js";
import { toHex } from "../../host/common/hash.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { EventKind, fakeWorld, guestImage, RAM, steppingClock } from "../helpers/replay.js";

async function record(clock: "host" | "virtual"): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const rec = await Recording.start(guestImage("ticks"), {
    loadEngine, engine: "wasm", ramSize: RAM, clock, cmdline: "ticks ticks=6 hz=500",
    world: fakeWorld(steppingClock([40_000, 130_000, 7_000]).hostNs), sink: (c) => chunks.push(c.slice()),
  });
  for (let i = 0; i < 1000 && rec.machine.runSync(3_000).reason !== "exit-port"; i++);
  rec.finish();
  return new Uint8Array(Buffer.concat(chunks));
}

/** Byte offsets where each record ends: the header's end first, the end record's last. */
function recordEnds(bytes: Uint8Array): number[] {
  const r = new LogReader();
  const ends: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const had = r.header !== null;
    const got = r.push(bytes.subarray(i, i + 1));
    if ((!had && r.header) || got.length > 0 || r.end) ends.push(i + 1);
  }
  return ends;
}

const hashAt = new Map<string, string>();

describe.each(["host", "virtual"] as const)("a log cut short (%s clock)", (clock) => {
  it("is read up to its last complete record at every offset after the header, and refused inside it", async () => {
    const bytes = await record(clock);
    const full = parseLog(bytes);
    const ends = recordEnds(bytes);
    expect(ends.length).toBe(full.entries.length + 2);
    const headerEnd = ends[0]!;
    for (let n = 0; n < headerEnd; n++) {
      expect(() => parseLog(bytes.subarray(0, n), { allowCut: true }), `cut at ${n}`).toThrow(/truncated header/);
    }
    for (let n = headerEnd; n < bytes.length; n++) {
      const p = parseLog(bytes.subarray(0, n), { allowCut: true });
      const k = ends.filter((e) => e <= n).length - 1; // whole entries before n
      expect(p.end, `cut at ${n}`).toBeNull();
      expect(p.cut).toEqual({ offset: ends[k]!, bytes: n - ends[k]! });
      expect(p.entries.map((e) => e.offset)).toEqual(full.entries.slice(0, k).map((e) => e.offset));
      // The strict default still refuses it.
      expect(() => parseLog(bytes.subarray(0, n))).toThrow(LogFormatError);
    }
    const whole = parseLog(bytes, { allowCut: true });
    expect(whole.cut).toBeNull();
    expect(whole.end).toEqual(full.end);
  });

  it("replays every entry and stops in the whole log's state at that count, on every cut", async () => {
    const image = guestImage("ticks");
    const bytes = await record(clock);
    const full = parseLog(bytes);
    expect(full.entries.some((e) => e.kind === EventKind.IRQ)).toBe(true);
    if (clock === "host") expect(full.entries.some((e) => kindSpec(e.kind)?.phase === "instruction")).toBe(true);
    const ends = recordEnds(bytes);
    let compared = 0;
    let skipped = 0;
    // Every offset inside one record gives the same entries (checked above), so
    // one replay per record boundary covers every cut.
    for (let k = 0; k <= full.entries.length; k++) {
      const cut = parseLog(bytes.subarray(0, ends[k]! + (k % 3)), { allowCut: true });
      expect(cut.entries.length).toBe(k);
      if (clock === "host" && k === 0) {
        // Not even the calendar base: the VM cannot be built (the CLI says there is nothing to replay).
        await expect(replay(image, cut, { loadEngine, engine: "wasm" })).rejects.toThrow(/must begin with WALLCLOCK/);
        continue;
      }
      const stop = cutLogEnd(cut);
      const last: LogEntry | undefined = cut.entries.at(-1);
      expect(stop).toBe(!last ? 0n : last.kind === EventKind.RDTSC || last.kind === EventKind.ENTROPY ? last.icount + 1n : last.icount);
      const r = (await replay(image, cut, { loadEngine, engine: "wasm" })) as CutReplayResult;
      expect(r.end).toBeNull();
      expect(r.cut).toEqual({ offset: ends[k], bytes: k % 3, entries: k, lastIcount: stop });
      expect(r.icount).toBe(stop);
      // An input the recording took at that same count after the cut is not in
      // the cut log (two TIME readings at one count, say): the states differ by
      // it, rightly. Checks (IRQ) cut off there are recomputed by the machine.
      const lost = full.entries.slice(k).some((e) => e.icount === stop && kindSpec(e.kind)?.phase !== "check");
      if (lost) { skipped++; continue; }
      compared++;
      const key = `${clock}:${stop}`;
      if (!hashAt.has(key)) {
        const ref = await replay(image, full, { loadEngine, engine: "wasm", until: stop });
        hashAt.set(key, toHex(ref.stateHash));
      }
      expect(toHex(r.stateHash), `cut after ${k} entries, at instruction ${stop}`).toBe(hashAt.get(key));
      await expect(replay(image, cut, { loadEngine, engine: "wasm", until: stop + 1n })).rejects.toThrow(/past the end of the log, which was cut short/);
    }
    expect(compared).toBeGreaterThan(skipped * 2);
  }, 120_000);
});

describe("damage is not a cut", () => {
  it("a record whose CRC fails is refused with its offset, followed by more data or last", async () => {
    const bytes = await record("virtual");
    const full = parseLog(bytes);
    const i = Math.floor(full.entries.length / 2);
    const next = full.entries[i + 1]!.offset!;
    const bad = bytes.slice();
    bad[next - 1] ^= 0x01; // entry i's CRC, with more records after it
    const err = (() => { try { parseLog(bad, { allowCut: true }); } catch (x) { return x as LogFormatError; } })();
    expect(err).toBeInstanceOf(LogFormatError);
    expect(err!.reason).toMatch(new RegExp(`CRC mismatch in record starting at byte ${full.entries[i]!.offset}`));
    expect(err!.offset).toBe(next - 4);
    // The last record whole but its CRC wrong, at the very end of the input: corruption, not a cut.
    const lastEnd = recordEnds(bytes).at(-2)!;
    const tail = bytes.slice(0, lastEnd);
    tail[lastEnd - 1] ^= 0x80;
    expect(() => parseLog(tail, { allowCut: true })).toThrow(/CRC mismatch/);
    const end = bytes.slice();
    end[end.length - 1] ^= 0x80;
    expect(() => parseLog(end, { allowCut: true })).toThrow(/CRC mismatch/);
  });
});
