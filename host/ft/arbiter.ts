// The arbiter: before a replica goes live as primary it must win an atomic
// test-and-set here, so that at most one replica of a VM is live for each
// epoch and a replica that lost (or was cut off) never goes live beside the
// winner. The interface is platform-neutral (a browser page or a simulation
// uses MemoryArbiter); the default for two Node processes is the directory
// arbiter in host/node/file-arbiter.ts. See docs/arbiter.md.

/** One replica's successful bid to be the live primary of `vm` for `epoch`. */
export interface ArbiterClaim {
  /** The VM's identity (see vmIdProblem for what is allowed). */
  vm: string;
  /** 1 for the first primary; each takeover claims a higher one. */
  epoch: number;
  /** Who claims: a replica name a human can tell apart ("primary", "backup@host2"). */
  replica: string;
  /** When, in milliseconds since the Unix epoch (the claimant's clock: for people, not for ordering). */
  atMs: number;
  /** Why, for people reading the status ("first start", "primary silent for 2 s"). */
  reason: string;
}

export type ClaimResult = { won: true } | { won: false; holder: ArbiterClaim };

export interface ResetResult {
  /** The claims that were removed, highest epoch first. */
  removed: ArbiterClaim[];
  /** Records that were removed although they could not be read (damaged), as their names. */
  unreadable: string[];
}

export interface Arbiter {
  /**
   * Atomically: if no claim of `c.vm` has an epoch >= `c.epoch`, records `c`
   * and resolves to {won: true}; otherwise to {won: false, holder}, holder
   * being the highest claim of the VM (its epoch is >= c.epoch). Epochs only
   * go up: a claim equal to or below one already held loses.
   * Rejects with ArbiterError if the claim is malformed or the arbiter
   * cannot be read or written; an arbiter that cannot tell never says "won".
   */
  claim(c: ArbiterClaim): Promise<ClaimResult>;
  /** The highest claim of `vm`, or null if it has none. */
  status(vm: string): Promise<ArbiterClaim | null>;
  /** Every claim of `vm`, highest epoch first (for people: who held what, when). */
  claims(vm: string): Promise<ArbiterClaim[]>;
  /** The VMs that have at least one claim, sorted. */
  vms(): Promise<string[]>;
  /**
   * Forgets every claim of `vm` (the state of a finished run). Only for when
   * no replica of that VM runs: afterwards epoch 1 can be won again.
   */
  reset(vm: string): Promise<ResetResult>;
}

/** A malformed claim or VM name, or an arbiter that cannot be used; the message says which and where. */
export class ArbiterError extends Error {}

export const VM_ID_MAX = 128;
export const REPLICA_MAX = 128;
export const REASON_MAX = 1000;

/** Why `vm` is not a usable VM identity, or undefined if it is one. It becomes a file name, hence the strict set. */
export function vmIdProblem(vm: unknown): string | undefined {
  if (typeof vm !== "string") return `must be a string, got ${typeof vm}`;
  if (vm.length === 0) return "must not be empty";
  if (vm.length > VM_ID_MAX) return `must be at most ${VM_ID_MAX} characters, got ${vm.length}`;
  const bad = /[^0-9A-Za-z._-]/.exec(vm);
  if (bad) return `may hold only letters, digits, '.', '_' and '-', got ${JSON.stringify(bad[0])} at position ${bad.index}`;
  // "." and ".." name directories that are not the VM's own.
  if (/^\.+$/.test(vm)) return `must not be only dots, got ${JSON.stringify(vm)}`;
  return undefined;
}

/** Throws ArbiterError unless `vm` is a usable VM identity. */
export function checkVmId(vm: unknown): asserts vm is string {
  const problem = vmIdProblem(vm);
  if (problem) throw new ArbiterError(`VM identity ${JSON.stringify(vm)} ${problem}`);
}

/** Why `c` is not a well-formed claim, or undefined if it is one. */
export function claimProblem(c: unknown): string | undefined {
  if (typeof c !== "object" || c === null) return "is not an object";
  const o = c as Record<string, unknown>;
  const vm = vmIdProblem(o.vm);
  if (vm) return `vm ${vm}`;
  if (typeof o.epoch !== "number" || !Number.isSafeInteger(o.epoch) || o.epoch < 1) return `epoch must be an integer >= 1, got ${JSON.stringify(o.epoch)}`;
  if (typeof o.replica !== "string" || o.replica.length === 0 || o.replica.length > REPLICA_MAX) {
    return `replica must be a string of 1 to ${REPLICA_MAX} characters, got ${JSON.stringify(o.replica)}`;
  }
  if (typeof o.atMs !== "number" || !Number.isFinite(o.atMs) || o.atMs < 0) return `atMs must be a time in ms >= 0, got ${JSON.stringify(o.atMs)}`;
  if (typeof o.reason !== "string" || o.reason.length > REASON_MAX) return `reason must be a string of at most ${REASON_MAX} characters`;
  return undefined;
}

/** Throws ArbiterError unless `c` is a well-formed claim. */
export function checkClaim(c: unknown): asserts c is ArbiterClaim {
  const problem = claimProblem(c);
  if (problem) throw new ArbiterError(`bad claim: ${problem}`);
}

/** Just the claim's own fields, so a caller's extra properties or later mutation never reach the record. */
export function copyClaim(c: ArbiterClaim): ArbiterClaim {
  return { vm: c.vm, epoch: c.epoch, replica: c.replica, atMs: c.atMs, reason: c.reason };
}

/**
 * An arbiter in this process's memory: for tests and for a simulated pair in
 * one process. JavaScript runs one call at a time and claim() does its test
 * and its set without awaiting in between, so it is atomic.
 */
export class MemoryArbiter implements Arbiter {
  private readonly byVm = new Map<string, Map<number, ArbiterClaim>>();

  async claim(c: ArbiterClaim): Promise<ClaimResult> {
    checkClaim(c);
    const held = this.byVm.get(c.vm) ?? new Map<number, ArbiterClaim>();
    const top = highest(held);
    if (top && top.epoch >= c.epoch) return { won: false, holder: copyClaim(top) };
    held.set(c.epoch, copyClaim(c));
    this.byVm.set(c.vm, held);
    return { won: true };
  }

  async status(vm: string): Promise<ArbiterClaim | null> {
    checkVmId(vm);
    const top = highest(this.byVm.get(vm));
    return top ? copyClaim(top) : null;
  }

  async claims(vm: string): Promise<ArbiterClaim[]> {
    checkVmId(vm);
    return [...(this.byVm.get(vm)?.values() ?? [])].sort((a, b) => b.epoch - a.epoch).map(copyClaim);
  }

  async vms(): Promise<string[]> {
    return [...this.byVm.keys()].sort();
  }

  async reset(vm: string): Promise<ResetResult> {
    const removed = await this.claims(vm);
    this.byVm.delete(vm);
    return { removed, unreadable: [] };
  }
}

function highest(held: Map<number, ArbiterClaim> | undefined): ArbiterClaim | undefined {
  let top: ArbiterClaim | undefined;
  for (const c of held?.values() ?? []) if (!top || c.epoch > top.epoch) top = c;
  return top;
}
