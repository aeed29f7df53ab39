// lockstep ft GUEST: the guest as a fault-tolerant pair on this machine — a
// primary and a backup, each in a worker thread (host/node/ft-worker.ts),
// the logging channel over a MessagePort between them, the arbiter held by
// this thread. The outside world is this process: it prints the guest's
// COM1 output, taking each output number once, so the console reads exactly
// as `lockstep run` prints it whatever fails and when (docs/ft.md).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageChannel, Worker } from "node:worker_threads";
import { initHash, toHex } from "../common/hash.js";
import { MAX_RAM, MIN_RAM } from "../engine/load.js";
import type { Arbiter } from "../ft/arbiter.js";
import { DEFAULT_TIMEOUTS } from "../ft/failure-detector.js";
import type { Output } from "../ft/output-gate.js";
import type { ReplicaStatus } from "../ft/replica.js";
import type { FtWorkerCommand, FtWorkerData, FtWorkerEvent } from "../node/ft-worker.js";
import { FileArbiter } from "../node/file-arbiter.js";
import { vmConfig, vmConfigHash } from "../replay/vm-config.js";
import { UsageError } from "./args.js";
import { openArbiter } from "./arbiter.js";
import { defineCommand, EXIT_FAILURE, EXIT_OK } from "./command.js";
import { readGuest } from "./run.js";

type Side = "primary" | "backup";

export interface FailSpec {
  who: Side;
  /** An instruction count of the primary's (or the backup's) guest, or ms after the start. */
  at: { icount: bigint } | { ms: number };
}

/** Parses `primary@120000000`, `backup@1500ms`, `primary@2s`. */
export function parseFail(text: string): FailSpec {
  const m = /^(primary|backup)@(\d+)(ms|s)?$/.exec(text);
  if (!m) throw new UsageError(`--fail must be primary@WHEN or backup@WHEN (WHEN: an instruction count, or a time like 1500ms or 2s), got ${text}`);
  const n = m[2]!;
  const at = m[3] === undefined ? { icount: BigInt(n) } : { ms: Number(n) * (m[3] === "s" ? 1000 : 1) };
  return { who: m[1] as Side, at };
}

const BOOT = new URL("../node/ft-worker-boot.mjs", import.meta.url);

export default defineCommand({
  usage: "GUEST [--fail primary@WHEN|backup@WHEN] [--arbiter file:PATH] [--engine wasm|ts] [--backup-engine wasm|ts] [--mem SIZE] [--clock host|virtual] [--cmdline TEXT]",
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
The arbiter is a directory (file:PATH, docs/arbiter.md); by default a
temporary one, removed at the end.

Not yet: --disk and --nic (the disk is not yet an output), input on COM1,
the TCP transport between processes. See docs/ft.md.`,
  flags: {
    fail: { type: "string", arg: "primary@WHEN|backup@WHEN", help: "stop one replica dead at an instruction count or a time" },
    arbiter: { type: "string", arg: "file:PATH", help: "the arbiter (default: a temporary directory)" },
    engine: { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "the primary's CPU engine" },
    "backup-engine": { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "the backup's CPU engine" },
    mem: { type: "size", default: 32 << 20, arg: "SIZE", help: "guest RAM: a multiple of 4K from 1M to 1G" },
    clock: { type: "enum", values: ["host", "virtual"], default: "host", help: "guest time source" },
    cmdline: { type: "string", default: "", arg: "TEXT", help: "the Multiboot command line" },
    "timeout-ms": { type: "int", min: 2, default: DEFAULT_TIMEOUTS.timeoutMs, arg: "MS", help: "silence after which a peer counts as failed" },
    "heartbeat-ms": { type: "int", min: 1, default: DEFAULT_TIMEOUTS.intervalMs, arg: "MS", help: "longest a side stays silent" },
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
    const file = positionals[0]!;
    const image = readGuest(file);
    const cmdline = `${file} ${flags.cmdline}`;
    await initHash();
    const configHash = vmConfigHash(vmConfig(image, { ramSize: mem, clock: flags.clock, cmdline }));
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

      // The outside world: outputs by number, each taken once.
      let printed = 0;
      const waiting = new Map<number, Output>();
      let repeats = 0;
      let exitStatus: number | null = null;
      const take = (o: Output) => {
        if (o.seq <= printed || waiting.has(o.seq)) { repeats++; return; }
        waiting.set(o.seq, o);
        for (let next = waiting.get(printed + 1); next; next = waiting.get(printed + 1)) {
          waiting.delete(++printed);
          if (next.channel === "serial") stdout.write(Uint8Array.of(next.value as number));
          if (next.channel === "exit") exitStatus = next.value as number;
        }
      };

      const { port1, port2 } = new MessageChannel();
      const t0 = performance.now();
      const status: Record<Side, ReplicaStatus | null> = { primary: null, backup: null };
      const ended: Record<Side, "done" | "failed" | null> = { primary: null, backup: null };
      const say = (s: string) => stderr.write(`lockstep ft: ${s}\n`);
      const workers = {} as Record<Side, Worker>;
      const finished = (["primary", "backup"] as Side[]).map((side) => new Promise<void>((resolve) => {
        const data: FtWorkerData = {
          role: side, port: side === "primary" ? port1 : port2, image, engine: side === "primary" ? flags.engine : flags["backup-engine"],
          ramSize: mem, clock: flags.clock, cmdline, configHash, vm, name: side,
          timeouts: { intervalMs: flags["heartbeat-ms"], timeoutMs: flags["timeout-ms"] }, slice: 100_000, maxLag: String(50_000_000n),
          key: null, failAt: fail && fail.who === side && "icount" in fail.at ? String(fail.at.icount) : null,
        };
        const w = new Worker(BOOT, { workerData: data, transferList: [data.port] });
        workers[side] = w;
        w.on("message", async (e: FtWorkerEvent) => {
          switch (e.type) {
            case "release": for (const o of e.outputs) take(o); break;
            case "say": say(e.line); break;
            case "status": status[side] = e.status; break;
            case "claim": {
              const result = await arbiter.claim(e.claim);
              const c: FtWorkerCommand = { type: "claimed", id: e.id, result };
              w.postMessage(c);
              break;
            }
            case "failed":
              ended[side] = "failed";
              if (status[side]) status[side] = { ...status[side]!, icount: BigInt(e.icount) };
              say(`${side} stopped dead at instruction ${e.icount} (--fail)`);
              break;
            case "done": ended[side] = "done"; status[side] = e.status; break;
          }
        });
        w.on("error", (err) => { say(`${side} worker failed: ${err.message}`); ended[side] ??= "failed"; });
        w.on("exit", () => { ended[side] ??= "failed"; resolve(); });
      }));
      let timer: NodeJS.Timeout | null = null;
      if (fail && "ms" in fail.at) {
        timer = setTimeout(() => {
          say(`${fail.who} stopped dead after ${fail.at && "ms" in fail.at ? fail.at.ms : 0} ms (--fail)`);
          ended[fail.who] = "failed";
          void workers[fail.who].terminate();
        }, fail.at.ms);
      }
      await Promise.all(finished);
      if (timer) clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      const line = (s: Side) => {
        const st = status[s];
        return `${s} ${ended[s] ?? "?"}${st ? ` at instruction ${st.icount} (${st.state}, epoch ${st.epoch})` : ""}`;
      };
      say(`${seconds.toFixed(3)} s; ${line("primary")}; ${line("backup")}; ${printed} outputs shown, ${repeats} repeats dropped`);
      if (exitStatus !== null) return Math.min(exitStatus, 255);
      return ended.primary === "done" || ended.backup === "done" ? EXIT_OK : EXIT_FAILURE;
    } finally {
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    }
  },
});
