// 500 seeds of the simulated pair in replay mode and 200 in checkpoint mode
// (tests/helpers/sim-seeds.ts): each picks a guest, a clock, a fault (a
// replica dies, the channel is cut both ways or one way, a replica pauses),
// frame-level noise (repeats, jitter, and a
// frame lost, swapped or damaged, which closes the link), a slow backup,
// typing, the timeouts, engines, delay and slice size. Checked: the world
// sees one history (without typing, exactly the solo console), the logs
// replay to the survivor's state hash (checkpoint mode: the backup resumed
// in the state of a checkpoint the primary sent, at or past the last it saw
// acknowledged, covering every output it released), one holder per epoch. A
// failing seed is named; `npm run soak -- --from N --seeds 1 [--mode
// checkpoint]` reruns it.

import { expect, it } from "vitest";
import { runSeed } from "../helpers/sim-seeds.js";

const SEEDS = 500;
const CHECKPOINT_SEEDS = 200;

it(`${SEEDS} seeded failures of the simulated pair: one history, the logs replay to the survivor's state, one holder per epoch`, async () => {
  const failed: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = await runSeed(seed);
    if (r.problems.length > 0) failed.push(`${r.what}: ${r.problems.join("; ")}\n${r.report.timeline.join("\n")}`);
  }
  expect(failed).toEqual([]);
}, 300_000);

it(`${CHECKPOINT_SEEDS} seeded failures of the simulated pair in checkpoint mode: one history, the state resumed is the last acknowledged checkpoint's or later, one holder per epoch`, async () => {
  const failed: string[] = [];
  for (let seed = 1; seed <= CHECKPOINT_SEEDS; seed++) {
    const r = await runSeed(seed, "checkpoint");
    if (r.problems.length > 0) failed.push(`${r.what}: ${r.problems.join("; ")}\n${r.report.timeline.join("\n")}`);
  }
  expect(failed).toEqual([]);
}, 300_000);
