// The browser part (npm run bench -- --part browser): guests/bin/bench.elf
// to its end on one VM, virtual clock, wasm engine, in Chromium (the page's
// speed example, web/examples/speed.html: createMachine in a Web Worker) and
// in Node in this process, interleaved run by run. Both sides use the same
// driver (host/machine/realtime.ts: runSync in slices, a yield between
// them) and time the same span, the first instruction to the stop, so what
// differs is the JavaScript engine around the core and the worker. Every run
// must retire the same number of instructions and print the same output on
// both sides (the core is deterministic across platforms), or the benchmark
// fails. See docs/web.md and docs/bench.md.

import { readFileSync } from "node:fs";
import { runRealtime } from "../host/machine/realtime.js";
import { bootLive } from "../host/node/boot.js";
import { launchChromium } from "../tests/helpers/chromium.js";
import { serveStatic } from "../tests/helpers/static-server.js";
import { buildWeb } from "../tests/helpers/web-build.js";
import { BenchError, median, round1, round3 } from "./common.js";

const GUEST = new URL("../guests/bin/bench.elf", import.meta.url);
const WARMUP = 20_000_000;

interface Run {
  instructions: string;
  seconds: number;
  mips: number;
  output: string;
  reason: string;
  exitStatus: number | null;
}

async function nodeRun(elf: Uint8Array, mem: number, max?: number): Promise<Run> {
  let output = "";
  const m = await bootLive(elf, { engine: "wasm", ramSize: mem, clock: "virtual", cmdline: "bench.elf", onSerial: (b) => { output += String.fromCharCode(b); } });
  let exitStatus: number | null = null;
  const t0 = performance.now();
  const r = await runRealtime(m, { canWake: false, maxInstructions: max });
  const seconds = (performance.now() - t0) / 1000;
  exitStatus = r.exitStatus ?? null;
  const instructions = m.engine.icount;
  m.dispose();
  return { instructions: String(instructions), seconds, mips: Number(instructions) / seconds / 1e6, output, reason: r.reason, exitStatus };
}

export async function browserBench(o: { runs: number; mem: number; warmup: boolean }): Promise<{ lines: string[]; result: Record<string, unknown> }> {
  if (o.mem !== 32 << 20) process.stderr.write("bench: browser part: the page's VM has 32 MiB; --mem applies to the Node side only\n");
  const elf = new Uint8Array(readFileSync(GUEST));
  process.stderr.write("bench: browser part: building the page (dist-web/)\n");
  const dist = await buildWeb();
  const server = await serveStatic(dist);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(`${server.url}examples/speed.html`);
    await page.waitForFunction(() => "lockstepSpeed" in window);
    const chromeVersion = browser.version();
    const browserRun = (max?: number) => page.evaluate((m) => (window as unknown as { lockstepSpeed: { run(o: object): Promise<Run> } }).lockstepSpeed.run({ engine: "wasm", maxInstructions: m }), max) as Promise<Run>;
    process.stderr.write(`bench: bench.elf, ${o.runs} run(s) each in Chromium ${chromeVersion} and Node ${process.version}, wasm engine\n`);
    if (o.warmup) {
      await browserRun(WARMUP);
      await nodeRun(elf, o.mem, WARMUP);
    }
    const runs: { side: "browser" | "node"; round: number; seconds: number; mips: number }[] = [];
    let reference: Run | null = null;
    for (let round = 0; round < o.runs; round++) {
      const sides: ("browser" | "node")[] = round % 2 === 0 ? ["browser", "node"] : ["node", "browser"];
      for (const side of sides) {
        const r = side === "browser" ? await browserRun() : await nodeRun(elf, o.mem);
        if (errors.length) throw new BenchError(`the speed page reported errors: ${errors.join("; ")}`);
        if (r.reason !== "exit-port" || r.exitStatus !== 0) throw new BenchError(`${side} run ${round + 1} did not pass: ${r.reason}, exit status ${r.exitStatus}\n${r.output}`);
        reference ??= r;
        if (r.instructions !== reference.instructions || r.output !== reference.output) {
          throw new BenchError(`${side} run ${round + 1} retired ${r.instructions} instructions (the first run ${reference.instructions}) or printed other output: the platforms disagree`);
        }
        runs.push({ side, round, seconds: r.seconds, mips: r.mips });
        process.stderr.write(`  ${side.padEnd(7)} run ${round + 1}/${o.runs}: ${r.seconds.toFixed(3)} s, ${r.mips.toFixed(1)} MIPS\n`);
      }
    }
    const med = (side: string) => median(runs.filter((r) => r.side === side).map((r) => r.mips));
    const b = med("browser"), n = med("node");
    const lines = [
      "",
      `workload: guests/bin/bench.elf (${Number(reference!.instructions).toLocaleString("en-US")} instructions, output identical on every run), wasm engine, virtual clock`,
      "",
      "side     runs  median MIPS  min MIPS  max MIPS",
      ...(["browser", "node"] as const).map((side) => {
        const m = runs.filter((r) => r.side === side).map((r) => r.mips);
        return `${side.padEnd(7)}  ${String(m.length).padStart(4)}  ${median(m).toFixed(1).padStart(11)}  ${Math.min(...m).toFixed(1).padStart(8)}  ${Math.max(...m).toFixed(1).padStart(8)}`;
      }),
      "",
      `browser/node ratio (medians): ${(b / n).toFixed(2)}  (Chromium ${chromeVersion}, Node ${process.version})`,
    ];
    return {
      lines,
      result: {
        workload: "browser",
        guest: "guests/bin/bench.elf",
        engine: "wasm",
        instructions: Number(reference!.instructions),
        chromium: chromeVersion,
        runsPerSide: o.runs,
        warmupInstructions: o.warmup ? WARMUP : 0,
        medianMips: { browser: round1(b), node: round1(n) },
        ratio: Math.round((b / n) * 100) / 100,
        runs: runs.map((r) => ({ side: r.side, round: r.round + 1, seconds: round3(r.seconds), mips: round1(r.mips) })),
      },
    };
  } finally {
    await browser.close();
    await server.close();
  }
}
