// The core's two builds for a page: build/core.wasm, fetched and compiled
// once (a compiled WebAssembly.Module goes to each worker as it is, without
// compiling again), and build/core-ts.mjs as text (the pure-TS engine is
// made from its source, host/engine/load.ts). The imports with ?url and ?raw
// are the bundler's (Vite): the files become assets of the page's build. The
// Node counterpart is host/node/core-modules.ts.

import type { CoreModules } from "../host/engine/load.js";
import wasmUrl from "../build/core.wasm?url";
import tsSource from "../build/core-ts.mjs?raw";

let modules: Promise<CoreModules> | undefined;

/** The builds, fetched once per page. */
export function webCoreModules(): Promise<CoreModules> {
  modules ??= (async () => {
    const res = await fetch(wasmUrl);
    if (!res.ok) throw new Error(`cannot load the core (${wasmUrl}): HTTP ${res.status}`);
    const wasm = await WebAssembly.compile(await res.arrayBuffer());
    return { wasm, ts: tsSource };
  })();
  modules.catch(() => { modules = undefined; });
  return modules;
}

/** A guest image (an ELF) from a URL. */
export async function fetchGuest(url: string | URL): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot load the guest ${String(url)}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}
