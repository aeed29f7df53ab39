// A kv client's view of a replicated VM: several endpoints (the primary's
// and the backup's NIC ports), of which one at a time is live. The client
// probes them all (host/net/probe.ts, docs/ft-endpoints.md) and sends to the
// live one with the highest epoch: after a failover the old primary is dead
// or, cut off, still live in an epoch the arbiter has since given away. As a
// FrameTransport it carries the kv frames to that endpoint and hands the
// client every frame that is not a probe answer, from whichever endpoint.

import type { FrameTransport } from "../net/frame-transport.js";
import { decodeProbe, encodeProbeAsk, isProbe, ProbeError, type ProbeAnswer } from "../net/probe.js";
import type { Timers } from "./client.js";

export interface Endpoint {
  host: string;
  port: number;
}

/** A datagram socket that sends to any endpoint and says who sent what it receives (UdpTransport in Node). */
export interface DatagramSocket {
  sendTo(bytes: Uint8Array, to: Endpoint): void;
  onFrame(cb: (bytes: Uint8Array, from: Endpoint) => void): () => void;
}

export interface ProbeRound {
  /** Each endpoint, in the order given, with its answer (null: none came in time). */
  answers: { endpoint: Endpoint; answer: ProbeAnswer | null }[];
  /** Where requests go now. */
  chosen: Endpoint;
  /** Whether the chosen endpoint said it is live (false: none did; the previous choice stands). */
  live: boolean;
}

export interface EndpointSetOptions {
  socket: DatagramSocket;
  endpoints: Endpoint[];
  /** How long a probe round waits for answers, ms (it ends early once every endpoint answered). */
  probeMs: number;
  /** The first round's nonce (later rounds count up from it); a random one keeps clients apart. */
  firstNonce?: number;
  timers?: Timers;
}

const realTimers: Timers = {
  setTimeout: (cb, ms) => setTimeout(cb, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

const keyOf = (e: Endpoint) => `${e.host}:${e.port}`;
export const showEndpoint = keyOf;

/** One line for an operator: what each endpoint said and where requests go. */
export function describeRound(r: ProbeRound): string {
  const each = r.answers.map(({ endpoint, answer }) =>
    `${keyOf(endpoint)} ${answer ? `${answer.role}, ${answer.live ? "live" : "not live"}, epoch ${answer.epoch}` : "no answer"}`);
  return `probe: ${each.join("; ")} -> ${r.live ? "" : "none live, staying with "}${keyOf(r.chosen)}`;
}

export class EndpointSet implements FrameTransport {
  private readonly socket: DatagramSocket;
  private readonly endpoints: Endpoint[];
  private readonly probeMs: number;
  private readonly timers: Timers;
  private readonly listeners: ((frame: Uint8Array) => void)[] = [];
  private readonly unsubscribe: () => void;
  private nonce: number;
  private target: Endpoint;
  /** The round in progress: its nonce and the answers so far, by endpoint. */
  private round: { nonce: number; answers: Map<string, ProbeAnswer>; done: () => void } | null = null;
  /** Probe rounds, asks sent, answers taken; answers dropped as malformed, late (another round's) or from elsewhere. */
  readonly stats = { rounds: 0, asks: 0, answers: 0, malformed: 0, late: 0, stranger: 0 };

  constructor(o: EndpointSetOptions) {
    if (o.endpoints.length === 0) throw new RangeError("no endpoints");
    const seen = new Set<string>();
    for (const e of o.endpoints) {
      if (seen.has(keyOf(e))) throw new RangeError(`endpoint ${keyOf(e)} is listed twice`);
      seen.add(keyOf(e));
    }
    this.socket = o.socket;
    this.endpoints = [...o.endpoints];
    this.probeMs = o.probeMs;
    this.timers = o.timers ?? realTimers;
    this.nonce = (o.firstNonce ?? 1) >>> 0;
    this.target = this.endpoints[0]!;
    this.unsubscribe = this.socket.onFrame((b, from) => this.onDatagram(b, from));
  }

  /** Where requests go now. */
  get current(): Endpoint {
    return this.target;
  }

  send(frame: Uint8Array): void {
    this.socket.sendTo(frame, this.target);
  }

  onFrame(cb: (frame: Uint8Array) => void): () => void {
    this.listeners.push(cb);
    return () => {
      const k = this.listeners.indexOf(cb);
      if (k >= 0) this.listeners.splice(k, 1);
    };
  }

  close(): void {
    this.unsubscribe();
    this.round?.done();
  }

  /**
   * Asks every endpoint; resolves when all answered or probeMs passed. The
   * live answer with the highest epoch becomes the target (the first listed
   * on a tie); with no live answer the target stays.
   */
  probe(): Promise<ProbeRound> {
    this.round?.done();
    const nonce = this.nonce;
    this.nonce = (this.nonce + 1) >>> 0;
    this.stats.rounds++;
    return new Promise((resolve) => {
      const answers = new Map<string, ProbeAnswer>();
      let timer: unknown;
      const done = () => {
        if (this.round?.nonce !== nonce) return;
        this.round = null;
        this.timers.clearTimeout(timer);
        resolve(this.choose(answers));
      };
      this.round = { nonce, answers, done };
      timer = this.timers.setTimeout(done, this.probeMs);
      const ask = encodeProbeAsk(nonce);
      for (const e of this.endpoints) {
        this.stats.asks++;
        this.socket.sendTo(ask, e);
      }
    });
  }

  private choose(answers: Map<string, ProbeAnswer>): ProbeRound {
    let best: { endpoint: Endpoint; epoch: number } | null = null;
    for (const e of this.endpoints) {
      const a = answers.get(keyOf(e));
      if (a?.live && (best === null || a.epoch > best.epoch)) best = { endpoint: e, epoch: a.epoch };
    }
    if (best) this.target = best.endpoint;
    return {
      answers: this.endpoints.map((e) => ({ endpoint: e, answer: answers.get(keyOf(e)) ?? null })),
      chosen: this.target,
      live: best !== null,
    };
  }

  private onDatagram(b: Uint8Array, from: Endpoint): void {
    if (!isProbe(b)) {
      for (const cb of [...this.listeners]) cb(b);
      return;
    }
    let a;
    try {
      a = decodeProbe(b);
    } catch (e) {
      if (!(e instanceof ProbeError)) throw e;
      this.stats.malformed++;
      return;
    }
    // A client is asked nothing; an ask here is as wrong as a bad answer.
    if (a.kind !== "answer") return void this.stats.malformed++;
    const r = this.round;
    if (!r || a.nonce !== r.nonce) return void this.stats.late++;
    const k = keyOf(from);
    if (!this.endpoints.some((e) => keyOf(e) === k)) return void this.stats.stranger++;
    this.stats.answers++;
    r.answers.set(k, a);
    if (r.answers.size === this.endpoints.length) r.done();
  }
}
