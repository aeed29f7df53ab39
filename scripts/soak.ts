// npm run soak -- [--seeds N] [--from S] [--mode replay|checkpoint]: runs N
// seeds of the simulated pair (tests/helpers/sim-seeds.ts) from seed S, in
// replay mode (the log) or checkpoint mode (docs/ft-checkpoint.md), and reports each failure with its
// timeline, then a summary: how many seeds each fault and each kind of frame
// damage struck. npm test runs seeds 1..500; this runs thousands.

import { parseArgs } from "node:util";
import { runSeed, type SimMode } from "../tests/helpers/sim-seeds.js";

const { values } = parseArgs({ options: { seeds: { type: "string", default: "2000" }, from: { type: "string", default: "1" }, mode: { type: "string", default: "replay" }, help: { type: "boolean", short: "h" } } });
if (values.help) {
  process.stdout.write("usage: npm run soak -- [--seeds N] [--from S] [--mode replay|checkpoint]\n");
  process.exit(0);
}
const n = Number(values.seeds), from = Number(values.from);
if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(from) || from < 0) {
  process.stderr.write(`soak: --seeds must be a positive integer and --from a non-negative one, got ${values.seeds} and ${values.from}\n`);
  process.exit(2);
}
if (values.mode !== "replay" && values.mode !== "checkpoint") {
  process.stderr.write(`soak: --mode must be replay or checkpoint, got ${values.mode}\n`);
  process.exit(2);
}
const mode = values.mode as SimMode;
const t0 = performance.now();
let failures = 0;
const struck = new Map<string, number>();
for (let seed = from; seed < from + n; seed++) {
  const r = await runSeed(seed, mode);
  for (const t of r.tags) struck.set(t, (struck.get(t) ?? 0) + 1);
  if (r.problems.length > 0) {
    failures++;
    process.stdout.write(`FAIL ${r.what}\n  ${r.problems.join("\n  ")}\n  ${r.report.timeline.join("\n  ")}\n`);
  }
  if ((seed - from + 1) % 100 === 0) process.stderr.write(`soak: ${seed - from + 1}/${n} seeds, ${failures} failed, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
const counts = [...struck].sort((a, b) => b[1] - a[1]).map(([k, c]) => `${k} ${c}`).join(", ");
process.stdout.write(`soak: ${n} seeds from ${from} (${mode} mode): ${n - failures} passed, ${failures} failed, in ${((performance.now() - t0) / 1000).toFixed(1)} s\nsoak: seeds struck by: ${counts}\n`);
process.exit(failures > 0 ? 1 : 0);
