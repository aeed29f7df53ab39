// Divergence checks' figures (host/ft/divergence.ts; docs/ft.md, "Divergence
// detection"), in one process on the wasm engine, for `npm run bench` and
// tests/ft/divergence.test.ts:
// - what a check costs: the digest's time at each check against the time the
//   guest took to run the interval before it;
// - what a repair costs: a backup diverged in a few pages is repaired by a
//   transfer of the pages whose hashes differ (the repair), and the same
//   primary is also transferred whole to a fresh machine (a full transfer),
//   the guest running between frames in both; bytes and pages of each.

import { initHash } from "../host/common/hash.js";
import { DivergenceCheck, repairRequest } from "../host/ft/divergence.js";
import { PreCopy, StateReceiver, type TransferFigures } from "../host/ft/state-transfer.js";
import type { Frame } from "../host/ft/wire.js";
import type { Machine } from "../host/machine/machine.js";
import { bootLive } from "../host/node/boot.js";
import { hashState, stateHash } from "../host/replay/state-hash.js";
import { median } from "./common.js";
import { readFileSync } from "node:fs";

const MiB = 1 << 20;
const guestPath = (name: string) => new URL(`../guests/bin/${name}.elf`, import.meta.url);
const boot = (guest: string, ramSize: number) => bootLive(new Uint8Array(readFileSync(guestPath(guest))), { engine: "wasm", ramSize, clock: "virtual", onSerial: () => {} });

export interface CheckCost {
  guest: string;
  interval: number;
  checks: number;
  /** Medians: the guest's run of one interval, one digest, the pages it hashed. */
  runMs: number;
  digestMs: number;
  dirtyPages: number;
  /** digestMs / runMs: the check's share of the replica's time. */
  overhead: number;
}

/** The digest's cost on `guest` every `interval` instructions (32 MiB, virtual clock). */
export async function checkCost(o: { guest?: string; interval?: number; checks?: number; ramSize?: number } = {}): Promise<CheckCost> {
  await initHash();
  const guest = o.guest ?? "bench", interval = o.interval ?? 20_000_000, n = o.checks ?? 10;
  const m = await boot(guest, o.ramSize ?? 32 * MiB);
  const check = new DivergenceCheck(m);
  const run: number[] = [], digest: number[] = [], pages: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = m.runSync(interval);
    const t1 = performance.now();
    const d = check.digest();
    const t2 = performance.now();
    if (r.reason !== "limit") break;
    // The first interval holds the boot's pages: left out of the medians.
    if (i === 0) continue;
    run.push(t1 - t0);
    digest.push(t2 - t1);
    pages.push(d.pages.length);
  }
  m.dispose();
  const runMs = median(run), digestMs = median(digest);
  return { guest, interval, checks: run.length, runMs, digestMs, dirtyPages: median(pages), overhead: digestMs / runMs };
}

export interface RepairFigures {
  guest: string;
  ramBytes: number;
  ramPages: number;
  /** Pages of the backup corrupted (one bit each). */
  corruptedPages: number;
  /** Bytes of RAM filled with the same data on both replicas before the run (a guest's page cache, say), above the guest's own. */
  filledBytes: number;
  repair: TransferFigures;
  full: TransferFigures;
  /** Both transfers rebuilt the primary's state exactly (state hash). */
  exact: boolean;
}

/** Drives a transfer from `p` into `into`, the guest running `runBetween` instructions between steps; true if `into` ends with the primary's state. */
async function transfer(p: Machine, pre: PreCopy, rx: StateReceiver, into: Machine, runBetween: number): Promise<boolean> {
  const take = (fs: Frame[]) => { for (const f of fs) if (f.type === "pages") rx.pages(f); };
  for (;;) {
    take(pre.frames(4));
    p.runSync(runBetween);
    if (pre.roundSent && pre.nextRound()) break;
    await new Promise((r) => setTimeout(r, 0)); // the hasher is made asynchronously
  }
  take(pre.finish(0));
  const at = p.saveState();
  let state = pre.hashStep();
  while (state === null) state = pre.hashStep();
  if (state.type !== "state") throw new Error("a transfer ended without STATE");
  rx.install(into, state);
  return Buffer.from(stateHash(into)).equals(Buffer.from(hashState(at)));
}

/**
 * A backup of `guest` (32 MiB) diverged in `corrupt` pages at instruction
 * `at`: the bytes and pages of its repair against a full transfer.
 */
export async function repairFigures(o: { guest?: string; ramSize?: number; at?: number; corrupt?: number; runBetween?: number; fill?: number } = {}): Promise<RepairFigures> {
  await initHash();
  const guest = o.guest ?? "bench", ramSize = o.ramSize ?? 32 * MiB, at = o.at ?? 40_000_000, corrupt = o.corrupt ?? 4, between = o.runBetween ?? 20_000;
  const fill = o.fill ?? 0;
  const p = await boot(guest, ramSize);
  const b = await boot(guest, ramSize);
  // The guests in guests/bin touch a few MiB; a RAM in use is filled at its top, alike on both (xorshift bytes: no zero pages).
  if (fill > 0) {
    const data = new Uint8Array(fill);
    let x = 0x9e3779b9;
    for (let i = 0; i < fill; i += 4) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      data[i] = x & 0xff; data[i + 1] = (x >>> 8) & 0xff; data[i + 2] = (x >>> 16) & 0xff; data[i + 3] = (x >>> 24) | 1;
    }
    for (const m of [p, b]) m.engine.writeMem(ramSize - fill, data);
  }
  p.runSync(at);
  b.runSync(at);
  // One bit in each of `corrupt` pages spread over RAM, through the engine.
  const pages = ramSize / 4096;
  for (let k = 0; k < corrupt; k++) {
    const addr = Math.floor(((k + 0.5) * pages) / corrupt) * 4096 + 77;
    b.engine.writeMem(addr, Uint8Array.of(b.engine.readMem(addr, 1)[0]! ^ 0x20));
  }
  const req = repairRequest(b.engine.icount, b.engine.ram);
  const base = req.frames.flatMap((f) => f.hashes);
  const repair = new PreCopy(p, { base });
  const repaired = await transfer(p, repair, new StateReceiver(ramSize, b.engine.ram), b, between);
  repair.figures.requestBytes = req.bytes;
  const fresh = await boot(guest, ramSize);
  const full = new PreCopy(p);
  const whole = await transfer(p, full, new StateReceiver(ramSize), fresh, between);
  for (const m of [p, b, fresh]) m.dispose();
  return { guest, ramBytes: ramSize, ramPages: pages, corruptedPages: corrupt, filledBytes: fill, repair: repair.figures, full: full.figures, exact: repaired && whole };
}

/** The figure's lines: a repair's pages and bytes against a full transfer's. */
export function repairLines(f: RepairFigures): string[] {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return [
    `repair of a backup diverged in ${f.corruptedPages} pages (${f.guest}.elf, ${f.ramBytes / MiB} MiB = ${f.ramPages} pages${f.filledBytes > 0 ? `, ${f.filledBytes / MiB} MiB of it filled with data` : ""}; the guest running between frames)`,
    `  repair:        ${String(f.repair.pages).padStart(6)} pages sent, ${kib(f.repair.bytes).padStart(12)} (+ ${kib(f.repair.requestBytes)} of page hashes the other way), ${f.repair.unchangedPages} pages already right, ${f.repair.rounds} round(s)`,
    `  full transfer: ${String(f.full.pages).padStart(6)} pages sent, ${kib(f.full.bytes).padStart(12)}, ${f.full.rounds} round(s)`,
    `  repair / full: ${((f.repair.bytes + f.repair.requestBytes) / f.full.bytes).toFixed(4)} of the bytes; both exact: ${f.exact}`,
  ];
}
