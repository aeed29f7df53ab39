// The default arbiter (host/ft/arbiter.ts): a directory both replicas can
// reach. A claim of epoch E of VM V is the file DIR/V/E.claim, and winning is
// creating it: the claim is written whole to a temporary file and link()ed to
// that name, which fails with EEXIST for everyone but the one creator, across
// processes too, and a reader never sees a half-written claim. It is only as
// atomic as the file system's link(). See docs/arbiter.md.

import { randomUUID } from "node:crypto";
import { link, mkdir, open, readdir, readFile, rmdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
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

export const CLAIM_SUFFIX = ".claim";
/** Temporary files a claim is written to before it is linked into place; reset removes leftovers. */
export const TEMP_PREFIX = ".tmp-";

/** For tests: lets one step run between a claim's link and its check for a higher epoch. */
export interface FileArbiterHooks {
  afterLink?(claimPath: string): Promise<void> | void;
}

export class FileArbiter implements Arbiter {
  /** `dir` must exist already: see checkRoot. */
  constructor(readonly dir: string, private readonly hooks: FileArbiterHooks = {}) {}

  /** The file that holds epoch `epoch` of `vm`. */
  claimPath(vm: string, epoch: number): string {
    return join(this.dir, vm, `${epoch}${CLAIM_SUFFIX}`);
  }

  async claim(c: ArbiterClaim): Promise<ClaimResult> {
    checkClaim(c);
    await this.checkRoot();
    const vmDir = join(this.dir, c.vm);
    // A claim at or below the highest held loses without writing anything.
    if (maxOf(await this.epochs(c.vm)) >= c.epoch) return this.lost(c);
    try {
      await mkdir(vmDir);
    } catch (e) {
      if (code(e) !== "EEXIST") throw fsError("create the VM directory", vmDir, e);
    }
    const final = this.claimPath(c.vm, c.epoch);
    const temp = join(vmDir, `${TEMP_PREFIX}${process.pid}-${randomUUID()}`);
    let linked = false;
    try {
      await writeWhole(temp, JSON.stringify(copyClaim(c)) + "\n");
      try {
        await link(temp, final);
        linked = true;
      } catch (e) {
        if (code(e) !== "EEXIST") throw fsError("create the claim file", final, e);
        // Over NFS a link whose reply was lost is retried and reports EEXIST
        // although it was made; then the temporary file has two names.
        linked = (await stat(temp).catch(() => undefined))?.nlink === 2;
      }
    } finally {
      await unlink(temp).catch(() => undefined); // linked or not, the temporary name goes
    }
    if (!linked) return this.lost(c);
    await syncDir(vmDir);
    await this.hooks.afterLink?.(final);
    // Two claims of different epochs can both pass the first check and both
    // link. The higher one wins: a claim that now sees a higher epoch lost to
    // it (its file stays, superseded, as a lower claim would be anyway).
    if (maxOf(await this.epochs(c.vm)) > c.epoch) return this.lost(c);
    return { won: true };
  }

  async status(vm: string): Promise<ArbiterClaim | null> {
    checkVmId(vm);
    await this.checkRoot();
    for (let attempt = 0; attempt < 10; attempt++) {
      const top = maxOf(await this.epochs(vm));
      if (top < 1) return null;
      const claim = await this.read(vm, top);
      if (claim) return claim;
      // It vanished between the listing and the read (a reset): look again.
    }
    throw new ArbiterError(`the claims of VM ${vm} in ${this.dir} keep changing while being read`);
  }

  async claims(vm: string): Promise<ArbiterClaim[]> {
    checkVmId(vm);
    await this.checkRoot();
    const out: ArbiterClaim[] = [];
    for (const epoch of (await this.epochs(vm)).sort((a, b) => b - a)) {
      const claim = await this.read(vm, epoch);
      if (claim) out.push(claim);
    }
    return out;
  }

  async vms(): Promise<string[]> {
    await this.checkRoot();
    let entries;
    try {
      entries = await readdir(this.dir, { withFileTypes: true });
    } catch (e) {
      throw fsError("list the arbiter directory", this.dir, e);
    }
    const out: string[] = [];
    for (const d of entries) {
      if (d.isDirectory() && !vmIdProblem(d.name) && (await this.epochs(d.name)).length > 0) out.push(d.name);
    }
    return out.sort();
  }

  async reset(vm: string): Promise<ResetResult> {
    checkVmId(vm);
    await this.checkRoot();
    const vmDir = join(this.dir, vm);
    let names: string[];
    try {
      names = await readdir(vmDir);
    } catch (e) {
      if (code(e) === "ENOENT") return { removed: [], unreadable: [] };
      throw fsError("list the VM directory", vmDir, e);
    }
    const removed: ArbiterClaim[] = [];
    const unreadable: string[] = [];
    for (const name of names) {
      const isTemp = name.startsWith(TEMP_PREFIX);
      if (!isTemp && !name.endsWith(CLAIM_SUFFIX)) continue; // not ours: left, and so is the directory
      if (!isTemp) {
        const epoch = epochOfName(name);
        try {
          const claim = epoch === undefined ? undefined : await this.read(vm, epoch);
          if (claim) removed.push(claim);
          else if (epoch === undefined) unreadable.push(name);
        } catch (e) {
          if (!(e instanceof ArbiterError)) throw e;
          unreadable.push(name);
        }
      }
      try {
        await unlink(join(vmDir, name));
      } catch (e) {
        if (code(e) !== "ENOENT") throw fsError("remove", join(vmDir, name), e);
      }
    }
    try {
      await rmdir(vmDir);
    } catch (e) {
      // Not empty: a file that is not ours, or a claim made meanwhile, which stays.
      if (code(e) !== "ENOENT" && code(e) !== "ENOTEMPTY" && code(e) !== "EEXIST") throw fsError("remove", vmDir, e);
    }
    await syncDir(this.dir);
    return { removed: removed.sort((a, b) => b.epoch - a.epoch), unreadable: unreadable.sort() };
  }

  /**
   * The arbiter directory must exist: it is never created here, so that a
   * shared file system that is not mounted is an error rather than a fresh
   * local directory, which would be a second arbiter.
   */
  private async checkRoot(): Promise<void> {
    let st;
    try {
      st = await stat(this.dir);
    } catch (e) {
      if (code(e) === "ENOENT") {
        throw new ArbiterError(`arbiter directory ${this.dir} does not exist (create it, or mount the file system both replicas share)`);
      }
      throw fsError("open the arbiter directory", this.dir, e);
    }
    if (!st.isDirectory()) throw new ArbiterError(`arbiter ${this.dir} is not a directory`);
  }

  /** The epochs held for `vm`, from the file names alone: a damaged claim file still holds its epoch. */
  private async epochs(vm: string): Promise<number[]> {
    const vmDir = join(this.dir, vm);
    let names: string[];
    try {
      names = await readdir(vmDir);
    } catch (e) {
      if (code(e) === "ENOENT") return [];
      throw fsError("list the VM directory", vmDir, e);
    }
    const out: number[] = [];
    for (const name of names) {
      if (!name.endsWith(CLAIM_SUFFIX)) continue;
      const epoch = epochOfName(name);
      if (epoch === undefined) {
        // A claim name that cannot be read might hide a held epoch: refuse to guess.
        throw new ArbiterError(`damaged arbiter: ${join(vmDir, name)} is not a claim file name (EPOCH${CLAIM_SUFFIX}, EPOCH an integer >= 1)`);
      }
      out.push(epoch);
    }
    return out;
  }

  /** The claim in `vm`'s file for `epoch`; undefined if the file is gone; ArbiterError if it is damaged. */
  private async read(vm: string, epoch: number): Promise<ArbiterClaim | undefined> {
    const path = this.claimPath(vm, epoch);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if (code(e) === "ENOENT") return undefined;
      throw fsError("read the claim file", path, e);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ArbiterError(`damaged claim file ${path}: not JSON`);
    }
    const problem = claimProblem(parsed);
    if (problem) throw new ArbiterError(`damaged claim file ${path}: ${problem}`);
    const claim = copyClaim(parsed as ArbiterClaim);
    if (claim.vm !== vm || claim.epoch !== epoch) {
      throw new ArbiterError(`damaged claim file ${path}: it holds VM ${claim.vm} epoch ${claim.epoch}, not its own name's`);
    }
    return claim;
  }

  /** The answer to a claim that lost: the highest claim now held, which is at or above the one asked for. */
  private async lost(c: ArbiterClaim): Promise<ClaimResult> {
    const holder = await this.status(c.vm);
    if (!holder || holder.epoch < c.epoch) {
      throw new ArbiterError(`claim of epoch ${c.epoch} of VM ${c.vm} in ${this.dir} lost, but the claims were removed meanwhile (a reset while replicas run?)`);
    }
    return { won: false, holder };
  }
}

function epochOfName(name: string): number | undefined {
  const m = /^([1-9][0-9]*)\.claim$/.exec(name);
  const n = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

function maxOf(epochs: number[]): number {
  return epochs.reduce((a, b) => Math.max(a, b), 0);
}

/** Creates `path` (it must not exist) holding `text`, flushed to the disk before it is linked anywhere. */
async function writeWhole(path: string, text: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, "wx");
  } catch (e) {
    throw fsError("create a temporary claim file in", path, e);
  }
  try {
    await fh.writeFile(text, "utf8");
    await fh.sync();
  } catch (e) {
    throw fsError("write", path, e);
  } finally {
    await fh.close();
  }
}

/** Makes a directory's new or removed names durable, where the platform allows syncing a directory. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some platforms cannot open or sync a directory; the names are still there, only less surely after a crash.
  }
}

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function fsError(what: string, path: string, e: unknown): ArbiterError {
  const reason: Record<string, string> = {
    ENOENT: "no such file or directory",
    ENOTDIR: "a component of the path is not a directory",
    EACCES: "permission denied",
    EPERM: "permission denied",
    EROFS: "read-only file system",
    ENOSPC: "no space left on the device",
    EISDIR: "it is a directory",
  };
  const c = code(e);
  return new ArbiterError(`cannot ${what} ${path}: ${(c && reason[c]) ?? (e as Error)?.message ?? String(e)}`);
}
