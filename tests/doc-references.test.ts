// Comments and documents cite files a reader of this repository can open:
// every root-relative path (host/replay/log-format.ts, docs/replay.md,
// tests/corpus/*.jsonl) in a comment of host/, assembly/, bench/, scripts/, web/,
// tests/ or guests/, and every such path or relative link in README.md and
// docs/*.md, names a file or folder that exists (a glob: that matches one).
// Bare file names ("gate.ts"), URLs and outputs (paths git ignores, such as
// guests/build/) are not checked.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  cLikeComments,
  exists,
  findMarkdownLinks,
  findPaths,
  hashComments,
  type CommentText,
  type Reference,
} from "./helpers/doc-references.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCANNED_SOURCES = ["host/", "assembly/", "bench/", "scripts/", "tests/", "guests/", "web/"];
const C_LIKE = new Set([".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".c", ".h", ".S", ".s", ".ld"]);
const HASH = new Set([".py", ".mk"]);

/** The repository's files as git sees them: tracked or new, not ignored, present in the work tree. */
function repositoryFiles(): string[] {
  const out = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  return [...new Set(out.split("\0"))].filter((f) => f !== "" && existsSync(join(ROOT, f)));
}

function commentsOf(file: string, source: string): CommentText[] | undefined {
  const name = file.split("/").pop()!;
  if (C_LIKE.has(extname(file))) return cLikeComments(source);
  if (HASH.has(extname(file)) || name === "Makefile") return hashComments(source);
  return undefined;
}

/** Of `paths`, those git ignores: outputs of a build or a run, cited without being in the repository. */
function ignoredByGit(paths: string[]): Set<string> {
  if (paths.length === 0) return new Set();
  const run = spawnSync("git", ["check-ignore", "--no-index", "--stdin"], { cwd: ROOT, input: paths.join("\n"), encoding: "utf8" });
  if (run.status !== 0 && run.status !== 1) throw new Error(`git check-ignore failed: ${run.stderr}`);
  return new Set(run.stdout.split("\n").filter((p) => p !== ""));
}

/** Every cited path that names nothing, as "file:line → path"; and how many were checked. */
function brokenReferences(): { broken: string[]; checked: number } {
  const files = repositoryFiles();
  const present = new Set(files);
  const missing: Array<{ file: string; ref: Reference }> = [];
  let checked = 0;
  const check = (file: string, refs: Reference[]) => {
    checked += refs.length;
    for (const ref of refs) if (!exists(ref.path, present)) missing.push({ file, ref });
  };
  for (const file of files) {
    const isDoc = file === "README.md" || /^docs\/[^/]+\.md$/.test(file);
    if (isDoc) {
      const text = readFileSync(join(ROOT, file), "utf8");
      check(file, findPaths(text));
      check(file, findMarkdownLinks(text, dirname(file) === "." ? "" : dirname(file)));
      continue;
    }
    if (!SCANNED_SOURCES.some((folder) => file.startsWith(folder))) continue;
    const comments = commentsOf(file, readFileSync(join(ROOT, file), "utf8"));
    for (const comment of comments ?? []) check(file, findPaths(comment.text, comment.line));
  }
  const outputs = ignoredByGit([...new Set(missing.map((m) => m.ref.path))]);
  const broken = missing.filter((m) => !outputs.has(m.ref.path)).map((m) => `${m.file}:${m.ref.line} → ${m.ref.path}`);
  // A Markdown link's text often repeats its target: one report per place.
  return { broken: [...new Set(broken)], checked };
}

describe("references in comments and documents", () => {
  it("finds root-relative paths, not URLs, relative paths or bare names", () => {
    const text = [
      "see host/replay/log-format.ts and docs/replay.md.",
      "https://example.org/tests/x.ts and node_modules/vitest/host/y.ts and ../host/z.ts",
      "the corpus tests/corpus/*.jsonl; bare gate.ts; tests/...",
      "written to `bench/results/cpu-<date>-<time>.json`, <docs/cli.md>",
    ].join("\n");
    expect(findPaths(text, 10)).toEqual([
      { line: 10, path: "host/replay/log-format.ts" },
      { line: 10, path: "docs/replay.md" },
      { line: 12, path: "tests/corpus/*.jsonl" },
      { line: 12, path: "tests/" },
      { line: 13, path: "bench/results/cpu-*-*.json" },
      { line: 13, path: "docs/cli.md" },
    ]);
  });

  it("resolves Markdown links against the document's folder", () => {
    const text = "[a](replay.md#gate) [b](../host/cli/main.ts) [c](https://example.org/x.md) [d](#top)";
    expect(findMarkdownLinks(text, "docs").map((r) => r.path)).toEqual(["docs/replay.md", "host/cli/main.ts"]);
  });

  it("reads comments, not strings", () => {
    const source = [
      `const url = "http://x//host/a.ts"; // cites host/b.ts`,
      "/* first",
      "   host/c.ts */ const s = `//host/d.ts`;",
      "x = 1; // 'host/e.ts'",
    ].join("\n");
    expect(cLikeComments(source).flatMap((c) => findPaths(c.text, c.line))).toEqual([
      { line: 1, path: "host/b.ts" },
      { line: 3, path: "host/c.ts" },
      { line: 4, path: "host/e.ts" },
    ]);
    expect(hashComments('x = "a#b"\n# see tests/corpus/generate.py\n"""\nhost/f.ts\n"""').length).toBeGreaterThan(0);
  });

  it("counts a file, a folder, a glob or a placeholder with a match, a .js name for a .ts file, a planned folder", () => {
    const files = new Set(["host/replay/log-format.ts", "tests/corpus/alu.jsonl"]);
    expect(exists("host/replay/log-format.ts", files)).toBe(true);
    expect(exists("host/replay/log-format.js", files)).toBe(true);
    expect(exists("host/replay/", files)).toBe(true);
    expect(exists("tests/corpus/*.jsonl", files)).toBe(true);
    expect(exists("host/ft/primary.ts", files)).toBe(true);
    expect(exists("host/replay/gate.ts", files)).toBe(false);
    expect(exists("tests/corpus/*.json", files)).toBe(false);
    expect(exists("host/rep", files)).toBe(false);
    expect(exists("tests/corpus/NAME.jsonl", files)).toBe(true);
    expect(exists("tests/corpus/NAME.json", files)).toBe(false);
  });

  it("every cited path exists", () => {
    const { broken, checked } = brokenReferences();
    // A scan that found nothing to check would pass vacuously.
    expect(checked).toBeGreaterThan(100);
    expect(broken).toEqual([]);
  });
});
