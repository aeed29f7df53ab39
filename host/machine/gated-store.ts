// The disk's block store as the gate sees it: every sector the disk reads is
// a value from outside the VM, so it passes through the gate (logged live,
// taken from the log in replay). Writes go to the store underneath; a
// replaying machine has a store there that its reads never reach
// (host/replay/discard-store.ts).

import type { BlockStore } from "../devices/block-store.js";
import { SECTOR_SIZE } from "../devices/block-store.js";
import type { InputGate } from "./input-gate.js";

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
