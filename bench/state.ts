// State transfer's figures (npm run bench -- --part state; docs/bench.md,
// issue 10 §6). Guest RAM is 64 MiB throughout.
//
//   snapshot   bench.elf (virtual clock, wasm) run to the middle of its work,
//              then a snapshot taken (host/snapshot/snapshot.ts
//              captureSnapshot: the state hash, the sections' hashes, the
//              compression) and restored into a fresh machine (decode,
//              check, load, check the state hash again): times, file size,
//              the compressor's ratio on the RAM section
//   new backup a pair (host/node/ft-pair.ts, two workers, respawn on) whose
//              primary is killed while the guest runs; the backup goes live
//              and a new backup joins by live pre-copy
//              (host/ft/state-transfer.ts): the guest's pause, the rounds,
//              the bytes, and the time from the kill to redundancy. Two
//              guests: bench.elf (CPU-bound, writes memory as it runs) and
//              kv.elf (a service, idle between requests)
//   repair     a backup diverged in 4 pages repaired by the pages whose
//              hashes differ, against a full transfer (bench/divergence.ts),
//              on bench.elf's RAM as it is and with 24 MiB of it filled;
//              and the divergence check's cost at its default interval
//
//   npx tsx bench/state.ts [--runs N] [--no-save]

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { initHash } from "../host/common/hash.js";
import { MemoryArbiter } from "../host/ft/arbiter.js";
import { DEFAULT_TIMEOUTS } from "../host/ft/failure-detector.js";
import type { ReplicaStatus } from "../host/ft/replica.js";
import type { TransferFigures } from "../host/ft/state-transfer.js";
import { bootLive } from "../host/node/boot.js";
import { startPair, type Side } from "../host/node/ft-pair.js";
import { encodeVmConfig, vmConfig, vmConfigHash } from "../host/replay/vm-config.js";
import { hashState } from "../host/replay/state-hash.js";
import { captureSnapshot, decodeSnapshot, restoreSnapshot } from "../host/snapshot/snapshot.js";
import { BenchError, median } from "./common.js";
import { checkCost, repairFigures, repairLines } from "./divergence.js";

const guestFile = (name: string) => fileURLToPath(new URL(`../guests/bin/${name}`, import.meta.url));
const MEM = 64 << 20;
/** Targets (issue 10 §6): the guest's pause while a new backup takes the state of a 64 MiB guest. */
export const STATE_TARGETS = { pauseMs: 50 };
/** bench.elf runs about 400M instructions; the snapshot is taken half-way. */
const SNAPSHOT_AT = 200_000_000;
/** The primary is killed this long after its guest started (bench.elf runs a few seconds as a pair). */
const KILL_AFTER_MS = 800;
const STATUS_MS = 10;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const med = (xs: number[]) => (xs.length ? median(xs) : NaN);
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");

export interface StateBenchOptions {
  runs: number;
}

async function snapshotRun(image: Uint8Array) {
  const cfg = vmConfig(image, { ramSize: MEM, clock: "virtual", cmdline: "bench.elf", nic: false });
  const m = await bootLive(image, { engine: "wasm", ramSize: MEM, clock: "virtual", cmdline: "bench.elf" });
  const r = m.runSync(SNAPSHOT_AT);
  if (r.reason !== "limit") throw new BenchError(`bench.elf stopped (${r.reason}) before instruction ${SNAPSHOT_AT}`);
  let t = performance.now();
  const bytes = captureSnapshot(m, { config: encodeVmConfig(cfg), image, engine: "wasm", hashState });
  const saveMs = performance.now() - t;
  const fresh = await bootLive(image, { engine: "wasm", ramSize: MEM, clock: "virtual", cmdline: "bench.elf" });
  t = performance.now();
  const snap = decodeSnapshot(bytes);
  restoreSnapshot(fresh, snap, { config: encodeVmConfig(cfg), hashState });
  const restoreMs = performance.now() - t;
  const ram = snap.file.layout.find((l) => l.name === "RAM")!;
  // Guest RAM that is not all zero: what the compressor has to work on.
  const state = m.saveState({ ram: "view" });
  let nonZeroPages = 0;
  for (let p = 0; p < MEM / 4096; p++) {
    const page = new Uint32Array(state.ram.buffer, state.ram.byteOffset + p * 4096, 1024);
    if (page.some((w) => w !== 0)) nonZeroPages++;
  }
  return { saveMs, restoreMs, fileBytes: bytes.length, ramStored: ram.storedBytes, ramRaw: ram.rawBytes, nonZeroPages };
}

async function newBackupRun(guest: "bench.elf" | "kv.elf") {
  const image = new Uint8Array(readFileSync(guestFile(guest)));
  const kv = guest === "kv.elf";
  const clock = kv ? "host" : "virtual";
  const configHash = vmConfigHash(vmConfig(image, { ramSize: MEM, clock, cmdline: guest, nic: kv }));
  const vm = `bench-state-${guest}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const arbiter = new MemoryArbiter();
  await arbiter.claim({ vm, epoch: 1, replica: "primary", atMs: Date.now(), reason: "first start" });
  let transfer: (TransferFigures & { atMs: number }) | null = null;
  let guestStartMs: number | null = null;
  let liveAtMs: number | null = null;
  let console_ = "";
  const lines: string[] = [];
  const pair = startPair({
    image, engines: { primary: "wasm", backup: "wasm" }, ramSize: MEM, clock, cmdline: guest, nic: kv,
    configHash, vm, arbiter, timeouts: DEFAULT_TIMEOUTS, respawn: true, statusMs: STATUS_MS,
    onTransferred: (f) => { transfer = { ...f, atMs: now() }; },
    onSerial: (b) => { console_ += String.fromCharCode(b); },
    onStatus: (side: Side, s: ReplicaStatus) => { if (side === "primary" && s.icount > 0n && guestStartMs === null) guestStartMs = now(); },
    say: (line) => {
      lines.push(line);
      if (/going live/.test(line)) liveAtMs = now();
    },
  });
  const t0 = now();
  while (guestStartMs === null || (kv && !/kv: ready/.test(console_))) {
    if (now() - t0 > 20_000) throw new BenchError(`${guest}: the pair's guest did not start within 20 s`);
    await sleep(5);
  }
  await sleep(KILL_AFTER_MS);
  const killedAtMs = now();
  pair.kill("primary");
  while (transfer === null && now() - killedAtMs < 20_000) await sleep(5);
  pair.kill("backup");
  pair.kill("primary");
  await pair.done;
  const tr = transfer as (TransferFigures & { atMs: number }) | null;
  if (!tr) throw new BenchError(`${guest}: no new backup joined within 20 s of the kill; the pair said:\n${lines.join("\n")}`);
  return {
    pauseMs: tr.pauseMs, rounds: tr.rounds, pages: tr.pages, zeroPages: tr.zeroPages, finalPages: tr.finalPages, mib: tr.bytes / 1048576,
    liveAfterMs: liveAtMs === null ? NaN : (liveAtMs as number) - killedAtMs,
    redundantAfterMs: tr.atMs - killedAtMs,
  };
}

export async function stateBench(o: StateBenchOptions): Promise<{ lines: string[]; result: Record<string, unknown> }> {
  await initHash();
  process.stderr.write(`bench: state transfer: ${o.runs} round(s); snapshots of bench.elf, a new backup for bench.elf and kv.elf (64 MiB guests)\n`);
  const image = new Uint8Array(readFileSync(guestFile("bench.elf")));
  const snaps = [];
  for (let i = 0; i < o.runs; i++) {
    snaps.push(await snapshotRun(image));
    process.stderr.write(`bench: snapshot ${i + 1}/${o.runs}: save ${f1(snaps[i]!.saveMs)} ms, restore ${f1(snaps[i]!.restoreMs)} ms\n`);
  }
  const backups: Record<string, Awaited<ReturnType<typeof newBackupRun>>[]> = { "bench.elf": [], "kv.elf": [] };
  for (let i = 0; i < o.runs; i++) {
    for (const g of ["bench.elf", "kv.elf"] as const) {
      const r = await newBackupRun(g);
      backups[g]!.push(r);
      process.stderr.write(`bench: new backup ${g} ${i + 1}/${o.runs}: pause ${f1(r.pauseMs)} ms, redundant ${f1(r.redundantAfterMs)} ms after the kill\n`);
    }
  }
  process.stderr.write("bench: repair of a diverged backup, and the divergence check's cost\n");
  const repairs = [await repairFigures({ ramSize: MEM }), await repairFigures({ ramSize: MEM, fill: 24 << 20 })];
  const cost = await checkCost({ ramSize: MEM });
  const s0 = snaps[0]!;
  const snapshot = {
    saveMedianMs: med(snaps.map((s) => s.saveMs)), restoreMedianMs: med(snaps.map((s) => s.restoreMs)),
    fileBytes: s0.fileBytes, ramRawBytes: s0.ramRaw, ramStoredBytes: s0.ramStored, ramRatio: s0.ramRaw / s0.ramStored,
    nonZeroPages: s0.nonZeroPages, nonZeroRatio: (s0.nonZeroPages * 4096) / s0.ramStored,
  };
  const summary = (rs: Awaited<ReturnType<typeof newBackupRun>>[]) => ({
    pauseMedianMs: med(rs.map((r) => r.pauseMs)), pauseMaxMs: Math.max(...rs.map((r) => r.pauseMs)),
    redundantMedianMs: med(rs.map((r) => r.redundantAfterMs)), liveMedianMs: med(rs.map((r) => r.liveAfterMs)),
    roundsMedian: med(rs.map((r) => r.rounds)), mibMedian: med(rs.map((r) => r.mib)), finalPagesMedian: med(rs.map((r) => r.finalPages)),
    runs: rs,
  });
  const nb = { "bench.elf": summary(backups["bench.elf"]!), "kv.elf": summary(backups["kv.elf"]!) };
  const T = STATE_TARGETS;
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  const lines = [
    "",
    `state transfer, 64 MiB guests, ${o.runs} round(s), medians`,
    "",
    `snapshot of bench.elf at instruction ${SNAPSHOT_AT}: save ${f1(snapshot.saveMedianMs)} ms, restore ${f1(snapshot.restoreMedianMs)} ms; file ${snapshot.fileBytes} bytes;`,
    `  RAM section ${snapshot.ramRawBytes} -> ${snapshot.ramStoredBytes} bytes (${f1(snapshot.ramRatio)}:1; ${snapshot.nonZeroPages} pages not all zero, ${f1(snapshot.nonZeroRatio)}:1 on those)`,
    "",
    `new backup (primary killed ${KILL_AFTER_MS} ms into the guest; the backup goes live, a new backup joins by live pre-copy)`,
    `guest       pause ms (max)     rounds  MiB sent  last pages  backup live after  redundant after   target pause <= ${T.pauseMs} ms`,
    ...(["bench.elf", "kv.elf"] as const).map((g) => {
      const x = nb[g];
      return `${g.padEnd(10)}  ${f1(x.pauseMedianMs).padStart(7)} (${f1(x.pauseMaxMs).padStart(6)})  ${String(x.roundsMedian).padStart(6)}  ${f1(x.mibMedian).padStart(8)}  ${String(x.finalPagesMedian).padStart(10)}  ${f1(x.liveMedianMs).padStart(14)} ms  ${f1(x.redundantMedianMs).padStart(12)} ms   ${verdict(x.pauseMedianMs <= T.pauseMs)}`;
    }),
    "",
    ...repairs.flatMap((r) => [...repairLines(r), ""]),
    `divergence check every ${cost.interval} instructions (bench.elf, ${MEM >> 20} MiB): digest ${cost.digestMs.toFixed(2)} ms against ${cost.runMs.toFixed(1)} ms of running, ${(cost.overhead * 100).toFixed(2)}% (median of ${cost.checks})`,
  ];
  const result = {
    workload: "state", targets: T, runs: o.runs, mem: MEM, snapshot, newBackup: nb,
    repair: repairs.map((r) => ({ corruptedPages: r.corruptedPages, filledBytes: r.filledBytes, repairPages: r.repair.pages, repairBytes: r.repair.bytes, requestBytes: r.repair.requestBytes, fullPages: r.full.pages, fullBytes: r.full.bytes, exact: r.exact })),
    checkCost: cost,
    met: { pauseBench: nb["bench.elf"].pauseMedianMs <= T.pauseMs, pauseKv: nb["kv.elf"].pauseMedianMs <= T.pauseMs },
  };
  return { lines, result };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf("--runs");
  const runs = at < 0 ? 3 : Number(process.argv[at + 1]);
  if (!Number.isInteger(runs) || runs < 1) throw new BenchError(`--runs must be a whole number from 1, got ${process.argv[at + 1]}`);
  const { lines, result } = await stateBench({ runs });
  process.stdout.write(lines.join("\n") + "\n");
  process.stdout.write(JSON.stringify(result.met) + "\n");
}
