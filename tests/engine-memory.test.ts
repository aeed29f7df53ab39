// Engines give their memory back: 100 engines of each kind created and
// released (by dispose(), or by being dropped and garbage-collected) leave
// memory about where it was. Without the core pool (host/engine/core-pool.ts)
// every TS engine kept its ~19 MiB of caches plus its RAM for good.
//
// Each case runs in a child `node --expose-gc` (tests/helpers/engine-churn.ts)
// so that it can force collections and measure a process of its own.

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../", import.meta.url));
const COUNT = 100;
const RAM = 8 << 20;
/** What one engine held before the pool: the TS build's caches (16 MiB line generations + 2 MiB decode cache + 256 KiB dirty map) and its RAM. */
const PER_ENGINE = 18 * 2 ** 20 + RAM;
/** Allowed growth over the 100 engines: a small fraction of what they would hold if nothing were released. */
const BOUND = 48 * 2 ** 20;

interface Churn { growth: number; peakGrowth: number }

function churn(kind: string, mode: string): Churn {
  const out = execFileSync(
    process.execPath,
    ["--expose-gc", "--import", "tsx", "tests/helpers/engine-churn.ts", kind, mode, String(COUNT), String(RAM)],
    { cwd: root, encoding: "utf8", timeout: 120_000 },
  );
  return JSON.parse(out.trim().split("\n").pop()!) as Churn;
}

describe("engine memory stays flat", () => {
  for (const kind of ["wasm", "ts"]) {
    for (const mode of ["dispose", "drop"]) {
      it(`${kind}: ${COUNT} engines, each ${mode === "dispose" ? "disposed" : "dropped and collected"}`, () => {
        const r = churn(kind, mode);
        const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
        const msg = `growth ${mib(r.growth)}, peak ${mib(r.peakGrowth)} (unreleased engines would hold ~${mib(COUNT * PER_ENGINE)})`;
        expect(r.peakGrowth, msg).toBeLessThan(BOUND);
        expect(r.growth, msg).toBeLessThan(BOUND);
      }, 180_000);
    }
  }
});
