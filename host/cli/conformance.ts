// lockstep conformance FILE...: runs single-instruction test cases
// (docs/test-case-format.md) on the wasm and/or TypeScript engine and reports
// per-form counts and the first mismatches, as text or as one JSON array.

import { readFileSync } from "node:fs";
import { CaseFormatError, parseCases, type TestCase } from "../conformance/case.js";
import { CONFORMANCE_RAM, EXEC_PATHS, pathOption, runCase, type ExecPath, type Mismatch } from "../conformance/runner.js";
import type { EngineKind } from "../engine/engine.js";
import { loadEngine } from "../node/core-modules.js";
import { CommandError, defineCommand, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./command.js";

interface LoadedCase { tc: TestCase; file: string }
interface FormCount { passed: number; failed: number }
interface Failure { tc: TestCase; file: string; mismatches: Mismatch[] }
interface EngineReport {
  engine: EngineKind;
  path: ExecPath;
  cases: number;
  passed: number;
  failed: number;
  forms: Map<string, FormCount>;
  /** The first failing cases, at most --max-failures of them. */
  failures: Failure[];
}

/** Mismatch lines shown per failing case before "... and N more". */
const MISMATCH_LINES = 12;

function loadFile(file: string): LoadedCase[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "is a directory" : err.message;
    throw new CommandError(`cannot read ${file}: ${why}`, EXIT_USAGE);
  }
  try {
    return parseCases(text, file).map((tc) => ({ tc, file }));
  } catch (e) {
    if (e instanceof CaseFormatError) throw new CommandError(e.message, EXIT_USAGE);
    throw e;
  }
}

async function runEngine(kind: EngineKind, path: ExecPath, cases: LoadedCase[], maxFailures: number): Promise<EngineReport> {
  const engine = await loadEngine(kind, { ramSize: CONFORMANCE_RAM, ...pathOption(path) });
  const report: EngineReport = { engine: kind, path, cases: cases.length, passed: 0, failed: 0, forms: new Map(), failures: [] };
  for (const { tc, file } of cases) {
    let mismatches: Mismatch[];
    try {
      mismatches = runCase(engine, tc).mismatches;
    } catch (e) {
      // An engine that throws (a wasm trap, a JS error) fails this case, not the run.
      mismatches = [{ what: "crash", expected: "no error", got: (e as Error).message }];
    }
    let form = report.forms.get(tc.name);
    if (!form) report.forms.set(tc.name, (form = { passed: 0, failed: 0 }));
    if (mismatches.length === 0) {
      report.passed++;
      form.passed++;
    } else {
      report.failed++;
      form.failed++;
      if (report.failures.length < maxFailures) report.failures.push({ tc, file, mismatches });
    }
  }
  engine.dispose();
  return report;
}

/** "wasm", or "wasm (byte interpreter)" for the bytes path. */
const label = (r: EngineReport) => (r.path === "bytes" ? `${r.engine} (byte interpreter)` : r.engine);

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
const bytesHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

function formatFailure(f: Failure): string[] {
  const lines = [`  ${f.tc.name}  case ${f.tc.i}  ${f.file}:${f.tc.line}  bytes ${bytesHex(f.tc.bytes)}`];
  for (const m of f.mismatches.slice(0, MISMATCH_LINES)) lines.push(`    ${m.what}: expected ${m.expected} got ${m.got}`);
  if (f.mismatches.length > MISMATCH_LINES) lines.push(`    ... and ${f.mismatches.length - MISMATCH_LINES} more mismatches`);
  return lines;
}

function formatReport(r: EngineReport): string {
  const nForms = r.forms.size;
  if (r.failed === 0) return `${label(r)}: all ${plural(r.cases, "case")} pass (${plural(nForms, "form")})\n`;
  const failing = [...r.forms].filter(([, c]) => c.failed > 0);
  const width = Math.max(4, ...failing.map(([name]) => name.length));
  const lines = [
    `${label(r)}: ${r.passed} of ${plural(r.cases, "case")} pass, ${r.failed} fail; ${failing.length} of ${plural(nForms, "form")} failing:`,
    `  ${"form".padEnd(width)}  passed  failed`,
    ...failing.map(([name, c]) => `  ${name.padEnd(width)}  ${String(c.passed).padStart(6)}  ${String(c.failed).padStart(6)}`),
  ];
  if (nForms > failing.length) lines.push(`  (the other ${plural(nForms - failing.length, "form")} all pass)`);
  if (r.failures.length > 0) {
    const shown = r.failures.length < r.failed ? `the first ${r.failures.length} of ${r.failed} failing cases` : r.failed === 1 ? "the failing case" : `the ${r.failed} failing cases`;
    lines.push(``, `${label(r)}: ${shown}:`);
    for (const f of r.failures) lines.push(...formatFailure(f));
  }
  return lines.join("\n") + "\n";
}

function toJson(r: EngineReport) {
  return {
    engine: r.engine,
    path: r.path,
    cases: r.cases,
    passed: r.passed,
    failed: r.failed,
    forms: Object.fromEntries([...r.forms].map(([name, c]) => [name, { passed: c.passed, failed: c.failed }])),
  };
}

export default defineCommand({
  usage: "FILE... [--engine wasm|ts|both] [--path cache|bytes|both] [--json] [--max-failures N]",
  description: `
Each FILE holds test cases as JSON lines (docs/test-case-format.md): one
instruction, an initial and an expected final state. Every case runs on each
selected engine (RAM: ${CONFORMANCE_RAM >> 20} MiB), through the selected execution path:
"cache" is the engine as it normally runs (decoded-instruction cache, with
the byte interpreter for what the cache does not take), "bytes" runs every
instruction through the byte interpreter. The report gives per-form pass/fail
counts, listing the forms with failures, and for the first failing cases the
form, case index, file:line, instruction bytes and every mismatching register,
flag bit or memory byte as "expected X got Y".

With --json, stdout is exactly one JSON array, one object per engine:
  [{"engine":"wasm","path":"cache","cases":N,"passed":N,"failed":N,
    "forms":{"<form>":{"passed":N,"failed":N}, ...}}, ...]
and errors go to stderr.`,
  flags: {
    engine: { type: "enum", values: ["wasm", "ts", "both"], default: "both", help: "the engine(s) to run the cases on" },
    path: { type: "enum", values: ["cache", "bytes", "both"], default: "cache", help: "the execution path(s): decode cache, byte interpreter, or both" },
    json: { type: "boolean", help: "print the counts as one JSON array on stdout, nothing else" },
    "max-failures": {
      type: "int", min: 0, default: 10,
      help: "detail at most N failing cases per engine; all cases still run",
    },
  },
  positionals: { min: 1, name: "FILE (a JSON-lines test-case file)" },
  exitStatus: [
    "0  every case passed on every selected engine",
    "1  at least one case failed",
    "2  usage error, a FILE that is missing, unreadable or malformed (reported as file:line), or no case in any FILE",
    "3  internal error (e.g. the engines are not built: npm run build)",
  ],
  async run({ flags, positionals, stdout, stderr }) {
    const perFile = positionals.map((file) => ({ file, cases: loadFile(file) }));
    const cases = perFile.flatMap((f) => f.cases);
    // A run of zero cases would "pass" while testing nothing: it is an error.
    const empty = perFile.filter((f) => f.cases.length === 0).map((f) => f.file);
    if (cases.length === 0) throw new CommandError(`no test cases in ${empty.join(", ")} (empty, or only blank lines)`, EXIT_USAGE);
    if (empty.length > 0) stderr.write(`lockstep: warning: no test cases in ${empty.join(", ")}\n`);
    const kinds: EngineKind[] = flags.engine === "both" ? ["wasm", "ts"] : [flags.engine];
    const maxFailures = flags.json ? 0 : flags["max-failures"];
    const reports: EngineReport[] = [];
    const paths: readonly ExecPath[] = flags.path === "both" ? EXEC_PATHS : [flags.path];
    for (const kind of kinds) for (const path of paths) reports.push(await runEngine(kind, path, cases, maxFailures));
    if (flags.json) stdout.write(JSON.stringify(reports.map(toJson)) + "\n");
    else stdout.write(reports.map(formatReport).join(reports.some((r) => r.failed > 0) ? "\n" : ""));
    return reports.some((r) => r.failed > 0) ? EXIT_FAILURE : EXIT_OK;
  },
});
