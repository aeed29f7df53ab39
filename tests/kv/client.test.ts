// The kv client against the server model (host/kv/model.ts) over a simulated
// network on a virtual clock: results of every operation, resends after lost
// requests and lost replies with at-most-once execution, timeouts, stale
// request numbers and HELLO, and the model's own reply-cache rules.

import { describe, expect, it } from "vitest";
import { KvClient, KvClosedError, KvServerError, KvTimeoutError, type ClientEvent } from "../../host/kv/client.js";
import { KvModel } from "../../host/kv/model.js";
import {
  decodeReply, encodeReply, encodeRequest, KV_MAX_CLIENTS, KV_MAX_KEYS, Op, REPLY_FLAG_REPLAYED, request, Status,
} from "../../host/kv/protocol.js";
import { FakeClock, FakeNetwork } from "../helpers/fake-net.js";

const t = (s: string) => new TextEncoder().encode(s);
const s = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

function world(opts: { clientId?: number; timeoutMs?: number; retries?: number; first?: number; model?: KvModel } = {}) {
  const clock = new FakeClock();
  const model = opts.model ?? new KvModel();
  const net = new FakeNetwork(clock, (f) => model.handle(f));
  const events: ClientEvent[] = [];
  const client = new KvClient({
    transport: net, clientId: opts.clientId ?? 7, timeoutMs: opts.timeoutMs ?? 100, retries: opts.retries ?? 3,
    firstRequestNumber: opts.first, timers: clock, onEvent: (e) => events.push(e),
  });
  const run = <T>(p: Promise<T>) => clock.settle(p);
  return { clock, model, net, client, events, run };
}

describe("kv client operations (against the model)", () => {
  it("get / put / del / incr / cas / count / list / ping / stats / hello", async () => {
    const { client, run } = world();
    expect(await run(client.get("k"))).toBeUndefined();
    expect(await run(client.put("k", "v1"))).toBe(true);
    expect(await run(client.put("k", "v2"))).toBe(false);
    expect(s(await run(client.get("k")))).toBe("v2");
    expect(await run(client.incr("n"))).toBe(1n);
    expect(await run(client.incr("n", 41))).toBe(42n);
    expect(await run(client.incr("n", "-50"))).toBe(-8n);
    await expect(run(client.incr("k"))).rejects.toMatchObject({ status: Status.NotNumber });
    expect(await run(client.cas("k", "nope", "x"))).toEqual({ ok: false, current: t("v2") });
    expect(await run(client.cas("k", "v2", "v3"))).toEqual({ ok: true });
    expect(await run(client.cas("absent", "a", "b"))).toEqual({ ok: false, current: undefined });
    expect(await run(client.cas("fresh", null, "f"))).toEqual({ ok: true });
    expect(await run(client.cas("fresh", null, "g"))).toEqual({ ok: false, current: t("f") });
    expect(await run(client.count())).toBe(3);
    expect((await run(client.list())).map(s)).toEqual(["fresh", "k", "n"]);
    expect((await run(client.list("f"))).map(s)).toEqual(["fresh"]);
    expect(await run(client.del("k"))).toBe(true);
    expect(await run(client.del("k"))).toBe(false);
    expect(s(await run(client.ping("hi")))).toBe("hi");
    const st = await run(client.stats());
    expect(st).toMatchObject({ keys: 2, keyCapacity: KV_MAX_KEYS, clients: 1, clientCapacity: KV_MAX_CLIENTS, requests: 20, replays: 0 });
    expect(st.logRecords).toBe(8); // put x2, incr x3, cas x2, del: the changes, not the refusals
    expect(await run(client.hello())).toBe(20);
    expect(client.nextRequestNumber).toBe(21);
  });

  it("reports RANGE and FULL", async () => {
    const { client, run } = world();
    await run(client.put("big", "9223372036854775807"));
    await expect(run(client.incr("big"))).rejects.toMatchObject({ status: Status.Range });
    expect(s(await run(client.get("big")))).toBe("9223372036854775807");
    for (let k = 1; k < KV_MAX_KEYS; k++) await run(client.put(`key${k}`, ""));
    expect(await run(client.count())).toBe(KV_MAX_KEYS);
    await expect(run(client.put("one-more", "x"))).rejects.toMatchObject({ status: Status.Full });
    expect(await run(client.put("key1", "replace is fine"))).toBe(false);
  });

  it("lists in pages when the keys do not fit in one reply", async () => {
    const { client, run } = world();
    const keys = Array.from({ length: 40 }, (_, k) => `key-${String(k).padStart(2, "0")}-${"x".repeat(40)}`);
    for (const k of [...keys].reverse()) await run(client.put(k, "v"));
    const first = await run(client.listPage());
    expect(first.more).toBe(true);
    expect(first.keys.length).toBe(Math.floor(1024 / 48));
    expect((await run(client.list())).map(s)).toEqual(keys);
    expect((await run(client.list("key-3"))).map(s)).toEqual(keys.slice(30, 40));
  });

  it("queues concurrent calls: one request in flight, numbers in call order", async () => {
    const { client, run, net } = world();
    const all = Promise.all([client.put("a", "1"), client.put("b", "2"), client.get("a")]);
    const [, , a] = await run(all);
    expect(s(a)).toBe("1");
    const numbers = net.events.filter((e) => e.dir === "request").map((e) => decodeReplyNumber(e.frame));
    expect(numbers).toEqual([1, 2, 3]);
    // Each request went out only after the previous reply arrived.
    const times = net.events.map((e) => `${e.dir}@${e.t}`);
    expect(times).toEqual(["request@0", "reply@10", "request@20", "reply@30", "request@40", "reply@50"]);
  });
});

const decodeReplyNumber = (f: Uint8Array) => (f[12] | (f[13] << 8) | (f[14] << 16) | (f[15] << 24)) >>> 0;

describe("kv client retries and at-most-once execution", () => {
  it("resends a lost request with the same number and bytes; the server executes it once", async () => {
    const { client, run, net, model, events } = world();
    net.dropRequest = (i) => i === 0;
    expect(await run(client.incr("n"))).toBe(1n);
    const sent = net.events.flatMap((e) => (e.dir === "request" ? [e] : []));
    expect(sent.map((e) => e.dropped)).toEqual([true, false]);
    expect(sent[1].frame).toEqual(sent[0].frame);
    expect(sent[1].t).toBe(100);
    expect(model.requests).toBe(1);
    expect(client.counters).toEqual({ sent: 2, resent: 1, ignored: 0 });
    expect(events.filter((e) => e.type === "send").map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2]);
  });

  it("resends after a lost reply and gets the remembered reply: INCR is not applied twice", async () => {
    const { client, run, net, model, events } = world();
    net.dropReply = (i) => i === 0;
    expect(await run(client.incr("n", 5))).toBe(5n);
    expect(s(model.peek(t("n")))).toBe("5");
    expect(model.requests).toBe(1);
    expect(model.replays).toBe(1);
    const replies = net.events.filter((e) => e.dir === "reply");
    expect(replies.map((e) => (e.frame[18] & REPLY_FLAG_REPLAYED) !== 0)).toEqual([false, true]);
    expect(events.at(-1)).toEqual({ type: "reply", op: Op.Incr, requestNumber: 1, status: Status.Ok, replayed: true });
    expect(await run(client.incr("n", 5))).toBe(10n);
  });

  it("survives several losses in a row, and a reply that arrives after the resend", async () => {
    const { client, run, net, model, events } = world({ retries: 5 });
    net.dropRequest = (i) => i < 2; // attempts at t=0 and t=100 lost
    net.dropReply = (i) => i === 0; // the attempt at t=200 executes, its reply is lost
    net.replyDelay = (i) => (i === 1 ? 110 : 0); // the reply to t=300's attempt arrives at 430, after t=400's (at 420)
    expect(await run(client.put("k", "v"))).toBe(true);
    expect(model.requests).toBe(1);
    expect(model.replays).toBe(2);
    expect(await run(client.put("k", "w"))).toBe(false);
    expect(s(await run(client.get("k")))).toBe("w");
    // The late duplicate of request 1's reply came while request 2 was in flight: ignored, not taken for it.
    expect(client.counters.ignored).toBe(1);
    expect(events.find((e) => e.type === "ignored")).toEqual({ type: "ignored", reason: "reply to PUT request 1 while waiting for PUT request 2" });
    expect(model.requests).toBe(3);
  });

  it("gives up after retries + 1 attempts with KvTimeoutError; the number stays used", async () => {
    const { client, run, net, model, clock } = world({ retries: 2, timeoutMs: 50 });
    net.dropReply = () => true;
    const err = await run(client.put("k", "v")).catch((e) => e);
    expect(err).toBeInstanceOf(KvTimeoutError);
    expect(err.message).toBe("no reply to PUT (request 1) after 3 attempts of 50 ms");
    expect(clock.now).toBe(150);
    expect(model.requests).toBe(1); // executed once even though no reply got through
    net.dropReply = () => false;
    expect(s(await run(client.get("k")))).toBe("v");
    expect(client.nextRequestNumber).toBe(3);
  });

  it("a request number the server has passed is STALE; HELLO resynchronises", async () => {
    const model = new KvModel();
    const a = world({ model, clientId: 3 });
    for (let k = 0; k < 5; k++) await a.run(a.client.put("k", String(k)));
    const b = world({ model, clientId: 3 }); // a restarted client process with the same id
    const err = await b.run(b.client.put("k", "new")).catch((e) => e);
    expect(err).toBeInstanceOf(KvServerError);
    expect(err.status).toBe(Status.Stale);
    expect(s(model.peek(t("k")))).toBe("4");
    // Request 5 with other content than the remembered request 5 is also STALE, not a replay.
    const c = world({ model, clientId: 3, first: 5 });
    expect(await c.run(c.client.call(Op.Put, { key: t("k"), value: t("other") }))).toMatchObject({ status: Status.Stale });
    expect(await b.run(b.client.hello())).toBe(5);
    expect(b.client.nextRequestNumber).toBe(6);
    expect(await b.run(b.client.put("k", "new"))).toBe(false);
    expect(s(model.peek(t("k")))).toBe("new");
  });

  it("ignores malformed frames, other clients' replies and replies to other requests", async () => {
    const { client, run, net, events } = world();
    const p = client.get("k");
    await new Promise((r) => setImmediate(r)); // the request is in flight
    net.deliver(new Uint8Array(5));
    net.deliver(encodeReply({ op: Op.Get, status: Status.Ok, clientId: 8, requestNumber: 1, flags: 0, result: 0, value: t("x") }));
    net.deliver(encodeReply({ op: Op.Get, status: Status.Ok, clientId: 7, requestNumber: 9, flags: 0, result: 0, value: t("x") }));
    net.deliver(encodeReply({ op: Op.Put, status: Status.Ok, clientId: 7, requestNumber: 1, flags: 0, result: 0, value: t("") }));
    expect(await run(p)).toBeUndefined();
    const ignored = events.filter((e) => e.type === "ignored").map((e) => (e as { reason: string }).reason);
    expect(ignored).toEqual([
      "malformed frame: frame at offset 5: 5 bytes is shorter than the 24-byte header",
      "reply for client 8",
      "reply to GET request 9 while waiting for GET request 1",
      "reply to PUT request 1 while waiting for GET request 1",
    ]);
  });

  it("is deterministic: the same losses give the same frames at the same times", async () => {
    const scenario = async () => {
      const { client, run, net } = world({ retries: 4 });
      net.dropRequest = (i) => i % 3 === 1;
      net.dropReply = (i) => i % 4 === 2;
      for (let k = 0; k < 10; k++) await run(client.incr("c", k));
      await run(client.put("x", "y"));
      return net.events.map((e) => ({ ...e, frame: Buffer.from(e.frame).toString("hex") }));
    };
    const a = await scenario();
    expect(a.filter((e) => e.dir === "request" && e.dropped).length).toBeGreaterThan(2);
    expect(await scenario()).toEqual(a);
  });

  it("close() fails the request in flight and later calls", async () => {
    const { client, net } = world();
    net.dropRequest = () => true;
    const p = client.get("k");
    await new Promise((r) => setImmediate(r));
    client.close();
    await expect(p).rejects.toBeInstanceOf(KvClosedError);
    await expect(client.get("k")).rejects.toBeInstanceOf(KvClosedError);
  });

  it("refuses bad options and does not spend a request number on a request it cannot encode", async () => {
    const { client, run } = world();
    expect(() => new KvClient({ transport: world().net, clientId: 0 })).toThrow(/client id/);
    expect(() => new KvClient({ transport: world().net, clientId: 1, retries: -1 })).toThrow(/retries/);
    await expect(run(client.get("x".repeat(65)))).rejects.toThrow(/key_len at offset 16: 65/);
    expect(client.nextRequestNumber).toBe(1);
  });
});

describe("kv model reply-cache rules", () => {
  const frame = (op: Op, c: number, n: number, f = {}) => encodeRequest(request(op, c, n, f));

  it("remembers errors too, but not HELLO, BAD_VERSION or the zero client", () => {
    const m = new KvModel();
    const bad = frame(Op.Incr, 1, 1, { key: t("k"), value: t("x") });
    expect(decodeReply(m.handle(bad)!).status).toBe(Status.NotNumber);
    expect(decodeReply(m.handle(bad)!).flags & REPLY_FLAG_REPLAYED).toBe(REPLY_FLAG_REPLAYED);
    const v2 = frame(Op.Get, 1, 2, { key: t("k") });
    v2[4] = 2;
    expect(m.handle(v2)![7]).toBe(Status.BadVersion);
    expect(decodeReply(m.handle(frame(Op.Hello, 1, 0))!).result).toBe(1);
    const zero = frame(Op.Get, 1, 2, { key: t("k") });
    zero.fill(0, 8, 12);
    expect(m.handle(zero)![7]).toBe(Status.BadRequest);
    expect(m.requests).toBe(1);
  });

  it("answers malformed bodies BAD_REQUEST or TOO_LARGE, and drops frames without a request header", () => {
    const m = new KvModel();
    let n = 1;
    const raw = (op: number, kl: number, vl: number, v2l = 0, flags = 0) => {
      const b = new Uint8Array(24 + kl + vl + v2l);
      b.set([0x4c, 0x53, 0x4b, 0x56, 1, 0, op, flags, 1, 0, 0, 0, n & 0xff, n >> 8, 0, 0, kl & 0xff, kl >> 8, vl & 0xff, vl >> 8, v2l & 0xff, v2l >> 8]);
      b.fill(0x61, 24);
      n++;
      return m.handle(b);
    };
    expect(raw(Op.Get, 65, 0)![7]).toBe(Status.TooLarge);
    expect(raw(Op.Put, 1, 513)![7]).toBe(Status.TooLarge);
    expect(raw(Op.List, 0, 65)![7]).toBe(Status.TooLarge);
    expect(raw(Op.Get, 0, 0)![7]).toBe(Status.BadRequest);
    expect(raw(Op.Count, 1, 0)![7]).toBe(Status.BadRequest);
    expect(raw(Op.Put, 1, 0, 0, 1)![7]).toBe(Status.BadRequest);
    expect(raw(Op.Cas, 1, 1, 1, 1)![7]).toBe(Status.BadRequest);
    const unknown = raw(77, 0, 0)!;
    expect([unknown[6], unknown[7]]).toEqual([77, Status.BadRequest]);
    expect(m.handle(new Uint8Array(23))).toBeNull();
    const asReply = frame(Op.Get, 1, 100, { key: t("k") });
    asReply[5] = 1;
    expect(m.handle(asReply)).toBeNull();
    expect(m.dropped).toBe(2);
  });

  it("forgets the least recently active client when a 65th appears", () => {
    const m = new KvModel();
    for (let c = 1; c <= KV_MAX_CLIENTS; c++) m.handle(frame(Op.Put, c, 10, { key: t("k"), value: t(String(c)) }));
    m.handle(frame(Op.Get, 1, 11, { key: t("k") })); // client 1 active again: client 2 is now the oldest
    m.handle(frame(Op.Ping, 1000, 1));
    expect(decodeReply(m.handle(frame(Op.Hello, 1, 0))!).result).toBe(11);
    expect(decodeReply(m.handle(frame(Op.Hello, 2, 0))!).result).toBe(0);
    expect(decodeReply(m.handle(frame(Op.Hello, 3, 0))!).result).toBe(10);
  });
});
