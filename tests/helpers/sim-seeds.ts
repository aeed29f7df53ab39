// One seed, one simulated run of the pair (host/ft/sim.ts), checked against
// what cannot be argued with: a solo run of the same guest (host/node/boot.ts,
// virtual clock). From the seed: the guest (hello.elf or ticks.elf), which
// replica fails and when (an instruction count anywhere in the run, or just
// after the primary took typed input), the engines, the channel's delay and
// the slice size. Used by tests/ft/sim-seeds.test.ts (npm test) and
// scripts/soak.ts (npm run soak).

import { MemoryArbiter } from "../../host/ft/arbiter.js";
import { runPairSim, type FaultKind, type SimReport } from "../../host/ft/sim.js";
import type { EngineKind } from "../../host/engine/engine.js";
import { bootLive } from "../../host/node/boot.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { seededEntropy } from "../../host/replay/live-gate.js";
import { guestImage } from "./replay.js";

const RAM = 8 << 20;
const GUESTS = [
  { name: "hello", cmdline: "hello.elf" },
  { name: "ticks", cmdline: "ticks.elf ticks=12 every=4 hz=100" },
] as const;

interface Solo { serial: string; exit: number | undefined; icount: bigint }
const solos = new Map<string, Solo>();

async function solo(name: string, cmdline: string): Promise<Solo> {
  const key = `${name} ${cmdline}`;
  const had = solos.get(key);
  if (had) return had;
  const out: number[] = [];
  const m = await bootLive(guestImage(name), { engine: "wasm", ramSize: RAM, clock: "virtual", cmdline, onSerial: (b) => out.push(b) });
  const r = m.runSync(100_000_000);
  const s = { serial: Buffer.from(out).toString("latin1"), exit: r.exitStatus, icount: m.engine.icount };
  m.dispose();
  solos.set(key, s);
  return s;
}

export interface SeedResult {
  seed: number;
  /** What the seed chose, in words (for a failing seed's report). */
  what: string;
  /** Empty when every check held. */
  problems: string[];
  report: SimReport;
}

export async function runSeed(seed: number): Promise<SeedResult> {
  const r = seededEntropy(seed * 2654435761);
  const g = GUESTS[r() % GUESTS.length]!;
  const s = await solo(g.name, g.cmdline);
  const kinds: FaultKind[] = ["primary", "backup", "partition"];
  const kind = kinds[r() % 3]!;
  const at = 1n + BigInt(r() % Number(s.icount + 2000n));
  const engines: [EngineKind, EngineKind] = [r() % 2 ? "wasm" : "ts", r() % 2 ? "wasm" : "ts"];
  const delayMs = 1 + (r() % 5);
  const slice = 2_000 + (r() % 60_000);
  const loseInFlight = r() % 4 !== 0;
  const arbiter = new MemoryArbiter();
  const what = `seed ${seed}: ${g.name}, ${kind} fails at ${at} of ${s.icount}, engines ${engines.join("/")}, delay ${delayMs} ms, slice ${slice}, in-flight ${loseInFlight ? "lost" : "delivered"}`;
  const report = await runPairSim({
    image: guestImage(g.name), engines, loadEngine, ramSize: RAM, clock: "virtual", cmdline: g.cmdline,
    fault: { kind, at, loseInFlight }, delayMs, slice, arbiter,
  });
  const problems: string[] = [];
  const serial = Buffer.from(report.world.serial).toString("latin1");
  if (serial !== s.serial) problems.push(`the console differs from the solo run's (${serial.length} bytes, solo ${s.serial.length})`);
  if (report.world.exitStatus !== (s.exit ?? null)) problems.push(`exit status ${report.world.exitStatus}, solo ${s.exit}`);
  if (report.world.contradictions !== 0) problems.push(`${report.world.contradictions} contradicting repeats`);
  const claims = await arbiter.claims("sim");
  if (new Set(claims.map((c) => c.epoch)).size !== claims.length) problems.push("two holders of one epoch");
  if (report.live !== "none" && claims[0]?.replica !== report.live) problems.push(`the survivor (${report.live}) does not hold the last epoch`);
  return { seed, what, problems, report };
}
