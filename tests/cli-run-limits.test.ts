// lockstep run with and without --max-instructions, on a guest that never
// goes idle. Regression: with --clock virtual and no limit, `lockstep run`
// used to stop every such guest after 5,000,000 instructions (one slice of
// the real-time loop) and report "instruction limit 5000000 reached" though
// no limit was given. The loop is now host/machine/realtime.ts runRealtime, which
// runs slice after slice until the guest stops or the caller's limit is hit.
//
// guests/bin/bench.elf is CPU-bound (~403M instructions on the virtual
// clock, a few seconds on wasm) and ends with exit status 0.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { runLockstep } from "./helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-limits-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const bench = fileURLToPath(new URL("../guests/bin/bench.elf", import.meta.url));
const instructions = (stderr: string) => Number(/^lockstep run: (\d+) instructions/m.exec(stderr)?.[1] ?? NaN);

describe("lockstep run on a guest that never goes idle (virtual clock)", () => {
  it("runs bench.elf to its own end when no limit is given", async () => {
    const r = await runLockstep(tmp, "run", bench, "--clock", "virtual");
    expect(r.stderr).not.toMatch(/instruction limit/);
    expect(r.stderr).toMatch(/; guest exit status 0\n$/);
    expect(r.status).toBe(0);
    // Far past the old stop at one driver slice (5,000,000).
    expect(instructions(r.stderr)).toBeGreaterThan(100_000_000);
  }, 120_000);

  it("stops at exactly --max-instructions, says so and exits 1", async () => {
    const r = await runLockstep(tmp, "run", bench, "--clock", "virtual", "--max-instructions", "7000000");
    expect(instructions(r.stderr)).toBe(7_000_000);
    expect(r.stderr).toMatch(/; instruction limit 7000000 reached at EIP 0x[0-9a-f]{8}\n$/);
    expect(r.status).toBe(1);
  }, 60_000);
});
