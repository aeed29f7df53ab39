// The replicas (host/ft/replica.ts) in real time in one thread, over the
// in-process link (host/ft/link.ts memoryLinkPair: the real encoder and
// reader), driven by the replicas' driver (host/ft/driver.ts): the console
// the world sees equals a solo run's (host/node/boot.ts), with no fault and
// with the primary or the backup stopped at an instruction count.

import { describe, expect, it } from "vitest";
import { MemoryArbiter } from "../../host/ft/arbiter.js";
import { memoryLinkPair } from "../../host/ft/link.js";
import { BackupReplica, PrimaryReplica } from "../../host/ft/replica.js";
import { frameTagger } from "../../host/ft/wire.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { driveReplica } from "../../host/ft/driver.js";
import { outsideWorld, soloTicks } from "../helpers/ft-world.js";
import { guestImage } from "../helpers/replay.js";

const RAM = 8 << 20;
const CMDLINE = "ticks.elf ticks=400 every=40 hz=200";

const solo = () => soloTicks(RAM, CMDLINE);

async function pair(fail: { who: "primary" | "backup"; at: bigint } | null) {
  const [pl, bl] = memoryLinkPair(await frameTagger(null));
  const arbiter = new MemoryArbiter();
  await arbiter.claim({ vm: "t", epoch: 1, replica: "primary", atMs: 0, reason: "first start" });
  const world = outsideWorld();
  const release = world.release;
  const lines: string[] = [];
  const common = {
    image: guestImage("ticks"), clock: "virtual" as const, cmdline: CMDLINE, configHash: new Uint8Array(32).fill(7), vm: "t",
    arbiter, timeouts: { intervalMs: 20, timeoutMs: 300 }, slice: 5_000, maxLag: 2_000_000n, release, say: (l: string) => lines.push(l),
  };
  const now = performance.now();
  const p = new PrimaryReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "primary", link: pl }, now);
  const b = new BackupReplica({ ...common, engine: await loadEngine("ts", { ramSize: RAM }), name: "backup", link: bl }, now);
  const stopAt = (r: { machine: { engine: { icount: bigint } } | null }, who: string) => () =>
    fail !== null && fail.who === who && r.machine !== null && r.machine.engine.icount >= fail.at;
  await Promise.all([driveReplica(p, { stop: stopAt(p, "primary") }), driveReplica(b, { stop: stopAt(b, "backup") })]);
  return { serial: world.serial(), contradictions: world.contradictions, lines, exit: world.exit() };
}

describe("the pair in one thread over the in-process link (ticks, virtual clock)", () => {
  it("with no fault: the console is the solo run's", async () => {
    const r = await pair(null);
    expect(r.serial, r.lines.join("\n")).toBe(await solo());
    expect(r.exit).toBe(0);
  });
  it.each([40_000n, 95_000n])("the primary stops at instruction %s: the backup goes live and the console is the solo run's", async (at) => {
    const r = await pair({ who: "primary", at });
    expect(r.serial, r.lines.join("\n")).toBe(await solo());
    expect(r.contradictions).toBe(0);
    expect(r.lines.join("\n")).toMatch(/backup is live at instruction/);
  });
  it("the backup stops: the primary goes on alone and the console is the solo run's", async () => {
    const r = await pair({ who: "backup", at: 60_000n });
    expect(r.serial, r.lines.join("\n")).toBe(await solo());
    expect(r.lines.join("\n")).toMatch(/primary won epoch 2/);
  });
});
