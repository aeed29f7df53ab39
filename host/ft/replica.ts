// A replica: a role (primary.ts, backup.ts) with its machine and its link to
// the peer, advanced one step at a time by a driver that owns time and
// waiting (host/node/ft-driver.ts in Node). A step takes the frames that
// arrived, runs the guest as far as the role allows, sends what the role
// says, and tells the driver how long it may wait before the next step.
// Outputs that may reach the outside world go to `release`, numbered
// (output-gate.ts): the world drops a number it has seen.

import { toHex } from "../common/hash.js";
import type { Engine } from "../engine/engine.js";
import type { BlockStore } from "../devices/block-store.js";
import type { ClockMode } from "../machine/guest-time.js";
import { Machine, type RunOutcome } from "../machine/machine.js";
import { LiveGate, type World } from "../replay/live-gate.js";
import { EntryQueue, ReplayGate } from "../replay/replay-gate.js";
import type { Arbiter } from "./arbiter.js";
import { BackupRole } from "./backup.js";
import type { Timeouts } from "./failure-detector.js";
import type { PeerLink } from "./link.js";
import { OutputCounter, type Output, type OutputChannel } from "./output-gate.js";
import { PrimaryRole } from "./primary.js";
import type { DiskEmit } from "./shared-disk.js";
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
  /** Told when a state transfer to a new backup ended: its figures. */
  transferred?: (f: TransferFigures) => void;
}

/**
 * Longest a replica runs its guest without stepping back to the driver, ms:
 * frames are read, acknowledged and heartbeats sent between steps, so a
 * slice that polls a device by the host clock must not silence a replica
 * for anything near a failure timeout.
 */
export const STEP_MS = 10;
const stepDeadline = () => {
  const end = performance.now() + STEP_MS;
  return () => performance.now() > end;
};

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
  icount: bigint;
  held: number;
  epoch: number;
}

const tap = (out: (c: OutputChannel, v: number | Uint8Array) => void) => ({
  onSerial: (v: number) => out("serial", v),
  onDebugcon: (v: number) => out("debugcon", v),
  onTransmit: (f: Uint8Array) => out("frame", f),
  onExit: (s: number) => out("exit", s),
});

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Why a peer's HELLO is not from the replica this one needs (null: it is), in words for the operator. */
export function helloFault(f: Extract<Frame, { type: "hello" }>, want: "primary" | "backup", configHash: Uint8Array): string | null {
  if (f.role !== want) return `${f.replica} is a ${f.role}, not a ${want}`;
  if (!sameBytes(f.configHash, configHash)) {
    const short = (h: Uint8Array) => toHex(h).slice(0, 16);
    return `${f.replica} runs another VM (configuration ${short(f.configHash)}, this one's ${short(configHash)}: the guest, --mem, --clock, --cmdline or --nic differ)`;
  }
  return null;
}

/** Frames from the link, kept until the next step takes them. */
function inbox(link: PeerLink): { take(): Frame[]; closedWith: () => string | null } {
  let frames: Frame[] = [];
  let closed: string | null = null;
  link.onFrame((f) => frames.push(f));
  link.onClose((r) => { closed = r; });
  return {
    take: () => { const f = frames; frames = []; return f; },
    closedWith: () => closed,
  };
}

export class PrimaryReplica {
  readonly role: PrimaryRole;
  readonly machine: Machine;
  /** Instructions the next slice may run: the slice, less what the limit leaves. */
  private sliceLeft(): number {
    const lim = this.o.limit;
    if (lim === undefined) return this.o.slice;
    const left = lim - this.machine.engine.icount;
    return left <= 0n ? 0 : Number(left < BigInt(this.o.slice) ? left : BigInt(this.o.slice));
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
  /** A state transfer to a new backup under way. */
  private transfer: { pre: PreCopy; startMs: number } | null = null;

  /**
   * A primary that boots the guest, or (`adopt`) one that goes on with a
   * machine that was a backup's until it went live: its outputs, numbering
   * and gate carry on, its gate switched to live with this role logging.
   */
  constructor(private readonly o: ReplicaOptions, nowMs: number, adopt?: { machine: Machine; out: Output[]; counter: OutputCounter; gate: SwitchGate; epoch: number }) {
    // Until the guest's speed is known, the backup may lag by a few slices.
    this.role = new PrimaryRole({ timeouts: o.timeouts, maxLag: o.maxLag, runAhead: BigInt(4 * o.slice), nowMs });
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
      return;
    }
    const gate = new LiveGate({ clock: o.clock, world: o.world, record });
    this.machine = Machine.create(o.image, {
      engine: o.engine, clock: o.clock, cmdline: o.cmdline, nic: o.nic, gate, ...tap((c, v) => this.out.push(this.counter.next(c, v))),
      disk: o.disk?.((c, v, lba) => this.out.push(this.counter.next(c, v, lba))),
    });
    this.counter = new OutputCounter(() => this.machine.engine.icount);
    o.link.send({ type: "hello", role: "primary", version: WIRE_VERSION, configHash: o.configHash, epoch: this.epoch, startIcount: 0n, replica: o.name });
  }

  /**
   * A new backup on `link` (this primary goes on alone: its backup failed, or
   * it was a backup that went live): the machine's state goes to it while
   * the guest runs (state-transfer.ts), then the pair is in lockstep again.
   */
  attachBackup(link: PeerLink, nowMs: number): void {
    if (this.role.state !== "alone" || this.transfer) throw new Error(`primary: cannot take a new backup in state ${this.role.state}${this.transfer ? " (a transfer is under way)" : ""}`);
    this.link.close("replaced by a new backup's link");
    this.link = link;
    this.box = inbox(link);
    this.helloSeen = false;
    this.linkDown = false;
    link.send({ type: "hello", role: "primary", version: WIRE_VERSION, configHash: this.o.configHash, epoch: this.epoch, startIcount: this.machine.engine.icount, replica: this.o.name });
    this.transfer = { pre: new PreCopy(this.machine), startMs: nowMs };
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
      this.o.say(`primary: a new backup has the state at instruction ${f.type === "state" ? f.icount : "?"} after ${fg.rounds} pre-copy round(s), ${fg.pages} pages (${fg.zeroPages} all zero), ${(fg.bytes / 1048576).toFixed(1)} MiB, pause ${fg.pauseMs.toFixed(1)} ms (${fg.finalPages} pages in it), ${Math.round(nowMs - t.startMs)} ms in all: paired again`);
      this.o.transferred?.(fg);
      return;
    }
    for (const f of t.pre.frames(4)) this.link.send(f);
    if (!t.pre.roundSent) return;
    if (!t.pre.nextRound()) return;
    const pauseStart = performance.now();
    for (const f of t.pre.finish(this.counter.seq)) this.link.send(f);
    this.role.pairWith(this.machine.engine.icount, nowMs);
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
    return { role: "primary", state: this.role.state, icount: this.machine.engine.icount, held: this.role.held, epoch: this.epoch };
  }

  private apply(r: { send: Frame[]; release: Output[]; stop: string | null }): void {
    for (const f of r.send) this.link.send(f);
    if (r.release.length > 0) {
      const last = r.release[r.release.length - 1]!.seq;
      const tell = () => { for (const f of this.role.delivered(last, performance.now())) this.link.send(f); };
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

  async step(nowMs: number): Promise<StepResult> {
    if (this.finished) return { next: "done", waitMs: 0 };
    for (const f of this.box.take()) {
      if (f.type === "hello") {
        const fault = helloFault(f, "backup", this.o.configHash);
        if (fault) {
          this.link.send({ type: "bye", code: ByeCode.CONFIG_MISMATCH, reason: `not a backup of this VM: ${fault}` });
          if (this.transfer) this.abandonTransfer(`the peer is not a backup of this VM: ${fault}`);
          else this.link.close(`the peer is not a backup of this VM: ${fault}`);
        }
        this.helloSeen = true;
      }
      if (f.type === "bye" && this.transfer) {
        this.abandonTransfer(`the new backup said goodbye: ${f.reason}`);
        continue;
      }
      this.apply(this.role.received(f, nowMs));
    }
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
      const r = this.machine.runSync(this.sliceLeft(), stepDeadline());
      if (r.reason !== "limit" && r.reason !== "idle") this.ended = r;
      if (r.reason === "limit") this.learnRate(Number(r.instructions), performance.now() - t0);
      for (const x of this.out.splice(0)) this.apply(this.role.output(x));
      this.apply(this.role.ranTo(this.machine.engine.icount, nowMs));
      ran = r.reason === "limit";
      if (r.reason === "idle") {
        const t = this.role.tick(nowMs);
        await this.claimIfAsked(t);
        // A transfer under way sends its next frames at once; otherwise sleep until the guest's next event.
        if (this.transfer) return { next: "run", waitMs: 0 };
        return { next: "wait", waitMs: Math.min(this.machine.idleWaitMs(), this.o.timeouts.intervalMs) };
      }
    }
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
    return ran || this.transfer ? { next: "run", waitMs: 0 } : { next: "wait", waitMs: 1 };
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

export class BackupReplica {
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
  private readonly queue = new EntryQueue();
  private replayGate: ReplayGate | null = null;
  private gate: SwitchGate | null = null;
  private readonly box: ReturnType<typeof inbox>;
  /** A standby's RAM as the PAGES bring it, until STATE installs it. */
  private receiver: StateReceiver | null = null;
  /** After go-live: the primary this replica now is (it can take a new backup). */
  private successor: PrimaryReplica | null = null;
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
    return { role: "backup", state: this.role.state, icount: this.machine?.engine.icount ?? 0n, held: this.role.keptCount, epoch: this.epoch };
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

  /** A standby's STATE: the machine is built in it, and the backup follows from its count. */
  private install(f: Extract<Frame, { type: "state" }>, nowMs: number): void {
    this.replayGate = new ReplayGate({ clock: this.o.clock, queue: this.queue, epochMs: 0 });
    this.gate = new SwitchGate(this.replayGate);
    const m = Machine.create(this.o.image, {
      engine: this.o.engine, clock: this.o.clock, cmdline: this.o.cmdline, nic: this.o.nic, gate: this.gate,
      ...tap((c, v) => this.out.push(this.counter!.next(c, v))),
      disk: this.o.disk?.((c, v, lba) => this.out.push(this.counter!.next(c, v, lba))),
    });
    this.receiver!.install(m, f);
    this.counter = new OutputCounter(() => m.engine.icount, f.outputSeq);
    this.machine = m;
    this.receiver = null;
    this.apply(this.role.joinAt(f.icount, f.outputSeq, nowMs));
    this.o.say(`backup: joined the primary at instruction ${f.icount} (state transferred)`);
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
    return m;
  }

  private apply(r: { send: Frame[]; entries: { icount: bigint; kind: number; payload: Uint8Array }[]; stop: string | null }): void {
    for (const f of r.send) this.o.link.send(f);
    if (r.entries.length > 0) this.queue.push(r.entries);
    if (r.stop) {
      this.o.say(`backup stops: ${r.stop}`);
      this.finished = true;
    }
  }

  async step(nowMs: number): Promise<StepResult> {
    if (this.successor) {
      const r = await this.successor.step(nowMs);
      if (this.successor.finished) this.finished = true;
      return r;
    }
    if (this.finished) return { next: "done", waitMs: 0 };
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
      if ((f.type === "pages" || f.type === "state") && this.receiver) {
        try {
          if (f.type === "pages") this.receiver.pages(f);
          else this.install(f, nowMs);
        } catch (e) {
          if (!(e instanceof TransferError)) throw e;
          this.o.link.send({ type: "bye", code: ByeCode.PROTOCOL_ERROR, reason: e.message });
          this.o.link.close(e.message);
          this.o.say(`backup stops: ${e.message}`);
          this.finished = true;
          return { next: "done", waitMs: 0 };
        }
      }
      this.apply(this.role.onMessage(f, nowMs));
    }
    let ran = false;
    const m = this.ensureMachine(false);
    const cap = this.o.limit !== undefined && this.o.limit < this.role.limit ? this.o.limit : this.role.limit;
    // One slice a step: between steps the driver reads the primary's frames
    // (their acknowledgements go out as they arrive) and heartbeats go out,
    // however far behind the backup is.
    if (m && !this.ended && m.engine.icount < cap) {
      const r = m.runSync(Math.min(this.o.slice, Number(cap - m.engine.icount)), stepDeadline());
      if (r.reason !== "limit" && r.reason !== "idle") this.ended = r;
      ran = r.reason === "limit" && m.engine.icount < cap;
      for (const x of this.out.splice(0)) this.role.output(x);
      this.apply(this.role.ranTo(m.engine.icount, nowMs));
    }
    const t = this.role.tick(nowMs);
    this.apply(t);
    if (t.claim && this.o.standby && !this.machine) {
      // A standby without the state cannot go live: claiming would only take an epoch from a live primary.
      this.o.say("backup stops: the primary went silent before this backup had its state (it cannot go live)");
      this.finished = true;
      return { next: "done", waitMs: 0 };
    }
    if (t.claim) await this.claim();
    if (this.finished) return { next: "done", waitMs: 0 };
    return ran ? { next: "run", waitMs: 0 } : { next: "wait", waitMs: 1 };
  }

  private async claim(): Promise<void> {
    const want = this.epoch + 1;
    const r = await this.o.arbiter.claim({ vm: this.o.vm, epoch: want, replica: this.o.name, atMs: Date.now(), reason: "the primary went silent" });
    if (!r.won) this.lostArbiter = true;
    this.o.say(r.won ? `backup won epoch ${want}: going live` : `backup lost epoch ${want} to ${r.holder.replica}`);
    const res = this.role.claimed(r.won, r.won ? "" : `${r.holder.replica} (epoch ${r.holder.epoch})`);
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
    this.successor = new PrimaryReplica({ ...this.o, link: this.o.link }, performance.now(), { machine: m, out: this.out, counter: this.counter!, gate: this.gate!, epoch: want });
    if (this.ended) this.successor.ended = this.ended;
    this.live = true;
    this.o.say(`backup is live at instruction ${m.engine.icount} (epoch ${want}); ${res.goLive.length} kept outputs sent again; no backup now`);
  }

}
