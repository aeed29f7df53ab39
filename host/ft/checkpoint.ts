// Checkpoint mode's state, made and applied (docs/ft-checkpoint.md): every
// epoch the primary stops between two instructions, copies the pages its
// guest dirtied since the last checkpoint (the machine's dirty tracker,
// host/engine/dirty.ts) and its state without RAM, and goes on; the copies
// leave as PAGES frames, the epoch's outputs as OUTPUTS frames, and a
// CHECKPOINT frame last. The backup stages what arrives and applies it only
// when the CHECKPOINT frame comes whole, so the state it holds is always a
// complete checkpoint: a checkpoint cut off mid-stream is never applied.
// Both sides boot the same image, so checkpoint 0 is the boot state.

import type { DirtyUser } from "../engine/dirty.js";
import type { Machine, MachineState } from "../machine/machine.js";
import { hashState, stateJson } from "../replay/state-hash.js";
import type { Output } from "./output-gate.js";
import { allZero } from "../common/bytes.js";
import { TransferError } from "./state-transfer.js";
import { MAX_FRAME_PAGES, outputBatches, PAGE_BYTES, type Frame } from "./wire.js";

/** Default time between checkpoints (Remus's order of magnitude; docs/ft-checkpoint.md). */
export const DEFAULT_EPOCH_MS = 25;

/** What checkpointing cost so far, for status lines and the comparison with replay mode. */
export interface CheckpointFigures {
  /** Whose figures: the primary's (checkpoints sent) or the backup's (applied). */
  did: "sent" | "applied";
  checkpoints: number;
  /** Pages sent (or applied), and how many of them were all zero (no data on the wire). */
  pages: number;
  zeroPages: number;
  /** Frame body bytes of PAGES, OUTPUTS and CHECKPOINT. */
  bytes: number;
  /** The primary's pauses: the last, the longest and all of them together (ms). */
  lastPauseMs: number;
  maxPauseMs: number;
  pauseMs: number;
  /** Pages in the last checkpoint. */
  lastPages: number;
}

const newFigures = (did: CheckpointFigures["did"]): CheckpointFigures => ({ did, checkpoints: 0, pages: 0, zeroPages: 0, bytes: 0, lastPauseMs: 0, maxPauseMs: 0, pauseMs: 0, lastPages: 0 });

/** The state hash field of a checkpoint that carries none. */
const NO_HASH = new Uint8Array(32);

/** A checkpoint's frame body bytes, near enough for the figures: its pages, outputs and state. */
function checkpointBytes(pages: { data: Uint8Array | null }[], outputs: Output[], json: Uint8Array): number {
  let n = json.length + 64;
  for (const p of pages) n += 4 + (p.data ? PAGE_BYTES : 0);
  for (const o of outputs) n += 12 + (o.value instanceof Uint8Array ? o.value.length + 2 : 1);
  return n;
}

/** The primary's side: takes checkpoints of its machine and hands out their frames. */
export class CheckpointMaker {
  private readonly user: DirtyUser;
  private n = 0;
  private lastIcount: bigint;
  /** Outputs made since the last checkpoint: they go with the next one. */
  private epochOutputs: Output[] = [];
  private queue: Frame[] = [];
  /** The checkpoint whose frames are going out: its count and last output, for the role once its CHECKPOINT is sent. */
  private going: { icount: bigint; outputSeq: number } | null = null;
  readonly figures = newFigures("sent");

  /**
   * Starts from the machine as it is (checkpoint 0, which the backup has
   * too). `hash`: each checkpoint carries its state hash, which the backup
   * checks when it resumes from it (a hash over all of RAM per checkpoint:
   * for tests and the simulation, not for speed).
   */
  constructor(private readonly m: Machine, private readonly o: { hash?: boolean; full?: boolean } = {}) {
    this.user = m.dirty.register("checkpoint");
    this.user.take(); // the loader's writes: the backup booted the same image
    this.lastIcount = m.engine.icount;
    this.full = o.full ?? false;
  }

  /** The next checkpoint holds every page (`full`: for a new backup that joins a running primary, with nothing to start from). */
  private full: boolean;

  /** The guest made an output: it goes with the next checkpoint. */
  output(o: Output): void {
    this.epochOutputs.push(o);
  }

  /** Whether a checkpoint may be taken now: the last one is out and the guest has run since (counts name checkpoints). */
  get ready(): boolean {
    return this.queue.length === 0 && this.m.engine.icount > this.lastIcount;
  }

  /** Whether a checkpoint's frames are still going out. */
  get sending(): boolean {
    return this.queue.length > 0;
  }

  /** Outputs made since the last checkpoint. */
  get uncovered(): number {
    return this.epochOutputs.length;
  }

  /**
   * The pause, at an instruction boundary: the dirty pages and the state
   * are copied (the frames hold the copies), so the guest may run on at
   * once; the frames go out with frames(). `outputSeq`: the last output made.
   */
  take(outputSeq: number): { n: number; icount: bigint } {
    const t0 = performance.now();
    const n = ++this.n;
    let dirty = this.user.take();
    if (this.full) {
      dirty = Array.from({ length: this.m.engine.ramSize / PAGE_BYTES }, (_, i) => i);
      this.full = false;
    }
    // Looked at in place, copied only when not all zero.
    const ram = this.m.engine.ram;
    const pages = dirty.map((index) => {
      const view = ram.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES);
      return { index, data: allZero(view) ? null : view.slice() };
    });
    const s = this.m.saveState({ ram: "view" });
    const json = new TextEncoder().encode(stateJson(s));
    const stateHash = this.o.hash ? hashState(s) : NO_HASH;
    const icount = this.m.engine.icount;
    const outputs = this.epochOutputs;
    this.epochOutputs = [];
    for (let i = 0; i < pages.length; i += MAX_FRAME_PAGES) this.queue.push({ type: "pages", round: n, pages: pages.slice(i, i + MAX_FRAME_PAGES) });
    this.queue.push(...outputBatches(n, outputs));
    this.queue.push({ type: "checkpoint", n, icount, outputSeq, pages: pages.length, stateHash, json });
    this.going = { icount, outputSeq };
    this.lastIcount = icount;
    const f = this.figures;
    const zero = pages.filter((p) => p.data === null).length;
    f.checkpoints++;
    f.pages += pages.length;
    f.zeroPages += zero;
    f.bytes += checkpointBytes(pages, outputs, json);
    f.lastPages = pages.length;
    f.lastPauseMs = performance.now() - t0;
    f.pauseMs += f.lastPauseMs;
    if (f.lastPauseMs > f.maxPauseMs) f.maxPauseMs = f.lastPauseMs;
    return { n, icount };
  }

  /**
   * Up to `max` frames of the checkpoint going out (sent between slices of
   * the guest, as Remus pipelines them), and, once its CHECKPOINT frame is
   * among them, the count and last output it covers.
   */
  frames(max: number): { frames: Frame[]; committed: { icount: bigint; outputSeq: number } | null } {
    const frames = this.queue.splice(0, max);
    if (this.queue.length > 0 || this.going === null) return { frames, committed: null };
    const committed = this.going;
    this.going = null;
    return { frames, committed };
  }

  /** Stops tracking (the machine goes on without a backup). */
  close(): void {
    this.user.unregister();
  }
}

/** A complete checkpoint as the backup holds it. */
interface Held {
  n: number;
  icount: bigint;
  outputSeq: number;
  /** The state without RAM; null for checkpoint 0 (the boot state, kept whole in `boot`). */
  state: Omit<MachineState, "ram"> | null;
  stateHash: Uint8Array | null;
}

/**
 * The backup's side: RAM and state of the last complete checkpoint, and the
 * next one staged as its frames arrive. Every refusal is a TransferError and
 * leaves the held checkpoint as it was.
 */
export class CheckpointReceiver {
  private readonly ram: Uint8Array;
  private readonly pageCount: number;
  private held: Held;
  private stage: { n: number; pages: { index: number; data: Uint8Array | null }[]; outputs: Output[] } | null = null;
  readonly figures = newFigures("applied");
  /** A standby's first checkpoint must be full and sets where its outputs start (see the constructor). */
  private joining: boolean;

  /**
   * `boot`: the machine's state as booted, checkpoint 0. Its RAM (a copy the
   * receiver now owns) becomes the checkpoints' RAM: checkpoint 0 is only
   * restored while no other has been applied to it. `standby`: a backup that
   * joins a running primary, whose boot state is not the primary's: its
   * first checkpoint must hold every page, and its outputs number on from
   * the ones that checkpoint names.
   */
  constructor(private readonly boot: MachineState, o: { standby?: boolean } = {}) {
    this.joining = o.standby ?? false;
    this.ram = boot.ram;
    this.pageCount = this.ram.length / PAGE_BYTES;
    this.held = { n: 0, icount: BigInt(boot.cpu.icount), outputSeq: 0, state: null, stateHash: null };
  }

  /** The last complete checkpoint: its number, count and last output. */
  get last(): { n: number; icount: bigint; outputSeq: number } {
    return { n: this.held.n, icount: this.held.icount, outputSeq: this.held.outputSeq };
  }

  /** Pages and outputs staged for a checkpoint whose CHECKPOINT frame has not come. */
  get staged(): { n: number; pages: number; outputs: number } | null {
    return this.stage && { n: this.stage.n, pages: this.stage.pages.length, outputs: this.stage.outputs.length };
  }

  private stageFor(n: number, what: string): NonNullable<CheckpointReceiver["stage"]> {
    if (n !== this.held.n + 1) throw new TransferError(`${what} for checkpoint ${n}: the next is ${this.held.n + 1}`);
    this.stage ??= { n, pages: [], outputs: [] };
    return this.stage;
  }

  pages(f: Extract<Frame, { type: "pages" }>): void {
    const s = this.stageFor(f.round, "PAGES");
    for (const p of f.pages) {
      if (p.index >= this.pageCount) throw new TransferError(`PAGES of checkpoint ${f.round}: page ${p.index} is outside a RAM of ${this.pageCount} pages`);
      s.pages.push(p);
    }
  }

  outputs(f: Extract<Frame, { type: "outputs" }>): void {
    this.stageFor(f.n, "OUTPUTS").outputs.push(...f.outputs);
  }

  /**
   * The CHECKPOINT frame: the staged checkpoint is checked whole and then
   * applied; returns the outputs it covers (made since the last one).
   */
  commit(f: Extract<Frame, { type: "checkpoint" }>): Output[] {
    const s = this.stageFor(f.n, "CHECKPOINT");
    const h = this.held;
    if (f.icount <= h.icount) throw new TransferError(`CHECKPOINT ${f.n} at instruction ${f.icount}, not past checkpoint ${h.n}'s ${h.icount}`);
    if (s.pages.length !== f.pages) throw new TransferError(`CHECKPOINT ${f.n} names ${f.pages} pages, ${s.pages.length} came`);
    let base = h.outputSeq;
    if (this.joining) {
      if (f.pages !== this.pageCount) throw new TransferError(`CHECKPOINT ${f.n}: a new backup's first checkpoint must hold all ${this.pageCount} pages, it holds ${f.pages}`);
      base = Math.max(0, f.outputSeq - s.outputs.length);
    }
    if (f.outputSeq - base !== s.outputs.length || s.outputs.some((o, i) => o.seq !== base + 1 + i)) {
      throw new TransferError(`CHECKPOINT ${f.n} covers outputs ${base + 1}..${f.outputSeq}, but ${s.outputs.length} came (${s.outputs.map((o) => o.seq).join(",")})`);
    }
    let state: unknown;
    try {
      state = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(f.json));
    } catch (e) {
      throw new TransferError(`CHECKPOINT ${f.n}: the state is not UTF-8 JSON (${(e as Error).message})`);
    }
    if (typeof state !== "object" || state === null || Array.isArray(state)) throw new TransferError(`CHECKPOINT ${f.n}: the state is not a JSON object`);
    for (const p of s.pages) {
      if (p.data === null) this.ram.fill(0, p.index * PAGE_BYTES, (p.index + 1) * PAGE_BYTES);
      else this.ram.set(p.data, p.index * PAGE_BYTES);
    }
    this.held = { n: f.n, icount: f.icount, outputSeq: f.outputSeq, state: state as Omit<MachineState, "ram">, stateHash: f.stateHash.some((x) => x !== 0) ? f.stateHash : null };
    this.stage = null;
    this.joining = false;
    const g = this.figures;
    g.checkpoints++;
    g.pages += s.pages.length;
    g.zeroPages += s.pages.filter((p) => p.data === null).length;
    g.lastPages = s.pages.length;
    g.bytes += checkpointBytes(s.pages, s.outputs, f.json);
    return s.outputs;
  }

  /**
   * Puts `m` (booted from the same image) in the last complete checkpoint
   * and, when the checkpoint carried its state hash, checks it: a machine
   * that is not in the acknowledged state must not go live.
   */
  restore(m: Machine): void {
    const h = this.held;
    const state = h.state === null ? { ...this.boot, ram: this.ram } : ({ ...h.state, ram: this.ram } as MachineState);
    try {
      m.loadState(state);
    } catch (e) {
      throw new TransferError(`checkpoint ${h.n}: the machine refused its state: ${(e as Error).message}`);
    }
    if (m.engine.icount !== h.icount) throw new TransferError(`checkpoint ${h.n}: the state is at instruction ${m.engine.icount}, the checkpoint says ${h.icount}`);
    if (h.stateHash) {
      const got = hashState(m.saveState({ ram: "view" }));
      if (got.some((x, i) => x !== h.stateHash![i])) throw new TransferError(`checkpoint ${h.n}: the state hash after loading differs from the primary's`);
    }
  }
}
