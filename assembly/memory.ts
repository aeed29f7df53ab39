// Guest memory accesses by linear address (paging is off: linear = physical).
//
// Fast path: the whole access lies inside guest RAM. Otherwise, bytes in a
// host-registered MMIO range exit to the host, and any other byte outside RAM
// reads as 0xFF and ignores writes. Nothing here can reach the core's own state:
// RAM accesses are bounds-checked against the RAM size before they happen.
//
// An MMIO read needs the host's value before the instruction can finish, so it
// aborts the instruction (S_ABORT); the host answers and the instruction runs
// again, and this time the read takes the answer. MMIO writes are queued and
// handed to the host after the instruction retires.

import {
  st, setSt, ram8, ram16, ram32, setRam8, setRam16, setRam32, markDirty, ltu, leu, bumpLine, icClearTags,
} from "./target/wasm";
import {
  S_RAMSIZE, S_MMIO_COUNT, S_MMIO, S_MMIOW_COUNT, S_MMIOW, MMIOW_MAX, S_EXIT, S_ABORT,
  S_EXIT_ADDR, S_EXIT_SIZE, S_MMIOR_POS, S_MMIOR_COUNT, S_MMIOR, EXIT_MMIO_READ, EXIT_MMIO_WRITE,
} from "./state";

let ramSizeG: i32 = 0;
let ramLim1: i32 = 0; // RAM size - 1: last address a byte access may use
let ramLim2: i32 = 0;
let ramLim4: i32 = 0;

export function memoryInit(ramSize: i32): void {
  ramSizeG = ramSize;
  ramLim1 = ramSize - 1;
  ramLim2 = ramSize - 2;
  ramLim4 = ramSize - 4;
}

/**
 * Bookkeeping for a store to RAM address a: the page is dirty, and the
 * 256-byte line's generation moves on so cached decodes of code there are
 * stale (icache.ts). A generation that wraps to 0 after 2^32 stores could make
 * an old entry look current, so then the whole cache is dropped.
 */
// @ts-ignore: decorator
@inline export function stored(a: i32): void {
  markDirty(a);
  if (bumpLine(a) == 0) icClearTags();
}

/** Guest RAM size: the first address past RAM. */
// @ts-ignore: decorator
@inline export function ramEnd(): i32 { return ramSizeG; }

/** True once the current instruction has aborted (fault or input exit). */
// @ts-ignore: decorator
@inline export function aborted(): bool { return st(S_ABORT) != 0; }

// @ts-ignore: decorator
@inline export function rd8(a: i32): i32 {
  if (leu(a, ramLim1)) return ram8(a);
  return rdSlow(a, 1);
}
// @ts-ignore: decorator
@inline export function rd16(a: i32): i32 {
  if (leu(a, ramLim2)) return ram16(a);
  return rdSlow(a, 2);
}
// @ts-ignore: decorator
@inline export function rd32(a: i32): i32 {
  if (leu(a, ramLim4)) return ram32(a);
  return rdSlow(a, 4);
}
// @ts-ignore: decorator
@inline export function wr8(a: i32, v: i32): void {
  if (leu(a, ramLim1)) { setRam8(a, v); stored(a); }
  else wrSlow(a, 1, v);
}
// @ts-ignore: decorator
@inline export function wr16(a: i32, v: i32): void {
  if (leu(a, ramLim2)) { setRam16(a, v); stored(a); stored((a + 1) | 0); }
  else wrSlow(a, 2, v);
}
// @ts-ignore: decorator
@inline export function wr32(a: i32, v: i32): void {
  if (leu(a, ramLim4)) { setRam32(a, v); stored(a); stored((a + 3) | 0); }
  else wrSlow(a, 4, v);
}
/** Reads/writes of a size given at run time (1, 2 or 4). */
export function rdN(a: i32, size: i32): i32 {
  return size == 4 ? rd32(a) : size == 2 ? rd16(a) : rd8(a);
}
export function wrN(a: i32, size: i32, v: i32): void {
  if (size == 4) wr32(a, v); else if (size == 2) wr16(a, v); else wr8(a, v);
}

/** Index of the MMIO range holding [a, a+size), or -1. */
function mmioRange(a: i32, size: i32): i32 {
  const n = st(S_MMIO_COUNT);
  for (let i = 0; i < n; i++) {
    const lo = st(S_MMIO + 2 * i);
    const hi = st(S_MMIO + 2 * i + 1);
    if (leu(lo, a) && leu((a + size) | 0, hi) && ltu(a, (a + size) | 0)) return i;
  }
  return -1;
}
function inMmio(a: i32): bool { return mmioRange(a, 1) >= 0; }

function rdSlow(a: i32, size: i32): i32 {
  if (mmioRange(a, size) >= 0) {
    // Already aborted by an earlier read: keep that exit, read nothing.
    if (st(S_ABORT) != 0) return 0;
    const pos = st(S_MMIOR_POS);
    if (pos < st(S_MMIOR_COUNT)) {
      setSt(S_MMIOR_POS, pos + 1);
      const v = st(S_MMIOR + pos);
      return size == 4 ? v : size == 2 ? v & 0xffff : v & 0xff;
    }
    setSt(S_EXIT, EXIT_MMIO_READ);
    setSt(S_EXIT_ADDR, a);
    setSt(S_EXIT_SIZE, size);
    setSt(S_ABORT, 1);
    return 0;
  }
  // Byte by byte: RAM bytes are real, anything else (including a partial
  // overlap with an MMIO range, which we do not split) reads as 0xFF.
  let v: i32 = 0;
  const ramSize = st(S_RAMSIZE);
  for (let i = 0; i < size; i++) {
    const b = (a + i) | 0;
    v |= (ltu(b, ramSize) ? ram8(b) : 0xff) << (i << 3);
  }
  return v;
}

function wrSlow(a: i32, size: i32, v: i32): void {
  if (mmioRange(a, size) >= 0) {
    const n = st(S_MMIOW_COUNT);
    if (n < MMIOW_MAX) {
      setSt(S_MMIOW + 3 * n, a);
      setSt(S_MMIOW + 3 * n + 1, size);
      setSt(S_MMIOW + 3 * n + 2, size == 4 ? v : size == 2 ? v & 0xffff : v & 0xff);
      setSt(S_MMIOW_COUNT, n + 1);
      if (st(S_EXIT) == 0) setSt(S_EXIT, EXIT_MMIO_WRITE);
    }
    return;
  }
  const ramSize = st(S_RAMSIZE);
  for (let i = 0; i < size; i++) {
    const b = (a + i) | 0;
    if (ltu(b, ramSize) && !inMmio(b)) { setRam8(b, (v >> (i << 3)) & 0xff); stored(b); }
  }
}
