// The disk guests (guests/bin/disk.elf, diskregs.elf) on both engines with
// the ATA disk on the port bus (tests/helpers/ata-machine.ts): the driver's
// whole write / flush / read-back / error sequence, the bytes it leaves on
// the medium, determinism, and the register probe against the transcript
// QEMU's IDE disk printed for the same image (tests/devices/diskregs-qemu.txt,
// re-checked against QEMU by tests/system/disk.test.ts).

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { MemoryBlockStore } from "../../host/devices/block-store.js";
import { ENGINE_KINDS } from "../../host/engine/engine.js";
import { DISK_16M_BODY, diskPattern, runDiskGuest, type DiskRun } from "../helpers/ata-machine.js";

const file = (p: string) => new Uint8Array(readFileSync(fileURLToPath(new URL(p, import.meta.url))));
const DISK_ELF = file("../../guests/bin/disk.elf");
const REGS_ELF = file("../../guests/bin/diskregs.elf");
const QEMU_REGS = readFileSync(fileURLToPath(new URL("diskregs-qemu.txt", import.meta.url)), "latin1");

const DISK_16M_OUTPUT = `disk: ATA PIO test, 300 sectors from LBA 64
identify: model "LOCKSTEP VIRTUAL DISK" serial "LOCKSTEP0001" firmware "1.0"
identify: LBA supported, checksum ok
${DISK_16M_BODY}`;

/** A 16M disk whose sectors all hold 0xC3 bytes, so the test sees exactly which sectors the guest wrote. */
const dirtyDisk = () => new MemoryBlockStore(new Uint8Array(32768 * 512).fill(0xc3));

const runs = new Map<string, { run: DiskRun; store: MemoryBlockStore }>();
beforeAll(async () => {
  for (const kind of ENGINE_KINDS) {
    const store = dirtyDisk();
    runs.set(kind, { run: await runDiskGuest(kind, DISK_ELF, store), store });
  }
});

describe.each(ENGINE_KINDS)("disk.elf on the %s engine", (kind) => {
  it("identifies the disk, writes, flushes, reads back 300 sectors, gets the error past the end, and passes", () => {
    const { run: r, store } = runs.get(kind)!;
    expect(r.stop).toBe("");
    expect(r.output).toBe(DISK_16M_OUTPUT);
    expect(r.exitStatus).toBe(0);
    expect(r.irqRaises).toBe(0); // the driver polls with nIEN set
    // The medium: the pattern on LBA 64-363, everything else untouched.
    const img = store.bytes();
    for (let lba = 0; lba < 32768; lba++) {
      const sector = img.subarray(lba * 512, lba * 512 + 512);
      if (lba >= 64 && lba < 364) expect(sector, `sector ${lba}`).toEqual(diskPattern(lba));
      else if (sector.some((b) => b !== 0xc3)) expect.fail(`sector ${lba} was written`);
    }
  });
});

describe("disk.elf", () => {
  it("runs the same instructions and ends in the same disk state on both engines and on a repeat", async () => {
    const again = await runDiskGuest("wasm", DISK_ELF, dirtyDisk());
    const all = [...runs.values()].map((x) => x.run).concat(again);
    for (const r of all) {
      expect(r.output).toBe(DISK_16M_OUTPUT);
      expect(r.instructions).toBe(all[0].instructions);
      expect(r.disk.saveState()).toEqual(all[0].disk.saveState());
    }
  });

  it("prints the same whatever the disk's delays (only the instruction count changes)", async () => {
    const fast = await runDiskGuest("wasm", DISK_ELF, new MemoryBlockStore(32768), { timing: { sectorNs: 0, identifyNs: 0, flushNs: 0, resetNs: 0 } });
    const slow = await runDiskGuest("wasm", DISK_ELF, new MemoryBlockStore(32768), { timing: { sectorNs: 25_000, flushNs: 1_000_000 } });
    expect(fast.output).toBe(DISK_16M_OUTPUT);
    expect(slow.output).toBe(DISK_16M_OUTPUT);
    expect(slow.instructions).toBeGreaterThan(fast.instructions);
  });

  it("exits 2 on a disk too small for its test region", async () => {
    const r = await runDiskGuest("wasm", DISK_ELF, new MemoryBlockStore(300));
    expect(r.exitStatus).toBe(2);
    expect(r.output).toMatch(/\nsectors: 300 \(150 KiB\)\nthe disk is too small: 364 sectors needed\nFAIL\n$/);
  });
});

describe("diskregs.elf", () => {
  it.each(ENGINE_KINDS)("prints, on the %s engine, the register transcript QEMU's IDE disk printed", async (kind) => {
    const r = await runDiskGuest(kind, REGS_ELF, new MemoryBlockStore(2048));
    expect(r.exitStatus).toBe(0);
    expect(r.output).toBe(QEMU_REGS);
  });
});
