// What a build of the engines depends on, as one hash: every file under
// assembly/, the build scripts, asconfig.json and the installed compiler
// versions (assemblyscript, esbuild). scripts/build-engines.mjs writes it to
// build/inputs.stamp after a build; --if-stale rebuilds unless it still matches.
// Content, not modification times: a checkout or an npm install that changes a
// file or a version without a newer mtime still makes the build stale.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";

export const STAMP_FILE = join("build", "inputs.stamp");
const SCRIPTS = ["scripts/build-engines.mjs", "scripts/inline-js.mjs", "scripts/build-stamp.mjs", "asconfig.json"];
const COMPILERS = ["assemblyscript", "esbuild"];

function filesUnder(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

function installedVersion(root, pkg) {
  const p = join(root, "node_modules", pkg, "package.json");
  if (!existsSync(p)) return "missing";
  return JSON.parse(readFileSync(p, "utf8")).version ?? "unknown";
}

/** The hash of every build input under `root` (the repository). */
export function inputStamp(root) {
  const h = createHash("sha256");
  for (const f of [...filesUnder(join(root, "assembly")), ...SCRIPTS.map((s) => join(root, s))]) {
    h.update(`${relative(root, f)}\0`);
    h.update(readFileSync(f));
    h.update("\0");
  }
  for (const pkg of COMPILERS) h.update(`${pkg}@${installedVersion(root, pkg)}\0`);
  return h.digest("hex");
}

/** True when the outputs exist and were built from exactly these inputs. */
export function buildIsFresh(root, outputs) {
  const stamp = join(root, STAMP_FILE);
  if (!existsSync(stamp) || outputs.some((o) => !existsSync(o))) return false;
  return readFileSync(stamp, "utf8").trim() === inputStamp(root);
}
