// Builds small ELF32 i386 executables in memory for the loader and runner
// tests: an ELF header, the program headers at offset 52, then each
// segment's bytes in order. Tests corrupt the result with set16/set32.

export const PT_LOAD = 1;
export const PF_X = 1, PF_W = 2, PF_R = 4;

export interface SegSpec {
  type?: number;
  paddr: number;
  vaddr?: number;
  data?: ArrayLike<number>;
  /** p_memsz (default: the data length). */
  memsz?: number;
  /** PF_* (default R+X). */
  flags?: number;
  /** Overrides p_offset (by default the data follows the headers). */
  offset?: number;
}

export function buildElf(entry: number, segs: SegSpec[]): Uint8Array {
  const phoff = 52;
  let dataAt = phoff + 32 * segs.length;
  const size = dataAt + segs.reduce((s, g) => s + (g.data?.length ?? 0), 0);
  const file = new Uint8Array(size);
  file.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0);
  set16(file, 16, 2); // ET_EXEC
  set16(file, 18, 3); // EM_386
  set32(file, 20, 1);
  set32(file, 24, entry);
  set32(file, 28, phoff);
  set16(file, 40, 52);
  set16(file, 42, 32);
  set16(file, 44, segs.length);
  segs.forEach((g, i) => {
    const at = phoff + 32 * i;
    const data = g.data ?? [];
    set32(file, at, g.type ?? PT_LOAD);
    set32(file, at + 4, g.offset ?? dataAt);
    set32(file, at + 8, g.vaddr ?? g.paddr);
    set32(file, at + 12, g.paddr);
    set32(file, at + 16, data.length);
    set32(file, at + 20, g.memsz ?? data.length);
    set32(file, at + 24, g.flags ?? PF_R | PF_X);
    set32(file, at + 28, 0x1000);
    file.set(Array.from(data), dataAt);
    dataAt += data.length;
  });
  return file;
}

/** One executable segment holding `code` at `at`, entered at its start. */
export const codeElf = (code: ArrayLike<number>, at = 0x100000): Uint8Array =>
  buildElf(at, [{ paddr: at, data: code, flags: PF_R | PF_X }]);

export const set16 = (f: Uint8Array, at: number, v: number): void =>
  new DataView(f.buffer, f.byteOffset, f.byteLength).setUint16(at, v, true);
export const set32 = (f: Uint8Array, at: number, v: number): void =>
  new DataView(f.buffer, f.byteOffset, f.byteLength).setUint32(at, v >>> 0, true);
