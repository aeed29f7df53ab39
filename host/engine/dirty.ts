// Dirty-page tracking for several readers at once (state transfer, checkpoints,
// divergence checks). The core marks a byte per 4 KiB page on every store; the
// tracker is the only code that reads and clears that map: collect() moves the
// marks into every registered user's own set, so no user can lose another's.

import type { Engine } from "./engine.js";

export const PAGE_SIZE = 4096;

export class DirtyUser {
  readonly pages = new Set<number>();
  constructor(readonly name: string, private readonly tracker: DirtyTracker) {}
  /** Collects from the core, then returns and clears this user's dirty pages (sorted). */
  take(): number[] {
    this.tracker.collect();
    const out = [...this.pages].sort((a, b) => a - b);
    this.pages.clear();
    return out;
  }
  unregister(): void { this.tracker.remove(this); }
}

export class DirtyTracker {
  private readonly users: DirtyUser[] = [];
  constructor(private readonly engine: Engine) {}

  register(name: string): DirtyUser {
    const u = new DirtyUser(name, this);
    this.users.push(u);
    return u;
  }
  remove(u: DirtyUser): void {
    const i = this.users.indexOf(u);
    if (i >= 0) this.users.splice(i, 1);
  }
  /** Moves the core's marks into every user's set and clears the core's map. */
  collect(): void {
    const map = this.engine.dirtyMap();
    for (let p = 0; p < map.length; p++) {
      if (map[p] === 0) continue;
      map[p] = 0;
      for (const u of this.users) u.pages.add(p);
    }
  }
}
