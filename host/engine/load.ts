// Creating engines. The wasm module is compiled once per process and
// instantiated per engine; the TS build is a factory that makes a fresh core.

import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { CoreEngine } from "./core-engine.js";
import type { CoreExports } from "./core-exports.js";
import type { Engine, EngineKind } from "./engine.js";

export interface EngineOptions {
  /** Guest RAM in bytes: a multiple of 4 KiB, from 1 MiB to 1 GiB. */
  ramSize: number;
}

export const MIN_RAM = 1 << 20;
export const MAX_RAM = 1 << 30;

const buildDir = new URL("../../build/", import.meta.url);
let wasmModule: Promise<WebAssembly.Module> | undefined;
let tsInstances = 0;

function checkRam(ramSize: number): void {
  if (!Number.isInteger(ramSize) || ramSize < MIN_RAM || ramSize > MAX_RAM || ramSize % 4096 !== 0) {
    throw new RangeError(`RAM size must be a multiple of 4 KiB between 1 MiB and 1 GiB, got ${ramSize}`);
  }
}

async function missingBuild(what: string, err: unknown): Promise<never> {
  throw new Error(`cannot load ${what}: ${(err as Error).message}. Build it with "npm run build".`);
}

export async function createEngine(kind: EngineKind, opts: EngineOptions): Promise<Engine> {
  checkRam(opts.ramSize);
  if (kind === "wasm") {
    wasmModule ??= readFile(fileURLToPath(new URL("core.wasm", buildDir)))
      .then((bytes) => WebAssembly.compile(bytes))
      .catch((e) => missingBuild("build/core.wasm", e));
    const mod = await wasmModule;
    const inst = await WebAssembly.instantiate(mod, {
      env: {
        abort(_msg: number, _file: number, line: number, col: number) {
          throw new Error(`wasm core aborted at ${line}:${col}`);
        },
      },
    });
    const core = inst.exports as unknown as CoreExports<number> & { memory: WebAssembly.Memory };
    if (core.init(opts.ramSize) !== 0) throw new RangeError(`core refused RAM size ${opts.ramSize}`);
    const buf = core.memory.buffer;
    const ram = new Uint8Array(buf, core.ramBase(), opts.ramSize);
    const dirty = new Uint8Array(buf, core.dirtyBase(), opts.ramSize >>> 12);
    return new CoreEngine("wasm", core as CoreExports<unknown>, opts.ramSize, { ram, dirty });
  }
  if (kind === "ts") {
    // A distinct URL per engine makes a separate module instance: its own
    // CPU state and its own optimized code.
    const url = new URL(`core-ts.mjs?engine=${++tsInstances}`, buildDir).href;
    const core = (await import(url).catch((e) => missingBuild("build/core-ts.mjs", e))) as CoreExports<Uint8Array>;
    if (core.init(opts.ramSize) !== 0) throw new RangeError(`core refused RAM size ${opts.ramSize}`);
    const ram = core.ramBase().subarray(0, opts.ramSize);
    const dirty = core.dirtyBase().subarray(0, opts.ramSize >>> 12);
    return new CoreEngine("ts", core as CoreExports<unknown>, opts.ramSize, { ram, dirty });
  }
  throw new Error(`unknown engine "${kind as string}" (expected wasm or ts)`);
}
