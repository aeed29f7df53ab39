// Divergence checks between the replicas (docs/ft.md, "Divergence
// detection"). Every `checkEvery` instructions the primary stops its guest
// exactly at the multiple and sends a digest of its machine (a CHECK frame):
// the CPU's registers as values (so the first one that differs can be
// named), a hash of each part of the device state, and a hash of each page
// the guest dirtied since the last check (this check's own DirtyUser on the
// machine's tracker, host/engine/dirty.ts). The backup computes the same
// digest when its replay reaches that count and compares: a page dirtied on
// one side only is a divergence as much as a page whose bytes differ.
//
// A diverged backup asks for repair with the hashes of all its pages
// (REPAIR); the primary's state transfer (state-transfer.ts) then sends only
// the pages whose hash differs, and the backup rebuilds its machine from its
// own RAM with those pages laid over it. This file holds the digest, its
// comparison and the page hashes; the replicas (replica.ts) decide when.

import type { DirtyUser } from "../engine/dirty.js";
import { REG_NAMES, SEG_NAMES, type ArchState } from "../engine/engine.js";
import type { Machine, MachineState } from "../machine/machine.js";
import { allZero, sameBytes } from "../common/bytes.js";
import { canonicalJson, hashBytes } from "../common/hash.js";
import { MAX_CHECK_PAGES, PAGE_BYTES, SHORT_HASH_BYTES, type Frame } from "./wire.js";

export type CheckFrame = Extract<Frame, { type: "check" }>;
export type RepairFrame = Extract<Frame, { type: "repair" }>;

/** The default check interval of `lockstep ft`, in instructions (docs/ft.md gives its cost). */
export const DEFAULT_CHECK_EVERY = 20_000_000;
/** Pages each check scrubs by default (dirty or not): all of a 32 MiB RAM in 128 checks. */
export const DEFAULT_SCRUB_PAGES = 64;

const utf8 = new TextEncoder();
const short = (h: Uint8Array) => h.slice(0, SHORT_HASH_BYTES);

export const isZeroPage = (ram: Uint8Array, index: number) => allZero(ram.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES));

/** A page's hash: BLAKE3 of its 4 KiB, cut to 128 bits (enough against chance; the channel's tag keeps forgers out). */
export function pageHash(ram: Uint8Array, index: number): Uint8Array {
  return short(hashBytes(ram.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES)));
}

/** The CPU's state as named values: general registers first, then EIP and EFLAGS, then the rest by name. */
export function namedRegisters(cpu: ArchState): { name: string; value: bigint }[] {
  const u = (v: number) => BigInt.asUintN(64, BigInt(v));
  const out: { name: string; value: bigint }[] = cpu.regs.map((v, i) => ({ name: REG_NAMES[i] ?? `r${i}`, value: u(v) }));
  out.push({ name: "eip", value: u(cpu.eip) }, { name: "eflags", value: u(cpu.eflags) });
  const segField: Record<string, string> = { segSel: "sel", segBase: "base", segLimit: "limit", segAttr: "attr" };
  const rec = cpu as unknown as Record<string, unknown>;
  for (const key of Object.keys(rec).sort()) {
    if (key === "regs" || key === "eip" || key === "eflags") continue;
    const v = rec[key];
    if (key === "icount") out.push({ name: "icount", value: BigInt(v as string) });
    else if (typeof v === "number") out.push({ name: key, value: u(v) });
    else if (Array.isArray(v)) {
      v.forEach((x: number, i) => {
        const name = key in segField ? `${SEG_NAMES[i]}.${segField[key]}` : key === "gdt" || key === "idt" ? `${key}.${i === 0 ? "base" : "limit"}` : `${key}${i}`;
        out.push({ name, value: u(x) });
      });
    }
  }
  return out;
}

/** The device state in parts, each hashed: the machine's own (guest time, idle skips, exit status) and each device by name. */
export function deviceParts(s: MachineState): { name: string; hash: Uint8Array }[] {
  const parts: { name: string; hash: Uint8Array }[] = [
    { name: "machine", hash: short(hashBytes(utf8.encode(canonicalJson({ time: s.time, wallEpochMs: s.wallEpochMs, idleSkips: s.idleSkips, exitStatus: s.exitStatus })))) },
  ];
  for (const name of Object.keys(s.devices).sort()) parts.push({ name, hash: short(hashBytes(utf8.encode(canonicalJson(s.devices[name])))) });
  return parts;
}

/**
 * Per-page entries grouped by `span` pages (entry n: pages [n*span,
 * (n+1)*span)), each group's hash over its dirty pages' indices and
 * hashes: a CHECK too large for one frame at span 1 is sent coarser.
 */
export function groupPages(pages: { index: number; hash: Uint8Array }[], span: number): { index: number; hash: Uint8Array }[] {
  if (span === 1) return pages;
  const out: { index: number; hash: Uint8Array }[] = [];
  let i = 0;
  while (i < pages.length) {
    const g = Math.floor(pages[i]!.index / span);
    const parts: Uint8Array[] = [];
    for (; i < pages.length && Math.floor(pages[i]!.index / span) === g; i++) {
      const idx = new Uint8Array(4);
      new DataView(idx.buffer).setUint32(0, pages[i]!.index, true);
      parts.push(idx, pages[i]!.hash);
    }
    out.push({ index: g, hash: short(hashBytes(...parts)) });
  }
  return out;
}

/**
 * The digest's source on one machine: its own dirty-page reader, reset
 * where both replicas start from one state, and (the primary's) a scrub
 * cursor going round RAM `scrubPages` pages a check.
 */
export class DivergenceCheck {
  private user: DirtyUser;
  private scrubNext = 0;

  constructor(private readonly m: Machine, private readonly scrubPages = DEFAULT_SCRUB_PAGES) {
    this.user = m.dirty.register("divergence");
    this.user.take();
  }

  /** Both replicas hold the same state here (the start, or a state transfer's pause): pages dirtied before do not count. */
  reset(): void {
    this.user.take();
  }

  /**
   * The digest at this instruction boundary (span 1, or coarser if the
   * dirty pages would not fit a frame). `scrubFrom`: the scrub's first page
   * (the backup follows the primary's CHECK); by default the cursor's.
   */
  digest(scrubFrom?: { first: number; count: number }): CheckFrame {
    const s = this.m.saveState({ ram: "view" });
    const pages = this.user.take().map((index) => ({ index, hash: pageHash(s.ram, index) }));
    let span = 1;
    let entries = pages;
    while (entries.length > MAX_CHECK_PAGES) entries = groupPages(pages, (span *= 2));
    const total = s.ram.length / PAGE_BYTES;
    let first: number, count: number;
    if (scrubFrom) {
      first = Math.min(scrubFrom.first, total);
      count = Math.min(scrubFrom.count, total - first);
    } else {
      first = this.scrubNext;
      count = Math.min(this.scrubPages, total - first);
      this.scrubNext = first + count >= total ? 0 : first + count;
    }
    const scrub = { first, hashes: Array.from({ length: count }, (_, i) => pageHash(s.ram, first + i)) };
    return { type: "check", icount: this.m.engine.icount, regs: namedRegisters(s.cpu), parts: deviceParts(s), span, pages: entries, scrub };
  }

  unregister(): void {
    this.user.unregister();
  }
}

/** The first thing that differs between the primary's digest and the backup's, and how much differs. */
export interface Divergence {
  icount: bigint;
  first:
    | { kind: "register"; name: string; primary: bigint | null; backup: bigint | null }
    | { kind: "device"; name: string }
    | { kind: "page"; index: number; span: number; primary: "dirty" | "clean"; backup: "dirty" | "clean" }
    /** The backup's replay found the guest departing from the log between checks (host/replay/divergence.ts). */
    | { kind: "replay"; message: string };
  registers: number;
  devices: string[];
  pages: number;
}

/** Compares the primary's digest `p` with the backup's `b` (computed at span 1) at the same count; null when they agree. */
export function compareDigests(p: CheckFrame, b: CheckFrame): Divergence | null {
  if (p.icount !== b.icount) throw new Error(`divergence: digests at instructions ${p.icount} and ${b.icount}`);
  const firsts: Divergence["first"][] = [];
  const bRegs = new Map(b.regs.map((r) => [r.name, r.value]));
  const names = [...p.regs.map((r) => r.name), ...b.regs.map((r) => r.name).filter((n) => !p.regs.some((r) => r.name === n))];
  const pRegs = new Map(p.regs.map((r) => [r.name, r.value]));
  let registers = 0;
  for (const name of names) {
    const pv = pRegs.get(name) ?? null, bv = bRegs.get(name) ?? null;
    if (pv === bv) continue;
    registers++;
    if (registers === 1) firsts.push({ kind: "register", name, primary: pv, backup: bv });
  }
  const bParts = new Map(b.parts.map((x) => [x.name, x.hash]));
  const devices: string[] = [];
  for (const x of p.parts) {
    const h = bParts.get(x.name);
    if (!h || !sameBytes(h, x.hash)) devices.push(x.name);
  }
  for (const x of b.parts) if (!p.parts.some((y) => y.name === x.name)) devices.push(x.name);
  if (devices.length > 0) firsts.push({ kind: "device", name: devices[0]! });
  const bPages = groupPages(b.pages, p.span);
  const pm = new Map(p.pages.map((x) => [x.index, x.hash]));
  const bm = new Map(bPages.map((x) => [x.index, x.hash]));
  const indices = [...new Set([...pm.keys(), ...bm.keys()])].sort((x, y) => x - y);
  let pages = 0;
  for (const i of indices) {
    const ph = pm.get(i), bh = bm.get(i);
    if (ph && bh && sameBytes(ph, bh)) continue;
    pages++;
    if (pages === 1) firsts.push({ kind: "page", index: i * p.span, span: p.span, primary: ph ? "dirty" : "clean", backup: bh ? "dirty" : "clean" });
  }
  // The scrub: pages compared whether or not either side saw them dirtied.
  let scrubbed = 0;
  p.scrub.hashes.forEach((h, k) => {
    const bh = b.scrub.first === p.scrub.first ? b.scrub.hashes[k] : undefined;
    if (bh && sameBytes(h, bh)) return;
    scrubbed++;
    if (pages + scrubbed === 1) firsts.push({ kind: "page", index: p.scrub.first + k, span: 1, primary: "clean", backup: "clean" });
  });
  pages += scrubbed;
  if (firsts.length === 0) return null;
  return { icount: p.icount, first: firsts[0]!, registers, devices, pages };
}

const hex = (v: bigint | null) => (v === null ? "absent" : "0x" + v.toString(16));

/** One line for the operator: what differs first, and how much. */
export function describeDivergence(d: Divergence): string {
  const f = d.first;
  const what = f.kind === "replay" ? `the replay departed from the log (${f.message})`
    : f.kind === "register" ? `register ${f.name} is ${hex(f.primary)} on the primary, ${hex(f.backup)} here`
    : f.kind === "device" ? `device state differs (${d.devices.join(", ")})`
    : f.span === 1 ? `page ${f.index} differs (${f.primary !== f.backup ? `dirtied on the ${f.primary === "dirty" ? "primary" : "backup"} only` : f.primary === "dirty" ? "dirtied on both sides" : "dirtied on neither side: found by the scrub"})`
    : `pages ${f.index}..${f.index + f.span - 1} differ`;
  const more = [d.registers > (f.kind === "register" ? 1 : 0) ? `${d.registers} register(s)` : "", d.devices.length > 0 && f.kind !== "device" ? `device state (${d.devices.join(", ")})` : "", d.pages > (f.kind === "page" ? 1 : 0) ? `${d.pages} page entr${d.pages === 1 ? "y" : "ies"}` : ""].filter(Boolean);
  return `divergence at instruction ${d.icount}: ${what}${more.length > 0 ? `; in all ${more.join(", ")} differ` : ""}`;
}

/** Body bytes a REPAIR list costs (a page: a kind byte, and its hash unless zero). */
export const repairListBytes = (hashes: (Uint8Array | null)[]) => hashes.reduce((n, h) => n + (h === null ? 1 : 1 + SHORT_HASH_BYTES), 0);

/** Pages a diverged backup hashes for its REPAIR list per step: a large RAM at once would silence it past a failure timeout. */
export const REPAIR_STEP_PAGES = 1024;

/**
 * The backup's REPAIR frames for its RAM at the diverged count, a few
 * thousand pages a step: its page hashes, or a full transfer when the list
 * would cost as much as one (its own RAM standing in for the primary's,
 * which it cannot see). A page costs 1 or 17 bytes in the list and 4 or
 * 4,100 in a transfer, so the rule keeps the cost bounded rather than
 * firing in practice.
 */
export class RepairRequest {
  readonly full: boolean;
  private next = 0;
  private readonly total: number;
  /** Which pages are all zero (found once, for the rule and the list). */
  private readonly zero: Uint8Array;
  /** Body bytes of the page list sent so far. */
  bytes = 0;

  constructor(private readonly icount: bigint, private readonly ram: Uint8Array) {
    this.total = ram.length / PAGE_BYTES;
    this.zero = new Uint8Array(this.total);
    let list = 0, whole = 0;
    for (let i = 0; i < this.total; i++) {
      const zero = isZeroPage(ram, i);
      this.zero[i] = zero ? 1 : 0;
      list += zero ? 1 : 1 + SHORT_HASH_BYTES;
      whole += 4 + (zero ? 0 : PAGE_BYTES);
    }
    this.full = list >= whole;
  }

  get done(): boolean {
    return this.next >= this.total;
  }

  /** The next frame, covering up to `pages` pages (null once all is sent). */
  frame(pages = REPAIR_STEP_PAGES): RepairFrame | null {
    if (this.done) return null;
    if (this.full) {
      this.next = this.total;
      return { type: "repair", icount: this.icount, full: true, total: 0, first: 0, hashes: [] };
    }
    const first = this.next;
    const end = Math.min(this.total, first + Math.min(pages, MAX_CHECK_PAGES));
    const hashes: (Uint8Array | null)[] = [];
    for (let i = first; i < end; i++) hashes.push(this.zero[i] ? null : pageHash(this.ram, i));
    this.next = end;
    this.bytes += repairListBytes(hashes);
    return { type: "repair", icount: this.icount, full: false, total: this.total, first, hashes };
  }
}

/** A whole REPAIR request at once (figures, tests). */
export function repairRequest(icount: bigint, ram: Uint8Array): { frames: RepairFrame[]; full: boolean; bytes: number } {
  const r = new RepairRequest(icount, ram);
  const frames: RepairFrame[] = [];
  for (let f = r.frame(MAX_CHECK_PAGES); f; f = r.frame(MAX_CHECK_PAGES)) frames.push(f);
  return { frames, full: r.full, bytes: r.bytes };
}

/** The primary's side: REPAIR frames gathered until the list is whole. */
export class RepairList {
  private hashes: (Uint8Array | null)[] | null = null;
  private got = 0;
  bytes = 0;

  /** Takes a frame; returns the list when whole ("full": a whole transfer was asked), else null. Throws on a list that does not fit `pageCount`. */
  add(f: RepairFrame, pageCount: number): (Uint8Array | null)[] | "full" | null {
    if (f.full) return "full";
    if (f.total !== pageCount) throw new Error(`REPAIR for a RAM of ${f.total} pages; this one has ${pageCount}`);
    if (f.first !== this.got) throw new Error(`REPAIR pages from ${f.first}, expected ${this.got}`);
    this.hashes ??= new Array(pageCount);
    for (let i = 0; i < f.hashes.length; i++) this.hashes[f.first + i] = f.hashes[i]!;
    this.got += f.hashes.length;
    this.bytes += repairListBytes(f.hashes);
    return this.got === pageCount ? this.hashes : null;
  }
}
