// The benchmark (npm run bench), in two parts. See docs/bench.md.
//
// cpu: runs guests/bin/bench.elf on the machine (host/machine/machine.ts,
// virtual clock) with the wasm and TS engines, interleaved, and reports MIPS
// (retired instructions per wall-clock second of the machine's run loop) per
// engine and the wasm/ts ratio. Every run must produce the same console
// output, the same instruction count and exit status 0, or the benchmark
// fails.
//
// ft (bench/ft.ts): the fault-tolerant pair against the same guests solo:
// throughput, log channel bandwidth, backup lag, added latency, failover.
//
// modes (bench/ft.ts modesBench): replay mode and checkpoint mode side by
// side on bench.elf and kv.elf, interleaved with solo runs.
//
// state (bench/state.ts): snapshot save and restore of a 64 MiB guest, and
// a new backup joining a running primary after a failover (the guest's
// pause, the time to redundancy).
//
// browser (bench/browser.ts): bench.elf on the wasm engine in Chromium (a
// Web Worker of the page's build) and in Node, interleaved: MIPS and the ratio.
//
// replay (bench/replay.ts): the cost of recording (the same guest plain vs
// recorded, same engine, interleaved), and the log's bytes and events per
// second of guest time for the idle ticks guest and the kv guest under a
// steady client load. Every log it records is replayed and must match.
//
//   npm run bench -- [--runs N] [--engine wasm|ts|both] [--guest FILE] [--mem SIZE] [--no-save]
//                    [--part cpu|replay|ft|modes|state|browser|all] [--record-engine wasm|ts|both] [--kv-rate N] [--kv-seconds N]
//   (or BENCH_RUNS, BENCH_ENGINE in the environment)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { describeOutcome } from "../host/cli/run.js";
import { ENGINE_KINDS, type EngineKind } from "../host/engine/engine.js";
import { Machine, type RunOutcome } from "../host/machine/machine.js";
import { bootLive } from "../host/node/boot.js";
import { BenchError, BenchUsageError, median, round1, round3 } from "./common.js";
import { ftBench, modesBench } from "./ft.js";
import { replayBench } from "./replay.js";
import { stateBench } from "./state.js";
import { DEFAULT_EPOCH_MS } from "../host/ft/checkpoint.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const DEFAULT_GUEST = fileURLToPath(new URL("../guests/bin/bench.elf", import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL("results/", import.meta.url));
const WARMUP_INSTRUCTIONS = 20_000_000;

interface Options {
  runs: number;
  engines: EngineKind[];
  guest: string;
  mem: number;
  save: boolean;
  warmup: boolean;
  cpu: boolean;
  replay: boolean;
  ft: boolean;
  state: boolean;
  modes: boolean;
  browser: boolean;
  recordEngines: EngineKind[];
  kvRate: number;
  kvSeconds: number;
}

function engineList(flag: string, value: string): EngineKind[] {
  if (value === "both") return [...ENGINE_KINDS];
  if (!ENGINE_KINDS.includes(value as EngineKind)) throw new BenchUsageError(`${flag} must be wasm, ts or both, got ${value}`);
  return [value as EngineKind];
}

function positive(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new BenchUsageError(`${flag} must be a whole number from 1 to ${max}, got ${text}`);
  return n;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      runs: { type: "string" },
      engine: { type: "string" },
      guest: { type: "string" },
      mem: { type: "string" },
      "no-save": { type: "boolean", default: false },
      "no-warmup": { type: "boolean", default: false },
      part: { type: "string" },
      "record-engine": { type: "string" },
      "kv-rate": { type: "string" },
      "kv-seconds": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      "usage: npm run bench -- [--runs N] [--engine wasm|ts|both] [--guest FILE] [--mem MiB] [--no-save] [--no-warmup]\n" +
        "                        [--part cpu|replay|ft|modes|state|browser|all] [--record-engine wasm|ts|both] [--kv-rate N] [--kv-seconds N]\n" +
        "  --runs N            timed runs per engine, and plain/recorded pairs per engine and clock, at least 1 (default 5; env BENCH_RUNS)\n" +
        "  --engine E          cpu part: wasm, ts or both (default both; env BENCH_ENGINE)\n" +
        "  --guest FILE        the CPU-bound guest image (default guests/bin/bench.elf)\n" +
        "  --mem MiB           guest RAM in MiB (default 32)\n" +
        "  --no-save           do not write bench/results/\n" +
        "  --no-warmup         skip the untimed 20M-instruction warm-up runs\n" +
        "  --part P            cpu (MIPS), replay (record/replay figures), ft (the fault-tolerant pair, bench/ft.ts),\n" +
        "                      modes (replay vs checkpoint mode), state (snapshots and a new backup, bench/state.ts),\n" +
        "                      browser (bench.elf in Chromium vs Node, bench/browser.ts; not in all: it needs Chromium)\n" +
        "                      or all (default all)\n" +
        "  --record-engine E   replay part: engines for the recording-cost runs, wasm, ts or both (default wasm)\n" +
        "  --kv-rate N         replay and ft parts: kv requests per second of real time (default 500)\n" +
        "  --kv-seconds N      replay and ft parts: seconds of kv load (default 4)\n",
    );
    process.exit(0);
  }
  const runsText = values.runs ?? process.env.BENCH_RUNS ?? "5";
  const runs = Number(runsText);
  if (!Number.isInteger(runs) || runs < 1) throw new BenchUsageError(`--runs must be a positive integer, got ${runsText}`);
  const engines = engineList("--engine", values.engine ?? process.env.BENCH_ENGINE ?? "both");
  const part = values.part ?? "all";
  if (!["cpu", "replay", "ft", "modes", "state", "browser", "all"].includes(part)) throw new BenchUsageError(`--part must be cpu, replay, ft, modes, state, browser or all, got ${part}`);
  const memText = values.mem ?? "32";
  const mem = Number(memText);
  if (!Number.isInteger(mem) || mem < 1 || mem > 1024) throw new BenchUsageError(`--mem must be a whole number of MiB from 1 to 1024, got ${memText}`);
  return {
    runs,
    engines,
    guest: values.guest ?? DEFAULT_GUEST,
    mem: mem << 20,
    save: !values["no-save"],
    warmup: !values["no-warmup"],
    cpu: part === "cpu" || part === "all",
    replay: part === "replay" || part === "all",
    ft: part === "ft" || part === "all",
    state: part === "state" || part === "all",
    modes: part === "modes" || part === "all",
    browser: part === "browser",
    recordEngines: engineList("--record-engine", values["record-engine"] ?? "wasm"),
    kvRate: positive("--kv-rate", values["kv-rate"] ?? "500", 100_000),
    kvSeconds: positive("--kv-seconds", values["kv-seconds"] ?? "4", 3600),
  };
}

interface RunRecord {
  engine: EngineKind;
  round: number;
  instructions: number;
  seconds: number;
  mips: number;
}

interface EngineSummary {
  runs: number;
  medianMips: number;
  minMips: number;
  maxMips: number;
  medianSeconds: number;
}

function summarize(runs: RunRecord[]): EngineSummary {
  const mips = runs.map((r) => r.mips);
  return {
    runs: runs.length,
    medianMips: median(mips),
    minMips: Math.min(...mips),
    maxMips: Math.max(...mips),
    medianSeconds: median(runs.map((r) => r.seconds)),
  };
}

function gitCommit(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

/** sha256 of a build output, and whether assembly/ has changed since it was built. */
function buildInfo(): { coreWasmSha256: string | null; coreTsSha256: string | null; stale: boolean } {
  const hash = (f: string) => {
    try {
      return createHash("sha256").update(readFileSync(f)).digest("hex");
    } catch {
      return null;
    }
  };
  const wasm = `${root}build/core.wasm`, ts = `${root}build/core-ts.mjs`;
  let stale = false;
  try {
    const built = Math.min(statSync(wasm).mtimeMs, statSync(ts).mtimeMs);
    const walk = (d: string): boolean =>
      readdirSync(d, { withFileTypes: true }).some((e) => (e.isDirectory() ? walk(`${d}/${e.name}`) : statSync(`${d}/${e.name}`).mtimeMs > built));
    stale = walk(`${root}assembly`);
  } catch {
    stale = true;
  }
  return { coreWasmSha256: hash(wasm), coreTsSha256: hash(ts), stale };
}

interface CpuRun {
  outcome: RunOutcome;
  /** What the guest printed (the UART and the debug console, as it chose). */
  output: Buffer;
  instructions: number;
  /** Wall-clock seconds of the run loop (machine creation and loading excluded). */
  seconds: number;
  /** The outcome in words (exit status, or where and how it stopped). */
  why: string;
}

/** One run of the guest to its end on a fresh machine, virtual clock; `max` instructions at most. */
async function cpuRun(kind: EngineKind, elf: Uint8Array, mem: number, max?: number): Promise<CpuRun> {
  const out: number[] = [];
  const print = (b: number) => out.push(b);
  const m = await bootLive(elf, { engine: kind, ramSize: mem, clock: "virtual", onSerial: print, onDebugcon: print });
  const t0 = performance.now();
  const outcome = m.runSync(max);
  const seconds = (performance.now() - t0) / 1000;
  const instructions = Number(outcome.instructions);
  return { outcome, output: Buffer.from(out), instructions, seconds, why: describeOutcome(m, outcome, max) };
}

/** The MIPS part: prints its table, returns its result (without the host fields). */
async function cpuPart(opts: Options, elf: Uint8Array, guestName: string, sha256: string): Promise<Record<string, unknown>> {
  process.stderr.write(`bench: ${guestName}, ${opts.runs} run(s) per engine on ${opts.engines.join(" and ")}, Node ${process.version}\n`);
  if (opts.warmup) {
    // Let V8 compile the hot paths of each engine (and the machine's loop) before anything is timed.
    for (const kind of opts.engines) await cpuRun(kind, elf, opts.mem, WARMUP_INSTRUCTIONS);
  }

  // The reference every run is checked against: the first run's output and count.
  let reference: { engine: EngineKind; output: Buffer; instructions: number } | undefined;
  const check = (kind: EngineKind, round: number, r: CpuRun) => {
    const what = `${kind} run ${round + 1}`;
    if (r.outcome.reason !== "exit-port" || r.outcome.exitStatus !== 0) {
      throw new BenchError(`${what} did not pass: ${r.why}\n--- guest output ---\n${r.output.toString("latin1")}--- end ---`);
    }
    if (!reference) {
      reference = { engine: kind, output: r.output, instructions: r.instructions };
      return;
    }
    if (r.instructions !== reference.instructions) {
      throw new BenchError(`${what} retired ${r.instructions} instructions, ${reference.engine} run 1 retired ${reference.instructions}: the engines disagree`);
    }
    if (!r.output.equals(reference.output)) {
      throw new BenchError(
        `${what} printed different output from ${reference.engine} run 1: the engines disagree\n` +
          `--- ${reference.engine} ---\n${reference.output.toString("latin1")}--- ${kind} ---\n${r.output.toString("latin1")}--- end ---`,
      );
    }
  };

  const records: RunRecord[] = [];
  for (let round = 0; round < opts.runs; round++) {
    // Alternate the order each round so neither engine always runs first.
    const order = round % 2 === 0 ? opts.engines : [...opts.engines].reverse();
    for (const kind of order) {
      const r = await cpuRun(kind, elf, opts.mem);
      check(kind, round, r);
      const rec: RunRecord = { engine: kind, round, instructions: r.instructions, seconds: r.seconds, mips: r.instructions / r.seconds / 1e6 };
      records.push(rec);
      process.stderr.write(`  ${kind.padEnd(4)} run ${round + 1}/${opts.runs}: ${r.seconds.toFixed(3)} s, ${rec.mips.toFixed(1)} MIPS\n`);
    }
  }

  const summaries: Partial<Record<EngineKind, EngineSummary>> = {};
  for (const kind of opts.engines) summaries[kind] = summarize(records.filter((r) => r.engine === kind));
  const ratio = summaries.wasm && summaries.ts ? summaries.wasm.medianMips / summaries.ts.medianMips : null;
  const instructions = reference!.instructions;

  // The table.
  const lines = [
    "",
    `workload: ${guestName} (${instructions.toLocaleString("en-US")} instructions, output identical on every run)`,
    "",
    "engine  runs  median MIPS  min MIPS  max MIPS  median s",
    ...opts.engines.map((k) => {
      const s = summaries[k]!;
      return `${k.padEnd(6)}  ${String(s.runs).padStart(4)}  ${s.medianMips.toFixed(1).padStart(11)}  ${s.minMips.toFixed(1).padStart(8)}  ${s.maxMips.toFixed(1).padStart(8)}  ${s.medianSeconds.toFixed(3).padStart(8)}`;
    }),
  ];
  if (ratio !== null) lines.push("", `wasm/ts ratio (medians): ${ratio.toFixed(2)}`);
  process.stdout.write(lines.join("\n") + "\n");

  return {
    workload: "cpu",
    guest: guestName,
    guestSha256: sha256,
    guestOutput: reference!.output.toString("latin1"),
    instructions,
    runsPerEngine: opts.runs,
    warmupInstructions: opts.warmup ? WARMUP_INSTRUCTIONS : 0,
    engines: Object.fromEntries(
      Object.entries(summaries).map(([k, s]) => [k, {
        runs: s.runs, medianMips: round1(s.medianMips), minMips: round1(s.minMips), maxMips: round1(s.maxMips), medianSeconds: round3(s.medianSeconds),
      }]),
    ),
    ratio: ratio === null ? null : Math.round(ratio * 100) / 100,
    runs: records.map((r) => ({ engine: r.engine, round: r.round + 1, seconds: round3(r.seconds), mips: round1(r.mips) })),
  };
}

async function main(): Promise<void> {
  const opts = options();
  let elf: Uint8Array;
  try {
    elf = new Uint8Array(readFileSync(opts.guest));
  } catch (e) {
    throw new BenchError(`cannot read ${opts.guest}: ${(e as Error).message} (build it with npm run build:guests)`);
  }
  const rel = relative(root, opts.guest);
  const guestName = rel && !rel.startsWith("..") ? rel : opts.guest;
  const sha256 = createHash("sha256").update(elf).digest("hex");
  const build = buildInfo();
  if (build.stale) process.stderr.write("bench: warning: assembly/ changed after build/ was made; run npm run build to measure the current source\n");
  const commit = gitCommit();

  /** Writes <part>-<date>-<time>.json and the part's latest file, with the host fields. */
  const save = (result: Record<string, unknown>, prefix: string, latest: string) => {
    const date = new Date();
    const full = {
      ...result,
      node: process.version,
      v8: process.versions.v8,
      platform: `${process.platform}-${process.arch}`,
      cpu: cpus()[0]?.model ?? null,
      commit,
      build,
      date: date.toISOString(),
    };
    if (!opts.save) return;
    mkdirSync(RESULTS_DIR, { recursive: true });
    const stamp = date.toISOString().slice(0, 19).replace(/:/g, "-").replace("T", "-");
    const json = JSON.stringify(full, null, 2) + "\n";
    const dated = `${RESULTS_DIR}${prefix}-${stamp}.json`;
    writeFileSync(dated, json);
    writeFileSync(`${RESULTS_DIR}${latest}`, json);
    process.stdout.write(`\nresults: ${relative(process.cwd(), dated)} and ${relative(process.cwd(), RESULTS_DIR + latest)}\n`);
  };

  if (opts.cpu) save(await cpuPart(opts, elf, guestName, sha256), "cpu", "latest.json");
  if (opts.replay) {
    const { lines, result } = await replayBench({
      runs: opts.runs, engines: opts.recordEngines, guest: opts.guest, guestName, guestSha256: sha256, mem: opts.mem,
      kvRate: opts.kvRate, kvSeconds: opts.kvSeconds, warmup: opts.warmup,
    });
    process.stdout.write(lines.join("\n") + "\n");
    save(result, "replay", "replay-latest.json");
  }
  if (opts.ft) {
    const { lines, result } = await ftBench({ runs: opts.runs, mem: opts.mem, kvRate: opts.kvRate, kvSeconds: opts.kvSeconds, hogSeconds: 10, warmup: opts.warmup });
    process.stdout.write(lines.join("\n") + "\n");
    save(result, "ft", "ft-latest.json");
  }
  if (opts.modes) {
    const { lines, result } = await modesBench({ runs: opts.runs, mem: opts.mem, kvRate: opts.kvRate, kvSeconds: opts.kvSeconds, hogSeconds: 0, warmup: opts.warmup, epochMs: DEFAULT_EPOCH_MS });
    process.stdout.write(lines.join("\n") + "\n");
    save({ workload: "modes", ...result }, "modes", "modes-latest.json");
  }
  if (opts.browser) {
    // Loaded only for this part: it brings Vite and Playwright.
    const { browserBench } = await import("./browser.js");
    const { lines, result } = await browserBench({ runs: opts.runs, mem: opts.mem, warmup: opts.warmup });
    process.stdout.write(lines.join("\n") + "\n");
    save(result, "browser", "browser-latest.json");
  }
  if (opts.state) {
    const { lines, result } = await stateBench({ runs: opts.runs });
    process.stdout.write(lines.join("\n") + "\n");
    save(result, "state", "state-latest.json");
  }
}

main().catch((e) => {
  if (e instanceof BenchUsageError) {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exit(2);
  }
  if (e instanceof BenchError) {
    process.stderr.write(`bench: FAILED: ${e.message}\n`);
    process.exit(1);
  }
  if (e instanceof TypeError && (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
});
