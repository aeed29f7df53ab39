// The logging channel over a MessagePort (a worker thread's, in Node or in a
// browser): one frame per message, the bytes transferred rather than copied.
// A port that closes (the peer thread ended) closes the link.

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
  const link: FramedLink = new FramedLink(
    tagger,
    (bytes) => {
      // Transfer the frame's own buffer; a view into a larger one is copied first.
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      port.postMessage(own, [own.buffer as ArrayBuffer]);
    },
    () => port.close(),
    "message",
  );
  port.addEventListener("message", (e) => {
    const data = (e as MessageEvent).data;
    if (data instanceof Uint8Array) link.receive(data);
    else link.close("a message on the channel that is not a frame");
  });
  port.addEventListener("close", () => link.ended("the peer's port closed"));
  port.start?.();
  return link;
}
