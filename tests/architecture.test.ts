// The dependency rules of .dependency-cruiser.cjs (docs/architecture.md):
// the repository keeps them, and the rules catch what they are meant to
// catch, checked on a small made-up tree with one breach per rule.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEPCRUISE = join(ROOT, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
const CONFIG = join(ROOT, ".dependency-cruiser.cjs");
// The same folders as package.json's lint:deps (a glob: web/ need not exist yet).
const SHIPPED_GLOB = "{host,assembly,web}";

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  cycle?: Array<{ name: string }>;
}
interface Cruise {
  violations: string[];
  modules: string[];
}

/** Runs dependency-cruiser with the project's rules in `cwd`; violations as "rule: from → to". */
function cruise(cwd: string): Cruise {
  const run = spawnSync(
    process.execPath,
    [DEPCRUISE, "--config", CONFIG, "--output-type", "json", SHIPPED_GLOB],
    { cwd, encoding: "utf8", maxBuffer: 64 << 20 },
  );
  if (run.error) throw run.error;
  let result;
  try {
    result = JSON.parse(run.stdout);
  } catch {
    throw new Error(`dependency-cruiser gave no report (status ${run.status}):\n${run.stderr}`);
  }
  const violations = (result.summary.violations as Violation[]).map((v) => {
    const cycle = v.cycle ? ` (cycle: ${[v.from, ...v.cycle.map((c) => c.name)].join(" → ")})` : "";
    return `${v.rule.name}: ${v.from} → ${v.to}${cycle}`;
  });
  return { violations: violations.sort(), modules: result.modules.map((m: { source: string }) => m.source) };
}

describe("dependency rules", () => {
  it("the repository keeps them", () => {
    const { violations, modules } = cruise(ROOT);
    // A glob or config that matched nothing would pass vacuously.
    expect(modules).toContain("host/machine/machine.ts");
    expect(modules).toContain("assembly/index.ts");
    expect(violations).toEqual([]);
  });

  describe("they catch each kind of breach", () => {
    const fixture = mkdtempSync(join(tmpdir(), "lockstep-arch-"));
    afterAll(() => rmSync(fixture, { recursive: true, force: true }));

    const files: Record<string, string> = {
      // allowed: the shell imports downward, the engine imports the core
      "host/cli/main.ts": `import { m } from "../machine/m.js"; import { x } from "../node/x.js"; import { readFileSync } from "node:fs"; export const main = [m, x, readFileSync];`,
      "host/node/x.ts": `import { writeFileSync } from "node:fs"; export const x = writeFileSync;`,
      "host/engine/e.ts": `import { a } from "../../assembly/a.js"; import { t } from "../../tests/helpers/t.js"; export const e = [a, t];`,
      "assembly/a.ts": `export const a = 1;`,
      "tests/helpers/t.ts": `export const t = 1;`,
      // upward, and a Node built-in outside the Node shell
      "host/devices/d.ts": `import { m } from "../machine/m.js"; export const d = m;`,
      "host/machine/m.ts": `import { readFileSync } from "node:fs"; export const m = readFileSync;`,
      // sideways within a layer
      "host/replay/r.ts": `import { s } from "../snapshot/s.js"; export const r = s;`,
      "host/snapshot/s.ts": `export const s = 1;`,
      // downward but narrower than the layer allows
      "host/conformance/k.ts": `import { dev } from "../devices/dev.js"; export const k = dev;`,
      "host/devices/dev.ts": `export const dev = 1;`,
      // the core not through the engine; host/node from outside host/cli
      "host/machine/core.ts": `import { a } from "../../assembly/a.js"; export const core = a;`,
      "web/page.ts": `import { x } from "../host/node/x.js"; export const page = x;`,
      // a cycle; an import that resolves to nothing
      "host/ft/p.ts": `import { q } from "./q.js"; export const p = () => q;`,
      "host/ft/q.ts": `import { p } from "./p.js"; export const q = () => p;`,
      "host/kv/u.ts": `import { gone } from "../net/gone.js"; export const u = gone;`,
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(fixture, dirname(path)), { recursive: true });
      writeFileSync(join(fixture, path), text + "\n");
    }

    it("reports exactly the breaches", () => {
      expect(cruise(fixture).violations).toEqual(
        [
          "no-test-code-in-product: host/engine/e.ts → tests/helpers/t.ts",
          "layer-order: host/devices/d.ts → host/machine/m.ts",
          "node-builtins-only-in-node-shell: host/machine/m.ts → fs",
          "layer-order: host/replay/r.ts → host/snapshot/s.ts",
          "narrower-than-layer: host/conformance/k.ts → host/devices/dev.ts",
          "core-through-engine: host/machine/core.ts → assembly/a.ts",
          "node-adapters-only-from-cli: web/page.ts → host/node/x.ts",
          "no-circular: host/ft/p.ts → host/ft/q.ts (cycle: host/ft/p.ts → host/ft/q.ts → host/ft/p.ts)",
          "not-to-unresolvable: host/kv/u.ts → ../net/gone.js",
        ].sort(),
      );
    });
  });
});
