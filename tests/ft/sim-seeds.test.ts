// 500 seeds of the simulated pair (tests/helpers/sim-seeds.ts): each picks a
// guest, a failure (primary, backup or the channel both ways) at an
// instruction count, engines, delay and slice size; the outside world must
// see exactly the solo run's console, no contradiction, one holder per epoch.
// A failing seed is named; `npm run soak -- --from N --seeds 1` reruns it.

import { expect, it } from "vitest";
import { runSeed } from "../helpers/sim-seeds.js";

const SEEDS = 500;

it(`${SEEDS} seeded failures of the simulated pair: the world sees the solo console, one history, one holder per epoch`, async () => {
  const failed: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = await runSeed(seed);
    if (r.problems.length > 0) failed.push(`${r.what}: ${r.problems.join("; ")}\n${r.report.timeline.join("\n")}`);
  }
  expect(failed).toEqual([]);
}, 300_000);
