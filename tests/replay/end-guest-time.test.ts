// The end record's guest time (host/replay/session.ts Recording.finish), which
// `lockstep log inspect` and the bench divide by, checked against a value this
// test computes from the documented rules rather than from the machine:
//   - virtual clock, a guest that never halts: guest time is exactly
//     10 ns x instructions (docs/machine.md, host/machine/guest-time.ts);
//   - host clock (a fake one): the last TIME or RDTSC anchor in the log plus
//     1 ns per instruction after it (docs/replay.md).
// The replay of the log must reach the same guest time, and `log inspect
// --json` must report guest seconds and per-second rates that follow from it.

import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { EngineKind } from "../../host/engine/engine.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { KINDS } from "../../host/replay/event-kinds.js";
import type { World } from "../../host/replay/live-gate.js";
import { parseLog, type ParsedLog } from "../../host/replay/log-format.js";
import { Recording, replay } from "../../host/replay/session.js";
import { runLockstep } from "../helpers/cli.js";
import { codeElf } from "../helpers/elf-builder.js";
import { le32 } from "../helpers/x86.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-end-time-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const RAM = 2 << 20;
/** Guest ns per instruction, from docs/machine.md (virtual) and docs/replay.md (host, between anchors). */
const VIRTUAL_NS = 10n;
const HOST_DRIFT_NS = 1n;
/** Instructions the recording runs, in slices of odd sizes so the run has many boundaries. */
const INSTRUCTIONS = 1_000_003;
const SLICES = [7_919, 1, 31_337, 257, 65_536];

/**
 * A guest that never halts and has no interrupts set up: it counts ECX up to
 * 40000 (120k instructions), executes RDTSC, and starts over (encodings from
 * the SDM Vol. 2). The long stretches between RDTSCs leave room for TIME
 * readings of a running guest.
 */
const LOOP_ELF = codeElf([
  0x31, 0xc9,                  // start: xor ecx, ecx
  0x41,                        // again: inc ecx
  0x81, 0xf9, ...le32(40000),  //        cmp ecx, 40000
  0x75, 0xf7,                  //        jne again (-9)
  0x0f, 0x31,                  //        rdtsc
  0xeb, 0xf1,                  //        jmp start (-15)
]);

/**
 * A fake monotonic host clock: small steps with, every few readings, a jump of
 * more than 10 ms, so that a running guest is due a TIME reading now and then
 * besides the loop's RDTSC anchors (when the gate takes one is its own
 * policy; the rule checked here holds for either kind of anchor).
 */
function fakeHostWorld(): Partial<World> {
  const steps = [1_500, 40_000, 900, 12_000_000, 3_000];
  let t = 2_000_000_000;
  let n = 0;
  return { hostNs: () => (t += steps[n++ % steps.length]!), epochMs: () => Date.UTC(2027, 6, 8, 9, 10, 11) };
}

async function record(engine: EngineKind, clock: "virtual" | "host"): Promise<{ bytes: Uint8Array; log: ParsedLog }> {
  const chunks: Uint8Array[] = [];
  const rec = await Recording.start(LOOP_ELF, {
    engine, loadEngine, ramSize: RAM, clock, world: clock === "host" ? fakeHostWorld() : undefined, sink: (c) => chunks.push(c.slice()),
  });
  let k = 0;
  while (rec.machine.engine.icount < BigInt(INSTRUCTIONS)) {
    const left = INSTRUCTIONS - Number(rec.machine.engine.icount);
    const r = rec.machine.runSync(Math.min(SLICES[k++ % SLICES.length]!, left));
    expect(r.reason, "the loop guest never stops by itself").toBe("limit");
  }
  rec.finish();
  const bytes = new Uint8Array(Buffer.concat(chunks));
  return { bytes, log: parseLog(bytes) };
}

/** The last guest-time anchor the log holds (TIME or RDTSC), or the start (0 ns at instruction 0). */
function lastAnchor(log: ParsedLog): { icount: bigint; ns: bigint; times: number; rdtscs: number } {
  let a = { icount: 0n, ns: 0n };
  let times = 0, rdtscs = 0;
  for (const e of log.entries) {
    if (e.kind === KINDS.TIME.code) {
      times++;
      a = { icount: e.icount, ns: BigInt(KINDS.TIME.decode(e.payload)) };
    } else if (e.kind === KINDS.RDTSC.code) {
      rdtscs++;
      a = { icount: e.icount, ns: BigInt(KINDS.RDTSC.decode(e.payload)) };
    }
  }
  return { ...a, times, rdtscs };
}

/** `lockstep log inspect --json` agrees with guest time `ns` for the log in `bytes`. */
async function checkInspect(bytes: Uint8Array, log: ParsedLog, ns: bigint, name: string): Promise<void> {
  const file = join(tmp, name);
  writeFileSync(file, bytes);
  const r = await runLockstep(tmp, "log", "inspect", file, "--json");
  expect(r.status, r.stderr).toBe(0);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  const seconds = Number(ns) / 1e9;
  const fileBytes = statSync(file).size;
  expect(j.finalIcount).toBe(String(INSTRUCTIONS));
  expect(j.bytes).toBe(fileBytes);
  expect(j.events).toBe(log.entries.length);
  expect(j.guestSeconds as number).toBeCloseTo(seconds, 12);
  expect(j.bytesPerGuestSecond as number).toBeGreaterThan(0);
  expect((j.bytesPerGuestSecond as number) / (fileBytes / seconds)).toBeCloseTo(1, 9);
  if (log.entries.length > 0) expect((j.eventsPerGuestSecond as number) / (log.entries.length / seconds)).toBeCloseTo(1, 9);
  else expect(j.eventsPerGuestSecond).toBe(0);
  expect((j.bytesPerMillionInstructions as number) / ((fileBytes / INSTRUCTIONS) * 1e6)).toBeCloseTo(1, 9);
}

describe.each(["wasm", "ts"] as const)("the end record's guest time (recorded on %s)", (engine) => {
  it("virtual clock, a guest that never halts: exactly 10 ns per instruction", async () => {
    const { bytes, log } = await record(engine, "virtual");
    const expected = VIRTUAL_NS * BigInt(INSTRUCTIONS);
    expect(log.end.finalIcount).toBe(BigInt(INSTRUCTIONS));
    expect(log.end.guestNs).toBe(expected);
    for (const on of ["wasm", "ts"] as const) {
      const r = await replay(LOOP_ELF, log, { engine: on, loadEngine });
      expect(r.matched, `replay on ${on}`).toEqual({ outputDigest: true, stateHash: true });
      expect(BigInt(Math.floor(r.machine.nowNs())), `replay on ${on}`).toBe(expected);
    }
    await checkInspect(bytes, log, expected, `virtual-${engine}.log`);
  });

  it("host clock (fake): the last TIME/RDTSC anchor plus 1 ns per instruction after it", async () => {
    const { bytes, log } = await record(engine, "host");
    const anchor = lastAnchor(log);
    // The run must have anchors, and end some way past the last one.
    expect(anchor.rdtscs).toBeGreaterThanOrEqual(Math.floor(INSTRUCTIONS / 120_004));
    expect(anchor.icount).toBeGreaterThan(0n);
    expect(anchor.icount).toBeLessThan(BigInt(INSTRUCTIONS));
    const expected = anchor.ns + (BigInt(INSTRUCTIONS) - anchor.icount) * HOST_DRIFT_NS;
    expect(log.end.finalIcount).toBe(BigInt(INSTRUCTIONS));
    expect(log.end.guestNs).toBe(expected);
    for (const on of ["wasm", "ts"] as const) {
      const r = await replay(LOOP_ELF, log, { engine: on, loadEngine });
      expect(r.matched, `replay on ${on}`).toEqual({ outputDigest: true, stateHash: true });
      expect(BigInt(Math.floor(r.machine.nowNs())), `replay on ${on}`).toBe(expected);
    }
    await checkInspect(bytes, log, expected, `host-${engine}.log`);
  });
});
