// Creating engines, on any JavaScript platform: the caller supplies the two
// builds of the core (CoreModules; in Node, host/node/core-modules.ts reads
// them from build/). Cores are pooled per kind and build (core-pool.ts): a
// released engine's core is re-initialized for the next engine instead of
// allocating another.

import { CoreEngine } from "./core-engine.js";
import { CorePool, type PooledCore } from "./core-pool.js";
import type { CoreExports } from "./core-exports.js";
import type { Engine, EngineKind } from "./engine.js";

/** The two builds of assembly/: build/core.wasm and the source text of build/core-ts.mjs. */
export interface CoreModules {
  wasm: Uint8Array | WebAssembly.Module;
  /** The JS source text of build/core-ts.mjs. */
  ts: string;
}

export interface EngineOptions {
  /** Guest RAM in bytes: a multiple of 4 KiB, from 1 MiB to 1 GiB. */
  ramSize: number;
  modules: CoreModules;
  /** Bypass the decoded-instruction cache: every instruction through the byte interpreter. */
  byteInterpreter?: boolean;
}

export const MIN_RAM = 1 << 20;
export const MAX_RAM = 1 << 30;

function checkRam(ramSize: number): void {
  if (!Number.isInteger(ramSize) || ramSize < MIN_RAM || ramSize > MAX_RAM || ramSize % 4096 !== 0) {
    throw new RangeError(`RAM size must be a multiple of 4 KiB between 1 MiB and 1 GiB, got ${ramSize}`);
  }
}

// ---- the wasm build: compiled once per module bytes, one instance per core ----
const compiled = new WeakMap<Uint8Array, Promise<WebAssembly.Module>>();
const wasmPools = new WeakMap<WebAssembly.Module, CorePool>();

async function wasmModule(wasm: Uint8Array | WebAssembly.Module): Promise<WebAssembly.Module> {
  if (wasm instanceof WebAssembly.Module) return wasm;
  if (!(wasm instanceof Uint8Array)) throw new TypeError("createEngine: modules.wasm must be a Uint8Array or a WebAssembly.Module");
  let m = compiled.get(wasm);
  if (!m) {
    m = WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>).catch((e: unknown) => {
      throw new Error(`createEngine: modules.wasm is not a valid core build: ${(e as Error).message}`);
    });
    compiled.set(wasm, m);
  }
  return m;
}

async function newWasmCore(mod: WebAssembly.Module): Promise<PooledCore> {
  const inst = await WebAssembly.instantiate(mod, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new Error(`wasm core aborted at ${line}:${col}`);
      },
    },
  });
  const exports = inst.exports as unknown as CoreExports<number> & { memory: WebAssembly.Memory };
  return { core: exports as CoreExports<unknown>, memory: exports.memory };
}

// ---- the TS build: one function instance per core ----
// Each core is the module's source run as a fresh function: its own state and
// its own optimized code (closures shared between cores would make V8 give up
// specializing on their context, ~2x slower). Unlike an import() per core, a
// function instance can be garbage-collected when the pool lets it go.
const tsFactories = new Map<string, () => CoreExports<Uint8Array>>();
const tsPools = new Map<string, CorePool>();
let tsInstances = 0;

function tsFactory(source: string): () => CoreExports<Uint8Array> {
  if (typeof source !== "string") throw new TypeError("createEngine: modules.ts must be the source text of build/core-ts.mjs");
  let f = tsFactories.get(source);
  if (f) return f;
  // esbuild ends the bundle with one `export { a, b as c, ... };` (maybe
  // followed by comments) and has no other import or export.
  const m = /\nexport \{([^}]*)\};(?:\s|\/\/[^\n]*)*$/.exec(source);
  if (!m || /^\s*(import|export)\b/m.test(source.slice(0, m.index))) {
    throw new TypeError("createEngine: modules.ts is not a build of the core (expected one trailing export list, as build/core-ts.mjs has)");
  }
  const fields = m[1].split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const [local, exported] = s.split(/\s+as\s+/);
    return `${exported ?? local}: ${local}`;
  });
  const body = `"use strict";\n${source.slice(0, m.index)}\nreturn { ${fields.join(", ")} };\n`;
  // A distinct source per instance: V8 then shares no compiled function between cores.
  f = () => new Function(`${body}// core ${++tsInstances}\n`)() as CoreExports<Uint8Array>;
  tsFactories.set(source, f);
  return f;
}

function poolFor(kind: EngineKind, key: WebAssembly.Module | string): CorePool {
  if (kind === "wasm") {
    const mod = key as WebAssembly.Module;
    let p = wasmPools.get(mod);
    if (!p) wasmPools.set(mod, (p = new CorePool()));
    return p;
  }
  const src = key as string;
  let p = tsPools.get(src);
  if (!p) tsPools.set(src, (p = new CorePool()));
  return p;
}

export async function createEngine(kind: EngineKind, opts: EngineOptions): Promise<Engine> {
  checkRam(opts.ramSize);
  if (opts.modules === null || typeof opts.modules !== "object") {
    throw new TypeError("createEngine: opts.modules (the core builds) is required; in Node use loadEngine from host/node/core-modules.ts");
  }
  let pool: CorePool;
  let pooled: PooledCore;
  if (kind === "wasm") {
    const mod = await wasmModule(opts.modules.wasm);
    pool = poolFor(kind, mod);
    pooled = pool.take() ?? (await newWasmCore(mod));
  } else if (kind === "ts") {
    const make = tsFactory(opts.modules.ts);
    pool = poolFor(kind, opts.modules.ts);
    pooled = pool.take() ?? { core: make() as CoreExports<unknown> };
  } else {
    throw new Error(`unknown engine "${kind as string}" (expected wasm or ts)`);
  }
  const core = pooled.core;
  if (core.init(opts.ramSize) !== 0) {
    pool.give(pooled);
    throw new RangeError(`core refused RAM size ${opts.ramSize}`);
  }
  core.setByteInterpreter(opts.byteInterpreter === true ? 1 : 0);
  let ram: Uint8Array;
  let dirty: Uint8Array;
  if (pooled.memory) {
    // After init: the memory may have grown, which replaces its buffer.
    const buf = pooled.memory.buffer;
    ram = new Uint8Array(buf, core.ramBase() as number, opts.ramSize);
    dirty = new Uint8Array(buf, core.dirtyBase() as number, opts.ramSize >>> 12);
  } else {
    ram = (core.ramBase() as Uint8Array).subarray(0, opts.ramSize);
    dirty = (core.dirtyBase() as Uint8Array).subarray(0, opts.ramSize >>> 12);
  }
  return new CoreEngine(kind, core, opts.ramSize, { ram, dirty }, (owner) => pool.lease(owner, pooled));
}
