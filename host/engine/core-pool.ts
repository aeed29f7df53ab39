// Released cores, kept for the next engine of the same kind and build.
//
// A core is heavy: the TS build allocates ~19 MiB of caches plus guest RAM per
// instance, a wasm instance owns its linear memory. An engine gives its core
// back when disposed, or, if it is simply dropped, when the garbage collector
// finalizes it. The next createEngine re-initializes a pooled core; init() in
// the core resets every piece of its state (assembly/cpu.ts cpuInit), so a
// reused core behaves exactly as a fresh one.

import type { CoreExports } from "./core-exports.js";

export interface PooledCore {
  core: CoreExports<unknown>;
  /** The wasm instance's memory (absent for the TS build). */
  memory?: WebAssembly.Memory;
}

/** Released cores kept per pool; more are left to the garbage collector. */
export const POOL_MAX = 4;

interface Held {
  pool: CorePool;
  pooled: PooledCore;
}

// Held values reference the core, never the engine (that would keep it alive).
const finalizer = new FinalizationRegistry<Held>((h) => h.pool.give(h.pooled));

export class CorePool {
  private readonly free: PooledCore[] = [];

  /** A released core, or undefined when there is none. */
  take(): PooledCore | undefined {
    return this.free.pop();
  }

  /** Puts a core back (nothing else may use it any more). */
  give(pooled: PooledCore): void {
    if (this.free.length < POOL_MAX && !this.free.includes(pooled)) this.free.push(pooled);
  }

  /** Released cores held now (for tests). */
  get size(): number {
    return this.free.length;
  }

  /**
   * Ties `pooled` to `owner`: the core comes back when `owner` is garbage-
   * collected, or at once through the returned function (the owner's dispose).
   */
  lease(owner: object, pooled: PooledCore): () => void {
    finalizer.register(owner, { pool: this, pooled }, owner);
    return () => {
      finalizer.unregister(owner);
      this.give(pooled);
    };
  }
}
