// Booting a guest image the way QEMU's -kernel option does: a Multiboot v1
// kernel (specification 0.6.96), or a plain static ELF32 executable.
//
//   image with a valid Multiboot header in its first 8 KiB
//     header flag 16 set -> loaded by the header's address fields ("a.out kludge")
//     otherwise          -> must be ELF: loaded by its PT_LOAD segments
//     then the boot information structure is written at MB_INFO_ADDR and the
//     kernel is entered with EAX = 0x2BADB002, EBX = MB_INFO_ADDR
//   ELF image without a header -> loaded by its segments, entered with
//     EAX = EBX = 0 and a stack at the top of RAM
//
// prepareBoot() validates everything against the RAM size and computes the
// layout without writing anything; loadMultiboot() then writes the image and the
// information structure through writeMem (so pages are marked dirty). Every
// refused image is a LoadError (ELF problems: its subclass ElfError) naming
// the problem and the file offset at fault.
//
// The initial CPU state: EIP = entry, EFLAGS = 0x2 (interrupts off), the
// other general registers 0, flat 4 GiB segments (the engine's reset state:
// base 0, limit 4 GiB, 32-bit; the selectors are left at 0 -- a Multiboot
// kernel must load its own GDT before it reloads a segment register), and
// ESP = the top of RAM. The Multiboot spec leaves ESP undefined (the kernel
// sets up its own stack); a plain ELF gets this stack, and the loader refuses
// one whose segments reach into the top STACK_RESERVE bytes of RAM.

import type { Engine } from "../engine/engine.js";
import {
  checkFitsRam, findMultiboot, isElf, LoadError, MULTIBOOT_BOOTLOADER_MAGIC, MULTIBOOT_HEADER_MAGIC,
  MULTIBOOT_SEARCH, parseElf, type ElfImage, type GuestRam, type MultibootHeader,
} from "./elf.js";

export { LoadError, MULTIBOOT_BOOTLOADER_MAGIC };

/** Where the boot information block (structure, memory map, strings) starts. */
export const MB_INFO_ADDR = 0x8000;
/** It must end below this (the top of conventional memory, 640 KiB). */
export const LOW_MEMORY_END = 0xa0000;
/** Bytes reserved for the structure itself (88 in spec 0.6.96; later fields stay zero). */
export const MB_INFO_STRUCT_SIZE = 128;
/** The boot_loader_name string. */
export const BOOT_LOADER_NAME = "lockstep";
/** A plain ELF's segments must stay out of the top 64 KiB of RAM, where its stack grows down from. */
export const STACK_RESERVE = 0x10000;
/** EFLAGS at entry: only the always-one bit 1; IF clear. */
export const INITIAL_EFLAGS = 0x2;

// Header flags (what the kernel asks for).
const MBH_PAGE_ALIGN = 1 << 0;
const MBH_MEMORY_INFO = 1 << 1;
const MBH_VIDEO_MODE = 1 << 2;
const MBH_ADDRESS_FIELDS = 1 << 16;
/** Requirement bits (0-15) this loader meets: page-aligned modules (there are none) and memory information. */
const MBH_REQUIREMENTS_MET = MBH_PAGE_ALIGN | MBH_MEMORY_INFO;

// Information structure flags (which fields are valid).
export const MBI_MEMORY = 1 << 0;
export const MBI_CMDLINE = 1 << 2;
export const MBI_MEM_MAP = 1 << 6;
export const MBI_LOADER_NAME = 1 << 9;

// Field offsets in the information structure.
export const MBI = {
  flags: 0, memLower: 4, memUpper: 8, bootDevice: 12, cmdline: 16, modsCount: 20, modsAddr: 24,
  mmapLength: 44, mmapAddr: 48, bootLoaderName: 64,
} as const;
/** A memory map entry: size (u32, = 20, not counting itself), base (u64), length (u64), type (u32). */
export const MMAP_ENTRY_SIZE = 24;
export const MMAP_AVAILABLE = 1;

export interface BootOptions {
  /** The kernel command line (UTF-8, no NUL). Default "". */
  cmdline?: string;
  /** Pass a memory map (info flag 6). Default true. */
  memoryMap?: boolean;
}

export type BootKind = "multiboot-elf" | "multiboot-aout" | "elf" | "linux";

/** One range of guest memory the image occupies: fileSize bytes from the file at fileOffset, then zeros up to end. */
export interface LoadedRegion {
  start: number;
  end: number;
  fileOffset: number;
  fileSize: number;
  /** For messages: "segment 1", "the image" (a.out kludge). */
  name: string;
  /** File offset of the structure that placed it (program header or Multiboot header). */
  describedAt: number;
}

export interface MemoryRegion {
  base: number;
  length: number;
  type: number;
}

/** The boot information block as written to guest RAM. */
export interface MultibootInfo {
  /** Address of the structure (EBX) and the end of the whole block (structure, memory map, strings). */
  addr: number;
  end: number;
  flags: number;
  memLower: number;
  memUpper: number;
  cmdline: string;
  cmdlineAddr: number;
  /** Empty (and the addresses 0) when BootOptions.memoryMap is false. */
  mmap: MemoryRegion[];
  mmapAddr: number;
  mmapLength: number;
  loaderNameAddr: number;
  /** The bytes of the block, written at addr. */
  bytes: Uint8Array;
}

export interface InitialCpuState {
  eip: number;
  eflags: number;
  eax: number;
  ecx: number;
  edx: number;
  ebx: number;
  esp: number;
  ebp: number;
  esi: number;
  edi: number;
}

export interface BootImage {
  kind: BootKind;
  entry: number;
  regions: LoadedRegion[];
  /** The Multiboot header (null for a plain ELF). */
  header: MultibootHeader | null;
  /** The parsed ELF (null for the a.out kludge). */
  elf: ElfImage | null;
  /** The boot information (null for a plain ELF). */
  info: MultibootInfo | null;
  state: InitialCpuState;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const range = (a: number, b: number) => `[${hex(a)}, ${hex(b)})`;
const mbError = (problem: string, offset: number) => new LoadError(problem, offset, "Multiboot image");

/**
 * The first valid Multiboot header in the first 8 KiB, checked strictly: a
 * magic whose checksum is wrong is an error unless a later valid header
 * follows, and so is a header the file cuts short. Null if there is no magic.
 */
export function scanMultibootHeader(file: Uint8Array): MultibootHeader | null {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const limit = Math.min(file.length, MULTIBOOT_SEARCH);
  let badChecksum = -1;
  let badSum = 0;
  for (let at = 0; at + 4 <= limit; at += 4) {
    if (dv.getUint32(at, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    if (at + 12 > MULTIBOOT_SEARCH) break; // a header must lie wholly in the first 8 KiB
    if (at + 12 > file.length) {
      throw mbError(`truncated file: the Multiboot header at ${hex(at)} needs 12 bytes, the file ends at ${hex(file.length)}`, at);
    }
    const flags = dv.getUint32(at + 4, true);
    const sum = (MULTIBOOT_HEADER_MAGIC + flags + dv.getUint32(at + 8, true)) >>> 0;
    if (sum !== 0) {
      if (badChecksum < 0) [badChecksum, badSum] = [at, sum];
      continue;
    }
    const size = flags & MBH_VIDEO_MODE ? 48 : flags & MBH_ADDRESS_FIELDS ? 32 : 12;
    if (at + size > file.length) {
      throw mbError(`truncated file: the Multiboot header at ${hex(at)} (flags ${hex(flags)}) is ${size} bytes, the file ends at ${hex(file.length)}`, at);
    }
    if (at + size > MULTIBOOT_SEARCH) {
      throw mbError(`the Multiboot header at ${hex(at)} (flags ${hex(flags)}, ${size} bytes) runs past the first 8 KiB`, at);
    }
    const header = findMultiboot(file);
    if (!header || header.offset !== at) throw new Error(`scanMultibootHeader: disagrees with findMultiboot at ${hex(at)}`);
    return header;
  }
  if (badChecksum >= 0) {
    throw mbError(`bad Multiboot header checksum: magic + flags + checksum = ${hex(badSum)}, must be 0`, badChecksum + 8);
  }
  return null;
}

/** The a.out-kludge layout from the header's address fields (flag 16). */
function kludgeRegion(file: Uint8Array, h: MultibootHeader, ramSize: number): { region: LoadedRegion; entry: number } {
  const f = h.addressFields!;
  const at = h.offset;
  if (f.headerAddr < f.loadAddr) {
    throw mbError(`header_addr ${hex(f.headerAddr)} is below load_addr ${hex(f.loadAddr)}`, at + 12);
  }
  const before = f.headerAddr - f.loadAddr; // bytes loaded before the header
  if (before > at) {
    throw mbError(`load_addr ${hex(f.loadAddr)} is ${hex(before)} bytes before header_addr, but the header is at file offset ${hex(at)}`, at + 16);
  }
  const fileOffset = at - before;
  let loadEnd: number;
  if (f.loadEndAddr === 0) {
    loadEnd = f.loadAddr + (file.length - fileOffset); // load_end_addr 0: the rest of the file
  } else {
    if (f.loadEndAddr <= f.loadAddr) {
      throw mbError(`load_end_addr ${hex(f.loadEndAddr)} is not above load_addr ${hex(f.loadAddr)}`, at + 20);
    }
    loadEnd = f.loadEndAddr;
    if (fileOffset + (loadEnd - f.loadAddr) > file.length) {
      throw mbError(
        `truncated file: load_addr..load_end_addr needs file bytes ${range(fileOffset, fileOffset + loadEnd - f.loadAddr)} but the file is ${file.length} bytes`,
        at + 20,
      );
    }
  }
  let end = loadEnd;
  if (f.bssEndAddr !== 0) {
    if (f.bssEndAddr < loadEnd) {
      throw mbError(`bss_end_addr ${hex(f.bssEndAddr)} is below the end of the loaded data ${hex(loadEnd)}`, at + 24);
    }
    end = f.bssEndAddr;
  }
  if (end > 2 ** 32) throw mbError(`the image ${range(f.loadAddr, end)} wraps past the 4 GiB address space`, at + 16);
  if (f.entryAddr < f.loadAddr || f.entryAddr >= loadEnd) {
    throw mbError(`entry_addr ${hex(f.entryAddr)} is not inside the loaded image ${range(f.loadAddr, loadEnd)}`, at + 28);
  }
  if (end > ramSize) {
    throw mbError(`the image ${range(f.loadAddr, end)} is outside RAM [0, ${hex(ramSize)})`, at + 16);
  }
  return {
    region: { start: f.loadAddr, end, fileOffset, fileSize: loadEnd - f.loadAddr, name: "the image", describedAt: at },
    entry: f.entryAddr,
  };
}

function elfRegions(elf: ElfImage): LoadedRegion[] {
  return elf.segments
    .filter((s) => s.memSize > 0)
    .map((s) => ({
      start: s.paddr, end: s.paddr + s.memSize, fileOffset: s.fileOffset, fileSize: s.fileSize,
      name: `segment ${s.index}`, describedAt: s.phdrOffset,
    }));
}

/** The available-RAM regions reported in the memory map: low memory and everything from 1 MiB up. */
export function memoryMap(ramSize: number): MemoryRegion[] {
  const map: MemoryRegion[] = [{ base: 0, length: Math.min(ramSize, LOW_MEMORY_END), type: MMAP_AVAILABLE }];
  if (ramSize > 0x100000) map.push({ base: 0x100000, length: ramSize - 0x100000, type: MMAP_AVAILABLE });
  return map;
}

/** Lays out the information block at MB_INFO_ADDR: structure, memory map, loader name, command line. */
function buildInfo(ramSize: number, opts: BootOptions): MultibootInfo {
  const cmdline = opts.cmdline ?? "";
  if (cmdline.includes("\0")) throw new RangeError("the command line must not contain NUL characters");
  const cmd = new TextEncoder().encode(cmdline);
  const name = new TextEncoder().encode(BOOT_LOADER_NAME);
  const mmap = opts.memoryMap ?? true ? memoryMap(ramSize) : [];

  const mmapOff = MB_INFO_STRUCT_SIZE;
  const nameOff = mmapOff + mmap.length * MMAP_ENTRY_SIZE;
  const cmdOff = nameOff + name.length + 1;
  const size = cmdOff + cmd.length + 1;
  const addr = MB_INFO_ADDR;

  const memLower = Math.min(640, Math.floor(ramSize / 1024));
  const memUpper = ramSize > 0x100000 ? Math.floor((ramSize - 0x100000) / 1024) : 0;
  let flags = MBI_MEMORY | MBI_CMDLINE | MBI_LOADER_NAME;
  if (mmap.length > 0) flags |= MBI_MEM_MAP;

  const bytes = new Uint8Array(size);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(MBI.flags, flags, true);
  dv.setUint32(MBI.memLower, memLower, true);
  dv.setUint32(MBI.memUpper, memUpper, true);
  dv.setUint32(MBI.cmdline, addr + cmdOff, true);
  if (mmap.length > 0) {
    dv.setUint32(MBI.mmapLength, mmap.length * MMAP_ENTRY_SIZE, true);
    dv.setUint32(MBI.mmapAddr, addr + mmapOff, true);
  }
  dv.setUint32(MBI.bootLoaderName, addr + nameOff, true);
  mmap.forEach((r, i) => {
    const at = mmapOff + i * MMAP_ENTRY_SIZE;
    dv.setUint32(at, MMAP_ENTRY_SIZE - 4, true);
    dv.setBigUint64(at + 4, BigInt(r.base), true);
    dv.setBigUint64(at + 12, BigInt(r.length), true);
    dv.setUint32(at + 20, r.type, true);
  });
  bytes.set(name, nameOff);
  bytes.set(cmd, cmdOff);

  return {
    addr, end: addr + size, flags, memLower, memUpper, cmdline, cmdlineAddr: addr + cmdOff,
    mmap, mmapAddr: mmap.length > 0 ? addr + mmapOff : 0, mmapLength: mmap.length * MMAP_ENTRY_SIZE,
    loaderNameAddr: addr + nameOff, bytes,
  };
}

/** Checks that the information block fits below 640 KiB, in RAM, clear of the image. */
function placeInfo(info: MultibootInfo, regions: LoadedRegion[], ramSize: number, header: MultibootHeader): void {
  const limit = Math.min(LOW_MEMORY_END, ramSize);
  if (info.end > limit) {
    throw mbError(
      `the boot information (${info.end - info.addr} bytes, with a ${info.end - info.cmdlineAddr - 1}-byte command line) ` +
        `does not fit in ${range(info.addr, limit)}`,
      header.offset,
    );
  }
  for (const r of regions) {
    if (r.start < info.end && info.addr < r.end) {
      throw mbError(
        `the boot information ${range(info.addr, info.end)} would overlap ${r.name} ${range(r.start, r.end)} of the image`,
        r.describedAt,
      );
    }
  }
}

/** Validates `file` for a machine with ramSize bytes of RAM and computes where everything goes. Writes nothing. */
export function prepareBoot(file: Uint8Array, ramSize: number, opts: BootOptions = {}): BootImage {
  const header = scanMultibootHeader(file);
  const top = ramSize >>> 0 === ramSize ? ramSize : 0; // ESP: top of RAM (4 GiB wraps to 0)
  const state: InitialCpuState = { eip: 0, eflags: INITIAL_EFLAGS, eax: 0, ecx: 0, edx: 0, ebx: 0, esp: top, ebp: 0, esi: 0, edi: 0 };

  if (!header) {
    if (!isElf(file)) throw new LoadError("neither an ELF file nor a Multiboot image (no Multiboot header in the first 8 KiB)", 0);
    const elf = parseElf(file);
    checkFitsRam(elf, ramSize);
    const regions = elfRegions(elf);
    for (const r of regions) {
      if (r.end > ramSize - STACK_RESERVE) {
        throw new LoadError(
          `no room for the initial stack: ${r.name} ${range(r.start, r.end)} reaches into the top ${STACK_RESERVE / 1024} KiB of RAM ` +
            `${range(ramSize - STACK_RESERVE, ramSize)}, below ESP ${hex(top)}`,
          r.describedAt + 12,
          "ELF image",
        );
      }
    }
    state.eip = elf.entry;
    return { kind: "elf", entry: elf.entry, regions, header: null, elf, info: null, state };
  }

  const requirements = header.flags & 0xffff;
  if (requirements & MBH_VIDEO_MODE) {
    throw mbError("the kernel requires a video mode (header flags bit 2): lockstep has no display", header.offset + 4);
  }
  const unknown = requirements & ~MBH_REQUIREMENTS_MET;
  if (unknown) {
    const bits = Array.from({ length: 16 }, (_, i) => i).filter((i) => unknown & (1 << i));
    throw mbError(`the kernel requires features this loader does not know (header flags bit${bits.length > 1 ? "s" : ""} ${bits.join(", ")})`, header.offset + 4);
  }

  let kind: BootKind;
  let elf: ElfImage | null = null;
  let regions: LoadedRegion[];
  let entry: number;
  if (header.flags & MBH_ADDRESS_FIELDS) {
    // The address fields take precedence over any executable format (spec 3.1.3).
    const k = kludgeRegion(file, header, ramSize);
    kind = "multiboot-aout";
    regions = [k.region];
    entry = k.entry;
  } else {
    if (!isElf(file)) {
      throw mbError("not an ELF file, and the Multiboot header gives no load addresses (flags bit 16 clear)", header.offset + 4);
    }
    elf = parseElf(file);
    checkFitsRam(elf, ramSize);
    kind = "multiboot-elf";
    regions = elfRegions(elf);
    entry = elf.entry;
  }

  const info = buildInfo(ramSize, opts);
  placeInfo(info, regions, ramSize, header);
  state.eip = entry;
  state.eax = MULTIBOOT_BOOTLOADER_MAGIC;
  state.ebx = info.addr;
  return { kind, entry, regions, header, elf, info, state };
}

/**
 * Loads `file` into RAM as QEMU's -kernel would (see the top of this file)
 * and returns the layout and the initial CPU state. Nothing is written if
 * the image is refused (LoadError). RAM outside the image and the
 * information block is left as it was.
 */
export function loadMultiboot(ram: GuestRam, file: Uint8Array, opts: BootOptions = {}): BootImage {
  const boot = prepareBoot(file, ram.ramSize, opts);
  for (const r of boot.regions) {
    if (r.fileSize > 0) ram.writeMem(r.start, file.subarray(r.fileOffset, r.fileOffset + r.fileSize));
    const zeros = r.end - r.start - r.fileSize;
    if (zeros > 0) ram.writeMem(r.start + r.fileSize, new Uint8Array(zeros));
  }
  if (boot.info) ram.writeMem(boot.info.addr, boot.info.bytes);
  return boot;
}

/**
 * Puts the engine into the initial state: the general registers, EIP and
 * EFLAGS. Segments are not touched: call engine.reset() first (flat 4 GiB
 * segments, no GDT or IDT), then loadMultiboot, then this.
 */
export function applyBootState(engine: Engine, s: InitialCpuState): void {
  [s.eax, s.ecx, s.edx, s.ebx, s.esp, s.ebp, s.esi, s.edi].forEach((v, i) => engine.setReg(i, v >>> 0));
  engine.eip = s.eip >>> 0;
  engine.eflags = s.eflags;
}
