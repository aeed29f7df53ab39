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
// (its disk data comes from the log) until it goes live.

import { checkRange, SECTOR_SIZE, sectorCount, type BlockStore } from "../devices/block-store.js";
import type { Output, OutputChannel } from "./output-gate.js";

/** The image as a replica may see it: read only. */
export interface ImageReader {
  readonly sectors: number;
  /** `count` sectors from `lba`, count * 512 bytes. */
  read(lba: number, count: number): Uint8Array;
}

/** Where a disk output goes: a replica numbers it (OutputCounter) with the guest's other outputs. */
export type DiskEmit = (channel: OutputChannel, value: number | Uint8Array, lba?: number) => void;

export class SharedDiskStore implements BlockStore {
  private readonly overlay = new Map<number, Uint8Array>();
  private closed = false;

  /**
   * `identity` is the image's as the world opened it (block-store.ts), so a
   * replica need not hash the image again; `emit` takes each write, one
   * sector at a time, and each flush.
   */
  constructor(
    private readonly image: ImageReader,
    private readonly id: string,
    private readonly emit: DiskEmit,
  ) {}

  get sectors(): number {
    return this.image.sectors;
  }

  /** Sectors this replica's guest has written (the overlay's size). */
  get written(): number {
    return this.overlay.size;
  }

  read(lba: number, count: number): Uint8Array {
    this.check();
    checkRange(this.sectors, lba, count);
    const out = new Uint8Array(count * SECTOR_SIZE);
    // Runs of sectors not in the overlay are read from the image in one call.
    let from = lba;
    const flushRun = (to: number) => {
      if (to > from) out.set(this.image.read(from, to - from), (from - lba) * SECTOR_SIZE);
    };
    for (let s = lba; s < lba + count; s++) {
      const mine = this.overlay.get(s);
      if (mine === undefined) continue;
      flushRun(s);
      out.set(mine, (s - lba) * SECTOR_SIZE);
      from = s + 1;
    }
    flushRun(lba + count);
    return out;
  }

  write(lba: number, data: Uint8Array): void {
    this.check();
    const n = sectorCount(data);
    checkRange(this.sectors, lba, n);
    for (let i = 0; i < n; i++) {
      // A copy: the disk reuses its buffer for the next sector.
      const sector = data.slice(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE);
      this.overlay.set(lba + i, sector);
      this.emit("disk", sector, lba + i);
    }
  }

  /** The world makes the writes before it durable when it takes this output. */
  flush(): void {
    this.check();
    this.emit("flush", 0);
  }

  identity(): string {
    return this.id;
  }

  close(): void {
    this.closed = true;
  }

  private check(): void {
    if (this.closed) throw new Error("shared disk: used after close()");
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
