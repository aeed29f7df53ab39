// Platform primitives for the WebAssembly build of the core.
//
// The core (everything in assembly/ but target/) is written in a portable subset
// of AssemblyScript that also compiles as plain TypeScript. Everything that needs
// raw linear memory, 64-bit integers or wasm-only builtins lives behind the
// functions of this file; target/js.ts implements the same functions for the
// pure-TypeScript engine (scripts/build-engines.mjs swaps the import).
//
// Linear memory layout (fixed addresses, so the register file is one load away):
//   0x01000  state words (registers, EIP, flags, exit info...), see state.ts
//   0x10000  dirty-page bytemap, one byte per 4 KiB guest page (up to 1 GiB)
//   0x50000  AssemblyScript static data (asc --memoryBase)
//   0x100000 decoded-instruction cache: 65536 entries of 8 words (icache.ts)
//   0x300000 guest RAM, followed by 16 bytes of 0xFF padding (instruction fetch
//            may read up to 15 bytes past a start address that is inside RAM),
//            then one generation word per 256-byte line of RAM (icache.ts)

const ST_BASE: usize = 0x1000;
const DIRTY_BASE: usize = 0x10000;
const IC_BASE: usize = 0x100000;
const RAM_BASE: usize = 0x300000;
let genBase: usize = 0;
export const MAX_RAM: i32 = 0x40000000;

// ---- state words -------------------------------------------------------------
// @ts-ignore: decorator
@inline export function st(i: i32): i32 { return load<i32>(ST_BASE + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline export function setSt(i: i32, v: i32): void { store<i32>(ST_BASE + (<usize>i << 2), v); }

// The register file: words 0..7 of the state (EAX ECX EDX EBX ESP EBP ESI EDI).
// 8-bit register r: AL CL DL BL are byte 0 of regs 0..3, AH CH DH BH byte 1.
// @ts-ignore: decorator
@inline export function reg8(r: i32): i32 { return <i32>load<u8>(ST_BASE + (<usize>(r & 3) << 2) + (<usize>r >> 2)); }
// @ts-ignore: decorator
@inline export function setReg8(r: i32, v: i32): void { store<u8>(ST_BASE + (<usize>(r & 3) << 2) + (<usize>r >> 2), <u8>v); }
// @ts-ignore: decorator
@inline export function reg16(r: i32): i32 { return <i32>load<u16>(ST_BASE + (<usize>r << 2)); }
// @ts-ignore: decorator
@inline export function setReg16(r: i32, v: i32): void { store<u16>(ST_BASE + (<usize>r << 2), <u16>v); }

// ---- guest RAM (callers have checked the bounds) ------------------------------
// @ts-ignore: decorator
@inline export function ram8(a: i32): i32 { return <i32>load<u8>(RAM_BASE + <usize><u32>a); }
// @ts-ignore: decorator
@inline export function ram16(a: i32): i32 { return <i32>load<u16>(RAM_BASE + <usize><u32>a); }
// @ts-ignore: decorator
@inline export function ram32(a: i32): i32 { return load<i32>(RAM_BASE + <usize><u32>a); }
// @ts-ignore: decorator
@inline export function setRam8(a: i32, v: i32): void { store<u8>(RAM_BASE + <usize><u32>a, <u8>v); }
// @ts-ignore: decorator
@inline export function setRam16(a: i32, v: i32): void { store<u16>(RAM_BASE + <usize><u32>a, <u16>v); }
// @ts-ignore: decorator
@inline export function setRam32(a: i32, v: i32): void { store<i32>(RAM_BASE + <usize><u32>a, v); }
// Marks the 4 KiB page holding guest address a as written.
// @ts-ignore: decorator
@inline export function markDirty(a: i32): void { store<u8>(DIRTY_BASE + (<usize><u32>a >> 12), 1); }

// ---- decoded-instruction cache and code-line generations -------------------
// @ts-ignore: decorator
@inline export function ic(i: i32): i32 { return load<i32>(IC_BASE + (<usize><u32>i << 2)); }
// @ts-ignore: decorator
@inline export function setIc(i: i32, v: i32): void { store<i32>(IC_BASE + (<usize><u32>i << 2), v); }
/** Generation of the 256-byte RAM line holding guest address a (a inside RAM). */
// @ts-ignore: decorator
@inline export function lineGen(a: i32): i32 { return load<i32>(genBase + ((<usize><u32>a >> 8) << 2)); }
/** A store to address a (inside RAM): the line's generation moves on. Returns the new value. */
// @ts-ignore: decorator
@inline export function bumpLine(a: i32): i32 {
  const p = genBase + ((<usize><u32>a >> 8) << 2);
  const g = load<i32>(p) + 1;
  store<i32>(p, g);
  return g;
}
/**
 * Invalidates every entry: entry i is only ever looked up for addresses whose
 * low 16 bits are i, so a tag of i ^ 1 can match no address at all.
 */
export function icClearTags(): void {
  for (let i: usize = 0; i < 65536; i++) store<i32>(IC_BASE + (i << 5), <i32>(i ^ 1));
}

// Copies n bytes inside guest RAM (both ranges checked by the caller; may overlap
// only when the caller knows a forward copy is what the guest would see).
export function ramCopy(dst: i32, src: i32, n: i32): void {
  memory.copy(RAM_BASE + <usize><u32>dst, RAM_BASE + <usize><u32>src, <usize><u32>n);
}
export function ramFill(dst: i32, v: i32, n: i32): void {
  memory.fill(RAM_BASE + <usize><u32>dst, <u8>v, <usize><u32>n);
}
export function dirtyFill(firstPage: i32, n: i32): void {
  memory.fill(DIRTY_BASE + <usize><u32>firstPage, 1, <usize><u32>n);
}

// ---- integer helpers -------------------------------------------------------------
// @ts-ignore: decorator
@inline export function ltu(a: i32, b: i32): bool { return <u32>a < <u32>b; }
// @ts-ignore: decorator
@inline export function leu(a: i32, b: i32): bool { return <u32>a <= <u32>b; }
// @ts-ignore: decorator
@inline export function imul(a: i32, b: i32): i32 { return a * b; }
// 1 when the low byte of v has an even number of set bits (x86 PF).
// @ts-ignore: decorator
@inline export function parity8(v: i32): i32 { return (popcnt<i32>(v & 0xff) & 1) ^ 1; }
// @ts-ignore: decorator
@inline export function clz32(v: i32): i32 { return clz<i32>(v); }
// @ts-ignore: decorator
@inline export function ctz32(v: i32): i32 { return ctz<i32>(v); }

/** Signed 32-bit division truncating toward zero (callers exclude d == 0 and INT_MIN / -1). */
// @ts-ignore: decorator
@inline export function sdiv32(n: i32, d: i32): i32 { return n / d; }

let hiWord: i32 = 0;
let remWord: i32 = 0;
/** High half of the last mul64 / quotient's remainder of the last div64. */
export function mulHigh(): i32 { return hiWord; }
export function divRemainder(): i32 { return remWord; }

/** Unsigned 32x32 -> 64 product: returns the low half, mulHigh() the high half. */
export function mulU64(a: i32, b: i32): i32 {
  const p: u64 = ((<u64>a) & 0xffffffff) * ((<u64>b) & 0xffffffff);
  hiWord = <i32>(p >>> 32);
  return <i32>p;
}
/** Signed 32x32 -> 64 product. */
export function mulS64(a: i32, b: i32): i32 {
  const p: i64 = <i64>a * <i64>b;
  hiWord = <i32>(p >>> 32);
  return <i32>p;
}
/** Unsigned (hi:lo) / d. Returns the quotient, or sets overflow (1) when it does not fit in 32 bits. d != 0. */
export function divU64(hi: i32, lo: i32, d: i32): i32 {
  // Zero-extend with explicit masks: asc 0.28 folded <u64><u32>x of a loaded
  // i32 into a sign-extending i64.load32_s.
  const n: u64 = (((<u64>hi) & 0xffffffff) << 32) | ((<u64>lo) & 0xffffffff);
  const ud: u64 = (<u64>d) & 0xffffffff;
  const q: u64 = n / ud;
  if (q > 0xffffffff) { remWord = 0; hiWord = 1; return 0; }
  remWord = <i32>(n % ud);
  hiWord = 0;
  return <i32>q;
}
/** Signed (hi:lo) / d, truncating. hiWord = 1 on overflow (quotient outside i32). */
export function divS64(hi: i32, lo: i32, d: i32): i32 {
  const n: i64 = ((<i64>hi) << 32) | ((<i64>lo) & 0xffffffff);
  // -2^63 / -1 overflows i64 itself: a #DE on x86 too.
  if (d == -1 && n == i64.MIN_VALUE) { hiWord = 1; return 0; }
  const q: i64 = n / <i64>d;
  if (q > 0x7fffffff || q < -0x80000000) { hiWord = 1; return 0; }
  remWord = <i32>(n % <i64>d);
  hiWord = 0;
  return <i32>q;
}

// ---- memory set-up (called once by init) -------------------------------------
export function targetInit(ramSize: i32): void {
  genBase = RAM_BASE + <usize><u32>ramSize + 16;
  const genBytes: usize = (<usize><u32>ramSize >> 8) << 2;
  const need: usize = genBase + genBytes;
  const pages = <i32>((need + 0xffff) >> 16);
  const have = memory.size();
  if (pages > have) memory.grow(pages - have);
  memory.fill(ST_BASE, 0, 0x1000);
  memory.fill(DIRTY_BASE, 0, 0x40000);
  memory.fill(RAM_BASE, 0, <usize><u32>ramSize);
  memory.fill(RAM_BASE + <usize><u32>ramSize, 0xff, 16);
  memory.fill(genBase, 0, genBytes);
  // A reused instance (host/engine/load.ts pools them) must equal a fresh one.
  memory.fill(IC_BASE, 0, 65536 << 5);
  icClearTags();
  hiWord = 0;
  remWord = 0;
}

/** Addresses for the host's zero-copy views (wasm engine only). */
export function ramBase(): i32 { return <i32>RAM_BASE; }
export function dirtyBase(): i32 { return <i32>DIRTY_BASE; }
export function stateBase(): i32 { return <i32>ST_BASE; }
export function icacheBase(): i32 { return <i32>IC_BASE; }
export function lineGenBase(): i32 { return <i32>genBase; }
