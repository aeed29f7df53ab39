// The state hash: one BLAKE3 digest of everything a replica's future depends
// on — the CPU's architectural state, guest RAM, every device's state and
// guest time. Two machines with equal state hashes given equal inputs do the
// same thing; the end record of a log carries the recorder's.

import type { Machine } from "../machine/machine.js";
import { canonicalJson, hashBytes } from "./hash.js";

const TAG = new TextEncoder().encode("lockstep-state-1\n");

/** The machine's state without RAM, as canonical JSON (also what `replay --until` prints from). */
export function machineStateJson(m: Machine): string {
  return canonicalJson({ cpu: m.engine.archState(), devices: m.deviceStates() });
}

export function stateHash(m: Machine): Uint8Array {
  return hashBytes(TAG, new TextEncoder().encode(machineStateJson(m)), m.engine.ram);
}
