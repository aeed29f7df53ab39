// The lockstep command line: the flag parser in-process, and the command run
// as a user runs it (node bin/lockstep.mjs ...) in a child process.

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { formatFlags, formatSize, parseArgs, parseSize, UsageError } from "../host/cli/args.js";
import { COMMANDS } from "../host/cli/main.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(root, "bin", "lockstep.mjs");
const SILICON = join(root, "tests", "corpus", "samples", "sample-silicon.jsonl");
const tmp = mkdtempSync(join(tmpdir(), "lockstep-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run { status: number; stdout: string; stderr: string }
function lockstep(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    // cwd is a temp dir: the launcher must not depend on the working directory.
    execFile(process.execPath, [BIN, ...args], { cwd: tmp, encoding: "utf8", maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ status: typeof code === "number" ? code : -1, stdout, stderr });
    });
  });
}
function tempFile(name: string, lines: string[]): string {
  const p = join(tmp, name);
  writeFileSync(p, lines.join("\n") + "\n");
  return p;
}
const siliconLines = readFileSync(SILICON, "utf8").split("\n").filter((l) => l.trim() !== "");
const hex32 = (v: number) => "0x" + (v >>> 0).toString(16).padStart(8, "0");

describe("args.ts", () => {
  const specs = {
    mem: { type: "size", default: 16 << 20, help: "guest RAM" },
    engine: { type: "enum", values: ["wasm", "ts", "both"], default: "both", help: "engine" },
    count: { type: "int", min: 0, help: "how many" },
    name: { type: "string", help: "a name" },
    json: { type: "boolean", help: "JSON output" },
  } as const;

  it("parses sizes", () => {
    expect(parseSize("4096")).toBe(4096);
    expect(parseSize("64K")).toBe(64 << 10);
    expect(parseSize("16M")).toBe(16 << 20);
    expect(parseSize("16m")).toBe(16 << 20);
    expect(parseSize("16MiB")).toBe(16 << 20);
    expect(parseSize("1G")).toBe(1 << 30);
    for (const bad of ["", "M", "1.5M", "-1", "16X", "0x10", "4096iB"]) expect(parseSize(bad), bad).toBeUndefined();
    expect(formatSize(16 << 20)).toBe("16M");
    expect(formatSize(4097)).toBe("4097");
  });

  it("gives defaults and typed values for both spellings", () => {
    const d = parseArgs([], specs);
    expect(d.flags).toEqual({ mem: 16 << 20, engine: "both", count: undefined, name: undefined, json: false });
    const p = parseArgs(["a", "--mem", "1G", "--engine=ts", "--count=0x10", "b", "--name", "x=y", "--json"], specs);
    expect(p.flags).toEqual({ mem: 1 << 30, engine: "ts", count: 16, name: "x=y", json: true });
    expect(p.positionals).toEqual(["a", "b"]);
    expect(p.help).toBe(false);
    expect(parseArgs(["--json=false", "--", "--mem", "-h"], specs)).toMatchObject({ flags: { json: false }, positionals: ["--mem", "-h"] });
    expect(parseArgs(["x", "-h"], specs).help).toBe(true);
  });

  it("reports mistakes as UsageError with a clear message", () => {
    const err = (argv: string[]) => {
      try {
        parseArgs(argv, specs);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error(`no error for ${argv.join(" ")}`);
    };
    expect(err(["--foo"])).toBe("unknown flag --foo");
    expect(err(["--foo=1"])).toBe("unknown flag --foo");
    expect(err(["-x"])).toBe("unknown flag -x");
    expect(err(["--engine", "x"])).toBe("--engine must be one of wasm, ts, both, got x");
    expect(err(["--mem"])).toBe("missing value for --mem");
    expect(err(["--mem", "--json"])).toBe("missing value for --mem");
    expect(err(["--mem="])).toBe("missing value for --mem");
    expect(err(["--mem", "12X"])).toBe("--mem must be a size like 4096, 64K, 16M or 1G, got 12X");
    expect(err(["--count", "ten"])).toBe("--count must be an integer, got ten");
    expect(err(["--count", "-1"])).toBe("--count must be at least 0, got -1");
    expect(err(["--json=yes"])).toMatch(/^--json takes no value/);
  });

  it("renders a help table with defaults", () => {
    const t = formatFlags(specs);
    expect(t).toContain("--mem SIZE");
    expect(t).toContain("(default: 16M)");
    expect(t).toContain("--engine wasm|ts|both");
    expect(t).toContain("-h, --help");
  });
});

describe("command registry", () => {
  it("every command loads and documents its usage and exit statuses", async () => {
    for (const c of COMMANDS) {
      const spec = (await c.load()).default;
      expect(c.summary, c.name).not.toBe("");
      expect(spec.usage, c.name).not.toBe("");
      expect(spec.exitStatus.length, c.name).toBeGreaterThan(0);
    }
  });
});

describe.concurrent("lockstep command", () => {
  it("--help lists the commands and exit statuses", async () => {
    const r = await lockstep("--help");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("conformance");
    expect(r.stdout).toContain("exit status");
    const h = await lockstep("help", "conformance");
    expect(h.status, h.stderr).toBe(0);
    expect(h.stdout).toContain("--engine wasm|ts|both");
    const c = await lockstep("conformance", "--help");
    expect(c.status, c.stderr).toBe(0);
    expect(c.stdout).toBe(h.stdout);
  });

  it("unknown command or flag: exit 2 with the message and a hint", async () => {
    const u = await lockstep("frobnicate");
    expect(u.status, u.stderr).toBe(2);
    expect(u.stderr).toContain("lockstep: unknown command 'frobnicate'");
    expect(u.stderr).toContain("--help");
    const f = await lockstep("conformance", "--foo", SILICON);
    expect(f.status, f.stderr).toBe(2);
    expect(f.stderr).toContain("lockstep: unknown flag --foo");
    expect(f.stderr).toContain("lockstep conformance --help");
    const e = await lockstep("conformance", "--engine", "x", SILICON);
    expect(e.status, e.stderr).toBe(2);
    expect(e.stderr).toContain("--engine must be one of wasm, ts, both, got x");
    const m = await lockstep("conformance");
    expect(m.status, m.stderr).toBe(2);
    expect(m.stderr).toContain("missing FILE");
  });

  it("conformance: the silicon sample passes on both engines", async () => {
    const r = await lockstep("conformance", SILICON);
    expect(r.stderr).toBe("");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("wasm: all 860 cases pass");
    expect(r.stdout).toContain("ts: all 860 cases pass");
  });

  it("conformance: a wrong expected eax → exit 1 naming form, register, expected and got", async () => {
    const c = JSON.parse(siliconLines[0]);
    const real = c.final.regs.eax as number;
    const wrong = (real ^ 0x5a5a) >>> 0;
    c.final.regs.eax = wrong;
    const file = tempFile("wrong-eax.jsonl", [JSON.stringify(c)]);
    const r = await lockstep("conformance", file);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toContain(c.name);
    expect(r.stdout).toContain(`wrong-eax.jsonl:1`);
    expect(r.stdout).toContain(`eax: expected ${hex32(wrong)} got ${hex32(real)}`);
    expect(r.stdout).toMatch(/^wasm: 0 of 1 case pass/m);
    expect(r.stdout).toMatch(/^ts: 0 of 1 case pass/m);
  });

  it("conformance: malformed files → exit 2 with file:line", async () => {
    const badJson = tempFile("bad-json.jsonl", [siliconLines[0], siliconLines[1], '{"name": "x", oops', siliconLines[2]]);
    const r = await lockstep("conformance", badJson);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("bad-json.jsonl:3: not valid JSON");
    const c = JSON.parse(siliconLines[2]);
    delete c.flags_mask;
    const missing = tempFile("missing-field.jsonl", [siliconLines[0], siliconLines[1], JSON.stringify(c)]);
    const m = await lockstep("conformance", missing);
    expect(m.status, m.stderr).toBe(2);
    expect(m.stderr).toContain("missing-field.jsonl:3: flags_mask");
    const gone = await lockstep("conformance", join(tmp, "does-not-exist.jsonl"));
    expect(gone.status, gone.stderr).toBe(2);
    expect(gone.stderr).toContain("does-not-exist.jsonl: no such file");
  });

  it("conformance --json: exactly one array with per-engine, per-form counts", async () => {
    const failing = JSON.parse(siliconLines[0]);
    failing.final.regs.eax = (failing.final.regs.eax ^ 1) >>> 0;
    const lines = [JSON.stringify(failing), ...siliconLines.slice(1, 40)];
    const file = tempFile("json.jsonl", lines);
    const r = await lockstep("conformance", "--json", file);
    expect(r.status, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout);
    const forms: Record<string, { passed: number; failed: number }> = {};
    lines.forEach((l, k) => {
      const name = JSON.parse(l).name as string;
      forms[name] ??= { passed: 0, failed: 0 };
      if (k === 0) forms[name].failed++;
      else forms[name].passed++;
    });
    const expected = (engine: string) => ({ engine, path: "cache", cases: 40, passed: 39, failed: 1, forms });
    expect(out).toEqual([expected("wasm"), expected("ts")]);
    expect(Object.keys(out[0])).toEqual(["engine", "path", "cases", "passed", "failed", "forms"]);
  });

  it("conformance --path both runs each engine through the decode cache and the byte interpreter", async () => {
    const file = tempFile("paths.jsonl", siliconLines.slice(0, 10));
    const j = await lockstep("conformance", file, "--path", "both", "--json");
    expect(j.status, j.stderr).toBe(0);
    const out = JSON.parse(j.stdout) as { engine: string; path: string; passed: number }[];
    expect(out.map((r) => `${r.engine}/${r.path}/${r.passed}`)).toEqual(["wasm/cache/10", "wasm/bytes/10", "ts/cache/10", "ts/bytes/10"]);
    const t = await lockstep("conformance", "--engine=ts", "--path=bytes", file);
    expect(t.stdout).toBe("ts (byte interpreter): all 10 cases pass (5 forms)\n");
  });

  it("conformance --engine ts reports only ts", async () => {
    const file = tempFile("ts-only.jsonl", siliconLines.slice(0, 10));
    const j = await lockstep("conformance", file, "--engine", "ts", "--json");
    expect(j.status, j.stderr).toBe(0);
    const out = JSON.parse(j.stdout);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ engine: "ts", cases: 10, passed: 10, failed: 0 });
    const t = await lockstep("conformance", "--engine=ts", file);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toBe("ts: all 10 cases pass (5 forms)\n");
  });
});
