// The logging channel over a MessagePort (host/ft/port-link.ts), and its
// synchronous poll: a replica in the middle of a slice reads what arrived
// without returning to the event loop.

import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { initHash } from "../../host/common/hash.js";
import type { Frame } from "../../host/ft/wire.js";
import { frameTagger, WIRE_VERSION } from "../../host/ft/wire.js";
import { portLink } from "../../host/ft/port-link.js";

describe("portLink", () => {
  it("poll delivers frames that arrived before the event loop turns, in order, once each", async () => {
    await initHash();
    const tag = await frameTagger(null);
    const { port1, port2 } = new MessageChannel();
    const a = portLink(port1, tag);
    const b = portLink(port2, tag, () => receiveMessageOnPort(port2));
    const got: Frame[] = [];
    b.onFrame((f) => got.push(f));
    let why = "";
    b.onClose((r) => { why = r; });
    const hello: Frame = { type: "hello", role: "primary", version: WIRE_VERSION, configHash: new Uint8Array(32), epoch: 1, startIcount: 0n, replica: "p" };
    a.send(hello);
    a.send({ type: "progress", icount: 10n });
    // The messages are queued on the port; no event has run yet.
    expect(got).toEqual([]);
    // Messages posted from this thread reach the other end's queue a moment later.
    await new Promise((r) => setTimeout(r, 20));
    got.length = 0;
    a.send({ type: "heartbeat", ms: 5 });
    a.send({ type: "progress", icount: 11n });
    for (let i = 0; i < 200 && got.length < 2; i++) {
      b.poll!();
      if (got.length < 2) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
    expect(got, `closed ${b.closed} ${why}, stats ${JSON.stringify(b.stats)}`).toEqual([{ type: "heartbeat", ms: 5 }, { type: "progress", icount: 11n }]);
    // Nothing is delivered twice when the events run afterwards.
    await new Promise((r) => setTimeout(r, 20));
    expect(got.length).toBe(2);
    expect(b.stats.framesIn).toBe(4);
    a.close();
    b.close();
  });

  it("has no poll where the platform cannot read a port synchronously", async () => {
    const { port1 } = new MessageChannel();
    expect(portLink(port1, await frameTagger(null)).poll).toBeUndefined();
    port1.close();
  });
});
