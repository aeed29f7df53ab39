// The restore side of `lockstep run --from FILE` (host/cli/run.ts) and the
// disk both snapshot commands use: a read-only image under a copy-on-write
// overlay (host/snapshot/overlay.ts), so neither ever writes the user's
// image. prepareRestore() checks everything about a snapshot against the
// command line before a machine is built. Apart from host/cli/snapshot.ts so
// that run.ts can use it without an import cycle.

import { closeSync, fstatSync, openSync, readFileSync, readSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import { hashBytes, hashStream, initHash, toHex } from "../common/hash.js";
import { BlockStoreError, checkRange, identityOf, SECTOR_SIZE } from "../devices/block-store.js";
import type { Machine } from "../machine/machine.js";
import { seededEntropy, VIRTUAL_ENTROPY_SEED, type World } from "../replay/live-gate.js";
import { hashState } from "../replay/state-hash.js";
import { decodeVmConfig, encodeVmConfig, vmConfig, type VmConfig } from "../replay/vm-config.js";
import { SnapshotError, contentError } from "../snapshot/format.js";
import { OverlayBlockStore, type ReadOnlyBase } from "../snapshot/overlay.js";
import { decodeSnapshot, restoreSnapshot, type Snapshot } from "../snapshot/snapshot.js";
import { UsageError } from "./args.js";
import { CommandError, EXIT_USAGE } from "./command.js";

/** A file's bytes, or a CommandError (exit 2) naming it and why not. */
export function readInput(file: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CommandError(`cannot read ${what} ${file}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (e as Error).message}`, EXIT_USAGE);
  }
}

/** Whether two paths name the same file. */
export function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
}

/** A raw image opened read-only, hashed once for its identity (as FileBlockStore's, so configurations agree). */
export class ReadOnlyImage implements ReadOnlyBase {
  readonly sectors: number;
  private fd: number | null;
  private readonly id: string;

  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new BlockStoreError(`disk image ${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (e as Error).message}`);
    }
    this.fd = fd;
    try {
      const bytes = fstatSync(fd).size;
      if (!fstatSync(fd).isFile()) throw new BlockStoreError(`disk image ${path}: not a regular file`);
      if (bytes === 0 || bytes % SECTOR_SIZE !== 0) throw new BlockStoreError(`disk image ${path}: size ${bytes} bytes is not a positive multiple of ${SECTOR_SIZE}`);
      this.sectors = bytes / SECTOR_SIZE;
      const buf = new Uint8Array(Math.min(1 << 20, bytes));
      this.id = identityOf(bytes, hashStream((update) => {
        for (let at = 0; at < bytes;) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at);
          if (n <= 0) throw new BlockStoreError(`disk image ${path}: short read at byte ${at}`);
          update(buf.subarray(0, n));
          at += n;
        }
      }));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  read(lba: number, count: number): Uint8Array {
    if (this.fd === null) throw new Error(`disk image ${this.path}: used after close()`);
    checkRange(this.sectors, lba, count);
    const out = new Uint8Array(count * SECTOR_SIZE);
    for (let at = 0; at < out.length;) {
      const n = readSync(this.fd, out, at, out.length - at, lba * SECTOR_SIZE + at);
      if (n <= 0) throw new BlockStoreError(`disk image ${this.path}: short read at sector ${lba + Math.floor(at / SECTOR_SIZE)} (the file shrank?)`);
      at += n;
    }
    return out;
  }

  identity(): string {
    return this.id;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export function openOverlay(path: string): OverlayBlockStore {
  try {
    return new OverlayBlockStore(new ReadOnlyImage(path));
  } catch (e) {
    if (e instanceof BlockStoreError) throw new CommandError(e.message, EXIT_USAGE);
    throw e;
  }
}

/**
 * Under the virtual clock the gate's entropy is a seeded sequence
 * (host/replay/live-gate.ts): count the values handed out, so a restore can
 * go on from the same place in it.
 */
export function countedEntropy(skip: number): { world: Partial<World>; draws: () => number } {
  const next = seededEntropy(VIRTUAL_ENTROPY_SEED);
  let n = 0;
  for (; n < skip; n++) next();
  return { world: { entropy: () => { n++; return next(); } }, draws: () => n };
}

/** What `run --from` needs: the snapshot, its configuration and disk, and the step that loads it into the booted machine. */
export interface RestoreSetup {
  file: string;
  snap: Snapshot;
  config: VmConfig;
  overlay?: OverlayBlockStore;
  world?: Partial<World>;
  /** Loads the snapshot into `m` (built from `config` and the snapshot's image); throws CommandError. */
  apply(m: Machine): void;
}

/**
 * Reads FILE as a snapshot and decodes its configuration (and, with
 * `checkImage`, checks its IMAGE against it): any damage is a usage error
 * naming the file (exit 2).
 */
export async function readSnapshotFile(file: string, o: { checkImage: boolean }): Promise<{ snap: Snapshot; config: VmConfig; bytes: Uint8Array }> {
  await initHash();
  const bytes = readInput(file, "snapshot");
  try {
    const snap = decodeSnapshot(bytes);
    let config: VmConfig;
    try {
      config = decodeVmConfig(snap.config);
    } catch (e) {
      throw contentError(snap.file, "CONFIG", (e as Error).message);
    }
    if (o.checkImage && (toHex(hashBytes(snap.image)) !== config.image || snap.image.length !== config.imageBytes)) {
      throw contentError(snap.file, "IMAGE", "the guest image is not the one CONFIG names (its hash or size differs)");
    }
    return { snap, config, bytes };
  } catch (e) {
    if (e instanceof SnapshotError) throw new CommandError(`${file}: ${e.message}`, EXIT_USAGE);
    throw e;
  }
}

/**
 * Reads and checks a snapshot for `run --from`: the file (any damage:
 * exit 2), the configuration, the image against CONFIG, GUEST against the
 * image, the run flags against the configuration, the --disk image's
 * identity against the configuration's.
 */
export async function prepareRestore(file: string, given: { guest?: string; mem?: number; clock?: string; cmdline?: string; disk?: string; nic?: string }): Promise<RestoreSetup> {
  const { snap, config } = await readSnapshotFile(file, { checkImage: true });
  const fail = (e: unknown): never => {
    if (e instanceof SnapshotError) throw new CommandError(`${file}: ${e.message}`, EXIT_USAGE);
    throw e;
  };
  if (given.guest !== undefined) {
    const guest = readInput(given.guest, "GUEST");
    const h = toHex(hashBytes(guest));
    if (h !== config.image) throw new CommandError(`${given.guest} is not the guest this snapshot was taken of (its BLAKE3 is ${h}, the snapshot's image ${config.image}); leave GUEST out to run the snapshot's own`, EXIT_USAGE);
  }
  const conflict = (flag: string, value: string, theirs: string) =>
    new UsageError(`--${flag} ${value} conflicts with the snapshot's ${theirs}; a restored VM keeps its configuration (leave --${flag} out)`);
  if (given.mem !== undefined && given.mem !== config.ramSize) throw conflict("mem", String(given.mem), `RAM of ${config.ramSize} bytes`);
  if (given.clock !== undefined && given.clock !== config.clock) throw conflict("clock", given.clock, `clock ${config.clock}`);
  // The configuration's command line is the GUEST path as given to `snapshot save`, a space, then --cmdline.
  const args = config.cmdline.slice(config.cmdline.indexOf(" ") + 1);
  if (given.cmdline !== undefined && given.cmdline !== args) throw conflict("cmdline", JSON.stringify(given.cmdline), `command line ${JSON.stringify(config.cmdline)}`);
  if (given.nic !== undefined && !config.nic) throw new UsageError("--nic: the snapshot's VM has no NIC");
  let overlay: OverlayBlockStore | undefined;
  if (config.disk === null && given.disk !== undefined) throw new UsageError("--disk: the snapshot's VM has no disk");
  if (config.disk !== null) {
    if (given.disk === undefined) throw new UsageError(`the snapshot's VM has a disk: give --disk FILE, the image it was taken with (${config.disk.identity})`);
    overlay = openOverlay(given.disk);
    if (overlay.identity() !== config.disk.identity) {
      overlay.close();
      throw new CommandError(`--disk ${given.disk} is not the image the snapshot was taken with: its identity is ${overlay.identity()}, the snapshot's ${config.disk.identity}`, EXIT_USAGE);
    }
  }
  const entropy = config.clock === "virtual" ? countedEntropy(snap.meta.entropyDraws) : undefined;
  const setup: RestoreSetup = {
    file, snap, config, overlay, world: entropy?.world,
    apply(m) {
      const mine = encodeVmConfig(vmConfig(snap.image, { ramSize: m.engine.ramSize, clock: config.clock, cmdline: config.cmdline, nic: m.nic !== undefined, disk: overlay }));
      try {
        restoreSnapshot(m, snap, { config: mine, hashState, overlay });
      } catch (e) {
        fail(e);
      }
    },
  };
  return setup;
}
