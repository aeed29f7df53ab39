// A pooled core (host/engine/core-pool.ts) must be indistinguishable from a
// fresh one: a program run on an engine whose core was used before, by a
// different program that left garbage in RAM, registers, flags and the
// decoded-instruction cache, must end in the same state, with the same exits,
// as on an engine whose core was never used.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ENGINE_KINDS, type Engine, type EngineKind } from "../host/engine/engine.js";
import { createEngine, type CoreModules } from "../host/engine/load.js";
import { nodeCoreModules } from "../host/node/core-modules.js";
import { LAYOUT, generate } from "./helpers/codegen.js";
import { Rng } from "./helpers/machine.js";
import { driveProgram, loadProgram, randomInit } from "./helpers/program-run.js";

/** Builds no engine shares a pool with: a new wasm byte array is compiled anew, a different source text is its own TS build. */
let distinct = 0;
async function privateModules(): Promise<CoreModules> {
  const wasm = new Uint8Array(readFileSync(new URL("../build/core.wasm", import.meta.url)));
  return { wasm, ts: `${(await nodeCoreModules()).ts}\n// private build ${++distinct}\n` };
}

/** Leaves garbage everywhere: runs a random program (seed) for a while. */
function dirty(e: Engine, seed: number): void {
  const r = new Rng(seed);
  const prog = generate(r, 800);
  loadProgram(e, prog, randomInit(r));
  driveProgram(e, prog, new Rng(seed ^ 0x5555), 30_000, 997);
  e.writeMem(0x80000, Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + seed) & 0xff));
  e.setSegSelector(3, 0x1234);
  e.setIrqPending(true);
}

function runAndCapture(e: Engine): { exits: string[]; state: unknown; ram: Uint8Array; dirtyPages: number[] } {
  const r = new Rng(0xc0ffee);
  const prog = generate(r, 1500);
  loadProgram(e, prog, randomInit(r));
  const { exits } = driveProgram(e, prog, new Rng(0xbeef), 200_000, 1000);
  const dirtyPages = [...e.dirtyMap()].flatMap((d, p) => (d ? [p] : []));
  return { exits, state: e.archState(), ram: e.readMem(0, e.ramSize), dirtyPages };
}

describe("reused cores equal fresh ones", () => {
  for (const kind of ENGINE_KINDS as readonly EngineKind[]) {
    it(`${kind}: the same program ends identically on a fresh core and on a reused one`, async () => {
      const shared = await privateModules();
      const fresh = await createEngine(kind, { ramSize: LAYOUT.ram, modules: await privateModules() });

      // Garbage from a larger machine, then from one of the same size in byte-interpreter mode.
      const big = await createEngine(kind, { ramSize: 4 * LAYOUT.ram, modules: shared });
      dirty(big, 1);
      big.dispose();
      const same = await createEngine(kind, { ramSize: LAYOUT.ram, modules: shared, byteInterpreter: true });
      dirty(same, 2);
      const oldRam = same.ram;
      same.dispose();

      const reused = await createEngine(kind, { ramSize: LAYOUT.ram, modules: shared });
      // The same core (and, for the same RAM size, the same RAM buffer) came back.
      expect(reused.ram.buffer).toBe(oldRam.buffer);
      expect(reused.archState()).toEqual(fresh.archState());
      expect(reused.ram.every((b) => b === 0)).toBe(true);
      expect([...reused.dirtyMap()]).toEqual([...fresh.dirtyMap()]);

      const a = runAndCapture(fresh);
      const b = runAndCapture(reused);
      expect(a.exits.length).toBeGreaterThan(10);
      expect(b.exits).toEqual(a.exits);
      expect(b.state).toEqual(a.state);
      expect(b.dirtyPages).toEqual(a.dirtyPages);
      expect(Buffer.from(b.ram).equals(Buffer.from(a.ram))).toBe(true);
      fresh.dispose();
      reused.dispose();
    });

    it(`${kind}: a disposed engine refuses every use`, async () => {
      const modules = await nodeCoreModules();
      const e = await createEngine(kind, { ramSize: LAYOUT.ram, modules });
      e.dispose();
      e.dispose(); // a second dispose does nothing
      expect(() => e.run(1)).toThrow(/disposed/);
      expect(() => e.getReg(0)).toThrow(/disposed/);
      expect(() => e.ram).toThrow(/disposed/);
      expect(() => e.archState()).toThrow(/disposed/);
      expect(() => e.writeMem(0, new Uint8Array(1))).toThrow(/disposed/);
    });
  }

  it("refuses a missing or malformed build", async () => {
    const modules = await nodeCoreModules();
    await expect(createEngine("ts", { ramSize: LAYOUT.ram } as never)).rejects.toThrow(/modules/);
    await expect(createEngine("ts", { ramSize: LAYOUT.ram, modules: { ...modules, ts: "export const x = 1;" } })).rejects.toThrow(/modules\.ts/);
    await expect(createEngine("wasm", { ramSize: LAYOUT.ram, modules: { ...modules, wasm: new Uint8Array([1, 2, 3]) } })).rejects.toThrow(/modules\.wasm/);
  });
});
