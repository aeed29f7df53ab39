// The committed conformance corpus (tests/corpus/*.jsonl) is what its
// generator writes: tests/corpus/generate.py re-generates a seeded 2% of the
// forms from Unicorn into a temporary folder and every re-generated line must
// be byte-identical to the committed line of that form. Needs Debian's
// python3-unicorn: under CI a missing one fails the tests, elsewhere they are
// skipped saying so (tests/system/host-tools.ts). Also: the oracle itself
// reproduces the shared silicon and qemu samples.
//
// The sample seed is CORPUS_REGEN_SEED when set, otherwise drawn at random for
// each run, so successive runs cover different forms; the seed is in the test's
// name and printed, and a failure names it and the command that reproduces it.

import { spawnSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { PYTHON3 as PYTHON, PYTHON_UNICORN, requireTools } from "./host-tools.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const corpus = join(root, "tests", "corpus");
const GENERATOR = join(corpus, "generate.py");
const FRACTION = 0.02;

/** CORPUS_REGEN_SEED if given (a non-negative integer), else a fresh random seed. */
function sampleSeed(given: string | undefined): number {
  if (given === undefined || given === "") return randomInt(0, 2 ** 31);
  if (!/^\d+$/.test(given) || !Number.isSafeInteger(Number(given))) {
    throw new Error(`CORPUS_REGEN_SEED must be a non-negative integer, got ${JSON.stringify(given)}`);
  }
  return Number(given);
}
const seed = sampleSeed(process.env.CORPUS_REGEN_SEED);
process.stderr.write(`corpus-regen: sample seed ${seed} (re-run with CORPUS_REGEN_SEED=${seed} npm run test:system)\n`);
const tmp = mkdtempSync(join(tmpdir(), "lockstep-corpus-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const jsonl = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".jsonl")).sort();
/** name -> the lines of that form, in file order, and the file holding them. */
function forms(dir: string): Map<string, { file: string; lines: string[] }> {
  const out = new Map<string, { file: string; lines: string[] }>();
  for (const f of jsonl(dir)) {
    for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
      if (line === "") continue;
      const name = (JSON.parse(line) as { name: string }).name;
      let e = out.get(name);
      if (!e) out.set(name, (e = { file: f, lines: [] }));
      if (e.file !== f) throw new Error(`form "${name}" is in both ${e.file} and ${f}`);
      e.lines.push(line);
    }
  }
  return out;
}

function python(args: string[], timeout = 600_000) {
  return spawnSync(PYTHON, [GENERATOR, ...args], { cwd: root, encoding: "utf8", timeout, maxBuffer: 64 << 20 });
}

/** Where two JSON lines first differ, as "field: committed vs regenerated". */
function firstDifference(a: string, b: string): string {
  const walk = (x: unknown, y: unknown, path: string): string | null => {
    if (typeof x !== "object" || x === null || typeof y !== "object" || y === null) {
      return JSON.stringify(x) === JSON.stringify(y) ? null : `${path}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`;
    }
    const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
    for (const k of keys) {
      const d = walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
    return null;
  };
  return walk(JSON.parse(a), JSON.parse(b), "") ?? "same values, different text (key order or spacing)";
}

describe("conformance corpus regeneration", () => {
  it("the generator's forms are exactly the committed forms", (ctx) => {
    requireTools(ctx, PYTHON_UNICORN);
    const r = python(["--list-forms"]);
    expect(r.status, `${PYTHON} ${GENERATOR} --list-forms failed:\n${r.stderr}`).toBe(0);
    const listed = new Map<string, { group: string; n: number }>();
    for (const l of r.stdout.trim().split("\n")) {
      const [group, n, name] = l.split("\t");
      listed.set(name, { group, n: Number(n) });
    }
    const committed = forms(corpus);
    const missing = [...listed.keys()].filter((n) => !committed.has(n));
    const extra = [...committed.keys()].filter((n) => !listed.has(n));
    expect(missing, "forms the generator makes that are not committed: regenerate the corpus").toEqual([]);
    expect(extra, "committed forms the generator no longer makes: regenerate the corpus").toEqual([]);
    const wrong = [...listed].filter(([name, { group, n }]) => {
      const c = committed.get(name)!;
      return c.file !== `${group}.jsonl` || c.lines.length !== n;
    });
    expect(wrong.map(([n]) => n), "forms whose file or case count differ from the generator's").toEqual([]);
  });

  it("the oracle reproduces the shared samples (silicon and qemu) under their masks", (ctx) => {
    requireTools(ctx, PYTHON_UNICORN);
    const samples = join(corpus, "samples");
    const files = jsonl(samples).map((f) => join(samples, f));
    const r = python(["--verify", ...files]);
    expect(r.status, `the oracle differs from the samples:\n${r.stdout}\n${r.stderr}`).toBe(0);
  });

  it(`a seeded ${FRACTION * 100}% of the forms re-generate byte-identically (sample seed ${seed}; CORPUS_REGEN_SEED=${seed} repeats it)`, (ctx) => {
    requireTools(ctx, PYTHON_UNICORN);

    const out = join(tmp, "regen");
    const args = ["--sample", String(FRACTION), "--sample-seed", String(seed), "--out", out];
    const r = python(args);
    const cmd = `${PYTHON} tests/corpus/generate.py ${args.slice(0, -1).join(" ")} /tmp/regen`;
    expect(r.status, `${cmd} failed:\n${r.stdout}\n${r.stderr}`).toBe(0);

    const regen = forms(out);
    const committed = forms(corpus);
    const total = python(["--list-forms"]).stdout.trim().split("\n").length;
    expect(regen.size).toBe(Math.max(1, Math.ceil(FRACTION * total)));

    const problems: string[] = [];
    for (const [name, g] of regen) {
      const c = committed.get(name);
      if (!c) {
        problems.push(`"${name}": not in the committed corpus`);
        continue;
      }
      if (c.file !== g.file) problems.push(`"${name}": committed in ${c.file}, generated into ${g.file}`);
      if (c.lines.length !== g.lines.length) problems.push(`"${name}": ${c.lines.length} committed cases, ${g.lines.length} generated`);
      const n = Math.min(c.lines.length, g.lines.length);
      for (let k = 0; k < n; k++) {
        if (c.lines[k] !== g.lines[k]) {
          problems.push(`"${name}" case ${k}: ${firstDifference(c.lines[k], g.lines[k])}`);
          break;
        }
      }
    }
    expect(problems, `regenerated forms differ from tests/corpus (sample seed ${seed}; reproduce: CORPUS_REGEN_SEED=${seed} npm run test:system, or ${cmd}):\n${problems.join("\n")}`).toEqual([]);
  });
});
