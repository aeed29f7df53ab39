// The kv server's semantics in TypeScript (docs/kv-protocol.md), without the
// disk: what guests/kv/kv.c answers, request for request. Used as the fake
// server behind the client tests and as the oracle the guest's replies are
// compared with. The disk-related STATS counters: generation is a constructor
// option (1, a fresh disk, by default; 0 for a server without a disk) and the
// log record count is the number of records the server would have logged (it
// never checkpoints, which the guest does only after about 1300 records).
// restart() models a reboot of the guest: the store and what the log holds
// about each client survive, the request counters and the replies that were
// only in memory do not.

import {
  compareKeys, crc32, encodeListValue, encodeReply, encodeStats, KIND_REQUEST, KV_HEADER, KV_MAGIC, KV_MAX_CLIENTS,
  KV_MAX_KEY, KV_MAX_KEYS, KV_MAX_LIST_BYTES, KV_MAX_VALUE, KV_VERSION, Op, OP_NAMES, parseDecimal, REPLY_FLAG_MORE,
  REPLY_FLAG_REPLAYED, REQ_FLAG_EXPECT_ABSENT, Status, type KvReply,
} from "./protocol.js";

interface ClientEntry {
  last: number;
  requestCrc: number;
  reply: Uint8Array | null;
  stamp: number;
}

const u16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
const keyId = (k: Uint8Array) => Buffer.from(k).toString("hex");
const EMPTY = new Uint8Array(0);
const MIN_I64 = -(2n ** 63n);
const MAX_I64 = 2n ** 63n - 1n;

/** A result before it becomes a reply: status, result number, value, flags, and whether the store changed. */
interface Outcome { status: Status; result?: number; value?: Uint8Array; flags?: number; mutated?: boolean }

export interface KvModelOptions {
  /** The disk generation STATS reports (default 1); 0 models a server without a disk. */
  generation?: number;
}

export class KvModel {
  private readonly store = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  private readonly clients = new Map<number, ClientEntry>();
  /** Per client, what the last logged record says, and the record's position in the log. */
  private readonly logged = new Map<number, ClientEntry & { order: number }>();
  private stamp = 0;
  readonly generation: number;
  requests = 0;
  replays = 0;
  logRecords = 0;
  dropped = 0;

  constructor(opts: KvModelOptions = {}) {
    this.generation = opts.generation ?? 1;
  }

  /**
   * A reboot: the store stays (it is on the disk; without a disk it is lost
   * too), the clients become what the log says (the most recently logged
   * KV_MAX_CLIENTS of them, in log order), the counters start again.
   */
  restart(): void {
    this.requests = this.replays = this.dropped = 0;
    if (this.generation === 0) {
      // No disk: nothing survives.
      this.store.clear();
      this.logged.clear();
    }
    this.clients.clear();
    this.stamp = 0;
    const entries = [...this.logged].sort((a, b) => a[1].order - b[1].order);
    for (const [id, e] of entries) {
      if (this.clients.size >= KV_MAX_CLIENTS) this.evict();
      this.clients.set(id, { last: e.last, requestCrc: e.requestCrc, reply: e.reply, stamp: ++this.stamp });
    }
  }

  get keys(): number {
    return this.store.size;
  }

  /** The server's value for a key (for tests). */
  peek(key: Uint8Array): Uint8Array | undefined {
    return this.store.get(keyId(key))?.value;
  }

  /** Handles one frame: the reply frame, or null when the server drops the frame without a reply. */
  handle(frame: Uint8Array): Uint8Array | null {
    const b = frame;
    if (b.length < KV_HEADER || KV_MAGIC.some((m, k) => b[k] !== m) || b[5] !== KIND_REQUEST) {
      this.dropped++;
      return null;
    }
    const op = b[6];
    const clientId = u32(b, 8);
    const n = u32(b, 12);
    const reply = (o: Outcome): Uint8Array => {
      // The opcode is echoed as it came, even one the protocol does not define (encodeReply refuses those).
      const f = encodeReply(this.toReply(Op.Ping, clientId, n, o));
      f[6] = op;
      return f;
    };
    if (b[4] !== KV_VERSION) return reply({ status: Status.BadVersion });
    if (clientId === 0) return reply({ status: Status.BadRequest });
    if (op === Op.Hello) {
      if (n !== 0 || !this.wellFormed(b) || u16(b, 16) + u16(b, 18) + u16(b, 20) !== 0 || b[7] !== 0) return reply({ status: Status.BadRequest });
      return reply({ status: Status.Ok, result: this.clients.get(clientId)?.last ?? 0 });
    }
    if (n === 0) return reply({ status: Status.BadRequest });

    const crc = crc32(b);
    let c = this.clients.get(clientId);
    if (c) {
      c.stamp = ++this.stamp;
      if (n < c.last || (n === c.last && (c.requestCrc !== crc || !c.reply))) return reply({ status: Status.Stale });
      if (n === c.last) {
        this.replays++;
        const again = c.reply!.slice();
        again[18] |= REPLY_FLAG_REPLAYED;
        return again;
      }
    } else {
      if (this.clients.size >= KV_MAX_CLIENTS) this.evict();
      c = { last: 0, requestCrc: 0, reply: null, stamp: ++this.stamp };
      this.clients.set(clientId, c);
    }
    this.requests++;
    const outcome = this.execute(b, op);
    const out = reply(outcome);
    if (outcome.status === Status.IoError) return out;
    c.last = n;
    c.requestCrc = crc;
    c.reply = out.slice();
    if (outcome.mutated) {
      this.logRecords++;
      this.logged.set(clientId, { last: n, requestCrc: crc, reply: out.slice(), stamp: 0, order: this.logRecords });
    }
    return out;
  }

  private toReply(op: number, clientId: number, requestNumber: number, o: Outcome): KvReply {
    return { op: op as Op, status: o.status, clientId, requestNumber, flags: o.flags ?? 0, result: o.result ?? 0, value: o.value ?? EMPTY };
  }

  private wellFormed(b: Uint8Array): boolean {
    return u16(b, 22) === 0 && b.length === KV_HEADER + u16(b, 16) + u16(b, 18) + u16(b, 20);
  }

  private evict(): void {
    let oldest: number | undefined;
    let stamp = Infinity;
    for (const [id, e] of this.clients) {
      if (e.stamp < stamp) {
        stamp = e.stamp;
        oldest = id;
      }
    }
    this.clients.delete(oldest!);
  }

  private execute(b: Uint8Array, op: number): Outcome {
    if (!this.wellFormed(b) || !Object.hasOwn(OP_NAMES, op)) return { status: Status.BadRequest };
    const kl = u16(b, 16), vl = u16(b, 18), v2l = u16(b, 20);
    const key = b.subarray(KV_HEADER, KV_HEADER + kl);
    const value = b.subarray(KV_HEADER + kl, KV_HEADER + kl + vl);
    const value2 = b.subarray(KV_HEADER + kl + vl, KV_HEADER + kl + vl + v2l);
    const flags = b[7];
    const has = { key: kl > 0, value: vl > 0, value2: v2l > 0 };
    // Shape: which fields an operation takes (else BAD_REQUEST), then the length limits (TOO_LARGE).
    const shape: Record<Op, [key: "req" | "opt" | "no", value: boolean, value2: boolean, flags: number]> = {
      [Op.Get]: ["req", false, false, 0], [Op.Put]: ["req", true, false, 0], [Op.Del]: ["req", false, false, 0],
      [Op.Incr]: ["req", true, false, 0], [Op.Cas]: ["req", true, true, REQ_FLAG_EXPECT_ABSENT],
      [Op.Count]: ["no", false, false, 0], [Op.List]: ["opt", true, false, 0], [Op.Ping]: ["no", true, false, 0],
      [Op.Stats]: ["no", false, false, 0], [Op.Hello]: ["no", false, false, 0],
    };
    const [k, v, v2, fl] = shape[op as Op];
    if (flags & ~fl) return { status: Status.BadRequest };
    if ((k === "req" && !has.key) || (k === "no" && has.key) || (!v && has.value) || (!v2 && has.value2)) return { status: Status.BadRequest };
    if (op === Op.Cas && flags & REQ_FLAG_EXPECT_ABSENT && has.value) return { status: Status.BadRequest };
    if (kl > KV_MAX_KEY) return { status: Status.TooLarge };
    if (op === Op.List ? vl > KV_MAX_KEY : vl > KV_MAX_VALUE) return { status: Status.TooLarge };
    if (v2l > KV_MAX_VALUE) return { status: Status.TooLarge };

    const id = keyId(key);
    const cur = this.store.get(id);
    const full = !cur && this.store.size >= KV_MAX_KEYS;
    const set = (val: Uint8Array) => this.store.set(id, { key: key.slice(), value: val.slice() });
    switch (op as Op) {
      case Op.Get:
        return cur ? { status: Status.Ok, value: cur.value } : { status: Status.NotFound };
      case Op.Put:
        if (full) return { status: Status.Full };
        set(value);
        return { status: Status.Ok, result: cur ? 0 : 1, mutated: true };
      case Op.Del:
        if (!cur) return { status: Status.NotFound };
        this.store.delete(id);
        return { status: Status.Ok, mutated: true };
      case Op.Incr: {
        const delta = vl === 0 ? 1n : parseDecimal(value);
        if (delta === undefined) return { status: Status.NotNumber };
        const old = cur ? parseDecimal(cur.value) : 0n;
        if (old === undefined) return { status: Status.NotNumber };
        if (full) return { status: Status.Full };
        const sum = old + delta;
        if (sum < MIN_I64 || sum > MAX_I64) return { status: Status.Range };
        const text = new TextEncoder().encode(sum.toString());
        set(text);
        return { status: Status.Ok, value: text, result: cur ? 0 : 1, mutated: true };
      }
      case Op.Cas: {
        const absent = (flags & REQ_FLAG_EXPECT_ABSENT) !== 0;
        if (absent ? cur : !cur || compareKeys(cur.value, value) !== 0) {
          return { status: Status.Mismatch, value: cur?.value ?? EMPTY, result: cur ? 1 : 0 };
        }
        if (full) return { status: Status.Full };
        set(value2);
        return { status: Status.Ok, result: cur ? 0 : 1, mutated: true };
      }
      case Op.Count:
        return { status: Status.Ok, result: this.store.size };
      case Op.List: {
        const matches = [...this.store.values()]
          .map((e) => e.key)
          .filter((kk) => kk.length >= kl && compareKeys(kk.subarray(0, kl), key) === 0 && compareKeys(kk, value) > 0)
          .sort(compareKeys);
        const page: Uint8Array[] = [];
        let bytes = 0;
        for (const kk of matches) {
          if (bytes + 1 + kk.length > KV_MAX_LIST_BYTES) break;
          page.push(kk);
          bytes += 1 + kk.length;
        }
        return { status: Status.Ok, value: encodeListValue(page), result: page.length, flags: page.length < matches.length ? REPLY_FLAG_MORE : 0 };
      }
      case Op.Ping:
        return { status: Status.Ok, value };
      case Op.Stats:
        return {
          status: Status.Ok,
          value: encodeStats({
            keys: this.store.size, keyCapacity: KV_MAX_KEYS, clients: this.clients.size, clientCapacity: KV_MAX_CLIENTS,
            generation: this.generation, logRecords: this.generation ? this.logRecords : 0,
            requests: this.requests, replays: this.replays,
          }),
        };
      case Op.Hello:
        return { status: Status.BadRequest }; // handled before the reply cache
    }
  }
}
