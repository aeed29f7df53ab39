// The Linux/x86 boot protocol, 32-bit entry (the kernel's
// Documentation/arch/x86/boot.rst, "32-bit boot protocol"): what a boot
// loader does for a bzImage when it skips the real-mode setup code and the
// BIOS, as lockstep has neither.
//
//   bzImage: boot sector and setup code ((setup_sects + 1) * 512 bytes, the
//            setup header at 0x1F1), then the protected-mode kernel (the
//            compressed kernel and its decompressor)
//   -> the protected-mode kernel is copied to 1 MiB (LOAD_ADDR)
//   -> a zero page (struct boot_params, 4 KiB) is built at ZERO_PAGE_ADDR:
//      the setup header copied from the image, then the fields a loader
//      fills: type_of_loader, cmd_line_ptr, the initrd's address and size,
//      the e820 memory map from the RAM size
//   -> the command line at CMDLINE_ADDR, the initrd (if any) at the top of
//      the RAM the kernel allows for it
//   -> the kernel is entered at code32_start with ESI = the zero page, in
//      flat 32-bit protected mode, paging off, interrupts off, EBP = EDI =
//      EBX = 0 (the engine's reset state gives flat 4 GiB segments; the
//      decompressor loads its own GDT before it touches a selector)
//
// prepareLinuxBoot() checks everything and computes the layout without
// writing; loadLinux() writes it. A refused image is a LoadError naming the
// field and its offset in the file.

import { LoadError, type GuestRam } from "./elf.js";
import type { BootImage, InitialCpuState, LoadedRegion } from "./multiboot.js";
import { INITIAL_EFLAGS } from "./multiboot.js";

/** Where the protected-mode kernel is loaded (boot.rst: "at 0x100000"). */
export const LOAD_ADDR = 0x100000;
/** The zero page (struct boot_params). Below 640 KiB, clear of the BIOS areas lockstep does not have anyway. */
export const ZERO_PAGE_ADDR = 0x10000;
export const ZERO_PAGE_SIZE = 0x1000;
/** The command line, right after the zero page. */
export const CMDLINE_ADDR = 0x11000;
/** The e820 map: usable below EBDA_START, reserved from there to 1 MiB (where a PC has its ROMs), usable above. */
export const EBDA_START = 0x9f000;
/** The oldest protocol accepted: 2.06 is the first with cmdline_size (boot.rst). */
export const MIN_PROTOCOL = 0x0206;
/** type_of_loader: 0xFF, "undefined" (boot.rst), as lockstep has no assigned loader ID. */
export const LOADER_TYPE = 0xff;

/** Setup header offsets, the same in the file and in the zero page (boot.rst, "The real-mode kernel header"). */
export const HDR = {
  setupSects: 0x1f1, syssize: 0x1f4, bootFlag: 0x1fe, jump: 0x200, header: 0x202, version: 0x206,
  typeOfLoader: 0x210, loadflags: 0x211, code32Start: 0x214, ramdiskImage: 0x218, ramdiskSize: 0x21c,
  cmdLinePtr: 0x228, initrdAddrMax: 0x22c, kernelAlignment: 0x230, relocatableKernel: 0x234,
  cmdlineSize: 0x238, prefAddress: 0x258, initSize: 0x260,
} as const;
/** Zero page fields outside the setup header (arch/x86/include/uapi/asm/bootparam.h). */
export const ZP = { altMemK: 0x1e0, e820Entries: 0x1e8, e820Table: 0x2d0 } as const;
export const E820_ENTRY_SIZE = 20;
export const E820_USABLE = 1;
export const E820_RESERVED = 2;
const HDRS_MAGIC = 0x53726448; // "HdrS"
const LOADED_HIGH = 0x01;

export interface LinuxBootOptions {
  cmdline?: string;
  initrd?: Uint8Array;
}

export interface E820Entry { addr: number; size: number; type: number }

export interface LinuxBoot extends BootImage {
  kind: "linux";
  /** Boot protocol version, e.g. 0x020f. */
  protocol: number;
  setupBytes: number;
  zeroPage: Uint8Array;
  cmdline: string;
  initrd: { addr: number; size: number } | null;
  e820: E820Entry[];
}

const hex = (n: number) => `0x${n.toString(16)}`;
const bad = (problem: string, offset: number) => new LoadError(problem, offset, "Linux bzImage");

/** Whether the file carries a Linux setup header (boot flag 0xAA55 and "HdrS"). */
export function isBzImage(file: Uint8Array): boolean {
  if (file.length < HDR.header + 4) return false;
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  return v.getUint16(HDR.bootFlag, true) === 0xaa55 && v.getUint32(HDR.header, true) === HDRS_MAGIC;
}

/** The e820 map lockstep reports for `ramSize` bytes of RAM. */
export function e820Map(ramSize: number): E820Entry[] {
  return [
    { addr: 0, size: EBDA_START, type: E820_USABLE },
    { addr: EBDA_START, size: LOAD_ADDR - EBDA_START, type: E820_RESERVED },
    { addr: LOAD_ADDR, size: ramSize - LOAD_ADDR, type: E820_USABLE },
  ];
}

/** Checks `file` and computes where everything goes; writes nothing. */
export function prepareLinuxBoot(file: Uint8Array, ramSize: number, opts: LinuxBootOptions = {}): LinuxBoot {
  if (!isBzImage(file)) throw bad("no Linux setup header (boot flag 0xAA55 at 0x1fe and \"HdrS\" at 0x202)", HDR.bootFlag);
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const protocol = v.getUint16(HDR.version, true);
  if (protocol < MIN_PROTOCOL) {
    throw bad(`boot protocol ${protocol >> 8}.${(protocol & 0xff).toString().padStart(2, "0")} is older than 2.06, the oldest this loader takes`, HDR.version);
  }
  // The header runs from 0x1F1 to 0x202 plus the jump's displacement byte (boot.rst).
  const hdrEnd = 0x202 + file[HDR.jump + 1]!;
  const setupSects = file[HDR.setupSects]! === 0 ? 4 : file[HDR.setupSects]!;
  const setupBytes = (setupSects + 1) * 512;
  if (hdrEnd > setupBytes || hdrEnd > ZERO_PAGE_SIZE) throw bad(`the setup header's length (jump to ${hex(hdrEnd)}) runs past the setup code (${setupBytes} bytes)`, HDR.jump);
  if (file.length <= setupBytes) throw bad(`the file (${file.length} bytes) ends inside its setup code (${setupSects} sectors + the boot sector): no protected-mode kernel`, HDR.setupSects);
  const loadflags = file[HDR.loadflags]!;
  if ((loadflags & LOADED_HIGH) === 0) throw bad("loadflags bit 0 (LOADED_HIGH) is clear: a zImage, loaded at 0x10000, which this loader does not take", HDR.loadflags);
  const code32 = v.getUint32(HDR.code32Start, true);
  const kernelBytes = file.length - setupBytes;
  if (code32 < LOAD_ADDR || code32 >= LOAD_ADDR + kernelBytes) {
    throw bad(`code32_start ${hex(code32)} is outside the protected-mode kernel as loaded at ${hex(LOAD_ADDR)} (${kernelBytes} bytes)`, HDR.code32Start);
  }
  // The decompressor works in place up to init_size past its load address, and past the address it prefers.
  const initSize = protocol >= 0x020a ? v.getUint32(HDR.initSize, true) : kernelBytes;
  const pref = protocol >= 0x020a ? Number(v.getBigUint64(HDR.prefAddress, true)) : LOAD_ADDR;
  const needTop = Math.max(LOAD_ADDR, pref) + Math.max(initSize, kernelBytes);
  if (needTop > ramSize) {
    throw bad(`the kernel needs RAM up to ${hex(needTop)} (preferred address ${hex(pref)} + init_size ${hex(initSize)}); the machine has ${hex(ramSize)} (--mem)`, HDR.initSize);
  }

  const cmdline = opts.cmdline ?? "";
  const cmdBytes = new TextEncoder().encode(cmdline);
  const cmdlineMax = v.getUint32(HDR.cmdlineSize, true);
  if (cmdBytes.includes(0)) throw new LoadError("the kernel command line contains a NUL byte", 0, "Linux command line");
  if (cmdBytes.length > cmdlineMax) throw new LoadError(`the kernel command line is ${cmdBytes.length} bytes; this kernel takes at most ${cmdlineMax} (cmdline_size)`, HDR.cmdlineSize, "Linux command line");

  let initrd: LinuxBoot["initrd"] = null;
  if (opts.initrd && opts.initrd.length > 0) {
    // As high as the kernel allows (initrd_addr_max) and RAM reaches, page aligned, clear of the decompressor's space.
    const max = Math.min(v.getUint32(HDR.initrdAddrMax, true) + 1, ramSize);
    const addr = Math.floor((max - opts.initrd.length) / 4096) * 4096;
    if (addr < needTop) {
      throw new LoadError(`the initrd (${opts.initrd.length} bytes) does not fit between the kernel's space (up to ${hex(needTop)}) and ${hex(max)} (initrd_addr_max or the RAM's end): give the machine more --mem`, 0, "initrd");
    }
    initrd = { addr, size: opts.initrd.length };
  }

  const e820 = e820Map(ramSize);
  const zp = new Uint8Array(ZERO_PAGE_SIZE);
  const z = new DataView(zp.buffer);
  zp.set(file.subarray(HDR.setupSects, hdrEnd), HDR.setupSects);
  zp[HDR.typeOfLoader] = LOADER_TYPE;
  // No heap for real-mode setup code (it is not run) and no "quiet": only LOADED_HIGH stays as the image says.
  zp[HDR.loadflags] = loadflags & ~0x80;
  z.setUint32(HDR.cmdLinePtr, CMDLINE_ADDR, true);
  z.setUint32(HDR.ramdiskImage, initrd?.addr ?? 0, true);
  z.setUint32(HDR.ramdiskSize, initrd?.size ?? 0, true);
  z.setUint32(ZP.altMemK, Math.floor((ramSize - LOAD_ADDR) / 1024), true);
  zp[ZP.e820Entries] = e820.length;
  e820.forEach((e, i) => {
    const at = ZP.e820Table + i * E820_ENTRY_SIZE;
    z.setBigUint64(at, BigInt(e.addr), true);
    z.setBigUint64(at + 8, BigInt(e.size), true);
    z.setUint32(at + 16, e.type, true);
  });

  const regions: LoadedRegion[] = [{ start: LOAD_ADDR, end: LOAD_ADDR + kernelBytes, fileOffset: setupBytes, fileSize: kernelBytes, name: "the protected-mode kernel", describedAt: HDR.setupSects }];
  const state: InitialCpuState = { eip: code32, eflags: INITIAL_EFLAGS, eax: 0, ecx: 0, edx: 0, ebx: 0, esp: ZERO_PAGE_ADDR, ebp: 0, esi: ZERO_PAGE_ADDR, edi: 0 };
  return { kind: "linux", entry: code32, regions, header: null, elf: null, info: null, state, protocol, setupBytes, zeroPage: zp, cmdline, initrd, e820 };
}

/** Loads a bzImage as prepareLinuxBoot lays it out. Nothing is written if the image is refused. */
export function loadLinux(ram: GuestRam, file: Uint8Array, opts: LinuxBootOptions = {}): LinuxBoot {
  const boot = prepareLinuxBoot(file, ram.ramSize, opts);
  const k = boot.regions[0]!;
  ram.writeMem(k.start, file.subarray(k.fileOffset, k.fileOffset + k.fileSize));
  ram.writeMem(ZERO_PAGE_ADDR, boot.zeroPage);
  ram.writeMem(CMDLINE_ADDR, Uint8Array.of(...new TextEncoder().encode(boot.cmdline), 0));
  if (boot.initrd) ram.writeMem(boot.initrd.addr, opts.initrd!);
  return boot;
}
