// Block storage behind the disk devices. A device never opens a file: the
// host opens the image (host/node/file-block-store.ts in Node) or builds one
// in memory (MemoryBlockStore) and hands the device a BlockStore. The replay
// layer stands behind the same interface.
//
// The image format is raw: sector n is bytes [512 n, 512 n + 512) of the file,
// nothing else is in the file, and its size is a whole number of sectors.

import { hashBytes, toHex } from "../common/hash.js";

export const SECTOR_SIZE = 512;

/** Sector-addressed storage (512-byte sectors, LBA 0 .. sectors - 1). */
export interface BlockStore {
  /** Number of sectors. */
  readonly sectors: number;
  /** Reads `count` sectors from `lba` into a new array of count * 512 bytes. Throws RangeError outside the store. */
  read(lba: number, count: number): Uint8Array;
  /** Writes whole sectors at `lba` (data.length a multiple of 512). Throws RangeError outside the store. */
  write(lba: number, data: Uint8Array): void;
  /** Makes every completed write durable (fsync for a file). */
  flush(): void;
  /**
   * A stable identity of the image for configuration hashes: its size and a
   * BLAKE3 of its content as it was when the store was opened (later writes
   * do not change it). Two stores opened on equal bytes have equal identities.
   */
  identity(): string;
  /** Releases the store (closes the file). Further reads and writes throw. */
  close(): void;
}

/** A disk image the host could not open or use; the message names the file. */
export class BlockStoreError extends Error {}

/** Throws a RangeError unless [lba, lba + count) is a range of sectors inside a store of `sectors`. */
export function checkRange(sectors: number, lba: number, count: number): void {
  if (!Number.isSafeInteger(lba) || !Number.isSafeInteger(count) || lba < 0 || count < 0 || lba + count > sectors) {
    throw new RangeError(`sectors [${lba}, ${lba}+${count}) outside a store of ${sectors} sectors`);
  }
}

export function sectorCount(data: Uint8Array): number {
  if (data.length % SECTOR_SIZE !== 0) throw new RangeError(`write of ${data.length} bytes: not a whole number of ${SECTOR_SIZE}-byte sectors`);
  return data.length / SECTOR_SIZE;
}

/** The identity of a raw image of `bytes` bytes whose BLAKE3 (host/common/hash.ts) is `digest`. */
export const identityOf = (bytes: number, digest: Uint8Array) => `raw:${bytes}:blake3:${toHex(digest)}`;

/** Sectors held in memory: for tests and scratch disks. */
export class MemoryBlockStore implements BlockStore {
  readonly sectors: number;
  private readonly data: Uint8Array;
  private id: string | null = null;
  private closed = false;

  /** A store of `sectors` zero sectors, or over a copy of `image` (a whole number of sectors). */
  constructor(init: number | Uint8Array) {
    if (typeof init === "number") {
      if (!Number.isSafeInteger(init) || init < 0) throw new RangeError(`sector count must be a non-negative integer, got ${init}`);
      this.data = new Uint8Array(init * SECTOR_SIZE);
    } else {
      if (init.length % SECTOR_SIZE !== 0) throw new RangeError(`image of ${init.length} bytes: not a whole number of ${SECTOR_SIZE}-byte sectors`);
      this.data = init.slice();
    }
    this.sectors = this.data.length / SECTOR_SIZE;
  }

  read(lba: number, count: number): Uint8Array {
    this.check();
    checkRange(this.sectors, lba, count);
    return this.data.slice(lba * SECTOR_SIZE, (lba + count) * SECTOR_SIZE);
  }

  write(lba: number, data: Uint8Array): void {
    this.check();
    checkRange(this.sectors, lba, sectorCount(data));
    this.data.set(data, lba * SECTOR_SIZE);
  }

  flush(): void {
    this.check();
  }

  /** Hashed at the first call, of the content then (await initHash() from host/common/hash.ts first). */
  identity(): string {
    this.id ??= identityOf(this.data.length, hashBytes(this.data));
    return this.id;
  }

  close(): void {
    this.closed = true;
  }

  /** A copy of the whole content. */
  bytes(): Uint8Array {
    return this.data.slice();
  }

  private check(): void {
    if (this.closed) throw new Error("memory block store: used after close()");
  }
}
