// The Multiboot v1 loader (host/machine/multiboot.ts): the information
// structure decoded back from guest RAM and compared with values computed
// here, the initial CPU state, the a.out-kludge and plain-ELF paths, and a
// LoadError (problem + file offset) for every kind of bad image, with nothing
// written to RAM when an image is refused.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ExitReason } from "../host/engine/engine.js";
import { ElfError, LoadError, PF_R, PF_W, PF_X } from "../host/machine/elf.js";
import {
  applyBootState, BOOT_LOADER_NAME, INITIAL_EFLAGS, loadMultiboot, MB_INFO_ADDR, MBI_CMDLINE, MBI_LOADER_NAME,
  MBI_MEM_MAP, MBI_MEMORY, prepareBoot, scanMultibootHeader, STACK_RESERVE,
} from "../host/machine/multiboot.js";
import { buildElf, set16, set32 } from "./helpers/elf-builder.js";
import { freshEngine } from "./helpers/machine.js";

const MiB = 1 << 20;
const MAGIC = 0x1badb002;
const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4;

/** A Multiboot header: magic, flags, checksum, then `extra` words (address fields, video mode). */
function header(flags: number, extra: number[] = [], checksumFix = 0): number[] {
  const words = [MAGIC, flags, (-(MAGIC + flags) + checksumFix) >>> 0, ...extra];
  return words.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, (w >>> 24) & 0xff]);
}

const CODE = [0x8b, 0x4b, 0x08, 0x8b, 0x53, 0x10, 0xf4]; // mov ecx, [ebx+8]; mov edx, [ebx+16]; hlt
const TEXT = 0x100000;
const HDR_FLAGS = 0x3; // page align + memory info, as crt0 asks
/** File offset of the first segment's data in buildElf images with n program headers. */
const dataAt = (n: number) => 52 + 32 * n;
const ph = (i: number) => 52 + 32 * i;

/** A Multiboot ELF: the header at the start of the code segment, entry just after it. */
function mbElf(flags = HDR_FLAGS, checksumFix = 0): Uint8Array {
  return buildElf(TEXT + 12, [
    { paddr: TEXT, data: [...header(flags, [], checksumFix), ...CODE], flags: PF_R | PF_X },
    { paddr: TEXT + 0x1000, data: [1, 2, 3, 4], memsz: 0x100, flags: PF_R | PF_W },
  ]);
}

/** Guest RAM as a plain array, recording every write. */
class FakeRam {
  readonly ram: Uint8Array;
  readonly writes: Array<[number, number]> = [];
  constructor(readonly ramSize: number) {
    this.ram = new Uint8Array(ramSize).fill(0xee);
  }
  writeMem(addr: number, bytes: Uint8Array): void {
    if (addr + bytes.length > this.ramSize) throw new Error(`write ${addr.toString(16)}+${bytes.length} outside RAM`);
    this.ram.set(bytes, addr);
    this.writes.push([addr, bytes.length]);
  }
  u32(a: number): number {
    return new DataView(this.ram.buffer).getUint32(a, true);
  }
  u64(a: number): number {
    return Number(new DataView(this.ram.buffer).getBigUint64(a, true));
  }
  cstr(a: number): string {
    let e = a;
    while (this.ram[e] !== 0) e++;
    return new TextDecoder().decode(this.ram.subarray(a, e));
  }
}

/** The information structure as a guest would read it. */
function decodeInfo(ram: FakeRam, at: number) {
  const flags = ram.u32(at);
  const mmap: { size: number; base: number; length: number; type: number }[] = [];
  if (flags & MBI_MEM_MAP) {
    const start = ram.u32(at + 48), len = ram.u32(at + 44);
    for (let p = start; p < start + len; p += ram.u32(p) + 4) {
      mmap.push({ size: ram.u32(p), base: ram.u64(p + 4), length: ram.u64(p + 12), type: ram.u32(p + 20) });
    }
  }
  return {
    flags,
    memLower: ram.u32(at + 4),
    memUpper: ram.u32(at + 8),
    cmdline: flags & MBI_CMDLINE ? ram.cstr(ram.u32(at + 16)) : null,
    modsCount: ram.u32(at + 20),
    mmap,
    loaderName: flags & MBI_LOADER_NAME ? ram.cstr(ram.u32(at + 64)) : null,
  };
}

/** Runs fn and returns the LoadError it throws. */
function refusal(fn: () => unknown): LoadError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LoadError);
    return e as LoadError;
  }
  throw new Error("expected a LoadError, nothing was thrown");
}

/** Refused by loadMultiboot, with RAM left exactly as it was. */
function refusedLoad(file: Uint8Array, ramSize = 32 * MiB, cmdline = ""): LoadError {
  const ram = new FakeRam(ramSize);
  const e = refusal(() => loadMultiboot(ram, file, { cmdline }));
  expect(ram.writes).toEqual([]);
  return e;
}

describe("a Multiboot ELF kernel", () => {
  it.each([1 * MiB, 2 * MiB, 32 * MiB, 100 * MiB + 4096])("gets the information structure (RAM %i bytes)", (ramSize) => {
    const ram = new FakeRam(ramSize);
    if (ramSize < 2 * MiB) {
      // The image at 1 MiB does not fit in 1 MiB of RAM: check that first, then boot a low kernel.
      expect(refusal(() => loadMultiboot(ram, mbElf())).message).toMatch(/segment 0 \[0x100000, 0x100013\) is outside RAM \[0, 0x100000\)/);
      const low = buildElf(0x20000 + 12, [{ paddr: 0x20000, data: [...header(HDR_FLAGS), ...CODE] }]);
      loadMultiboot(ram, low, { cmdline: "low" });
    } else {
      loadMultiboot(ram, mbElf(), { cmdline: "guests/bin/k.elf exit=3  console=both" });
    }
    const info = decodeInfo(ram, MB_INFO_ADDR);
    const kib = ramSize / 1024;
    const expectedMap = [{ size: 20, base: 0, length: 640 * 1024, type: 1 }];
    if (ramSize > MiB) expectedMap.push({ size: 20, base: MiB, length: ramSize - MiB, type: 1 });
    expect(info).toEqual({
      flags: MBI_MEMORY | MBI_CMDLINE | MBI_MEM_MAP | MBI_LOADER_NAME,
      memLower: 640,
      memUpper: kib - 1024,
      cmdline: ramSize < 2 * MiB ? "low" : "guests/bin/k.elf exit=3  console=both",
      modsCount: 0,
      mmap: expectedMap,
      loaderName: "lockstep",
    });
  });

  it("returns the initial state: EIP = entry, EAX = 0x2BADB002, EBX = the structure, ESP at the top of RAM, IF clear", () => {
    const ram = new FakeRam(32 * MiB);
    const boot = loadMultiboot(ram, mbElf());
    expect(boot.kind).toBe("multiboot-elf");
    expect(boot.state).toEqual({
      eip: TEXT + 12, eflags: 0x2, eax: 0x2badb002, ebx: MB_INFO_ADDR, ecx: 0, edx: 0, esp: 32 * MiB, ebp: 0, esi: 0, edi: 0,
    });
    expect(INITIAL_EFLAGS & 0x200).toBe(0);
    expect(boot.header).toMatchObject({ offset: dataAt(2), flags: HDR_FLAGS, memoryInfo: true });
  });

  it("loads the segments (file bytes, then zeros) and writes only them and the information block", () => {
    const ram = new FakeRam(4 * MiB);
    const file = mbElf();
    const boot = loadMultiboot(ram, file, { cmdline: "x" });
    expect(Array.from(ram.ram.subarray(TEXT, TEXT + 19))).toEqual([...header(HDR_FLAGS), ...CODE]);
    expect(Array.from(ram.ram.subarray(TEXT + 0x1000, TEXT + 0x1004))).toEqual([1, 2, 3, 4]);
    expect(ram.ram.subarray(TEXT + 0x1004, TEXT + 0x1100).every((b) => b === 0)).toBe(true);
    expect(ram.ram[TEXT + 0x1100]).toBe(0xee);
    const info = boot.info!;
    // structure (128) + 2 map entries (48) + "lockstep\0" (9) + "x\0" (2)
    expect(info.end - info.addr).toBe(128 + 48 + BOOT_LOADER_NAME.length + 1 + 2);
    expect(ram.writes.sort((a, b) => a[0] - b[0])).toEqual([
      [MB_INFO_ADDR, info.end - info.addr], [TEXT, 19], [TEXT + 0x1000, 4], [TEXT + 0x1004, 0xfc],
    ]);
    expect(ram.ram[MB_INFO_ADDR - 1]).toBe(0xee);
    expect(ram.ram[info.end]).toBe(0xee);
  });

  it("has no memory map when asked not to, and an empty command line when given none", () => {
    const ram = new FakeRam(8 * MiB);
    loadMultiboot(ram, mbElf(), { memoryMap: false });
    const info = decodeInfo(ram, MB_INFO_ADDR);
    expect(info.flags).toBe(MBI_MEMORY | MBI_CMDLINE | MBI_LOADER_NAME);
    expect(info.cmdline).toBe("");
    expect(ram.u32(MB_INFO_ADDR + 44)).toBe(0);
    expect(ram.u32(MB_INFO_ADDR + 48)).toBe(0);
  });

  it("passes a UTF-8 command line and refuses one with NUL", () => {
    const ram = new FakeRam(8 * MiB);
    loadMultiboot(ram, mbElf(), { cmdline: "name=Zoë" });
    expect(decodeInfo(ram, MB_INFO_ADDR).cmdline).toBe("name=Zoë");
    expect(() => prepareBoot(mbElf(), 8 * MiB, { cmdline: "a\0b" })).toThrow(RangeError);
  });

  it("finds a header anywhere 4-byte aligned in the first 8 KiB, after a magic with a bad checksum", () => {
    const f = buildElf(TEXT, [{ paddr: TEXT, data: [...CODE, 0, ...header(3, [], 1), ...header(2)], flags: PF_R | PF_X }]);
    expect(scanMultibootHeader(f)).toMatchObject({ offset: dataAt(1) + 8 + 12, flags: 2 });
    expect(prepareBoot(f, 4 * MiB).kind).toBe("multiboot-elf");
  });

  it.each(["wasm", "ts"] as const)("starts on a %s engine: the kernel reads mem_upper and the cmdline pointer through EBX", async (kind) => {
    const e = await freshEngine(kind, 16 * MiB);
    const boot = loadMultiboot(e, mbElf(), { cmdline: "hi" });
    applyBootState(e, boot.state);
    expect([e.eip, e.getReg(EAX), e.getReg(EBX), e.getReg(ESP), e.eflags]).toEqual([TEXT + 12, 0x2badb002, MB_INFO_ADDR, 16 * MiB, 2]);
    const exit = e.run(100);
    expect(exit.reason).toBe(ExitReason.Hlt);
    expect(e.getReg(ECX)).toBe(15 * 1024);
    expect(e.getReg(EDX)).toBe(boot.info!.cmdlineAddr);
    expect(new TextDecoder().decode(e.readMem(boot.info!.cmdlineAddr, 3))).toBe("hi\0");
  });
});

describe("the committed guests", () => {
  it.each(["hello", "ticks", "bench"])("%s.elf is a Multiboot ELF kernel asking for memory information", (name) => {
    const file = new Uint8Array(readFileSync(new URL(`../guests/bin/${name}.elf`, import.meta.url)));
    const boot = prepareBoot(file, 32 * MiB, { cmdline: `guests/bin/${name}.elf` });
    expect(boot.kind).toBe("multiboot-elf");
    expect(boot.header).toMatchObject({ flags: 3, pageAlign: true, memoryInfo: true });
    expect(boot.state.eip).toBe(boot.elf!.entry);
    expect(boot.regions[0].start).toBe(0x100000);
  });
});

describe("the a.out kludge (header flag 16)", () => {
  // A raw binary: 16 bytes of padding, the header, code; loaded at 0x200000.
  const LOAD = 0x200000;
  const raw = (fields: Partial<{ header: number; load: number; loadEnd: number; bssEnd: number; entry: number }> = {}, pad = 16) => {
    const hdrAddr = LOAD + pad;
    const f = {
      header: hdrAddr, load: LOAD, loadEnd: 0, bssEnd: LOAD + 0x2000, entry: hdrAddr + 32, ...fields,
    };
    return Uint8Array.from([
      ...new Array(pad).fill(0x90),
      ...header(0x10003, [f.header, f.load, f.loadEnd, f.bssEnd, f.entry]),
      ...CODE,
    ]);
  };
  const hdr = 16; // file offset of the header in raw()

  it("loads the file from load_addr, zeroes up to bss_end_addr and enters at entry_addr", () => {
    const file = raw();
    const ram = new FakeRam(4 * MiB);
    const boot = loadMultiboot(ram, file, { cmdline: "aout" });
    expect(boot.kind).toBe("multiboot-aout");
    expect(boot.elf).toBeNull();
    expect(boot.state).toMatchObject({ eip: LOAD + hdr + 32, eax: 0x2badb002, ebx: MB_INFO_ADDR });
    expect(Buffer.from(ram.ram.subarray(LOAD, LOAD + file.length)).equals(Buffer.from(file))).toBe(true);
    expect(ram.ram.subarray(LOAD + file.length, LOAD + 0x2000).every((b) => b === 0)).toBe(true);
    expect(ram.ram[LOAD + 0x2000]).toBe(0xee);
    expect(decodeInfo(ram, MB_INFO_ADDR).cmdline).toBe("aout");
  });

  it("takes load_end_addr as the end of the loaded bytes and 0 bss_end_addr as no bss", () => {
    const file = raw({ loadEnd: LOAD + 40, bssEnd: 0, entry: LOAD + 39 });
    const ram = new FakeRam(4 * MiB);
    const boot = loadMultiboot(ram, file);
    expect(boot.regions).toMatchObject([{ start: LOAD, end: LOAD + 40, fileOffset: 0, fileSize: 40 }]);
    expect(ram.ram[LOAD + 40]).toBe(0xee);
  });

  it("is used for an ELF file too (the address fields take precedence)", () => {
    const elf = buildElf(TEXT, [{ paddr: TEXT, data: [...header(0x10002, [TEXT + 0x74, TEXT, 0, 0, TEXT + 0x74 + 32]), ...CODE] }]);
    // header at file offset 0x54: load_addr = TEXT maps file offset 0x54 - 0x74 < 0: refused
    expect(refusal(() => prepareBoot(elf, 4 * MiB)).message).toMatch(/load_addr 0x100000 is 0x74 bytes before header_addr, but the header is at file offset 0x54/);
    set32(elf, 0x54 + 12, TEXT + 0x54); // header_addr: the whole file from load_addr
    set32(elf, 0x54 + 28, TEXT + 0x54 + 32);
    set32(elf, 0x54 + 8, -(MAGIC + 0x10002));
    const boot = prepareBoot(elf, 4 * MiB);
    expect(boot.kind).toBe("multiboot-aout");
    expect(boot.regions).toMatchObject([{ start: TEXT, fileOffset: 0, fileSize: elf.length }]);
  });

  const cases: Array<[string, Parameters<typeof raw>[0], RegExp, number]> = [
    ["header_addr below load_addr", { header: LOAD - 4 }, /header_addr 0x1ffffc is below load_addr 0x200000/, hdr + 12],
    ["load_addr before the file's start", { load: LOAD - 0x100 }, /load_addr 0x1fff00 is 0x110 bytes before header_addr, but the header is at file offset 0x10/, hdr + 16],
    ["load_end_addr not above load_addr", { loadEnd: LOAD }, /load_end_addr 0x200000 is not above load_addr 0x200000/, hdr + 20],
    ["load_end_addr past the end of the file (truncated)", { loadEnd: LOAD + 0x1000 }, /truncated file: load_addr..load_end_addr needs file bytes \[0x0, 0x1000\) but the file is 55 bytes/, hdr + 20],
    ["bss_end_addr below the loaded data", { bssEnd: LOAD + 8 }, /bss_end_addr 0x200008 is below the end of the loaded data 0x200037/, hdr + 24],
    ["entry_addr outside the loaded bytes (no entry)", { entry: LOAD + 0x1000 }, /entry_addr 0x201000 is not inside the loaded image \[0x200000, 0x200037\)/, hdr + 28],
    ["an image outside RAM", { bssEnd: LOAD + 0x300000 }, /the image \[0x200000, 0x500000\) is outside RAM \[0, 0x400000\)/, hdr + 16],
    ["an image wrapping past 4 GiB", { load: 0xffffffe0, header: 0xfffffff0, entry: 0xfffffff8, bssEnd: 0 }, /the image \[0xffffffe0, 0x100000017\) wraps past the 4 GiB/, hdr + 16],
  ];
  it.each(cases)("refuses %s", (_name, fields, message, offset) => {
    const e = refusedLoad(raw(fields), 4 * MiB);
    expect(e.message).toMatch(message);
    expect(e.offset).toBe(offset);
    expect(e.message).toContain("bad Multiboot image");
  });
});

describe("a plain ELF executable (no Multiboot header)", () => {
  const plain = () => buildElf(TEXT, [{ paddr: TEXT, data: CODE }, { paddr: TEXT + 0x1000, memsz: 0x80, flags: PF_R | PF_W }]);

  it("loads with EAX = EBX = 0, ESP at the top of RAM, and no information structure", () => {
    const ram = new FakeRam(8 * MiB);
    const boot = loadMultiboot(ram, plain(), { cmdline: "ignored" });
    expect(boot).toMatchObject({ kind: "elf", header: null, info: null, entry: TEXT });
    expect(boot.state).toEqual({ eip: TEXT, eflags: 2, eax: 0, ebx: 0, ecx: 0, edx: 0, esp: 8 * MiB, ebp: 0, esi: 0, edi: 0 });
    expect(ram.ram.subarray(0, MiB).every((b) => b === 0xee)).toBe(true);
    expect(Array.from(ram.ram.subarray(TEXT, TEXT + CODE.length))).toEqual(CODE);
  });

  it("is refused when a segment reaches into the stack area at the top of RAM", () => {
    const ramSize = 2 * MiB;
    const f = buildElf(TEXT, [{ paddr: TEXT, data: CODE }, { paddr: ramSize - STACK_RESERVE - 0x10, memsz: 0x20, flags: PF_R | PF_W }]);
    const e = refusedLoad(f, ramSize);
    expect(e.message).toMatch(/no room for the initial stack: segment 1 \[0x1efff0, 0x1f0010\) reaches into the top 64 KiB of RAM \[0x1f0000, 0x200000\)/);
    expect(e.offset).toBe(ph(1) + 12);
    // Just below the reserve is fine.
    set32(f, ph(1) + 12, ramSize - STACK_RESERVE - 0x20);
    expect(prepareBoot(f, ramSize).kind).toBe("elf");
  });
});

describe("refuses", () => {
  it("a file that is neither ELF nor Multiboot", () => {
    const e = refusedLoad(Uint8Array.from([0x4d, 0x5a, 0x90, 0, 3, 0, 0, 0]));
    expect(e.problem).toMatch(/neither an ELF file nor a Multiboot image/);
    expect(e.offset).toBe(0);
  });

  it("an empty file", () => {
    expect(refusedLoad(new Uint8Array(0)).problem).toMatch(/neither an ELF file nor a Multiboot image/);
  });

  it("a non-ELF Multiboot image without address fields", () => {
    const e = refusedLoad(Uint8Array.from([...header(3), ...CODE]));
    expect(e.problem).toMatch(/not an ELF file, and the Multiboot header gives no load addresses \(flags bit 16 clear\)/);
    expect(e.offset).toBe(4);
  });

  it("a bad Multiboot checksum", () => {
    const e = refusedLoad(mbElf(HDR_FLAGS, 5));
    expect(e.problem).toBe("bad Multiboot header checksum: magic + flags + checksum = 0x5, must be 0");
    expect(e.offset).toBe(dataAt(2) + 8);
    expect(e.message).toBe(`bad Multiboot image: ${e.problem} (at file offset 0x${(dataAt(2) + 8).toString(16)})`);
  });

  it("a truncated file: a header cut short, and an ELF cut short", () => {
    const f = mbElf();
    let e = refusedLoad(f.subarray(0, dataAt(2) + 8));
    expect(e.problem).toMatch(/truncated file: the Multiboot header at 0x74 needs 12 bytes, the file ends at 0x7c/);
    expect(e.offset).toBe(dataAt(2));
    const aout = Uint8Array.from(header(0x10003, [1, 2, 3])); // flag 16 wants 32 bytes
    e = refusedLoad(aout);
    expect(e.problem).toMatch(/truncated file: the Multiboot header at 0x0 \(flags 0x10003\) is 32 bytes, the file ends at 0x18/);
    e = refusedLoad(f.subarray(0, f.length - 2));
    expect(e).toBeInstanceOf(ElfError);
    expect(e.problem).toMatch(/truncated file: segment 1 needs file bytes/);
    expect(e.offset).toBe(ph(1) + 4);
  });

  it("a header that runs past the first 8 KiB", () => {
    const f = new Uint8Array(0x3000);
    f.set(header(0x10003, [0, 0, 0, 0, 0]), 8192 - 20);
    expect(refusedLoad(f).problem).toMatch(/the Multiboot header at 0x1fec \(flags 0x10003, 32 bytes\) runs past the first 8 KiB/);
  });

  it("the wrong ELF class", () => {
    const f = mbElf();
    f[4] = 2;
    const e = refusedLoad(f);
    expect(e).toBeInstanceOf(ElfError);
    expect(e.problem).toMatch(/wrong class 2 \(ELFCLASS64\), expected ELFCLASS32/);
    expect(e.offset).toBe(4);
  });

  it("the wrong machine", () => {
    const f = mbElf();
    set16(f, 18, 62);
    const e = refusedLoad(f);
    expect(e.problem).toMatch(/wrong machine 62 \(EM_X86_64\), expected EM_386/);
    expect(e.offset).toBe(18);
  });

  it("a segment outside RAM", () => {
    const e = refusedLoad(mbElf(), 1 * MiB);
    expect(e.problem).toMatch(/segment 0 \[0x100000, 0x100013\) is outside RAM \[0, 0x100000\)/);
    expect(e.offset).toBe(ph(0) + 12);
  });

  it("overlapping segments", () => {
    const f = buildElf(TEXT + 12, [
      { paddr: TEXT, data: [...header(3), ...CODE] },
      { paddr: TEXT + 0x10, memsz: 0x100, flags: PF_R | PF_W },
    ]);
    const e = refusedLoad(f);
    expect(e.problem).toMatch(/segments 0 \[0x100000, 0x100013\) and 1 \[0x100010, 0x100110\) overlap/);
    expect(e.offset).toBe(ph(1));
  });

  it("no entry point", () => {
    const f = mbElf();
    set32(f, 24, 0);
    const e = refusedLoad(f);
    expect(e.problem).toBe("no entry point (e_entry is 0)");
    expect(e.offset).toBe(24);
    set32(f, 24, 0x300000);
    expect(refusedLoad(f).problem).toMatch(/entry point 0x300000 is not inside any loaded segment/);
  });

  it("a kernel that requires a video mode or an unknown feature", () => {
    let e = refusedLoad(buildElf(TEXT + 48, [{ paddr: TEXT, data: [...header(0x7, [0, 0, 0, 0, 0, 0, 1024, 768, 32]), ...CODE] }]));
    expect(e.problem).toMatch(/requires a video mode \(header flags bit 2\): lockstep has no display/);
    expect(e.offset).toBe(dataAt(1) + 4);
    e = refusedLoad(mbElf(0x8 | 0x4000 | 0x3));
    expect(e.problem).toBe("the kernel requires features this loader does not know (header flags bits 3, 14)");
    // Optional bits (16-31) other than 16 are ignored.
    expect(prepareBoot(mbElf(0x3 | 0x80000000), 4 * MiB).kind).toBe("multiboot-elf");
  });

  it("an information structure that would overlap the image", () => {
    const f = buildElf(0x8000 + 12, [{ paddr: 0x7000, data: [], memsz: 0x1004, flags: PF_R | PF_W }, { paddr: 0x8004, data: [...header(3), ...CODE] }]);
    set32(f, 24, 0x8004 + 12);
    const e = refusedLoad(f);
    expect(e.problem).toMatch(/the boot information \[0x8000, 0x80ba\) would overlap segment 0 \[0x7000, 0x8004\) of the image/);
    expect(e.offset).toBe(ph(0));
  });

  it("an information structure that does not fit below 640 KiB", () => {
    const long = "x".repeat(LOW_MEMORY_END_FOR_TEST - MB_INFO_ADDR);
    const e = refusedLoad(mbElf(), 4 * MiB, long);
    expect(e.problem).toMatch(/the boot information \(\d+ bytes, with a 622592-byte command line\) does not fit in \[0x8000, 0xa0000\)/);
    expect(e.offset).toBe(dataAt(2));
    // The longest command line that fits.
    const fits = "x".repeat(LOW_MEMORY_END_FOR_TEST - MB_INFO_ADDR - 128 - 48 - 9 - 1);
    const ram = new FakeRam(4 * MiB);
    expect(loadMultiboot(ram, mbElf(), { cmdline: fits }).info!.end).toBe(LOW_MEMORY_END_FOR_TEST);
    expect(decodeInfo(ram, MB_INFO_ADDR).cmdline).toBe(fits);
  });
});

const LOW_MEMORY_END_FOR_TEST = 640 * 1024;
