// The CPU test-case format is checked whole (docs/test-case-format.md, "Checks
// made when a file is read"): a case missing any required field, or holding one
// of the wrong type or shape, is refused naming file:line and the field; and a
// conformance run over files that hold no case at all is an error, not a pass.
// The cases mutated here are real corpus lines, so the control (the unmutated
// line parses) and the mutants differ by exactly one field.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CaseFormatError, parseCase, parseCases } from "../host/conformance/case.js";
import { REG_NAMES } from "../host/engine/engine.js";
import { runLockstep } from "./helpers/cli.js";

type Json = Record<string, unknown>;

const corpusDir = fileURLToPath(new URL("./corpus/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "lockstep-case-format-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The first case of a corpus file that `pick` accepts, as parsed JSON. */
function corpusCase(file: string, what: string, pick: (o: Json) => boolean): Json {
  const lines = readFileSync(join(corpusDir, file), "utf8").split("\n").filter((l) => l.trim() !== "");
  const found = lines.map((l) => JSON.parse(l) as Json).find(pick);
  if (!found) throw new Error(`tests/corpus/${file} has no ${what}`);
  return found;
}
const undefOf = (o: Json) => o.undef as { regs: unknown[]; mem: unknown[] } | undefined;
/** A case with one memory window and undefined memory bytes (a SHLD with a large count). */
const WITH_UNDEF = corpusCase("shift.jsonl", "case with a memory window and undef.mem", (o) =>
  ((o.init as Json).mem as unknown[]).length === 1 && (undefOf(o)?.mem.length ?? 0) > 0);
/** A case that faults (final.exception is a mnemonic, not null). */
const FAULTING = corpusCase("muldiv.jsonl", "faulting case", (o) => (o.final as Json).exception === "DE");

const clone = (o: Json): Json => structuredClone(o);
/** The object holding field `path` (dotted, `mem[0]` for array elements) and its last key. */
function locate(o: Json, path: string): { parent: Record<string | number, unknown>; key: string | number } {
  const steps = path.split(".").flatMap((s) => {
    const m = /^(\w+)\[(\d+)\]$/.exec(s);
    return m ? [m[1], Number(m[2])] : [s];
  });
  let cur = o as Record<string | number, unknown>;
  for (const s of steps.slice(0, -1)) cur = cur[s] as Record<string | number, unknown>;
  const key = steps[steps.length - 1];
  if (!(key in cur)) throw new Error(`test bug: ${path} is not in the case`);
  return { parent: cur, key };
}
function without(o: Json, path: string): Json {
  const c = clone(o);
  const { parent, key } = locate(c, path);
  delete parent[key];
  return c;
}
function withField(o: Json, path: string, value: unknown): Json {
  const c = clone(o);
  const { parent, key } = locate(c, path);
  parent[key] = value;
  return c;
}
/** The error parseCase throws for `o` as line `line` of `file`; fails the test if it parses. */
function refusal(o: Json, file = "cases.jsonl", line = 7): CaseFormatError {
  try {
    parseCase(JSON.stringify(o), file, line);
  } catch (e) {
    expect(e).toBeInstanceOf(CaseFormatError);
    return e as CaseFormatError;
  }
  throw new Error(`the case was accepted: ${JSON.stringify(o).slice(0, 200)}`);
}

/** Every field the format requires, as paths into a case with one memory window. */
const REQUIRED: string[] = [
  "name", "i", "bytes", "init", "final", "flags_mask",
  ...["init", "final"].flatMap((s) => [
    `${s}.regs`, `${s}.flags`, `${s}.eip`, `${s}.mem`, `${s}.mem[0].addr`, `${s}.mem[0].hex`,
    ...REG_NAMES.map((r) => `${s}.regs.${r}`),
  ]),
  "final.exception",
  "undef.regs", "undef.mem",
];

describe("test-case parser: required fields", () => {
  it("the real corpus cases used here parse as they are (the control)", () => {
    for (const o of [WITH_UNDEF, FAULTING]) {
      const tc = parseCase(JSON.stringify(o), "cases.jsonl", 1);
      expect(tc.name).toBe(o.name);
      expect(tc.i).toBe(o.i);
    }
    expect(parseCase(JSON.stringify(FAULTING), "f", 1).final.exception).toBe("DE");
    expect(parseCase(JSON.stringify(WITH_UNDEF), "f", 1).undefMem).toEqual(undefOf(WITH_UNDEF)?.mem);
  });

  for (const path of REQUIRED) {
    it(`a case without ${path} is refused, naming file:line and ${path}`, () => {
      const e = refusal(without(WITH_UNDEF, path), "dir/cases.jsonl", 7);
      expect(e.file).toBe("dir/cases.jsonl");
      expect(e.line).toBe(7);
      expect(e.message).toBe(`dir/cases.jsonl:7: ${path}: required field is missing`);
    });
  }

  it("final.exception: null is not the same as absent", () => {
    expect(parseCase(JSON.stringify(withField(FAULTING, "final.exception", null)), "f", 1).final.exception).toBeNull();
    expect(refusal(without(FAULTING, "final.exception")).message).toContain("final.exception: required field is missing");
  });

  it("undef itself may be left out; the provenance fields may be too", () => {
    let o = without(WITH_UNDEF, "undef");
    for (const k of ["exec_bytes", "oracle", "flow", "seed"]) if (k in o) o = without(o, k);
    const tc = parseCase(JSON.stringify(o), "f", 1);
    expect(tc.undefRegs).toEqual([]);
    expect(tc.undefMem).toEqual([]);
  });
});

describe("test-case parser: wrong types and shapes", () => {
  const cases: [path: string, value: unknown, says: string][] = [
    ["name", 5, "expected a non-empty string"],
    ["name", "", "expected a non-empty string"],
    ["i", "0", "expected a non-negative integer"],
    ["i", -1, "expected a non-negative integer"],
    ["i", 1.5, "expected a non-negative integer"],
    ["bytes", 0x90, "expected an even-length hex string"],
    ["bytes", "909", "expected an even-length hex string"],
    ["bytes", "zz", "expected an even-length hex string"],
    ["bytes", "", "an instruction is 1 to 15 bytes, got 0"],
    ["bytes", "90".repeat(16), "an instruction is 1 to 15 bytes, got 16"],
    ["init", [], "expected an object"],
    ["final", null, "expected an object"],
    ["init.regs", [1, 2, 3, 4, 5, 6, 7, 8], "expected an object"],
    ["init.regs.eax", "0", "expected an unsigned 32-bit integer"],
    ["final.regs.edi", 2 ** 32, "expected an unsigned 32-bit integer"],
    ["init.regs.esp", -4, "expected an unsigned 32-bit integer"],
    ["init.flags", "0x2", "expected an unsigned 32-bit integer"],
    ["final.flags", 0, "bit 1 of EFLAGS is always set"],
    ["init.eip", 1.25, "expected an unsigned 32-bit integer"],
    ["final.eip", null, "expected an unsigned 32-bit integer"],
    ["init.mem", {}, "expected an array"],
    ["final.mem", "00", "expected an array"],
    ["init.mem[0]", "00", "expected an object"],
    ["init.mem[0].addr", "4096", "expected an unsigned 32-bit integer"],
    ["final.mem[0].hex", "abc", "expected an even-length hex string"],
    ["final.exception", 0, "expected null or an exception mnemonic"],
    ["final.exception", false, "expected null or an exception mnemonic"],
    ["final.exception", "", "expected null or an exception mnemonic"],
    ["flags_mask", "3285", "expected an unsigned 32-bit integer"],
    ["flags_mask", -1, "expected an unsigned 32-bit integer"],
    ["undef", [], "expected an object"],
    ["undef.regs", "eax", "expected an array"],
    ["undef.mem", 4096, "expected an array"],
  ];
  for (const [path, value, says] of cases) {
    it(`${path} = ${JSON.stringify(value).slice(0, 20)} is refused`, () => {
      const e = refusal(withField(WITH_UNDEF, path, value));
      expect(e.message.startsWith(`cases.jsonl:7: ${path}: `), e.message).toBe(true);
      expect(e.message).toContain(says);
    });
  }

  it("a register that is not one of the eight is refused, by name", () => {
    const o = clone(WITH_UNDEF);
    ((o.init as Json).regs as Json).eflags = 2;
    expect(refusal(o).message).toMatch(/^cases\.jsonl:7: init\.regs\.eflags: not a general register/);
  });

  it("undef.regs must hold register names, undef.mem addresses inside a window", () => {
    expect(refusal(withField(WITH_UNDEF, "undef.regs", ["eax", "rax"])).message).toMatch(/^cases\.jsonl:7: undef\.regs\[1\]: unknown register "rax"/);
    expect(refusal(withField(WITH_UNDEF, "undef.mem", ["0x10"])).message).toMatch(/^cases\.jsonl:7: undef\.mem\[0\]: expected an unsigned 32-bit integer/);
    const window = ((WITH_UNDEF.init as Json).mem as Json[])[0];
    const outside = (window.addr as number) + (window.hex as string).length / 2;
    expect(refusal(withField(WITH_UNDEF, "undef.mem", [outside])).message).toMatch(/^cases\.jsonl:7: undef\.mem\[0\]: 0x[0-9a-f]+ is in no memory window/);
  });

  it("a line that is not an object is refused", () => {
    expect(() => parseCase("[]", "f", 3)).toThrow(/^f:3: case: expected an object/);
    expect(() => parseCase("{", "f", 3)).toThrow(/^f:3: not valid JSON/);
  });

  it("parseCases reports the line of the bad case in a multi-line file", () => {
    const good = JSON.stringify(WITH_UNDEF);
    const bad = JSON.stringify(without(WITH_UNDEF, "final.regs.ebx"));
    expect(() => parseCases([good, "", good, bad, good].join("\n"), "multi.jsonl")).toThrow("multi.jsonl:4: final.regs.ebx: required field is missing");
  });
});

describe("lockstep conformance: files with no case, and malformed cases", () => {
  function tempFile(name: string, text: string): string {
    const p = join(tmp, name);
    writeFileSync(p, text);
    return p;
  }

  it("an empty file is an error (exit 2) naming the file", async () => {
    const f = tempFile("empty.jsonl", "");
    const r = await runLockstep(tmp, "conformance", f);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`no test cases in ${f}`);
    expect(r.stdout).toBe("");
  });

  it("a whitespace-only file is an error (exit 2) naming the file", async () => {
    const f = tempFile("blank.jsonl", "\n   \n\t\n\r\n");
    const r = await runLockstep(tmp, "conformance", "--engine", "ts", f);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`no test cases in ${f}`);
  });

  it("zero cases over several files names every file", async () => {
    const a = tempFile("a-empty.jsonl", "");
    const b = tempFile("b-blank.jsonl", "\n\n");
    const r = await runLockstep(tmp, "conformance", "--json", a, b);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(a);
    expect(r.stderr).toContain(b);
    expect(r.stdout).toBe("");
  });

  it("an empty file beside one with cases runs the cases and warns about the empty one", async () => {
    const empty = tempFile("also-empty.jsonl", "");
    const one = tempFile("one.jsonl", JSON.stringify(WITH_UNDEF) + "\n");
    const r = await runLockstep(tmp, "conformance", "--engine", "ts", "--json", empty, one);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`warning: no test cases in ${empty}`);
    expect(JSON.parse(r.stdout)).toMatchObject([{ engine: "ts", cases: 1, passed: 1, failed: 0 }]);
  });

  it("a case missing a required field is refused (exit 2) as file:line: field", async () => {
    const good = JSON.stringify(FAULTING);
    const f = tempFile("missing.jsonl", [good, JSON.stringify(without(FAULTING, "final.exception"))].join("\n") + "\n");
    const r = await runLockstep(tmp, "conformance", f);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${f}:2: final.exception: required field is missing`);
  });

  it("a case with a field of the wrong type is refused (exit 2) as file:line: field", async () => {
    const f = tempFile("wrong.jsonl", JSON.stringify(withField(FAULTING, "i", "3")) + "\n");
    const r = await runLockstep(tmp, "conformance", f);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${f}:1: i: expected a non-negative integer, got "3"`);
  });
});
