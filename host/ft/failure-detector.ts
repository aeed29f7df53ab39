// Failure detection by silence: a peer that has said nothing — no log, no
// acknowledgement, no heartbeat — for `timeoutMs` is taken to have failed.
// Each side sends a heartbeat whenever it has sent nothing for `intervalMs`,
// so a quiet but healthy peer is never mistaken for a dead one. Time is
// whatever the caller says it is (ms, monotonic): the detector reads no
// clock.
//
// Silence counts only while this side was listening: when the caller's own
// checks are further apart than the heartbeat interval (its thread was busy
// running the guest, compiling, collecting garbage), what the peer sent in
// that time is still unread, so the gap beyond one interval is not counted.

import type { Frame } from "./wire.js";

export interface Timeouts {
  /** Longest a side stays silent before it sends a heartbeat. */
  intervalMs: number;
  /** Silence from the peer after which it counts as failed. */
  timeoutMs: number;
  /**
   * Silence allowed before the peer is first heard from, when longer than
   * timeoutMs: a peer that is still starting (a worker thread or a process
   * loading its modules and engine on a busy host) is not yet failed.
   */
  firstContactMs?: number;
}

/** Defaults that suit one host or a LAN (docs/ft.md). */
export const DEFAULT_TIMEOUTS: Timeouts = { intervalMs: 25, timeoutMs: 200 };
/** What drivers that start replicas in their own threads or processes allow for the first contact (Timeouts.firstContactMs). */
export const FIRST_CONTACT_MS = 10_000;

export class FailureDetector {
  private lastHeard: number;
  private lastSent: number;
  private lastCheck: number;
  /** Time since lastHeard during which this side could not have read anything. */
  private deaf = 0;
  /** Whether the peer has been heard from at all. */
  private contact = false;

  constructor(readonly t: Timeouts, nowMs: number) {
    if (!(t.intervalMs > 0 && t.timeoutMs > t.intervalMs)) {
      throw new RangeError(`heartbeat interval ${t.intervalMs} ms must be positive and below the timeout ${t.timeoutMs} ms`);
    }
    this.lastHeard = nowMs;
    this.lastSent = nowMs;
    this.lastCheck = nowMs;
  }

  /** Something arrived from the peer. */
  heard(nowMs: number): void {
    if (nowMs > this.lastHeard) this.lastHeard = nowMs;
    this.deaf = 0;
    this.contact = true;
  }

  /** Something was sent to the peer. */
  sent(nowMs: number): void {
    if (nowMs > this.lastSent) this.lastSent = nowMs;
  }

  /** True when a heartbeat is due (nothing sent for intervalMs). */
  heartbeatDue(nowMs: number): boolean {
    return nowMs - this.lastSent >= this.t.intervalMs;
  }

  /** True when the peer has been silent for timeoutMs of the time this side was listening. */
  peerFailed(nowMs: number): boolean {
    const gap = nowMs - this.lastCheck;
    if (gap > this.t.intervalMs) this.deaf += gap - this.t.intervalMs;
    if (nowMs > this.lastCheck) this.lastCheck = nowMs;
    const limit = this.contact ? this.t.timeoutMs : Math.max(this.t.timeoutMs, this.t.firstContactMs ?? 0);
    return this.silenceMs(nowMs) >= limit;
  }

  /**
   * What time passing means for a side that is watching its peer: the peer
   * has failed (silent too long), a heartbeat is due (and is taken as sent),
   * or nothing.
   */
  tick(nowMs: number): "peer-failed" | "heartbeat" | null {
    if (this.peerFailed(nowMs)) return "peer-failed";
    if (this.heartbeatDue(nowMs)) {
      this.sent(nowMs);
      return "heartbeat";
    }
    return null;
  }

  /** Milliseconds of silence from the peer so far, while this side was listening. */
  silenceMs(nowMs: number): number {
    return nowMs - this.lastHeard - this.deaf;
  }
}

/**
 * Time passing for a role that watches its peer (primary.ts, backup.ts):
 * "claim" when the peer has failed (ask the arbiter), else the frames to
 * send now — a heartbeat when one is due.
 */
export function watchPeer(fd: FailureDetector, nowMs: number): "claim" | Frame[] {
  switch (fd.tick(nowMs)) {
    case "peer-failed":
      return "claim";
    case "heartbeat":
      return [{ type: "heartbeat", ms: Math.floor(nowMs) }];
    default:
      return [];
  }
}
