// One wake per timer tick. A guest that programs the PIT at 1 kHz and sleeps
// in `sti; hlt` between ticks (guests/bin/ticks.elf with hz=1000: its loop
// checks for input, compares the count and halts again, a few hundred
// instructions) takes every timer interrupt while halted, on real hardware
// and in QEMU: the next tick is a millisecond away when it goes back to
// sleep. Under the host clock the driver wakes a halted guest late (a timer's
// granularity, a busy machine), so several PIT periods may have passed by
// the host's clock; the machine must still hand the guest one tick per wake,
// not fire two edges into one wake. The host clock here is a fake one that
// the test moves like a late driver would: past the next event by an
// overshoot of up to 3.5 periods.

import { describe, expect, it } from "vitest";
import { ENGINE_KINDS, type EngineKind } from "../host/engine/engine.js";
import type { ClockMode } from "../host/machine/guest-time.js";
import type { InputGate } from "../host/machine/input-gate.js";
import { Machine } from "../host/machine/machine.js";
import { loadEngine } from "../host/node/core-modules.js";
import { LiveGate } from "../host/replay/live-gate.js";
import { guestImage, RAM } from "./helpers/replay.js";

const TICKS = 50;
const PERIOD_NS = 1_000_000;

interface Wakes {
  /** IRQ 0 deliveries. */
  ticks: number;
  /** Of those, the ones that found the CPU halted (woke it). */
  wakes: number;
  exit: string;
  /** Whether guest time at the exit is within the last tick's period: no edge was lost or merged into another. */
  onTime: boolean;
}

/**
 * Boots ticks.elf at 1 kHz and drives it as the Node driver would: runSync
 * until idle, then move the host clock by the wait the machine asks for plus
 * the next overshoot. Every reading of the host clock also moves it by
 * `perReadingNs` (how fast real time passes while the guest runs).
 */
async function run(kind: EngineKind, clock: ClockMode, overshoots: readonly number[], perReadingNs = 150): Promise<Wakes> {
  let host = 1e9;
  const live = new LiveGate({ clock, world: { hostNs: () => (host += perReadingNs), epochMs: () => Date.UTC(2026, 5, 1), entropy: () => 7 } });
  const counts = { ticks: 0, wakes: 0 };
  let m: Machine | null = null;
  // The live gate, watched: every interrupt the machine delivers is reported
  // to derived() just before it goes in, with the CPU still halted or not.
  const gate: InputGate = Object.assign(Object.create(live) as InputGate, {
    derived(icount: bigint, k: "irq" | "disk-complete", v: number) {
      if (k === "irq" && v === 0x20) {
        counts.ticks++;
        if (m!.engine.halted) counts.wakes++;
      }
      live.derived(icount, k, v);
    },
  });
  m = Machine.create(guestImage("ticks"), {
    engine: await loadEngine(kind, { ramSize: RAM }), clock, gate, cmdline: `ticks.elf hz=1000 ticks=${TICKS} every=1000`,
  });
  let k = 0;
  for (let calls = 0; calls < 100_000; calls++) {
    const r = m.runSync(2_000_000);
    if (r.reason === "exit-port") {
      const ns = m.nowNs();
      return { ...counts, exit: `exit ${r.exitStatus}`, onTime: ns >= TICKS * PERIOD_NS && ns < (TICKS + 1) * PERIOD_NS };
    }
    if (r.reason === "idle") host += m.idleWaitMs() * 1e6 + overshoots[k++ % overshoots.length]!;
    else if (r.reason !== "limit") return { ...counts, exit: r.reason, onTime: false };
  }
  return { ...counts, exit: "did not finish", onTime: false };
}

describe.each(ENGINE_KINDS)("a 1 kHz PIT and a guest sleeping in sti; hlt (%s)", (kind) => {
  it("virtual clock: every tick wakes the guest once", async () => {
    const w = await run(kind, "virtual", [0]);
    expect(w).toEqual({ ticks: TICKS, wakes: TICKS, exit: "exit 0", onTime: true });
  });

  it("host clock, woken on time: every tick wakes the guest once", async () => {
    const w = await run(kind, "host", [0]);
    expect(w).toEqual({ ticks: TICKS, wakes: TICKS, exit: "exit 0", onTime: true });
  });

  it("host clock, woken late by up to 3.5 periods: still one wake per tick", async () => {
    const w = await run(kind, "host", [0.3 * PERIOD_NS, 1.5 * PERIOD_NS, 0, 3.5 * PERIOD_NS, 2.2 * PERIOD_NS]);
    expect(w).toEqual({ ticks: TICKS, wakes: TICKS, exit: "exit 0", onTime: true });
  });

  it("host clock on a slow host (0.3 ms of real time between readings): the handler of one tick never takes the next", async () => {
    const w = await run(kind, "host", [0, 1.2 * PERIOD_NS], 300_000);
    expect({ ticks: w.ticks, wakes: w.wakes, exit: w.exit }).toEqual({ ticks: TICKS, wakes: TICKS, exit: "exit 0" });
  });
});
