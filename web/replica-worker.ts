// One replica of a pair in a browser's Web Worker: its engine, its machine,
// its role and its end of the logging channel (a MessagePort,
// host/ft/port-link.ts), stepped by the same driver as in Node
// (host/ft/driver.ts). The browser's counterpart of host/node/ft-worker.ts,
// with what a page has: no disk, no TCP. The main thread controls it through
// comlink (ReplicaWorkerApi in web/protocol.ts) and hears from it through the
// events object it passed to start(); claims go to the main thread's arbiter,
// the one arbiter of the page.

import * as Comlink from "comlink";
import { initHash } from "../host/common/hash.js";
import { Waker } from "../host/common/waker.js";
import { createEngine } from "../host/engine/load.js";
import type { Arbiter } from "../host/ft/arbiter.js";
import { driveReplica } from "../host/ft/driver.js";
import { FIRST_CONTACT_MS } from "../host/ft/failure-detector.js";
import type { PeerLink } from "../host/ft/link.js";
import type { Output } from "../host/ft/output-gate.js";
import { portLink } from "../host/ft/port-link.js";
import { newReplica } from "../host/ft/new-replica.js";
import type { Replica } from "../host/ft/replica.js";
import { frameTagger } from "../host/ft/wire.js";
import type { ReplicaConfig, ReplicaEvents, ReplicaWorkerApi, StatusReport } from "./protocol.js";

const waker = new Waker();
let replica: Replica | null = null;
let link: PeerLink | null = null;
let events: ReplicaEvents | null = null;
let name = "replica";

const say = (line: string) => void events?.say(line);

const api: ReplicaWorkerApi = {
  async start(c: ReplicaConfig, port: MessagePort, ev: ReplicaEvents) {
    events = ev;
    name = c.name;
    try {
      await run(c, port);
    } catch (e) {
      void ev.failed(`${c.name}: ${(e as Error).message}`);
    }
  },
  frame(bytes) {
    waker.wake();
    if (replica?.isLive && replica.machine) replica.machine.nicInput(bytes);
  },
  partition() {
    if (!link || link.closed) return;
    say(`${name}: the channel is cut (an injected partition)`);
    link.close("partitioned (an injected fault)");
    waker.wake();
  },
  attach(port) {
    void (async () => {
      const l = portLink(port, await frameTagger(null));
      l.onFrame(() => waker.wake());
      try {
        replica!.attachBackup(l, performance.now());
      } catch (e) {
        say(`${name}: no new backup: ${(e as Error).message}`);
        l.close("not taken");
      }
      waker.wake();
    })();
  },
};

async function run(c: ReplicaConfig, port: MessagePort): Promise<void> {
  await initHash(); // state hashes (state transfer) and frame tags
  const engine = await createEngine(c.engine, { ramSize: c.ramSize, modules: c.modules });
  link = portLink(port, await frameTagger(null));
  link.onFrame(() => waker.wake());
  const arbiter: Pick<Arbiter, "claim"> = { claim: (claim) => events!.claim(claim) };
  const options = {
    image: c.image, engine, clock: c.clock, cmdline: c.cmdline, nic: c.nic, configHash: c.configHash, vm: c.vm, name: c.name,
    link, arbiter: arbiter as Arbiter, standby: c.standby,
    transferred: (f: Parameters<ReplicaEvents["transferred"]>[0]) => void events!.transferred(f),
    timeouts: { ...c.timeouts, firstContactMs: FIRST_CONTACT_MS }, slice: 100_000, maxLag: 50_000_000n,
    checkpoint: c.checkpoint ?? undefined,
    release: (outputs: Output[]) => void events!.release(outputs),
    say,
  };
  const now = performance.now();
  const r: Replica = newReplica(c.role, options, now);
  replica = r;
  let last = { t: performance.now(), icount: 0n };
  const report = (): StatusReport => {
    const status = r.status();
    const t = performance.now();
    const icount = r.machine?.engine.icount ?? status.icount;
    const mips = t > last.t && icount >= last.icount ? Number(icount - last.icount) / ((t - last.t) * 1000) : 0;
    last = { t, icount };
    return { status, atMs: performance.timeOrigin + t, link: link ? { ...link.stats } : null, mips };
  };
  await driveReplica(r, {
    waker,
    stop: () => {
      if (performance.now() - last.t >= c.statusMs) void events!.status(report());
      return false;
    },
  });
  void events!.done(report());
  link.close("done");
}

Comlink.expose(api);
