// The single-instruction CPU test case (docs/test-case-format.md): types and a
// strict parser that names the line and the field when a case is malformed.
// Every field the format requires must be present with its type and shape: a
// case that silently defaulted a missing field would test something other than
// what its author wrote.

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
/** EFLAGS bit 1 is reserved and always reads as 1. */
const FLAGS_FIXED_BIT = 0x2;
/** Cases keep their memory (and the instruction) in the first 4 MiB of guest memory. */
export const CASE_ADDR_LIMIT = 4 << 20;

function fail(path: string, what: string): never {
  throw new Error(`${path}: ${what}`);
}
/** The value of a required field; a missing one is named as missing, not as a wrong type. */
function need(o: Record<string, unknown>, key: string, path: string): unknown {
  if (!Object.hasOwn(o, key) || o[key] === undefined) fail(path, "required field is missing");
  return o[key];
}
function u32(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > U32_MAX) fail(path, `expected an unsigned 32-bit integer, got ${JSON.stringify(v)}`);
  return v;
}
function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, `expected an object, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}
function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, `expected an array, got ${JSON.stringify(v)}`);
  return v;
}
function hex(v: unknown, path: string): Uint8Array {
  if (typeof v !== "string" || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) fail(path, `expected an even-length hex string, got ${JSON.stringify(v)}`);
  const out = new Uint8Array(v.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(v.slice(2 * i, 2 * i + 2), 16);
  return out;
}
function regsOf(v: unknown, path: string): Record<RegName, number> {
  const r = obj(v, path);
  for (const k of Object.keys(r)) if (!REG_NAMES.includes(k as RegName)) fail(`${path}.${k}`, `not a general register (expected ${REG_NAMES.join(" ")})`);
  const regs = {} as Record<RegName, number>;
  for (const n of REG_NAMES) regs[n] = u32(need(r, n, `${path}.${n}`), `${path}.${n}`);
  return regs;
}
function state(v: unknown, path: string): CaseState {
  const o = obj(v, path);
  const regs = regsOf(need(o, "regs", `${path}.regs`), `${path}.regs`);
  const flags = u32(need(o, "flags", `${path}.flags`), `${path}.flags`);
  if ((flags & FLAGS_FIXED_BIT) === 0) fail(`${path}.flags`, `bit 1 of EFLAGS is always set, got 0x${flags.toString(16)}`);
  const eip = u32(need(o, "eip", `${path}.eip`), `${path}.eip`);
  const mem = arr(need(o, "mem", `${path}.mem`), `${path}.mem`).map((w, k) => {
    const at = `${path}.mem[${k}]`;
    const wo = obj(w, at);
    return { addr: u32(need(wo, "addr", `${at}.addr`), `${at}.addr`), bytes: hex(need(wo, "hex", `${at}.hex`), `${at}.hex`) };
  });
  return { regs, flags, eip, mem };
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
    const name = need(o, "name", "name");
    if (typeof name !== "string" || name === "") fail("name", `expected a non-empty string, got ${JSON.stringify(name)}`);
    const i = need(o, "i", "i");
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0) fail("i", `expected a non-negative integer, got ${JSON.stringify(i)}`);
    const bytes = hex(need(o, "bytes", "bytes"), "bytes");
    if (bytes.length === 0 || bytes.length > 15) fail("bytes", `an instruction is 1 to 15 bytes, got ${bytes.length}`);
    const init = state(need(o, "init", "init"), "init");
    const fo = obj(need(o, "final", "final"), "final");
    const final = state(fo, "final");
    const exc = need(fo, "exception", "final.exception");
    if (exc !== null && (typeof exc !== "string" || exc === "")) fail("final.exception", `expected null or an exception mnemonic such as "DE", got ${JSON.stringify(exc)}`);
    const flagsMask = u32(need(o, "flags_mask", "flags_mask"), "flags_mask");
    if (final.mem.length !== init.mem.length) fail("final.mem", "must list the same windows as init.mem");
    final.mem.forEach((w, k) => {
      if (w.addr !== init.mem[k].addr || w.bytes.length !== init.mem[k].bytes.length) fail(`final.mem[${k}]`, "must match init.mem's window");
    });
    const inLimit = (addr: number, len: number) => addr + len <= CASE_ADDR_LIMIT;
    init.mem.forEach((w, k) => {
      if (!inLimit(w.addr, w.bytes.length)) fail(`init.mem[${k}]`, `window 0x${w.addr.toString(16)}+${w.bytes.length} reaches past 4 MiB`);
    });
    if (!inLimit(init.eip, bytes.length)) fail("init.eip", `instruction at 0x${init.eip.toString(16)} reaches past 4 MiB`);
    // `undef` is optional; when present it carries both lists (either may be empty).
    let undefRegs: RegName[] = [];
    let undefMem: number[] = [];
    if (o.undef !== undefined) {
      const undef = obj(o.undef, "undef");
      undefRegs = arr(need(undef, "regs", "undef.regs"), "undef.regs").map((r, k) => {
        if (!REG_NAMES.includes(r as RegName)) fail(`undef.regs[${k}]`, `unknown register ${JSON.stringify(r)}`);
        return r as RegName;
      });
      undefMem = arr(need(undef, "mem", "undef.mem"), "undef.mem").map((a, k) => {
        const addr = u32(a, `undef.mem[${k}]`);
        if (!init.mem.some((w) => addr >= w.addr && addr < w.addr + w.bytes.length)) fail(`undef.mem[${k}]`, `0x${addr.toString(16)} is in no memory window`);
        return addr;
      });
    }
    return { name, i, bytes, init, final: { ...final, exception: exc }, flagsMask, undefRegs, undefMem, line };
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
