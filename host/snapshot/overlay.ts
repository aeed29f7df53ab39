// A copy-on-write disk: sectors written go to memory, every other sector is
// read from a base image that is never written. A snapshot run uses one so
// that the user's image stays as it was, and a snapshot's DISK section is
// exactly its written sectors (docs/snapshot-format.md, "DISK").

import { checkRange, SECTOR_SIZE, sectorCount, type BlockStore } from "../devices/block-store.js";

/** What an overlay needs of its base: reads, a size and an identity (no writes). */
export type ReadOnlyBase = Pick<BlockStore, "sectors" | "read" | "identity" | "close">;

export class OverlayBlockStore implements BlockStore {
  private readonly written = new Map<number, Uint8Array>();
  private closed = false;

  constructor(private readonly base: ReadOnlyBase) {}

  get sectors(): number {
    return this.base.sectors;
  }

  read(lba: number, count: number): Uint8Array {
    this.check();
    checkRange(this.sectors, lba, count);
    const out = new Uint8Array(count * SECTOR_SIZE);
    // Runs of sectors not in the overlay are read from the base in one call.
    let runStart = -1;
    const flushRun = (end: number) => {
      if (runStart < 0) return;
      out.set(this.base.read(runStart, end - runStart), (runStart - lba) * SECTOR_SIZE);
      runStart = -1;
    };
    for (let s = lba; s < lba + count; s++) {
      const mine = this.written.get(s);
      if (mine) {
        flushRun(s);
        out.set(mine, (s - lba) * SECTOR_SIZE);
      } else if (runStart < 0) {
        runStart = s;
      }
    }
    flushRun(lba + count);
    return out;
  }

  write(lba: number, data: Uint8Array): void {
    this.check();
    const n = sectorCount(data);
    checkRange(this.sectors, lba, n);
    for (let i = 0; i < n; i++) this.written.set(lba + i, data.slice(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE));
  }

  /** Nothing to make durable: the writes live in memory by design. */
  flush(): void {
    this.check();
  }

  /** The base image's: a configuration names the image the overlay started from. */
  identity(): string {
    return this.base.identity();
  }

  close(): void {
    this.closed = true;
    this.base.close();
  }

  /** How many sectors have been written. */
  get writtenCount(): number {
    return this.written.size;
  }

  /** Sectors written so far, by ascending LBA. */
  writtenSectors(): { lba: number; data: Uint8Array }[] {
    return [...this.written.keys()].sort((a, b) => a - b).map((lba) => ({ lba, data: this.written.get(lba)! }));
  }

  /** Puts sectors into the overlay as if written (a snapshot's DISK section), replacing what was there. */
  load(sectors: readonly { lba: number; data: Uint8Array }[]): void {
    this.check();
    for (const s of sectors) checkRange(this.sectors, s.lba, sectorCount(s.data));
    this.written.clear();
    for (const s of sectors) this.write(s.lba, s.data);
  }

  private check(): void {
    if (this.closed) throw new Error("overlay block store: used after close()");
  }
}

/**
 * The DISK section's bytes: u32le count, count u32le LBAs in strictly
 * ascending order, then count sectors of 512 bytes in the same order.
 */
export function encodeOverlay(sectors: readonly { lba: number; data: Uint8Array }[]): Uint8Array {
  const out = new Uint8Array(4 + sectors.length * (4 + SECTOR_SIZE));
  const v = new DataView(out.buffer);
  v.setUint32(0, sectors.length, true);
  let prev = -1;
  sectors.forEach((s, i) => {
    if (!(s.lba > prev) || s.lba > 0xffffffff || s.data.length !== SECTOR_SIZE) throw new RangeError("overlay: sectors must be single sectors in strictly ascending LBA order");
    prev = s.lba;
    v.setUint32(4 + 4 * i, s.lba, true);
    out.set(s.data, 4 + 4 * sectors.length + i * SECTOR_SIZE);
  });
  return out;
}

/** Reads a DISK section; throws a RangeError saying what is wrong (the caller adds where). */
export function decodeOverlay(bytes: Uint8Array, diskSectors: number): { lba: number; data: Uint8Array }[] {
  if (bytes.length < 4) throw new RangeError(`${bytes.length} bytes, shorter than its 4-byte sector count`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = v.getUint32(0, true);
  const want = 4 + count * (4 + SECTOR_SIZE);
  if (bytes.length !== want) throw new RangeError(`${bytes.length} bytes, but ${count} sectors take ${want}`);
  const out: { lba: number; data: Uint8Array }[] = [];
  let prev = -1;
  for (let i = 0; i < count; i++) {
    const lba = v.getUint32(4 + 4 * i, true);
    if (lba <= prev) throw new RangeError(`LBA ${lba} (entry ${i}) is not above the previous one, ${prev}`);
    if (lba >= diskSectors) throw new RangeError(`LBA ${lba} (entry ${i}) is outside the disk's ${diskSectors} sectors`);
    prev = lba;
    const at = 4 + 4 * count + i * SECTOR_SIZE;
    out.push({ lba, data: bytes.slice(at, at + SECTOR_SIZE) });
  }
  return out;
}
