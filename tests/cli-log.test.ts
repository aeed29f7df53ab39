// lockstep log inspect, run as a user would (child process) on logs written
// with the log-format module: the counts it reports, and refusals of a
// truncated or corrupted log with the byte offset.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runLockstep } from "./helpers/cli.js";
import { LogWriter } from "../host/replay/log-format.js";
import { EventKind } from "../host/replay/event-kinds.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-log-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const lockstep = (...args: string[]) => runLockstep(tmp, ...args);

/** A log of 3 SERIAL_RX events (1, 2, 3 bytes) and 2 IRQ events (1 byte) over 1,000,000 instructions. */
function sampleLog(): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new LogWriter((c) => chunks.push(c), new Uint8Array(32).fill(7), 0n);
  w.append(100n, EventKind.SERIAL_RX, Uint8Array.of(1));
  w.append(200n, EventKind.IRQ, Uint8Array.of(0));
  w.append(300n, EventKind.SERIAL_RX, Uint8Array.of(1, 2));
  w.append(400n, EventKind.IRQ, Uint8Array.of(0));
  w.append(500n, EventKind.SERIAL_RX, Uint8Array.of(1, 2, 3));
  w.end(1_000_000n, 20_000_000n, new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

describe("lockstep log inspect", () => {
  it("counts events and payload bytes per kind, and the instruction span", async () => {
    const file = join(tmp, "a.log");
    const bytes = sampleLog();
    writeFileSync(file, bytes);
    const r = await lockstep("log", "inspect", file, "--json");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.bytes).toBe(bytes.length);
    expect(j.events).toBe(5);
    expect(j.finalIcount).toBe("1000000");
    expect(j.configHash).toBe("07".repeat(32));
    expect(j.byKind.SERIAL_RX.count).toBe(3);
    expect(j.byKind.SERIAL_RX.payloadBytes).toBe(6);
    expect(j.byKind.IRQ.count).toBe(2);
    expect(j.byKind.IRQ.payloadBytes).toBe(2);
    // The end record says 20 ms of guest time.
    expect(j.guestSeconds).toBeCloseTo(0.02, 9);
    expect(j.bytesPerGuestSecond).toBeCloseTo(bytes.length / 0.02, 6);
    expect(j.eventsPerGuestSecond).toBeCloseTo(5 / 0.02, 6);
    const t = await lockstep("log", "inspect", file);
    expect(t.status).toBe(0);
    expect(t.stdout).toMatch(/SERIAL_RX\s+3\s+6\s/);
    expect(t.stdout).toMatch(/20\.000 ms of guest time/);
  });

  it("refuses a corrupted log with the byte offset, exit 2", async () => {
    const bytes = sampleLog();
    const cut = join(tmp, "cut.log");
    writeFileSync(cut, bytes.subarray(0, 20)); // inside the header: no configuration
    const r = await lockstep("log", "inspect", cut);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not a valid replay log: truncated header \(at byte offset 0\)/);
    const bad = join(tmp, "bad.log");
    const flipped = bytes.slice();
    flipped[0] ^= 0xff;
    writeFileSync(bad, flipped);
    const b = await lockstep("log", "inspect", bad);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/at byte offset 0\)/);
    const missing = await lockstep("log", "inspect", join(tmp, "none.log"));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/no such file/);
  });
});
