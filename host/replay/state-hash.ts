// The state hash: one BLAKE3 digest of everything a replica's future depends
// on — exactly the parts Machine.saveState() lists (host/machine/machine.ts):
// the CPU's architectural state, guest RAM, every device's state and guest
// time. Two machines with equal state hashes given equal inputs do the same
// thing; the end record of a log carries the recorder's.

import type { Machine, MachineState } from "../machine/machine.js";
import { canonicalJson, hashBytes } from "../common/hash.js";

/** The bytes the hash starts with (a version of what it covers); a hash computed in pieces starts with them too. */
export const STATE_HASH_TAG = new TextEncoder().encode("lockstep-state-2\n");

/** A saved state without its RAM, as canonical JSON (also what `replay --until` prints from). */
export function stateJson(s: MachineState): string {
  const { ram: _ram, ...rest } = s;
  return canonicalJson(rest);
}

/** The machine's state without RAM, as canonical JSON. */
export function machineStateJson(m: Machine): string {
  return stateJson(m.saveState({ ram: "view" }));
}

/** What the state hash covers before RAM (RAM follows it): for a hash fed in pieces (host/ft/state-transfer.ts). */
export function stateHashHead(s: MachineState): Uint8Array[] {
  return [STATE_HASH_TAG, new TextEncoder().encode(stateJson(s))];
}

export function hashState(s: MachineState): Uint8Array {
  return hashBytes(...stateHashHead(s), s.ram);
}

export function stateHash(m: Machine): Uint8Array {
  return hashState(m.saveState({ ram: "view" }));
}
