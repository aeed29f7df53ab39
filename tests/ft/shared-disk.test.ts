// The replica's shared-disk store (host/ft/shared-disk.ts): the guest's
// writes become numbered outputs and stay readable in the overlay, the image
// underneath is never written by a replica; and the pair in one thread
// (host/ft/replica.ts over the in-process link) with disk.elf leaves the
// image as a solo run leaves its own copy, with and without a failover in the
// middle of the guest's writes.

import { describe, expect, it } from "vitest";
import { initHash } from "../../host/common/hash.js";
import { MemoryBlockStore, SECTOR_SIZE } from "../../host/devices/block-store.js";
import { MemoryArbiter } from "../../host/ft/arbiter.js";
import { memoryLinkPair } from "../../host/ft/link.js";
import { OutputCounter, type Output } from "../../host/ft/output-gate.js";
import { BackupReplica, PrimaryReplica } from "../../host/ft/replica.js";
import { applyDiskOutput, SharedDiskStore, type DiskEmit } from "../../host/ft/shared-disk.js";
import { frameTagger } from "../../host/ft/wire.js";
import { bootLive } from "../../host/node/boot.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { driveReplica } from "../../host/ft/driver.js";
import { guestImage } from "../helpers/replay.js";

/** An image whose every byte is known and not zero-filled: sector s, byte i. */
function imageBytes(sectors: number): Uint8Array {
  const b = new Uint8Array(sectors * SECTOR_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = ((i >> 9) * 31 + (i & 511) * 7 + 1) & 0xff;
  return b;
}
const sector = (fill: number) => new Uint8Array(SECTOR_SIZE).fill(fill);

function store(sectors = 16) {
  const image = new MemoryBlockStore(imageBytes(sectors));
  const before = image.bytes();
  const counter = new OutputCounter(() => 0n);
  const outputs: Output[] = [];
  const emit: DiskEmit = (c, v, lba) => outputs.push(counter.next(c, v, lba));
  const disk = new SharedDiskStore(image, "raw:test", emit);
  return { image, before, counter, outputs, disk };
}

describe("SharedDiskStore", () => {
  it("reads the image where the guest has not written, and its own writes where it has; the image is never written", () => {
    const { image, before, disk } = store();
    expect(disk.read(3, 2)).toEqual(before.slice(3 * 512, 5 * 512));
    disk.write(4, sector(0xaa));
    disk.write(6, new Uint8Array([...sector(0xbb), ...sector(0xcc)]));
    // One read across image, overlay, image, overlay, overlay, image.
    const got = disk.read(3, 6);
    expect(got.slice(0, 512)).toEqual(before.slice(3 * 512, 4 * 512));
    expect(got.slice(512, 1024)).toEqual(sector(0xaa));
    expect(got.slice(1024, 1536)).toEqual(before.slice(5 * 512, 6 * 512));
    expect(got.slice(1536, 2048)).toEqual(sector(0xbb));
    expect(got.slice(2048, 2560)).toEqual(sector(0xcc));
    expect(got.slice(2560)).toEqual(before.slice(8 * 512, 9 * 512));
    expect(image.bytes()).toEqual(before);
    expect(disk.writtenCount).toBe(3);
  });

  it("a later write of a sector replaces the earlier one in the overlay", () => {
    const { disk } = store();
    disk.write(2, sector(1));
    disk.write(2, sector(2));
    expect(disk.read(2, 1)).toEqual(sector(2));
    expect(disk.writtenCount).toBe(1);
  });

  it("every sector written is one output, in the order written, numbered with the other outputs; a flush is one too", () => {
    const { counter, outputs, disk } = store();
    outputs.push(counter.next("serial", 0x41));
    disk.write(9, new Uint8Array([...sector(9), ...sector(10)]));
    disk.flush();
    disk.write(1, sector(1));
    expect(outputs.map((o) => [o.seq, o.channel, o.lba])).toEqual([
      [1, "serial", undefined], [2, "disk", 9], [3, "disk", 10], [4, "flush", undefined], [5, "disk", 1],
    ]);
    expect(outputs[1]!.value).toEqual(sector(9));
    expect(outputs[2]!.value).toEqual(sector(10));
  });

  it("keeps copies: the disk reusing its buffer after a write changes neither the overlay nor the output", () => {
    const { outputs, disk } = store();
    const buf = sector(5);
    disk.write(0, buf);
    buf.fill(6);
    expect(disk.read(0, 1)).toEqual(sector(5));
    expect(outputs[0]!.value).toEqual(sector(5));
  });

  it("refuses sectors outside the image, and emits nothing for them", () => {
    const { outputs, disk } = store(4);
    expect(() => disk.write(3, new Uint8Array(1024))).toThrow(RangeError);
    expect(() => disk.write(0, new Uint8Array(100))).toThrow(RangeError);
    expect(() => disk.read(4, 1)).toThrow(RangeError);
    expect(outputs).toEqual([]);
    disk.close();
    expect(() => disk.read(0, 1)).toThrow(/after close/);
  });

  it("applyDiskOutput writes a disk output's sector, flushes on a flush, ignores the other channels; a write applied again changes nothing", () => {
    const image = new MemoryBlockStore(imageBytes(8));
    let flushes = 0;
    const world = { write: (l: number, d: Uint8Array) => image.write(l, d), flush: () => void flushes++ };
    const w: Output = { seq: 1, icount: 0n, channel: "disk", value: sector(7), lba: 5 };
    expect(applyDiskOutput(world, w)).toBe(true);
    const once = image.bytes();
    expect(once.slice(5 * 512, 6 * 512)).toEqual(sector(7));
    applyDiskOutput(world, w);
    expect(image.bytes()).toEqual(once);
    expect(applyDiskOutput(world, { seq: 2, icount: 0n, channel: "flush", value: 0 })).toBe(true);
    expect(flushes).toBe(1);
    expect(applyDiskOutput(world, { seq: 3, icount: 0n, channel: "serial", value: 65 })).toBe(false);
    expect(() => applyDiskOutput(world, { seq: 4, icount: 0n, channel: "disk", value: 0 })).toThrow(TypeError);
  });
});

// disk.elf writes 300 sectors between instructions ~285,000 and ~2,200,000
// (virtual clock), flushes, reads them back and checks them.
const SECTORS = 2048;
const RAM = 32 << 20;
const CMDLINE = "disk.elf";

async function solo(): Promise<{ serial: string; image: Uint8Array }> {
  await initHash();
  const image = new MemoryBlockStore(imageBytes(SECTORS));
  const out: number[] = [];
  const m = await bootLive(guestImage("disk"), { engine: "wasm", ramSize: RAM, clock: "virtual", cmdline: CMDLINE, disk: image, onSerial: (b) => out.push(b) });
  m.runSync(200_000_000);
  m.dispose();
  return { serial: Buffer.from(out).toString("latin1"), image: image.bytes() };
}

/**
 * The pair over the in-process link; the world takes each number once, in
 * order, and applies disk outputs to the one image — at once, or with `late`
 * only after the run (a slow world: the guests must read their own writes
 * from their overlays).
 */
async function pair(fail: { who: "primary" | "backup"; at: bigint } | null, late = false) {
  await initHash();
  const image = new MemoryBlockStore(imageBytes(SECTORS));
  const [pl, bl] = memoryLinkPair(await frameTagger(null));
  const arbiter = new MemoryArbiter();
  await arbiter.claim({ vm: "t", epoch: 1, replica: "primary", atMs: 0, reason: "first start" });
  const waiting = new Map<number, Output>();
  let next = 1;
  const serial: number[] = [];
  let writes = 0;
  /** Disk writes first received from the backup: after a failover, those the primary never released. */
  let fromBackup = 0;
  const deferred: Output[] = [];
  const release = (from: "primary" | "backup") => (xs: Output[]) => {
    for (const x of xs) {
      if (x.seq < next || waiting.has(x.seq)) continue;
      if (from === "backup" && x.channel === "disk") fromBackup++;
      waiting.set(x.seq, x);
      for (let o = waiting.get(next); o; o = waiting.get(next)) {
        waiting.delete(next++);
        if (o.channel === "serial") serial.push(o.value as number);
        if (o.channel === "disk") writes++;
        if (late) deferred.push(o);
        else applyDiskOutput(image, o);
      }
    }
  };
  const lines: string[] = [];
  const common = {
    image: guestImage("disk"), clock: "virtual" as const, cmdline: CMDLINE, configHash: new Uint8Array(32).fill(7), vm: "t",
    arbiter, timeouts: { intervalMs: 20, timeoutMs: 300 }, slice: 20_000, maxLag: 2_000_000n, say: (l: string) => lines.push(l),
    disk: (emit: DiskEmit) => new SharedDiskStore(image, image.identity(), emit),
  };
  const now = performance.now();
  const p = new PrimaryReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "primary", link: pl, release: release("primary") }, now);
  const b = new BackupReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "backup", link: bl, release: release("backup") }, now);
  const stopAt = (r: { machine: { engine: { icount: bigint } } | null }, who: string) => () =>
    fail !== null && fail.who === who && r.machine !== null && r.machine.engine.icount >= fail.at;
  await Promise.all([driveReplica(p, { stop: stopAt(p, "primary") }), driveReplica(b, { stop: stopAt(b, "backup") })]);
  for (const o of deferred) applyDiskOutput(image, o);
  return { serial: Buffer.from(serial).toString("latin1"), image: image.bytes(), writes, fromBackup, lines: lines.join("\n") };
}

describe("the pair in one thread with disk.elf on one shared image (virtual clock)", () => {
  let want: Awaited<ReturnType<typeof solo>> | null = null;
  const reference = async () => (want ??= await solo());

  it.each([false, true])("with no fault (world applies writes late: %s): the console is the solo run's, and the image ends as the solo run's copy", async (late) => {
    const w = await reference();
    expect(w.serial).toMatch(/PASS\n$/);
    const r = await pair(null, late);
    expect(r.serial, r.lines).toBe(w.serial);
    expect(r.writes).toBe(300);
    expect(r.fromBackup).toBe(0);
    expect(Buffer.compare(r.image, w.image)).toBe(0);
  }, 60_000);

  it.each([[1_000_000n, false], [1_000_000n, true], [2_500_000n, false]])("the primary stops at instruction %s (world applies writes late: %s): the backup goes live, sends the writes in flight again, and the image ends as the solo run's copy", async (at, late) => {
    const w = await reference();
    const r = await pair({ who: "primary", at }, late);
    expect(r.lines).toMatch(/backup is live at instruction/);
    expect(r.serial, r.lines).toBe(w.serial);
    expect(Buffer.compare(r.image, w.image)).toBe(0);
    // Stopped in the middle of the writes, the rest can only have come from the backup.
    if (at === 1_000_000n) expect(r.fromBackup).toBeGreaterThan(0);
  }, 60_000);

  it("the backup stops in the middle of the writes: the primary goes on alone, and the image ends as the solo run's copy", async () => {
    const w = await reference();
    const r = await pair({ who: "backup", at: 1_000_000n });
    expect(r.lines).toMatch(/primary won epoch 2/);
    expect(r.serial, r.lines).toBe(w.serial);
    expect(Buffer.compare(r.image, w.image)).toBe(0);
  }, 60_000);
});
