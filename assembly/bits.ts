// BT BTS BTR BTC, BSF BSR. SDM Vol. 2A. After BT* only CF is defined and ZF is
// unaffected; we leave OF SF AF PF unchanged too. BSF/BSR define only ZF; the
// others are left unchanged, and a zero source leaves the destination as it
// was (what Intel and AMD parts do).

import { getFlags, setFlags } from "./flags";
import { CF, ZF } from "./state";
import { clz32, ctz32 } from "./target/wasm";

export const BT_TEST: i32 = 0;
export const BT_SET: i32 = 1;
export const BT_RESET: i32 = 2;
export const BT_COMPLEMENT: i32 = 3;

/** Applies BT (op 0) / BTS / BTR / BTC to bit `bit` of v; sets CF; returns the new value. */
export function bitOp(op: i32, v: i32, bit: i32): i32 {
  const m = 1 << bit;
  const f = getFlags();
  setFlags((f & ~CF) | ((v >>> bit) & 1));
  switch (op) {
    case BT_SET: return v | m;
    case BT_RESET: return v & ~m;
    case BT_COMPLEMENT: return v ^ m;
    default: return v;
  }
}

/** BSF (forward) or BSR; returns the bit index, or -1 (destination unchanged) for a zero source. */
export function bitScan(forward: bool, v: i32): i32 {
  const f = getFlags();
  if (v == 0) { setFlags(f | ZF); return -1; }
  setFlags(f & ~ZF);
  return forward ? ctz32(v) : 31 - clz32(v);
}
