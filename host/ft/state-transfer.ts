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

import type { DirtyUser } from "../engine/dirty.js";
import type { Machine, MachineState } from "../machine/machine.js";
import { hashState } from "../replay/state-hash.js";
import { createStreamHash } from "../common/hash.js";
import { stateHashHead, stateJson } from "../replay/state-hash.js";
import { MAX_FRAME_PAGES, PAGE_BYTES, type Frame } from "./wire.js";

/** Pages whose sending ends the pre-copy: a round that dirtied no more than this many goes out in the pause. */
export const FINAL_PAGES = 256;
/** Rounds after which the pause comes whatever is left (a guest that dirties memory faster than it is sent). */
export const MAX_ROUNDS = 12;
/** Bytes of the RAM copy hashed, or made ready, per step. */
const CHUNK = 4 << 20;

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
}

export class TransferError extends Error {}

const isZero = (b: Uint8Array) => {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
};

type Hasher = Awaited<ReturnType<typeof createStreamHash>>;

/** The sending side, on the primary's machine. */
export class PreCopy {
  private queue: number[];
  private round = 0;
  private readonly user: DirtyUser;
  readonly figures: TransferFigures = { rounds: 0, pages: 0, zeroPages: 0, bytes: 0, finalPages: 0, pauseMs: 0 };
  /** The RAM copy the pause fills; its pages are touched a chunk a step beforehand (a fresh buffer's page faults are slow). */
  private readonly copy: Uint8Array;
  private touched = 0;
  private hasher: Hasher | null = null;
  /** After the pause: the STATE frame waiting for its hash, and how far the hash has read the copy. */
  private pending: { icount: bigint; outputSeq: number; json: Uint8Array; hashed: number } | null = null;

  constructor(private readonly m: Machine, private readonly o: { finalPages?: number; maxRounds?: number } = {}) {
    this.user = m.dirty.register("pre-copy");
    this.user.take(); // marks from before the transfer: round 0 sends every page anyway
    this.queue = Array.from({ length: m.engine.ramSize / PAGE_BYTES }, (_, i) => i);
    this.copy = new Uint8Array(m.engine.ramSize);
    void createStreamHash().then((h) => { this.hasher = h; });
  }

  private pagesFrame(indices: number[]): Frame {
    const pages = indices.map((index) => {
      const data = this.m.engine.readMem(index * PAGE_BYTES, PAGE_BYTES);
      if (isZero(data)) {
        this.figures.zeroPages++;
        return { index, data: null };
      }
      return { index, data };
    });
    this.figures.pages += pages.length;
    this.figures.bytes += pages.reduce((n, p) => n + 4 + (p.data ? PAGE_BYTES : 0), 0);
    return { type: "pages", round: this.round, pages };
  }

  /** Up to `maxFrames` PAGES frames of the current round (none once it is sent). */
  frames(maxFrames: number): Frame[] {
    if (this.touched < this.copy.length) {
      const end = Math.min(this.copy.length, this.touched + CHUNK);
      this.copy.fill(0, this.touched, end);
      this.touched = end;
    }
    const out: Frame[] = [];
    while (out.length < maxFrames && this.queue.length > 0) out.push(this.pagesFrame(this.queue.splice(0, MAX_FRAME_PAGES)));
    return out;
  }

  get roundSent(): boolean {
    return this.queue.length === 0;
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

  /** The transfer is given up (the new backup went away): the dirty marks stop being kept for it. */
  abandon(): void {
    this.user.unregister();
    this.queue = [];
    this.pending = null;
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

  constructor(ramSize: number) {
    this.ram = new Uint8Array(ramSize);
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
