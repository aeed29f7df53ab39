// The Linux boot protocol's 32-bit entry (host/machine/linux-boot.ts), on
// small bzImages built here: a setup header with the fields a 32-bit loader
// reads, and a protected-mode "kernel" of hand-assembled code that prints
// the command line it finds through ESI (the zero page's cmd_line_ptr) to
// COM1 and writes the e820 entry count to the exit port. So the layout, the
// zero page and the entry state are checked from inside a running guest, on
// both engines, and every refusal names its field.

import { describe, expect, it } from "vitest";
import { LoadError } from "../host/machine/elf.js";
import {
  CMDLINE_ADDR, E820_ENTRY_SIZE, E820_RESERVED, E820_USABLE, HDR, isBzImage, LOAD_ADDR, loadLinux, prepareLinuxBoot, ZERO_PAGE_ADDR, ZP,
} from "../host/machine/linux-boot.js";
import { bootLive } from "../host/node/boot.js";
import { freshEngine } from "./helpers/machine.js";

const MiB = 1 << 20;

// esi = zero page: print the NUL-terminated command line at [esi+0x228] to
// COM1, then write the e820 entry count ([esi+0x1e8]) to the exit port.
const KERNEL = [
  0x8b, 0x9e, 0x28, 0x02, 0x00, 0x00, //  0: mov ebx, [esi+0x228]
  0x8a, 0x03, //                          6: mov al, [ebx]
  0x84, 0xc0, //                          8: test al, al
  0x74, 0x08, //                         10: jz 20
  0x66, 0xba, 0xf8, 0x03, //             12: mov dx, 0x3f8
  0xee, //                               16: out dx, al
  0x43, //                               17: inc ebx
  0xeb, 0xf2, //                         18: jmp 6
  0x0f, 0xb6, 0x86, 0xe8, 0x01, 0x00, 0x00, // 20: movzx eax, byte [esi+0x1e8]
  0x66, 0xba, 0xf4, 0x00, //             27: mov dx, 0xf4
  0xee, //                               31: out dx, al
  0xf4, //                               32: hlt
];

interface ImageOptions { version?: number; loadflags?: number; code32?: number; cmdlineSize?: number; initSize?: number; pref?: number; initrdMax?: number; setupSects?: number; magic?: number }

/** A bzImage: boot sector + `setupSects` setup sectors, the header at 0x1F1, then the kernel. */
function bzImage(o: ImageOptions = {}): Uint8Array {
  const sects = o.setupSects ?? 1;
  const setup = ((sects === 0 ? 4 : sects) + 1) * 512;
  const f = new Uint8Array(setup + KERNEL.length);
  const v = new DataView(f.buffer);
  f[HDR.setupSects] = sects;
  v.setUint16(HDR.bootFlag, 0xaa55, true);
  f[HDR.jump] = 0xeb;
  f[HDR.jump + 1] = 0x66; // the header runs to 0x268
  v.setUint32(HDR.header, o.magic ?? 0x53726448, true);
  v.setUint16(HDR.version, o.version ?? 0x020f, true);
  f[HDR.loadflags] = o.loadflags ?? 0x01;
  v.setUint32(HDR.code32Start, o.code32 ?? LOAD_ADDR, true);
  v.setUint32(HDR.initrdAddrMax, o.initrdMax ?? 0x37ffffff, true);
  v.setUint32(HDR.cmdlineSize, o.cmdlineSize ?? 2047, true);
  v.setBigUint64(HDR.prefAddress, BigInt(o.pref ?? LOAD_ADDR), true);
  v.setUint32(HDR.initSize, o.initSize ?? 0x10000, true);
  f.set(KERNEL, setup);
  return f;
}

const refusal = (f: () => unknown): LoadError => {
  try {
    f();
  } catch (e) {
    if (e instanceof LoadError) return e;
    throw e;
  }
  throw new Error("not refused");
};

describe("a bzImage booted by the 32-bit protocol", () => {
  it.each(["wasm", "ts"] as const)("the %s engine enters at code32_start with ESI at the zero page: the guest reads the command line and the e820 map through it", async (engine) => {
    let out = "";
    let exit: number | null = null;
    const m = await bootLive(bzImage(), { engine, ramSize: 4 * MiB, clock: "virtual", cmdline: "console=ttyS0 root=/dev/ram0", onSerial: (b) => (out += String.fromCharCode(b)), onExit: (s) => (exit = s) });
    const r = m.runSync(10_000);
    expect(r.reason).toBe("exit-port");
    expect(out).toBe("console=ttyS0 root=/dev/ram0");
    expect(exit).toBe(3);
    m.dispose();
  });

  it("the zero page holds the image's setup header, the loader's fields and the e820 map; the kernel is at 1 MiB", async () => {
    const e = await freshEngine("wasm", 8 * MiB);
    const file = bzImage();
    const initrd = new Uint8Array(10_000).map((_, i) => i & 0xff);
    const b = loadLinux(e, file, { cmdline: "quiet", initrd });
    const zp = e.readMem(ZERO_PAGE_ADDR, 4096);
    const z = new DataView(zp.buffer, zp.byteOffset);
    // The header as the image has it, but for what the loader writes.
    expect(z.getUint32(HDR.header, true)).toBe(0x53726448);
    expect(z.getUint16(HDR.version, true)).toBe(0x020f);
    expect(zp[HDR.typeOfLoader]).toBe(0xff);
    expect(z.getUint32(HDR.cmdLinePtr, true)).toBe(CMDLINE_ADDR);
    expect(new TextDecoder().decode(e.readMem(CMDLINE_ADDR, 6))).toBe("quiet\0");
    // The initrd at the top of RAM (below initrd_addr_max), page aligned, its bytes there.
    expect(b.initrd).toEqual({ addr: 8 * MiB - 12288, size: 10_000 });
    expect(z.getUint32(HDR.ramdiskImage, true)).toBe(8 * MiB - 12288);
    expect(z.getUint32(HDR.ramdiskSize, true)).toBe(10_000);
    expect(e.readMem(b.initrd!.addr, 10_000)).toEqual(initrd);
    expect(z.getUint32(ZP.altMemK, true)).toBe(7 * 1024);
    const map = Array.from({ length: zp[ZP.e820Entries]! }, (_, i) => {
      const at = ZP.e820Table + i * E820_ENTRY_SIZE;
      return [Number(z.getBigUint64(at, true)), Number(z.getBigUint64(at + 8, true)), z.getUint32(at + 16, true)];
    });
    expect(map).toEqual([[0, 0x9f000, E820_USABLE], [0x9f000, 0x61000, E820_RESERVED], [MiB, 7 * MiB, E820_USABLE]]);
    expect(e.readMem(LOAD_ADDR, KERNEL.length)).toEqual(Uint8Array.from(KERNEL));
    expect(b.state).toMatchObject({ eip: LOAD_ADDR, esi: ZERO_PAGE_ADDR, ebx: 0, ebp: 0, edi: 0, eflags: 0x2 });
  });

  it("tells a bzImage from other images by its boot flag and HdrS", () => {
    expect(isBzImage(bzImage())).toBe(true);
    expect(isBzImage(bzImage({ magic: 0x12345678 }))).toBe(false);
    expect(isBzImage(new Uint8Array(100))).toBe(false);
  });

  it("refuses what it cannot boot, naming the field and its offset; nothing is written", async () => {
    const e = await freshEngine("wasm", 4 * MiB);
    const cases: [string, () => unknown, RegExp, number][] = [
      ["not a bzImage", () => prepareLinuxBoot(bzImage({ magic: 0 }), 4 * MiB), /no Linux setup header/, HDR.bootFlag],
      ["protocol 2.05", () => prepareLinuxBoot(bzImage({ version: 0x0205 }), 4 * MiB), /boot protocol 2\.05 is older than 2\.06/, HDR.version],
      ["a zImage", () => prepareLinuxBoot(bzImage({ loadflags: 0 }), 4 * MiB), /LOADED_HIGH\) is clear/, HDR.loadflags],
      ["code32_start outside", () => prepareLinuxBoot(bzImage({ code32: 0x200000 }), 4 * MiB), /code32_start 0x200000 is outside/, HDR.code32Start],
      ["RAM too small", () => prepareLinuxBoot(bzImage({ pref: 0x1000000 }), 4 * MiB), /needs RAM up to 0x1010000 .* the machine has 0x400000/, HDR.initSize],
      ["command line too long", () => prepareLinuxBoot(bzImage({ cmdlineSize: 4 }), 4 * MiB, { cmdline: "hello" }), /5 bytes; this kernel takes at most 4/, HDR.cmdlineSize],
      ["initrd too big", () => prepareLinuxBoot(bzImage(), 4 * MiB, { initrd: new Uint8Array(3 * MiB) }), /the initrd \(3145728 bytes\) does not fit/, 0],
      ["setup runs past the file", () => prepareLinuxBoot(bzImage().subarray(0, 1024), 4 * MiB), /ends inside its setup code/, HDR.setupSects],
    ];
    for (const [what, f, msg, offset] of cases) {
      const err = refusal(f);
      expect(err.message, what).toMatch(msg);
      expect(err.offset, what).toBe(offset);
    }
    expect(() => loadLinux(e, bzImage({ loadflags: 0 }))).toThrow(LoadError);
    expect(e.readMem(LOAD_ADDR, 4)).toEqual(new Uint8Array(4));
    expect(e.readMem(ZERO_PAGE_ADDR, 4096).every((x) => x === 0)).toBe(true);
  });
});
