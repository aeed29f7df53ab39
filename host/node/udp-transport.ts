// Frames over UDP on localhost: one frame is one datagram. Used by
// `lockstep kv-client` and, on the VM side, by `lockstep run --nic
// udp:LISTENPORT:PEERPORT`: the transport receives the datagrams sent to its
// listen port and sends each frame to the peer. It has no notion of time or
// order beyond what the socket gives; for the fault-tolerant VM the caller
// turns each received frame into a logged input event. Listeners also get
// the sender's address, and sendTo answers one (the replicas' endpoint probe,
// docs/ft-endpoints.md, answers whoever asked).

import { createSocket, type Socket } from "node:dgram";
import { MAX_FRAME, type FrameTransport } from "../net/frame-transport.js";

export interface UdpTransportOptions {
  /** Local port to receive on (0: any free port; see localPort). */
  listenPort: number;
  /** Local address to bind (default 127.0.0.1). */
  listenHost?: string;
  /** Where frames are sent. */
  peerPort: number;
  /** Default 127.0.0.1. */
  peerHost?: string;
  /** Largest frame accepted either way (default 1514). */
  maxFrame?: number;
}

export interface UdpTransportStats {
  framesIn: number;
  framesOut: number;
  /** Datagrams received that were empty or longer than maxFrame (not delivered). */
  droppedIn: number;
}

/** Where a datagram came from. */
export interface UdpSender {
  host: string;
  port: number;
}

export class UdpTransport implements FrameTransport {
  private readonly listeners: ((frame: Uint8Array, from: UdpSender) => void)[] = [];
  private readonly errorListeners: ((e: Error) => void)[] = [];
  private closed = false;
  readonly stats: UdpTransportStats = { framesIn: 0, framesOut: 0, droppedIn: 0 };

  private constructor(
    private readonly socket: Socket,
    readonly localPort: number,
    readonly peerHost: string,
    readonly peerPort: number,
    private readonly maxFrame: number,
  ) {
    socket.on("message", (msg, rinfo) => {
      if (msg.length === 0 || msg.length > this.maxFrame) {
        this.stats.droppedIn++;
        return;
      }
      this.stats.framesIn++;
      const frame = new Uint8Array(msg.buffer.slice(msg.byteOffset, msg.byteOffset + msg.length));
      const from = { host: rinfo.address, port: rinfo.port };
      for (const cb of [...this.listeners]) cb(frame, from);
    });
    socket.on("error", (e) => {
      for (const cb of [...this.errorListeners]) cb(e);
    });
  }

  /** Binds the listen port; rejects (e.g. EADDRINUSE) if it cannot. */
  static open(opts: UdpTransportOptions): Promise<UdpTransport> {
    const maxFrame = opts.maxFrame ?? MAX_FRAME;
    const socket = createSocket({ type: "udp4" });
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => {
        socket.close();
        reject(e);
      };
      socket.once("error", fail);
      socket.bind(opts.listenPort, opts.listenHost ?? "127.0.0.1", () => {
        socket.off("error", fail);
        resolve(new UdpTransport(socket, socket.address().port, opts.peerHost ?? "127.0.0.1", opts.peerPort, maxFrame));
      });
    });
  }

  /** Sends to the peer; `done` is called once the socket has handed the datagram to the system. */
  send(frame: Uint8Array, done?: (e: Error | null) => void): void {
    this.sendTo(frame, { host: this.peerHost, port: this.peerPort }, done);
  }

  /** Sends to any address (an answer to a sender, a client's choice among endpoints). */
  sendTo(frame: Uint8Array, to: UdpSender, done?: (e: Error | null) => void): void {
    if (this.closed) throw new Error("udp transport is closed");
    if (frame.length === 0 || frame.length > this.maxFrame) throw new RangeError(`a frame must be 1 to ${this.maxFrame} bytes, got ${frame.length}`);
    this.stats.framesOut++;
    this.socket.send(frame, to.port, to.host, done ? (e) => done(e ?? null) : undefined);
  }

  onFrame(cb: (frame: Uint8Array, from: UdpSender) => void): () => void {
    this.listeners.push(cb);
    return () => {
      const k = this.listeners.indexOf(cb);
      if (k >= 0) this.listeners.splice(k, 1);
    };
  }

  /** Socket errors after open (rare for UDP on localhost). */
  onError(cb: (e: Error) => void): () => void {
    this.errorListeners.push(cb);
    return () => {
      const k = this.errorListeners.indexOf(cb);
      if (k >= 0) this.errorListeners.splice(k, 1);
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
