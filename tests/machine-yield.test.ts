// Machine.runSync's yieldIf (host/machine/machine.ts): a driver may end a
// call early to stay responsive, at whatever moment its clock says, and the
// guest's run must not notice — the same console, the same instruction
// count at the end and the same state hash as one uninterrupted call. The
// early stops here come from a seeded coin, so they fall at counts no
// instruction limit would pick (inside device-event waits, mid-slice).

import { beforeAll, describe, expect, it } from "vitest";
import { initHash } from "../host/common/hash.js";
import { ENGINE_KINDS } from "../host/engine/engine.js";
import { bootLive } from "../host/node/boot.js";
import { stateHash } from "../host/replay/state-hash.js";
import { fakeWorld, guestImage, recordRun, replayRun, steppingClock, text, type DriveResult } from "./helpers/replay.js";

const RAM = 8 << 20;

beforeAll(() => initHash());

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

async function run(kind: (typeof ENGINE_KINDS)[number], guest: string, cmdline: string, coin: (() => boolean) | null) {
  const out: number[] = [];
  const m = await bootLive(guestImage(guest), { engine: kind, ramSize: RAM, clock: "virtual", cmdline, onSerial: (b) => out.push(b), onDebugcon: (b) => out.push(b) });
  let calls = 0, early = 0;
  for (;;) {
    calls++;
    const r = coin ? m.runSync(300_000, coin) : m.runSync();
    if (coin && r.reason === "limit" && r.instructions < 300_000n) early++;
    if (r.reason !== "limit") break;
  }
  const res = { console: Buffer.from(out).toString("latin1"), icount: m.engine.icount, hash: Buffer.from(stateHash(m)).toString("hex"), calls, early };
  m.dispose();
  return res;
}

describe.each(ENGINE_KINDS)("runSync's yieldIf (%s engine, virtual clock)", (kind) => {
  it.each([
    ["ticks", "ticks.elf ticks=40 every=10 hz=200", 1],
    ["ticks", "ticks.elf ticks=40 every=10 hz=200", 2],
    ["hello", "hello.elf", 3],
  ])("%s (%s), seed %i: stopping early anywhere changes nothing", async (guest, cmdline, seed) => {
    const whole = await run(kind, guest, cmdline, null);
    const r = rng(seed);
    const sliced = await run(kind, guest, cmdline, () => r() < 0.4);
    expect(sliced.early).toBeGreaterThan(0);
    expect(sliced.console).toBe(whole.console);
    expect(sliced.icount).toBe(whole.icount);
    expect(sliced.hash).toBe(whole.hash);
  });
});

describe("a recording made with early stops replays exactly (host clock, a stepping fake clock)", () => {
  it.each([
    ["ticks", "ticks.elf ticks=30 every=10 hz=500", 11],
    ["kvbare", "kvbare.elf", 12],
  ])("%s (%s), seed %i", async (guest, cmdline, seed) => {
    const image = guestImage(guest);
    const clock = steppingClock([3_000, 170_000, 40_000, 900_000]);
    const r = rng(seed);
    let early = 0;
    const rec = await recordRun({ image, engine: "wasm", clock: "host", cmdline, world: fakeWorld(clock.hostNs, seed) }, (m): DriveResult => {
      let calls = 0;
      let last = null;
      while (calls < 400 && m.engine.icount < 3_000_000n) {
        last = m.runSync(50_000, () => r() < 0.4);
        calls++;
        if (last.reason === "limit" && last.instructions < 50_000n) early++;
        if (last.reason !== "limit" && last.reason !== "idle") break;
      }
      return { last, stoppedBy: "instructions", calls, injected: 0, injectedAt: [] };
    });
    expect(early).toBeGreaterThan(0);
    for (const engine of ENGINE_KINDS) {
      const { result, out } = await replayRun(image, rec.log, { engine, slice: 77_777 });
      expect(text(out.serial)).toBe(text(rec.out.serial));
      expect(result.matched, engine).toEqual({ outputDigest: true, stateHash: true });
    }
  });
});
