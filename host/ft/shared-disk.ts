// A replica's view of the pair's one disk image (docs/ft-disk.md). The image
// is shared: only the outside world writes it, and only what the Output Rule
// released. So a replica never writes the image itself: each sector its guest
// writes becomes an output (numbered with the others, held like them), and
// is kept here in an overlay so the guest reads back its own writes before
// the world has applied them. A sector the guest never wrote is read from the
// image, which the world never changes there.
//
// Both replicas make the same writes in the same order, so their overlays
// are equal at equal instruction counts; the backup, replaying, reads nothing
// (its disk data comes from the log) until it goes live. In checkpoint mode
// the backup runs no guest: each checkpoint's writes go into its overlay
// (adopt), so at a checkpoint its overlay is the primary's.

import { SECTOR_SIZE, type BlockStore } from "../devices/block-store.js";
import { OverlayBlockStore } from "../snapshot/overlay.js";
import type { Output, OutputChannel } from "./output-gate.js";

/** The image as a replica may see it: read only. */
export interface ImageReader {
  readonly sectors: number;
  /** `count` sectors from `lba`, count * 512 bytes. */
  read(lba: number, count: number): Uint8Array;
}

/** Where a disk output goes: a replica numbers it (OutputCounter) with the guest's other outputs. */
export type DiskEmit = (channel: OutputChannel, value: number | Uint8Array, lba?: number) => void;

export class SharedDiskStore extends OverlayBlockStore {
  /**
   * `identity` is the image's as the world opened it (block-store.ts), so a
   * replica need not hash the image again; `emit` takes each write, one
   * sector at a time, and each flush. The overlay is the snapshot layer's
   * copy-on-write store (host/snapshot/overlay.ts): the image is never written here.
   */
  constructor(image: ImageReader, id: string, private readonly emit: DiskEmit) {
    super({ sectors: image.sectors, read: (lba, count) => image.read(lba, count), identity: () => id, close: () => {} });
  }

  write(lba: number, data: Uint8Array): void {
    super.write(lba, data);
    // Each sector an output of its own, a copy: the disk reuses its buffer.
    for (let i = 0; i < data.length / SECTOR_SIZE; i++) this.emit("disk", data.slice(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE), lba + i);
  }

  /**
   * Checkpoint mode (docs/ft-checkpoint.md): a sector the primary's guest
   * wrote, as a checkpoint the backup applied carries it. It goes in the
   * overlay, as the primary's own write did, and is not an output of this
   * replica (the primary made it, and numbered it).
   */
  adopt(o: Output): void {
    if (o.channel !== "disk") return;
    if (o.lba === undefined || !(o.value instanceof Uint8Array)) throw new TypeError("a disk output without its sector or data");
    super.write(o.lba, o.value);
  }

  /** The world makes the writes before it durable when it takes this output. */
  flush(): void {
    super.flush();
    this.emit("flush", 0);
  }
}

/**
 * What the world does with a disk output once released: the write on the
 * image, or a flush. Outputs arrive in number order, each number once; a
 * write applied again (a repeat the world did not drop) puts the same bytes
 * on the same sector, so it changes nothing.
 */
export function applyDiskOutput(store: Pick<BlockStore, "write" | "flush">, o: Output): boolean {
  if (o.channel === "disk") {
    if (o.lba === undefined || !(o.value instanceof Uint8Array)) throw new TypeError("a disk output without its sector or data");
    store.write(o.lba, o.value);
    return true;
  }
  if (o.channel === "flush") {
    store.flush();
    return true;
  }
  return false;
}
