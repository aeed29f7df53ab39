// The disk guests against QEMU's IDE disk, the reference for the lockstep
// ATA disk: disk.elf passes on QEMU with the same output (bar the identify
// strings) and leaves the same bytes on the image as on lockstep; diskregs.elf
// prints on QEMU the register transcript the unit tests hold the lockstep disk
// to (tests/devices/diskregs-qemu.txt); and `make` rebuilds both images byte
// for byte. Needs qemu-system-x86, gcc-multilib and make; under CI a missing
// one, or a gcc other than guests/TOOLCHAIN's, fails (tests/system/host-tools.ts).

import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DISK_16M_BODY, diskPattern } from "../helpers/ata-machine.js";
import { GCC_M32, MAKE, QEMU, requireHost, requireTools } from "./host-tools.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const guests = join(root, "guests");
const tmp = mkdtempSync(join(tmpdir(), "lockstep-disk-sys-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The command line of the issue, with a disk image. */
function qemu(elf: string, image: string) {
  return spawnSync("qemu-system-i386", [
    "-kernel", join(guests, "bin", elf),
    "-drive", `file=${image},format=raw,if=ide,index=0`,
    "-display", "none", "-debugcon", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
    "-no-reboot", "-monitor", "none",
  ], { encoding: "latin1", timeout: 120_000 });
}

describe("disk guests on QEMU", () => {
  it("disk.elf passes on an image made by lockstep disk create, and writes exactly the pattern", (ctx) => {
    requireTools(ctx, QEMU);
    const image = join(tmp, "disk.img");
    execFileSync(process.execPath, [join(root, "bin", "lockstep.mjs"), "disk", "create", image, "--size", "16M"]);
    const r = qemu("disk.elf", image);
    expect(r.stdout).toBe(
      "disk: ATA PIO test, 300 sectors from LBA 64\n" +
      'identify: model "QEMU HARDDISK" serial "QM00001" firmware "2.5+"\n' +
      "identify: LBA supported, checksum not given\n" +
      DISK_16M_BODY,
    );
    expect(r.status).toBe(1); // isa-debug-exit: (0 << 1) | 1
    const img = readFileSync(image);
    expect(img.length).toBe(16 << 20);
    for (let lba = 0; lba < 32768; lba++) {
      const sector = img.subarray(lba * 512, lba * 512 + 512);
      if (lba >= 64 && lba < 364) expect(new Uint8Array(sector), `sector ${lba}`).toEqual(diskPattern(lba));
      else if (sector.some((b) => b !== 0)) expect.fail(`sector ${lba} was written`);
    }
  });

  it("disk.elf exits 2 without a disk", (ctx) => {
    requireTools(ctx, QEMU);
    const r = spawnSync("qemu-system-i386", [
      "-kernel", join(guests, "bin", "disk.elf"), "-display", "none", "-debugcon", "stdio",
      "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot", "-monitor", "none",
    ], { encoding: "latin1", timeout: 120_000 });
    expect(r.stdout).toMatch(/\nreset: no ATA disk .*\nFAIL\n$/);
    expect(r.status).toBe(5); // (2 << 1) | 1
  });

  it("diskregs.elf prints the transcript the lockstep disk is tested against", (ctx) => {
    requireTools(ctx, QEMU);
    const image = join(tmp, "regs.img");
    writeFileSync(image, new Uint8Array(1 << 20));
    const r = qemu("diskregs.elf", image);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(readFileSync(join(root, "tests", "devices", "diskregs-qemu.txt"), "latin1"));
  });
});

describe("disk guest images", () => {
  it("rebuild byte for byte from the sources", (ctx) => {
    requireTools(ctx, MAKE, GCC_M32);
    const dir = join(tmp, "guests");
    cpSync(guests, dir, { recursive: true, filter: (src) => !src.startsWith(join(guests, "build")) });
    execFileSync("make", ["-C", dir, "clean"], { stdio: "ignore" });
    execFileSync("make", ["-C", dir, "bin/disk.elf", "bin/diskregs.elf"], { stdio: "pipe" });
    const gcc = execFileSync("gcc", ["--version"], { encoding: "utf8" }).split("\n")[0];
    const recorded = readFileSync(join(guests, "TOOLCHAIN"), "utf8").trim();
    for (const elf of ["disk.elf", "diskregs.elf"]) expect(readFileSync(join(dir, "bin", elf)).length, `${elf} built empty`).toBeGreaterThan(0);
    requireHost(ctx, gcc === recorded,
      `gcc is "${gcc}" but guests/TOOLCHAIN records "${recorded}": the committed ELFs can only be compared ` +
      "with that compiler (Debian 12's gcc-multilib); install it, or rebuild and commit the guests (npm run build:guests)");
    for (const elf of ["disk.elf", "diskregs.elf"]) {
      expect(readFileSync(join(dir, "bin", elf)).equals(readFileSync(join(guests, "bin", elf))), `guests/bin/${elf} is not what the sources build: run npm run build:guests`).toBe(true);
    }
  });
});
