// The logging channel as the drivers see it: frames (wire.ts) out and in,
// and one close. Every transport — in-process, a worker's MessagePort, TCP
// (host/node/tcp-link.ts) — encodes with a FrameWriter and decodes with a
// FrameReader, so the bytes are the same everywhere (docs/ft-protocol.md);
// a frame the reader refuses closes the link with the reader's reason, and
// nothing a peer sends reaches a role except a valid frame.

import { FrameReader } from "./frame-reader.js";
import { FrameWriter, WireError, type Frame, type FrameTagger, type ReceivedFrame } from "./wire.js";

export interface LinkStats {
  framesOut: number;
  framesIn: number;
  bytesOut: number;
  bytesIn: number;
  /** Frames dropped as repeats (their number was not above the last accepted). */
  dropped: number;
}

export interface PeerLink {
  /** Queues one frame; never blocks. Ignored once the link is closed. */
  send(f: Frame): void;
  /** Each frame received, in order. */
  onFrame(cb: (f: Frame) => void): void;
  /** Called once when the link closes: the peer closed it, a bad frame, or close(). */
  onClose(cb: (reason: string) => void): void;
  close(reason?: string): void;
  /**
   * Sends now what send() has queued. A transport may hold the frames of one
   * synchronous run to send them together (port-link.ts); a replica calls
   * this where waiting for the end of its step would delay a frame the peer
   * is waiting for (an acknowledgement before a slice of replay). A
   * transport that does not queue has nothing to do.
   */
  flush?(): void;
  readonly closed: boolean;
  readonly stats: LinkStats;
}

/**
 * The shared half of every link: numbering and encoding on the way out,
 * reading and checking on the way in. A transport supplies `transmit` (put
 * bytes on the wire) and calls `receive` with what arrives, and `ended`
 * when its end goes away.
 */
export class FramedLink implements PeerLink {
  readonly stats: LinkStats = { framesOut: 0, framesIn: 0, bytesOut: 0, bytesIn: 0, dropped: 0 };
  /** Set by a transport that queues what `transmit` is given (PeerLink.flush). */
  flush?: () => void;
  private readonly writer: FrameWriter;
  private readonly reader: FrameReader;
  private frameCbs: ((f: Frame) => void)[] = [];
  private closeCbs: ((reason: string) => void)[] = [];
  private isClosed = false;

  constructor(
    tagger: FrameTagger,
    private readonly transmit: (bytes: Uint8Array) => void,
    private readonly shutdown: () => void,
    /** "stream": bytes in chunks of any size (TCP); "message": whole frames, one or more per call (a MessagePort). */
    private readonly framing: "stream" | "message",
  ) {
    this.writer = new FrameWriter(tagger);
    this.reader = new FrameReader(tagger);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(f: Frame): void {
    if (this.isClosed) return;
    const bytes = this.writer.encode(f);
    this.stats.framesOut++;
    this.stats.bytesOut += bytes.length;
    this.transmit(bytes);
  }

  onFrame(cb: (f: Frame) => void): void {
    this.frameCbs.push(cb);
  }

  onClose(cb: (reason: string) => void): void {
    this.closeCbs.push(cb);
  }

  /** Bytes from the transport. */
  receive(bytes: Uint8Array): void {
    if (this.isClosed) return;
    this.stats.bytesIn += bytes.length;
    let frames: ReceivedFrame[];
    try {
      if (this.framing === "stream") frames = this.reader.push(bytes);
      else frames = this.reader.pushMessage(bytes);
    } catch (e) {
      this.close(e instanceof WireError ? e.message : `ft link: ${(e as Error).message}`);
      return;
    }
    this.stats.dropped = this.reader.dropped;
    for (const r of frames) {
      this.stats.framesIn++;
      for (const cb of this.frameCbs) cb(r.frame);
      if (this.isClosed) return;
    }
  }

  /** The transport's end went away (the peer closed, or the connection broke). */
  ended(reason: string): void {
    this.close(reason);
  }

  close(reason = "closed"): void {
    if (this.isClosed) return;
    this.isClosed = true;
    try {
      this.shutdown();
    } finally {
      for (const cb of this.closeCbs) cb(reason);
    }
  }
}

/**
 * Two links joined in memory, through the real encoder and reader (the
 * in-process transport: tests, and a pair in one thread). Delivery is
 * asynchronous (a microtask), as on every other transport.
 */
export function memoryLinkPair(tagger: FrameTagger): [PeerLink, PeerLink] {
  let a: FramedLink | null = null;
  let b: FramedLink | null = null;
  const deliver = (to: () => FramedLink | null, bytes: Uint8Array) => queueMicrotask(() => to()?.receive(bytes));
  a = new FramedLink(tagger, (bytes) => deliver(() => b, bytes), () => queueMicrotask(() => b?.ended("the peer closed the link")), "message");
  b = new FramedLink(tagger, (bytes) => deliver(() => a, bytes), () => queueMicrotask(() => a?.ended("the peer closed the link")), "message");
  return [a, b];
}
