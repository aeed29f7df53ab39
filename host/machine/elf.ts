// ELF32 images for the guest: header validation, PT_LOAD segments copied
// into an Engine's RAM, and the Multiboot v1 header found if there is one.
//
// Parsing (parseElf) and loading (loadElf) are separate: parseElf checks
// everything it can from the file alone, loadElf adds the checks against the
// engine's RAM and writes nothing until every check has passed. Addresses
// are physical: segments load at p_paddr and the entry point must lie in a
// loaded executable segment (there is no paging, so that is where code runs).
// Every refusal is an ElfError naming the problem and the file offset of the
// field or structure at fault.

import type { Engine } from "../engine/engine.js";

/** What the loaders need of a machine: its RAM size and a dirty-tracked write. An Engine is one. */
export type GuestRam = Pick<Engine, "ramSize" | "writeMem">;

/** Whether the file starts with the ELF magic. */
export const isElf = (file: Uint8Array): boolean =>
  file.length >= 4 && file[0] === 0x7f && file[1] === 0x45 && file[2] === 0x4c && file[3] === 0x46;

/**
 * A refused guest image: `problem` says what is wrong, `offset` is the file
 * offset of the offending field or structure. The Multiboot loader
 * (multiboot.ts) throws it directly; ELF problems are its subclass ElfError.
 */
export class LoadError extends Error {
  constructor(readonly problem: string, readonly offset: number, what = "guest image") {
    super(`bad ${what}: ${problem} (at file offset 0x${offset.toString(16)})`);
    this.name = "LoadError";
  }
}

/** A refused ELF image (a LoadError). */
export class ElfError extends LoadError {
  constructor(problem: string, offset: number) {
    super(problem, offset, "ELF image");
    this.name = "ElfError";
  }
}

// e_ident and header constants.
const ELFMAG = [0x7f, 0x45, 0x4c, 0x46]; // "\x7fELF"
const ELFCLASS32 = 1;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ET_EXEC = 2;
const EM_386 = 3;
const EHDR_SIZE = 52;
const PHDR_SIZE = 32;
/** Far more program headers than any sane static image has. */
const MAX_PHNUM = 256;

export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

const ET_NAMES: Record<number, string> = { 0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE" };
const EM_NAMES: Record<number, string> = { 3: "EM_386", 40: "EM_ARM", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV" };

/** A PT_LOAD segment as the file describes it. */
export interface ElfSegment {
  /** Index in the program header table. */
  index: number;
  /** File offset of this program header (for error messages). */
  phdrOffset: number;
  /** Where the bytes are in the file. */
  fileOffset: number;
  fileSize: number;
  /** Physical load address (p_paddr) and size in memory; memSize ≥ fileSize, the rest is zeroed. */
  paddr: number;
  vaddr: number;
  memSize: number;
  /** PF_* bits. */
  flags: number;
  align: number;
}

/** The Multiboot v1 header, if the image has one (see the Multiboot 0.6.96 spec, section 3.1). */
export interface MultibootHeader {
  /** File offset of the magic (4-byte aligned, within the first 8 KiB). */
  offset: number;
  flags: number;
  /** Bit 0: modules must be page aligned. */
  pageAlign: boolean;
  /** Bit 1: the loader must pass memory information. */
  memoryInfo: boolean;
  /** Bit 2: the loader must pass video mode information. */
  videoInfo: boolean;
  /** Bit 16: the address fields below are valid (load by them instead of by the ELF headers). */
  addressFields?: { headerAddr: number; loadAddr: number; loadEndAddr: number; bssEndAddr: number; entryAddr: number };
  /** Bit 2: the requested video mode. */
  video?: { modeType: number; width: number; height: number; depth: number };
}

export interface ElfImage {
  entry: number;
  segments: ElfSegment[];
  multiboot: MultibootHeader | null;
}

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
/** The loader's magic in EAX at entry. */
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/** The Multiboot header must lie in the first 8 KiB of the file. */
export const MULTIBOOT_SEARCH = 8192;

const hex = (n: number) => `0x${n.toString(16)}`;

/** Validates an ELF32 i386 executable and describes its loadable segments. Reads nothing outside `file`. */
export function parseElf(file: Uint8Array): ElfImage {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < EHDR_SIZE) {
    if (file.length >= 4 && !ELFMAG.every((b, i) => file[i] === b)) throw new ElfError("not an ELF file (bad magic)", 0);
    throw new ElfError(`truncated file: ${file.length} bytes, shorter than the ${EHDR_SIZE}-byte ELF header`, file.length);
  }
  if (!ELFMAG.every((b, i) => file[i] === b)) throw new ElfError("not an ELF file (bad magic)", 0);
  if (file[4] !== ELFCLASS32) {
    throw new ElfError(`wrong class ${file[4]}${file[4] === 2 ? " (ELFCLASS64)" : ""}, expected ELFCLASS32`, 4);
  }
  if (file[5] !== ELFDATA2LSB) {
    throw new ElfError(`wrong data encoding ${file[5]}${file[5] === 2 ? " (big-endian)" : ""}, expected little-endian`, 5);
  }
  if (file[6] !== EV_CURRENT) throw new ElfError(`unknown ELF version ${file[6]} in e_ident`, 6);

  const type = dv.getUint16(16, true);
  if (type !== ET_EXEC) {
    throw new ElfError(`wrong type ${type} (${ET_NAMES[type] ?? "unknown"}), expected ET_EXEC (a static executable)`, 16);
  }
  const machine = dv.getUint16(18, true);
  if (machine !== EM_386) throw new ElfError(`wrong machine ${machine} (${EM_NAMES[machine] ?? "unknown"}), expected EM_386`, 18);
  const version = dv.getUint32(20, true);
  if (version !== EV_CURRENT) throw new ElfError(`unknown ELF version ${version}`, 20);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const ehsize = dv.getUint16(40, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  if (ehsize < EHDR_SIZE) throw new ElfError(`e_ehsize ${ehsize} is smaller than the ${EHDR_SIZE}-byte ELF32 header`, 40);
  if (phnum === 0) throw new ElfError("no program headers (e_phnum is 0): nothing to load", 44);
  if (phnum > MAX_PHNUM) throw new ElfError(`e_phnum ${phnum} is implausibly large (at most ${MAX_PHNUM})`, 44);
  if (phentsize < PHDR_SIZE) throw new ElfError(`e_phentsize ${phentsize} is smaller than the ${PHDR_SIZE}-byte program header`, 42);
  if (phoff < EHDR_SIZE) throw new ElfError(`e_phoff ${hex(phoff)} overlaps the ELF header`, 28);
  const phEnd = phoff + phnum * phentsize;
  if (phEnd > file.length) {
    throw new ElfError(`truncated file: the program header table [${hex(phoff)}, ${hex(phEnd)}) runs past the end of the ${file.length}-byte file`, phoff);
  }

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const ptype = dv.getUint32(at, true);
    if (ptype === PT_INTERP || ptype === PT_DYNAMIC) {
      throw new ElfError(`program header ${i} is ${ptype === PT_INTERP ? "PT_INTERP" : "PT_DYNAMIC"}: dynamically linked images are not supported`, at);
    }
    if (ptype !== PT_LOAD) continue;
    const seg: ElfSegment = {
      index: i,
      phdrOffset: at,
      fileOffset: dv.getUint32(at + 4, true),
      vaddr: dv.getUint32(at + 8, true),
      paddr: dv.getUint32(at + 12, true),
      fileSize: dv.getUint32(at + 16, true),
      memSize: dv.getUint32(at + 20, true),
      flags: dv.getUint32(at + 24, true),
      align: dv.getUint32(at + 28, true),
    };
    if (seg.fileSize > seg.memSize) {
      throw new ElfError(`segment ${i}: p_filesz ${hex(seg.fileSize)} is larger than p_memsz ${hex(seg.memSize)}`, at + 16);
    }
    if (seg.fileOffset + seg.fileSize > file.length) {
      throw new ElfError(
        `truncated file: segment ${i} needs file bytes [${hex(seg.fileOffset)}, ${hex(seg.fileOffset + seg.fileSize)}) but the file is ${file.length} bytes`,
        at + 4,
      );
    }
    if (seg.paddr + seg.memSize > 2 ** 32) {
      throw new ElfError(`segment ${i}: [${hex(seg.paddr)}, +${hex(seg.memSize)}) wraps past the 4 GiB address space`, at + 12);
    }
    segments.push(seg);
  }
  if (segments.length === 0) throw new ElfError("no PT_LOAD segments: nothing to load", phoff);

  // Overlap: compare neighbours in address order (empty segments occupy nothing).
  const placed = segments.filter((s) => s.memSize > 0).sort((a, b) => a.paddr - b.paddr);
  for (let k = 1; k < placed.length; k++) {
    const a = placed[k - 1], b = placed[k];
    if (b.paddr < a.paddr + a.memSize) {
      throw new ElfError(
        `segments ${a.index} [${hex(a.paddr)}, ${hex(a.paddr + a.memSize)}) and ${b.index} [${hex(b.paddr)}, ${hex(b.paddr + b.memSize)}) overlap`,
        b.phdrOffset,
      );
    }
  }

  if (entry === 0) throw new ElfError("no entry point (e_entry is 0)", 24);
  const inExec = segments.some((s) => (s.flags & PF_X) !== 0 && entry >= s.paddr && entry < s.paddr + s.memSize);
  if (!inExec) {
    const where = segments.find((s) => entry >= s.paddr && entry < s.paddr + s.memSize);
    throw new ElfError(
      where
        ? `entry point ${hex(entry)} is in segment ${where.index}, which is not executable (no PF_X)`
        : `entry point ${hex(entry)} is not inside any loaded segment`,
      24,
    );
  }

  return { entry, segments, multiboot: findMultiboot(file) };
}

/**
 * The first valid Multiboot v1 header in the file's first 8 KiB: the magic at a
 * 4-byte aligned offset with magic + flags + checksum = 0 (mod 2^32). Null if none.
 * A header whose flags ask for fields the file does not contain is not valid.
 */
export function findMultiboot(file: Uint8Array): MultibootHeader | null {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const limit = Math.min(file.length, MULTIBOOT_SEARCH);
  for (let at = 0; at + 12 <= limit; at += 4) {
    if (dv.getUint32(at, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = dv.getUint32(at + 4, true);
    const checksum = dv.getUint32(at + 8, true);
    if (((MULTIBOOT_HEADER_MAGIC + flags + checksum) >>> 0) !== 0) continue;
    const hasAddr = (flags & 0x10000) !== 0;
    const hasVideo = (flags & 0x4) !== 0;
    const need = at + (hasVideo ? 48 : hasAddr ? 32 : 12);
    if (need > file.length) continue;
    const mb: MultibootHeader = {
      offset: at,
      flags,
      pageAlign: (flags & 1) !== 0,
      memoryInfo: (flags & 2) !== 0,
      videoInfo: hasVideo,
    };
    if (hasAddr) {
      mb.addressFields = {
        headerAddr: dv.getUint32(at + 12, true),
        loadAddr: dv.getUint32(at + 16, true),
        loadEndAddr: dv.getUint32(at + 20, true),
        bssEndAddr: dv.getUint32(at + 24, true),
        entryAddr: dv.getUint32(at + 28, true),
      };
    }
    if (hasVideo) {
      mb.video = {
        modeType: dv.getUint32(at + 32, true),
        width: dv.getUint32(at + 36, true),
        height: dv.getUint32(at + 40, true),
        depth: dv.getUint32(at + 44, true),
      };
    }
    return mb;
  }
  return null;
}

/**
 * Checks that every segment fits in a RAM of `ramSize` bytes. Separate from
 * parseElf so a caller can validate a file before it has an engine.
 */
export function checkFitsRam(image: ElfImage, ramSize: number): void {
  for (const s of image.segments) {
    if (s.memSize > 0 && s.paddr + s.memSize > ramSize) {
      throw new ElfError(
        `segment ${s.index} [${hex(s.paddr)}, ${hex(s.paddr + s.memSize)}) is outside RAM [0, ${hex(ramSize)})`,
        s.phdrOffset + 12,
      );
    }
  }
}

/**
 * Validates `file` and loads its PT_LOAD segments into the engine's RAM: p_filesz
 * bytes copied, the rest of p_memsz zeroed (both through writeMem, so the pages
 * are marked dirty). Nothing is written if the image is refused. Registers are
 * left alone: the caller sets EIP = entry.
 */
export function loadElf(engine: GuestRam, file: Uint8Array): ElfImage {
  const image = parseElf(file);
  checkFitsRam(image, engine.ramSize);
  for (const s of image.segments) {
    if (s.fileSize > 0) engine.writeMem(s.paddr, file.subarray(s.fileOffset, s.fileOffset + s.fileSize));
    const zeros = s.memSize - s.fileSize;
    if (zeros > 0) engine.writeMem(s.paddr + s.fileSize, new Uint8Array(zeros));
  }
  return image;
}
