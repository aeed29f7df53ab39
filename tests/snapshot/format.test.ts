// The snapshot file format's reader (host/snapshot/format.ts): a file cut
// short anywhere or with any byte changed is refused with a SnapshotError
// naming the section the damage is in and a byte offset; and a snapshot is
// refused by a machine of another configuration, which stays as it was.
// Random offsets come from a seed printed in the test names
// (SNAPSHOT_FUZZ_SEED=N repeats a run).

import { beforeAll, describe, expect, it } from "vitest";
import { initHash, toHex } from "../../host/common/hash.js";
import { MemoryBlockStore } from "../../host/devices/block-store.js";
import type { Machine } from "../../host/machine/machine.js";
import { bootLive } from "../../host/node/boot.js";
import { hashState, stateHash } from "../../host/replay/state-hash.js";
import { encodeVmConfig, vmConfig } from "../../host/replay/vm-config.js";
import { FILE_HEADER_BYTES, readSnapshot, SECTION_HEADER_BYTES, SnapshotError, writeSnapshot, type SectionInfo } from "../../host/snapshot/format.js";
import { decodeOverlay, encodeOverlay, OverlayBlockStore } from "../../host/snapshot/overlay.js";
import { captureSnapshot, decodeSnapshot, restoreSnapshot } from "../../host/snapshot/snapshot.js";
import { guestImage, MiB } from "../helpers/replay.js";

const SEED = Number(process.env.SNAPSHOT_FUZZ_SEED ?? Math.floor(Math.random() * 0x7fffffff) + 1);
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s % n;
  };
}

const CMDLINE = "guests/bin/disk.elf";
let file: Uint8Array;
let layout: SectionInfo[];

async function diskMachine(ramSize = 2 * MiB): Promise<{ m: Machine; overlay: OverlayBlockStore; config: Uint8Array }> {
  const overlay = new OverlayBlockStore(new MemoryBlockStore(2048));
  const image = guestImage("disk");
  const m = await bootLive(image, { engine: "wasm", ramSize, clock: "virtual", cmdline: CMDLINE, disk: overlay });
  return { m, overlay, config: encodeVmConfig(vmConfig(image, { ramSize, clock: "virtual", cmdline: CMDLINE, disk: overlay })) };
}

beforeAll(async () => {
  await initHash();
  // disk.elf part-way: it has written sectors, so every section, DISK included, is there.
  const { m, overlay, config } = await diskMachine();
  try {
    m.runSync(6_000_000);
    expect(overlay.writtenSectors().length).toBeGreaterThan(0);
    file = captureSnapshot(m, { config, image: guestImage("disk"), engine: "wasm", hashState, overlay });
  } finally {
    m.dispose();
  }
  layout = readSnapshot(file).layout;
  expect(layout.map((l) => l.name)).toEqual(["CONFIG", "META", "IMAGE", "STATE", "RAM", "DISK", "END"]);
});

/** The section whose header or body holds byte `at` ("" for the file header). */
function sectionAt(at: number): string {
  if (at < FILE_HEADER_BYTES) return "";
  let name = "";
  for (const l of layout) if (l.offset <= at) name = l.name;
  return name;
}

function refusal(bytes: Uint8Array): SnapshotError {
  try {
    decodeSnapshot(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(SnapshotError);
    const err = e as SnapshotError;
    expect(err.message).toMatch(/at byte \d+\)$/);
    return err;
  }
  throw new Error("the damaged snapshot was accepted");
}

describe("the snapshot reader", () => {
  it("reads back what was written: sections deflated where that is smaller, the RAM (stored as pages) far smaller", () => {
    const s = readSnapshot(file);
    const ram = s.layout.find((l) => l.name === "RAM")!;
    expect(ram.compression).toBe(2);
    expect(ram.rawBytes).toBe(2 * MiB);
    expect(ram.storedBytes).toBeLessThan(ram.rawBytes / 10);
    const again = writeSnapshot(s.sections);
    expect(toHex(again)).toBe(toHex(file));
  });

  it("refuses a wrong magic, another version and bytes after END", () => {
    const magic = file.slice();
    magic[0] = 0x4d;
    expect(refusal(magic).message).toMatch(/not a lockstep snapshot \(wrong magic.*at byte 0\)/);
    const version = file.slice();
    version[8] = 2;
    expect(refusal(version).message).toMatch(/format version 2; this lockstep reads version 1 only \(at byte 8\)/);
    const extra = new Uint8Array(file.length + 3);
    extra.set(file);
    const e = refusal(extra);
    expect(e.section).toBe("END");
    expect(e.message).toContain(`3 bytes follow the END section; nothing may (at byte ${file.length})`);
    expect(refusal(new Uint8Array(0)).message).toMatch(/shorter than the 10-byte file header/);
  });

  it(`refuses the file cut at every section boundary and inside every header, naming the section (seed ${SEED})`, () => {
    const r = rng(SEED);
    const cuts = new Set<number>([0, 5, FILE_HEADER_BYTES]);
    for (const l of layout) {
      cuts.add(l.offset);
      cuts.add(l.offset + 1 + r(SECTION_HEADER_BYTES - 1));
      cuts.add(l.offset + SECTION_HEADER_BYTES);
      if (l.storedBytes > 0) cuts.add(l.offset + SECTION_HEADER_BYTES + r(l.storedBytes));
    }
    cuts.add(file.length - 1);
    for (let i = 0; i < 40; i++) cuts.add(r(file.length));
    for (const cut of [...cuts].filter((c) => c < file.length).sort((a, b) => a - b)) {
      const e = refusal(file.subarray(0, cut));
      // At a boundary the missing section is the next one; inside a section it is that one.
      expect(e.section, `cut at ${cut}: ${e.message}`).toBe(sectionAt(cut));
      if (cut >= FILE_HEADER_BYTES) expect(e.message, `cut at ${cut}`).toMatch(/truncated/);
    }
  });

  it(`refuses the file with any byte changed, naming the section it is in (seed ${SEED})`, () => {
    const r = rng(SEED ^ 0x5a5a);
    const offsets = new Set<number>();
    for (const l of layout) for (let k = 0; k < SECTION_HEADER_BYTES; k += 7) offsets.add(l.offset + k);
    for (let i = 0; i < 120; i++) offsets.add(r(file.length));
    for (const at of offsets) {
      const bad = file.slice();
      bad[at] ^= 1 << r(8);
      const e = refusal(bad);
      // A change the section's own checks cannot see (an unused bit of a DEFLATE stream) is caught by END's hash.
      expect([sectionAt(at), "END"], `byte ${at}: ${e.message}`).toContain(e.section);
      expect(e.offset, `byte ${at}: ${e.message}`).toBeGreaterThanOrEqual(0);
      expect(e.offset, `byte ${at}: ${e.message}`).toBeLessThanOrEqual(file.length);
    }
  });

  it("refuses a section that inflates to more than its raw length says", async () => {
    const s = readSnapshot(file).sections;
    // A file written by hand: META's raw length one short. Its hash must still be right for the check to be the length's.
    const good = writeSnapshot(s);
    const meta = layout.find((l) => l.name === "META")!;
    const view = new DataView(good.buffer, good.byteOffset);
    if (meta.compression === 1) {
      view.setUint32(meta.offset + 6, meta.rawBytes - 1, true);
      expect(refusal(good).message).toMatch(/section META: the deflated data inflates to more than \d+ bytes/);
    } else {
      view.setUint32(meta.offset + 6, meta.rawBytes - 1, true);
      expect(refusal(good).message).toMatch(/section META: stored length \d+ differs from raw length/);
    }
  });
});

describe("the DISK section", () => {
  it("round-trips and refuses sectors out of order or outside the disk", () => {
    const sectors = [{ lba: 3, data: new Uint8Array(512).fill(1) }, { lba: 9, data: new Uint8Array(512).fill(2) }];
    const bytes = encodeOverlay(sectors);
    expect(decodeOverlay(bytes, 10)).toEqual(sectors);
    expect(() => decodeOverlay(bytes, 9)).toThrow("LBA 9 (entry 1) is outside the disk's 9 sectors");
    const swapped = bytes.slice();
    new DataView(swapped.buffer).setUint32(4, 9, true);
    expect(() => decodeOverlay(swapped, 10)).toThrow("LBA 9 (entry 1) is not above the previous one, 9");
    expect(() => decodeOverlay(bytes.subarray(0, bytes.length - 1), 10)).toThrow(/but 2 sectors take/);
  });

  it("the overlay never writes its base", () => {
    const base = new MemoryBlockStore(4);
    const o = new OverlayBlockStore(base);
    o.write(1, new Uint8Array(1024).fill(7));
    expect(Array.from(o.read(0, 4).subarray(512, 1536)).every((b) => b === 7)).toBe(true);
    expect(base.bytes().every((b) => b === 0)).toBe(true);
    expect(o.writtenSectors().map((s) => s.lba)).toEqual([1, 2]);
  });
});

describe("restoring into a machine of another configuration", () => {
  it.each([
    ["RAM size", 4 * MiB, /section CONFIG: the snapshot was made for another configuration: .*"ramSize":2097152.*"ramSize":4194304/],
  ] as const)("%s: refused with the section named, the machine and its disk unchanged", async (_what, ramSize, message) => {
    const snap = decodeSnapshot(file);
    const { m, overlay, config } = await diskMachine(ramSize);
    try {
      m.runSync(1_000_000);
      const before = toHex(stateHash(m));
      const written = overlay.writtenSectors().length;
      expect(() => restoreSnapshot(m, snap, { config, hashState, overlay })).toThrow(message);
      expect(toHex(stateHash(m))).toBe(before);
      expect(overlay.writtenSectors().length).toBe(written);
    } finally {
      m.dispose();
    }
  });

  it("a state hash that does not match after loading is refused and the machine put back", async () => {
    const snap = decodeSnapshot(file);
    snap.meta.stateHash = new Uint8Array(32);
    const { m, overlay, config } = await diskMachine();
    try {
      m.runSync(1_000_000);
      const before = toHex(stateHash(m));
      expect(() => restoreSnapshot(m, snap, { config, hashState, overlay })).toThrow(/section META: after loading, the machine's state hash is [0-9a-f]{64}, not the snapshot's 0{64}/);
      expect(toHex(stateHash(m))).toBe(before);
    } finally {
      m.dispose();
    }
  });
});
