// A raw disk image file as a BlockStore (host/devices/block-store.ts), with
// synchronous Node file I/O: the disk reads and writes sectors between
// instructions and cannot wait.

import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { hashStream } from "../common/hash.js";
import { BlockStoreError, checkRange, identityOf, SECTOR_SIZE, sectorCount, type BlockStore } from "../devices/block-store.js";

const HASH_CHUNK = 1 << 20;

/** A raw image file, opened read-write with synchronous I/O. */
export class FileBlockStore implements BlockStore {
  readonly sectors: number;
  private fd: number | null;
  private readonly id: string;

  private constructor(readonly path: string, fd: number, bytes: number, digest: Uint8Array) {
    this.fd = fd;
    this.sectors = bytes / SECTOR_SIZE;
    this.id = identityOf(bytes, digest);
  }

  /**
   * Opens an existing raw image read-write and hashes its content (after
   * await initHash(), host/common/hash.ts). Throws
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
      const buf = new Uint8Array(Math.min(HASH_CHUNK, bytes));
      const digest = hashStream((update) => {
        for (let at = 0; at < bytes; ) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at);
          if (n <= 0) throw new BlockStoreError(`disk image ${path}: short read at byte ${at} (the file shrank?)`);
          update(buf.subarray(0, n));
          at += n;
        }
      });
      return new FileBlockStore(path, fd, bytes, digest);
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
