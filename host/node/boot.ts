// A live machine in Node, in one call: an engine loaded from build/
// (core-modules.ts) and a live gate on the host's clock and entropy (or the
// given world), not recording. What `lockstep run`, the benchmarks and the
// tests boot when they do not record or replay.

import type { EngineKind } from "../engine/engine.js";
import { Machine, type MachineConfig } from "../machine/machine.js";
import { LiveGate, type World } from "../replay/live-gate.js";
import { loadEngine } from "./core-modules.js";

export interface LiveMachineOptions extends Omit<MachineConfig, "engine" | "gate"> {
  engine: EngineKind;
  /** Guest RAM in bytes. */
  ramSize: number;
  /** Replaces any of the host's clock, calendar and entropy (tests). */
  world?: Partial<World>;
}

export async function bootLive(image: Uint8Array, o: LiveMachineOptions): Promise<Machine> {
  const { engine: kind, ramSize, world, ...rest } = o;
  const engine = await loadEngine(kind, { ramSize });
  try {
    return Machine.create(image, { ...rest, engine, gate: new LiveGate({ clock: o.clock, world }) });
  } catch (e) {
    engine.dispose();
    throw e;
  }
}
