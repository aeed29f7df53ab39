// Platform primitives for the pure-TypeScript build of the core: the same
// functions as target/wasm.ts (read that file first), over typed arrays.
// AssemblyScript casts vanish in JS, so every helper here returns values already
// normalised to signed 32-bit integers, the one representation the core uses.

export const MAX_RAM: i32 = 0x40000000;

// Fixed-size arrays are `const` so V8 can treat them as constants in optimized
// code (a reassigned module variable is reloaded and re-checked at every use).
// The line generations are sized for the largest RAM (16 MiB, which an OS
// commits only as pages are touched); only RAM itself depends on init().
const S32: Int32Array = new Int32Array(1024);
const S16: Uint16Array = new Uint16Array(S32.buffer);
const S8: Uint8Array = new Uint8Array(S32.buffer);
const DIRTY: Uint8Array = new Uint8Array(0x40000);
const IC: Int32Array = new Int32Array(65536 * 8);
const GEN: Int32Array = new Int32Array((MAX_RAM >>> 8) + 1);
let RAM: Uint8Array = new Uint8Array(16);
let RAMV: DataView = new DataView(RAM.buffer);
const PARITY: Uint8Array = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let c = 0;
  for (let b = 0; b < 8; b++) c += (i >> b) & 1;
  PARITY[i] = (c & 1) ^ 1;
}

export function st(i: i32): i32 { return S32[i]; }
export function setSt(i: i32, v: i32): void { S32[i] = v; }
export function reg8(r: i32): i32 { return S8[((r & 3) << 2) + (r >> 2)]; }
export function setReg8(r: i32, v: i32): void { S8[((r & 3) << 2) + (r >> 2)] = v; }
export function reg16(r: i32): i32 { return S16[r << 1]; }
export function setReg16(r: i32, v: i32): void { S16[r << 1] = v; }

export function ram8(a: i32): i32 { return RAM[a >>> 0]; }
export function ram16(a: i32): i32 { return RAMV.getUint16(a >>> 0, true); }
export function ram32(a: i32): i32 { return RAMV.getInt32(a >>> 0, true); }
export function setRam8(a: i32, v: i32): void { RAM[a >>> 0] = v; }
export function setRam16(a: i32, v: i32): void { RAMV.setUint16(a >>> 0, v, true); }
export function setRam32(a: i32, v: i32): void { RAMV.setInt32(a >>> 0, v, true); }
export function markDirty(a: i32): void { DIRTY[a >>> 12] = 1; }

export function ic(i: i32): i32 { return IC[i]; }
export function setIc(i: i32, v: i32): void { IC[i] = v; }
export function lineGen(a: i32): i32 { return GEN[a >>> 8]; }
export function bumpLine(a: i32): i32 { return (GEN[a >>> 8] = (GEN[a >>> 8] + 1) | 0); }
export function icClearTags(): void {
  for (let i = 0; i < 65536; i++) IC[i << 3] = i ^ 1; // matches no address (see wasm.ts)
}

export function ramCopy(dst: i32, src: i32, n: i32): void {
  RAM.copyWithin(dst >>> 0, src >>> 0, (src >>> 0) + (n >>> 0));
}
export function ramFill(dst: i32, v: i32, n: i32): void {
  RAM.fill(v & 0xff, dst >>> 0, (dst >>> 0) + (n >>> 0));
}
export function dirtyFill(firstPage: i32, n: i32): void {
  DIRTY.fill(1, firstPage >>> 0, (firstPage >>> 0) + (n >>> 0));
}

export function ltu(a: i32, b: i32): bool { return (a >>> 0) < (b >>> 0); }
export function leu(a: i32, b: i32): bool { return (a >>> 0) <= (b >>> 0); }
export function imul(a: i32, b: i32): i32 { return Math.imul(a, b); }
export function parity8(v: i32): i32 { return PARITY[v & 0xff]; }
export function clz32(v: i32): i32 { return Math.clz32(v); }
export function ctz32(v: i32): i32 { return v === 0 ? 32 : 31 - Math.clz32(v & -v); }

export function sdiv32(n: i32, d: i32): i32 { return (n / d) | 0; }

let hiWord: i32 = 0;
let remWord: i32 = 0;
export function mulHigh(): i32 { return hiWord; }
export function divRemainder(): i32 { return remWord; }

export function mulU64(a: i32, b: i32): i32 {
  // Exact 64-bit product from 16-bit limbs (doubles hold 53 bits, not 64).
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  hiWord = (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
  return Math.imul(a, b);
}
export function mulS64(a: i32, b: i32): i32 {
  const lo = mulU64(a, b);
  // Signed high half = unsigned high half minus the sign corrections.
  let h = hiWord;
  if (a < 0) h = (h - b) | 0;
  if (b < 0) h = (h - a) | 0;
  hiWord = h;
  return lo;
}
export function divU64(hi: i32, lo: i32, d: i32): i32 {
  const ud = d >>> 0;
  if (hi === 0) {
    const ul = lo >>> 0;
    remWord = (ul % ud) | 0;
    hiWord = 0;
    return Math.floor(ul / ud) | 0;
  }
  if ((hi >>> 0) >= ud) { remWord = 0; hiWord = 1; return 0; }
  const n = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  const bd = BigInt(ud);
  remWord = Number(n % bd) | 0;
  hiWord = 0;
  return Number(n / bd) | 0;
}
export function divS64(hi: i32, lo: i32, d: i32): i32 {
  if ((hi === 0 && lo >= 0) || (hi === -1 && lo < 0)) {
    // The dividend fits in 32 bits: plain doubles are exact.
    if (lo === -0x80000000 && d === -1) { hiWord = 1; return 0; }
    const q = Math.trunc(lo / d);
    remWord = (lo - q * d) | 0;
    hiWord = 0;
    return q | 0;
  }
  const n = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
  const bd = BigInt(d);
  const q = n / bd;
  if (q > 0x7fffffffn || q < -0x80000000n) { hiWord = 1; return 0; }
  remWord = Number(n % bd) | 0;
  hiWord = 0;
  return Number(q) | 0;
}

// Called by init() on a fresh core and on one the host reuses (host/engine/load.ts
// pools them): everything here must end up as a fresh module instance has it.
export function targetInit(ramSize: i32): void {
  S32.fill(0);
  DIRTY.fill(0);
  GEN.fill(0, 0, (ramSize >>> 8) + 1);
  // A reused core keeps its RAM when the size matches: zeroing 64 MiB is far
  // cheaper than allocating it again.
  if (RAM.length === (ramSize >>> 0) + 16) RAM.fill(0, 0, ramSize >>> 0);
  else {
    RAM = new Uint8Array((ramSize >>> 0) + 16);
    RAMV = new DataView(RAM.buffer);
  }
  RAM.fill(0xff, ramSize >>> 0);
  IC.fill(0);
  icClearTags();
  hiWord = 0;
  remWord = 0;
}

/** Zero-copy views for the host: the same names as the wasm build's addresses. */
export function ramBase(): Uint8Array { return RAM; }
export function dirtyBase(): Uint8Array { return DIRTY; }
export function stateBase(): Int32Array { return S32; }
export function icacheBase(): Int32Array { return IC; }
export function lineGenBase(): Int32Array { return GEN; }
