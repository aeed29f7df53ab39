// The state hash: one BLAKE3 digest of everything a replica's future depends
// on — exactly the parts Machine.saveState() lists (host/machine/machine.ts):
// the CPU's architectural state, guest RAM, every device's state and guest
// time. Two machines with equal state hashes given equal inputs do the same
// thing; the end record of a log carries the recorder's.

import type { Machine, MachineState } from "../machine/machine.js";
import { canonicalJson, hashBytes } from "../common/hash.js";

const TAG = new TextEncoder().encode("lockstep-state-2\n");

/** A saved state without its RAM, as canonical JSON (also what `replay --until` prints from). */
export function stateJson(s: MachineState): string {
  const { ram: _ram, ...rest } = s;
  return canonicalJson(rest);
}

/** The machine's state without RAM, as canonical JSON. */
export function machineStateJson(m: Machine): string {
  return stateJson(m.saveState({ ram: "view" }));
}

export function hashState(s: MachineState): Uint8Array {
  return hashBytes(TAG, new TextEncoder().encode(stateJson(s)), s.ram);
}

export function stateHash(m: Machine): Uint8Array {
  return hashState(m.saveState({ ram: "view" }));
}
