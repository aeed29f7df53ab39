// lockstep replay GUEST --log FILE [--engine wasm|ts] [--until N]: reruns a
// recorded run from its log alone and says whether it matched the end record
// (docs/replay.md); with --until, stops at instruction N and prints the state.
// A log cut short (no end record) is replayed up to its last complete record.

import { LoadError } from "../machine/elf.js";
import { LogFormatError } from "../replay/log-format.js";
import { cutText, logError, readLogFile } from "./log-file.js";
import { DivergenceError } from "../replay/divergence.js";
import { ConfigMismatchError } from "../replay/vm-config.js";
import { logConfig, replay, type CutReplayResult, type ReplayResult } from "../replay/session.js";
import { initHash } from "../common/hash.js";
import { toHex } from "../common/hash.js";
import type { Machine } from "../machine/machine.js";
import { UsageError } from "./args.js";
import { CommandError, defineCommand, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./command.js";
import { readGuest } from "./run.js";
import { loadEngine } from "../node/core-modules.js";

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
const FLAG_BITS: [number, string][] = [[0, "CF"], [2, "PF"], [4, "AF"], [6, "ZF"], [7, "SF"], [8, "TF"], [9, "IF"], [10, "DF"], [11, "OF"]];
const SEGS = ["es", "cs", "ss", "ds", "fs", "gs"];

/** The next instruction's bytes: up to 15 at CS base + EIP, within RAM. */
function nextBytes(m: Machine): { linear: number; bytes: number[] } {
  const e = m.engine;
  const linear = (e.getSegBase(1) + e.eip) >>> 0;
  const n = Math.max(0, Math.min(15, e.ramSize - linear));
  return { linear, bytes: linear < e.ramSize ? Array.from(e.readMem(linear, n)) : [] };
}

/** The state at --until, for people comparing two replicas. */
function stateText(r: ReplayResult | CutReplayResult): string {
  const m = r.machine;
  const a = m.engine.archState();
  const regs = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"].map((n, i) => `${n}=${hex8(a.regs[i]!)}`);
  const flags = FLAG_BITS.filter(([b]) => a.eflags & (1 << b)).map(([, n]) => n).join(" ");
  const next = nextBytes(m);
  return [
    `state at instruction ${r.icount} (guest time ${Math.floor(m.nowNs())} ns), after the events logged at that count`,
    regs.slice(0, 4).join(" "),
    regs.slice(4).join(" "),
    `eip=${hex8(a.eip)} eflags=${hex8(a.eflags)} [${flags}]`,
    ...SEGS.map((s, i) => `${s}=${a.segSel[i]!.toString(16).padStart(4, "0")} base=${hex8(a.segBase[i]!)} limit=${hex8(a.segLimit[i]!)} attr=${a.segAttr[i]!.toString(16).padStart(3, "0")}`),
    `cr0=${hex8(a.cr[0]!)} gdt=${hex8(a.gdt[0])}/${a.gdt[1].toString(16)} idt=${hex8(a.idt[0])}/${a.idt[1].toString(16)}`,
    `halted=${a.halted} shadow=${a.shadow} interruptible=${m.engine.interruptible ? 1 : 0} irq-pending=${a.irqPending}`,
    `next instruction at ${hex8(next.linear)}: ${next.bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ") || "(outside RAM)"}`,
    `state hash ${toHex(r.stateHash)}`,
  ].join("\n") + "\n";
}

export default defineCommand({
  usage: "GUEST --log FILE [--engine wasm|ts] [--until N] [--console stdout|none] [--json]",
  description: `
Reruns GUEST from a replay log written by 'lockstep record', with no clock,
no network and no disk image: the VM is rebuilt from the configuration in the
log, and every outside value comes from the log at its instruction count. The
log may have been recorded on either engine. At the end the digest of the
guest's output and the hash of the machine state (registers, RAM, devices)
must equal the log's end record.

A log recorded for another guest image is refused before anything runs.
If the replay departs from the log — an interrupt, a disk completion or a
request for a value that the log does not have at that count — it stops
there and says what differed.

With --until N the replay stops at instruction N (after the events logged
at N) and prints the registers, flags, segments, the next instruction's
bytes and the state hash: run it on two machines to find where they part.

A log cut short — its recorder killed, its disk full, its primary dead
mid-stream — is replayed up to its last complete record: until every event
in it has been used. The replay says where the log was cut, how many events
and instructions it covered, and exits 0 if all of them matched; with no end
record there is no final output digest or state hash to compare. A record
that is whole but damaged (its CRC fails) is refused, even the last one.`,
  flags: {
    log: { type: "string", arg: "FILE", help: "the replay log (required)" },
    engine: { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "the CPU engine to replay on" },
    until: { type: "string", arg: "N", help: "stop at instruction N and print the state" },
    console: { type: "enum", values: ["stdout", "none"], default: "none", help: "where the guest's COM1 and debug-console output go" },
    json: { type: "boolean", default: false, help: "print one JSON object" },
  },
  positionals: { min: 1, max: 1, name: "GUEST (the image the log was recorded with)" },
  exitStatus: [
    "0  the replay matched the log's end record (or reached --until), or used every event of a log cut short",
    "1  the replay diverged from the log, or its output digest or state hash differs",
    "2  usage error; GUEST or FILE missing or unreadable; FILE truncated or corrupted; FILE recorded for another configuration",
    "3  internal error",
  ],
  async run({ flags, positionals, stdout, stderr }) {
    if (flags.log === undefined || flags.log === "") throw new UsageError("replay needs --log FILE");
    let until: bigint | undefined;
    if (flags.until !== undefined) {
      if (!/^\d+$/.test(flags.until)) throw new UsageError(`--until must be an instruction count, got ${JSON.stringify(flags.until)}`);
      until = BigInt(flags.until);
    }
    const file = positionals[0];
    const image = readGuest(file);
    const { log } = readLogFile(flags.log, { allowCut: true });
    if (log.cut && log.entries.length === 0) {
      // A host-clock log's first event is its calendar base: without it the VM cannot even be built.
      await initHash();
      let clock: string;
      try {
        clock = logConfig(log).clock;
      } catch (e) {
        throw logError(flags.log, e);
      }
      if (clock === "host" && until === undefined) {
        const what = `${flags.log}: ${cutText(log.cut)}; it ends before its first event, so there is nothing to replay (0 instructions)`;
        if (flags.json) stdout.write(JSON.stringify({ cut: { ...log.cut, entries: 0, lastIcount: log.header.startIcount.toString() }, icount: log.header.startIcount.toString(), matched: null }) + "\n");
        stderr.write(`lockstep replay: ${what}\n`);
        return EXIT_OK;
      }
    }
    const out = flags.console === "stdout" ? (b: number) => stdout.write(Uint8Array.of(b)) : undefined;
    const t0 = performance.now();
    let r: ReplayResult | CutReplayResult;
    try {
      r = await replay(image, log, { loadEngine, engine: flags.engine, until, onSerial: out, onDebugcon: out });
    } catch (e) {
      if (e instanceof ConfigMismatchError) throw new CommandError(`${flags.log}: ${e.message}`, EXIT_USAGE);
      if (e instanceof LogFormatError) throw logError(flags.log, e);
      if (e instanceof RangeError && until !== undefined) throw new UsageError(e.message);
      if (e instanceof LoadError) throw new CommandError(`${file}: ${e.message}`, EXIT_USAGE);
      if (e instanceof DivergenceError) {
        if (flags.json) stdout.write(JSON.stringify({ diverged: true, icount: e.icount.toString(), detail: e.detail, logOffset: e.offset ?? null }) + "\n");
        stderr.write(`lockstep replay: ${e.message}\n`);
        return EXIT_FAILURE;
      }
      throw e;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (r.cut) {
      const c = r.cut;
      if (flags.json) {
        stdout.write(JSON.stringify({
          matched: null, cut: { offset: c.offset, bytes: c.bytes, entries: c.entries, lastIcount: c.lastIcount.toString() },
          icount: r.icount.toString(), engine: flags.engine, seconds, stateHash: toHex(r.stateHash),
        }) + "\n");
      } else if (until !== undefined) {
        stdout.write(stateText(r));
      }
      const all = r.icount === c.lastIcount;
      stderr.write(`lockstep replay: ${flags.log}: ${cutText(c)}\n`);
      stderr.write(`lockstep replay: ${r.icount} instructions in ${seconds.toFixed(3)} s (${flags.engine}); ` +
        (all ? `all ${c.entries} events of the log matched, up to its last complete record`
          : `stopped at --until, before the cut log's last record (instruction ${c.lastIcount})`) +
        `; no end record, so the final output digest and state hash cannot be compared\n`);
      return EXIT_OK;
    }
    if (until !== undefined && r.matched === undefined) {
      if (flags.json) {
        stdout.write(JSON.stringify({ icount: r.icount.toString(), guestNs: Math.floor(r.machine.nowNs()), cpu: r.machine.engine.archState(), next: nextBytes(r.machine), stateHash: toHex(r.stateHash) }) + "\n");
      } else {
        stdout.write(stateText(r));
      }
      return EXIT_OK;
    }
    const m = r.matched!;
    const ok = m.outputDigest && m.stateHash;
    if (flags.json) {
      stdout.write(JSON.stringify({
        matched: ok, outputDigest: { log: toHex(r.end.outputDigest), replay: toHex(r.outputDigest) },
        stateHash: { log: toHex(r.end.stateHash), replay: toHex(r.stateHash) },
        icount: r.icount.toString(), engine: flags.engine, seconds,
      }) + "\n");
    } else if (until !== undefined) {
      stdout.write(stateText(r));
    }
    const what = (b: boolean) => (b ? "matches" : "DIFFERS");
    stderr.write(`lockstep replay: ${r.icount} instructions in ${seconds.toFixed(3)} s (${flags.engine}); output digest ${what(m.outputDigest)}, state hash ${what(m.stateHash)}\n`);
    if (!m.outputDigest) stderr.write(`  output digest: log ${toHex(r.end.outputDigest)}, replay ${toHex(r.outputDigest)}\n`);
    if (!m.stateHash) stderr.write(`  state hash: log ${toHex(r.end.stateHash)}, replay ${toHex(r.stateHash)}\n`);
    return ok ? EXIT_OK : EXIT_FAILURE;
  },
});
