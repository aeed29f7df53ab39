// A virtual clock and a simulated network for the kv client tests: the client
// on one side, a frame handler (the KvModel server) on the other, with a
// fixed latency and scripted losses. Everything runs on the virtual clock, so
// a scenario gives the same events every time.

import type { Timers } from "../../host/kv/client.js";
import type { FrameTransport } from "../../host/net/frame-transport.js";

interface Task { at: number; seq: number; cb: () => void; cancelled: boolean }

export class FakeClock implements Timers {
  now = 0;
  private seq = 0;
  private tasks: Task[] = [];

  setTimeout(cb: () => void, ms: number): unknown {
    const task: Task = { at: this.now + ms, seq: this.seq++, cb, cancelled: false };
    this.tasks.push(task);
    return task;
  }

  clearTimeout(handle: unknown): void {
    if (handle) (handle as Task).cancelled = true;
  }

  /** Runs the earliest pending task (advancing the clock to it); false if there is none. */
  step(): boolean {
    this.tasks = this.tasks.filter((t) => !t.cancelled);
    if (this.tasks.length === 0) return false;
    this.tasks.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const t = this.tasks.shift()!;
    this.now = t.at;
    t.cb();
    return true;
  }

  /** Runs tasks until the promise settles; throws if it never can. */
  async settle<T>(p: Promise<T>): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    for (let n = 0; n < 100_000; n++) {
      await new Promise((r) => setImmediate(r)); // let promise callbacks run
      if (done) return watched;
      if (!this.step()) {
        await new Promise((r) => setImmediate(r));
        if (done) return watched;
        throw new Error("FakeClock.settle: nothing left to run and the promise is still pending");
      }
    }
    throw new Error("FakeClock.settle: too many steps");
  }
}

export type NetEvent =
  | { t: number; dir: "request" | "reply"; frame: Uint8Array; dropped: boolean }
  | { t: number; dir: "server-silent"; frame: Uint8Array };

/**
 * The client's transport in a simulated network. A request reaches `server`
 * `latency` ms after it was sent, and the server's reply (if any) reaches the
 * client `latency` ms later. dropRequest/dropReply decide, per frame (counted
 * from 0 in each direction), whether it is lost.
 */
export class FakeNetwork implements FrameTransport {
  readonly events: NetEvent[] = [];
  private listeners: ((f: Uint8Array) => void)[] = [];
  private requests = 0;
  private replies = 0;
  dropRequest: (index: number, frame: Uint8Array) => boolean = () => false;
  dropReply: (index: number, frame: Uint8Array) => boolean = () => false;
  /** Extra delay for a reply (e.g. longer than the client's timeout). */
  replyDelay: (index: number) => number = () => 0;

  constructor(readonly clock: FakeClock, readonly server: (frame: Uint8Array) => Uint8Array | null, readonly latency = 10) {}

  send(frame: Uint8Array): void {
    const copy = frame.slice();
    const index = this.requests++;
    const dropped = this.dropRequest(index, copy);
    this.events.push({ t: this.clock.now, dir: "request", frame: copy, dropped });
    if (dropped) return;
    this.clock.setTimeout(() => {
      const reply = this.server(copy);
      if (!reply) {
        this.events.push({ t: this.clock.now, dir: "server-silent", frame: copy });
        return;
      }
      const ri = this.replies++;
      const lost = this.dropReply(ri, reply);
      this.events.push({ t: this.clock.now, dir: "reply", frame: reply, dropped: lost });
      if (!lost) this.clock.setTimeout(() => this.deliver(reply), this.latency + this.replyDelay(ri));
    }, this.latency);
  }

  /** Hands a frame to the client as if it came from the network. */
  deliver(frame: Uint8Array): void {
    for (const cb of [...this.listeners]) cb(frame);
  }

  onFrame(cb: (f: Uint8Array) => void): () => void {
    this.listeners.push(cb);
    return () => {
      this.listeners = this.listeners.filter((x) => x !== cb);
    };
  }
}
