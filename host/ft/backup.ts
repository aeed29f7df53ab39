// The backup's role, as a pure state machine beside the primary's
// (primary.ts): the driver hands it the primary's messages, the outputs its
// replaying guest makes, time, and the arbiter's answer; it answers with the
// entries to hand the replay gate, how far the guest may run, messages to
// send, and when to go live.
//
// The backup runs the same guest from the same state, replaying the
// primary's entries, and never runs past the last progress record (the
// primary's count when it sent it: every entry before that count has
// arrived). It acknowledges each progress record as it arrives — it then
// holds the log up to that count — which is what lets the primary release
// outputs. It keeps the outputs its own guest makes past the primary's last
// release point: on go-live they are sent again with their sequence numbers,
// and a client that saw one already drops it.

import type { LogEntry } from "../replay/log-format.js";
import { FailureDetector, watchPeer, type Timeouts } from "./failure-detector.js";
import type { Frame } from "./wire.js";
import type { Output } from "./output-gate.js";

export interface BackupOptions {
  timeouts: Timeouts;
  nowMs: number;
  /**
   * False for a backup that joins a running primary: it acknowledges
   * nothing until it holds the machine's state (joinAt) — the log alone
   * would not let it go live, so no output may be released on its word.
   */
  joined?: boolean;
}

export type BackupState =
  | "following" // replaying the primary's stream
  | "claiming"  // the primary went silent: asking the arbiter whether to go live
  | "live"      // won: this replica is the primary now
  | "stopped";  // lost the arbiter, or the primary ended the pair

export interface BackupReady {
  send: Frame[];
  /** Entries for the replay gate, in order. */
  entries: LogEntry[];
  /** Ask the arbiter for the next epoch (the primary is taken to have failed). */
  claim: boolean;
  /** Set once, on go-live: the outputs to send again (their numbers let clients drop repeats). */
  goLive: Output[] | null;
  stop: string | null;
}

export class BackupRole {
  state: BackupState = "following";
  private readonly fd: FailureDetector;
  /** The last progress record: the guest may run up to here. */
  private progress = 0n;
  private kept: Output[] = [];
  private releasedSeq = 0;
  private stopReason: string | null = null;
  /** Entries received in all (for status lines and the go-live replay). */
  received = 0;
  private ranSent = 0n;

  private joined: boolean;

  constructor(o: BackupOptions) {
    this.fd = new FailureDetector(o.timeouts, o.nowMs);
    this.joined = o.joined ?? true;
  }

  /** How far the replaying guest may run. */
  get limit(): bigint {
    return this.progress;
  }

  /** A message from the primary. */
  onMessage(m: Frame, nowMs: number): BackupReady {
    if (this.state !== "following") return this.ready([], []);
    this.fd.heard(nowMs);
    switch (m.type) {
      case "log":
        this.received += m.entries.length;
        return this.ready([], m.entries);
      case "progress": {
        if (m.icount > this.progress) this.progress = m.icount;
        if (!this.joined) return this.ready([], []);
        this.fd.sent(nowMs);
        return this.ready([{ type: "ack", icount: this.progress }], []);
      }
      case "release":
        if (m.seq > this.releasedSeq) {
          this.releasedSeq = m.seq;
          let k = 0;
          while (k < this.kept.length && this.kept[k]!.seq <= m.seq) k++;
          if (k > 0) this.kept = this.kept.slice(k);
        }
        return this.ready([], []);
      case "bye":
        // An orderly end of the primary's run: the backup stops with it.
        this.state = "stopped";
        this.stopReason = `the primary ended the run: ${m.reason}`;
        return this.ready([], []);
      default:
        return this.ready([], []);
    }
  }

  /**
   * This backup joined a running primary and holds the machine's state at
   * `icount` (state-transfer.ts), with the outputs up to `outputSeq` made
   * there: it may run to that count, and acknowledges it.
   */
  joinAt(icount: bigint, outputSeq: number, nowMs: number): BackupReady {
    // Progress records may have come before the state (the primary paired at
    // `icount` and went on while it hashed the state): hold them too.
    if (icount > this.progress) this.progress = icount;
    this.ranSent = icount;
    this.releasedSeq = outputSeq;
    this.joined = true;
    this.fd.sent(nowMs);
    return this.ready([{ type: "ack", icount: this.progress }], []);
  }

  /**
   * This backup's state diverged from the primary's (a divergence check,
   * host/ft/divergence.ts): it acknowledges nothing more — the log alone
   * no longer lets it go live — and forgets the outputs it kept, which a
   * diverged guest made, until a repair installs a state (joinAt).
   */
  untrust(): void {
    this.joined = false;
    this.kept = [];
  }

  /**
   * Checkpoint mode: this replica now holds the primary's complete
   * checkpoint at `icount` (checkpoint.ts applied it): it acknowledges it,
   * which releases the outputs it covers.
   */
  holds(icount: bigint, nowMs: number): BackupReady {
    if (this.state !== "following") return this.ready([], []);
    if (icount > this.progress) this.progress = icount;
    this.fd.sent(nowMs);
    return this.ready([{ type: "ack", icount }], []);
  }

  /**
   * The replaying guest has run to `icount`: the primary is told (RAN), so
   * its flow control can keep it within a lag target of this replica.
   */
  ranTo(icount: bigint, nowMs: number): BackupReady {
    if (this.state !== "following" || icount <= this.ranSent) return this.ready([], []);
    this.ranSent = icount;
    this.fd.sent(nowMs);
    return this.ready([{ type: "ran", icount }], []);
  }

  /** The replaying guest made an output: kept until the primary says it was released. */
  output(o: Output): void {
    if (o.seq > this.releasedSeq) this.kept.push(o);
  }

  /** Time passed: heartbeats, and the primary's silence. */
  tick(nowMs: number): BackupReady {
    if (this.state !== "following") return this.ready([], []);
    const w = watchPeer(this.fd, nowMs);
    if (w !== "claim") return this.ready(w, []);
    this.state = "claiming";
    return { ...this.ready([], []), claim: true };
  }

  /**
   * The arbiter's answer. Won: the driver replays every entry it received,
   * switches the machine's gate to live, and sends `goLive`'s outputs again.
   */
  claimed(won: boolean, detail: string): BackupReady {
    if (this.state !== "claiming") throw new Error(`backup: an arbiter answer in state ${this.state}`);
    if (!won) {
      this.state = "stopped";
      this.stopReason = `lost the arbiter to ${detail}: the primary is still live`;
      return this.ready([], []);
    }
    this.state = "live";
    const r = this.ready([], []);
    r.goLive = this.kept;
    this.kept = [];
    return r;
  }

  /** Outputs kept for a go-live. */
  get keptCount(): number {
    return this.kept.length;
  }

  private ready(send: Frame[], entries: LogEntry[]): BackupReady {
    const stop = this.stopReason;
    this.stopReason = null;
    return { send, entries, claim: false, goLive: null, stop };
  }
}
