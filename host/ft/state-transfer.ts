// State transfer to a new backup while the primary keeps running: live
// pre-copy, as live migration does it. Round 0 sends all of guest RAM while
// the guest runs; each later round sends the pages the guest dirtied during
// the one before (the machine's dirty tracker, host/engine/dirty.ts); when
// what is left is small, the primary pauses between two instructions, sends
// the last dirty pages and the machine's state without RAM (STATE), and
// goes on paired: the log the backup replays starts at that count. The pause
// only copies RAM into a buffer made ready during the rounds; the state hash
// is computed over that copy afterwards, a piece a step while the guest
// runs, and STATE goes out when it is done (the backup acknowledges nothing
// until it has installed the state, so no output is released before then).
// The wire frames are PAGES and STATE (docs/ft-protocol.md).
//
// The same transfer repairs a backup that diverged (divergence.ts): given
// the hashes of the backup's pages (`base`), round 0 sends only the pages
// whose hash differs, and the receiver starts from the backup's own RAM.

import type { DirtyUser } from "../engine/dirty.js";
import type { Machine, MachineState } from "../machine/machine.js";
import { hashState } from "../replay/state-hash.js";
import { createStreamHash } from "../common/hash.js";
import { stateHashHead, stateJson } from "../replay/state-hash.js";
import { isZeroBytes, isZeroPage, pageHash, sameHash } from "./divergence.js";
import { MAX_FRAME_PAGES, PAGE_BYTES, type Frame } from "./wire.js";

/** Pages whose sending ends the pre-copy: a round that dirtied no more than this many goes out in the pause. */
export const FINAL_PAGES = 256;
/** Rounds after which the pause comes whatever is left (a guest that dirties memory faster than it is sent). */
export const MAX_ROUNDS = 12;
/** Bytes of the RAM copy hashed, or made ready, per step. */
const CHUNK = 4 << 20;
/** Pages compared with the receiver's hashes per call of frames() (a repair's round 0). */
const SCAN_PAGES = 2048;

export interface TransferFigures {
  /** Pre-copy rounds before the pause (round 0 is all of RAM). */
  rounds: number;
  pages: number;
  /** Pages sent as all-zero markers (no data on the wire). */
  zeroPages: number;
  /** Frame body bytes of PAGES and STATE. */
  bytes: number;
  /** Pages sent in the pause, and the pause itself (ms, the caller's clock). */
  finalPages: number;
  pauseMs: number;
  /** A repair: pages round 0 found equal to the receiver's and did not send. */
  unchangedPages: number;
  /** Body bytes round 0 would have cost sending every page (a full transfer's, for comparison). */
  fullBytes: number;
  /** A repair: body bytes of the backup's page list (REPAIR), the other way. */
  requestBytes: number;
}

export class TransferError extends Error {}


type Hasher = Awaited<ReturnType<typeof createStreamHash>>;

/** The sending side, on the primary's machine. */
export class PreCopy {
  private queue: number[];
  /** Round 0 of a repair: how far the scan against the receiver's hashes has gone. */
  private scanned = 0;
  private round = 0;
  private readonly user: DirtyUser;
  readonly figures: TransferFigures = { rounds: 0, pages: 0, zeroPages: 0, bytes: 0, finalPages: 0, pauseMs: 0, unchangedPages: 0, fullBytes: 0, requestBytes: 0 };
  /** The RAM copy the pause fills; its pages are touched a chunk a step beforehand (a fresh buffer's page faults are slow). */
  private readonly copy: Uint8Array;
  private touched = 0;
  private hasher: Hasher | null = null;
  /** After the pause: the STATE frame waiting for its hash, and how far the hash has read the copy. */
  private pending: { icount: bigint; outputSeq: number; json: Uint8Array; hashed: number } | null = null;

  /**
   * `base`: the receiver's page hashes (null: an all-zero page), for a
   * repair: round 0 sends only the pages that differ from them. Pages the
   * guest writes meanwhile go in the next round as in any transfer.
   */
  constructor(private readonly m: Machine, private readonly o: { finalPages?: number; maxRounds?: number; base?: (Uint8Array | null)[] } = {}) {
    this.user = m.dirty.register("pre-copy");
    this.user.take(); // marks from before the transfer: round 0 looks at every page anyway
    const pages = m.engine.ramSize / PAGE_BYTES;
    if (o.base && o.base.length !== pages) throw new TransferError(`the receiver's page list has ${o.base.length} pages; RAM has ${pages}`);
    this.queue = o.base ? [] : Array.from({ length: pages }, (_, i) => i);
    if (!o.base) this.scanned = pages;
    this.copy = new Uint8Array(m.engine.ramSize);
    void createStreamHash().then((h) => { this.hasher = h; });
  }

  private pagesFrame(indices: number[]): Frame {
    const pages = indices.map((index) => {
      const data = this.m.engine.readMem(index * PAGE_BYTES, PAGE_BYTES);
      if (isZeroBytes(data)) {
        this.figures.zeroPages++;
        return { index, data: null };
      }
      return { index, data };
    });
    this.figures.pages += pages.length;
    const bytes = pages.reduce((n, p) => n + 4 + (p.data ? PAGE_BYTES : 0), 0);
    this.figures.bytes += bytes;
    // A whole transfer's round 0 is every page: what it costs is what it sends.
    if (this.round === 0 && !this.o.base) this.figures.fullBytes += bytes;
    return { type: "pages", round: this.round, pages };
  }

  /** Up to `maxFrames` PAGES frames of the current round (none once it is sent). */
  frames(maxFrames: number): Frame[] {
    if (this.touched < this.copy.length) {
      const end = Math.min(this.copy.length, this.touched + CHUNK);
      this.copy.fill(0, this.touched, end);
      this.touched = end;
    }
    this.scan();
    const out: Frame[] = [];
    while (out.length < maxFrames && this.queue.length > 0) out.push(this.pagesFrame(this.queue.splice(0, MAX_FRAME_PAGES)));
    return out;
  }

  /** A repair's round 0: the next pages compared with the receiver's; those that differ are queued. */
  private scan(): void {
    const base = this.o.base;
    const ram = this.m.engine.ram;
    const pages = this.m.engine.ramSize / PAGE_BYTES;
    if (!base || this.round > 0) return;
    const end = Math.min(pages, this.scanned + SCAN_PAGES);
    for (let i = this.scanned; i < end; i++) {
      const zero = isZeroPage(ram, i);
      this.figures.fullBytes += 4 + (zero ? 0 : PAGE_BYTES);
      const b = base[i];
      if (b === undefined || (b === null ? zero : !zero && sameHash(b, pageHash(ram, i)))) this.figures.unchangedPages++;
      else this.queue.push(i);
    }
    this.scanned = end;
  }

  get roundSent(): boolean {
    return this.queue.length === 0 && this.scanned >= this.m.engine.ramSize / PAGE_BYTES;
  }

  /**
   * The round is out: the next is what the guest dirtied meanwhile. True
   * when that is small enough (or the rounds are used up) to send in the
   * pause — and the copy buffer and the hasher are ready for it.
   */
  nextRound(): boolean {
    this.round++;
    this.queue = [...new Set([...this.queue, ...this.user.take()])].sort((a, b) => a - b);
    this.figures.rounds = this.round;
    const ready = this.touched >= this.copy.length && this.hasher !== null;
    return ready && (this.queue.length <= (this.o.finalPages ?? FINAL_PAGES) || this.round >= (this.o.maxRounds ?? MAX_ROUNDS));
  }

  /**
   * The pause: the guest stopped at a boundary. The pages dirtied since the
   * last round go out; RAM is copied and the state taken; STATE follows
   * (hashStep) once its hash is computed over the copy.
   */
  finish(outputSeq: number): Frame[] {
    const last = [...new Set([...this.queue, ...this.user.take()])].sort((a, b) => a - b);
    this.queue = [];
    this.user.unregister();
    const out: Frame[] = [];
    for (let i = 0; i < last.length; i += MAX_FRAME_PAGES) out.push(this.pagesFrame(last.slice(i, i + MAX_FRAME_PAGES)));
    this.figures.finalPages = last.length;
    const s = this.m.saveState({ ram: "view" });
    this.copy.set(s.ram);
    const [tag, json] = stateHashHead(s) as [Uint8Array, Uint8Array];
    this.hasher!.init();
    this.hasher!.update(tag);
    this.hasher!.update(json);
    this.pending = { icount: this.m.engine.icount, outputSeq, json, hashed: 0 };
    return out;
  }

  /** After the pause, a step of the hash over the copy; the STATE frame once it is done (null before). */
  hashStep(): Frame | null {
    const p = this.pending;
    if (!p) return null;
    const end = Math.min(this.copy.length, p.hashed + CHUNK);
    this.hasher!.update(this.copy.subarray(p.hashed, end));
    p.hashed = end;
    if (end < this.copy.length) return null;
    this.pending = null;
    this.figures.bytes += p.json.length + 32;
    return { type: "state", icount: p.icount, outputSeq: p.outputSeq, stateHash: this.hasher!.digest("binary"), json: p.json };
  }

  /** Whether the pause is over and STATE is still to go. */
  get hashing(): boolean {
    return this.pending !== null;
  }
}

/** The receiving side: RAM assembled from PAGES, then the machine put in the STATE. */
export class StateReceiver {
  readonly ram: Uint8Array;
  private readonly pageCount: number;
  pagesReceived = 0;

  /** `seed`: the RAM to start from (a repaired backup's own; the PAGES overwrite what differs), else zeros. */
  constructor(ramSize: number, seed?: Uint8Array) {
    if (seed && seed.length !== ramSize) throw new TransferError(`a seed RAM of ${seed.length} bytes for a RAM of ${ramSize}`);
    this.ram = seed ? seed.slice() : new Uint8Array(ramSize);
    this.pageCount = ramSize / PAGE_BYTES;
  }

  pages(f: Extract<Frame, { type: "pages" }>): void {
    for (const p of f.pages) {
      if (p.index >= this.pageCount) throw new TransferError(`PAGES round ${f.round}: page ${p.index} is outside a RAM of ${this.pageCount} pages`);
      if (p.data === null) this.ram.fill(0, p.index * PAGE_BYTES, (p.index + 1) * PAGE_BYTES);
      else this.ram.set(p.data, p.index * PAGE_BYTES);
      this.pagesReceived++;
    }
  }

  /**
   * Puts `m` (built for the same configuration, on either engine) in the
   * transferred state; refuses a state the machine does not take or whose
   * hash differs from the sender's (the machine is then as it was).
   */
  install(m: Machine, f: Extract<Frame, { type: "state" }>): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(f.json));
    } catch (e) {
      throw new TransferError(`STATE: not UTF-8 JSON (${(e as Error).message})`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TransferError("STATE: not a JSON object");
    const s = { ...(parsed as object), ram: this.ram } as MachineState;
    const undo = m.saveState();
    try {
      m.loadState(s);
    } catch (e) {
      throw new TransferError(`STATE: the machine refused it: ${(e as Error).message}`);
    }
    if (m.engine.icount !== f.icount) {
      m.loadState(undo);
      throw new TransferError(`STATE: the state is at instruction ${m.engine.icount}, the frame says ${f.icount}`);
    }
    const got = hashState(m.saveState({ ram: "view" }));
    if (got.length !== f.stateHash.length || got.some((x, i) => x !== f.stateHash[i])) {
      m.loadState(undo);
      throw new TransferError("STATE: the state hash after loading differs from the primary's (a page or part lost on the way)");
    }
  }
}
