// One VM on its own in a browser's Web Worker: an engine, a machine with a
// live gate (the browser's clock and entropy) and the real-time driver Node's
// `lockstep run` uses (host/machine/realtime.ts). The main thread controls it
// through comlink (MachineWorkerApi in web/protocol.ts); serial bytes go back
// in batches, at most one message per slice, so a chatty guest does not
// flood the page.

import * as Comlink from "comlink";
import { Waker } from "../host/common/waker.js";
import { createEngine } from "../host/engine/load.js";
import { Machine } from "../host/machine/machine.js";
import { runRealtime } from "../host/machine/realtime.js";
import { LiveGate } from "../host/replay/live-gate.js";
import type { MachineEvents, MachineWorkerApi } from "./protocol.js";

const waker = new Waker();
let machine: Machine | null = null;
let stopping = false;

const api: MachineWorkerApi = {
  async start(o, events: MachineEvents) {
    try {
      const engine = await createEngine(o.engine, { ramSize: o.ramSize, modules: o.modules });
      let serial: number[] = [];
      const flush = () => {
        if (serial.length) void events.serial(Uint8Array.from(serial));
        serial = [];
      };
      let exitStatus: number | null = null;
      const m = Machine.create(o.image, {
        engine, clock: o.clock, cmdline: o.cmdline, nic: o.nic, gate: new LiveGate({ clock: o.clock }),
        onSerial: (b) => { serial.push(b); },
        onTransmit: (f) => void events.frame(f.slice()),
        onExit: (s) => { exitStatus = s; },
      });
      machine = m;
      const t0 = performance.now();
      let last = { t: t0, icount: 0n };
      const report = (running: boolean) => {
        const t = performance.now(), icount = m.engine.icount;
        const mips = t > last.t ? Number(icount - last.icount) / ((t - last.t) * 1000) : 0;
        last = { t, icount };
        void events.status({ icount, mips, running });
      };
      const out = await runRealtime(m, {
        maxInstructions: o.maxInstructions,
        canWake: o.nic || o.clock === "host",
        waker,
        interrupted: () => {
          flush();
          if (performance.now() - last.t >= o.statusMs) report(true);
          return stopping;
        },
      });
      const seconds = (performance.now() - t0) / 1000;
      flush();
      report(false);
      void events.stopped({ reason: out.reason, exitStatus, icount: m.engine.icount, seconds });
    } catch (e) {
      void events.stopped({ reason: `failed: ${(e as Error).message}`, exitStatus: null, icount: machine?.engine.icount ?? 0n, seconds: 0 });
    }
  },
  frame(bytes) {
    machine?.nicInput(bytes);
    waker.wake();
  },
  stop() {
    stopping = true;
    waker.wake();
  },
};

Comlink.expose(api);
