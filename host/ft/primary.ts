// The primary's role, as a pure state machine (etcd-io/raft's RawNode is the
// model): the driver hands it what happened — the gate logged an entry, the
// guest made an output, a slice of the guest ran, a message came from the
// backup, time passed, the arbiter answered — and it answers with what to do:
// messages to send, outputs to release, whether the guest may run on,
// whether to ask the arbiter, whether to stop. It holds no socket, timer or
// machine.
//
// The primary streams its log entries as the gate makes them and a progress
// record after every slice, so the backup may run up to the primary's count
// even when no entry arrives. Outputs wait in the Output Rule's gate
// (output-gate.ts) until the backup acknowledges the count that made them.
// Flow control: the primary stops running when it is more than `maxLag`
// instructions past the backup's last acknowledgement (the buffer between
// them is bounded), or more than `runAhead` past where the backup's guest
// has run (the backup's lag is bounded: VMware FT slows the primary's CPU
// for the same reason, so a go-live never has a long log to replay).

import type { LogEntry } from "../replay/log-format.js";
import { FailureDetector, watchPeer, type Timeouts } from "./failure-detector.js";
import { ByeCode, type Frame } from "./wire.js";
import { OutputGate, type Output } from "./output-gate.js";

export interface PrimaryOptions {
  timeouts: Timeouts;
  /** Instructions the primary may run past the backup's acknowledgement before it waits. */
  maxLag: bigint;
  /**
   * Instructions the primary may run past the count the backup's guest has
   * run to (its RAN reports) before it waits: the backup's execution lag,
   * which is how long a go-live takes to replay what was received. The
   * driver may change it (setRunAhead) as it learns the guest's speed.
   */
  runAhead?: bigint;
  nowMs: number;
  /**
   * "checkpoint": the backup holds epoch checkpoints, not a log
   * (docs/ft-checkpoint.md): no LOG or PROGRESS is sent; an acknowledgement
   * names a checkpoint's count and releases the outputs it covers; the guest
   * runs while at most `maxInFlight` checkpoints wait for one. Default "replay".
   */
  mode?: "replay" | "checkpoint";
  maxInFlight?: number;
}

export type PrimaryState =
  | "paired"   // a backup follows
  | "claiming" // the backup went silent: asking the arbiter whether to go on alone
  | "alone"    // the arbiter said go on without a backup: outputs are released at once
  | "stopped"; // lost the arbiter, or stopped

/** What the driver must do now. */
export interface PrimaryReady {
  send: Frame[];
  /** Outputs that may reach the outside world now, in order. */
  release: Output[];
  /** Ask the arbiter for the next epoch (the backup is taken to have failed). */
  claim: boolean;
  /** Set once: the primary stops, and why. */
  stop: string | null;
}

export class PrimaryRole {
  state: PrimaryState = "paired";
  private gate = new OutputGate();
  private fd: FailureDetector;
  private pending: LogEntry[] = [];
  /** The count the next LOG frame's first delta is relative to: the last entry sent. */
  private base = 0n;
  private sentProgress = 0n;
  private acked = 0n;
  private backupRan = 0n;
  private runAhead: bigint;
  private lastReleaseSent = 0;
  private stopReason: string | null = null;
  /** Checkpoint mode: checkpoints sent and not yet acknowledged, oldest first. */
  private inFlight: { icount: bigint; outputSeq: number }[] = [];
  private readonly checkpointMode: boolean;

  constructor(private readonly o: PrimaryOptions) {
    this.fd = new FailureDetector(o.timeouts, o.nowMs);
    this.runAhead = o.runAhead ?? o.maxLag;
    this.checkpointMode = o.mode === "checkpoint";
  }

  /** A new execution-lag bound, in instructions (see PrimaryOptions.runAhead). */
  setRunAhead(n: bigint): void {
    this.runAhead = n;
  }

  /** The gate logged an entry (it goes out with the next progress record). */
  logged(e: LogEntry): void {
    if (!this.checkpointMode) this.pending.push(e);
  }

  /** The guest made an output. */
  output(o: Output): PrimaryReady {
    if (this.state === "alone") return this.ready([], [o]);
    return this.ready([], this.gate.hold(o));
  }

  /** A slice ran: the guest has retired `icount` instructions. */
  ranTo(icount: bigint, nowMs: number): PrimaryReady {
    const send: Frame[] = [];
    if (this.state === "paired" && !this.checkpointMode) {
      if (this.pending.length > 0) {
        send.push({ type: "log", base: this.base, entries: this.pending });
        this.base = this.pending[this.pending.length - 1]!.icount;
      }
      if (icount > this.sentProgress || this.pending.length > 0) send.push({ type: "progress", icount });
      this.sentProgress = icount;
      this.fd.sent(nowMs);
    }
    this.pending = [];
    return this.ready(send, []);
  }

  /**
   * Checkpoint mode: checkpoint at `icount`, covering the outputs up to
   * number `outputSeq`, has gone to the backup (its frames are the caller's,
   * checkpoint.ts). Its outputs leave when the backup acknowledges it.
   */
  checkpointSent(icount: bigint, outputSeq: number, nowMs: number): void {
    if (this.state !== "paired") return;
    this.inFlight.push({ icount, outputSeq });
    this.sentProgress = icount;
    this.fd.sent(nowMs);
  }

  /**
   * The outside world has taken every output up to `seq` (the driver's write
   * completed): the backup may forget its copies. Not before — outputs the
   * world never got must stay with the backup, to be sent again on go-live.
   */
  delivered(seq: number, nowMs: number): Frame[] {
    if (this.state !== "paired" || seq <= this.lastReleaseSent) return [];
    this.lastReleaseSent = seq;
    this.fd.sent(nowMs);
    return [{ type: "release", seq }];
  }

  /** A message from the backup. */
  received(m: Frame, nowMs: number): PrimaryReady {
    if (this.state === "stopped") return this.ready([], []);
    this.fd.heard(nowMs);
    if (m.type === "ack" && this.state === "paired" && this.checkpointMode) {
      // The backup holds the checkpoint at this count, and with it every earlier one.
      let seq = 0;
      while (this.inFlight.length > 0 && this.inFlight[0]!.icount <= m.icount) seq = this.inFlight.shift()!.outputSeq;
      if (m.icount > this.acked) this.acked = m.icount;
      return this.ready([], seq > 0 ? this.gate.ackSeq(seq) : []);
    }
    if (m.type === "ack" && this.state === "paired") {
      if (m.icount > this.acked) this.acked = m.icount;
      return this.ready([], this.gate.ack(m.icount));
    }
    if (m.type === "ran") {
      if (m.icount > this.backupRan) this.backupRan = m.icount;
      return this.ready([], []);
    }
    // Alone, a goodbye can only come from a new backup that did not join (state-transfer.ts): not this primary's concern.
    if (m.type === "bye") return this.state === "alone" ? this.ready([], []) : this.stopWith(`the backup said goodbye: ${m.reason}`);
    return this.ready([], []);
  }

  /** Time passed: heartbeats, and the backup's silence. */
  tick(nowMs: number): PrimaryReady {
    if (this.state !== "paired") return this.ready([], []);
    const w = watchPeer(this.fd, nowMs);
    if (w !== "claim") return this.ready(w, []);
    this.state = "claiming";
    return { ...this.ready([], []), claim: true };
  }

  /** The arbiter's answer to a claim made after the backup went silent. */
  claimed(won: boolean, detail: string): PrimaryReady {
    if (this.state !== "claiming") throw new Error(`primary: an arbiter answer in state ${this.state}`);
    if (!won) return this.stopWith(`lost the arbiter to ${detail}: another replica is live`);
    this.state = "alone";
    return this.ready([], this.gate.releaseAll());
  }

  /**
   * A new backup holds the machine's state at `icount` (state transfer,
   * state-transfer.ts): from here on the primary streams its log to it and
   * holds its outputs again. Only a primary going on alone may take one.
   */
  pairWith(icount: bigint, nowMs: number): void {
    if (this.state !== "alone") throw new Error(`primary: a new backup in state ${this.state}`);
    this.state = "paired";
    this.pending = [];
    this.base = icount;
    this.sentProgress = icount;
    this.acked = icount;
    this.backupRan = icount;
    this.gate = new OutputGate();
    this.gate.ack(icount);
    this.lastReleaseSent = 0;
    this.inFlight = [];
    this.fd = new FailureDetector(this.o.timeouts, nowMs);
  }

  /**
   * The backup found a divergence and asks for repair: until the repair's
   * pause pairs them again (pairWith) it holds no state it could go live
   * from, and it says it will not try, so the primary goes on alone — its
   * held outputs released, as no replica can contradict them — without
   * asking the arbiter. Null when not paired (nothing to repair).
   */
  repairRequested(): PrimaryReady | null {
    if (this.state !== "paired") return null;
    this.state = "alone";
    this.pending = [];
    return this.ready([], this.gate.releaseAll());
  }

  /** Going on without a backup from the start (a backup that went live: it has none until it starts one). */
  startAlone(): void {
    this.state = "alone";
  }

  /** The guest ended (or the driver stops): everything acknowledged is out; tell the backup. */
  finish(reason: string): PrimaryReady {
    const send: Frame[] = this.state === "paired" ? [{ type: "bye", code: ByeCode.GUEST_EXITED, reason }] : [];
    this.state = "stopped";
    return this.ready(send, []);
  }

  /** Whether the guest may run another slice (flow control; a claiming primary waits for the arbiter). */
  get mayRun(): boolean {
    if (this.state === "alone") return true;
    if (this.state !== "paired") return false;
    if (this.checkpointMode) return this.inFlight.length < (this.o.maxInFlight ?? 4);
    return this.sentProgress - this.acked <= this.o.maxLag && this.sentProgress - this.backupRan <= this.runAhead;
  }

  /** Outputs held for an acknowledgement. */
  get held(): number {
    return this.gate.waiting;
  }

  get ackedIcount(): bigint {
    return this.acked;
  }

  /** How far the backup's guest has run, by its last RAN. */
  get backupRanIcount(): bigint {
    return this.backupRan;
  }

  private stopWith(reason: string): PrimaryReady {
    this.state = "stopped";
    this.stopReason = reason;
    return this.ready([], []);
  }

  private ready(send: Frame[], release: Output[]): PrimaryReady {
    const stop = this.stopReason;
    this.stopReason = null;
    return { send, release, claim: false, stop };
  }
}
