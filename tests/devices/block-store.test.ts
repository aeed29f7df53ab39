// Block stores (host/devices/block-store.ts): the in-memory store, the raw
// image file store, their identities, range checks and the errors for bad
// image files.

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initHash } from "../../host/common/hash.js";
import { BlockStoreError, MemoryBlockStore, SECTOR_SIZE, type BlockStore } from "../../host/devices/block-store.js";
import { FileBlockStore } from "../../host/node/file-block-store.js";

// Image identities are BLAKE3 hashes (host/common/hash.ts), computed synchronously once it is loaded.
beforeAll(() => initHash());

const tmp = mkdtempSync(join(tmpdir(), "lockstep-blocks-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
let files = 0;
function imageFile(content: Uint8Array): string {
  const p = join(tmp, `img${files++}.raw`);
  writeFileSync(p, content);
  return p;
}

/** The behaviour both stores share. */
function common(make: (content: Uint8Array) => BlockStore) {
  it("reads and writes whole sectors and keeps the rest", () => {
    const init = bytes(8 * SECTOR_SIZE, 1);
    const s = make(init);
    expect(s.sectors).toBe(8);
    expect(s.read(0, 8)).toEqual(init);
    expect(s.read(3, 2)).toEqual(init.subarray(3 * 512, 5 * 512));
    expect(s.read(8, 0)).toEqual(new Uint8Array(0));
    const data = bytes(2 * SECTOR_SIZE, 99);
    s.write(6, data);
    s.flush();
    const expected = init.slice();
    expected.set(data, 6 * 512);
    expect(s.read(0, 8)).toEqual(expected);
    s.close();
  });

  it("refuses ranges outside the store and partial sectors", () => {
    const s = make(new Uint8Array(4 * SECTOR_SIZE));
    expect(() => s.read(3, 2)).toThrow(RangeError);
    expect(() => s.read(-1, 1)).toThrow(RangeError);
    expect(() => s.read(0.5, 1)).toThrow(RangeError);
    expect(() => s.write(4, new Uint8Array(512))).toThrow(RangeError);
    expect(() => s.write(0, new Uint8Array(100))).toThrow(/whole number/);
    s.close();
  });

  it("has an identity from the size and the content at open, unchanged by later writes", () => {
    const a = make(bytes(4 * SECTOR_SIZE, 5));
    const b = make(bytes(4 * SECTOR_SIZE, 5));
    const c = make(bytes(4 * SECTOR_SIZE, 6));
    const d = make(bytes(5 * SECTOR_SIZE, 5).fill(0, 4 * SECTOR_SIZE));
    expect(a.identity()).toBe(b.identity());
    expect(a.identity()).toMatch(/^raw:2048:blake3:[0-9a-f]{64}$/);
    expect(c.identity()).not.toBe(a.identity());
    expect(d.identity()).not.toBe(a.identity());
    const before = a.identity();
    a.write(0, new Uint8Array(512));
    expect(a.identity()).toBe(before);
    for (const s of [a, b, c, d]) s.close();
  });

  it("refuses use after close", () => {
    const s = make(new Uint8Array(512));
    s.close();
    expect(() => s.read(0, 1)).toThrow(/after close/);
    expect(() => s.write(0, new Uint8Array(512))).toThrow(/after close/);
    s.close(); // closing twice is harmless
  });
}

describe("MemoryBlockStore", () => {
  common((content) => new MemoryBlockStore(content));

  it("makes a zeroed store of n sectors, and copies (does not alias) an image", () => {
    expect(new MemoryBlockStore(3).read(0, 3)).toEqual(new Uint8Array(1536));
    const img = new Uint8Array(512);
    const s = new MemoryBlockStore(img);
    img[0] = 1;
    expect(s.read(0, 1)[0]).toBe(0);
    const out = s.read(0, 1);
    out[1] = 9;
    expect(s.bytes()[1]).toBe(0);
    expect(() => new MemoryBlockStore(new Uint8Array(100))).toThrow(/whole number/);
    expect(() => new MemoryBlockStore(-1)).toThrow(RangeError);
  });
});

describe("FileBlockStore", () => {
  common((content) => FileBlockStore.open(imageFile(content)));

  it("writes through to the file, and has the same identity as a memory store of the same bytes", () => {
    const init = bytes(16 * SECTOR_SIZE, 3);
    const path = imageFile(init);
    const s = FileBlockStore.open(path);
    expect(s.identity()).toBe(new MemoryBlockStore(init).identity());
    s.write(2, bytes(512, 77));
    s.flush();
    s.close();
    const on = readFileSync(path);
    expect(new Uint8Array(on.subarray(1024, 1536))).toEqual(bytes(512, 77));
    expect(on.length).toBe(init.length);
    // Reopened, the identity follows the new content.
    const again = FileBlockStore.open(path);
    expect(again.identity()).not.toBe(s.identity());
    expect(again.read(2, 1)).toEqual(bytes(512, 77));
    again.close();
  });

  it("hashes images bigger than its read chunk", () => {
    const big = bytes(3 * 1024 * 1024 + 512, 8);
    const s = FileBlockStore.open(imageFile(big));
    expect(s.identity()).toBe(new MemoryBlockStore(big).identity());
    expect(s.sectors).toBe(big.length / 512);
    s.close();
  });

  it("reads a sparse (truncate-made) image as zeros", () => {
    const p = join(tmp, "sparse.raw");
    writeFileSync(p, "");
    truncateSync(p, 1 << 20);
    const s = FileBlockStore.open(p);
    expect(s.sectors).toBe(2048);
    expect(s.read(2047, 1)).toEqual(new Uint8Array(512));
    s.close();
  });

  const refusal = (path: string) => {
    try {
      FileBlockStore.open(path).close();
    } catch (e) {
      expect(e).toBeInstanceOf(BlockStoreError);
      return (e as Error).message;
    }
    throw new Error("expected a BlockStoreError");
  };

  it("names the file and the problem when it cannot use it", () => {
    const missing = join(tmp, "missing.raw");
    expect(refusal(missing)).toBe(`disk image ${missing}: no such file`);
    const dir = join(tmp, "a-dir");
    mkdirSync(dir);
    expect(refusal(dir)).toMatch(new RegExp(`^disk image ${dir}: (is a directory|not a regular file)`));
    const empty = imageFile(new Uint8Array(0));
    expect(refusal(empty)).toBe(`disk image ${empty}: the file is empty`);
    const odd = imageFile(new Uint8Array(1000));
    expect(refusal(odd)).toBe(`disk image ${odd}: size 1000 bytes is not a multiple of 512 (a raw image is whole sectors)`);
  });

  it("reports an image it may not write", () => {
    // Root ignores file modes, so as root use a sysfs file: sysfs refuses a
    // write open by its mode even to root.
    let ro = "/sys/kernel/notes";
    if (process.getuid?.() !== 0) {
      ro = imageFile(new Uint8Array(512));
      chmodSync(ro, 0o444);
    }
    expect(refusal(ro)).toMatch(/permission denied/);
  });
});
