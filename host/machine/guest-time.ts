// Guest time: the nanoseconds the guest's devices see (PIT, UART timeouts,
// disk latencies, the RTC, RDTSC). It is a function of the instruction count
// alone, so that a replay that retires the same instructions sees the same
// time:
//
//   time(icount) = anchorNs + (icount - anchorIcount) * nsPerInstruction
//
// The anchor moves only at instruction boundaries, and only by set() or
// skip(): with the virtual clock when a halted CPU skips to its next device
// event; with the host clock when the live side samples the host's clock (a
// logged TIME or RDTSC event, host/replay/). Between anchors time runs at a
// fixed rate per instruction, so it never depends on how fast the host runs.

export type ClockMode = "host" | "virtual";

/** The calendar time at guest time 0 under the virtual clock (2026-01-01 UTC). */
export const VIRTUAL_EPOCH_MS = Date.UTC(2026, 0, 1);

/**
 * Guest time per retired instruction. Virtual: the whole of guest time (with
 * the idle skips). Host: only the drift between two readings of the host
 * clock, kept well below any engine's real speed so that the readings, not
 * the drift, keep guest time in step with the host.
 */
export const NS_PER_INSTRUCTION: Readonly<Record<ClockMode, number>> = { virtual: 10, host: 1 };

/** Guest time's anchor, as saved (the count as a decimal string: JSON has no 64-bit integers). */
export interface GuestTimeState {
  anchorIcount: string;
  anchorNs: number;
}

export class GuestTime {
  private anchorIcount = 0n;
  private anchorNs = 0;

  constructor(readonly nsPerInstruction: number) {}

  /** Guest time (ns) after `icount` instructions. */
  at(icount: bigint): number {
    return this.anchorNs + Number(icount - this.anchorIcount) * this.nsPerInstruction;
  }

  /** Moves time forward to `ns` at `icount` (never backwards: time is monotonic). */
  set(icount: bigint, ns: number): void {
    const now = this.at(icount);
    if (!(ns >= now)) throw new RangeError(`guest time cannot go back from ${now} to ${ns} ns at instruction ${icount}`);
    this.anchorIcount = icount;
    this.anchorNs = ns;
  }

  /**
   * Adds `ns` to the time at every later instruction count (a halted CPU's
   * idle time under the virtual clock). Kept as a separate step from set() so
   * that virtual time is exactly icount * rate + the idle time, whatever the
   * order of the additions.
   */
  skip(ns: number): void {
    if (!(ns >= 0)) throw new RangeError(`guest time cannot skip ${ns} ns`);
    this.anchorNs += ns;
  }

  /** The anchor, for state hashes and snapshots. */
  saveState(): GuestTimeState {
    return { anchorIcount: this.anchorIcount.toString(), anchorNs: this.anchorNs };
  }

  loadState(s: GuestTimeState): void {
    if (typeof s !== "object" || s === null || typeof s.anchorIcount !== "string" || !/^\d+$/.test(s.anchorIcount)) {
      throw new TypeError("guest time state: anchorIcount is not a decimal count");
    }
    if (!Number.isFinite(s.anchorNs) || s.anchorNs < 0) throw new TypeError("guest time state: anchorNs is not a non-negative number");
    this.anchorIcount = BigInt(s.anchorIcount);
    this.anchorNs = s.anchorNs;
  }
}
