// lockstep ft GUEST: the guest as a fault-tolerant pair on this machine
// (host/node/ft-pair.ts: a primary and a backup in worker threads). This
// process is the outside world: it prints the guest's COM1 output, each
// output number once, so the console reads exactly as `lockstep run` prints
// it whatever fails and when (docs/ft.md). With --disk it is also the only
// writer of the image: it applies each released write (docs/ft-disk.md).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initHash, toHex } from "../common/hash.js";
import { BlockStoreError } from "../devices/block-store.js";
import { MAX_RAM, MIN_RAM } from "../engine/load.js";
import type { Arbiter } from "../ft/arbiter.js";
import { DEFAULT_CHECK_EVERY } from "../ft/divergence.js";
import { DEFAULT_TIMEOUTS } from "../ft/failure-detector.js";
import type { ReplicaStatus } from "../ft/replica.js";
import { DEFAULT_EPOCH_MS, type CheckpointFigures } from "../ft/checkpoint.js";
import { startPair, type Side } from "../node/ft-pair.js";
import type { FtStatusExtra } from "../node/ft-worker.js";
import { FileArbiter } from "../node/file-arbiter.js";
import { FileBlockStore } from "../node/file-block-store.js";
import { vmConfig, vmConfigHash } from "../replay/vm-config.js";
import { UsageError } from "./args.js";
import { openArbiter } from "./arbiter.js";
import { CommandError, defineCommand, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./command.js";
import { guestCmdline, readGuest } from "./run.js";

export interface FailSpec {
  /**
   * The replica stopped dead; "partition": the channel cut both ways, both
   * replicas going on; "corrupt": one bit of the backup's RAM flipped (a
   * divergence for the checks to find).
   */
  who: Side | "partition" | "corrupt";
  /** An instruction count of the primary's (or the backup's) guest, or ms after the start. */
  at: { icount: bigint } | { ms: number };
}

/** Parses `primary@120000000`, `backup@1500ms`, `partition@2s`, `corrupt@50000000`. */
export function parseFail(text: string): FailSpec {
  const m = /^(primary|backup|partition|corrupt)@(\d+)(ms|s)?$/.exec(text);
  if (!m) throw new UsageError(`--fail must be primary@WHEN, backup@WHEN, partition@WHEN or corrupt@ICOUNT (WHEN: an instruction count, or a time like 1500ms or 2s), got ${text}`);
  const n = m[2]!;
  if (m[1] === "corrupt" && m[3] !== undefined) throw new UsageError(`--fail corrupt@ICOUNT takes an instruction count of the backup's guest, got ${text}`);
  const at = m[3] === undefined ? { icount: BigInt(n) } : { ms: Number(n) * (m[3] === "s" ? 1000 : 1) };
  return { who: m[1] as FailSpec["who"], at };
}

/** Parses `--epoch`: milliseconds, as `25` or `25ms`. */
export function parseEpoch(text: string): number {
  const m = /^(\d+)(ms)?$/.exec(text);
  const n = m ? Number(m[1]) : NaN;
  if (!m || n < 1 || n > 60_000) throw new UsageError(`--epoch must be a time between 1ms and 60000ms (like 25ms), got ${text}`);
  return n;
}

/** A checkpoint-mode primary's figures in a few words: how many, how big, the pauses. */
export function checkpointWords(f: CheckpointFigures): string {
  const mib = (f.bytes / 1048576).toFixed(1);
  const per = f.checkpoints > 0 ? (f.bytes / f.checkpoints / 1024).toFixed(1) : "0";
  const avg = f.checkpoints > 0 ? (f.pauseMs / f.checkpoints).toFixed(2) : "0";
  const pause = f.pauseMs > 0 ? `, pause ${avg} ms mean, ${f.maxPauseMs.toFixed(2)} ms max` : "";
  return `${f.checkpoints} checkpoints, ${mib} MiB (${per} KiB each)${pause}`;
}

/**
 * The pair at a glance: both instruction counts, the backup's lag, the
 * channel's rate and the outputs the primary holds, from the workers'
 * status messages (host/node/ft-worker.ts).
 */
export class StatusLine {
  private st: Partial<Record<Side, ReplicaStatus>> = {};
  private bytes: { atMs: number; out: number }[] = [];

  update(side: Side, st: ReplicaStatus, extra: FtStatusExtra | undefined): void {
    this.st[side] = st;
    if (side === "primary" && extra) {
      this.bytes.push({ atMs: extra.atMs, out: extra.link.bytesOut });
      while (this.bytes.length > 2 && this.bytes[this.bytes.length - 1]!.atMs - this.bytes[0]!.atMs > 2000) this.bytes.shift();
    }
  }

  render(): string {
    const p = this.st.primary, b = this.st.backup;
    const m = (n: bigint) => (n < 1_000_000n ? String(n) : (Number(n) / 1e6).toFixed(1) + "M");
    const parts = [
      p ? `primary ${m(p.icount)} (${p.state}, epoch ${p.epoch})` : "primary starting",
      b ? `backup ${m(b.icount)} (${b.state})` : "backup starting",
    ];
    if (p && b && b.state === "following") parts.push(`lag ${m(p.icount > b.icount ? p.icount - b.icount : 0n)} instr`);
    const first = this.bytes[0], last = this.bytes[this.bytes.length - 1];
    if (first && last && last.atMs > first.atMs) parts.push(`log ${(((last.out - first.out) * 8) / ((last.atMs - first.atMs) / 1000) / 1e6).toFixed(2)} Mbit/s`);
    if (p?.checkpoints) parts.push(`ckpt ${p.checkpoints.checkpoints} (${(p.checkpoints.bytes / 1048576).toFixed(1)} MiB, pause ${p.checkpoints.lastPauseMs.toFixed(1)} ms)`);
    if (p) parts.push(`held ${p.held}`);
    return "lockstep ft: " + parts.join(" | ");
  }
}

export default defineCommand({
  usage: "GUEST [--mode replay|checkpoint] [--epoch MS] [--transport worker|tcp] [--disk FILE] [--fail primary@WHEN|backup@WHEN|partition@WHEN|corrupt@ICOUNT] [--arbiter file:PATH] [--engine wasm|ts] [--backup-engine wasm|ts] [--check-every N] [--mem SIZE] [--clock host|virtual] [--cmdline TEXT]",
  description: `
Runs GUEST as a fault-tolerant pair on this machine: a primary that runs it
live and a backup that follows it in virtual lockstep by replaying the
primary's log, each in a worker thread, the logging channel between them
(docs/ft-protocol.md). Outputs obey the Output Rule: the primary holds each
until the backup has acknowledged the log up to the instruction that made it.
The guest's COM1 output goes to stdout, each output number once, so it reads
exactly as 'lockstep run' prints it, whatever fails and when.

--fail primary@WHEN stops the primary dead (no goodbye) when its guest
reaches instruction WHEN, or WHEN ms/s after the start (1500ms, 2s): the
backup notices the silence, wins the arbiter and goes live. --fail backup@WHEN
does the same to the backup: the primary wins the arbiter and goes on alone.
--fail partition@WHEN cuts the channel both ways when the primary's guest
reaches WHEN (or at that time) and leaves both replicas running: each finds
the other silent and claims the next epoch; the arbiter gives it to one,
the other stops and says so. --fail corrupt@ICOUNT flips one bit of the
backup's RAM (its last page) when its guest reaches ICOUNT: the next
divergence check finds it and the backup is repaired (--check-every). The
console reads the same either way.

--mode checkpoint replicates by state instead (docs/ft-checkpoint.md): every
--epoch (default ${DEFAULT_EPOCH_MS}ms) the primary pauses, copies the pages its guest
dirtied and its CPU and device state, and sends them to the backup, which
runs no guest; outputs are held until the checkpoint that covers them is
acknowledged, and on failure the backup resumes from the last complete
checkpoint. --fail, --disk and --transport work the same; with --respawn
the new backup starts from a checkpoint of all of RAM.

--respawn restores redundancy after a failover: a new backup starts in a
new worker and the survivor sends it its state while the guest runs (live
pre-copy: all of RAM, then rounds of the pages dirtied meanwhile, then a
short pause for the rest and the CPU and device state); the pair is then in
lockstep again and survives the next failure too. With --transport tcp the
new backup listens on a loopback port and the survivor connects to it, as
'lockstep backup --standby' and '--spare' do between processes.

--transport tcp carries the channel over loopback TCP (host/node/tcp-link.ts,
the transport of 'lockstep primary' and 'lockstep backup') instead of a
MessagePort between the workers.
The arbiter is a directory (file:PATH, docs/arbiter.md); by default a
temporary one, removed at the end.

--disk FILE attaches the ATA disk on one image shared by the pair: the
replicas read it, and each sector the guest writes is an output like a COM1
byte, held by the Output Rule and written to FILE by this process when
released (docs/ft-disk.md). After a failover the new primary sends again the
writes in flight; FILE ends as 'lockstep run --disk' leaves it.

--check-every N compares the replicas every N instructions (default
${DEFAULT_CHECK_EVERY.toLocaleString("en")}; 0: never): both hash their CPU, device state and the
pages dirtied since the last check at the same count. A backup that differs
says what differs first, stops trusting itself (it will not go live) and is
repaired: the primary sends only the pages whose hashes differ from the
backup's, then the CPU and device state. With --backup-engine ts the backup
runs on the other engine, so a bug in one engine shows as a divergence
instead of being copied (docs/ft.md, "Divergence detection").

Not yet: --nic and input on COM1 here (lockstep primary/backup have --nic).
See docs/ft.md.`,
  flags: {
    fail: { type: "string", arg: "primary@WHEN|backup@WHEN|partition@WHEN|corrupt@ICOUNT", help: "stop one replica dead, cut the channel, or flip a bit of the backup's RAM, at an instruction count or a time" },
    transport: { type: "enum", values: ["worker", "tcp"], default: "worker", help: "the channel between the replicas: a MessagePort, or loopback TCP" },
    mode: { type: "enum", values: ["replay", "checkpoint"], default: "replay", help: "replicate by the primary's log of inputs (replay), or by epoch checkpoints of its state" },
    epoch: { type: "string", arg: "MS", help: `checkpoint mode: time between checkpoints (default ${DEFAULT_EPOCH_MS}ms)` },
    respawn: { type: "boolean", default: false, help: "after a failover, start a new backup and send it the survivor's state while the guest runs" },
    arbiter: { type: "string", arg: "file:PATH", help: "the arbiter (default: a temporary directory)" },
    engine: { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "the primary's CPU engine" },
    "backup-engine": { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "the backup's CPU engine (ts: design diversity against engine bugs)" },
    "check-every": { type: "int", min: 0, default: DEFAULT_CHECK_EVERY, arg: "N", help: "compare the replicas' state every N instructions; 0: never" },
    mem: { type: "size", default: 32 << 20, arg: "SIZE", help: "guest RAM: a multiple of 4K from 1M to 1G" },
    clock: { type: "enum", values: ["host", "virtual"], default: "host", help: "guest time source" },
    cmdline: { type: "string", default: "", arg: "TEXT", help: "the Multiboot command line" },
    disk: { type: "string", arg: "FILE", help: "raw disk image for the ATA disk, shared by the pair (lockstep disk create)" },
    "timeout-ms": { type: "int", min: 2, default: DEFAULT_TIMEOUTS.timeoutMs, arg: "MS", help: "silence after which a peer counts as failed" },
    "heartbeat-ms": { type: "int", min: 1, default: DEFAULT_TIMEOUTS.intervalMs, arg: "MS", help: "longest a side stays silent" },
    status: { type: "enum", values: ["auto", "on", "off"], default: "auto", help: "a live status line on stderr (auto: when stderr is a terminal)" },
  },
  positionals: { min: 1, max: 1, name: "GUEST (a Multiboot kernel or ELF32 i386 executable)" },
  exitStatus: [
    "N  the guest wrote N to port 0xF4",
    "0  the guest halted without writing an exit status",
    "1  neither replica finished the run (both failed or lost the arbiter)",
    "2  usage error, or a GUEST that is missing or unreadable",
  ],
  async run({ flags, positionals, stdout, stderr }) {
    const mem = flags.mem;
    if (mem < MIN_RAM || mem > MAX_RAM || mem % 4096 !== 0) throw new UsageError(`--mem must be a multiple of 4K between 1M and 1G, got ${mem}`);
    if (flags["heartbeat-ms"] >= flags["timeout-ms"]) throw new UsageError(`--heartbeat-ms (${flags["heartbeat-ms"]}) must be below --timeout-ms (${flags["timeout-ms"]})`);
    const fail = flags.fail === undefined ? null : parseFail(flags.fail);
    const checkpointMode = flags.mode === "checkpoint";
    if (flags.epoch !== undefined && !checkpointMode) throw new UsageError("--epoch is for --mode checkpoint");
    const epochMs = flags.epoch === undefined ? DEFAULT_EPOCH_MS : parseEpoch(flags.epoch);
    const file = positionals[0]!;
    const image = readGuest(file);
    const cmdline = guestCmdline(file, image, flags.cmdline);
    await initHash();
    let disk: FileBlockStore | undefined;
    if (flags.disk !== undefined) {
      try { disk = FileBlockStore.open(flags.disk); } catch (e) {
        if (e instanceof BlockStoreError) throw new CommandError(e.message, EXIT_USAGE);
        throw e;
      }
    }
    const configHash = vmConfigHash(vmConfig(image, { ramSize: mem, clock: flags.clock, cmdline, disk }));
    const vm = `ft-${toHex(configHash).slice(0, 12)}-${process.pid}-${Date.now()}`;
    let tempDir: string | null = null;
    let arbiter: Arbiter;
    if (flags.arbiter !== undefined) arbiter = openArbiter(flags.arbiter);
    else {
      tempDir = mkdtempSync(join(tmpdir(), "lockstep-arbiter-"));
      arbiter = new FileArbiter(tempDir);
    }
    try {
      const first = await arbiter.claim({ vm, epoch: 1, replica: "primary", atMs: Date.now(), reason: "first start" });
      if (!first.won) throw new UsageError(`the arbiter already holds epoch ${first.holder.epoch} of ${vm}`);
      // The live status line: rewritten in place, cleared before any other line.
      const showStatus = flags.status === "on" || (flags.status === "auto" && (stderr as NodeJS.WriteStream).isTTY === true);
      let statusShown = false;
      const clearStatus = () => {
        if (statusShown) stderr.write("\r\x1b[K");
        statusShown = false;
      };
      const say = (s: string) => { clearStatus(); stderr.write(`lockstep ft: ${s}\n`); };
      const statusLine = new StatusLine();
      /** Bytes each slot's replica sent on its channel, by its last status (the two modes compared: docs/ft-checkpoint.md). */
      const linkBytes: Record<Side, number> = { primary: 0, backup: 0 };
      const pair = startPair({
        image, engines: { primary: flags.engine, backup: flags["backup-engine"] }, ramSize: mem, clock: flags.clock, cmdline, nic: false,
        disk: disk && flags.disk !== undefined ? { path: flags.disk, store: disk } : undefined, configHash, vm, arbiter, timeouts: { intervalMs: flags["heartbeat-ms"], timeoutMs: flags["timeout-ms"] },
        failAt: fail && (fail.who === "primary" || fail.who === "backup") && "icount" in fail.at ? { [fail.who]: fail.at.icount } : undefined,
        corruptAt: fail && fail.who === "corrupt" && "icount" in fail.at ? fail.at.icount : undefined,
        partitionAt: fail && fail.who === "partition" && "icount" in fail.at ? fail.at.icount : undefined,
        transport: flags.transport,
        respawn: flags.respawn,
        checkEvery: flags["check-every"],
        checkpoint: checkpointMode ? { epochMs } : undefined,
        onSerial: (b) => { clearStatus(); stdout.write(Uint8Array.of(b)); }, say,
        onStatus: (side, st, extra) => {
          statusLine.update(side, st, extra);
          if (extra) linkBytes[side] = extra.link.bytesOut;
        },
      });
      const ticker = showStatus ? setInterval(() => {
        clearStatus();
        stderr.write(statusLine.render());
        statusShown = true;
      }, 250) : null;
      const timer = fail && "ms" in fail.at && fail.who !== "corrupt" ? setTimeout(() => (fail.who === "partition" ? pair.partition() : pair.kill(fail.who as Side)), fail.at.ms) : null;
      const r = await pair.done;
      if (timer) clearTimeout(timer);
      if (ticker) clearInterval(ticker);
      clearStatus();
      const line = (s: Side) => {
        const st = r.status[s];
        return `${s} ${r.ended[s] ?? "?"}${st ? ` at instruction ${st.icount} (${st.state}, epoch ${st.epoch})` : ""}`;
      };
      const diskNote = disk ? `; ${r.diskWrites} disk sectors written, ${r.diskFlushes} flushes` : "";
      // Each slot's checkpoints: sent by a primary (or a backup gone live, to its new backup), applied by a following backup.
      const ckptNote = (["primary", "backup"] as Side[]).map((s) => {
        const st = r.status[s];
        if (!st?.checkpoints || st.checkpoints.checkpoints === 0) return "";
        return `; the ${s} ${st.checkpoints.did} ${checkpointWords(st.checkpoints)}`;
      }).join("");
      const hold = r.status.primary?.holdMs;
      const holdNote = hold ? `; the primary held its outputs ${hold.meanMs.toFixed(1)} ms mean, ${hold.maxMs.toFixed(1)} ms max` : "";
      say(`${r.seconds.toFixed(3)} s; ${line("primary")}; ${line("backup")}; ${r.outputs} outputs shown, ${r.repeats} repeats dropped${ckptNote}${holdNote}; channel ${(linkBytes.primary / 1048576).toFixed(2)} MiB from the primary (${(linkBytes.primary / 1024 / r.seconds).toFixed(1)} KiB/s), ${(linkBytes.backup / 1024).toFixed(1)} KiB from the backup${diskNote}`);
      if (r.exitStatus !== null) return Math.min(r.exitStatus, 255);
      return r.ended.primary === "done" || r.ended.backup === "done" ? EXIT_OK : EXIT_FAILURE;
    } finally {
      // What the world applied is made durable whatever the guest did.
      if (disk) { disk.flush(); disk.close(); }
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    }
  },
});
