// The core builds from build/ for Node: the one place that reads them. The
// engine layer itself (host/engine/load.ts) takes the bytes, so it runs in a
// browser too.

import { readFile } from "node:fs/promises";
import { createEngine, type CoreModules } from "../engine/load.js";
import type { Engine, EngineKind } from "../engine/engine.js";

const buildDir = new URL("../../build/", import.meta.url);
let modules: Promise<CoreModules> | undefined;

function missing(name: string, e: unknown): never {
  throw new Error(`cannot load build/${name}: ${(e as Error).message}. Build it with "npm run build".`);
}

/** build/core.wasm (compiled) and build/core-ts.mjs (source), read once per process. */
export function nodeCoreModules(): Promise<CoreModules> {
  modules ??= (async () => {
    const [bytes, ts] = await Promise.all([
      readFile(new URL("core.wasm", buildDir)).catch((e: unknown) => missing("core.wasm", e)),
      readFile(new URL("core-ts.mjs", buildDir), "utf8").catch((e: unknown) => missing("core-ts.mjs", e)),
    ]);
    const wasm = await WebAssembly.compile(bytes).catch((e: unknown) => {
      throw new Error(`build/core.wasm is not a valid module (${(e as Error).message}): rebuild it with "npm run build"`);
    });
    return { wasm, ts };
  })();
  // A failed read is not cached: the next call tries again (after a build).
  modules.catch(() => { modules = undefined; });
  return modules;
}

/**
 * Takes the builds as another thread of this process compiled them (a
 * worker of the pair, host/node/ft-worker.ts): nothing is read or compiled
 * again, and the threads share the compiled code.
 */
export function adoptCoreModules(m: CoreModules): void {
  modules = Promise.resolve(m);
}

/** createEngine with the builds in build/. */
export async function loadEngine(kind: EngineKind, opts: { ramSize: number; byteInterpreter?: boolean }): Promise<Engine> {
  return createEngine(kind, { ramSize: opts.ramSize, byteInterpreter: opts.byteInterpreter, modules: await nodeCoreModules() });
}
