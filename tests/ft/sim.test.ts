// The pair under the deterministic simulation (host/ft/sim.ts): what the
// outside world sees must be exactly what a solo run of the same guest shows
// — not a byte lost, none repeated — however and whenever the primary, the
// backup or the channel fails; the logs must replay to the survivor's state
// (checkRun, tests/helpers/sim-seeds.ts). The solo run is the machine alone
// (host/node/boot.ts), computed here, not by the code under test. Each case
// is a seed: a failing one is named in the test and reruns alone.

import { describe, expect, it } from "vitest";
import type { EngineKind } from "../../host/engine/engine.js";
import { bootLive } from "../../host/node/boot.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { MemoryArbiter } from "../../host/ft/arbiter.js";
import { runPairSim, type FaultKind, type SimFault, type SimOptions } from "../../host/ft/sim.js";
import { seededEntropy } from "../../host/replay/live-gate.js";
import { guestImage } from "../helpers/replay.js";
import { checkRun } from "../helpers/sim-seeds.js";

const RAM = 8 << 20;

interface Solo { serial: string; exit: number | undefined; icount: bigint; outputIcounts: bigint[] }

async function solo(name: string, cmdline: string): Promise<Solo> {
  const out: number[] = [];
  const outputIcounts: bigint[] = [];
  const m = await bootLive(guestImage(name), {
    engine: "wasm", ramSize: RAM, clock: "virtual", cmdline, onSerial: (b) => { out.push(b); outputIcounts.push(m.engine.icount); },
  });
  const r = m.runSync(500_000_000);
  const icount = m.engine.icount;
  m.dispose();
  return { serial: Buffer.from(out).toString("latin1"), exit: r.exitStatus, icount, outputIcounts };
}

/** A seeded generator, for kill points and engines. */
const rng = seededEntropy;

const GUESTS = [
  { name: "hello", cmdline: "hello.elf" },
  { name: "ticks", cmdline: "ticks.elf ticks=20 every=5 hz=100" },
];

describe.each(GUESTS)("the pair in simulation, $name (virtual clock)", ({ name, cmdline }) => {
  it("with no fault, shows the solo run's console exactly and ends with its exit status", async () => {
    const s = await solo(name, cmdline);
    const arbiter = new MemoryArbiter();
    const r = await runPairSim({ image: guestImage(name), engines: ["wasm", "ts"], loadEngine, ramSize: RAM, clock: "virtual", cmdline, arbiter });
    expect(Buffer.from(r.world.serial).toString("latin1")).toBe(s.serial);
    expect(r.world.exitStatus).toBe(s.exit);
    expect(r.world.repeats).toBe(0);
    expect(r.live).toBe("primary");
    expect(r.stops.backup).toMatch(/the primary ended the run/);
    expect(await checkRun(r, { image: guestImage(name), ramSize: RAM, clock: "virtual", cmdline, arbiter, solo: s })).toEqual([]);
  });

  for (const kind of ["primary", "backup", "partition"] as FaultKind[]) {
    const seeds = [1, 2, 3, 4, 5, 6];
    it.each(seeds)(`${kind} fails at a seeded instruction count (seed %i): the console is the solo run's, byte for byte`, async (seed) => {
      const s = await solo(name, cmdline);
      const r0 = rng(seed * 7919 + kind.length);
      const at = 1n + BigInt(r0() % Number(s.icount));
      const engines: [EngineKind, EngineKind] = r0() % 2 === 0 ? ["wasm", "ts"] : ["ts", "wasm"];
      const arbiter = new MemoryArbiter();
      const r = await runPairSim({
        image: guestImage(name), engines, loadEngine, ramSize: RAM, clock: "virtual", cmdline,
        fault: { kind, at }, delayMs: 1 + (r0() % 3), slice: 20_000 + (r0() % 200_000), arbiter,
      });
      const why = `seed ${seed}, ${kind} at ${at}, engines ${engines.join("/")}:\n${r.timeline.join("\n")}`;
      expect(Buffer.from(r.world.serial).toString("latin1"), why).toBe(s.serial);
      expect(r.world.exitStatus, why).toBe(s.exit);
      // The rest: one history, the logs replay to the survivor's state, one holder per epoch.
      expect(await checkRun(r, { image: guestImage(name), ramSize: RAM, clock: "virtual", cmdline, arbiter, solo: s, fault: { kind, at } }), why).toEqual([]);
      if (kind === "primary") expect(r.live, why).toBe(at >= s.icount ? "primary" : "backup");
      if (kind === "backup") expect(r.live, why).toBe("primary");
    });
  }
});

/** The world's view must be the survivor's outputs, every number once, with the same values: one history. */
function oneHistory(r: Awaited<ReturnType<typeof runPairSim>>, why: string): void {
  expect(r.world.contradictions, why).toBe(0);
  const serial = r.survivorOutputs.filter((x) => x.channel === "serial").map((x) => x.value as number);
  expect(Buffer.from(r.world.serial).toString("latin1"), why).toBe(Buffer.from(serial).toString("latin1"));
}

describe("the pair in simulation with typing on COM1 (ticks echoes it): outputs that depend on input", () => {
  for (const clock of ["virtual", "host"] as const) {
    // Long enough in simulated time for the typing to land while it runs: a
    // halted guest's virtual time passes in no simulated time at all.
    const cmdline = clock === "virtual" ? "ticks.elf ticks=1500 every=100 hz=100" : "ticks.elf ticks=30 every=3 hz=100";
    for (const kind of ["primary", "backup", "partition"] as FaultKind[]) {
      it.each(Array.from({ length: 16 }, (_, k) => 11 + k))(`${clock} clock, ${kind} fails (seed %i): the world saw one history, the survivor's`, async (seed) => {
        const s = await solo("ticks", cmdline);
        const r0 = rng(seed * 104729 + kind.length + (clock === "host" ? 1 : 0));
        const input = Array.from({ length: 12 }, (_, k) => ({ atMs: 2 + k * 9 + (r0() % 7), bytes: Uint8Array.of(0x61 + (r0() % 20)) }));
        // Three faults in four come right after an input reached the primary (the
        // slice that echoes it: an echo released before the backup holds the
        // input would be seen, then contradicted), the rest at any count.
        const at = seed % 4 !== 0 ? { afterInput: 1 + (r0() % input.length), slices: r0() % 4 } : 1n + BigInt(r0() % Number(s.icount));
        const arbiter = new MemoryArbiter();
        const r = await runPairSim({
          image: guestImage("ticks"), engines: ["wasm", "ts"], loadEngine, ramSize: RAM, clock, cmdline,
          fault: { kind, at }, delayMs: 1 + (r0() % 4), slice: 10_000 + (r0() % 100_000), input, msPerSlice: 1, arbiter,
        });
        const why = `seed ${seed}, ${clock}, ${kind} at ${typeof at === "bigint" ? at : `input ${at.afterInput} + ${at.slices} slices`}:\n${r.timeline.join("\n")}`;
        expect(r.world.exitStatus, why).toBe(0);
        oneHistory(r, why);
        expect(await checkRun(r, { image: guestImage("ticks"), ramSize: RAM, clock, cmdline, arbiter, fault: { kind, at } }), why).toEqual([]);
      });
    }
  }
});

describe("the pair in simulation: the channel's frames, one-way cuts, pauses, a slow backup (ticks, virtual clock)", () => {
  const cmdline = "ticks.elf ticks=12 every=4 hz=100";
  const image = guestImage("ticks");
  const timeouts = { intervalMs: 10, timeoutMs: 60 };
  /** One run, with the checks every run must pass (the solo console among them); the report and the arbiter's record for the case's own. */
  async function run(extra: Partial<SimOptions>) {
    const s = await solo("ticks", cmdline);
    const arbiter = new MemoryArbiter();
    const o: SimOptions = { image, engines: ["wasm", "ts"], loadEngine, ramSize: RAM, clock: "virtual", cmdline, slice: 2_000, delayMs: 2, timeouts, arbiter, ...extra };
    const r = await runPairSim(o);
    const why = r.timeline.join("\n");
    expect(await checkRun(r, { image, ramSize: RAM, clock: "virtual", cmdline, arbiter, solo: s, fault: o.fault }), why).toEqual([]);
    return { r, claims: await arbiter.claims("sim"), why };
  }

  it("repeated frames are dropped and counted by the receiving reader, and change nothing", async () => {
    const { r, claims, why } = await run({ noise: { toBackup: { duplicate: 0.3, jitterMs: 3 }, toPrimary: { duplicate: 0.3, jitterMs: 3 }, seed: 7 } });
    for (const d of [r.channel.toBackup, r.channel.toPrimary]) {
      expect(d.duplicated, why).toBeGreaterThan(0);
      expect(d.repeatsDropped, why).toBeGreaterThan(0);
      expect(d.repeatsDropped, why).toBeLessThanOrEqual(d.duplicated);
      expect(d.closed, why).toBeNull();
    }
    expect(claims.length, why).toBe(1);
    expect(r.live, why).toBe("primary");
  });

  it("on a byte stream (as TCP) frames arrive in pieces and repeated; the reader puts them together and drops the repeats", async () => {
    const { r, claims, why } = await run({ framing: "stream", noise: { toBackup: { duplicate: 0.2 }, toPrimary: { duplicate: 0.2 }, seed: 5 } });
    for (const d of [r.channel.toBackup, r.channel.toPrimary]) {
      expect(d.delivered, why).toBeGreaterThan(d.sent + d.duplicated); // more messages than frames: pieces
      expect(d.repeatsDropped, why).toBeGreaterThan(0);
      expect(d.closed, why).toBeNull();
    }
    expect(claims.length, why).toBe(1);
  });

  // A frame lost, two swapped or one damaged: the reader refuses the stream
  // and the link closes; both sides then hear nothing, as in a partition.
  it.each([
    ["drop", { drop: 0.2 }, /frame number \d+ after \d+ \(frames .* missing\)/],
    ["swap", { reorder: 0.2 }, /frame number \d+ after \d+ \(frames .* missing\)/],
    ["corrupt", { corrupt: 0.2 }, /^ft wire: /],
  ] as const)("a frame to the backup %s: its link closes with the reader's reason, and failover follows", async (_, noise, reason) => {
    const { r, claims, why } = await run({ noise: { toBackup: noise, seed: 3 } });
    expect(r.channel.toBackup.closed, why).toMatch(reason);
    expect(r.channel.toPrimary.closed, why).toBe("the peer closed the link");
    expect(claims.length, why).toBe(2);
  });

  it("the channel cut towards the backup: the backup takes over; the primary, hearing nothing from it, loses the arbiter and stops", async () => {
    const { r, why } = await run({ fault: { kind: "cut-to-backup", at: 12_000n } });
    expect(r.live, why).toBe("backup");
    expect(r.stops.primary, why).toMatch(/lost the arbiter/);
  });

  it("the channel cut towards the primary: the primary goes on alone; the backup loses the arbiter and stops", async () => {
    const { r, why } = await run({ fault: { kind: "cut-to-primary", at: 12_000n } });
    expect(r.live, why).toBe("primary");
    expect(r.stops.backup, why).toMatch(/lost the arbiter/);
  });

  it("the primary paused past the timeout: the backup takes over; the primary comes back, loses the arbiter and stops", async () => {
    const { r, why } = await run({ fault: { kind: "pause-primary", at: 12_000n, pauseMs: 3 * timeouts.timeoutMs } });
    expect(r.live, why).toBe("backup");
    expect(r.stops.primary, why).toMatch(/lost the arbiter/);
    // It stopped after it came back, not while paused.
    const resumed = 3 * timeouts.timeoutMs + Number(/(\d+) ms: fault/.exec(why)![1]);
    expect(Number(/(\d+) ms: primary stops/.exec(why)![1]), why).toBeGreaterThanOrEqual(resumed);
  });

  it("the backup paused past the timeout: the primary goes on alone; the backup comes back, loses the arbiter and stops", async () => {
    const { r, why } = await run({ fault: { kind: "pause-backup", at: 12_000n, pauseMs: 3 * timeouts.timeoutMs } });
    expect(r.live, why).toBe("primary");
    expect(r.stops.backup, why).toMatch(/lost the arbiter/);
  });

  it.each(["pause-primary", "pause-backup"] as const)("%s shorter than the timeout: nobody takes over, the pair carries on", async (kind) => {
    const fault: SimFault = { kind, at: 12_000n, pauseMs: timeouts.timeoutMs / 2 };
    const { r, claims, why } = await run({ fault });
    expect(claims.length, why).toBe(1);
    expect(r.live, why).toBe("primary");
    expect(r.stops.backup, why).toMatch(/the primary ended the run/);
  });

  it("a slow backup holds the primary back (its outputs wait for acknowledgements) without a failover", async () => {
    const fast = await run({ maxLag: 4_000n });
    const slow = await run({ maxLag: 4_000n, backupSlowdown: 5 });
    expect(slow.claims.length, slow.why).toBe(1);
    expect(slow.r.endMs, slow.why).toBeGreaterThan(fast.r.endMs * 2);
  });
});
