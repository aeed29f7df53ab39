// Flow control (host/ft/primary.ts): the primary runs no further than
// `maxLag` past the backup's acknowledgement (the buffer between them) and
// `runAhead` past where the backup's guest has run (its RAN reports: the
// backup's lag, which a go-live must replay).

import { describe, expect, it } from "vitest";
import { BackupRole } from "../../host/ft/backup.js";
import { PrimaryRole } from "../../host/ft/primary.js";

const T = { intervalMs: 20, timeoutMs: 200 };

describe("the primary's flow control", () => {
  it("waits when the backup's guest is more than runAhead behind, and runs again when a RAN catches up", () => {
    const p = new PrimaryRole({ timeouts: T, maxLag: 1_000_000n, runAhead: 300n, nowMs: 0 });
    expect(p.mayRun).toBe(true);
    p.ranTo(300n, 1);
    expect(p.mayRun).toBe(true); // exactly runAhead ahead
    p.ranTo(301n, 2);
    expect(p.mayRun).toBe(false);
    p.received({ type: "ack", icount: 301n }, 3);
    expect(p.mayRun).toBe(false); // holding the log is not having run it
    p.received({ type: "ran", icount: 1n }, 4);
    expect(p.mayRun).toBe(true);
    p.received({ type: "ran", icount: 0n }, 5); // an older report changes nothing
    expect(p.mayRun).toBe(true);
    p.setRunAhead(299n);
    expect(p.mayRun).toBe(false);
  });

  it("waits when the backup holds less than maxLag behind, whatever it ran", () => {
    const p = new PrimaryRole({ timeouts: T, maxLag: 1000n, runAhead: 1_000_000n, nowMs: 0 });
    p.ranTo(1001n, 1);
    expect(p.mayRun).toBe(false);
    p.received({ type: "ack", icount: 1n }, 2);
    expect(p.mayRun).toBe(true);
  });

  it("a primary alone is not held back", () => {
    const p = new PrimaryRole({ timeouts: T, maxLag: 10n, runAhead: 10n, nowMs: 0 });
    p.ranTo(100n, 1);
    expect(p.mayRun).toBe(false);
    let claim = false;
    for (let t = 10; t <= 500 && !claim; t += 10) claim = p.tick(t).claim;
    expect(claim).toBe(true);
    p.claimed(true, "");
    expect(p.mayRun).toBe(true);
  });
});

describe("the backup's RAN reports", () => {
  it("one for each new count while following, none after", () => {
    const b = new BackupRole({ timeouts: T, nowMs: 0 });
    expect(b.ranTo(0n, 1).send).toEqual([]);
    expect(b.ranTo(500n, 2).send).toEqual([{ type: "ran", icount: 500n }]);
    expect(b.ranTo(500n, 3).send).toEqual([]);
    expect(b.ranTo(900n, 4).send).toEqual([{ type: "ran", icount: 900n }]);
    let claim = false;
    for (let t = 10; t <= 500 && !claim; t += 10) claim = b.tick(t).claim;
    expect(claim).toBe(true);
    expect(b.ranTo(1000n, 501).send).toEqual([]);
  });
});
