// Child process of tests/engine-memory.test.ts (run with node --expose-gc):
// creates and drops `count` engines of one kind, either disposing each or
// just dropping it and collecting garbage, and prints the growth of
// rss + arrayBuffers in bytes as JSON.
//
//   node --expose-gc --import tsx tests/helpers/engine-churn.ts <wasm|ts> <dispose|drop> <count> <ramBytes>

import { ENGINE_KINDS, type EngineKind } from "../../host/engine/engine.js";
import { loadEngine } from "../../host/node/core-modules.js";

const [kind, mode, countArg, ramArg] = process.argv.slice(2);
const count = Number(countArg);
const ramSize = Number(ramArg);
if (!ENGINE_KINDS.includes(kind as EngineKind) || (mode !== "dispose" && mode !== "drop") || !(count > 0) || !(ramSize > 0)) {
  throw new Error(`engine-churn: usage: <wasm|ts> <dispose|drop> <count> <ramBytes>, got ${process.argv.slice(2).join(" ")}`);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("engine-churn: run with node --expose-gc");

/** Collects garbage and lets finalizers (which return cores to the pool) run. */
async function settle(): Promise<void> {
  gc!();
  await new Promise((r) => setTimeout(r, 0));
  gc!();
}
const used = () => {
  const m = process.memoryUsage();
  return m.rss + m.arrayBuffers;
};

async function one(): Promise<void> {
  const e = await loadEngine(kind as EngineKind, { ramSize });
  // Touch it: a few instructions (zeroed RAM: ADD [EAX], AL) and a RAM write.
  e.run(100);
  e.writeMem(ramSize - 4096, new Uint8Array(4096).fill(1));
  if (mode === "dispose") e.dispose();
}

// Warm up (the first engine compiles the build), then measure from there.
await one();
await settle();
const before = used();
let peak = before;
for (let i = 0; i < count; i++) {
  await one();
  if (mode === "drop") await settle();
  peak = Math.max(peak, used());
}
await settle();
const after = used();
console.log(JSON.stringify({ kind, mode, count, ramSize, before, after, growth: after - before, peakGrowth: peak - before }));
