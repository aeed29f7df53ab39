// Instruction fetch, prefixes and ModRM/SIB effective addresses.
//
// `ip` is the linear address of the next instruction byte. exec() checks that an
// instruction starts inside RAM; RAM is followed by 16 bytes of 0xFF, so the up
// to 15 bytes of one instruction can be fetched without further checks and a
// fetch that runs past the end of RAM sees all ones, as unassigned memory reads.

import { st, reg16, ram8, ram16, ram32 } from "./target/wasm";
import { S_BASE, S_LIMIT, S_ATTR, ATTR_DB, ATTR_UNUSABLE, SEG_DS, SEG_SS, EBP, ESP, VEC_GP, VEC_SS } from "./state";
import { fault } from "./exits";
import { ramEnd } from "./memory";
import { leu, ltu } from "./target/wasm";

let ip: i32 = 0;
let segOvr: i32 = -1;   // segment override prefix, -1 if none
let opsize16: bool = false;
let adsize16: bool = false;
let repMode: i32 = 0;   // 0 none, 0xF3 REP/REPE, 0xF2 REPNE
let eaSeg: i32 = SEG_DS; // segment of the last decoded memory operand
let lockPrefix: bool = false;
let anyPrefix: bool = false; // so the common prefix-free instruction resets nothing

// @ts-ignore: decorator
@inline export function getIp(): i32 { return ip; }
// @ts-ignore: decorator
@inline export function setIp(v: i32): void { ip = v; }
// @ts-ignore: decorator
@inline export function fetch8(): i32 { const v = ram8(ip); ip = (ip + 1) | 0; return v; }
// @ts-ignore: decorator
@inline export function fetchS8(): i32 { const v = (ram8(ip) << 24) >> 24; ip = (ip + 1) | 0; return v; }
// @ts-ignore: decorator
@inline export function fetch16(): i32 { const v = ram16(ip); ip = (ip + 2) | 0; return v; }
// @ts-ignore: decorator
@inline export function fetch32(): i32 { const v = ram32(ip); ip = (ip + 4) | 0; return v; }

// @ts-ignore: decorator
@inline export function resetPrefixes(): void {
  if (anyPrefix) { segOvr = -1; opsize16 = false; adsize16 = false; repMode = 0; lockPrefix = false; anyPrefix = false; }
}
// @ts-ignore: decorator
@inline export function setSegOverride(s: i32): void { segOvr = s; anyPrefix = true; }
// @ts-ignore: decorator
@inline export function setOpsize16(): void { opsize16 = true; anyPrefix = true; }
// @ts-ignore: decorator
@inline export function setAdsize16(): void { adsize16 = true; anyPrefix = true; }
// @ts-ignore: decorator
@inline export function setRep(p: i32): void { repMode = p; anyPrefix = true; }
// @ts-ignore: decorator
@inline export function setLock(): void { lockPrefix = true; anyPrefix = true; }
// @ts-ignore: decorator
@inline export function hasLock(): bool { return lockPrefix; }
// @ts-ignore: decorator
@inline export function isO16(): bool { return opsize16; }
// @ts-ignore: decorator
@inline export function isA16(): bool { return adsize16; }
// @ts-ignore: decorator
@inline export function getRep(): i32 { return repMode; }
/** Segment for an implicit DS operand (string source, XLAT, moffs), honouring overrides. */
// @ts-ignore: decorator
@inline export function dataSeg(): i32 { return segOvr >= 0 ? segOvr : SEG_DS; }
/** Segment of the last memory operand decoded by modrmEA. */
// @ts-ignore: decorator
@inline export function lastSeg(): i32 { return eaSeg; }

let segsFlat: bool = true;
/** Whether every segment is flat (segment.ts keeps it current): then nothing is checked. */
// @ts-ignore: decorator
@inline export function allSegsFlat(): bool { return segsFlat; }
export function setSegsFlat(f: bool): void { segsFlat = f; }

/** Linear address of seg:off. The one place segmentation is applied. */
// @ts-ignore: decorator
@inline export function linear(seg: i32, off: i32): i32 {
  if (segsFlat) return (st(S_BASE + seg) + off) | 0;
  return checkedLinear(seg, off);
}

/**
 * seg:off with the segment's checks (segment.ts). On a violation it raises
 * #GP(0) (#SS(0) for SS) and returns the first address past RAM, where the
 * aborted instruction's access reads all ones and writes nothing.
 */
function checkedLinear(seg: i32, off: i32): i32 {
  const attr = st(S_ATTR + seg);
  const limit = st(S_LIMIT + seg);
  let ok = (attr & ATTR_UNUSABLE) == 0;
  if (ok) {
    if ((attr & 0x8) == 0 && (attr & 0x4) != 0) {
      // Expand-down data: valid offsets are (limit, 0xFFFF] or (limit, 0xFFFFFFFF].
      ok = ltu(limit, off) && ((attr & ATTR_DB) != 0 || leu(off, 0xffff));
    } else ok = leu(off, limit);
  }
  if (ok) return (st(S_BASE + seg) + off) | 0;
  fault(seg == SEG_SS ? VEC_SS : VEC_GP, 0);
  return ramEnd();
}

/**
 * Decodes the memory form of a ModRM byte (mod != 3) and its SIB/displacement,
 * returning the offset (not yet segmented). eaSeg gets the default segment:
 * SS for EBP/ESP-based forms, DS otherwise, unless a prefix overrides it.
 */
// @ts-ignore: decorator
@inline export function modrmOffset(m: i32): i32 {
  // Fast path: base register + disp8/disp32, no SIB, 32-bit addressing.
  const rm = m & 7;
  if (!adsize16 && rm != 4 && rm != 5 && m >= 0x40) {
    const off = m < 0x80 ? (st(rm) + fetchS8()) | 0 : (st(rm) + fetch32()) | 0;
    eaSeg = segOvr >= 0 ? segOvr : SEG_DS;
    return off;
  }
  return modrmOffsetSlow(m);
}

function modrmOffsetSlow(m: i32): i32 {
  if (adsize16) return modrmOffset16(m);
  const mod = m >> 6;
  let rm = m & 7;
  let off: i32 = 0;
  let seg = SEG_DS;
  if (rm == 4) {
    const sib = fetch8();
    const base = sib & 7;
    const idx = (sib >> 3) & 7;
    if (idx != 4) off = st(idx) << (sib >> 6);
    if (base == 5 && mod == 0) {
      off = (off + fetch32()) | 0;
    } else {
      off = (off + st(base)) | 0;
      if (base == ESP || base == EBP) seg = SEG_SS;
    }
  } else if (rm == 5 && mod == 0) {
    off = fetch32();
  } else {
    off = st(rm);
    if (rm == EBP) seg = SEG_SS;
  }
  if (mod == 1) off = (off + fetchS8()) | 0;
  else if (mod == 2) off = (off + fetch32()) | 0;
  eaSeg = segOvr >= 0 ? segOvr : seg;
  return off;
}

function modrmOffset16(m: i32): i32 {
  const mod = m >> 6;
  const rm = m & 7;
  let off: i32 = 0;
  let seg = SEG_DS;
  switch (rm) {
    case 0: off = reg16(3) + reg16(6); break;             // BX+SI
    case 1: off = reg16(3) + reg16(7); break;             // BX+DI
    case 2: off = reg16(5) + reg16(6); seg = SEG_SS; break; // BP+SI
    case 3: off = reg16(5) + reg16(7); seg = SEG_SS; break; // BP+DI
    case 4: off = reg16(6); break;                        // SI
    case 5: off = reg16(7); break;                        // DI
    case 6:
      if (mod == 0) off = fetch16();
      else { off = reg16(5); seg = SEG_SS; }              // BP
      break;
    default: off = reg16(3); break;                       // BX
  }
  if (mod == 1) off = off + fetchS8();
  else if (mod == 2) off = off + fetch16();
  eaSeg = segOvr >= 0 ? segOvr : seg;
  return off & 0xffff;
}

let eaOff: i32 = 0;

/** Every variable of this file to its initial value (segsFlat is kept by segment.ts refreshFlat). */
export function decodeReset(): void {
  ip = 0; segOvr = -1; opsize16 = false; adsize16 = false; repMode = 0; eaSeg = SEG_DS;
  lockPrefix = false; anyPrefix = false; eaOff = 0;
}
/** Linear address of a ModRM memory operand. */
// @ts-ignore: decorator
@inline export function modrmEA(m: i32): i32 {
  const off = modrmOffset(m);
  eaOff = off;
  return linear(eaSeg, off);
}
/** Offset (before segmentation) of the operand modrmEA() decoded last: far pointers read the selector after it. */
// @ts-ignore: decorator
@inline export function modrmOffsetLast(): i32 { return eaOff; }
