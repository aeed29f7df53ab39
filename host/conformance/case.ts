// The single-instruction CPU test case (docs/test-case-format.md): types and a
// strict parser that names the line and the field when a case is malformed.

import { REG_NAMES, type RegName } from "../engine/engine.js";

export interface MemWindow {
  addr: number;
  bytes: Uint8Array;
}
export interface CaseState {
  regs: Record<RegName, number>;
  flags: number;
  eip: number;
  mem: MemWindow[];
}
export interface TestCase {
  name: string;
  i: number;
  bytes: Uint8Array;
  init: CaseState;
  final: CaseState & { exception: string | null };
  flagsMask: number;
  undefRegs: RegName[];
  undefMem: number[];
  /** 1-based line in its file, for messages. */
  line: number;
}

export class CaseFormatError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
  }
}

const U32_MAX = 0xffffffff;
/** Cases keep their memory (and the instruction) in the first 4 MiB of guest memory. */
export const CASE_ADDR_LIMIT = 4 << 20;

function fail(path: string, what: string): never {
  throw new Error(`${path}: ${what}`);
}
function u32(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > U32_MAX) fail(path, `expected an unsigned 32-bit integer, got ${JSON.stringify(v)}`);
  return v;
}
function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, "expected an object");
  return v as Record<string, unknown>;
}
function hex(v: unknown, path: string): Uint8Array {
  if (typeof v !== "string" || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) fail(path, "expected an even-length hex string");
  const out = new Uint8Array(v.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(v.slice(2 * i, 2 * i + 2), 16);
  return out;
}
function state(v: unknown, path: string): CaseState {
  const o = obj(v, path);
  const r = obj(o.regs, `${path}.regs`);
  const regs = {} as Record<RegName, number>;
  for (const n of REG_NAMES) regs[n] = u32(r[n], `${path}.regs.${n}`);
  const memRaw = o.mem ?? [];
  if (!Array.isArray(memRaw)) fail(`${path}.mem`, "expected an array");
  const mem = memRaw.map((w, k) => {
    const wo = obj(w, `${path}.mem[${k}]`);
    return { addr: u32(wo.addr, `${path}.mem[${k}].addr`), bytes: hex(wo.hex, `${path}.mem[${k}].hex`) };
  });
  return { regs, flags: u32(o.flags, `${path}.flags`), eip: u32(o.eip, `${path}.eip`), mem };
}

/** Parses one JSON line; throws CaseFormatError naming file, line and field. */
export function parseCase(text: string, file: string, line: number): TestCase {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CaseFormatError(file, line, `not valid JSON (${(e as Error).message})`);
  }
  try {
    const o = obj(raw, "case");
    if (typeof o.name !== "string" || o.name === "") fail("name", "expected a non-empty string");
    const bytes = hex(o.bytes, "bytes");
    if (bytes.length === 0 || bytes.length > 15) fail("bytes", `an instruction is 1 to 15 bytes, got ${bytes.length}`);
    const init = state(o.init, "init");
    const fo = obj(o.final, "final");
    const final = state(fo, "final");
    const exc = fo.exception ?? null;
    if (exc !== null && typeof exc !== "string") fail("final.exception", "expected null or a string");
    if (final.mem.length !== init.mem.length) fail("final.mem", "must list the same windows as init.mem");
    final.mem.forEach((w, k) => {
      if (w.addr !== init.mem[k].addr || w.bytes.length !== init.mem[k].bytes.length) fail(`final.mem[${k}]`, "must match init.mem's window");
    });
    const inLimit = (addr: number, len: number) => addr + len <= CASE_ADDR_LIMIT;
    init.mem.forEach((w, k) => {
      if (!inLimit(w.addr, w.bytes.length)) fail(`init.mem[${k}]`, `window 0x${w.addr.toString(16)}+${w.bytes.length} reaches past 4 MiB`);
    });
    if (!inLimit(init.eip, bytes.length)) fail("init.eip", `instruction at 0x${init.eip.toString(16)} reaches past 4 MiB`);
    if (o.i !== undefined && (typeof o.i !== "number" || !Number.isInteger(o.i) || o.i < 0)) fail("i", "expected a non-negative integer");
    const undef = o.undef === undefined ? {} : obj(o.undef, "undef");
    const undefRegs = (undef.regs ?? []) as unknown[];
    const undefMem = (undef.mem ?? []) as unknown[];
    if (!Array.isArray(undefRegs)) fail("undef.regs", "expected an array");
    if (!Array.isArray(undefMem)) fail("undef.mem", "expected an array");
    for (const r of undefRegs) if (!REG_NAMES.includes(r as RegName)) fail("undef.regs", `unknown register ${JSON.stringify(r)}`);
    undefMem.forEach((a, k) => {
      const addr = u32(a, `undef.mem[${k}]`);
      if (!init.mem.some((w) => addr >= w.addr && addr < w.addr + w.bytes.length)) fail(`undef.mem[${k}]`, `0x${addr.toString(16)} is in no memory window`);
    });
    return {
      name: o.name,
      i: typeof o.i === "number" ? o.i : 0,
      bytes,
      init,
      final: { ...final, exception: exc as string | null },
      flagsMask: u32(o.flags_mask, "flags_mask"),
      undefRegs: undefRegs as RegName[],
      undefMem: undefMem.map((a, k) => u32(a, `undef.mem[${k}]`)),
      line,
    };
  } catch (e) {
    if (e instanceof CaseFormatError) throw e;
    throw new CaseFormatError(file, line, (e as Error).message);
  }
}

/** Parses a whole JSON-lines file (blank lines are skipped). */
export function parseCases(text: string, file: string): TestCase[] {
  const out: TestCase[] = [];
  const lines = text.split("\n");
  for (let k = 0; k < lines.length; k++) {
    const l = lines[k].trim();
    if (l === "") continue;
    out.push(parseCase(l, file, k + 1));
  }
  return out;
}
