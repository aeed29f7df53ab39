// A snapshot taken on one engine restores on the other and continues
// bit-identically (host/snapshot/snapshot.ts): for each guest, an
// uninterrupted run is the reference; a second run is stopped at N, its
// snapshot encoded to file bytes, decoded, and restored into a fresh machine
// on the OTHER engine, which runs to the end. The console before N (from the
// first run) plus the console after (from the restored machine) must equal
// the reference's byte for byte, and so must the final instruction count,
// the way the run ended, the state hash and (disk.elf) the disk's content.
// The disk sits behind a copy-on-write overlay whose base never changes.

import { beforeAll, describe, expect, it } from "vitest";
import { initHash, toHex } from "../../host/common/hash.js";
import { MemoryBlockStore } from "../../host/devices/block-store.js";
import type { EngineKind } from "../../host/engine/engine.js";
import { Machine, type RunOutcome } from "../../host/machine/machine.js";
import { bootLive } from "../../host/node/boot.js";
import { hashState, stateHash } from "../../host/replay/state-hash.js";
import { encodeVmConfig, vmConfig } from "../../host/replay/vm-config.js";
import { OverlayBlockStore } from "../../host/snapshot/overlay.js";
import { captureSnapshot, decodeSnapshot, restoreSnapshot } from "../../host/snapshot/snapshot.js";
import { guestImage, MiB, otherEngine } from "../helpers/replay.js";

beforeAll(() => initHash());

interface Case {
  guest: string;
  cmdline: string;
  disk: boolean;
  /** The run's end: the guest's own, or this many instructions (bench). */
  limit: number;
  /** Where to take snapshots. */
  at: number[];
  /** Least instructions the reference must run (so each N is inside the run). */
  atLeast: number;
}

const CASES: Case[] = [
  { guest: "ticks", cmdline: "ticks=20 every=5 hz=1000", disk: false, limit: 50_000_000, at: [1, 9_000, 20_000], atLeast: 25_000 },
  { guest: "bench", cmdline: "", disk: false, limit: 1_500_000, at: [1, 400_000, 1_499_999], atLeast: 1_500_000 },
  { guest: "disk", cmdline: "", disk: true, limit: 50_000_000, at: [150_000, 5_000_000, 12_000_000], atLeast: 13_000_000 },
];
const RAM = 16 * MiB;
const SECTORS = 2048;
const TERMINAL = new Set<RunOutcome["reason"]>(["exit-port", "halted", "fault", "int", "triple-fault", "idle"]);

interface Booted { m: Machine; out: number[]; overlay?: OverlayBlockStore; config: Uint8Array }

/** A machine as `lockstep snapshot save` builds one: virtual clock, COM1 and debugcon captured, a disk behind an overlay. */
async function boot(c: Case, engine: EngineKind): Promise<Booted> {
  const image = guestImage(c.guest);
  const out: number[] = [];
  const overlay = c.disk ? new OverlayBlockStore(new MemoryBlockStore(SECTORS)) : undefined;
  const cmdline = `guests/bin/${c.guest}.elf ${c.cmdline}`;
  const m = await bootLive(image, {
    engine, ramSize: RAM, clock: "virtual", cmdline, disk: overlay,
    onSerial: (b) => out.push(b), // the debug console stays off, as in `lockstep run` with COM1 on stdout
  });
  const config = encodeVmConfig(vmConfig(image, { ramSize: RAM, clock: "virtual", cmdline, disk: overlay }));
  return { m, out, overlay, config };
}

/** Runs until the guest ends or `until` instructions have retired; the last outcome. */
function runTo(m: Machine, until: number): RunOutcome | null {
  let last: RunOutcome | null = null;
  while (m.engine.icount < BigInt(until)) {
    last = m.runSync(Number(BigInt(until) - m.engine.icount));
    if (TERMINAL.has(last.reason)) return last;
  }
  return last;
}

const text = (b: number[]) => Buffer.from(b).toString("latin1");

describe.each(CASES)("$guest", (c) => {
  let ref: { out: string; icount: bigint; reason: string; hash: string; disk: string | null };

  beforeAll(async () => {
    const r = await boot(c, "wasm");
    try {
      const o = runTo(r.m, c.limit);
      ref = {
        out: text(r.out), icount: r.m.engine.icount, reason: o?.reason ?? "limit", hash: toHex(stateHash(r.m)),
        disk: r.overlay ? toHex(r.overlay.read(0, SECTORS)) : null,
      };
    } finally {
      r.m.dispose();
    }
    expect(Number(ref.icount)).toBeGreaterThanOrEqual(c.atLeast);
    expect(ref.out.length).toBeGreaterThan(0);
  }, 300_000);

  it.each(c.at.flatMap((n) => (["wasm", "ts"] as const).map((e) => [n, e] as const)))(
    "saved at %i on %s, restored on the other engine, ends as the uninterrupted run", async (n, first) => {
      const a = await boot(c, first);
      let bytes: Uint8Array;
      let before: string;
      try {
        const o = runTo(a.m, n);
        expect(o === null || !TERMINAL.has(o.reason), `the guest ended before ${n}`).toBe(true);
        expect(a.m.engine.icount).toBe(BigInt(n));
        before = text(a.out);
        bytes = captureSnapshot(a.m, { config: a.config, image: guestImage(c.guest), engine: first, hashState, overlay: a.overlay });
      } finally {
        a.m.dispose();
      }

      const snap = decodeSnapshot(bytes);
      expect(snap.meta.icount).toBe(BigInt(n));
      expect(snap.meta.engine).toBe(first);
      const b = await boot(c, otherEngine(first));
      try {
        b.out.length = 0; // the boot printed nothing, but the restored machine's console starts here
        restoreSnapshot(b.m, snap, { config: b.config, hashState, overlay: b.overlay });
        expect(toHex(stateHash(b.m))).toBe(toHex(snap.meta.stateHash));
        const o = runTo(b.m, c.limit);
        expect(before + text(b.out)).toBe(ref.out);
        expect(b.m.engine.icount).toBe(ref.icount);
        expect(o?.reason ?? "limit").toBe(ref.reason);
        expect(toHex(stateHash(b.m))).toBe(ref.hash);
        if (b.overlay) expect(toHex(b.overlay.read(0, SECTORS))).toBe(ref.disk);
      } finally {
        b.m.dispose();
      }
    }, 300_000);
});
