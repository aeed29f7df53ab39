// The replaying machine's disk store: its reads come from the log (through
// the gate, host/machine/gated-store.ts), so the store underneath only has
// to have the recorded disk's size and identity.

import type { BlockStore } from "../devices/block-store.js";

/**
 * A store of `sectors` that remembers nothing: the replaying machine's disk,
 * whose reads come from the log. Reading it directly is a bug.
 */
export class DiscardStore implements BlockStore {
  constructor(
    readonly sectors: number,
    private readonly id: string,
  ) {}
  read(): Uint8Array {
    throw new Error("a replaying disk reads from the log, not from a store");
  }
  write(): void {}
  flush(): void {}
  identity(): string {
    return this.id;
  }
  close(): void {}
}
