// Failure detection by silence (host/ft/failure-detector.ts): heartbeats,
// the timeout, time this side could not listen, and the first contact.

import { describe, expect, it } from "vitest";
import { FailureDetector, watchPeer } from "../../host/ft/failure-detector.js";

describe("FailureDetector", () => {
  it("a peer silent for the timeout has failed; anything heard restarts the count", () => {
    const fd = new FailureDetector({ intervalMs: 10, timeoutMs: 100 }, 0);
    for (let t = 5; t < 100; t += 5) expect(fd.peerFailed(t), `at ${t}`).toBe(false);
    fd.heard(95);
    for (let t = 100; t < 195; t += 5) expect(fd.peerFailed(t), `at ${t}`).toBe(false);
    expect(fd.peerFailed(195)).toBe(true);
  });

  it("a heartbeat is due after the interval without sending, and counts as sent", () => {
    const fd = new FailureDetector({ intervalMs: 10, timeoutMs: 100 }, 0);
    fd.heard(0);
    expect(watchPeer(fd, 5)).toEqual([]);
    expect(watchPeer(fd, 10)).toEqual([{ type: "heartbeat", ms: 10 }]);
    expect(watchPeer(fd, 15)).toEqual([]);
  });

  it("time this side spent away (a long slice) beyond one interval is not silence", () => {
    const fd = new FailureDetector({ intervalMs: 10, timeoutMs: 100 }, 0);
    fd.heard(0);
    expect(fd.peerFailed(5)).toBe(false);
    // 300 ms without a look: only one interval of it counts.
    expect(fd.peerFailed(305)).toBe(false);
    expect(fd.peerFailed(310)).toBe(false);
  });

  it("before the peer is first heard, firstContactMs is the limit; after it, timeoutMs", () => {
    const fd = new FailureDetector({ intervalMs: 10, timeoutMs: 100, firstContactMs: 1000 }, 0);
    for (let t = 5; t < 1000; t += 5) expect(fd.peerFailed(t), `at ${t}`).toBe(false);
    expect(fd.peerFailed(1000)).toBe(true);
    const later = new FailureDetector({ intervalMs: 10, timeoutMs: 100, firstContactMs: 1000 }, 0);
    later.peerFailed(5);
    later.heard(5);
    for (let t = 10; t < 105; t += 5) later.peerFailed(t);
    expect(later.peerFailed(105)).toBe(true);
    // Without firstContactMs, the first contact has the plain timeout.
    const plain = new FailureDetector({ intervalMs: 10, timeoutMs: 100 }, 0);
    for (let t = 5; t < 100; t += 5) plain.peerFailed(t);
    expect(plain.peerFailed(100)).toBe(true);
  });
});
