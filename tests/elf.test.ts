// The ELF32 loader (host/machine/elf.ts): every refusal on small hand-built
// images, loading into an engine, the Multiboot header scan, and the real
// guest image guests/bin/bench.elf.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkFitsRam, ElfError, findMultiboot, loadElf, parseElf, PF_R, PF_W, PF_X, PT_INTERP } from "../host/machine/elf.js";
import { buildElf, set16, set32 } from "./helpers/elf-builder.js";
import { freshEngine } from "./helpers/machine.js";

const PT_NOTE = 4;

const CODE = [0xb8, 1, 0, 0, 0, 0xf4]; // mov eax, 1; hlt
const good = () =>
  buildElf(0x100000, [
    { paddr: 0x100000, data: CODE, flags: PF_R | PF_X },
    { paddr: 0x101000, data: [1, 2, 3, 4], memsz: 0x20, flags: PF_R | PF_W },
  ]);
/** Offset of program header i in the images buildElf makes. */
const ph = (i: number) => 52 + 32 * i;

/** Runs fn and returns the ElfError it throws. */
function refusal(fn: () => unknown): ElfError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ElfError);
    return e as ElfError;
  }
  throw new Error("expected an ElfError, nothing was thrown");
}

describe("parseElf accepts", () => {
  it("a small two-segment image", () => {
    const img = parseElf(good());
    expect(img.entry).toBe(0x100000);
    expect(img.multiboot).toBeNull();
    expect(img.segments).toMatchObject([
      { index: 0, paddr: 0x100000, fileSize: 6, memSize: 6, flags: PF_R | PF_X },
      { index: 1, paddr: 0x101000, fileSize: 4, memSize: 0x20, flags: PF_R | PF_W },
    ]);
  });

  it("and skips non-PT_LOAD program headers", () => {
    const f = buildElf(0x100000, [{ type: PT_NOTE, paddr: 0, data: [9, 9] }, { paddr: 0x100000, data: CODE }]);
    expect(parseElf(f).segments.map((s) => s.index)).toEqual([1]);
  });

  it("a file that is a subarray of a larger buffer", () => {
    const f = good();
    const big = new Uint8Array(f.length + 100);
    big.set(f, 37);
    expect(parseElf(big.subarray(37, 37 + f.length)).entry).toBe(0x100000);
  });
});

describe("parseElf refuses", () => {
  it("a file shorter than the ELF header", () => {
    const e = refusal(() => parseElf(good().subarray(0, 40)));
    expect(e.message).toMatch(/truncated file: 40 bytes/);
    expect(e.offset).toBe(40);
  });

  it("a file without the ELF magic", () => {
    const f = good();
    f[1] = 0x50;
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/not an ELF file/);
    expect(e.offset).toBe(0);
    expect(refusal(() => parseElf(Uint8Array.of(0x4d, 0x5a, 0x90, 0, 3, 0))).message).toMatch(/not an ELF file/);
  });

  it("ELFCLASS64", () => {
    const f = good();
    f[4] = 2;
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/wrong class 2 \(ELFCLASS64\), expected ELFCLASS32/);
    expect(e.offset).toBe(4);
    expect(e.message).toContain("at file offset 0x4");
  });

  it("big-endian data", () => {
    const f = good();
    f[5] = 2;
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/big-endian/);
    expect(e.offset).toBe(5);
  });

  it("a machine other than EM_386", () => {
    const f = good();
    set16(f, 18, 62);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/wrong machine 62 \(EM_X86_64\), expected EM_386/);
    expect(e.offset).toBe(18);
  });

  it("a type other than ET_EXEC", () => {
    for (const [t, name] of [[1, "ET_REL"], [3, "ET_DYN"], [4, "ET_CORE"]] as const) {
      const f = good();
      set16(f, 16, t);
      const e = refusal(() => parseElf(f));
      expect(e.message).toContain(`wrong type ${t} (${name}), expected ET_EXEC`);
      expect(e.offset).toBe(16);
    }
  });

  it("no program headers", () => {
    const f = good();
    set16(f, 44, 0);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/e_phnum is 0/);
    expect(e.offset).toBe(44);
  });

  it("an implausible e_phnum", () => {
    const f = good();
    set16(f, 44, 0xffff);
    expect(refusal(() => parseElf(f)).message).toMatch(/e_phnum 65535 is implausibly large/);
  });

  it("a program header entry size smaller than 32", () => {
    const f = good();
    set16(f, 42, 20);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/e_phentsize 20/);
    expect(e.offset).toBe(42);
  });

  it("a program header table overlapping the ELF header", () => {
    const f = good();
    set32(f, 28, 16);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/e_phoff 0x10 overlaps the ELF header/);
    expect(e.offset).toBe(28);
  });

  it("a program header table past the end of the file (truncated)", () => {
    const f = good();
    const cut = f.subarray(0, ph(1) + 10);
    const e = refusal(() => parseElf(cut));
    expect(e.message).toMatch(/truncated file: the program header table \[0x34, 0x74\) runs past the end of the 94-byte file/);
    expect(e.offset).toBe(52);
    set32(f, 28, 0xfffffff0); // a huge e_phoff
    expect(refusal(() => parseElf(f)).message).toMatch(/truncated file: the program header table/);
  });

  it("segment data past the end of the file (truncated)", () => {
    const f = good();
    const e = refusal(() => parseElf(f.subarray(0, f.length - 2)));
    expect(e.message).toMatch(/truncated file: segment 1 needs file bytes \[0x7a, 0x7e\) but the file is 124 bytes/);
    expect(e.offset).toBe(ph(1) + 4);
    set32(f, ph(0) + 4, 0xffffff00); // p_offset far out
    expect(refusal(() => parseElf(f)).message).toMatch(/truncated file: segment 0/);
  });

  it("p_filesz larger than p_memsz", () => {
    const f = good();
    set32(f, ph(1) + 20, 2);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/segment 1: p_filesz 0x4 is larger than p_memsz 0x2/);
    expect(e.offset).toBe(ph(1) + 16);
  });

  it("a segment wrapping past 4 GiB", () => {
    const f = buildElf(0x100000, [{ paddr: 0x100000, data: CODE }, { paddr: 0xfffff000, memsz: 0x2000, flags: PF_R | PF_W }]);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/segment 1: \[0xfffff000, \+0x2000\) wraps past the 4 GiB address space/);
    expect(e.offset).toBe(ph(1) + 12);
  });

  it("overlapping segments", () => {
    const f = buildElf(0x100000, [
      { paddr: 0x100000, data: CODE },
      { paddr: 0x102000, memsz: 0x100, flags: PF_R | PF_W },
      { paddr: 0x101ff0, data: [1, 2, 3], memsz: 0x20, flags: PF_R | PF_W },
    ]);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/segments 2 \[0x101ff0, 0x102010\) and 1 \[0x102000, 0x102100\) overlap/);
    expect(e.offset).toBe(ph(1));
  });

  it("but not segments that only touch", () => {
    const f = buildElf(0x100000, [{ paddr: 0x100000, data: CODE }, { paddr: 0x100006, memsz: 0x10, flags: PF_R | PF_W }]);
    expect(parseElf(f).segments).toHaveLength(2);
  });

  it("an entry point outside every segment", () => {
    const f = good();
    set32(f, 24, 0x200000);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/entry point 0x200000 is not inside any loaded segment/);
    expect(e.offset).toBe(24);
    set32(f, 24, 0x100006); // one past the end of the code
    expect(refusal(() => parseElf(f)).message).toMatch(/not inside any loaded segment/);
  });

  it("an entry point in a segment that is not executable", () => {
    const f = good();
    set32(f, 24, 0x101010); // in the data segment's zeroed part
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/entry point 0x101010 is in segment 1, which is not executable/);
    expect(e.offset).toBe(24);
  });

  it("an image with no PT_LOAD segment", () => {
    const f = buildElf(0x100000, [{ type: PT_NOTE, paddr: 0x100000, data: CODE }]);
    expect(refusal(() => parseElf(f)).message).toMatch(/no PT_LOAD segments/);
  });

  it("a dynamically linked image (PT_INTERP)", () => {
    const f = buildElf(0x100000, [{ type: PT_INTERP, paddr: 0, data: [0x2f, 0] }, { paddr: 0x100000, data: CODE }]);
    const e = refusal(() => parseElf(f));
    expect(e.message).toMatch(/program header 0 is PT_INTERP: dynamically linked images are not supported/);
    expect(e.offset).toBe(ph(0));
  });
});

describe("loadElf", () => {
  it("copies p_filesz bytes, zeroes the rest of p_memsz, and leaves registers alone", async () => {
    const e = await freshEngine("wasm", 2 << 20);
    e.writeMem(0x100ff0, new Uint8Array(0x60).fill(0xaa));
    const eip = e.eip;
    const img = loadElf(e, good());
    expect(img.entry).toBe(0x100000);
    expect(Array.from(e.readMem(0x100000, 6))).toEqual(CODE);
    expect(Array.from(e.readMem(0x101000, 4))).toEqual([1, 2, 3, 4]);
    expect(e.readMem(0x101004, 0x1c).every((b) => b === 0)).toBe(true);
    expect(e.readMem(0x101020, 0x20).every((b) => b === 0xaa)).toBe(true); // past p_memsz: untouched
    expect(e.eip).toBe(eip);
    expect(e.dirtyMap()[0x101]).toBe(1);
  });

  it("refuses a segment outside RAM and writes nothing", async () => {
    const e = await freshEngine("ts", 1 << 20); // 1 MiB: the image at 1 MiB does not fit
    e.writeMem(0xff000, new Uint8Array(0x1000).fill(0x55));
    const err = refusal(() => loadElf(e, good()));
    expect(err.message).toMatch(/segment 0 \[0x100000, 0x100006\) is outside RAM \[0, 0x100000\)/);
    expect(err.offset).toBe(ph(0) + 12);
    expect(e.readMem(0xff000, 0x1000).every((b) => b === 0x55)).toBe(true);
  });

  it("refuses a segment that only partly fits", () => {
    const f = buildElf(0x100000, [{ paddr: 0x100000, data: CODE }, { paddr: 0x1ff000, memsz: 0x1001, flags: PF_R | PF_W }]);
    const err = refusal(() => checkFitsRam(parseElf(f), 2 << 20));
    expect(err.message).toMatch(/segment 1 \[0x1ff000, 0x200001\) is outside RAM \[0, 0x200000\)/);
  });
});

describe("Multiboot header", () => {
  const withHeader = (at: number, flags: number, checksumFix = 0, fileSize = 0x3000) => {
    const f = new Uint8Array(fileSize);
    set32(f, at, 0x1badb002);
    set32(f, at + 4, flags);
    set32(f, at + 8, (-(0x1badb002 + flags) + checksumFix) >>> 0);
    return f;
  };

  it("is found at any 4-byte aligned offset in the first 8 KiB, with its flags", () => {
    expect(findMultiboot(withHeader(0x1000, 3))).toEqual({ offset: 0x1000, flags: 3, pageAlign: true, memoryInfo: true, videoInfo: false });
    expect(findMultiboot(withHeader(8188 - 8, 2))?.offset).toBe(8180);
  });

  it("is ignored past 8 KiB, unaligned, or with a bad checksum", () => {
    expect(findMultiboot(withHeader(8192, 3))).toBeNull();
    expect(findMultiboot(withHeader(0x1002, 3))).toBeNull();
    expect(findMultiboot(withHeader(0x1000, 3, 1))).toBeNull();
  });

  it("reports the address fields (flag 16) and video mode (flag 2)", () => {
    const f = withHeader(0x40, 0x10006);
    [0x100040, 0x100000, 0x101000, 0x102000, 0x10000c, 0, 1024, 768, 32].forEach((v, i) => set32(f, 0x4c + 4 * i, v));
    expect(findMultiboot(f)).toEqual({
      offset: 0x40, flags: 0x10006, pageAlign: false, memoryInfo: true, videoInfo: true,
      addressFields: { headerAddr: 0x100040, loadAddr: 0x100000, loadEndAddr: 0x101000, bssEndAddr: 0x102000, entryAddr: 0x10000c },
      video: { modeType: 0, width: 1024, height: 768, depth: 32 },
    });
    expect(findMultiboot(withHeader(0x40, 0x10000, 0, 0x40 + 20))).toBeNull(); // address fields cut off
  });

  it("is reported by parseElf", () => {
    const f = buildElf(0x100000, [{ paddr: 0x100000, data: [0x02, 0xb0, 0xad, 0x1b, 2, 0, 0, 0, 0xfc, 0x4f, 0x52, 0xe4, ...CODE] }]);
    set32(f, 24, 0x10000c);
    expect(parseElf(f).multiboot).toMatchObject({ offset: 52 + 32, flags: 2, memoryInfo: true });
  });
});

describe("guests/bin/bench.elf", () => {
  const file = new Uint8Array(readFileSync(new URL("../guests/bin/bench.elf", import.meta.url)));

  it("parses: entry in the code at 1 MiB, a text and a data segment, a Multiboot header asking for memory info", () => {
    const img = parseElf(file);
    expect(img.segments).toHaveLength(2);
    const [text, data] = img.segments;
    expect(text).toMatchObject({ paddr: 0x100000, flags: PF_R | PF_X });
    expect(data.flags).toBe(PF_R | PF_W);
    expect(data.memSize).toBeGreaterThan(data.fileSize); // .bss and the stack
    expect(img.entry).toBeGreaterThanOrEqual(text.paddr);
    expect(img.entry).toBeLessThan(text.paddr + text.memSize);
    expect(img.multiboot).toMatchObject({ memoryInfo: true });
    expect(img.multiboot!.offset).toBe(text.fileOffset); // first thing in .text
  });

  it.each(["wasm", "ts"] as const)("loads into a %s engine", async (kind) => {
    const e = await freshEngine(kind, 4 << 20);
    e.writeMem(0x100000, new Uint8Array(0x100000).fill(0xcc));
    const img = loadElf(e, file);
    for (const s of img.segments) {
      expect(Buffer.from(e.readMem(s.paddr, s.fileSize)).equals(Buffer.from(file.subarray(s.fileOffset, s.fileOffset + s.fileSize)))).toBe(true);
      expect(e.readMem(s.paddr + s.fileSize, s.memSize - s.fileSize).every((b) => b === 0)).toBe(true);
    }
  });
});
