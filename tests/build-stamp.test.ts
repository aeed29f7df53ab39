// `npm test` runs scripts/build-engines.mjs --if-stale first: the build must
// count as stale whenever anything it is made from changed (scripts/build-stamp.mjs):
// a core source, the build scripts, asconfig.json, or the installed
// assemblyscript or esbuild version. Checked on a copy of those inputs.

import { execFileSync } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without type declarations
import { buildIsFresh, inputStamp, STAMP_FILE } from "../scripts/build-stamp.mjs";

const stampOf = inputStamp as (root: string) => string;
const fresh = buildIsFresh as (root: string, outputs: string[]) => boolean;
const root = fileURLToPath(new URL("../", import.meta.url));
let tmp: string;
let outputs: string[];

function setVersion(pkg: string, version: string): void {
  writeFileSync(join(tmp, "node_modules", pkg, "package.json"), JSON.stringify({ name: pkg, version }));
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "lockstep-stamp-"));
  cpSync(join(root, "assembly"), join(tmp, "assembly"), { recursive: true });
  for (const f of ["scripts/build-engines.mjs", "scripts/inline-js.mjs", "scripts/build-stamp.mjs", "asconfig.json"]) {
    cpSync(join(root, f), join(tmp, f));
  }
  for (const pkg of ["assemblyscript", "esbuild"]) {
    mkdirSync(join(tmp, "node_modules", pkg), { recursive: true });
    setVersion(pkg, "1.0.0");
  }
  mkdirSync(join(tmp, "build"));
  outputs = [join(tmp, "build", "core.wasm"), join(tmp, "build", "core-ts.mjs")];
  for (const o of outputs) writeFileSync(o, "stand-in output");
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes the stamp of the current inputs, as a finished build does. */
const stampNow = () => writeFileSync(join(tmp, STAMP_FILE as string), stampOf(tmp) + "\n");

describe("build staleness", () => {
  it("--if-stale leaves a build made from the current inputs alone", () => {
    stampNow();
    const before = outputs.map((o) => statSync(o).mtimeMs);
    execFileSync(process.execPath, [join(tmp, "scripts/build-engines.mjs"), "--if-stale"], { cwd: tmp, timeout: 30_000 });
    expect(outputs.map((o) => statSync(o).mtimeMs)).toEqual(before);
    expect(outputs.map((o) => readFileSync(o, "utf8"))).toEqual(["stand-in output", "stand-in output"]);
  });

  const changes: [string, () => void][] = [
    ["a core source", () => appendFileSync(join(tmp, "assembly/alu.ts"), "\n// changed\n")],
    ["a new core source", () => writeFileSync(join(tmp, "assembly/extra.ts"), "export const X: i32 = 1;\n")],
    ["scripts/build-engines.mjs", () => appendFileSync(join(tmp, "scripts/build-engines.mjs"), "\n// changed\n")],
    ["scripts/inline-js.mjs", () => appendFileSync(join(tmp, "scripts/inline-js.mjs"), "\n// changed\n")],
    ["asconfig.json", () => appendFileSync(join(tmp, "asconfig.json"), "\n")],
    ["the assemblyscript version", () => setVersion("assemblyscript", "1.0.1")],
    ["the esbuild version", () => setVersion("esbuild", "1.0.1")],
  ];
  for (const [what, change] of changes) {
    it(`a change to ${what} makes the build stale`, () => {
      stampNow();
      expect(fresh(tmp, outputs)).toBe(true);
      const old = stampOf(tmp);
      change();
      expect(stampOf(tmp)).not.toBe(old);
      expect(fresh(tmp, outputs)).toBe(false);
    });
  }

  it("a missing output or stamp makes the build stale", () => {
    stampNow();
    expect(fresh(tmp, outputs)).toBe(true);
    expect(fresh(tmp, [...outputs, join(tmp, "build", "absent.wasm")])).toBe(false);
    rmSync(join(tmp, STAMP_FILE as string));
    expect(fresh(tmp, outputs)).toBe(false);
  });
});
