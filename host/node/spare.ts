// A spare for a live replica (`--spare HOST:PORT`, docs/ft.md "A new
// backup"): whenever the replica is live without a backup, connect to the
// standby waiting there (`lockstep backup --standby --listen HOST:PORT`)
// and hand it the link to attachBackup, which sends the state. The
// connection is made in the background; the link is handed over in poll(),
// which the driver calls between two steps of the replica, never inside one.
// A spare that cannot be reached is tried again every retryMs while the
// replica is alone, and said so at the first try, on a new reason and at
// the 2nd, 4th, 8th... try after, so a long wait costs a few lines.

import type { PeerLink } from "../ft/link.js";
import { connectLink } from "./tcp-link.js";
import type { Waker } from "../common/waker.js";

/** The replica as the spare keeper sees it (PrimaryReplica, BackupReplica). */
export interface SpareTaker {
  readonly wantsBackup: boolean;
  attachBackup(link: PeerLink, nowMs: number): void;
}

export interface SpareOptions {
  host: string;
  port: number;
  key: Uint8Array | null;
  waker: Waker;
  say: (line: string) => void;
  /** Each link handed to the replica: its channel to the backup from then on. */
  onLink?: (link: PeerLink) => void;
  /** Wait between tries while the spare cannot be reached (default 1 s). */
  retryMs?: number;
}

/** After a spare took the link but no transfer ended (it refused, or went away), the wait doubles up to this. */
const MAX_RETRY_MS = 30_000;
/** A spare on another host that does not answer is given up this soon: the replica stays alone meanwhile anyway. */
const CONNECT_TIMEOUT_MS = 3_000;

export class SpareKeeper {
  private readonly where: string;
  private readonly retryMs: number;
  private connecting = false;
  private ready: PeerLink | null = null;
  private nextTryMs = 0;
  private unreachable = 0;
  private lastReason = "";
  /** A link was handed over and no transfer has ended since. */
  private handed = false;
  /** Hand-overs in a row that brought no backup. */
  private fruitless = 0;

  constructor(private readonly o: SpareOptions) {
    this.where = `${o.host}:${o.port}`;
    this.retryMs = o.retryMs ?? 1_000;
  }

  /** A transfer to the spare ended: it is the backup now; if it fails later, the same address is tried again at once. */
  transferred(): void {
    this.handed = false;
    this.fruitless = 0;
    this.nextTryMs = 0;
  }

  /** Between two steps of `r`: hands over a link made, or starts a try if `r` wants a backup and the wait is over. */
  poll(r: SpareTaker, nowMs: number): void {
    if (this.ready) {
      const link = this.ready;
      this.ready = null;
      if (!r.wantsBackup) {
        link.close("the replica needs no backup any more");
        return;
      }
      link.onFrame(() => this.o.waker.wake());
      this.o.say(`spare ${this.where}: connected; sending it the state`);
      r.attachBackup(link, nowMs);
      this.handed = true;
      this.o.onLink?.(link);
      return;
    }
    if (!r.wantsBackup || this.connecting) return;
    if (this.handed) {
      // Alone again after a hand-over with no transfer: the spare refused, or went away.
      this.handed = false;
      this.fruitless++;
      this.nextTryMs = nowMs + Math.min(MAX_RETRY_MS, this.retryMs * 2 ** (this.fruitless - 1));
    }
    if (nowMs < this.nextTryMs) return;
    this.connecting = true;
    connectLink({ host: this.o.host, port: this.o.port, key: this.o.key, timeoutMs: CONNECT_TIMEOUT_MS }).then(
      (link) => {
        this.connecting = false;
        this.unreachable = 0;
        this.lastReason = "";
        this.ready = link;
        this.o.waker.wake();
      },
      (e: Error) => {
        this.connecting = false;
        this.unreachable++;
        this.nextTryMs = performance.now() + this.retryMs;
        const reason = e.message.replace(/^ft tcp: /, "");
        const n = this.unreachable;
        if (n === 1 || reason !== this.lastReason) this.o.say(`spare ${this.where} cannot be reached (${reason}): going on alone, trying again every ${this.retryMs} ms`);
        else if ((n & (n - 1)) === 0) this.o.say(`spare ${this.where}: still not reached after ${n} tries (${reason})`);
        this.lastReason = reason;
      },
    );
  }
}
