// The logging channel over a MessagePort (a worker thread's, in Node or in a
// browser). The frames a replica sends in one synchronous run (a step's LOG
// and PROGRESS, a backup's ACK and RAN) go out as one message, whole frames
// back to back, posted from a microtask: one message event on the other side
// instead of one per frame, and no delay (the microtask runs before the
// thread waits or yields). The bytes are transferred rather than copied. A
// port that closes (the peer thread ended) closes the link.

import { FramedLink, type PeerLink } from "./link.js";
import type { FrameTagger } from "./wire.js";

/** What the link needs of a MessagePort (Node's worker_threads and the browser's both have it). */
export interface MessagePortLike {
  postMessage(data: unknown, transfer: ArrayBuffer[]): void;
  addEventListener(type: string, cb: (e: Event) => void): void;
  start?(): void;
  close(): void;
}

export function portLink(port: MessagePortLike, tagger: FrameTagger): PeerLink {
  let queued: Uint8Array[] = [];
  const flush = () => {
    if (queued.length === 0) return;
    const frames = queued;
    queued = [];
    let out: Uint8Array;
    if (frames.length === 1 && frames[0]!.byteOffset === 0 && frames[0]!.byteLength === frames[0]!.buffer.byteLength) out = frames[0]!;
    else {
      out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
      let at = 0;
      for (const f of frames) {
        out.set(f, at);
        at += f.length;
      }
    }
    port.postMessage(out, [out.buffer as ArrayBuffer]);
  };
  const link: FramedLink = new FramedLink(
    tagger,
    (bytes) => {
      if (queued.length === 0) queueMicrotask(flush);
      queued.push(bytes);
    },
    () => {
      // A goodbye sent just before the close still goes.
      flush();
      port.close();
    },
    "message",
  );
  port.addEventListener("message", (e) => {
    const data = (e as MessageEvent).data;
    if (data instanceof Uint8Array) link.receive(data);
    else link.close("a message on the channel that is not a frame");
  });
  port.addEventListener("close", () => link.ended("the peer's port closed"));
  port.start?.();
  // The queued frames' microtask then finds nothing to send.
  link.flush = flush;
  return link;
}
