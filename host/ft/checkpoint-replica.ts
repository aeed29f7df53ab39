// Checkpoint mode's backup (docs/ft-checkpoint.md): it runs no guest while
// it follows. It holds the last complete checkpoint (checkpoint.ts) and
// acknowledges each one as it completes; the primary (PrimaryReplica with
// `checkpoint` set, replica.ts) then releases the outputs it covers. Failure
// detection, heartbeats, the arbiter's claim and the outputs kept for a
// go-live are the backup's role's (backup.ts), as in replay mode. Going
// live, it puts its machine in the last complete checkpoint, sends again the
// outputs that checkpoint covers and the primary had not confirmed released
// (clients drop numbers they have seen), and goes on as a primary without a
// backup. A standby (ReplicaOptions.standby) joins a primary that runs
// alone: its first checkpoint holds all of RAM.

import { Machine } from "../machine/machine.js";
import { LiveGate } from "../replay/live-gate.js";
import { sameBytes } from "../common/bytes.js";
import { stateHash } from "../replay/state-hash.js";
import { BackupRole } from "./backup.js";
import { CheckpointReceiver } from "./checkpoint.js";
import { OutputCounter, type Output } from "./output-gate.js";
import { claimNextEpoch, driverNow, inbox, PrimaryReplica, tap, type Replica, type ReplicaOptions, type ReplicaStatus, type StepResult } from "./replica.js";
import type { PeerLink } from "./link.js";
import { SharedDiskStore } from "./shared-disk.js";
import { TransferError } from "./state-transfer.js";
import { SwitchGate } from "./switch-gate.js";
import { ByeCode, WIRE_VERSION, type Frame } from "./wire.js";

export class CheckpointBackup implements Replica {
  readonly role: BackupRole;
  finished = false;
  epoch = 1;
  lostArbiter = false;
  /** The last complete checkpoint and the one arriving. */
  readonly receiver: CheckpointReceiver;
  /** Booted at once (checkpoint 0 is its boot state); it runs only after going live. */
  private readonly m: Machine;
  private readonly gate: SwitchGate;
  /** The shared disk's view: each applied checkpoint's writes go in its overlay. */
  private readonly disk: SharedDiskStore | undefined;
  private counter: OutputCounter | null = null;
  private readonly out: Output[] = [];
  private readonly box: ReturnType<typeof inbox>;
  private successor: PrimaryReplica | null = null;
  /** The checkpoint this replica resumed from, once live, and (with `checkpoint.hash`) the state hash it resumed with. */
  resumedFrom: { n: number; icount: bigint; outputSeq: number; stateHash: Uint8Array | null } | null = null;

  constructor(private readonly o: ReplicaOptions, nowMs: number) {
    this.role = new BackupRole({ timeouts: o.timeouts, nowMs });
    this.box = inbox(o.link);
    // HELLO first: the primary's guest waits for it, and a silent peer is a failed one (booting 32 MiB takes a while).
    o.link.send({ type: "hello", role: "backup", version: WIRE_VERSION, configHash: o.configHash, epoch: this.epoch, startIcount: 0n, replica: o.name });
    this.gate = new SwitchGate(new LiveGate({ clock: o.clock, world: o.world }));
    const disk = o.disk?.((c, v, lba) => this.out.push(this.counter!.next(c, v, lba)));
    if (disk !== undefined && !(disk instanceof SharedDiskStore)) throw new TypeError("checkpoint mode: the disk must be the shared disk's store (shared-disk.ts), which takes the primary's writes");
    this.disk = disk;
    this.m = Machine.create(o.image, {
      engine: o.engine, clock: o.clock, cmdline: o.cmdline, nic: o.nic, gate: this.gate,
      ...tap((c, v) => this.out.push(this.counter!.next(c, v))),
      disk: this.disk,
    });
    this.receiver = new CheckpointReceiver(this.m.saveState(), { standby: o.standby });
  }

  /** The guest's machine once it runs (after going live); null while following. */
  get machine(): Machine | null {
    return this.successor ? this.m : null;
  }

  get isLive(): boolean {
    return this.successor !== null && !this.finished && this.successor.isLive;
  }

  status(): ReplicaStatus {
    if (this.successor) {
      const st = this.successor.status();
      return { ...st, role: "backup", state: st.state === "alone" ? "live" : st.state };
    }
    return { role: "backup", state: this.role.state, icount: this.receiver.last.icount, held: this.role.keptCount, epoch: this.epoch, checkpoints: { ...this.receiver.figures } };
  }

  /** Releases the machine's engine (the replica is unusable after). */
  dispose(): void {
    this.m.dispose();
  }

  attachBackup(link: PeerLink, nowMs: number): void {
    if (!this.successor) throw new Error("backup: only a backup that went live can take a backup of its own");
    this.successor.attachBackup(link, nowMs);
  }

  private apply(r: { send: Frame[]; stop: string | null }): void {
    for (const f of r.send) this.o.link.send(f);
    if (r.stop) {
      this.o.say(`backup stops: ${r.stop}`);
      this.finished = true;
    }
  }

  /** A checkpoint frame: staged, or (CHECKPOINT) the staged checkpoint applied and acknowledged. */
  private take(f: Extract<Frame, { type: "pages" | "outputs" | "checkpoint" }>, nowMs: number): void {
    if (f.type === "pages") return this.receiver.pages(f);
    if (f.type === "outputs") return this.receiver.outputs(f);
    for (const x of this.receiver.commit(f)) {
      this.disk?.adopt(x);
      this.role.output(x);
    }
    this.apply(this.role.holds(f.icount, nowMs));
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
        if (f.role !== "primary" || !sameBytes(f.configHash, this.o.configHash)) {
          this.o.link.send({ type: "bye", code: ByeCode.CONFIG_MISMATCH, reason: "not the primary of this VM" });
          this.o.link.close("the peer is not the primary of this VM");
        } else if (f.epoch > this.epoch) this.epoch = f.epoch;
      }
      // Heard first (a checkpoint that completes is acknowledged after), then taken.
      this.apply(this.role.onMessage(f, nowMs));
      if ((f.type === "pages" || f.type === "outputs" || f.type === "checkpoint") && this.role.state === "following") {
        try {
          this.take(f, nowMs);
        } catch (e) {
          if (!(e instanceof TransferError)) throw e;
          this.o.link.send({ type: "bye", code: ByeCode.PROTOCOL_ERROR, reason: e.message });
          this.o.link.close(e.message);
          this.o.say(`backup stops: ${e.message}`);
          this.finished = true;
          return { next: "done", waitMs: 0 };
        }
      }
    }
    if (this.finished) return { next: "done", waitMs: 0 };
    const t = this.role.tick(nowMs);
    this.apply(t);
    if (t.claim && this.o.standby && this.receiver.last.n === 0) {
      // A standby without its first checkpoint has no state to go live with: claiming would only take an epoch from a live primary.
      this.o.say("backup stops: the primary went silent before this backup had its first checkpoint (it cannot go live)");
      this.finished = true;
      return { next: "done", waitMs: 0 };
    }
    if (t.claim) await this.claim();
    if (this.finished) return { next: "done", waitMs: 0 };
    return { next: "wait", waitMs: 1 };
  }

  private async claim(): Promise<void> {
    const { want, won, res } = await claimNextEpoch(this.o, this.role, this.epoch);
    if (!won) this.lostArbiter = true;
    this.apply(res);
    if (!res.goLive) return;
    this.epoch = want;
    // The last complete checkpoint (a staged one is dropped), then its outputs the world may not have.
    const last = this.receiver.last;
    try {
      this.receiver.restore(this.m);
    } catch (e) {
      if (!(e instanceof TransferError)) throw e;
      this.o.say(`backup stops: it cannot resume: ${e.message}`);
      this.finished = true;
      return;
    }
    this.counter = new OutputCounter(() => this.m.engine.icount, last.outputSeq);
    this.resumedFrom = { ...last, stateHash: this.o.checkpoint?.hash ? stateHash(this.m) : null };
    this.o.release(res.goLive);
    this.successor = new PrimaryReplica({ ...this.o }, driverNow(this.o), { machine: this.m, out: this.out, counter: this.counter, gate: this.gate, epoch: want });
    const staged = this.receiver.staged;
    this.o.say(`backup is live at instruction ${this.m.engine.icount} (epoch ${want}), resumed from checkpoint ${last.n}${staged ? ` (checkpoint ${staged.n}, incomplete, dropped)` : ""}; ${res.goLive.length} kept outputs sent again; no backup now`);
  }
}
