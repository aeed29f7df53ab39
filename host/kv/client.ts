// A kv client over an abstract frame transport (docs/kv-protocol.md). One
// request is in flight at a time; a request that gets no reply within the
// timeout is resent unchanged (same request number, same bytes) up to
// `retries` times, so the server executes it at most once. Time comes from an
// injectable timer, so with a fake transport and fake timers the client is
// fully deterministic.

import {
  decodeListValue, decodeReply, decodeStats, encodeRequest, KV_MAX_KEY, KvProtocolError, Op, opName, parseDecimal,
  REPLY_FLAG_MORE, REQ_FLAG_EXPECT_ABSENT, request, Status, statusName, type KvReply, type KvRequest, type KvStats,
} from "./protocol.js";

import type { FrameTransport } from "../net/frame-transport.js";

export interface Timers {
  setTimeout(cb: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (cb, ms) => setTimeout(cb, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Things the client did, for --verbose output and tests. */
export type ClientEvent =
  | { type: "send"; op: Op; requestNumber: number; attempt: number }
  | { type: "reply"; op: Op; requestNumber: number; status: Status; replayed: boolean }
  | { type: "ignored"; reason: string };

export interface KvClientOptions {
  transport: FrameTransport;
  clientId: number;
  /** Milliseconds to wait for each reply (default 500). */
  timeoutMs?: number;
  /** Resends after the first attempt (default 5). */
  retries?: number;
  /** The number of the first request (default 1); hello() replaces it with the server's last + 1. */
  firstRequestNumber?: number;
  timers?: Timers;
  onEvent?: (e: ClientEvent) => void;
  /**
   * Awaited when a request got no reply in time, before it is resent: a
   * client of a replicated VM finds the live replica here (endpoints.ts).
   * A reply that comes meanwhile still counts; a failure here is ignored.
   */
  beforeResend?: () => Promise<void> | void;
}

/** No reply came after every attempt. The request may or may not have been executed. */
export class KvTimeoutError extends Error {
  constructor(readonly op: Op, readonly requestNumber: number, readonly attempts: number, timeoutMs: number) {
    super(`no reply to ${opName(op)} (request ${requestNumber}) after ${attempts} attempt${attempts === 1 ? "" : "s"} of ${timeoutMs} ms`);
    this.name = "KvTimeoutError";
  }
}

/** The server answered with a status the operation does not turn into a result. */
export class KvServerError extends Error {
  constructor(readonly reply: KvReply) {
    super(`${opName(reply.op)} (request ${reply.requestNumber}): the server answered ${statusName(reply.status)}`);
    this.name = "KvServerError";
  }
  get status(): Status {
    return this.reply.status;
  }
}

export class KvClosedError extends Error {
  constructor() {
    super("the kv client is closed");
    this.name = "KvClosedError";
  }
}

interface Pending {
  op: Op;
  requestNumber: number;
  resolve: (r: KvReply) => void;
  reject: (e: Error) => void;
  timer: unknown;
}

const text = new TextEncoder();
const bytes = (v: Uint8Array | string) => (typeof v === "string" ? text.encode(v) : v);

export class KvClient {
  readonly clientId: number;
  private readonly transport: FrameTransport;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly timers: Timers;
  private readonly onEvent?: (e: ClientEvent) => void;
  private readonly beforeResend?: () => Promise<void> | void;
  private next: number;
  private pending: Pending | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly unsubscribe: () => void;
  private closed = false;
  /** Counters: frames sent (resends included), resends, frames ignored. */
  readonly counters = { sent: 0, resent: 0, ignored: 0 };

  constructor(opts: KvClientOptions) {
    if (!Number.isInteger(opts.clientId) || opts.clientId < 1 || opts.clientId > 0xffffffff) {
      throw new RangeError(`client id must be 1..4294967295, got ${opts.clientId}`);
    }
    const first = opts.firstRequestNumber ?? 1;
    if (!Number.isInteger(first) || first < 1 || first > 0xffffffff) throw new RangeError(`first request number must be 1..4294967295, got ${first}`);
    this.timeoutMs = opts.timeoutMs ?? 500;
    this.retries = opts.retries ?? 5;
    if (!(this.timeoutMs > 0)) throw new RangeError(`timeout must be positive, got ${this.timeoutMs}`);
    if (!Number.isInteger(this.retries) || this.retries < 0) throw new RangeError(`retries must be a non-negative integer, got ${this.retries}`);
    this.clientId = opts.clientId;
    this.transport = opts.transport;
    this.timers = opts.timers ?? realTimers;
    this.onEvent = opts.onEvent;
    this.beforeResend = opts.beforeResend;
    this.next = first;
    this.unsubscribe = this.transport.onFrame((f) => this.onFrame(f));
  }

  /** The number the next request will carry. */
  get nextRequestNumber(): number {
    return this.next;
  }

  /** Stops listening; a request in flight fails with KvClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    const p = this.pending;
    if (p) {
      this.timers.clearTimeout(p.timer);
      this.pending = null;
      p.reject(new KvClosedError());
    }
  }

  /**
   * Sends one request (taking the next request number unless it is HELLO) and
   * resolves to the server's reply, whatever its status. Requests are queued:
   * one is in flight at a time.
   */
  call(op: Op, fields: Partial<Pick<KvRequest, "key" | "value" | "value2" | "flags">> = {}): Promise<KvReply> {
    const run = this.queue.then(() => this.exchange(op, fields));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private exchange(op: Op, fields: Partial<Pick<KvRequest, "key" | "value" | "value2" | "flags">>): Promise<KvReply> {
    if (this.closed) return Promise.reject(new KvClosedError());
    let n = 0;
    if (op !== Op.Hello) {
      if (this.next > 0xffffffff) return Promise.reject(new RangeError("request numbers exhausted for this client id"));
      n = this.next;
    }
    // Encoding may refuse the fields (a key too long...): that uses up no request number.
    const frame = encodeRequest(request(op, this.clientId, n, fields));
    if (op !== Op.Hello) this.next++;
    return new Promise<KvReply>((resolve, reject) => {
      const p: Pending = { op, requestNumber: n, resolve, reject, timer: undefined };
      this.pending = p;
      let attempt = 0;
      const attemptOnce = () => {
        if (this.pending !== p) return;
        if (attempt > this.retries) {
          this.pending = null;
          reject(new KvTimeoutError(op, n, attempt, this.timeoutMs));
          return;
        }
        attempt++;
        this.counters.sent++;
        if (attempt > 1) this.counters.resent++;
        this.onEvent?.({ type: "send", op, requestNumber: n, attempt });
        p.timer = this.timers.setTimeout(expired, this.timeoutMs);
        try {
          this.transport.send(frame);
        } catch (e) {
          this.timers.clearTimeout(p.timer);
          this.pending = null;
          reject(e as Error);
        }
      };
      const expired = () => {
        if (this.pending !== p) return;
        const hook = this.beforeResend;
        if (!hook || attempt > this.retries) return attemptOnce();
        // No timer runs while the hook works: a reply that comes meanwhile settles the request.
        let r: Promise<void> | void;
        try {
          r = hook();
        } catch {
          return attemptOnce();
        }
        if (r instanceof Promise) r.then(attemptOnce, attemptOnce);
        else attemptOnce();
      };
      attemptOnce();
    });
  }

  private onFrame(frame: Uint8Array): void {
    let reply: KvReply;
    try {
      reply = decodeReply(frame);
    } catch (e) {
      this.ignore(e instanceof KvProtocolError ? `malformed frame: ${e.message}` : String(e));
      return;
    }
    const p = this.pending;
    if (reply.clientId !== this.clientId) return this.ignore(`reply for client ${reply.clientId}`);
    if (!p) return this.ignore(`reply to request ${reply.requestNumber} with nothing in flight`);
    if (reply.requestNumber !== p.requestNumber || reply.op !== p.op) {
      return this.ignore(`reply to ${opName(reply.op)} request ${reply.requestNumber} while waiting for ${opName(p.op)} request ${p.requestNumber}`);
    }
    this.timers.clearTimeout(p.timer);
    this.pending = null;
    this.onEvent?.({ type: "reply", op: reply.op, requestNumber: reply.requestNumber, status: reply.status, replayed: (reply.flags & 1) !== 0 });
    p.resolve(reply);
  }

  private ignore(reason: string): void {
    this.counters.ignored++;
    this.onEvent?.({ type: "ignored", reason });
  }

  // ---- operations: results for the statuses an operation expects, KvServerError for the others

  private async expect(op: Op, fields: Partial<Pick<KvRequest, "key" | "value" | "value2" | "flags">>, ok: Status[]): Promise<KvReply> {
    const r = await this.call(op, fields);
    if (!ok.includes(r.status)) throw new KvServerError(r);
    return r;
  }

  /** Asks the server for its last request number for this client and continues after it; returns that number. */
  async hello(): Promise<number> {
    const r = await this.expect(Op.Hello, {}, [Status.Ok]);
    if (r.result >= this.next) this.next = r.result + 1;
    return r.result;
  }

  /** The value, or undefined if the key does not exist. */
  async get(key: Uint8Array | string): Promise<Uint8Array | undefined> {
    const r = await this.expect(Op.Get, { key: bytes(key) }, [Status.Ok, Status.NotFound]);
    return r.status === Status.Ok ? r.value : undefined;
  }

  /** Stores the value; resolves to true if the key was created. */
  async put(key: Uint8Array | string, value: Uint8Array | string): Promise<boolean> {
    return (await this.expect(Op.Put, { key: bytes(key), value: bytes(value) }, [Status.Ok])).result === 1;
  }

  /** Deletes the key; resolves to false if it did not exist. */
  async del(key: Uint8Array | string): Promise<boolean> {
    return (await this.expect(Op.Del, { key: bytes(key) }, [Status.Ok, Status.NotFound])).status === Status.Ok;
  }

  /** Adds delta (default 1) to the decimal integer under the key (0 if absent); resolves to the new value. */
  async incr(key: Uint8Array | string, delta?: bigint | number | string): Promise<bigint> {
    const value = delta === undefined ? new Uint8Array(0) : text.encode(String(delta));
    const r = await this.expect(Op.Incr, { key: bytes(key), value }, [Status.Ok]);
    const v = parseDecimal(r.value);
    if (v === undefined) throw new KvProtocolError("value", 24, "an INCR reply's value is not a decimal integer");
    return v;
  }

  /**
   * Sets the key to `next` if its value is `expected` (null: if it does not exist).
   * Resolves to { ok: true } or { ok: false, current } (current undefined: the key does not exist).
   */
  async cas(key: Uint8Array | string, expected: Uint8Array | string | null, next: Uint8Array | string): Promise<{ ok: boolean; current?: Uint8Array }> {
    const fields = expected === null
      ? { key: bytes(key), value2: bytes(next), flags: REQ_FLAG_EXPECT_ABSENT }
      : { key: bytes(key), value: bytes(expected), value2: bytes(next) };
    const r = await this.expect(Op.Cas, fields, [Status.Ok, Status.Mismatch]);
    if (r.status === Status.Ok) return { ok: true };
    return { ok: false, current: r.result === 1 ? r.value : undefined };
  }

  async count(): Promise<number> {
    return (await this.expect(Op.Count, {}, [Status.Ok])).result;
  }

  /** One LIST page: keys with the prefix sorting after the cursor, and whether more remain. */
  async listPage(prefix: Uint8Array | string = "", cursor: Uint8Array | string = ""): Promise<{ keys: Uint8Array[]; more: boolean }> {
    const r = await this.expect(Op.List, { key: bytes(prefix), value: bytes(cursor) }, [Status.Ok]);
    const keys = decodeListValue(r.value);
    if (keys.length !== r.result) throw new KvProtocolError("result", 20, `LIST says ${r.result} keys but its value holds ${keys.length}`);
    return { keys, more: (r.flags & REPLY_FLAG_MORE) !== 0 };
  }

  /** Every key with the prefix, following MORE page by page. */
  async list(prefix: Uint8Array | string = ""): Promise<Uint8Array[]> {
    const all: Uint8Array[] = [];
    let cursor: Uint8Array = new Uint8Array(0);
    for (;;) {
      const page = await this.listPage(prefix, cursor);
      all.push(...page.keys);
      if (!page.more || page.keys.length === 0) return all;
      cursor = page.keys[page.keys.length - 1];
      if (cursor.length > KV_MAX_KEY) return all;
    }
  }

  async ping(payload: Uint8Array | string = ""): Promise<Uint8Array> {
    return (await this.expect(Op.Ping, { value: bytes(payload) }, [Status.Ok])).value;
  }

  async stats(): Promise<KvStats> {
    return decodeStats((await this.expect(Op.Stats, {}, [Status.Ok])).value);
  }
}
