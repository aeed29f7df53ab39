// A scripted client exchange with the kv guest (guests/kv), for any machine
// that runs it with a pvnic: the machine is seen through KvVm (boot, deliver a
// frame, run until the guest transmits), and every reply the guest sends is
// compared byte for byte with what the server model (host/kv/model.ts) answers
// to the same frame. The tests of kv.elf (tests/kv-guest.test.ts) and of the
// polling kvbare.elf (tests/kv-guest-bare.test.ts) both use it, on the
// Machine through tests/helpers/kv-machine.ts.

import { KvModel } from "../../host/kv/model.js";
import {
  decodeReply, encodeRequest, KV_MAX_CLIENTS, Op, opName, REPLY_FLAG_REPLAYED, REQ_FLAG_EXPECT_ABSENT, request, Status,
  statusName, type KvRequest,
} from "../../host/kv/protocol.js";

/** What the exchange needs from a machine running the kv guest. */
export interface KvVm {
  /**
   * Boots the guest (again, keeping the disk, on later calls) and runs it
   * until it is ready for frames: it printed "kv: ready".
   */
  boot(): void;
  /** Delivers a frame to the NIC (Pvnic.receive); false if the NIC dropped it. */
  receive(frame: Uint8Array): boolean;
  /**
   * Runs the guest until it has transmitted at least one frame, or for at most
   * maxInstructions; returns the frames it transmitted meanwhile.
   */
  runUntilTransmit(maxInstructions: number): Uint8Array[];
}

export type KvStep =
  /** Send a request (or raw bytes); `times` > 1 resends the same frame, as a client that lost the reply does. */
  | { send: KvRequest | Uint8Array; times?: number; note?: string }
  /** Reboot the guest, keeping the disk (the model restarts too). */
  | { restart: true; note?: string };

export interface KvExchangeRecord {
  step: number;
  attempt: number;
  request: Uint8Array;
  /** The guest's reply (null: it sent none, as the model expected). */
  reply: Uint8Array | null;
}

export interface KvExchangeOptions {
  model?: KvModel;
  /** The most instructions to run for one reply (default 50 million). */
  maxInstructions?: number;
  /** For frames the model drops: how long to run to see that no reply comes (default 2 million). */
  silenceInstructions?: number;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function describe(frame: Uint8Array | null): string {
  if (!frame) return "no reply";
  try {
    const r = decodeReply(frame);
    const v = r.value.length ? ` value ${JSON.stringify(Buffer.from(r.value).toString("latin1"))}` : "";
    return `${opName(r.op)} #${r.requestNumber} client ${r.clientId}: ${statusName(r.status)} result ${r.result} flags ${r.flags}${v} [${hex(frame)}]`;
  } catch (e) {
    return `undecodable (${(e as Error).message}) [${hex(frame)}]`;
  }
}

/**
 * Boots the guest, runs the steps, and throws at the first reply that differs
 * from the model's (naming the step and both replies). Returns the transcript.
 */
export function runKvExchange(vm: KvVm, steps: KvStep[], opts: KvExchangeOptions = {}): KvExchangeRecord[] {
  const model = opts.model ?? new KvModel();
  const max = opts.maxInstructions ?? 50_000_000;
  const silence = opts.silenceInstructions ?? 2_000_000;
  const log: KvExchangeRecord[] = [];
  vm.boot();
  steps.forEach((step, k) => {
    const where = `step ${k}${step.note ? ` (${step.note})` : ""}`;
    if ("restart" in step) {
      vm.boot();
      model.restart();
      return;
    }
    const frame = step.send instanceof Uint8Array ? step.send : encodeRequest(step.send);
    for (let attempt = 0; attempt < (step.times ?? 1); attempt++) {
      const expected = model.handle(frame);
      if (!vm.receive(frame)) throw new Error(`${where}: the NIC dropped the request (no RX buffer?)`);
      const sent = vm.runUntilTransmit(expected ? max : silence);
      if (sent.length > 1) throw new Error(`${where}: the guest sent ${sent.length} frames for one request`);
      const got = sent[0] ?? null;
      const same = expected === null ? got === null : got !== null && Buffer.from(got).equals(expected);
      if (!same) {
        throw new Error(`${where}, attempt ${attempt + 1}: the guest's reply differs from the model's\n  guest: ${describe(got)}\n  model: ${describe(expected)}`);
      }
      log.push({ step: k, attempt, request: frame, reply: got });
    }
  });
  return log;
}

const t = (s: string) => new TextEncoder().encode(s);

/** Raw request bytes with the given header fields (for malformed requests the encoder refuses). */
export function rawRequest(f: { op: number; client: number; n: number; flags?: number; version?: number; kind?: number; key?: Uint8Array; value?: Uint8Array; value2?: Uint8Array; lengths?: [number, number, number]; reserved?: number }): Uint8Array {
  const key = f.key ?? new Uint8Array(0), value = f.value ?? new Uint8Array(0), value2 = f.value2 ?? new Uint8Array(0);
  const [kl, vl, v2l] = f.lengths ?? [key.length, value.length, value2.length];
  const b = new Uint8Array(24 + key.length + value.length + value2.length);
  const dv = new DataView(b.buffer);
  b.set([0x4c, 0x53, 0x4b, 0x56, f.version ?? 1, f.kind ?? 0, f.op, f.flags ?? 0]);
  dv.setUint32(8, f.client, true);
  dv.setUint32(12, f.n, true);
  dv.setUint16(16, kl, true);
  dv.setUint16(18, vl, true);
  dv.setUint16(20, v2l, true);
  dv.setUint16(22, f.reserved ?? 0, true);
  b.set(key, 24);
  b.set(value, 24 + key.length);
  b.set(value2, 24 + key.length + value.length);
  return b;
}

/**
 * The standard exchange: every operation and status, resent requests
 * (answered from the reply cache, executed once), stale and conflicting
 * request numbers, malformed frames, LIST paging, more clients than the
 * server remembers and, with `restart`, a reboot after which the store, the
 * logged replies and a resent request's answer survive.
 */
export function standardKvScript(opts: { restart?: boolean } = {}): KvStep[] {
  const A = 101, B = 202, C = 303;
  const s: KvStep[] = [];
  const req = (op: Op, client: number, n: number, f: Partial<Pick<KvRequest, "key" | "value" | "value2" | "flags">> = {}, times = 1, note?: string) =>
    s.push({ send: request(op, client, n, f), times, note });

  req(Op.Hello, A, 0, {}, 1, "HELLO from a new client");
  req(Op.Ping, A, 1, { value: t("ping payload") });
  req(Op.Get, A, 2, { key: t("missing") }, 1, "GET of a missing key");
  req(Op.Put, A, 3, { key: t("alpha"), value: t("one") }, 2, "PUT resent: executed once, replayed once");
  req(Op.Put, A, 4, { key: t("alpha"), value: t("two") });
  req(Op.Get, A, 5, { key: t("alpha") });
  req(Op.Incr, A, 6, { key: t("counter") }, 3, "INCR resent twice: the counter goes to 1 only");
  req(Op.Incr, A, 7, { key: t("counter"), value: t("41") });
  req(Op.Incr, A, 8, { key: t("counter"), value: t("-100") });
  req(Op.Incr, A, 9, { key: t("alpha") }, 1, "INCR of text: NOT_NUMBER");
  req(Op.Put, A, 10, { key: t("big"), value: t("9223372036854775800") });
  req(Op.Incr, A, 11, { key: t("big"), value: t("8") }, 1, "INCR overflow: RANGE");
  req(Op.Incr, A, 12, { key: t("big"), value: t("-9223372036854775808") });
  req(Op.Cas, B, 1, { key: t("alpha"), value: t("nope"), value2: t("three") }, 1, "CAS mismatch");
  req(Op.Cas, B, 2, { key: t("alpha"), value: t("two"), value2: t("three") });
  req(Op.Cas, B, 3, { key: t("fresh"), value2: t("new"), flags: REQ_FLAG_EXPECT_ABSENT });
  req(Op.Cas, B, 4, { key: t("fresh"), value2: t("again"), flags: REQ_FLAG_EXPECT_ABSENT }, 1, "CAS expect-absent on an existing key");
  req(Op.Cas, B, 5, { key: t("nokey"), value: t("x"), value2: t("y") }, 1, "CAS on a missing key");
  req(Op.Del, B, 6, { key: t("fresh") });
  req(Op.Del, B, 7, { key: t("fresh") }, 1, "DEL of a missing key");
  req(Op.Put, B, 8, { key: Uint8Array.of(0, 1, 2, 255), value: Uint8Array.of(0, 0, 0) }, 1, "binary key and value");
  req(Op.Put, B, 9, { key: t("empty"), value: new Uint8Array(0) });
  req(Op.Get, B, 10, { key: t("empty") });
  req(Op.Put, B, 11, { key: t("k".repeat(64)), value: new Uint8Array(512).fill(0x5a) }, 1, "longest key and value");
  for (let i = 0; i < 30; i++) req(Op.Put, C, 100 + i, { key: t(`list/${String(i).padStart(2, "0")}/${"p".repeat(30)}`), value: t(String(i)) });
  req(Op.List, C, 200, {}, 1, "LIST everything: the first page");
  req(Op.List, C, 201, { key: t("list/") }, 1, "LIST a prefix");
  req(Op.List, C, 202, { key: t("list/"), value: t(`list/20/${"p".repeat(30)}`) }, 1, "LIST after a cursor");
  req(Op.List, C, 203, { key: t("zzz") }, 1, "LIST of a prefix nothing has");
  req(Op.Count, C, 204);
  req(Op.Stats, C, 205);
  req(Op.Put, A, 5, { key: t("alpha"), value: t("late") }, 1, "an older request number: STALE");
  req(Op.Put, A, 12, { key: t("alpha"), value: t("other") }, 1, "the last number with other content: STALE");
  req(Op.Incr, A, 12, { key: t("big"), value: t("-9223372036854775808") }, 1, "the last request again: replayed");
  req(Op.Hello, A, 0, {}, 1, "HELLO: the last number");
  s.push({ send: rawRequest({ op: Op.Get, client: A, n: 20, key: t("k".repeat(65)) }), note: "key too long: TOO_LARGE" });
  s.push({ send: rawRequest({ op: Op.Put, client: A, n: 19, key: t("k"), value: new Uint8Array(513) }), note: "STALE wins over TOO_LARGE" });
  s.push({ send: rawRequest({ op: Op.Put, client: A, n: 21, key: t("k"), value: new Uint8Array(513) }), note: "value too long: TOO_LARGE" });
  s.push({ send: rawRequest({ op: Op.Get, client: A, n: 30, key: t("x"), value: t("y") }), note: "GET with a value: BAD_REQUEST" });
  s.push({ send: rawRequest({ op: 99, client: A, n: 31 }), note: "unknown opcode: BAD_REQUEST" });
  s.push({ send: rawRequest({ op: Op.Get, client: A, n: 32, key: t("x"), lengths: [5, 0, 0] }), note: "lengths that do not add up" });
  s.push({ send: rawRequest({ op: Op.Get, client: A, n: 33, key: t("x"), reserved: 1 }), note: "reserved not 0" });
  s.push({ send: rawRequest({ op: Op.Put, client: A, n: 34, key: t("x"), flags: 2 }), note: "undefined flags" });
  s.push({ send: rawRequest({ op: Op.Get, client: A, n: 35, key: t("x"), version: 2 }), note: "version 2: BAD_VERSION" });
  s.push({ send: rawRequest({ op: Op.Get, client: 0, n: 36, key: t("x") }), note: "client 0: BAD_REQUEST" });
  s.push({ send: rawRequest({ op: Op.Get, client: A, n: 0, key: t("x") }), note: "request number 0: BAD_REQUEST" });
  s.push({ send: rawRequest({ op: Op.Hello, client: A, n: 3 }), note: "HELLO with a request number" });
  s.push({ send: rawRequest({ op: Op.Get, client: A, n: 37, key: t("x"), kind: 1 }), note: "a reply frame: dropped" });
  s.push({ send: Uint8Array.of(1, 2, 3), note: "a runt frame: dropped" });
  s.push({ send: rawRequest({ op: Op.Get, client: A, n: 38, key: t("alpha") }).map((b, i) => (i === 0 ? 0x4d : b)), note: "bad magic: dropped" });
  for (let c = 1; c <= KV_MAX_CLIENTS + 2; c++) req(Op.Ping, 1000 + c, 1, {}, 1, c === 1 ? "66 clients: the oldest are forgotten" : undefined);
  req(Op.Hello, A, 0, {}, 1, "client A was forgotten");
  req(Op.Incr, B, 30, { key: t("counter") }, 1, "an INCR whose reply is lost...");
  if (opts.restart) {
    s.push({ restart: true, note: "reboot" });
    req(Op.Incr, B, 30, { key: t("counter") }, 1, "...resent after the reboot: answered from the log");
    req(Op.Hello, B, 0, {}, 1, "HELLO after the reboot");
    req(Op.Get, B, 31, { key: t("alpha") });
    req(Op.Get, B, 32, { key: t("big") });
    req(Op.Count, B, 33);
    req(Op.List, B, 34, { key: t("list/"), value: t(`list/25/${"p".repeat(30)}`) });
    req(Op.Stats, B, 35);
  } else {
    req(Op.Incr, B, 30, { key: t("counter") }, 1, "...resent: replayed");
  }
  req(Op.Incr, B, 36, { key: t("counter") });
  req(Op.Stats, B, 37);
  return s;
}

/** Checks the transcript for the properties the script is about (besides matching the model). */
export function checkStandardTranscript(log: KvExchangeRecord[]): void {
  const decode = (f: Uint8Array | null) => {
    try {
      return f ? decodeReply(f) : null;
    } catch {
      return null; // e.g. the reply to an unknown opcode, which echoes it
    }
  };
  const replies = log.map((r) => decode(r.reply));
  const replayed = replies.filter((r) => r && r.flags & REPLY_FLAG_REPLAYED).length;
  if (replayed < 5) throw new Error(`expected at least 5 replayed replies, got ${replayed}`);
  const last = replies.at(-2);
  if (!last || last.op !== Op.Incr || last.status !== Status.Ok || Buffer.from(last.value).toString() !== "-56") {
    throw new Error(`the counter should end at -56 (1 + 41 - 100 + 1 + 1), got ${describe(log.at(-2)?.reply ?? null)}`);
  }
}

/**
 * A seeded random exchange: three clients issuing every operation on a small
 * set of keys, resending requests, reusing old numbers, malformed frames and
 * (with `restarts`) reboots. The same seed gives the same steps.
 */
export function randomKvScript(seed: number, length: number, opts: { restarts?: boolean } = {}): KvStep[] {
  let x = seed >>> 0 || 1;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
  const keys = ["a", "b", "c", "counter", "n", "k".repeat(64), "list/1", "list/2", "list/3", "\u00ff", "x/y", "zz"].map(t);
  const bytes = (max: number) => Uint8Array.from({ length: Math.floor(rnd() * (max + 1)) }, () => Math.floor(rnd() * 256));
  const number = () => {
    const r = rnd();
    if (r < 0.05) return t("9223372036854775807");
    if (r < 0.1) return t("-9223372036854775808");
    const digits = Array.from({ length: 1 + Math.floor(rnd() * rnd() * 19) }, () => Math.floor(rnd() * 10)).join("");
    return t((rnd() < 0.3 ? "-" : "") + digits);
  };
  const clients = [11, 22, 33];
  const next = new Map(clients.map((c) => [c, 1]));
  const lastFrame = new Map<number, Uint8Array>();
  const steps: KvStep[] = [];
  for (let k = 0; k < length; k++) {
    const c = pick(clients);
    const r = rnd();
    if (opts.restarts && r < 0.02) {
      steps.push({ restart: true });
      continue;
    }
    if (r < 0.15 && lastFrame.has(c)) {
      steps.push({ send: lastFrame.get(c)!, times: 1 + Math.floor(rnd() * 2), note: "resend" });
      continue;
    }
    if (r < 0.19) {
      steps.push({ send: rawRequest({ op: pick([Op.Get, Op.Put, 0, 42]), client: c, n: next.get(c)!, key: bytes(70), value: bytes(20), reserved: rnd() < 0.3 ? 1 : 0 }), note: "malformed" });
      next.set(c, next.get(c)! + 1);
      continue;
    }
    if (r < 0.22) {
      steps.push({ send: request(Op.Get, c, Math.max(1, next.get(c)! - 3), { key: pick(keys) }), note: "old number" });
      continue;
    }
    const n = next.get(c)!;
    const op = pick([Op.Get, Op.Put, Op.Put, Op.Del, Op.Incr, Op.Incr, Op.Cas, Op.Count, Op.List, Op.Ping, Op.Stats, Op.Hello]);
    const key = pick(keys);
    let req: KvRequest;
    switch (op) {
      case Op.Get: case Op.Del: req = request(op, c, n, { key }); break;
      case Op.Put: req = request(op, c, n, { key, value: rnd() < 0.5 ? number() : bytes(40) }); break;
      case Op.Incr: req = request(op, c, n, { key, value: rnd() < 0.2 ? new Uint8Array(0) : number() }); break;
      case Op.Cas:
        req = rnd() < 0.3
          ? request(op, c, n, { key, value2: bytes(10), flags: REQ_FLAG_EXPECT_ABSENT })
          : request(op, c, n, { key, value: rnd() < 0.5 ? number() : bytes(3), value2: number() });
        break;
      case Op.List: req = request(op, c, n, { key: rnd() < 0.5 ? t("list/") : new Uint8Array(0), value: rnd() < 0.3 ? pick(keys) : new Uint8Array(0) }); break;
      case Op.Ping: req = request(op, c, n, { value: bytes(100) }); break;
      case Op.Hello: req = request(op, c, 0); break;
      default: req = request(op, c, n);
    }
    if (op !== Op.Hello) next.set(c, n + 1 + (rnd() < 0.1 ? Math.floor(rnd() * 5) : 0));
    const frame = encodeRequest(req);
    if (op !== Op.Hello) lastFrame.set(c, frame);
    steps.push({ send: frame });
  }
  return steps;
}
