// A machine's snapshot: what Machine.saveState() lists (host/machine/machine.ts)
// plus what is needed to rebuild the same machine elsewhere — the VM
// configuration and the guest image — and the disk's written sectors, framed
// by format.ts (docs/snapshot-format.md).
//
// The configuration and the state hash belong to host/replay, which this
// layer may not import: the caller hands in the configuration's canonical
// bytes (host/replay/vm-config.ts encodeVmConfig) and a function that hashes
// a state (host/replay/state-hash.ts hashState). A restore then checks the
// configuration byte for byte and the state hash after loading, so a
// snapshot that restores at all restores to exactly the state it was taken
// in.

import type { Machine, MachineState } from "../machine/machine.js";
import { sameBytes } from "../common/bytes.js";
import { canonicalJson, DIGEST_BYTES, toHex } from "../common/hash.js";
import { contentError, readSnapshot, writeSnapshot, type ReadSnapshot, type WriteOptions } from "./format.js";
import { decodeOverlay, encodeOverlay, type OverlayBlockStore } from "./overlay.js";

/** The META section: facts about the moment the snapshot was taken. */
export interface SnapshotMeta {
  /** Instructions retired when it was taken (the same as STATE's cpu.icount). */
  icount: bigint;
  /** The engine it was taken on (informational: it restores on either). */
  engine: string;
  /** Guest time then (ns), for people reading `snapshot inspect`. */
  guestNs: number;
  /** The state hash (host/replay/state-hash.ts) of the state in STATE and RAM. */
  stateHash: Uint8Array;
  /**
   * Values the gate's seeded entropy (virtual clock) had handed out: a gate
   * restored for the snapshot skips as many, so RDRAND goes on where it was.
   */
  entropyDraws: number;
  /** "overlay": DISK holds the sectors written since the image was opened; "shared": the disk's content is not in the snapshot; "none": no disk. */
  disk: "overlay" | "shared" | "none";
}

export type StateHasher = (s: MachineState) => Uint8Array;

export interface CaptureOptions {
  /** The VM configuration's canonical bytes (encodeVmConfig). */
  config: Uint8Array;
  /** The guest image the machine booted. */
  image: Uint8Array;
  engine: string;
  hashState: StateHasher;
  /** The machine's disk store, when it has a disk whose writes the snapshot must carry. */
  overlay?: OverlayBlockStore;
  /** The machine has a disk whose content lives elsewhere (shared storage): no DISK section. */
  sharedDisk?: boolean;
  entropyDraws?: number;
  write?: WriteOptions;
}

/**
 * The snapshot of `m` now, as file bytes. Call between runSync() calls (an
 * instruction boundary), after await initHash().
 */
export function captureSnapshot(m: Machine, o: CaptureOptions): Uint8Array {
  if (m.disk && !o.overlay && !o.sharedDisk) throw new TypeError("snapshot: the machine has a disk: pass its overlay store (or sharedDisk)");
  if (!m.disk && (o.overlay || o.sharedDisk)) throw new TypeError("snapshot: an overlay or shared disk for a machine without a disk");
  const state = m.saveState({ ram: "view" });
  const meta: SnapshotMeta = {
    icount: m.engine.icount,
    engine: o.engine,
    guestNs: m.nowNs(),
    stateHash: o.hashState(state),
    entropyDraws: o.entropyDraws ?? 0,
    disk: o.overlay ? "overlay" : o.sharedDisk ? "shared" : "none",
  };
  const { ram, ...rest } = state;
  const enc = new TextEncoder();
  return writeSnapshot({
    CONFIG: o.config,
    META: enc.encode(canonicalJson({ ...meta, stateHash: toHex(meta.stateHash) })),
    IMAGE: o.image,
    STATE: enc.encode(canonicalJson(rest)),
    RAM: ram,
    DISK: o.overlay ? encodeOverlay(o.overlay.writtenSectors()) : undefined,
  }, o.write);
}

export interface Snapshot {
  /** The file as read: versions, section offsets and sizes. */
  file: ReadSnapshot;
  config: Uint8Array;
  meta: SnapshotMeta;
  image: Uint8Array;
  state: MachineState;
}

/**
 * Reads a snapshot file and decodes its META and STATE sections. Throws
 * SnapshotError (format.ts) naming the byte offset and section of the first
 * thing wrong. The configuration is the caller's to decode; the state's
 * parts are checked as a machine loads them (restoreSnapshot).
 */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const file = readSnapshot(bytes);
  const s = file.sections;
  const meta = decodeMeta(file);
  if ((meta.disk === "overlay") !== (s.DISK !== undefined)) {
    throw contentError(file, "META", `disk is ${JSON.stringify(meta.disk)} but the file ${s.DISK ? "has" : "has no"} DISK section`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(s.STATE));
  } catch (e) {
    throw contentError(file, "STATE", `not UTF-8 JSON (${(e as Error).message})`);
  }
  const o = json as Record<string, unknown>;
  const parts = ["cpu", "devices", "exitStatus", "idleSkips", "time", "wallEpochMs"];
  if (typeof o !== "object" || o === null || Array.isArray(o) || Object.keys(o).sort().join(",") !== parts.join(",")) {
    throw contentError(file, "STATE", `not a machine state: its parts must be exactly ${parts.join(", ")}`);
  }
  const cpu = o.cpu as { icount?: unknown } | null;
  if (typeof cpu !== "object" || cpu === null || cpu.icount !== meta.icount.toString()) {
    throw contentError(file, "STATE", `the CPU's instruction count ${JSON.stringify(cpu?.icount)} is not META's ${meta.icount}`);
  }
  const state = { ...o, ram: s.RAM } as unknown as MachineState;
  return { file, config: s.CONFIG, meta, image: s.IMAGE, state };
}

function decodeMeta(file: ReadSnapshot): SnapshotMeta {
  const bad = (why: string) => contentError(file, "META", why);
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(file.sections.META)) as Record<string, unknown>;
  } catch (e) {
    throw bad(`not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("not a JSON object");
  if (typeof v.icount !== "string" || !/^(0|[1-9]\d{0,19})$/.test(v.icount) || BigInt(v.icount) >= 2n ** 64n) throw bad("icount is not a decimal instruction count");
  if (typeof v.engine !== "string" || v.engine === "") throw bad("engine is not a name");
  if (typeof v.guestNs !== "number" || !(v.guestNs >= 0)) throw bad("guestNs is not a non-negative number");
  if (typeof v.stateHash !== "string" || !new RegExp(`^[0-9a-f]{${DIGEST_BYTES * 2}}$`).test(v.stateHash)) throw bad("stateHash is not a hex BLAKE3 digest");
  if (typeof v.entropyDraws !== "number" || !Number.isSafeInteger(v.entropyDraws) || v.entropyDraws < 0) throw bad("entropyDraws is not a count");
  if (v.disk !== "overlay" && v.disk !== "shared" && v.disk !== "none") throw bad("disk is not overlay, shared or none");
  return {
    icount: BigInt(v.icount), engine: v.engine, guestNs: v.guestNs,
    stateHash: Uint8Array.from(v.stateHash.match(/../g)!, (h) => parseInt(h, 16)),
    entropyDraws: v.entropyDraws, disk: v.disk,
  };
}

export interface RestoreOptions {
  /** The canonical configuration bytes of the machine being restored into: must equal the snapshot's. */
  config: Uint8Array;
  hashState: StateHasher;
  /** The machine's disk store, to receive the snapshot's DISK sectors. */
  overlay?: OverlayBlockStore;
}

/**
 * Puts `m` (a machine built for the snapshot's configuration, on either
 * engine) in the snapshot's state, and the snapshot's written sectors in
 * `overlay`. Anything that does not fit — another configuration, a state
 * the machine refuses, a state hash that differs after loading — throws a
 * SnapshotError and leaves the machine and the overlay as they were.
 */
export function restoreSnapshot(m: Machine, snap: Snapshot, o: RestoreOptions): void {
  const file = snap.file;
  if (!sameBytes(o.config, snap.config)) {
    throw contentError(file, "CONFIG", `the snapshot was made for another configuration: ${new TextDecoder().decode(snap.config)}, not ${new TextDecoder().decode(o.config)}`);
  }
  if (snap.meta.disk === "overlay" && !o.overlay) throw contentError(file, "DISK", "the snapshot carries disk sectors but the machine was given no overlay store for them");
  if (snap.state.ram.length !== m.engine.ramSize) throw contentError(file, "RAM", `${snap.state.ram.length} bytes of RAM for a machine of ${m.engine.ramSize}`);
  let sectors: { lba: number; data: Uint8Array }[] = [];
  if (file.sections.DISK && o.overlay) {
    try {
      sectors = decodeOverlay(file.sections.DISK, o.overlay.sectors);
    } catch (e) {
      throw contentError(file, "DISK", (e as Error).message);
    }
  }
  const undo = m.saveState();
  try {
    m.loadState(snap.state);
  } catch (e) {
    throw contentError(file, "STATE", `the machine refused the state: ${(e as Error).message}`);
  }
  const hash = o.hashState(m.saveState({ ram: "view" }));
  if (!sameBytes(hash, snap.meta.stateHash)) {
    m.loadState(undo);
    throw contentError(file, "META", `after loading, the machine's state hash is ${toHex(hash)}, not the snapshot's ${toHex(snap.meta.stateHash)}`);
  }
  o.overlay?.load(sectors);
}


