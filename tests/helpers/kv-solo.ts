// The kv guest run solo in Node, fault-free: one machine (no pair, no
// failover), virtual clock, the given requests sent one at a time by a
// KvClient with the same client number, each run to its reply. What it
// prints on COM1 is what a fault-tolerant pair must show the outside world
// for the same requests, whatever failed on the way.

import { readFileSync } from "node:fs";
import { KvClient } from "../../host/kv/client.js";
import type { FrameTransport } from "../../host/net/frame-transport.js";
import { bootLive } from "../../host/node/boot.js";

export interface KvOp {
  op: "put" | "get" | "incr";
  key: string;
  /** put: the value to write; otherwise unused. */
  value: string | null;
}

const SLICE = 100_000;
const MAX_SLICES = 5_000;

/** COM1 of guests/bin/kv.elf with `cmdline`, after `ops` (and their replies). */
export async function kvSoloConsole(cmdline: string, ops: KvOp[]): Promise<string> {
  const image = new Uint8Array(readFileSync(new URL("../../guests/bin/kv.elf", import.meta.url)));
  let out = "";
  let sent: Uint8Array[] = [];
  const m = await bootLive(image, {
    engine: "wasm", ramSize: 32 << 20, clock: "virtual", cmdline, nic: true,
    onSerial: (b) => { out += String.fromCharCode(b); },
    onTransmit: (f) => { sent.push(f.slice()); },
  });
  const runUntil = (done: () => boolean, what: string) => {
    for (let i = 0; !done(); i++) {
      if (i >= MAX_SLICES) throw new Error(`kv solo run: no ${what} after ${MAX_SLICES * SLICE} instructions; console:\n${out}`);
      m.runSync(SLICE);
    }
  };
  runUntil(() => out.includes("kv: ready"), "\"kv: ready\"");
  const listeners = new Set<(f: Uint8Array) => void>();
  const transport: FrameTransport = {
    send(frame) {
      m.nicInput(frame);
      queueMicrotask(() => {
        runUntil(() => sent.length > 0, "reply");
        const got = sent;
        sent = [];
        for (const f of got) for (const l of listeners) l(f);
      });
    },
    onFrame: (cb) => { listeners.add(cb); return () => listeners.delete(cb); },
  };
  const client = new KvClient({ transport, clientId: 1, timeoutMs: 60_000, retries: 0 });
  try {
    for (const o of ops) {
      if (o.op === "put") await client.put(o.key, o.value ?? "");
      else if (o.op === "get") await client.get(o.key);
      else await client.incr(o.key, 1);
    }
  } finally {
    client.close();
    m.dispose();
  }
  return out;
}
