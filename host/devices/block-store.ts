// Block storage behind the disk devices. A device never opens a file: the
// host opens the image (FileBlockStore) or builds one in memory
// (MemoryBlockStore) and hands the device a BlockStore. The replay layer can
// stand behind the same interface.
//
// The image format is raw: sector n is bytes [512 n, 512 n + 512) of the file,
// nothing else is in the file, and its size is a whole number of sectors.

import { createHash } from "node:crypto";
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";

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
   * hash of its content as it was when the store was opened (later writes do
   * not change it). Two stores opened on equal bytes have equal identities.
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

function sectorCount(data: Uint8Array): number {
  if (data.length % SECTOR_SIZE !== 0) throw new RangeError(`write of ${data.length} bytes: not a whole number of ${SECTOR_SIZE}-byte sectors`);
  return data.length / SECTOR_SIZE;
}

const identityOf = (bytes: number, sha256: string) => `raw:${bytes}:sha256:${sha256}`;

/** Sectors held in memory: for tests and scratch disks. */
export class MemoryBlockStore implements BlockStore {
  readonly sectors: number;
  private readonly data: Uint8Array;
  private readonly id: string;
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
    this.id = identityOf(this.data.length, createHash("sha256").update(this.data).digest("hex"));
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

  identity(): string {
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

const HASH_CHUNK = 1 << 20;

/** A raw image file, opened read-write with synchronous I/O. */
export class FileBlockStore implements BlockStore {
  readonly sectors: number;
  private fd: number | null;
  private readonly id: string;

  private constructor(readonly path: string, fd: number, bytes: number, sha256: string) {
    this.fd = fd;
    this.sectors = bytes / SECTOR_SIZE;
    this.id = identityOf(bytes, sha256);
  }

  /**
   * Opens an existing raw image read-write and hashes its content. Throws
   * BlockStoreError naming the file if it is missing, not a regular file,
   * unreadable or unwritable, empty, or not a whole number of sectors.
   */
  static open(path: string): FileBlockStore {
    let fd: number;
    try {
      fd = openSync(path, "r+");
    } catch (e) {
      throw new BlockStoreError(`disk image ${path}: ${describeError(e)}`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new BlockStoreError(`disk image ${path}: not a regular file`);
      const bytes = st.size;
      if (bytes === 0) throw new BlockStoreError(`disk image ${path}: the file is empty`);
      if (bytes % SECTOR_SIZE !== 0) {
        throw new BlockStoreError(`disk image ${path}: size ${bytes} bytes is not a multiple of ${SECTOR_SIZE} (a raw image is whole sectors)`);
      }
      const hash = createHash("sha256");
      const buf = new Uint8Array(Math.min(HASH_CHUNK, bytes));
      for (let at = 0; at < bytes; ) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at);
        if (n <= 0) throw new BlockStoreError(`disk image ${path}: short read at byte ${at} (the file shrank?)`);
        hash.update(buf.subarray(0, n));
        at += n;
      }
      return new FileBlockStore(path, fd, bytes, hash.digest("hex"));
    } catch (e) {
      closeSync(fd);
      if (e instanceof BlockStoreError) throw e;
      throw new BlockStoreError(`disk image ${path}: ${describeError(e)}`);
    }
  }

  read(lba: number, count: number): Uint8Array {
    const fd = this.handle();
    checkRange(this.sectors, lba, count);
    const out = new Uint8Array(count * SECTOR_SIZE);
    for (let at = 0; at < out.length; ) {
      const n = readSync(fd, out, at, out.length - at, lba * SECTOR_SIZE + at);
      if (n <= 0) throw new BlockStoreError(`disk image ${this.path}: short read at sector ${lba + Math.floor(at / SECTOR_SIZE)} (the file shrank?)`);
      at += n;
    }
    return out;
  }

  write(lba: number, data: Uint8Array): void {
    const fd = this.handle();
    checkRange(this.sectors, lba, sectorCount(data));
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at, lba * SECTOR_SIZE + at);
  }

  flush(): void {
    fsyncSync(this.handle());
  }

  identity(): string {
    return this.id;
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }

  private handle(): number {
    if (this.fd === null) throw new Error(`disk image ${this.path}: used after close()`);
    return this.fd;
  }
}

function describeError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case "ENOENT": return "no such file";
    case "EISDIR": return "is a directory, not an image file";
    case "EACCES": case "EPERM": return "permission denied (the image must be readable and writable)";
    case "EROFS": return "on a read-only file system (the image must be writable)";
    default: return err?.message ?? String(e);
  }
}
