// lockstep ft-demo (what `npm start` runs): the kv guest as a fault-tolerant
// pair in two worker threads (host/node/ft-pair.ts), a client writing keys
// and incrementing a counter through the pair's NIC, the primary killed
// mid-run, the backup going live, and the client finishing. Then every
// acknowledged write is read back and the counter must equal the INCRs that
// were acknowledged: nothing acknowledged lost, nothing applied twice.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initHash, toHex } from "../common/hash.js";
import { DEFAULT_TIMEOUTS } from "../ft/failure-detector.js";
import { KvClient } from "../kv/client.js";
import type { FrameTransport } from "../net/frame-transport.js";
import { startPair } from "../node/ft-pair.js";
import { FileArbiter } from "../node/file-arbiter.js";
import { vmConfig, vmConfigHash } from "../replay/vm-config.js";
import { UsageError } from "./args.js";
import { defineCommand, EXIT_FAILURE, EXIT_OK } from "./command.js";
import type { TransferFigures } from "../ft/state-transfer.js";
import { readGuest } from "./run.js";

const RAM = 32 << 20;

export default defineCommand({
  usage: "[--ops N] [--kill-after N] [--guest FILE] [--engine wasm|ts]",
  description: `
The fault-tolerant pair at work: guests/bin/kv.elf (the key-value server,
docs/kv-protocol.md) runs as a primary and a backup in two worker threads; a
client sends PUTs of distinct keys and INCRs of one counter through the
VM's NIC, one request at a time, resending a request that gets no answer.
After --kill-after acknowledged requests the primary is stopped dead; the
backup notices its silence, wins the arbiter, replays what it received and
goes live, and the client carries on against it. At the end every
acknowledged PUT is read back, and the counter must equal the number of
acknowledged INCRs: nothing acknowledged is lost, no INCR is applied twice.
A summary with the figures goes to stdout.`,
  flags: {
    ops: { type: "int", min: 2, default: 400, arg: "N", help: "requests the client makes (half PUT, half INCR)" },
    "kill-after": { type: "int", min: 0, default: 150, arg: "N", help: "acknowledged requests before the primary is killed" },
    guest: { type: "string", default: "guests/bin/kv.elf", arg: "FILE", help: "the kv guest image" },
    engine: { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "both replicas' CPU engine" },
  },
  positionals: { max: 0, name: "" },
  exitStatus: [
    "0  every acknowledged write was read back and no INCR was applied twice",
    "1  a check failed (the summary says which), or the pair did not come up",
    "2  usage error",
  ],
  async run({ flags, stdout }) {
    if (flags["kill-after"] >= flags.ops) throw new UsageError(`--kill-after (${flags["kill-after"]}) must be below --ops (${flags.ops})`);
    const image = readGuest(new URL(`../../${flags.guest}`, import.meta.url).pathname);
    await initHash();
    const cmdline = "kv.elf";
    const configHash = vmConfigHash(vmConfig(image, { ramSize: RAM, clock: "host", cmdline, nic: true }));
    const vm = `demo-${toHex(configHash).slice(0, 12)}-${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), "lockstep-demo-arbiter-"));
    const out = (s: string) => stdout.write(s + "\n");
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    try {
      const arbiter = new FileArbiter(dir);
      await arbiter.claim({ vm, epoch: 1, replica: "primary", atMs: Date.now(), reason: "first start" });
      let console_ = "";
      const listeners = new Set<(f: Uint8Array) => void>();
      let liveAtMs: number | null = null;
      let killedAtMs: number | null = null;
      let transfer: (TransferFigures & { atMs: number }) | null = null;
      /** The new backup installed the state and follows: redundancy is back only then. */
      let joined = false;
      /** Failures nobody injected (a worker that crashed, a failover before the kill): the demo is then no demo. */
      const unplanned: string[] = [];
      const pair = startPair({
        image, engines: { primary: flags.engine, backup: flags.engine }, ramSize: RAM, clock: "host", cmdline, nic: true,
        configHash, vm, arbiter, timeouts: DEFAULT_TIMEOUTS, respawn: true,
        onTransferred: (f) => { transfer = { ...f, atMs: ms() }; },
        onSerial: (b) => { console_ += String.fromCharCode(b); },
        onFrame: (f) => { for (const l of listeners) l(f); },
        say: (line) => {
          out(`  [${ms()} ms] ${line}`);
          if (/going live/.test(line)) {
            liveAtMs = ms();
            if (killedAtMs === null) unplanned.push(`a failover before the kill: ${line}`);
          }
          if (/worker failed/.test(line)) unplanned.push(line);
          // A primary that carries on alone decided its backup failed: only the killed one may fail here.
          if (/primary won epoch|lost epoch|backup stops/.test(line)) unplanned.push(line);
          if (/backup: joined the primary/.test(line)) joined = true;
        },
      });
      const transport: FrameTransport = {
        send: (f) => pair.sendFrame(f),
        onFrame: (cb) => { listeners.add(cb); return () => listeners.delete(cb); },
      };
      out(`lockstep ft-demo: ${flags.guest} as a fault-tolerant pair (primary and backup in worker threads, ${flags.engine} engines)`);
      for (let t = 0; !/kv: ready/.test(console_); t++) {
        if (t > 300) throw new Error(`the kv guest did not come up; its console:\n${console_}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      out(`  [${ms()} ms] the kv guest is ready; ${flags.ops} requests, the primary killed after ${flags["kill-after"]}`);
      // Resends every 50 ms: the failover the client sees is the silence timeout plus at most that.
      const client = new KvClient({ transport, clientId: 1, timeoutMs: 50, retries: 200 });
      const acked = new Map<string, string>();
      let incrs = 0;
      let lastCounter = 0n;
      let firstReplyAfterKillMs: number | null = null;
      const latencies: number[] = [];
      for (let i = 0; i < flags.ops; i++) {
        if (i === flags["kill-after"]) {
          killedAtMs = ms();
          out(`  [${killedAtMs} ms] killing the primary (its worker is terminated: no goodbye)`);
          pair.kill("primary");
        }
        const s = performance.now();
        if (i % 2 === 0) {
          const key = `key${i}`, value = `value ${i}`;
          await client.put(key, value);
          acked.set(key, value);
        } else {
          lastCounter = await client.incr("counter", 1);
          incrs++;
        }
        latencies.push(performance.now() - s);
        if (killedAtMs !== null && firstReplyAfterKillMs === null) firstReplyAfterKillMs = ms();
      }
      // Redundancy: the survivor brings a new backup its state while the guest runs; wait for it (bounded).
      for (let t = 0; !joined && t < 250; t++) await new Promise((r) => setTimeout(r, 20));
      // Read everything back from the survivor.
      let lost = 0;
      for (const [k, v] of acked) {
        const got = await client.get(k);
        if (got === undefined || new TextDecoder().decode(got) !== v) lost++;
      }
      const counter = await client.incr("counter", 0);
      client.close();
      pair.kill("backup");
      pair.kill("primary");
      const r = await pair.done;
      latencies.sort((a, b) => a - b);
      const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(2);
      out("");
      out("summary:");
      out(`  requests acknowledged: ${flags.ops} (${acked.size} PUT, ${incrs} INCR), latency median ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
      out(`  primary killed at ${killedAtMs} ms; backup live at ${liveAtMs ?? "?"} ms; first reply after the kill at ${firstReplyAfterKillMs ?? "?"} ms (failover ${killedAtMs !== null && firstReplyAfterKillMs !== null ? firstReplyAfterKillMs - killedAtMs : "?"} ms)`);
      out(`  acknowledged PUTs read back: ${acked.size - lost} of ${acked.size}${lost ? ` — ${lost} LOST` : ""}`);
      out(`  counter: ${counter} after ${incrs} acknowledged INCRs${counter === BigInt(incrs) ? " (each applied once)" : ` — MISMATCH (last INCR returned ${lastCounter})`}`);
      out(`  outputs shown ${r.outputs}, repeats dropped by number ${r.repeats}`);
      const tr = transfer as (TransferFigures & { atMs: number }) | null;
      if (tr && joined && killedAtMs !== null) {
        out(`  redundancy restored: a new backup joined ${tr.atMs - killedAtMs} ms after the kill (live pre-copy: ${tr.rounds} round(s), ${tr.pages} pages of which ${tr.zeroPages} all zero, ${(tr.bytes / 1048576).toFixed(1)} MiB; the guest paused ${tr.pauseMs.toFixed(1)} ms for the last ${tr.finalPages} pages and the state)`);
      } else out("  redundancy NOT restored: no new backup joined before the end");
      for (const u of unplanned) out(`  UNPLANNED: ${u}`);
      const ok = lost === 0 && counter === BigInt(incrs) && liveAtMs !== null && unplanned.length === 0 && transfer !== null && joined;
      out(ok ? "ok: nothing acknowledged was lost and nothing was applied twice" : "FAILED: see above");
      return ok ? EXIT_OK : EXIT_FAILURE;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});
