// The ATA disk (host/devices/ata-disk.ts), driven through its ports the way a
// PIO driver drives it, with a fake guest clock and a recording IRQ line.
// Register values the device shows (0x50 idle, 0x58 DRQ, 0x41 aborted, the
// count/LBA registers stepping per sector...) are those QEMU's IDE disk was
// seen to show for the same accesses.

import { describe, expect, it, vi } from "vitest";
import {
  AtaDisk, buildIdentify, DEFAULT_ATA_TIMING, identifyString, LBA28_MAX_SECTORS,
  type AtaDiskOptions, type AtaDiskState,
} from "../../host/devices/ata-disk.js";
import { MemoryBlockStore, type BlockStore } from "../../host/devices/block-store.js";
import type { AccessSize, IrqLine } from "../../host/devices/device.js";
import { PortBus } from "../../host/machine/bus.js";

const DATA = 0x1f0, ERROR = 0x1f1, FEATURES = 0x1f1, COUNT = 0x1f2, LBA0 = 0x1f3, LBA1 = 0x1f4, LBA2 = 0x1f5;
const DEVICE = 0x1f6, STATUS = 0x1f7, COMMAND = 0x1f7, ALT = 0x3f6, CONTROL = 0x3f6;
const BSY = 0x80, DRQ = 0x08, ERR = 0x01;

class FakeClock {
  t = 1_000_000;
  nowNs(): number {
    return this.t;
  }
}

class RecordingIrq implements IrqLine {
  level = false;
  events: string[] = [];
  raise(): void {
    expect(this.level, "raise() while already high").toBe(false);
    this.level = true;
    this.events.push("raise");
  }
  lower(): void {
    expect(this.level, "lower() while already low").toBe(true);
    this.level = false;
    this.events.push("lower");
  }
  /** Rising edges seen so far. */
  get raises(): number {
    return this.events.filter((e) => e === "raise").length;
  }
}

/** Sector n filled with bytes derived from n, so every sector differs. */
function patterned(sectors: number): MemoryBlockStore {
  const img = new Uint8Array(sectors * 512);
  for (let i = 0; i < img.length; i++) img[i] = (i * 7 + Math.floor(i / 512) * 13 + 1) & 0xff;
  return new MemoryBlockStore(img);
}

/** A device with a driver's-eye view of it. */
function rig<S extends BlockStore = MemoryBlockStore>(store: S = patterned(64) as BlockStore as S, opts: Partial<AtaDiskOptions> = {}) {
  const clock = new FakeClock();
  const irq = new RecordingIrq();
  const disk = new AtaDisk({ store, clock, irq, ...opts });
  const inb = (p: number) => disk.read(p, 1);
  const inw = (p: number) => disk.read(p, 2);
  const inl = (p: number) => disk.read(p, 4);
  const outb = (p: number, v: number) => disk.write(p, 1, v);
  const outw = (p: number, v: number) => disk.write(p, 2, v);
  const outl = (p: number, v: number) => disk.write(p, 4, v);
  /** Moves guest time to the device's next event and lets it happen. */
  const complete = () => {
    const due = disk.nextEventNs();
    expect(due, "an operation should be scheduled").not.toBeNull();
    clock.t = Math.max(clock.t, due!);
    disk.advance(clock.t);
  };
  /** Task file setup and command, as a driver does it (LBA mode, master). */
  const issue = (cmd: number, lba = 0, count = 1, device = 0xe0) => {
    outb(DEVICE, device | ((lba >>> 24) & 0x0f));
    outb(COUNT, count & 0xff);
    outb(LBA0, lba & 0xff);
    outb(LBA1, (lba >>> 8) & 0xff);
    outb(LBA2, (lba >>> 16) & 0xff);
    outb(COMMAND, cmd);
  };
  const readSector = (size: 2 | 4 = 2) => {
    const out = new Uint8Array(512);
    for (let i = 0; i < 512; i += size) {
      const v = disk.read(DATA, size);
      for (let k = 0; k < size; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
    }
    return out;
  };
  const writeSector = (bytes: Uint8Array, size: 2 | 4 = 2) => {
    for (let i = 0; i < 512; i += size) {
      let v = 0;
      for (let k = 0; k < size; k++) v |= bytes[i + k] << (8 * k);
      disk.write(DATA, size, v >>> 0);
    }
  };
  const taskFile = () => [ERROR, COUNT, LBA0, LBA1, LBA2, DEVICE].map(inb);
  return { clock, irq, disk, store, inb, inw, inl, outb, outw, outl, complete, issue, readSector, writeSector, taskFile };
}

const sectorOf = (store: BlockStore, lba: number) => store.read(lba, 1);
const word = (block: Uint8Array, i: number) => block[2 * i] | (block[2 * i + 1] << 8);

describe("AtaDisk: power-on and ports", () => {
  it("decodes 0x1F0-0x1F7 and 0x3F6 and sits on the port bus", () => {
    const { disk } = rig();
    expect(disk.ports).toEqual([[0x1f0, 0x1f8], [0x3f6, 0x3f7]]);
    const bus = new PortBus();
    bus.attach(disk);
    expect(bus.read(STATUS, 1)).toBe(0x50);
    expect(bus.read(0x3f7, 1)).toBe(0xff); // 0x3F7 is not the disk's (the floppy controller's on a PC)
  });

  it("starts ready, with the ATA signature and diagnostic code 01h, no interrupt and nothing scheduled", () => {
    const { inb, taskFile, irq, disk } = rig();
    expect(inb(STATUS)).toBe(0x50);
    expect(inb(ALT)).toBe(0x50);
    expect(taskFile()).toEqual([0x01, 0x01, 0x01, 0x00, 0x00, 0xa0]);
    expect(irq.events).toEqual([]);
    expect(disk.nextEventNs()).toBeNull();
    expect(disk.currentPhase()).toBe("idle");
  });

  it("reads the device register with bits 7 and 5 set, and keeps the other task-file registers as written", () => {
    const { inb, outb } = rig();
    outb(DEVICE, 0x12);
    expect(inb(DEVICE)).toBe(0xb2);
    outb(DEVICE, 0x4f);
    expect(inb(DEVICE)).toBe(0xef);
    outb(COUNT, 0x55);
    outb(LBA0, 0xaa);
    outb(LBA1, 0x12);
    outb(LBA2, 0x34);
    expect([inb(COUNT), inb(LBA0), inb(LBA1), inb(LBA2)]).toEqual([0x55, 0xaa, 0x12, 0x34]);
    outb(FEATURES, 0x33); // features is write-only: the error register is unchanged
    expect(inb(ERROR)).toBe(0x01);
  });

  it("splits 16- and 32-bit accesses to the 8-bit registers into byte accesses", () => {
    const { inw, inl, outw, outl, inb } = rig();
    outw(COUNT, 0x3456);
    expect([inb(COUNT), inb(LBA0)]).toEqual([0x56, 0x34]);
    expect(inw(COUNT)).toBe(0x3456);
    expect(inw(STATUS)).toBe(0xff50); // 0x1F8 is not the disk's
    expect(inw(ALT)).toBe(0xff50);
    outl(LBA0, 0x04030201); // LBA0, LBA1, LBA2, DEVICE
    expect(inl(LBA0)).toBe(0xa4030201);
  });

  it("reads the data port as 0 and ignores data writes when there is no DRQ", () => {
    const { inb, inw, inl, outw, disk } = rig();
    expect([inw(DATA), inl(DATA), inb(DATA)]).toEqual([0, 0, 0]);
    outw(DATA, 0x1234);
    expect(disk.currentPhase()).toBe("idle");
    expect(inb(STATUS)).toBe(0x50);
  });
});

describe("AtaDisk: IDENTIFY DEVICE", () => {
  it("is BSY until the machine completes it, then DRQ with an interrupt, then 256 words of identify data", () => {
    const { issue, inb, disk, clock, irq, readSector } = rig(patterned(20000));
    const t0 = clock.t;
    issue(0xec);
    expect(inb(ALT)).toBe(0xd0);
    expect(disk.nextEventNs()).toBe(t0 + DEFAULT_ATA_TIMING.identifyNs);
    disk.advance(t0 + DEFAULT_ATA_TIMING.identifyNs - 1); // not yet due
    expect(inb(ALT) & BSY).toBe(BSY);
    expect(irq.events).toEqual([]);
    disk.advance(t0 + DEFAULT_ATA_TIMING.identifyNs);
    expect(inb(ALT)).toBe(0x58);
    expect(irq.events).toEqual(["raise"]);
    expect(inb(STATUS)).toBe(0x58); // acknowledges the interrupt
    expect(irq.events).toEqual(["raise", "lower"]);
    const block = readSector();
    expect(block).toEqual(disk.identify());
    expect(inb(STATUS)).toBe(0x50);
    expect(disk.nextEventNs()).toBeNull();
    expect(irq.events).toEqual(["raise", "lower"]); // no interrupt at the end of a data-in command
  });

  it("describes the disk: ATA fixed device, model, serial, firmware, LBA28 capacity, LBA capability, checksum", () => {
    const { disk } = rig(patterned(20000), { model: "Test Disk Model", serial: "SN-42", firmware: "9.8" });
    const id = disk.identify();
    expect(word(id, 0)).toBe(0x0040);
    expect(identifyString(id, 27, 20)).toBe("Test Disk Model");
    expect(identifyString(id, 10, 10)).toBe("SN-42");
    expect(identifyString(id, 23, 4)).toBe("9.8");
    // ATA strings put the first character of each pair in the high byte: "Te" is 0x5465.
    expect(word(id, 27)).toBe(0x5465);
    expect(word(id, 60) | (word(id, 61) << 16)).toBe(20000);
    expect(word(id, 49) & 0x0200).toBe(0x0200); // LBA supported
    expect(word(id, 49) & 0x0100).toBe(0); // no DMA
    expect(word(id, 83) & 0xc000).toBe(0x4000); // words 82-84 valid
    expect(word(id, 83) & 0x1000).toBe(0x1000); // FLUSH CACHE
    expect(word(id, 83) & 0x0400).toBe(0); // no 48-bit addressing
    expect([word(id, 1), word(id, 3), word(id, 6)]).toEqual([19, 16, 63]); // nominal CHS geometry
    expect(id[510]).toBe(0xa5);
    expect(id.reduce((s, b) => s + b, 0) % 256).toBe(0);
  });

  it("has default strings and caps the capacity at 2^28 - 1 sectors", () => {
    const huge: BlockStore = {
      sectors: 2 ** 28 + 5,
      read: () => { throw new Error("not read"); },
      write: () => { throw new Error("not written"); },
      flush: () => {},
      identity: () => "huge",
      close: () => {},
    };
    const { disk } = rig(huge);
    expect(disk.sectors).toBe(LBA28_MAX_SECTORS);
    const id = disk.identify();
    expect(word(id, 60) | (word(id, 61) << 16)).toBe(LBA28_MAX_SECTORS);
    expect(word(id, 1)).toBe(16383);
    expect(identifyString(id, 27, 20)).toBe("LOCKSTEP VIRTUAL DISK");
    expect(identifyString(id, 10, 10)).toBe("LOCKSTEP0001");
  });

  it("refuses strings that do not fit or are not printable ASCII, and bad timings", () => {
    expect(() => rig(undefined, { model: "x".repeat(41) })).toThrow(/model must be at most 40/);
    expect(() => rig(undefined, { serial: "é" })).toThrow(/serial/);
    expect(() => rig(undefined, { timing: { sectorNs: -1 } })).toThrow(/timing.sectorNs/);
    expect(() => buildIdentify({ sectors: 1, model: "", serial: "", firmware: "" })).not.toThrow();
  });
});

describe("AtaDisk: READ SECTORS", () => {
  it("reads a multi-sector run: one DRQ block and one interrupt per sector, the store read only at completion", () => {
    const r = rig();
    const image = r.store.bytes();
    const read = vi.spyOn(r.store, "read");
    r.issue(0x20, 5, 3);
    expect(r.inb(ALT)).toBe(0xd0);
    expect(read).not.toHaveBeenCalled();
    expect(r.disk.pending()).toMatchObject({ op: "read", lba: 5 });
    for (let s = 0; s < 3; s++) {
      const due = r.disk.nextEventNs()!;
      expect(due).toBe(r.clock.t + DEFAULT_ATA_TIMING.sectorNs);
      r.complete();
      expect(read).toHaveBeenCalledTimes(s + 1);
      expect(read).toHaveBeenLastCalledWith(5 + s, 1);
      expect(r.irq.raises).toBe(s + 1);
      expect(r.inb(STATUS)).toBe(0x58);
      expect(r.irq.level).toBe(false);
      // QEMU steps the registers as each sector is loaded: count down, LBA up.
      expect([r.inb(COUNT), r.inb(LBA0)]).toEqual([2 - s, 6 + s]);
      expect(r.readSector(s === 1 ? 4 : 2)).toEqual(image.subarray((5 + s) * 512, (6 + s) * 512));
      expect(r.inb(ALT)).toBe(s < 2 ? 0xd0 : 0x50);
    }
    expect(r.disk.nextEventNs()).toBeNull();
    expect(r.irq.raises).toBe(3);
    expect(r.taskFile()).toEqual([0x00, 0x00, 0x08, 0x00, 0x00, 0xe0]);
  });

  it("takes a sector count of 0 as 256 sectors", () => {
    const r = rig(patterned(300));
    r.issue(0x20, 10, 0);
    for (let s = 0; s < 256; s++) {
      r.complete();
      expect(r.inb(STATUS)).toBe(0x58);
      expect(r.inb(COUNT)).toBe((255 - s) & 0xff);
      expect(r.readSector(4)).toEqual(sectorOf(r.store, 10 + s));
    }
    expect(r.inb(STATUS)).toBe(0x50);
    expect(r.irq.raises).toBe(256);
    expect([r.inb(LBA0), r.inb(LBA1)]).toEqual([0x0a, 0x01]); // next LBA: 266 = 0x10A
  });

  it("moves a whole word per byte read of the data port (as QEMU), low byte returned", () => {
    const r = rig();
    r.issue(0x20, 1, 1);
    r.complete();
    const expected = sectorOf(r.store, 1);
    const got: number[] = [];
    for (let i = 0; i < 256; i++) got.push(r.inb(DATA));
    expect(got).toEqual(Array.from({ length: 256 }, (_, i) => expected[2 * i]));
    expect(r.inb(STATUS)).toBe(0x50);
  });

  it("carries the LBA into the device register's low nibble", () => {
    const store: BlockStore = { sectors: 0x1000010, read: () => new Uint8Array(512), write: () => {}, flush: () => {}, identity: () => "", close: () => {} };
    const r = rig(store);
    r.issue(0x20, 0xffffff, 2);
    r.complete();
    expect(r.taskFile()).toEqual([0x00, 0x01, 0x00, 0x00, 0x00, 0xe1]);
    r.readSector();
    r.complete();
    expect(r.taskFile()).toEqual([0x00, 0x00, 0x01, 0x00, 0x00, 0xe1]);
  });
});

describe("AtaDisk: WRITE SECTORS", () => {
  it("asks for the first sector at once, commits each sector only at completion, interrupts after each", () => {
    const r = rig(new MemoryBlockStore(32));
    const write = vi.spyOn(r.store, "write");
    const data = [0, 1].map((s) => Uint8Array.from({ length: 512 }, (_, i) => (i * 3 + s * 101) & 0xff));
    r.issue(0x30, 10, 2);
    expect(r.inb(ALT)).toBe(0x58); // DRQ without BSY, and no interrupt for the first block
    expect(r.irq.events).toEqual([]);
    expect(r.disk.nextEventNs()).toBeNull();
    r.writeSector(data[0]);
    expect(r.inb(ALT)).toBe(0xd0);
    expect(r.disk.pending()).toMatchObject({ op: "write", lba: 10 });
    expect(write).not.toHaveBeenCalled();
    expect(sectorOf(r.store, 10)).toEqual(new Uint8Array(512));
    r.complete();
    expect(write).toHaveBeenCalledTimes(1);
    expect(sectorOf(r.store, 10)).toEqual(data[0]);
    expect(r.irq.raises).toBe(1);
    expect(r.inb(STATUS)).toBe(0x58);
    expect([r.inb(COUNT), r.inb(LBA0)]).toEqual([1, 11]);
    r.writeSector(data[1], 4);
    r.complete();
    expect(r.irq.raises).toBe(2);
    expect(r.inb(STATUS)).toBe(0x50);
    expect([r.inb(COUNT), r.inb(LBA0)]).toEqual([0, 12]);
    expect(sectorOf(r.store, 11)).toEqual(data[1]);
    expect(r.store.read(9, 1)).toEqual(new Uint8Array(512));
    expect(r.store.read(12, 1)).toEqual(new Uint8Array(512));
  });

  it("ignores byte writes to the data port (as QEMU)", () => {
    const r = rig(new MemoryBlockStore(4));
    r.issue(0x30, 0, 1);
    for (let i = 0; i < 512; i++) r.outb(DATA, 0x77);
    expect(r.inb(ALT)).toBe(0x58);
    expect(r.disk.nextEventNs()).toBeNull();
    r.writeSector(new Uint8Array(512).fill(5));
    r.complete();
    expect(r.store.read(0, 1)).toEqual(new Uint8Array(512).fill(5));
  });

  it("writes then reads back 256 sectors (count 0)", () => {
    const r = rig(new MemoryBlockStore(300));
    const sector = (s: number) => Uint8Array.from({ length: 512 }, (_, i) => (s ^ (i * 5)) & 0xff);
    r.issue(0x30, 40, 0);
    for (let s = 0; s < 256; s++) {
      expect(r.inb(ALT)).toBe(0x58);
      r.writeSector(sector(s), s % 2 ? 4 : 2);
      r.complete();
      expect(r.inb(STATUS)).toBe(s < 255 ? 0x58 : 0x50); // acknowledge, so that the next interrupt is a new edge
    }
    expect(r.inb(STATUS)).toBe(0x50);
    expect(r.irq.raises).toBe(256);
    r.issue(0x20, 40, 0);
    for (let s = 0; s < 256; s++) {
      r.complete();
      expect(r.readSector()).toEqual(sector(s));
    }
    expect(r.store.read(39, 1)).toEqual(new Uint8Array(512));
    expect(r.store.read(296, 1)).toEqual(new Uint8Array(512));
  });
});

describe("AtaDisk: CACHE FLUSH, aborts and refusals", () => {
  it("flushes the store at completion and interrupts", () => {
    const r = rig();
    const flush = vi.spyOn(r.store, "flush");
    r.issue(0xe7);
    expect(r.inb(ALT)).toBe(0xd0);
    expect(flush).not.toHaveBeenCalled();
    expect(r.disk.nextEventNs()).toBe(r.clock.t + DEFAULT_ATA_TIMING.flushNs);
    r.complete();
    expect(flush).toHaveBeenCalledTimes(1);
    expect(r.inb(ALT)).toBe(0x50);
    expect(r.irq.events).toEqual(["raise"]);
  });

  it.each([0x00, 0x21, 0x31, 0x91, 0xa1, 0xc4, 0xef, 0xff])("aborts command 0x%s with ERR and ABRT at once, with an interrupt", (cmd) => {
    const r = rig();
    r.issue(cmd);
    expect(r.inb(ALT)).toBe(0x41);
    expect(r.inb(ERROR)).toBe(0x04);
    expect(r.disk.nextEventNs()).toBeNull();
    expect(r.irq.events).toEqual(["raise"]);
    r.issue(0xe7); // the next command clears ERR and the error register, and acknowledges the interrupt
    expect(r.irq.events).toEqual(["raise", "lower"]);
    r.complete();
    expect([r.inb(STATUS), r.inb(ERROR)]).toEqual([0x50, 0x00]);
  });

  it("aborts a transfer that does not fit on the disk, before touching the store, leaving the registers", () => {
    const r = rig(patterned(64));
    const read = vi.spyOn(r.store, "read");
    const write = vi.spyOn(r.store, "write");
    for (const [cmd, lba, count] of [[0x20, 63, 2], [0x30, 63, 2], [0x20, 64, 1], [0x30, 0, 0], [0x20, 0x0fffffff, 1]]) {
      r.issue(cmd, lba, count);
      expect(r.inb(STATUS)).toBe(0x41);
      expect(r.inb(ERROR)).toBe(0x04);
      expect(r.inb(COUNT)).toBe(count & 0xff);
      expect(r.inb(LBA0)).toBe(lba & 0xff);
    }
    expect(read).not.toHaveBeenCalled();
    expect(write).not.toHaveBeenCalled();
    r.issue(0x20, 63, 1); // the last sector is fine
    r.complete();
    expect(r.readSector()).toEqual(sectorOf(r.store, 63));
  });

  it("refuses CHS addressing (device register without the LBA bit)", () => {
    const r = rig();
    r.issue(0x20, 1, 1, 0xa0);
    expect(r.inb(STATUS)).toBe(0x41);
    expect(r.inb(ERROR)).toBe(0x04);
  });

  it("ignores task-file and command writes while BSY or DRQ", () => {
    const r = rig();
    r.issue(0x20, 2, 2);
    r.outb(COUNT, 0x77);
    r.outb(COMMAND, 0xec);
    expect(r.disk.pending()).toMatchObject({ op: "read", lba: 2 });
    r.complete();
    r.outb(COUNT, 0x77);
    r.outb(LBA0, 0x77);
    r.outb(DEVICE, 0xf0);
    r.outb(COMMAND, 0xec);
    expect(r.taskFile()).toEqual([0x00, 0x01, 0x03, 0x00, 0x00, 0xe0]);
    expect(r.inb(STATUS)).toBe(0x58);
    expect(r.readSector()).toEqual(sectorOf(r.store, 2));
  });
});

describe("AtaDisk: interrupts and the device control register", () => {
  it("with nIEN set keeps the interrupt pending off the line; clearing nIEN drives it; a status read clears it", () => {
    const r = rig();
    r.outb(CONTROL, 0x02);
    r.issue(0xe7);
    r.complete();
    expect(r.irq.events).toEqual([]);
    r.outb(CONTROL, 0x00);
    expect(r.irq.events).toEqual(["raise"]);
    r.outb(CONTROL, 0x02);
    expect(r.irq.events).toEqual(["raise", "lower"]);
    r.inb(STATUS);
    r.outb(CONTROL, 0x00);
    expect(r.irq.events).toEqual(["raise", "lower"]);
  });

  it("the alternate status register does not acknowledge the interrupt", () => {
    const r = rig();
    r.issue(0xe7);
    r.complete();
    expect(r.inb(ALT)).toBe(0x50);
    expect(r.irq.level).toBe(true);
    expect(r.inb(STATUS)).toBe(0x50);
    expect(r.irq.level).toBe(false);
  });

  it("a software reset abandons a transfer, is BSY until completed, and restores the signature without an interrupt", () => {
    const r = rig();
    r.issue(0x20, 3, 4);
    r.complete();
    r.inw(DATA);
    r.outb(CONTROL, 0x04);
    expect(r.irq.events).toEqual(["raise", "lower"]);
    expect(r.inb(ALT) & BSY).toBe(BSY);
    expect(r.disk.nextEventNs()).toBeNull(); // nothing completes while SRST is set
    expect(r.disk.currentPhase()).toBe("reset");
    r.outb(COMMAND, 0xec); // ignored: BSY
    r.outb(CONTROL, 0x00);
    expect(r.disk.nextEventNs()).toBe(r.clock.t + DEFAULT_ATA_TIMING.resetNs);
    expect(r.inb(ALT) & BSY).toBe(BSY);
    r.complete();
    expect(r.inb(STATUS)).toBe(0x50);
    expect(r.taskFile()).toEqual([0x01, 0x01, 0x01, 0x00, 0x00, 0xa0]);
    expect(r.irq.events).toEqual(["raise", "lower"]);
    expect(r.inw(DATA)).toBe(0);
    r.issue(0x20, 3, 1);
    r.complete();
    expect(r.readSector()).toEqual(sectorOf(r.store, 3));
  });

  it("setting SRST again before the reset completes starts it over", () => {
    const r = rig();
    r.outb(CONTROL, 0x04);
    r.outb(CONTROL, 0x00);
    r.clock.t += 5;
    r.outb(CONTROL, 0x04);
    expect(r.disk.nextEventNs()).toBeNull();
    r.outb(CONTROL, 0x00);
    expect(r.disk.nextEventNs()).toBe(r.clock.t + DEFAULT_ATA_TIMING.resetNs);
  });
});

describe("AtaDisk: the absent slave", () => {
  it("reads status 0 when selected, ignores commands, shares the task file", () => {
    const r = rig();
    r.outb(DEVICE, 0xf0);
    expect(r.inb(STATUS)).toBe(0x00);
    expect(r.inb(ALT)).toBe(0x00);
    r.outb(COUNT, 0x55);
    r.outb(LBA0, 0xaa);
    expect([r.inb(COUNT), r.inb(LBA0)]).toEqual([0x55, 0xaa]);
    r.outb(COMMAND, 0xec);
    r.outb(COMMAND, 0x20);
    expect(r.disk.nextEventNs()).toBeNull();
    expect(r.irq.events).toEqual([]);
    r.outb(DEVICE, 0xe0);
    expect(r.inb(STATUS)).toBe(0x50);
    expect(r.inb(ERROR)).toBe(0x01);
  });

  it("the master's pending interrupt is off the line while the slave is selected", () => {
    const r = rig();
    r.issue(0xe7);
    r.complete();
    expect(r.irq.level).toBe(true);
    r.outb(DEVICE, 0xb0);
    expect(r.irq.level).toBe(false);
    expect(r.inb(STATUS)).toBe(0); // the slave's status read does not acknowledge the master
    r.outb(DEVICE, 0xa0);
    expect(r.irq.events).toEqual(["raise", "lower", "raise"]);
    expect(r.inb(STATUS)).toBe(0x50);
    expect(r.irq.level).toBe(false);
  });
});

describe("AtaDisk: completion as a separate step", () => {
  it("completeNow() completes the scheduled operation before its due time and reports it", () => {
    const r = rig();
    expect(r.disk.completeNow()).toBeNull();
    r.issue(0x20, 7, 1);
    const due = r.disk.nextEventNs()!;
    expect(r.disk.completeNow()).toEqual({ op: "read", lba: 7, dueNs: due });
    expect(r.inb(STATUS)).toBe(0x58);
    expect(r.readSector()).toEqual(sectorOf(r.store, 7));
  });

  it("honours the timing options", () => {
    const r = rig(undefined, { timing: { sectorNs: 123, identifyNs: 0 } });
    r.issue(0x20, 0, 2);
    expect(r.disk.nextEventNs()).toBe(r.clock.t + 123);
    r.complete();
    r.clock.t += 1000;
    r.readSector();
    expect(r.disk.nextEventNs()).toBe(r.clock.t + 123);
    r.complete();
    r.readSector();
    r.issue(0xec);
    expect(r.disk.nextEventNs()).toBe(r.clock.t); // zero delay: still completed by the machine
    expect(r.inb(ALT)).toBe(0xd0);
    r.disk.advance(r.clock.t);
    expect(r.inb(ALT)).toBe(0x58);
    expect(r.disk.timing).toEqual({ ...DEFAULT_ATA_TIMING, sectorNs: 123, identifyNs: 0 });
  });
});

describe("AtaDisk: saveState / loadState", () => {
  it("a disk restored mid-transfer carries on exactly like the original", () => {
    const a = rig(new MemoryBlockStore(16));
    const payload = Uint8Array.from({ length: 3 * 512 }, (_, i) => (i * 11) & 0xff);
    a.issue(0x30, 4, 3);
    a.writeSector(payload.subarray(0, 512));
    a.complete();
    for (let i = 0; i < 100; i++) a.outw(DATA, payload[512 + 2 * i] | (payload[513 + 2 * i] << 8));
    const state = JSON.parse(JSON.stringify(a.disk.saveState())) as AtaDiskState;
    expect(state.phase).toBe("data-out");
    expect(state.bufferPos).toBe(200);
    expect(state.intrq).toBe(true);
    expect(JSON.stringify(state).length).toBeLessThan(2000); // the buffer, not the disk

    const b = rig(new MemoryBlockStore(a.store.bytes()));
    b.clock.t = a.clock.t;
    b.irq.level = state.line; // the interrupt controller restores its input level itself
    b.disk.loadState(state);
    expect(b.irq.events).toEqual([]); // the line level is state, not an event
    expect(b.disk.saveState()).toEqual(a.disk.saveState());
    for (const r of [a, b]) {
      for (let i = 100; i < 256; i++) r.outw(DATA, payload[512 + 2 * i] | (payload[513 + 2 * i] << 8));
      r.complete();
      r.writeSector(payload.subarray(1024));
      r.complete();
      expect(r.inb(STATUS)).toBe(0x50);
    }
    expect(b.store.bytes()).toEqual(a.store.bytes());
    expect(b.store.read(4, 3)).toEqual(payload);
    expect(b.disk.saveState()).toEqual(a.disk.saveState());
  });

  it("keeps a scheduled operation and its due time", () => {
    const a = rig();
    a.issue(0x20, 9, 1);
    const b = rig();
    b.disk.loadState(a.disk.saveState());
    expect(b.disk.nextEventNs()).toBe(a.disk.nextEventNs());
    b.complete();
    expect(b.readSector()).toEqual(sectorOf(b.store, 9));
  });

  it("refuses malformed states", () => {
    const { disk } = rig();
    const good = disk.saveState();
    expect(() => disk.loadState(null)).toThrow(/bad saved state/);
    expect(() => disk.loadState({ ...good, version: 2 })).toThrow(/version/);
    expect(() => disk.loadState({ ...good, status: 256 })).toThrow(/status/);
    expect(() => disk.loadState({ ...good, phase: "dancing" })).toThrow(/phase/);
    expect(() => disk.loadState({ ...good, buffer: "00" })).toThrow(/buffer/);
    expect(() => disk.loadState({ ...good, bufferPos: 3 })).toThrow(/bufferPos/);
    expect(() => disk.loadState({ ...good, pending: { op: "nap", dueNs: 0 } })).toThrow(/pending/);
    expect(disk.saveState()).toEqual(good);
  });
});

describe("AtaDisk: determinism and protocol invariants under random port traffic", () => {
  /** xorshift32 */
  const rng = (seed: number) => () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const PORTS = [0x1f0, 0x1f1, 0x1f2, 0x1f3, 0x1f4, 0x1f5, 0x1f6, 0x1f7, 0x3f6];
  const COMMANDS = [0x20, 0x30, 0xe7, 0xec, 0x00, 0xc4];

  type Op = ["r", number, AccessSize] | ["w", number, AccessSize, number] | ["t", number] | ["R" | "W", number, AccessSize] | ["c", number, number, number];

  function script(seed: number, steps: number): Op[] {
    const rand = rng(seed);
    const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)];
    const ops: Op[] = [];
    for (let i = 0; i < steps; i++) {
      const x = rand();
      if (x < 0.15) ops.push(["t", Math.floor(rand() * 30_000)]);
      else if (x < 0.2) ops.push(["c", pick(COMMANDS), Math.floor(rand() * 34), pick([0, 1, 2, 3])]); // a driver-like command
      else if (x < 0.3) ops.push([rand() < 0.5 ? "R" : "W", 1 + Math.floor(rand() * 300), pick([1, 2, 4, 2] as AccessSize[])]); // a burst on the data port
      else if (x < 0.6) ops.push(["r", pick(PORTS), pick([1, 2, 4, 2, 2] as AccessSize[])]);
      else {
        const port = pick(PORTS);
        const value =
          port === 0x1f7 ? pick(COMMANDS)
          : port === 0x1f6 ? pick([0xe0, 0xe0, 0xe0, 0xf0, 0xa0])
          : port === 0x1f2 ? pick([0, 1, 2, 3])
          : port === 0x1f3 ? Math.floor(rand() * 40)
          : port === 0x3f6 ? pick([0, 0, 0, 0, 0, 2, 2, 4])
          : port === 0x1f4 || port === 0x1f5 ? pick([0, 0, 0, 1])
          : Math.floor(rand() * 0x100000000);
        ops.push(["w", port, pick([1, 1, 1, 2, 4] as AccessSize[]), value >>> 0]);
      }
    }
    return ops;
  }

  function play(ops: Op[]) {
    const r = rig(patterned(32));
    const trace: unknown[] = [];
    const done: Record<string, number> = {};
    let k = 0;
    for (const op of ops) {
      if (op[0] === "t") {
        r.clock.t += op[1];
        const p = r.disk.pending();
        if (p && p.dueNs <= r.clock.t) done[p.op] = (done[p.op] ?? 0) + 1;
        r.disk.advance(r.clock.t);
      } else if (op[0] === "r") trace.push(r.disk.read(op[1], op[2]));
      else if (op[0] === "w") r.disk.write(op[1], op[2], op[3]);
      else if (op[0] === "c") r.issue(op[1], op[2], op[3]);
      else if (op[0] === "R") for (let i = 0; i < op[1]; i++) trace.push(r.disk.read(DATA, op[2]));
      else for (let i = 0; i < op[1]; i++) r.disk.write(DATA, op[2], (k++ * 0x9e3779b1) >>> 0);
      // Invariants: BSY exactly while an operation is scheduled or SRST is in force; DRQ exactly in a data phase.
      const st = r.disk.saveState();
      const phase = st.phase;
      expect((st.status & BSY) !== 0, JSON.stringify(op)).toBe(phase === "busy" || phase === "reset");
      expect(st.pending !== null).toBe(phase === "busy" || (phase === "reset" && (st.control & 0x04) === 0));
      expect((st.status & DRQ) !== 0).toBe(phase === "data-in" || phase === "data-out");
      expect((st.status & ERR) !== 0).toBe(st.error === 0x04 && phase === "idle");
      expect(r.irq.level).toBe(st.intrq && (st.control & 0x02) === 0 && (st.device & 0x10) === 0);
    }
    trace.push(r.irq.events, r.disk.saveState(), r.store.bytes());
    return { trace, done };
  }

  it.each([1, 2, 3, 4, 5, 6, 7, 8])("seed %i: two runs of the same accesses and clock values agree exactly", (seed) => {
    const ops = script(seed, 3000);
    const a = play(ops);
    expect(play(ops)).toEqual(a);
    // The traffic reaches every kind of completion.
    for (const op of ["identify", "read", "write", "flush", "reset"]) expect(a.done[op], op).toBeGreaterThan(0);
  });
});
