// A replica: a role (primary.ts, backup.ts) with its machine and its link to
// the peer, advanced one step at a time by a driver that owns time and
// waiting (host/ft/driver.ts). A step takes the frames that
// arrived, runs the guest as far as the role allows, sends what the role
// says, and tells the driver how long it may wait before the next step.
// Outputs that may reach the outside world go to `release`, numbered
// (output-gate.ts): the world drops a number it has seen.

import { sameBytes } from "../common/bytes.js";
import { toHex } from "../common/hash.js";
import type { Engine } from "../engine/engine.js";
import type { BlockStore } from "../devices/block-store.js";
import type { ClockMode } from "../machine/guest-time.js";
import { Machine, type RunOutcome } from "../machine/machine.js";
import { LiveGate, type World } from "../replay/live-gate.js";
import { EntryQueue, ReplayGate } from "../replay/replay-gate.js";
import type { LogEntry } from "../replay/log-format.js";
import { DivergenceError } from "../replay/divergence.js";
import type { Arbiter } from "./arbiter.js";
import { BackupRole } from "./backup.js";
import { compareDigests, describeDivergence, DivergenceCheck, RepairList, RepairRequest, type CheckFrame, type Divergence } from "./divergence.js";
import type { Timeouts } from "./failure-detector.js";
import type { PeerLink } from "./link.js";
import { HoldTimes, OutputCounter, type ChannelHoldFigures, type HoldFigures, type Output, type OutputChannel } from "./output-gate.js";
import { PrimaryRole } from "./primary.js";
import type { DiskEmit } from "./shared-disk.js";
import { CheckpointMaker, type CheckpointFigures } from "./checkpoint.js";
import { PreCopy, StateReceiver, TransferError, type TransferFigures } from "./state-transfer.js";
import { SwitchGate } from "./switch-gate.js";
import { ByeCode, WIRE_VERSION, type Frame } from "./wire.js";

export interface ReplicaOptions {
  image: Uint8Array;
  engine: Engine;
  clock: ClockMode;
  cmdline?: string;
  /** Attach the paravirtual NIC. */
  nic?: boolean;
  /** The shared disk (shared-disk.ts), made with the function that numbers its writes and flushes as outputs. */
  disk?: (emit: DiskEmit) => BlockStore;
  /** The VM configuration's hash: both sides must run the same VM (HELLO checks it). */
  configHash: Uint8Array;
  /** The VM's name on the arbiter (docs/arbiter.md). */
  vm: string;
  /** This replica's name, for the arbiter and status lines. */
  name: string;
  link: PeerLink;
  arbiter: Arbiter;
  timeouts: Timeouts;
  /** Instructions per slice (a progress record each). */
  slice: number;
  /** Instructions the primary may run past the backup's acknowledgement. */
  maxLag: bigint;
  /**
   * How far behind the primary the backup's guest may run, in ms of the
   * primary's running (default DEFAULT_LAG_TARGET_MS): turned into
   * instructions from the speed the primary measures, at least two slices.
   */
  lagTargetMs?: number;
  /** The guest runs no further than this instruction count (an injected fault stops it there). */
  limit?: bigint;
  world?: Partial<World>;
  /**
   * Outputs that may reach the outside world now, in order. A promise, if
   * returned, resolves once the world has them (a write completed): only
   * then is the backup told it may forget them.
   */
  release: (outputs: Output[]) => void | Promise<void>;
  /** A line for the operator (state changes, failures). */
  say: (line: string) => void;
  /**
   * A backup that joins a running primary: it boots nothing, but takes the
   * machine's state from the primary (PAGES, STATE: state-transfer.ts) and
   * follows from there.
   */
  standby?: boolean;
  /** Told when a state transfer to a new backup, or a repair, ended: its figures. */
  transferred?: (f: TransferFigures) => void;
  /**
   * Instructions between divergence checks (divergence.ts), on the primary:
   * it stops its guest at each multiple and sends its digest. 0 or absent:
   * no checks. A backup checks at whatever counts the CHECKs name.
   */
  checkEvery?: number;
  /** Pages each check also compares whether dirtied or not (the primary's; default DEFAULT_SCRUB_PAGES in divergence.ts). */
  scrubPages?: number;
  /** Told of each divergence this backup finds (it also says it in a line). */
  diverged?: (d: Divergence) => void;
  /**
   * Fault injection for tests: called on the backup at a check's count just
   * before it takes its digest (a register the guest would overwrite before
   * the next check can be corrupted there).
   */
  atCheck?: (m: Machine, icount: bigint) => void;
  /**
   * Checkpoint mode (docs/ft-checkpoint.md): the primary sends a checkpoint
   * every `epochMs` instead of a log, and the backup (CheckpointBackup,
   * checkpoint-replica.ts) runs no guest until it goes live. `hash`: each
   * checkpoint carries its state hash, checked on resuming from it.
   * `framesPerStep`: a checkpoint's frames sent per step (default 4), the
   * guest running between.
   */
  checkpoint?: { epochMs: number; hash?: boolean; framesPerStep?: number };
  /**
   * Slices bounded by instructions only, not by the host's clock (the
   * simulation, host/ft/sim.ts: its time is not the host's).
   */
  simulated?: boolean;
  /** The driver's monotonic clock, ms (default performance.now; the simulation's own time there). */
  now?: () => number;
}

/**
 * Longest a replica runs its guest without stepping back to the driver, ms:
 * frames are read, acknowledged and heartbeats sent between steps, so a
 * slice that polls a device by the host clock must not silence a replica
 * for anything near a failure timeout.
 */
export const STEP_MS = 10;
export const stepDeadline = () => {
  const end = performance.now() + STEP_MS;
  return () => performance.now() > end;
};

/** Now on the driver's clock (ReplicaOptions.now). */
export const driverNow = (o: Pick<ReplicaOptions, "now">): number => (o.now ? o.now() : performance.now());
/**
 * How long a new backup may take to send its HELLO (a worker thread or a
 * process starting up) before the primary gives the transfer up, ms.
 */
export const NEW_BACKUP_HELLO_MS = 10_000;

/** The backup's execution lag the primary allows by default (docs/ft.md, "Flow control"). */
export const DEFAULT_LAG_TARGET_MS = 5;

export interface StepResult {
  /** "run": step again soon; "wait": nothing to do for `waitMs`; "done": the replica has finished. */
  next: "run" | "wait" | "done";
  waitMs: number;
}

/** What a replica reports for a status line. */
export interface ReplicaStatus {
  role: "primary" | "backup";
  state: string;
  /** The guest's count; a checkpoint-mode backup's: the last complete checkpoint's. */
  icount: bigint;
  held: number;
  epoch: number;
  /** Checkpoint mode: checkpoints sent (primary) or applied (backup) and their cost. */
  checkpoints?: CheckpointFigures;
  /** A primary's outputs: how long the Output Rule held them (made to released, ms), all and by channel. */
  holdMs?: HoldFigures & { byChannel: Record<string, ChannelHoldFigures> };
}

/**
 * A replica as drivers see it (host/ft/driver.ts; host/node/ft-worker.ts, web/replica-worker.ts): the
 * replay-mode classes here and checkpoint mode's backup
 * (checkpoint-replica.ts) alike.
 */
export interface Replica {
  step(nowMs: number): Promise<StepResult>;
  status(): ReplicaStatus;
  /** Whether outside input may go to this replica's guest now. */
  readonly isLive: boolean;
  readonly finished: boolean;
  readonly epoch: number;
  readonly lostArbiter: boolean;
  /** The machine whose guest runs (null: none yet). */
  readonly machine: Machine | null;
  /** A new backup on `link`, for a replica live without one. */
  attachBackup(link: PeerLink, nowMs: number): void;
}

export const tap = (out: (c: OutputChannel, v: number | Uint8Array) => void) => ({
  onSerial: (v: number) => out("serial", v),
  onDebugcon: (v: number) => out("debugcon", v),
  onTransmit: (f: Uint8Array) => out("frame", f),
  onExit: (s: number) => out("exit", s),
});

/** Bytes for a say line: KiB below a MiB. */
const size = (n: number) => (n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);

/** Why a peer's HELLO is not from the replica this one needs (null: it is), in words for the operator. */
export function helloFault(f: Extract<Frame, { type: "hello" }>, want: "primary" | "backup", configHash: Uint8Array): string | null {
  if (f.role !== want) return `${f.replica} is a ${f.role}, not a ${want}`;
  if (!sameBytes(f.configHash, configHash)) {
    const short = (h: Uint8Array) => toHex(h).slice(0, 16);
    return `${f.replica} runs another VM (configuration ${short(f.configHash)}, this one's ${short(configHash)}: the guest, --mem, --clock, --cmdline or --nic differ)`;
  }
  return null;
}

/**
 * A backup's claim of the next epoch, its primary gone silent: the
 * arbiter's answer, said, and given to the role (which says whether to go
 * live). Both kinds of backup (this file's, checkpoint-replica.ts's) claim so.
 */
export async function claimNextEpoch(o: ReplicaOptions, role: BackupRole, epoch: number): Promise<{ want: number; won: boolean; res: ReturnType<BackupRole["claimed"]> }> {
  const want = epoch + 1;
  const r = await o.arbiter.claim({ vm: o.vm, epoch: want, replica: o.name, atMs: Date.now(), reason: "the primary went silent" });
  o.say(r.won ? `backup won epoch ${want}: going live` : `backup lost epoch ${want} to ${r.holder.replica}`);
  return { want, won: r.won, res: role.claimed(r.won, r.won ? "" : `${r.holder.replica} (epoch ${r.holder.epoch})`) };
}

/** Frames from the link, kept until the next step takes them. */
export function inbox(link: PeerLink): { take(): Frame[]; closedWith: () => string | null } {
  let frames: Frame[] = [];
  let closed: string | null = null;
  link.onFrame((f) => frames.push(f));
  link.onClose((r) => { closed = r; });
  return {
    take: () => { const f = frames; frames = []; return f; },
    closedWith: () => closed,
  };
}

export class PrimaryReplica implements Replica {
  readonly role: PrimaryRole;
  readonly machine: Machine;
  /** Instructions the next slice may run: the slice, less what the limit leaves. */
  private sliceLeft(): number {
    // The next check's count is a stop too: the digest is taken exactly there.
    const lims = [this.o.limit, this.check ? this.nextCheck : undefined].filter((x): x is bigint => x !== undefined);
    let left = BigInt(this.o.slice);
    for (const lim of lims) if (lim - this.machine.engine.icount < left) left = lim - this.machine.engine.icount;
    return left <= 0n ? 0 : Number(left);
  }
  ended: RunOutcome | null = null;
  finished = false;
  epoch = 1;
  /** Set when this replica asked the arbiter and lost: another replica is live. */
  lostArbiter = false;
  private out: Output[] = [];
  private readonly counter: OutputCounter;
  private link: PeerLink;
  private box: ReturnType<typeof inbox>;
  private helloSeen = false;
  private linkDown = false;
  /** The guest's speed while running, instructions per ms (a moving average), for the lag target. */
  private rate = 0;
  /** A state transfer to a new backup, or a repair of this one, under way. */
  private transfer: { pre: PreCopy; startMs: number; sentMs: number; repair: { icount: bigint; requestBytes: number } | null } | null = null;
  /** Divergence checks (checkEvery): the digest's source and the next count to take it at (always ahead of the guest). */
  private check: DivergenceCheck | null = null;
  private nextCheck = 0n;
  /** A diverged backup's page list as its REPAIR frames bring it. */
  private repairList: RepairList | null = null;
  /** Checkpoint mode, paired: the checkpoints of this machine, and when the last was taken. */
  private maker: CheckpointMaker | null = null;
  /** Checkpoint mode: a new backup's link is up and its HELLO awaited. */
  private joining = false;
  private lastCheckpointMs = 0;
  /** Checkpoint mode: what the checkpoints sent so far cost (kept after the backup is gone). */
  private figures: CheckpointFigures | null = null;
  /** How long the Output Rule held this primary's outputs. */
  private readonly holds = new HoldTimes();

  /**
   * A primary that boots the guest, or (`adopt`) one that goes on with a
   * machine that was a backup's until it went live: its outputs, numbering
   * and gate carry on, its gate switched to live with this role logging.
   */
  constructor(private readonly o: ReplicaOptions, nowMs: number, adopt?: { machine: Machine; out: Output[]; counter: OutputCounter; gate: SwitchGate; epoch: number }) {
    // Until the guest's speed is known, the backup may lag by a few slices.
    this.role = new PrimaryRole({ timeouts: o.timeouts, maxLag: o.maxLag, runAhead: BigInt(4 * o.slice), nowMs, mode: o.checkpoint ? "checkpoint" : "replay" });
    const record = (icount: bigint, kind: number, payload: Uint8Array) => this.role.logged({ icount, kind, payload });
    this.link = o.link;
    this.box = inbox(o.link);
    if (adopt) {
      this.machine = adopt.machine;
      this.out = adopt.out;
      this.counter = adopt.counter;
      this.epoch = adopt.epoch;
      this.helloSeen = true;
      this.linkDown = true;
      this.role.startAlone();
      adopt.gate.switchTo(new LiveGate({ clock: o.clock, world: o.world, startGuestNs: adopt.machine.nowNs(), record }));
      this.startChecks();
      return;
    }
    const gate = new LiveGate({ clock: o.clock, world: o.world, record });
    this.machine = Machine.create(o.image, {
      engine: o.engine, clock: o.clock, cmdline: o.cmdline, nic: o.nic, gate, ...tap((c, v) => this.out.push(this.counter.next(c, v))),
      disk: o.disk?.((c, v, lba) => this.out.push(this.counter.next(c, v, lba))),
    });
    this.counter = new OutputCounter(() => this.machine.engine.icount);
    this.startChecks();
    if (o.checkpoint) {
      this.maker = new CheckpointMaker(this.machine, { hash: o.checkpoint.hash });
      this.lastCheckpointMs = nowMs;
    }
    o.link.send({ type: "hello", role: "primary", version: WIRE_VERSION, configHash: o.configHash, epoch: this.epoch, startIcount: 0n, replica: o.name });
  }

  private startChecks(): void {
    const n = this.o.checkEvery ?? 0;
    if (n <= 0) return;
    this.check = new DivergenceCheck(this.machine, this.o.scrubPages);
    this.nextCheck = (this.machine.engine.icount / BigInt(n) + 1n) * BigInt(n);
  }

  /**
   * After a run: at a check's count, paired, the digest goes to the backup
   * (after the PROGRESS that covers the same log, and before any later
   * entry, so the backup compares at the same point of the stream).
   */
  private checkAfterRun(): void {
    if (!this.check) return;
    const icount = this.machine.engine.icount;
    if (icount < this.nextCheck) return;
    if (icount === this.nextCheck && this.role.state === "paired" && !this.transfer && this.helloSeen) this.link.send(this.check.digest());
    const n = BigInt(this.o.checkEvery!);
    this.nextCheck = (icount / n + 1n) * n;
  }

  /** A diverged backup's REPAIR frames: once its page list is whole, the repair transfer starts. */
  private repairAsked(f: Extract<Frame, { type: "repair" }>, nowMs: number): void {
    if (this.role.state !== "paired" || this.transfer) return;
    this.repairList ??= new RepairList();
    const list = this.repairList.add(f, this.machine.engine.ramSize / 4096);
    if (list === null) return;
    const requestBytes = this.repairList.bytes;
    this.repairList = null;
    const r = this.role.repairRequested();
    if (!r) return;
    this.apply(r);
    // The repair's first PAGES (empty) tells the backup that the log before it is void: the state will carry it.
    this.link.send({ type: "pages", round: 0, pages: [] });
    this.transfer = { pre: new PreCopy(this.machine, list === "full" ? {} : { base: list }), startMs: nowMs, sentMs: nowMs, repair: { icount: f.icount, requestBytes } };
    this.o.say(`primary: the backup diverged at instruction ${f.icount} and asks for repair (${list === "full" ? "a full transfer" : `its page hashes, ${size(requestBytes)}`}); going on alone until it is repaired`);
  }

  /**
   * A new backup on `link` (this primary goes on alone: its backup failed, or
   * it was a backup that went live): the machine's state goes to it while
   * the guest runs (state-transfer.ts), then the pair is in lockstep again.
   */
  attachBackup(link: PeerLink, nowMs: number): void {
    if (this.o.checkpoint) return this.attachCheckpointBackup(link);
    if (this.role.state !== "alone" || this.transfer) throw new Error(`primary: cannot take a new backup in state ${this.role.state}${this.transfer ? " (a transfer is under way)" : ""}`);
    this.link.close("replaced by a new backup's link");
    this.link = link;
    this.box = inbox(link);
    this.helloSeen = false;
    this.linkDown = false;
    this.repairList = null;
    link.send({ type: "hello", role: "primary", version: WIRE_VERSION, configHash: this.o.configHash, epoch: this.epoch, startIcount: this.machine.engine.icount, replica: this.o.name });
    this.transfer = { pre: new PreCopy(this.machine), startMs: nowMs, sentMs: nowMs, repair: null };
  }

  /**
   * Checkpoint mode: a new backup on `link`. Once its HELLO comes the pair
   * is paired again and the first checkpoint, taken at once, holds all of
   * RAM; until then this primary runs on alone.
   */
  private attachCheckpointBackup(link: PeerLink): void {
    if (this.role.state !== "alone" || this.joining) throw new Error(`primary: cannot take a new backup in state ${this.role.state}${this.joining ? " (one is joining)" : ""}`);
    this.link.close("replaced by a new backup's link");
    this.link = link;
    this.box = inbox(link);
    this.helloSeen = false;
    this.linkDown = false;
    this.joining = true;
    this.maker?.close();
    this.maker = null;
    link.send({ type: "hello", role: "primary", version: WIRE_VERSION, configHash: this.o.configHash, epoch: this.epoch, startIcount: this.machine.engine.icount, replica: this.o.name });
  }

  /** Checkpoint mode: the new backup's HELLO came: paired from here, a full checkpoint first. */
  private joined(nowMs: number): void {
    this.joining = false;
    this.role.pairWith(this.machine.engine.icount, nowMs);
    this.maker = new CheckpointMaker(this.machine, { hash: this.o.checkpoint!.hash, full: true });
    this.lastCheckpointMs = -Infinity;
    this.o.say(`primary: a new backup joined at instruction ${this.machine.engine.icount}: paired again, a checkpoint of all of RAM first`);
  }

  /**
   * One step of a transfer: a few frames of the round, and when a round is
   * out the next; when what is left is small, the pause: the last pages and
   * the state, at this instruction boundary, and the pair is paired again.
   */
  private transferStep(nowMs: number): void {
    const t = this.transfer!;
    if (!this.helloSeen) return;
    if (t.pre.hashing) {
      // Paired already; the state's hash is computed over the RAM copy a piece a step, then STATE goes.
      const f = t.pre.hashStep();
      if (!f) return;
      this.link.send(f);
      this.transfer = null;
      const fg = t.pre.figures;
      fg.requestBytes = t.repair?.requestBytes ?? 0;
      const at = f.type === "state" ? f.icount : "?";
      const how = `${fg.rounds} pre-copy round(s), ${fg.pages} pages (${fg.zeroPages} all zero), ${size(fg.bytes)}, pause ${fg.pauseMs.toFixed(1)} ms (${fg.finalPages} pages in it), ${Math.round(nowMs - t.startMs)} ms in all`;
      if (t.repair) this.o.say(`primary: the backup is repaired at instruction ${at} after ${how}; ${fg.unchangedPages} pages were already right; a full transfer's round 0 alone is ${size(fg.fullBytes)}: paired again`);
      else this.o.say(`primary: a new backup has the state at instruction ${at} after ${how}: paired again`);
      this.o.transferred?.(fg);
      return;
    }
    const frames = t.pre.frames(4);
    for (const f of frames) this.link.send(f);
    // The rounds of a repair may send nothing for a while (pages that match); the backup must not take that for silence.
    if (frames.length > 0) t.sentMs = nowMs;
    else if (nowMs - t.sentMs >= this.o.timeouts.intervalMs) {
      this.link.send({ type: "heartbeat", ms: Math.max(0, Math.floor(nowMs)) });
      t.sentMs = nowMs;
    }
    if (!t.pre.roundSent) return;
    if (!t.pre.nextRound()) return;
    const pauseStart = performance.now();
    for (const f of t.pre.finish(this.counter.seq)) this.link.send(f);
    this.role.pairWith(this.machine.engine.icount, nowMs);
    // Both replicas hold this state: the next check counts the pages dirtied from here.
    this.check?.reset();
    t.pre.figures.pauseMs = performance.now() - pauseStart;
  }

  /** Whether outside input may go to this replica's guest now (it is the live primary). */
  get isLive(): boolean {
    return !this.finished && (this.role.state === "paired" || this.role.state === "alone");
  }

  /** Whether this primary is live without a backup and not bringing one in: attachBackup would take one now. */
  get wantsBackup(): boolean {
    return !this.finished && !this.ended && this.role.state === "alone" && this.transfer === null;
  }

  /**
   * A transfer that cannot finish is given up: the primary goes on as it
   * was, alone (or, after the pause, paired with a backup that will never
   * speak: its failure detector claims the next epoch, and it is alone).
   */
  private abandonTransfer(why: string): void {
    this.transfer!.pre.abandon();
    this.transfer = null;
    this.link.close(why);
    this.o.say(`primary: no new backup: ${why}`);
  }

  status(): ReplicaStatus {
    const st: ReplicaStatus = { role: "primary", state: this.role.state, icount: this.machine.engine.icount, held: this.role.held, epoch: this.epoch };
    if (this.figures) st.checkpoints = { ...this.figures };
    if (this.holds.figures.outputs > 0) st.holdMs = { ...this.holds.figures, byChannel: this.holds.byChannel() };
    return st;
  }

  /**
   * Checkpoint mode, paired: the frames of the checkpoint going out, a few
   * a step; a new checkpoint when the epoch is over (or the guest ended with
   * outputs no checkpoint covers yet).
   */
  private checkpointStep(nowMs: number): void {
    const mk = this.maker;
    if (!mk || this.role.state !== "paired" || !this.helloSeen) return;
    const due = nowMs - this.lastCheckpointMs >= this.o.checkpoint!.epochMs || (this.ended !== null && mk.uncovered > 0);
    if (due && mk.ready && this.role.mayRun) {
      mk.take(this.counter.seq);
      this.lastCheckpointMs = nowMs;
      this.figures = mk.figures;
    }
    const { frames, committed } = mk.frames(this.o.checkpoint!.framesPerStep ?? 4);
    for (const f of frames) this.link.send(f);
    if (committed) this.role.checkpointSent(committed.icount, committed.outputSeq, nowMs);
  }

  /** Whether checkpoint frames wait to go out (the driver should step again soon). */
  private get checkpointSending(): boolean {
    return this.maker !== null && this.role.state === "paired" && this.maker.sending;
  }

  private apply(r: { send: Frame[]; release: Output[]; stop: string | null }): void {
    for (const f of r.send) this.link.send(f);
    if (r.release.length > 0) {
      const last = r.release[r.release.length - 1]!.seq;
      this.holds.releasedAt(last, driverNow(this.o));
      const tell = () => { for (const f of this.role.delivered(last, driverNow(this.o))) this.link.send(f); };
      // Only a promise means "wait for the write": a driver's release may
      // return anything else (a worker port's postMessage returns true).
      const done: unknown = this.o.release(r.release);
      if (done instanceof Promise) void done.then(tell);
      else tell();
    }
    if (r.stop) {
      this.o.say(`primary stops: ${r.stop}`);
      this.finished = true;
    }
  }

  /** The frames that arrived, to the role. */
  private takeFrames(nowMs: number): void {
    for (const f of this.box.take()) {
      if (f.type === "hello") {
        const fault = helloFault(f, "backup", this.o.configHash);
        if (fault) {
          this.link.send({ type: "bye", code: ByeCode.CONFIG_MISMATCH, reason: `not a backup of this VM: ${fault}` });
          if (this.transfer) this.abandonTransfer(`the peer is not a backup of this VM: ${fault}`);
          else this.link.close(`the peer is not a backup of this VM: ${fault}`);
          this.joining = false;
        }
        this.helloSeen = true;
        if (this.joining && !this.link.closed && this.role.state === "alone") this.joined(nowMs);
      }
      if (f.type === "repair") {
        try {
          this.repairAsked(f, nowMs);
        } catch (e) {
          this.repairList = null;
          this.link.send({ type: "bye", code: ByeCode.PROTOCOL_ERROR, reason: (e as Error).message });
          this.link.close((e as Error).message);
          this.o.say(`primary: a bad repair request (${(e as Error).message}): the link to the backup is closed`);
        }
      }
      if (f.type === "bye" && this.transfer) {
        this.abandonTransfer(`the new backup said goodbye: ${f.reason}`);
        continue;
      }
      this.apply(this.role.received(f, nowMs));
    }
  }

  async step(nowMs: number): Promise<StepResult> {
    if (this.finished) return { next: "done", waitMs: 0 };
    this.takeFrames(nowMs);
    if (this.transfer && !this.helloSeen && nowMs - this.transfer.startMs > NEW_BACKUP_HELLO_MS) {
      this.abandonTransfer(`the new backup sent no HELLO within ${NEW_BACKUP_HELLO_MS} ms`);
    }
    if (this.transfer && !this.finished) {
      try {
        this.transferStep(nowMs);
      } catch (e) {
        // A transfer that fails leaves this primary as it was: alone, and live.
        this.transfer = null;
        this.link.close(`state transfer failed: ${(e as Error).message}`);
        this.o.say(`primary: the state transfer to the new backup failed (${(e as Error).message}); going on alone`);
      }
    }
    // The guest starts once the backup is there (its HELLO came), so the pair
    // starts from one state; a backup that never comes is a failed backup.
    if (!this.helloSeen && this.role.state === "paired") {
      await this.claimIfAsked(this.role.tick(nowMs));
      if (this.role.state === "paired") return { next: "wait", waitMs: 5 };
    }
    const closed = this.box.closedWith();
    if (closed !== null && !this.linkDown) {
      this.linkDown = true;
      if (this.transfer) this.abandonTransfer(`its link closed during the transfer (${closed})`);
      else this.o.say(`primary: the link to the backup closed (${closed})`);
    }
    let ran = false;
    if (!this.ended && this.role.mayRun && this.role.state !== "stopped" && this.sliceLeft() > 0) {
      const t0 = performance.now();
      const r = this.machine.runSync(this.sliceLeft(), this.o.simulated ? undefined : stepDeadline());
      if (r.reason !== "limit" && r.reason !== "idle") this.ended = r;
      if (r.reason === "limit") this.learnRate(Number(r.instructions), performance.now() - t0);
      this.takeOutputs();
      this.apply(this.role.ranTo(this.machine.engine.icount, nowMs));
      // The log and progress go now: the backup's acknowledgement of them is what releases the outputs just made.
      this.link.flush?.();
      this.checkAfterRun();
      ran = r.reason === "limit";
      if (r.reason === "idle") {
        this.checkpointStep(nowMs);
        const t = this.role.tick(nowMs);
        await this.claimIfAsked(t);
        // A transfer or a checkpoint under way sends its next frames at once; otherwise sleep until the guest's next event.
        if (this.transfer || this.checkpointSending) return { next: "run", waitMs: 0 };
        return { next: "wait", waitMs: Math.min(this.machine.idleWaitMs(), this.o.timeouts.intervalMs) };
      }
    }
    this.checkpointStep(nowMs);
    if (this.ended && !this.finished && this.role.held === 0) {
      if (this.transfer) {
        this.link.send({ type: "bye", code: ByeCode.GUEST_EXITED, reason: `guest ${this.ended.reason} before the new backup had the state` });
        this.transfer = null;
      }
      this.apply(this.role.finish(`guest ${this.ended.reason}`));
      this.finished = true;
      return { next: "done", waitMs: 0 };
    }
    const t = this.role.tick(nowMs);
    await this.claimIfAsked(t);
    if (this.finished) return { next: "done", waitMs: 0 };
    return ran || this.transfer || this.checkpointSending ? { next: "run", waitMs: 0 } : { next: "wait", waitMs: 1 };
  }

  /** The guest's outputs so far to the role (held by the Output Rule), timed, and to the checkpoint being made. */
  private takeOutputs(): void {
    const collect = this.maker !== null && this.role.state === "paired";
    const madeMs = driverNow(this.o);
    for (const x of this.out.splice(0)) {
      this.holds.madeAt(x.seq, madeMs, x.channel);
      if (collect) this.maker!.output(x);
      this.apply(this.role.output(x));
    }
  }

  /** A slice of `n` instructions took `ms`: the lag target in instructions follows the guest's speed. */
  private learnRate(n: number, ms: number): void {
    if (ms <= 0 || n <= 0) return;
    const r = n / ms;
    this.rate = this.rate === 0 ? r : this.rate * 0.9 + r * 0.1;
    const target = this.o.lagTargetMs ?? DEFAULT_LAG_TARGET_MS;
    this.role.setRunAhead(BigInt(Math.max(2 * this.o.slice, Math.round(this.rate * target))));
  }

  private async claimIfAsked(t: ReturnType<PrimaryRole["tick"]>): Promise<void> {
    this.apply(t);
    if (!t.claim) return;
    const want = this.epoch + 1;
    const r = await this.o.arbiter.claim({ vm: this.o.vm, epoch: want, replica: this.o.name, atMs: Date.now(), reason: "the backup went silent" });
    if (r.won) this.epoch = want;
    else this.lostArbiter = true;
    this.o.say(r.won ? `primary won epoch ${want}: going on without a backup` : `primary lost epoch ${want} to ${r.holder.replica}`);
    this.apply(this.role.claimed(r.won, r.won ? "" : `${r.holder.replica} (epoch ${r.holder.epoch})`));
  }
}

export class BackupReplica implements Replica {
  readonly role: BackupRole;
  machine: Machine | null = null;
  ended: RunOutcome | null = null;
  finished = false;
  epoch = 1;
  live = false;
  /** Set when this replica asked the arbiter and lost: another replica is live. */
  lostArbiter = false;
  private out: Output[] = [];
  private counter: OutputCounter | null = null;
  private queue = new EntryQueue();
  private replayGate: ReplayGate | null = null;
  private gate: SwitchGate | null = null;
  private readonly box: ReturnType<typeof inbox>;
  /** A standby's RAM as the PAGES bring it, until STATE installs it. */
  private receiver: StateReceiver | null = null;
  /** The STATE whose check (a piece a step) is under way. */
  private stateFrame: Extract<Frame, { type: "state" }> | null = null;
  /** After go-live: the primary this replica now is (it can take a new backup). */
  private successor: PrimaryReplica | null = null;
  /** This machine's digests (divergence.ts), made with the machine. */
  private check: DivergenceCheck | null = null;
  /**
   * The primary's CHECKs not yet compared, each with the entries that came
   * after it: those reach the replay only once the digest at its count is
   * taken, so the backup's machine there has taken exactly the log the
   * primary's had (the primary may log more at the same count later).
   */
  private pendingChecks: { frame: CheckFrame; held: LogEntry[] }[] = [];
  /** Every divergence found (the last one makes this backup untrusted until repaired). */
  readonly divergences: Divergence[] = [];
  /** Digests compared with the primary's and found equal. */
  checksPassed = 0;
  /**
   * Set from a divergence until a repair's state is installed: "asked", the
   * REPAIR is sent and the stream before the repair's first PAGES is void;
   * "receiving", the repair's pages and the log after its pause arrive.
   */
  private repairing: "asked" | "receiving" | null = null;
  /** The REPAIR list still going out, a piece a step. */
  private repairOut: RepairRequest | null = null;
  /** Set when a standby turned its peer away (not the primary of this VM): it took nothing, and stopped. */
  refused: string | null = null;

  constructor(private readonly o: ReplicaOptions, nowMs: number) {
    this.role = new BackupRole({ timeouts: o.timeouts, nowMs, joined: !o.standby });
    this.box = inbox(o.link);
    if (o.standby) this.receiver = new StateReceiver(o.engine.ramSize);
    o.link.send({ type: "hello", role: "backup", version: WIRE_VERSION, configHash: o.configHash, epoch: this.epoch, startIcount: 0n, replica: o.name });
  }

  /** Whether outside input may go to this replica's guest now (it went live). */
  get isLive(): boolean {
    return this.live && !this.finished && (this.successor?.isLive ?? true);
  }

  status(): ReplicaStatus {
    if (this.successor) {
      const st = this.successor.status();
      return { ...st, role: "backup", state: st.state === "alone" ? "live" : st.state };
    }
    const state = this.repairing && this.role.state === "following" ? "untrusted" : this.role.state;
    return { role: "backup", state, icount: this.machine?.engine.icount ?? 0n, held: this.role.keptCount, epoch: this.epoch };
  }

  /** Whether this replica went live and is without a backup: attachBackup would take one now. */
  get wantsBackup(): boolean {
    return this.successor?.wantsBackup ?? false;
  }

  /** A new backup for this replica, live now (PrimaryReplica.attachBackup). */
  attachBackup(link: PeerLink, nowMs: number): void {
    if (!this.successor) throw new Error("backup: only a backup that went live can take a backup of its own");
    this.successor.attachBackup(link, nowMs);
  }

  /** A standby's STATE, checked: the machine is built in it, and the backup follows from its count. */
  private install(f: Extract<Frame, { type: "state" }>, nowMs: number): void {
    this.replayGate = new ReplayGate({ clock: this.o.clock, queue: this.queue, epochMs: 0 });
    this.gate = new SwitchGate(this.replayGate);
    const m = Machine.create(this.o.image, {
      engine: this.o.engine, clock: this.o.clock, cmdline: this.o.cmdline, nic: this.o.nic, gate: this.gate,
      ...tap((c, v) => this.out.push(this.counter!.next(c, v))),
      disk: this.o.disk?.((c, v, lba) => this.out.push(this.counter!.next(c, v, lba))),
    });
    this.receiver!.load(m);
    this.counter = new OutputCounter(() => m.engine.icount, f.outputSeq);
    this.machine = m;
    this.check = new DivergenceCheck(m);
    this.receiver = null;
    this.ended = null;
    const repaired = this.repairing !== null;
    this.repairing = null;
    this.apply(this.role.joinAt(f.icount, f.outputSeq, nowMs));
    this.o.say(repaired ? `backup: repaired: the primary's state installed at instruction ${f.icount}; trusted again` : `backup: joined the primary at instruction ${f.icount} (state transferred)`);
  }

  /**
   * Digests at the counts of the pending CHECKs this machine has reached,
   * compared with the primary's; the entries held behind each go to the
   * replay once it agrees. A disagreement makes this backup untrusted.
   */
  private settleChecks(): number {
    const m = this.machine;
    let settled = 0;
    const due = this.pendingChecks[0]?.frame.icount;
    if (m && this.ended && !this.repairing && due !== undefined && m.engine.icount < due) {
      // The guest stopped here while the primary's ran on to a check: not the same execution.
      this.diverge({ icount: m.engine.icount, first: { kind: "replay", message: `the guest stopped (${this.ended.reason}) at instruction ${m.engine.icount}, before the primary's check at ${due}` }, registers: 0, devices: [], pages: 0 });
      return 0;
    }
    while (m && this.check && !this.repairing && this.pendingChecks.length > 0 && m.engine.icount >= this.pendingChecks[0]!.frame.icount) {
      const { frame, held } = this.pendingChecks.shift()!;
      if (m.engine.icount > frame.icount) this.o.say(`backup: a check at instruction ${frame.icount} came after this replica passed it (at ${m.engine.icount}): not compared`);
      else {
        this.o.atCheck?.(m, frame.icount);
        const d = compareDigests(frame, this.check.digest({ first: frame.scrub.first, count: frame.scrub.hashes.length }));
        if (d) {
          this.diverge(d);
          return settled;
        }
        this.checksPassed++;
      }
      this.queue.push(held);
      settled++;
    }
    return settled;
  }

  /**
   * This backup's state is not the primary's: it says so, stops its guest,
   * will not go live, and asks the primary for repair with the hashes of
   * its pages (the primary sends the pages that differ: divergence.ts).
   */
  private diverge(d: Divergence): void {
    this.divergences.push(d);
    this.o.diverged?.(d);
    this.repairing = "asked";
    this.pendingChecks = [];
    this.role.untrust();
    const ram = this.machine!.engine.ram;
    // The machine runs no more: its RAM stays as the page list describes it.
    const req = new RepairRequest(d.icount, ram);
    this.repairOut = req;
    this.receiver = new StateReceiver(this.o.engine.ramSize, req.full ? undefined : ram);
    this.o.say(`backup: ${describeDivergence(d)}. This backup is untrusted (it will not go live) and asks the primary for repair: ${req.full ? "a full transfer" : `the hashes of its ${ram.length / 4096} pages`}`);
    this.sendRepair();
  }

  /** The next piece of the REPAIR list. */
  private sendRepair(): void {
    const f = this.repairOut?.frame();
    if (f) this.o.link.send(f);
    if (!f || this.repairOut!.done) this.repairOut = null;
  }

  /**
   * The machine is built when it can be: at once under the virtual clock, on
   * the first entry under the host clock (the calendar base, WALLCLOCK, comes
   * first and the machine needs it) — or fresh and live, if the primary died
   * before sending anything.
   */
  private ensureMachine(goingLive: boolean): Machine | null {
    if (this.machine) return this.machine;
    if (this.o.standby) return null; // it comes with the primary's STATE
    const fresh = this.o.clock === "host" && this.queue.length === 0;
    if (fresh && !goingLive) return null;
    this.replayGate = new ReplayGate({ clock: fresh ? "virtual" : this.o.clock, queue: this.queue });
    this.gate = new SwitchGate(fresh ? new LiveGate({ clock: this.o.clock, world: this.o.world }) : this.replayGate);
    const m = Machine.create(this.o.image, {
      engine: this.o.engine, clock: this.o.clock, cmdline: this.o.cmdline, nic: this.o.nic, gate: this.gate,
      ...tap((c, v) => this.out.push(this.counter!.next(c, v))),
      disk: this.o.disk?.((c, v, lba) => this.out.push(this.counter!.next(c, v, lba))),
    });
    this.counter = new OutputCounter(() => m.engine.icount);
    this.machine = m;
    this.check = new DivergenceCheck(m);
    return m;
  }

  private apply(r: { send: Frame[]; entries: { icount: bigint; kind: number; payload: Uint8Array }[]; stop: string | null }): void {
    for (const f of r.send) this.o.link.send(f);
    // Entries sent before a repair began are void (the repair's state covers them); after a pending check they wait for it.
    if (r.entries.length > 0 && this.repairing !== "asked") {
      const last = this.pendingChecks[this.pendingChecks.length - 1];
      if (last) last.held.push(...r.entries);
      else this.queue.push(r.entries);
    }
    if (r.stop) {
      const checks = this.checksPassed + this.divergences.length;
      this.o.say(`backup stops: ${r.stop}${checks > 0 ? `; ${this.checksPassed} of ${checks} divergence checks agreed` : ""}`);
      this.finished = true;
    }
  }

  /** The frames that arrived, to the role (and a standby's transfer); a refused transfer ends the step. */
  private takeFrames(nowMs: number): StepResult | null {
    for (const f of this.box.take()) {
      if (f.type === "hello") {
        const fault = helloFault(f, "primary", this.o.configHash);
        if (fault) {
          this.o.link.send({ type: "bye", code: ByeCode.CONFIG_MISMATCH, reason: `not the primary of this VM: ${fault}` });
          this.o.link.close(`the peer is not the primary of this VM: ${fault}`);
          if (this.o.standby && !this.machine) {
            // A standby has taken nothing yet: it refuses the peer and is as it was.
            this.refused = fault;
            this.o.say(`backup: refused the peer, not the primary of this VM: ${fault}`);
            this.finished = true;
            return { next: "done", waitMs: 0 };
          }
        } else if (f.epoch > this.epoch) {
          // A backup joining a primary that already went through failovers: its claims are for the epochs after.
          this.epoch = f.epoch;
        }
      }
      if (f.type === "check" && this.repairing !== "asked") this.pendingChecks.push({ frame: f, held: [] });
      if (f.type === "pages" && this.repairing === "asked") {
        // The repair begins: what came before is void, the log that follows is from its pause on.
        this.repairing = "receiving";
        this.queue = new EntryQueue();
        this.pendingChecks = [];
      }
      if ((f.type === "pages" || f.type === "state") && this.receiver && this.repairing !== "asked") {
        try {
          if (f.type === "pages") this.receiver.pages(f);
          else {
            this.receiver.check(f);
            this.stateFrame = f;
          }
        } catch (e) {
          return this.refuseTransfer(e);
        }
      }
      this.apply(this.role.onMessage(f, nowMs));
    }
    return null;
  }

  async step(nowMs: number): Promise<StepResult> {
    if (this.successor) {
      const r = await this.successor.step(nowMs);
      if (this.successor.finished) this.finished = true;
      return r;
    }
    if (this.finished) return { next: "done", waitMs: 0 };
    const refused = this.takeFrames(nowMs);
    if (refused) return refused;
    // The acknowledgements go now, not after the slice of replay below: the primary holds outputs until they come.
    this.o.link.flush?.();
    if (this.stateFrame && this.receiver) {
      // The state's check, a piece a step: heartbeats go out between pieces.
      try {
        if (this.receiver.checkStep()) {
          this.install(this.stateFrame, nowMs);
          this.stateFrame = null;
        }
      } catch (e) {
        return this.refuseTransfer(e);
      }
      if (this.stateFrame) {
        this.apply(this.role.tick(nowMs));
        return { next: "run", waitMs: 0 };
      }
    }
    let ran = false;
    if (this.repairOut) {
      this.sendRepair();
      ran = true;
    }
    const m = this.ensureMachine(false);
    this.settleChecks();
    let cap = this.o.limit !== undefined && this.o.limit < this.role.limit ? this.o.limit : this.role.limit;
    // A pending check's count is a stop: the digest is taken exactly there.
    const due = this.pendingChecks[0]?.frame.icount;
    if (due !== undefined && due < cap) cap = due;
    // One slice a step: between steps the driver reads the primary's frames
    // (their acknowledgements go out as they arrive) and heartbeats go out,
    // however far behind the backup is. An untrusted backup does not run.
    if (m && !this.ended && !this.repairing && m.engine.icount < cap) {
      let r: RunOutcome;
      try {
        r = m.runSync(Math.min(this.o.slice, Number(cap - m.engine.icount)), stepDeadline());
      } catch (e) {
        // The replay itself found the guest departing from the log: a divergence too, repaired the same way.
        if (!(e instanceof DivergenceError)) throw e;
        this.diverge({ icount: e.icount, first: { kind: "replay", message: e.detail }, registers: 0, devices: [], pages: 0 });
        return { next: "wait", waitMs: 1 };
      }
      if (r.reason !== "limit" && r.reason !== "idle") this.ended = r;
      ran = r.reason === "limit" && m.engine.icount < cap;
      for (const x of this.out.splice(0)) this.role.output(x);
      this.apply(this.role.ranTo(m.engine.icount, nowMs));
      // A check settled at the cap lets the guest run on at once.
      if (this.settleChecks() > 0) ran = true;
    }
    const t = this.role.tick(nowMs);
    this.apply(t);
    if (t.claim && this.o.standby && !this.machine) {
      // A standby without the state cannot go live: claiming would only take an epoch from a live primary.
      this.o.say("backup stops: the primary went silent before this backup had its state (it cannot go live)");
      this.finished = true;
      return { next: "done", waitMs: 0 };
    }
    if (t.claim && this.repairing) {
      // Its state is not the primary's: going live would show the world another history.
      const d = this.divergences[this.divergences.length - 1]!;
      this.o.say(`backup stops: the primary went silent while this backup was untrusted (diverged at instruction ${d.icount}, not yet repaired): it cannot go live`);
      this.finished = true;
      return { next: "done", waitMs: 0 };
    }
    if (t.claim) await this.claim();
    if (this.finished) return { next: "done", waitMs: 0 };
    return ran ? { next: "run", waitMs: 0 } : { next: "wait", waitMs: 1 };
  }

  /** A transfer that cannot be taken: the primary is told why, and this standby stops. */
  private refuseTransfer(e: unknown): StepResult {
    if (!(e instanceof TransferError)) throw e;
    this.o.link.send({ type: "bye", code: ByeCode.PROTOCOL_ERROR, reason: e.message });
    this.o.link.close(e.message);
    this.o.say(`backup stops: ${e.message}`);
    this.finished = true;
    return { next: "done", waitMs: 0 };
  }

  private async claim(): Promise<void> {
    const { want, won, res } = await claimNextEpoch(this.o, this.role, this.epoch);
    if (!won) this.lostArbiter = true;
    this.apply(res);
    if (!res.goLive) return;
    this.epoch = want;
    // Replay everything that arrived, send again what was kept, then go live where the log ends.
    this.o.release(res.goLive);
    const m = this.ensureMachine(true)!;
    for (;;) {
      const before = [m.engine.icount, this.replayGate!.remaining] as const;
      if (this.ended || (this.replayGate!.remaining === 0 && m.engine.icount >= this.role.limit)) break;
      const left = this.role.limit > m.engine.icount ? Number(this.role.limit - m.engine.icount) : this.o.slice;
      const rr = m.runSync(Math.min(left, this.o.slice));
      if (rr.reason !== "limit" && rr.reason !== "idle") this.ended = rr;
      // Idle with entries left that it cannot reach: they are for a count it will not get to.
      if (rr.reason === "idle" && m.engine.icount === before[0] && this.replayGate!.remaining === before[1]) break;
    }
    if (this.out.length > 0) this.o.release(this.out.splice(0));
    // From here this replica is a primary without a backup (it may take one: attachBackup).
    this.check?.unregister();
    this.check = null;
    this.successor = new PrimaryReplica({ ...this.o, link: this.o.link }, driverNow(this.o), { machine: m, out: this.out, counter: this.counter!, gate: this.gate!, epoch: want });
    if (this.ended) this.successor.ended = this.ended;
    this.live = true;
    this.o.say(`backup is live at instruction ${m.engine.icount} (epoch ${want}); ${res.goLive.length} kept outputs sent again; no backup now`);
  }

}
