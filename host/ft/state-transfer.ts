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
import { allZero, sameBytes } from "../common/bytes.js";
import { createStreamHash } from "../common/hash.js";
import { STATE_HASH_TAG, stateHashHead } from "../replay/state-hash.js";
import { isZeroPage, pageHash } from "./divergence.js";
import { MAX_FRAME_PAGES, PAGE_BYTES, type Frame } from "./wire.js";

/** Pages whose sending ends the pre-copy: a round that dirtied no more than this many goes out in the pause. */
export const FINAL_PAGES = 256;
/** Rounds after which the pause comes whatever is left (a guest that dirties memory faster than it is sent). */
export const MAX_ROUNDS = 12;
/** PAGES frames one step may make, most of them all-zero pages: 16 x 240 pages, 15 MiB of RAM read. */
const MAX_FRAMES_SCANNED = 16;
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
      if (allZero(data)) {
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

  /**
   * PAGES frames of the current round (none once it is sent): up to
   * `maxFrames` that carry page data, and frames of all-zero pages met on
   * the way (a few bytes a page on the wire) up to MAX_FRAMES_SCANNED in
   * all, so one step reads a bounded share of RAM.
   */
  frames(maxFrames: number): Frame[] {
    if (this.touched < this.copy.length) {
      const end = Math.min(this.copy.length, this.touched + CHUNK);
      this.copy.fill(0, this.touched, end);
      this.touched = end;
    }
    this.scan();
    const out: Frame[] = [];
    for (let withData = 0; withData < maxFrames && out.length < MAX_FRAMES_SCANNED && this.queue.length > 0; ) {
      const f = this.pagesFrame(this.queue.splice(0, MAX_FRAME_PAGES));
      out.push(f);
      if (f.type === "pages" && f.pages.some((p) => p.data !== null)) withData++;
    }
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
      if (b === undefined || (b === null ? zero : !zero && sameBytes(b, pageHash(ram, i)))) this.figures.unchangedPages++;
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

/**
 * The receiving side: RAM assembled from PAGES, then STATE checked and the
 * machine put in it. The check (the state hash over all of RAM) runs a
 * piece a step (checkStep), so a standby keeps answering its primary while
 * it checks tens of MiB, and loading needs no second pass over RAM.
 */
export class StateReceiver {
  readonly ram: Uint8Array;
  private readonly pageCount: number;
  pagesReceived = 0;
  private hasher: Hasher | null = null;
  /** STATE being checked: its frame, its parsed state, how far the hash has read RAM. */
  private checking: { f: Extract<Frame, { type: "state" }>; state: object; hashed: number; done: boolean } | null = null;

  /** `seed`: the RAM to start from (a repaired backup's own; the PAGES overwrite what differs), else zeros. */
  constructor(ramSize: number, seed?: Uint8Array) {
    if (seed && seed.length !== ramSize) throw new TransferError(`a seed RAM of ${seed.length} bytes for a RAM of ${ramSize}`);
    this.ram = seed ? seed.slice() : new Uint8Array(ramSize);
    this.pageCount = ramSize / PAGE_BYTES;
    this.ready = createStreamHash().then((h) => { this.hasher = h; });
  }

  /** Resolves once the hasher is made (it is made asynchronously; checkStep waits for it by returning false). */
  readonly ready: Promise<void>;

  pages(f: Extract<Frame, { type: "pages" }>): void {
    if (this.checking) throw new TransferError(`PAGES round ${f.round} after STATE`);
    for (const p of f.pages) {
      if (p.index >= this.pageCount) throw new TransferError(`PAGES round ${f.round}: page ${p.index} is outside a RAM of ${this.pageCount} pages`);
      if (p.data === null) this.ram.fill(0, p.index * PAGE_BYTES, (p.index + 1) * PAGE_BYTES);
      else this.ram.set(p.data, p.index * PAGE_BYTES);
      this.pagesReceived++;
    }
  }

  /** STATE came: its check starts (checkStep). A state that is not a JSON object is refused here. */
  check(f: Extract<Frame, { type: "state" }>): void {
    if (this.checking) throw new TransferError("a second STATE");
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(f.json));
    } catch (e) {
      throw new TransferError(`STATE: not UTF-8 JSON (${(e as Error).message})`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TransferError("STATE: not a JSON object");
    this.checking = { f, state: parsed, hashed: -1, done: false };
  }

  /**
   * A piece of the check: true once the state hash over STATE's JSON and
   * the assembled RAM equals the sender's. A page lost on the way throws.
   */
  checkStep(): boolean {
    const c = this.checking;
    if (!c) throw new Error("StateReceiver.checkStep before STATE");
    if (c.done) return true;
    if (!this.hasher) return false;
    if (c.hashed < 0) {
      // What the sender hashed: the tag and the state's canonical JSON (stateHashHead), then RAM.
      this.hasher.init();
      this.hasher.update(STATE_HASH_TAG);
      this.hasher.update(c.f.json);
      c.hashed = 0;
    }
    const end = Math.min(this.ram.length, c.hashed + CHUNK);
    this.hasher.update(this.ram.subarray(c.hashed, end));
    c.hashed = end;
    if (end < this.ram.length) return false;
    const got = this.hasher.digest("binary");
    if (!sameBytes(got, c.f.stateHash)) throw new TransferError("STATE: the state hash over the pages received differs from the primary's (a page or part lost on the way)");
    c.done = true;
    return true;
  }

  /**
   * Puts `m` (built for the same configuration, on either engine) in the
   * checked state. A state the machine does not take exactly (its own state
   * afterwards is not the one sent) is refused; `m` is then not to be used.
   */
  load(m: Machine): void {
    const c = this.checking;
    if (!c?.done) throw new Error("StateReceiver.load before the state was checked");
    try {
      m.loadState({ ...c.state, ram: this.ram } as MachineState);
    } catch (e) {
      throw new TransferError(`STATE: the machine refused it: ${(e as Error).message}`);
    }
    if (m.engine.icount !== c.f.icount) throw new TransferError(`STATE: the state is at instruction ${m.engine.icount}, the frame says ${c.f.icount}`);
    // RAM went in by a copy; the rest must read back as it was sent.
    if (!sameBytes(stateHashHead(m.saveState({ ram: "view" }))[1]!, c.f.json)) throw new TransferError("STATE: the machine did not take the state exactly (it reads back otherwise)");
  }

  /** check, every checkStep and load at once (tests, and callers with no peer to keep answering). */
  install(m: Machine, f: Extract<Frame, { type: "state" }>): void {
    this.check(f);
    if (!this.hasher) throw new Error("StateReceiver.install before its hasher was made (await ready first)");
    while (!this.checkStep());
    this.load(m);
  }
}

