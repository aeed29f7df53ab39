// The arbiter (host/ft/arbiter.ts) on etcd: for replicas on several hosts
// that share no file system, and for an arbiter that outlives one machine.
// VM V's claims are keys under PREFIX/V/: PREFIX/V/E holds epoch E's claim as
// JSON and PREFIX/V/top holds V's highest epoch. A claim is ONE etcd
// transaction that compares PREFIX/V/top with the value just read and, only
// if it is unchanged, writes both keys; etcd decides transactions one at a
// time through raft, so of racing claimants exactly one passes the compare.
// See docs/arbiter.md.

import { Etcd3, type IOptions } from "etcd3";
import {
  ArbiterError,
  checkClaim,
  checkVmId,
  claimProblem,
  copyClaim,
  vmIdProblem,
  type Arbiter,
  type ArbiterClaim,
  type ClaimResult,
  type ResetResult,
} from "../ft/arbiter.js";

export const ETCD_PREFIX = "lockstep/arbiter/";
export const TOP_KEY = "top";
/** Each etcd call's deadline: an etcd that is down or frozen is an error this soon, never a hang. */
export const ETCD_TIMEOUT_MS = 3000;
/** A claim retries only when another claim or a reset of the same VM got in between; this bounds it. */
const MAX_ATTEMPTS = 50;

export interface EtcdArbiterOptions {
  /** Where the keys live (tests give each arbiter its own); ends with "/". */
  prefix?: string;
  timeoutMs?: number;
}

/**
 * The endpoints of an `etcd:` spec: one or more http://HOST:PORT, separated
 * by commas (the members of one etcd cluster). ArbiterError if malformed.
 */
export function parseEtcdUrls(list: string): string[] {
  if (list === "") throw new ArbiterError("etcd:URL names no endpoint (etcd:http://HOST:PORT)");
  return list.split(",").map((s) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ArbiterError(`etcd endpoint '${s}' is not http://HOST:PORT`);
    }
    if (u.protocol === "https:") throw new ArbiterError(`etcd endpoint '${s}': https (TLS) is not supported yet, only http://HOST:PORT`);
    if (u.protocol !== "http:") throw new ArbiterError(`etcd endpoint '${s}' is not http://HOST:PORT`);
    // The gRPC client would silently drop these, or guess a port: say so instead.
    if (u.port === "" && !/:[0-9]+\/?$/.test(s)) throw new ArbiterError(`etcd endpoint '${s}' names no port (etcd's is usually 2379)`);
    if (u.username !== "" || u.password !== "") throw new ArbiterError(`etcd endpoint '${s}': user names and passwords are not supported`);
    if ((u.pathname !== "/" && u.pathname !== "") || u.search !== "" || u.hash !== "") throw new ArbiterError(`etcd endpoint '${s}' must be just http://HOST:PORT`);
    return `http://${u.hostname}:${u.port || "80"}`;
  });
}

/**
 * etcd3's default fault handling retries a failed call 3 times and then
 * refuses calls for 5 s. A retried transaction whose first reply was lost
 * would come back as a loss to itself, and the refusals would outlast etcd's
 * return; every call here fails once, at once, instead. (A policy that just
 * runs the call: spelled out to avoid a second dependency for its type.)
 */
const NO_RETRY = { execute: (fn: (ctx: { signal: AbortSignal }) => unknown) => fn({ signal: new AbortController().signal }) } as unknown as NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

interface Kv { key: Buffer; value: Buffer; mod_revision: string }

/** A VM's keys as read at one etcd revision. */
interface VmKeys {
  /** The highest epoch (0: none) and PREFIX/V/top's mod_revision ("0": absent), which the claim compares. */
  top: number;
  topRevision: string;
  /** Claim keys by epoch. */
  claims: Map<number, Kv>;
  /** What is wrong with the keys, each as [key name, problem]: any makes the VM unusable until reset. */
  damage: Array<[string, string]>;
}

export class EtcdArbiter implements Arbiter {
  readonly urls: string[];
  readonly prefix: string;
  private readonly timeoutMs: number;

  constructor(urls: string | string[], options: EtcdArbiterOptions = {}) {
    this.urls = typeof urls === "string" ? parseEtcdUrls(urls) : urls;
    this.prefix = options.prefix ?? ETCD_PREFIX;
    this.timeoutMs = options.timeoutMs ?? ETCD_TIMEOUT_MS;
  }

  /** The URLs as a user wrote them, for messages. */
  get where(): string {
    return this.urls.join(",");
  }

  async claim(c: ArbiterClaim): Promise<ClaimResult> {
    checkClaim(c);
    const record = JSON.stringify(copyClaim(c));
    return this.session(async (etcd) => {
      const vmPrefix = this.vmPrefix(c.vm);
      let keys = this.parse(c.vm, await this.call(`read the claims of VM ${c.vm}`, etcd.getAll().prefix(vmPrefix).exec()));
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        this.throwIfDamaged(c.vm, keys);
        if (keys.top >= c.epoch) return { won: false, holder: this.decode(c.vm, keys.top, keys.claims.get(keys.top)!) };
        const topKey = vmPrefix + TOP_KEY;
        // The test and the set in one transaction: top is as just read (absent,
        // or not modified since), and the claim key is new.
        const guard = keys.topRevision === "0" ? etcd.if(topKey, "Version", "==", 0) : etcd.if(topKey, "Mod", "==", keys.topRevision);
        const txn = guard
          .and(vmPrefix + String(c.epoch), "Version", "==", 0)
          .then(etcd.put(topKey).value(String(c.epoch)), etcd.put(vmPrefix + String(c.epoch)).value(record))
          .else(etcd.getAll().prefix(vmPrefix));
        const result = await this.call(
          `record the claim of epoch ${c.epoch} of VM ${c.vm} (whether it was recorded is unknown: status shows it)`,
          txn.commit(),
        );
        if (result.succeeded) return { won: true };
        // Someone else's claim (or a reset) got in between: decide again on what the transaction saw.
        const range = result.responses?.[0]?.response_range;
        if (!range) throw new ArbiterError(`etcd at ${this.where} answered a failed transaction without its read`);
        keys = this.parse(c.vm, range as { kvs: Kv[] });
      }
      throw new ArbiterError(`the claims of VM ${c.vm} on etcd at ${this.where} keep changing while being claimed`);
    });
  }

  async status(vm: string): Promise<ArbiterClaim | null> {
    checkVmId(vm);
    const keys = await this.read(vm);
    this.throwIfDamaged(vm, keys);
    return keys.top === 0 ? null : this.decode(vm, keys.top, keys.claims.get(keys.top)!);
  }

  async claims(vm: string): Promise<ArbiterClaim[]> {
    checkVmId(vm);
    const keys = await this.read(vm);
    this.throwIfDamaged(vm, keys);
    return [...keys.claims.keys()].sort((a, b) => b - a).map((e) => this.decode(vm, e, keys.claims.get(e)!));
  }

  async vms(): Promise<string[]> {
    const keys = await this.session((etcd) => this.call("list the VMs", etcd.getAll().prefix(this.prefix).keys()));
    const out = new Set<string>();
    for (const key of keys) {
      const slash = key.indexOf("/", this.prefix.length);
      const vm = key.slice(this.prefix.length, slash);
      // Every key under a VM's prefix is the arbiter's, damaged ones too: status then says what is wrong.
      if (slash > 0 && !vmIdProblem(vm)) out.add(vm);
    }
    return [...out].sort();
  }

  async reset(vm: string): Promise<ResetResult> {
    checkVmId(vm);
    return this.session(async (etcd) => {
      const vmPrefix = this.vmPrefix(vm);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const keys = this.parse(vm, await this.call(`read the claims of VM ${vm}`, etcd.getAll().prefix(vmPrefix).exec()));
        const removed: ArbiterClaim[] = [];
        const unreadable = new Set(keys.damage.map(([name]) => name));
        for (const [epoch, kv] of keys.claims) {
          try {
            removed.push(this.decode(vm, epoch, kv));
          } catch (e) {
            if (!(e instanceof ArbiterError)) throw e;
            unreadable.add(String(epoch));
          }
        }
        // Removes exactly what was read: a claim made meanwhile changed top, and the reset starts over.
        const topKey = vmPrefix + TOP_KEY;
        const guard = keys.topRevision === "0" ? etcd.if(topKey, "Version", "==", 0) : etcd.if(topKey, "Mod", "==", keys.topRevision);
        const result = await this.call(`remove the claims of VM ${vm}`, guard.then(etcd.delete().prefix(vmPrefix)).commit());
        if (result.succeeded) return { removed: removed.sort((a, b) => b.epoch - a.epoch), unreadable: [...unreadable].sort() };
      }
      throw new ArbiterError(`the claims of VM ${vm} on etcd at ${this.where} keep changing while being reset`);
    });
  }

  private vmPrefix(vm: string): string {
    return `${this.prefix}${vm}/`;
  }

  private async read(vm: string): Promise<VmKeys> {
    return this.session(async (etcd) => this.parse(vm, await this.call(`read the claims of VM ${vm}`, etcd.getAll().prefix(this.vmPrefix(vm)).exec())));
  }

  /**
   * One client per operation: operations are rare (a start, a takeover), and
   * a fresh connection never inherits a broken one's back-off, nor keeps the
   * process alive afterwards.
   */
  private async session<T>(work: (etcd: Etcd3) => Promise<T>): Promise<T> {
    const etcd = new Etcd3({
      hosts: this.urls,
      faultHandling: { host: () => NO_RETRY, global: NO_RETRY },
      defaultCallOptions: () => ({ deadline: Date.now() + this.timeoutMs }),
    });
    try {
      return await work(etcd);
    } finally {
      etcd.close();
    }
  }

  /** Any failure of an etcd call as an ArbiterError naming the endpoints and what was being done. */
  private async call<T>(what: string, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const late = /DEADLINE_EXCEEDED/.test(msg) ? ` (no answer within ${this.timeoutMs} ms)` : "";
      throw new ArbiterError(`etcd at ${this.where}: cannot ${what}: ${msg.split("\n")[0]}${late}`);
    }
  }

  /** Sorts a VM's keys into top and claims; never trusts a key it cannot read. */
  private parse(vm: string, range: { kvs: Kv[] }): VmKeys {
    const vmPrefix = this.vmPrefix(vm);
    const keys: VmKeys = { top: 0, topRevision: "0", claims: new Map(), damage: [] };
    let topValue: string | undefined;
    for (const kv of range.kvs) {
      const name = kv.key.toString("utf8").slice(vmPrefix.length);
      if (name === TOP_KEY) {
        topValue = kv.value.toString("utf8");
        keys.topRevision = String(kv.mod_revision);
        const top = epochOf(topValue);
        if (top === undefined) keys.damage.push([name, `holds ${JSON.stringify(topValue.slice(0, 40))}, not an epoch`]);
        else keys.top = top;
        continue;
      }
      const epoch = epochOf(name);
      if (epoch === undefined) keys.damage.push([name, "is not a claim key (an epoch, an integer >= 1, or top)"]);
      else keys.claims.set(epoch, kv);
    }
    // top and the claim keys are written together: if they disagree, something
    // else wrote or removed keys, and a missing top would let a low epoch win again.
    const highest = Math.max(0, ...keys.claims.keys());
    if (keys.damage.length === 0 && highest !== keys.top) {
      keys.damage.push([TOP_KEY, topValue === undefined ? `is missing, but epoch ${highest} is claimed` : `says epoch ${keys.top}, but the highest claim key is ${highest || "missing"}`]);
    }
    return keys;
  }

  private throwIfDamaged(vm: string, keys: VmKeys): void {
    const first = keys.damage[0];
    if (first) throw new ArbiterError(`damaged arbiter: etcd key ${this.vmPrefix(vm)}${first[0]} at ${this.where} ${first[1]}`);
  }

  /** The claim in epoch `epoch`'s key; ArbiterError naming the key if it is damaged. */
  private decode(vm: string, epoch: number, kv: Kv): ArbiterClaim {
    const key = `etcd key ${this.vmPrefix(vm)}${epoch} at ${this.where}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(kv.value.toString("utf8"));
    } catch {
      throw new ArbiterError(`damaged claim: ${key}: not JSON`);
    }
    const problem = claimProblem(parsed);
    if (problem) throw new ArbiterError(`damaged claim: ${key}: ${problem}`);
    const claim = copyClaim(parsed as ArbiterClaim);
    if (claim.vm !== vm || claim.epoch !== epoch) throw new ArbiterError(`damaged claim: ${key}: it holds VM ${claim.vm} epoch ${claim.epoch}, not its own key's`);
    return claim;
  }
}

function epochOf(s: string): number | undefined {
  const n = /^[1-9][0-9]*$/.test(s) ? Number(s) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}
