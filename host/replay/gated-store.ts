// The disk's block store as the gate sees it: every sector the disk reads is
// a value from outside the VM, so it passes through the gate (logged live,
// taken from the log in replay). Writes go to the store underneath; a
// replaying machine has a DiscardStore there, as its reads never reach it.

import type { BlockStore } from "../devices/block-store.js";
import { SECTOR_SIZE } from "../devices/block-store.js";
import type { InputGate } from "./gate.js";

export class GatedBlockStore implements BlockStore {
  constructor(
    private readonly inner: BlockStore,
    private readonly gate: InputGate,
    private readonly icount: () => bigint,
  ) {}

  get sectors(): number {
    return this.inner.sectors;
  }

  read(lba: number, count: number): Uint8Array {
    const out = new Uint8Array(count * SECTOR_SIZE);
    for (let i = 0; i < count; i++) {
      out.set(this.gate.diskRead(this.icount(), lba + i, () => this.inner.read(lba + i, 1)), i * SECTOR_SIZE);
    }
    return out;
  }

  write(lba: number, data: Uint8Array): void {
    this.inner.write(lba, data);
  }

  flush(): void {
    this.inner.flush();
  }

  identity(): string {
    return this.inner.identity();
  }

  close(): void {
    this.inner.close();
  }
}

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
