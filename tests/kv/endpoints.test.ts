// The endpoint probe's wire format (host/net/probe.ts) and the client's
// choice among a replicated VM's endpoints (host/kv/endpoints.ts), on a
// virtual clock: two simulated replicas sharing one server model (as a
// primary and its backup share one history), the primary dying mid-run.

import { describe, expect, it } from "vitest";
import { KvClient } from "../../host/kv/client.js";
import { EndpointSet, type DatagramSocket, type Endpoint } from "../../host/kv/endpoints.js";
import { KvModel } from "../../host/kv/model.js";
import { decodeReply, encodeRequest, KV_MAGIC, Op, request } from "../../host/kv/protocol.js";
import {
  decodeProbe, encodeProbeAnswer, encodeProbeAsk, isProbe, PROBE_ANSWER_BYTES, PROBE_ASK_BYTES, ProbeError,
} from "../../host/net/probe.js";
import { FakeClock } from "../helpers/fake-net.js";

const A: Endpoint = { host: "127.0.0.1", port: 5001 };
const B: Endpoint = { host: "127.0.0.1", port: 5002 };

describe("probe wire format", () => {
  it("round-trips an ask and an answer, little-endian", () => {
    const ask = encodeProbeAsk(0x01020304);
    expect(ask.length).toBe(PROBE_ASK_BYTES);
    expect(Array.from(ask)).toEqual([0x4c, 0x53, 0x50, 0x42, 1, 0, 0, 0, 4, 3, 2, 1]);
    expect(decodeProbe(ask)).toEqual({ kind: "ask", nonce: 0x01020304 });
    const ans = encodeProbeAnswer({ nonce: 7, role: "backup", live: true, epoch: 2 });
    expect(ans.length).toBe(PROBE_ANSWER_BYTES);
    expect(Array.from(ans)).toEqual([0x4c, 0x53, 0x50, 0x42, 1, 1, 2, 1, 7, 0, 0, 0, 2, 0, 0, 0]);
    expect(decodeProbe(ans)).toEqual({ kind: "answer", nonce: 7, role: "backup", live: true, epoch: 2 });
  });

  it("no kv frame is taken for a probe", () => {
    const kv = encodeRequest(request(Op.Get, 1, 1, { key: new TextEncoder().encode("k") }));
    expect(Array.from(kv.subarray(0, 4))).toEqual(Array.from(KV_MAGIC));
    expect(isProbe(kv)).toBe(false);
    expect(isProbe(encodeProbeAsk(1))).toBe(true);
  });

  it("refuses each malformed probe with a ProbeError naming the offset", () => {
    const ask = encodeProbeAsk(1);
    const ans = encodeProbeAnswer({ nonce: 1, role: "primary", live: false, epoch: 1 });
    const cases: [Uint8Array, number][] = [
      [ask.subarray(0, 6), 6], // shorter than the header
      [ask.subarray(0, 10), 10], // an ask cut short
      [Uint8Array.of(...ask, 0), 12], // an ask too long
      [Uint8Array.from(ask, (x, k) => (k === 4 ? 2 : x)), 4], // version
      [Uint8Array.from(ask, (x, k) => (k === 5 ? 9 : x)), 5], // kind
      [Uint8Array.from(ask, (x, k) => (k === 6 ? 1 : x)), 6], // reserved
      [Uint8Array.from(ans, (x, k) => (k === 6 ? 3 : x)), 6], // role
      [Uint8Array.from(ans, (x, k) => (k === 7 ? 2 : x)), 7], // flags
    ];
    for (const [b, offset] of cases) {
      let err: unknown;
      try {
        decodeProbe(b);
      } catch (e) {
        err = e;
      }
      expect(err, Array.from(b).join(" ")).toBeInstanceOf(ProbeError);
      expect((err as ProbeError).offset).toBe(offset);
    }
  });
});

interface Replica { role: "primary" | "backup"; alive: boolean; live: boolean; epoch: number; probes: number; kvIn: number }

/** Two replicas on one clock; both serve the same model, only the live one takes requests. */
function pair(clock: FakeClock) {
  const model = new KvModel();
  const reps = new Map<number, Replica>([
    [A.port, { role: "primary", alive: true, live: true, epoch: 1, probes: 0, kvIn: 0 }],
    [B.port, { role: "backup", alive: true, live: false, epoch: 1, probes: 0, kvIn: 0 }],
  ]);
  const listeners: ((b: Uint8Array, from: Endpoint) => void)[] = [];
  const deliver = (b: Uint8Array, from: Endpoint) => clock.setTimeout(() => { for (const cb of [...listeners]) cb(b, from); }, 5);
  const sent: { to: number; probe: boolean }[] = [];
  const socket: DatagramSocket = {
    sendTo(bytes, to) {
      const copy = bytes.slice();
      sent.push({ to: to.port, probe: isProbe(copy) });
      clock.setTimeout(() => {
        const r = reps.get(to.port);
        if (!r || !r.alive) return;
        if (isProbe(copy)) {
          const ask = decodeProbe(copy);
          r.probes++;
          deliver(encodeProbeAnswer({ nonce: ask.nonce, role: r.role, live: r.live, epoch: r.epoch }), to);
          return;
        }
        if (!r.live) return;
        r.kvIn++;
        const reply = model.handle(copy);
        if (reply) deliver(reply, to);
      }, 5);
    },
    onFrame(cb) {
      listeners.push(cb);
      return () => listeners.splice(listeners.indexOf(cb), 1);
    },
  };
  return { model, reps, socket, sent, inject: (b: Uint8Array, from: Endpoint) => deliver(b, from) };
}

describe("choosing an endpoint", () => {
  it("sends to the live one with the highest epoch, whichever is listed first", async () => {
    const clock = new FakeClock();
    const { reps, socket } = pair(clock);
    const set = new EndpointSet({ socket, endpoints: [B, A], probeMs: 50, timers: clock });
    let round = await clock.settle(set.probe());
    expect(round.chosen).toEqual(A);
    expect(round.live).toBe(true);
    expect(round.answers.map((a) => a.answer?.role)).toEqual(["backup", "primary"]);
    // Both say live (a cut-off old primary): the higher epoch wins.
    reps.get(B.port)!.live = true;
    reps.get(B.port)!.epoch = 2;
    round = await clock.settle(set.probe());
    expect(round.chosen).toEqual(B);
    // None live: the previous choice stands, and it says so.
    reps.get(B.port)!.live = false;
    reps.get(A.port)!.alive = false;
    round = await clock.settle(set.probe());
    expect(round).toMatchObject({ chosen: B, live: false });
    expect(round.answers[1].answer).toBeNull();
  });

  it("ends a round as soon as every endpoint answered, else after probeMs", async () => {
    const clock = new FakeClock();
    const { reps, socket } = pair(clock);
    const set = new EndpointSet({ socket, endpoints: [A, B], probeMs: 200, timers: clock });
    await clock.settle(set.probe());
    expect(clock.now).toBe(10); // one round trip
    reps.get(A.port)!.alive = false;
    const t0 = clock.now;
    await clock.settle(set.probe());
    expect(clock.now - t0).toBe(200);
  });

  it("drops and counts malformed answers, answers to another round and answers from elsewhere", async () => {
    const clock = new FakeClock();
    const { socket, inject } = pair(clock);
    const set = new EndpointSet({ socket, endpoints: [A, B], probeMs: 50, firstNonce: 100, timers: clock });
    const kv: Uint8Array[] = [];
    set.onFrame((f) => kv.push(f));
    const p = set.probe();
    inject(Uint8Array.of(0x4c, 0x53, 0x50, 0x42, 1, 1, 9), A); // cut short
    inject(encodeProbeAsk(100), A); // an ask, to a client
    inject(encodeProbeAnswer({ nonce: 99, role: "primary", live: true, epoch: 9 }), A); // an older round's
    inject(encodeProbeAnswer({ nonce: 100, role: "primary", live: true, epoch: 9 }), { host: "127.0.0.1", port: 6000 });
    const round = await clock.settle(p);
    expect(round.chosen).toEqual(A);
    expect(round.answers.map((a) => a.answer?.epoch)).toEqual([1, 1]);
    expect(set.stats).toMatchObject({ rounds: 1, asks: 2, answers: 2, malformed: 2, late: 1, stranger: 1 });
    expect(kv).toEqual([]); // none of it reached the kv client
  });

  it("refuses an empty list and an endpoint listed twice", () => {
    const clock = new FakeClock();
    const { socket } = pair(clock);
    expect(() => new EndpointSet({ socket, endpoints: [], probeMs: 1 })).toThrow(/no endpoints/);
    expect(() => new EndpointSet({ socket, endpoints: [A, { ...A }], probeMs: 1 })).toThrow(/listed twice/);
  });
});

describe("a kv client through the set, the primary dying", () => {
  it("finds the backup once it is live and resends there; nothing is executed twice", async () => {
    const clock = new FakeClock();
    const { model, reps, socket, sent } = pair(clock);
    const set = new EndpointSet({ socket, endpoints: [A, B], probeMs: 20, timers: clock });
    const client = new KvClient({ transport: set, clientId: 9, timeoutMs: 50, retries: 20, timers: clock, beforeResend: async () => { await set.probe(); } });
    await clock.settle(set.probe());
    let acked = 0;
    for (let k = 0; k < 10; k++) {
      if (k === 4) {
        // The primary dies with request 5 executed but its reply lost: the
        // backup has it (it replayed the log) and goes live 300 ms later.
        const a = reps.get(A.port)!;
        a.alive = false;
        clock.setTimeout(() => { const b = reps.get(B.port)!; b.live = true; b.epoch = 2; }, 300);
        model.handle(encodeRequest(request(Op.Incr, 9, 5, { key: new TextEncoder().encode("n") })));
      }
      expect(await clock.settle(client.incr("n"))).toBe(BigInt(k + 1));
      acked++;
    }
    expect(acked).toBe(10);
    expect(set.current).toEqual(B);
    expect(reps.get(B.port)!.kvIn).toBe(6);
    // Request 5 reached the backup and was answered from the reply cache.
    expect(model.replays).toBe(1);
    // Before the backup was live, resends went nowhere useful but stayed with the dead primary, then moved.
    const kvTo = sent.filter((s) => !s.probe).map((s) => s.to);
    expect(kvTo.slice(0, 4)).toEqual([A.port, A.port, A.port, A.port]);
    expect(kvTo.at(-1)).toBe(B.port);
    const last = decodeReply(model.handle(encodeRequest(request(Op.Get, 9, 11, { key: new TextEncoder().encode("n") })))!);
    expect(new TextDecoder().decode(last.value)).toBe("10");
  });
});
