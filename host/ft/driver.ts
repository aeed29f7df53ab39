// The driver of one replica (host/ft/replica.ts), in a Node worker thread or
// a browser's Web Worker alike: steps it, and between steps waits as long as
// it says it may (an idle guest, a primary held by flow control) or yields to
// the event loop (host/common/yield-now.ts) so frames, timers and signals
// get in. Time is the host's monotonic clock (performance.now).

import type { StepResult } from "./replica.js";
import type { Waker } from "../common/waker.js";
import { yieldNow } from "../common/yield-now.js";

export interface SteppedReplica {
  step(nowMs: number): Promise<StepResult>;
}

export interface ReplicaDriverOptions {
  /** Asked before every step: true stops the driver (a fault injected, a signal). */
  stop?: () => boolean;
  /** Ends a wait early when frames or input arrive. */
  waker?: Waker;
}

/** Runs `r` until it is done or `stop()` says so; resolves to how it ended. */
export async function driveReplica(r: SteppedReplica, o: ReplicaDriverOptions = {}): Promise<"done" | "stopped"> {
  for (;;) {
    if (o.stop?.()) return "stopped";
    const s = await r.step(performance.now());
    if (s.next === "done") return "done";
    if (s.next === "wait" && s.waitMs > 0) await (o.waker ? o.waker.wait(s.waitMs) : new Promise((res) => setTimeout(res, s.waitMs)));
    else await yieldNow();
  }
}
