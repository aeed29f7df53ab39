// The receiving end of the FT channel (docs/ft-protocol.md): frames out of a
// byte stream that arrives in chunks of any size (a TCP socket), or one frame
// per message (a worker port). It checks each frame (host/ft/wire.ts
// frameBoundsAt: magic, version, type, lengths, tag) and the numbering: a
// number not above the last accepted one is a duplicate, dropped and counted;
// a number past the next one is a gap, an error. Frame 1 is HELLO and no
// other frame is. The first error is a WireError and the reader stays failed:
// the caller closes the connection. It holds at most one incomplete frame
// (MAX_FRAME bytes), whatever a peer sends.

import {
  decodeBody,
  FrameType,
  frameBoundsAt,
  MAX_FRAME,
  MAX_HEADER,
  WireError,
  type FrameBounds,
  type FrameTagger,
  type ReceivedFrame,
} from "./wire.js";

export class FrameReader {
  /** Frames dropped because their number was not above the last accepted one. */
  dropped = 0;
  /** The number of the last frame accepted (0 before the first). */
  last = 0;
  private failed: WireError | null = null;
  private finished = false;
  /** The incomplete frame's bytes so far. */
  private pend = new Uint8Array(64);
  private fill = 0;
  /** The incomplete frame's whole length, once its header has been read. */
  private total: number | null = null;
  /** Stream offset of the first byte not yet consumed (the incomplete frame's first byte). */
  private consumed = 0;

  constructor(private readonly tagger: FrameTagger) {}

  /** Stream offset of the first byte not yet part of an accepted or dropped frame. */
  get offset(): number {
    return this.consumed;
  }

  /** Bytes of an incomplete frame held. */
  get pending(): number {
    return this.fill;
  }

  /** The error the reader failed with, or null. */
  get error(): WireError | null {
    return this.failed;
  }

  /** Takes the next bytes of the stream; returns the frames they complete, in order. */
  push(chunk: Uint8Array): ReceivedFrame[] {
    this.usable();
    try {
      return this.pushInner(chunk);
    } catch (e) {
      throw this.fail(e);
    }
  }

  /**
   * Takes one message of a message-oriented transport (a worker's port): one
   * or more whole frames, never a part of one. Returns the frames accepted,
   * in order (a dropped duplicate is left out).
   */
  pushMessage(bytes: Uint8Array): ReceivedFrame[] {
    this.usable();
    if (this.fill > 0) throw new Error("ft wire: pushMessage while a streamed frame is incomplete");
    try {
      if (bytes.length === 0) throw new WireError(this.consumed, "an empty message");
      const out: ReceivedFrame[] = [];
      for (let pos = 0; pos < bytes.length; ) {
        // Stream offset of the message's first byte: offsets in errors count from the channel's start.
        const base = this.consumed - pos;
        const b = frameBoundsAt(bytes, pos, bytes.length, base, this.tagger);
        if ("more" in b) throw new WireError(base + bytes.length, `message holds a frame cut short (${bytes.length - pos} bytes${b.total ? ` of ${b.total}` : ""})`);
        const r = this.accept(bytes, b, base);
        if (r) out.push(r);
        this.consumed += b.end - pos;
        pos = b.end;
      }
      return out;
    } catch (e) {
      throw this.fail(e);
    }
  }

  /** The stream is over: throws WireError if it ended inside a frame. */
  finish(): void {
    this.usable();
    this.finished = true;
    if (this.fill > 0) {
      this.failed = new WireError(this.consumed + this.fill, `stream ends inside a frame (${this.fill}${this.total ? ` of ${this.total}` : ""} bytes)`);
      throw this.failed;
    }
  }

  private usable(): void {
    if (this.failed) throw this.failed;
    if (this.finished) throw new Error("ft wire: reader already finished");
  }

  private fail(e: unknown): unknown {
    if (e instanceof WireError) this.failed = e;
    return e;
  }

  private pushInner(chunk: Uint8Array): ReceivedFrame[] {
    const out: ReceivedFrame[] = [];
    let pos = 0;
    for (;;) {
      if (this.fill === 0) {
        // No partial frame: read straight from the chunk, copying only an incomplete tail.
        if (pos >= chunk.length) break;
        const base = this.consumed - pos;
        const b = frameBoundsAt(chunk, pos, chunk.length, base, this.tagger);
        if ("more" in b) {
          this.total = b.total;
          this.append(chunk.subarray(pos));
          break;
        }
        const r = this.accept(chunk, b, base);
        if (r) out.push(r);
        this.consumed += b.end - pos;
        pos = b.end;
      } else {
        // Take only what the partial frame can use: up to its length, or up
        // to the longest header while its length is unknown (no frame is
        // shorter than that, so this never takes a byte of the next frame).
        const want = (this.total ?? MAX_HEADER) - this.fill;
        const take = Math.min(want, chunk.length - pos);
        if (take <= 0) break;
        this.append(chunk.subarray(pos, pos + take));
        pos += take;
        const b = frameBoundsAt(this.pend, 0, this.fill, this.consumed, this.tagger);
        if ("more" in b) {
          this.total = b.total;
          continue;
        }
        const r = this.accept(this.pend, b, this.consumed);
        if (r) out.push(r);
        this.consumed += b.end;
        this.fill = 0;
        this.total = null;
      }
    }
    return out;
  }

  private append(bytes: Uint8Array): void {
    const need = this.fill + bytes.length;
    if (need > MAX_FRAME) throw new Error(`ft wire: internal: ${need} bytes held for one frame`);
    if (need > this.pend.length) {
      let size = this.pend.length;
      while (size < need) size *= 2;
      const nb = new Uint8Array(Math.min(size, MAX_FRAME));
      nb.set(this.pend.subarray(0, this.fill));
      this.pend = nb;
    }
    this.pend.set(bytes, this.fill);
    this.fill = need;
  }

  /** Numbering and the HELLO rule, then the body. Null for a dropped duplicate. */
  private accept(buf: Uint8Array, b: FrameBounds, base: number): ReceivedFrame | null {
    const offset = base + b.start;
    if (b.number <= this.last) {
      this.dropped++;
      return null;
    }
    if (b.number > this.last + 1) throw new WireError(offset, `frame number ${b.number} after ${this.last} (frames ${this.last + 1}..${b.number - 1} missing)`);
    if (b.number === 1 && b.typeCode !== FrameType.HELLO) throw new WireError(offset, "the first frame is not HELLO");
    if (b.number !== 1 && b.typeCode === FrameType.HELLO) throw new WireError(offset, `HELLO again (frame ${b.number})`);
    const frame = decodeBody(buf, b, base);
    this.last = b.number;
    return { number: b.number, frame, offset };
  }
}
