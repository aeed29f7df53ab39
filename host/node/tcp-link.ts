// The logging channel over TCP, between processes or hosts
// (docs/ft-protocol.md, "Over TCP"). The bytes are the channel's frames as
// they are (host/ft/wire.ts), read as a stream (FramedLink "stream" framing:
// a chunk may hold part of a frame or many). With a 32-byte pre-shared key
// every frame carries a keyed BLAKE3 tag, so a peer without the key fails on
// its very first frame: the listener hands a connection over (onLink) only
// once its first frame has been verified, and refuses anything else without
// ever throwing — a bad peer costs one socket, never the listener.

import { statSync, readFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { FramedLink, type LinkStats, type PeerLink } from "../ft/link.js";
import { frameTagger, type Frame, type FrameTagger } from "../ft/wire.js";

/** Bytes a link may queue unsent before it gives up on a peer that does not read. */
export const DEFAULT_MAX_BUFFERED = 64 << 20;
/** How long the listener waits for a connection's first valid frame. */
export const DEFAULT_FIRST_FRAME_MS = 10_000;
/** After close(), how long the socket may take to flush what was sent before it is destroyed. */
const CLOSE_GRACE_MS = 2_000;
export const KEY_BYTES = 32;

export interface TcpLinkOptions {
  /** The channel's pre-shared 32-byte key; null or absent: frames are tagged with plain BLAKE3 (docs/ft-protocol.md). */
  key?: Uint8Array | null;
  /** Bytes queued unsent above which the link closes (default 64 MiB). */
  maxBuffered?: number;
}

export interface ListenOptions extends TcpLinkOptions {
  host: string;
  /** 0: any free port (see the result's port). */
  port: number;
  /** Each authenticated connection, called when its first frame has been verified; that frame goes to the onFrame listeners registered here. */
  onLink: (link: TcpLink, peer: string) => void;
  /** A connection dropped before its first valid frame (wrong key, not this protocol, silence); the listener goes on. */
  onRefused?: (peer: string, reason: string) => void;
  /** Time allowed for a connection's first valid frame (default 10 s). */
  firstFrameMs?: number;
}

export interface Listener {
  readonly port: number;
  /** Stops listening and closes every connection it accepted, handed over or not. */
  close(): Promise<void>;
}

export interface ConnectOptions extends TcpLinkOptions {
  host: string;
  port: number;
  /** Give up on a connection not made within this time (default 10 s). */
  timeoutMs?: number;
}

/** A connection the listener or connectLink could not make; `code` is Node's (ECONNREFUSED, ...) when there is one. */
export class TcpLinkError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "TcpLinkError";
  }
}

/** Why a connection went away, in words a log reader can act on. */
export function socketErrorReason(err: NodeJS.ErrnoException, where?: string): string {
  switch (err.code) {
    case "ECONNRESET":
      return "the peer's connection was reset";
    case "EPIPE":
      return "the peer closed the connection while we were sending";
    case "ETIMEDOUT":
      return "the connection timed out";
    case "ECONNREFUSED":
      return `nothing listens on ${where ?? "that address"}`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `${where ?? "the peer"} is unreachable`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `no address for ${where ?? "that host"}`;
    case "EADDRINUSE":
      return `${where ?? "the address"} is already in use`;
    default:
      return err.code ? `${err.code}: ${err.message}` : err.message;
  }
}

/**
 * One TCP connection carrying the channel. A FramedLink does the frames; this
 * adds the socket's life (one onClose for 'end', 'error' and 'close'), the
 * send-buffer bound, and holds frames that arrive before any onFrame listener
 * is registered, so none is lost between a connection and its user.
 */
export class TcpLink implements PeerLink {
  private readonly framed: FramedLink;
  private frameCbs: ((f: Frame) => void)[] = [];
  private closeCbs: ((reason: string) => void)[] = [];
  private early: Frame[] = [];
  private closeReason: string | null = null;
  private destroyNow = false;
  /** Called with the first valid frame, before it is delivered (the listener's hand-over). */
  firstFrame: (() => void) | null = null;

  constructor(
    private readonly socket: Socket,
    tagger: FrameTagger,
    /** "host:port" of the other end. */
    readonly peer: string,
    private readonly maxBuffered: number,
  ) {
    // Small frames (ACKs, PROGRESS) must leave at once: the Output Rule holds
    // the guest's outputs until an ACK arrives (docs/ft.md).
    socket.setNoDelay(true);
    this.framed = new FramedLink(
      tagger,
      (bytes) => this.transmit(bytes),
      () => this.shutdown(),
      "stream",
    );
    this.framed.onFrame((f) => this.deliver(f));
    this.framed.onClose((reason) => this.closed_(reason));
    socket.on("data", (chunk: Buffer) => {
      try {
        this.framed.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (e) {
        // A listener's bug must not take the process down from an I/O callback; it ends this link, visibly.
        this.framed.close(`a frame listener threw: ${(e as Error).message}`);
      }
    });
    socket.on("end", () => this.framed.ended("the peer closed the connection"));
    socket.on("error", (err: NodeJS.ErrnoException) => this.framed.ended(socketErrorReason(err, peer)));
    socket.on("close", () => this.framed.ended("the connection closed"));
  }

  get closed(): boolean {
    return this.framed.closed;
  }

  get stats(): LinkStats {
    return this.framed.stats;
  }

  /** Bytes queued in the socket, not yet handed to the kernel. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  send(f: Frame): void {
    this.framed.send(f);
  }

  /** Frames that arrived before the first listener are delivered to it, in order, in a microtask (after the caller has registered the rest). */
  onFrame(cb: (f: Frame) => void): void {
    this.frameCbs.push(cb);
    if (this.early.length > 0 && this.frameCbs.length === 1) queueMicrotask(() => this.flushEarly());
  }

  /** Called once with the reason; registered after the close, it is called in a microtask. */
  onClose(cb: (reason: string) => void): void {
    this.closeCbs.push(cb);
    const reason = this.closeReason;
    if (reason !== null) queueMicrotask(() => cb(reason));
  }

  close(reason = "closed"): void {
    this.framed.close(reason);
  }

  private deliver(f: Frame): void {
    if (this.firstFrame) {
      const hand = this.firstFrame;
      this.firstFrame = null;
      hand();
      if (this.closed) return;
    }
    if (this.frameCbs.length === 0 || this.early.length > 0) {
      this.early.push(f);
      return;
    }
    for (const cb of this.frameCbs) cb(f);
  }

  private flushEarly(): void {
    while (this.early.length > 0 && !this.closed) {
      const f = this.early.shift()!;
      for (const cb of this.frameCbs) cb(f);
    }
  }

  private transmit(bytes: Uint8Array): void {
    this.socket.write(bytes);
    // The kernel's buffers are full and the peer still does not read: holding
    // more would only grow this process; a backup that far behind is lost anyway.
    if (this.socket.writableLength > this.maxBuffered) {
      this.destroyNow = true;
      this.framed.close(`the send buffer holds ${this.socket.writableLength} bytes, over the limit of ${this.maxBuffered}: the peer is not reading`);
    }
  }

  private shutdown(): void {
    if (this.destroyNow || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    // end() sends what is queued (a BYE) and then FIN; a peer that never
    // reads must not keep the socket past the grace period.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private closed_(reason: string): void {
    this.closeReason = reason;
    for (const cb of this.closeCbs) cb(reason);
  }

  /** Ends the link at once, without flushing (a refused peer, the listener closing); the socket goes even if the link was closed already. */
  destroy(reason: string): void {
    this.destroyNow = true;
    this.framed.close(reason);
    this.socket.destroy();
  }
}

function checkKey(key: Uint8Array | null | undefined): void {
  if (key != null && (!(key instanceof Uint8Array) || key.length !== KEY_BYTES)) {
    throw new RangeError(`the channel key must be ${KEY_BYTES} bytes, got ${key instanceof Uint8Array ? key.length : typeof key}`);
  }
}

/**
 * Listens for peers. Every connection gets a link at once, but onLink sees it
 * only after its first frame has passed the reader (tag, HELLO first); until
 * then nothing of it reaches the caller, and whatever goes wrong is reported
 * to onRefused and the connection dropped.
 */
export async function listenLink(opts: ListenOptions): Promise<Listener> {
  checkKey(opts.key);
  const tagger = await frameTagger(opts.key ?? null);
  const maxBuffered = opts.maxBuffered ?? DEFAULT_MAX_BUFFERED;
  const firstFrameMs = opts.firstFrameMs ?? DEFAULT_FIRST_FRAME_MS;
  const links = new Set<TcpLink>();
  const refuse = (peer: string, reason: string) => {
    try {
      opts.onRefused?.(peer, reason);
    } catch {
      // The caller's report failing must not stop the listener.
    }
  };

  const server = createServer((socket) => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const link = new TcpLink(socket, tagger, peer, maxBuffered);
    links.add(link);
    let accepted = false;
    const timer = setTimeout(() => link.destroy(`no valid first frame within ${firstFrameMs} ms`), firstFrameMs);
    timer.unref();
    link.firstFrame = () => {
      accepted = true;
      clearTimeout(timer);
      try {
        opts.onLink(link, peer);
      } catch (e) {
        link.destroy(`onLink threw: ${(e as Error).message}`);
        refuse(peer, `onLink threw: ${(e as Error).message}`);
      }
    };
    link.onClose((reason) => {
      links.delete(link);
      clearTimeout(timer);
      if (!accepted) {
        link.destroy(reason);
        refuse(peer, reason);
      }
    });
  });
  // A failed accept (EMFILE, ...) concerns one connection, not the listener.
  server.on("error", () => {});

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new TcpLinkError(`ft tcp: cannot listen: ${socketErrorReason(err, `${opts.host}:${opts.port}`)}`, err.code));
    server.once("error", onError);
    server.listen(opts.port, opts.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const l of [...links]) l.destroy("the listener closed");
      }),
  };
}

/** Connects to a listener; the link is ready to send (send HELLO first: the listener hands the link over on it). */
export async function connectLink(opts: ConnectOptions): Promise<TcpLink> {
  checkKey(opts.key);
  const tagger = await frameTagger(opts.key ?? null);
  const where = `${opts.host}:${opts.port}`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host: opts.host, port: opts.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new TcpLinkError(`ft tcp: no connection to ${where} within ${timeoutMs} ms`, "ETIMEDOUT"));
    }, timeoutMs);
    s.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new TcpLinkError(`ft tcp: ${socketErrorReason(err, where)}`, err.code));
    });
    s.once("connect", () => {
      clearTimeout(timer);
      s.removeAllListeners("error");
      resolve(s);
    });
  });
  return new TcpLink(socket, tagger, where, opts.maxBuffered ?? DEFAULT_MAX_BUFFERED);
}

// ---------------------------------------------------------------- key file

export interface KeyFile {
  key: Uint8Array;
  /** Set when the file's mode lets group or others read or write it; the caller shows it. */
  warning: string | null;
}

/**
 * A channel key file (`--key FILE`): 64 hex digits (32 bytes), either case,
 * with any whitespace before, after or between (a trailing newline, or the
 * digits split into groups). Throws an Error naming the file and what is wrong.
 */
export function readKeyFile(path: string): KeyFile {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, "latin1");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT") throw new Error(`key file ${path}: no such file`);
    if (err.code === "EACCES") throw new Error(`key file ${path}: permission denied`);
    if (err.code === "EISDIR") throw new Error(`key file ${path}: is a directory`);
    throw new Error(`key file ${path}: ${err.message}`);
  }
  const digits = text.replace(/\s+/g, "");
  const bad = digits.search(/[^0-9a-fA-F]/);
  if (bad >= 0) throw new Error(`key file ${path}: ${JSON.stringify(digits[bad])} is not a hex digit (a key is 64 hex digits)`);
  if (digits.length !== 2 * KEY_BYTES) throw new Error(`key file ${path}: ${digits.length} hex digits, a key is exactly 64 (32 bytes)`);
  const key = new Uint8Array(KEY_BYTES);
  for (let i = 0; i < KEY_BYTES; i++) key[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  // Windows has no such mode bits; elsewhere, a key others can read is not a secret.
  const warning =
    process.platform !== "win32" && (mode & 0o077) !== 0
      ? `key file ${path}: group or others may access it (mode ${(mode & 0o777).toString(8).padStart(3, "0")}); chmod 600 ${path}`
      : null;
  return { key, warning };
}
