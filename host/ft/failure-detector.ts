// Failure detection by silence: a peer that has said nothing — no log, no
// acknowledgement, no heartbeat — for `timeoutMs` is taken to have failed.
// Each side sends a heartbeat whenever it has sent nothing for `intervalMs`,
// so a quiet but healthy peer is never mistaken for a dead one. Time is
// whatever the caller says it is (ms, monotonic): the detector reads no
// clock.

export interface Timeouts {
  /** Longest a side stays silent before it sends a heartbeat. */
  intervalMs: number;
  /** Silence from the peer after which it counts as failed. */
  timeoutMs: number;
}

/** Defaults that suit one host or a LAN (docs/ft.md). */
export const DEFAULT_TIMEOUTS: Timeouts = { intervalMs: 50, timeoutMs: 1000 };

export class FailureDetector {
  private lastHeard: number;
  private lastSent: number;

  constructor(readonly t: Timeouts, nowMs: number) {
    if (!(t.intervalMs > 0 && t.timeoutMs > t.intervalMs)) {
      throw new RangeError(`heartbeat interval ${t.intervalMs} ms must be positive and below the timeout ${t.timeoutMs} ms`);
    }
    this.lastHeard = nowMs;
    this.lastSent = nowMs;
  }

  /** Something arrived from the peer. */
  heard(nowMs: number): void {
    if (nowMs > this.lastHeard) this.lastHeard = nowMs;
  }

  /** Something was sent to the peer. */
  sent(nowMs: number): void {
    if (nowMs > this.lastSent) this.lastSent = nowMs;
  }

  /** True when a heartbeat is due (nothing sent for intervalMs). */
  heartbeatDue(nowMs: number): boolean {
    return nowMs - this.lastSent >= this.t.intervalMs;
  }

  /** True when the peer has been silent for timeoutMs. */
  peerFailed(nowMs: number): boolean {
    return nowMs - this.lastHeard >= this.t.timeoutMs;
  }

  /** Milliseconds of silence from the peer so far. */
  silenceMs(nowMs: number): number {
    return nowMs - this.lastHeard;
  }
}
