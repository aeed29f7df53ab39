// The replay's one failure: the guest did something the log does not say it
// did. Raised by the replay gate (host/replay/replay-gate.ts) and the replay
// session at the first instruction where the two part.

/** The replay found the guest doing something the log does not say it did. */
export class DivergenceError extends Error {
  constructor(
    readonly icount: bigint,
    readonly detail: string,
    /** Byte offset in the log of the entry concerned, if any. */
    readonly offset?: number,
  ) {
    super(`replay diverged at instruction ${icount}: ${detail}${offset !== undefined ? ` (log byte ${offset})` : ""}`);
    this.name = "DivergenceError";
  }
}
