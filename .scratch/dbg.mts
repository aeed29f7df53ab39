import { readFileSync } from "node:fs";
import { Recording } from "../host/replay/session.ts";
import { parseLog, kindName } from "../host/replay/log-format.ts";
import { MemoryBlockStore } from "../host/devices/block-store.ts";
const image = new Uint8Array(readFileSync(`guests/bin/disk.elf`));
const chunks: Uint8Array[] = [];
const rec = await Recording.start(image, { engine: "wasm", ramSize: 32 << 20, clock: "host", disk: new MemoryBlockStore(2048), sink: (c) => chunks.push(c.slice()) });
for (let i = 0; i < 200; i++) { const r = await rec.machine.run(50_000_000, () => true); if (r.reason !== "idle" && r.reason !== "limit") break; }
rec.finish();
const log = parseLog(Buffer.concat(chunks));
let prev = 0n;


const { replay } = await import("../host/replay/session.ts");
for (const until of [5867040n, 5867041n, 5867204n]) {
  const rr = await replay(image, log, { engine: "wasm", until });
  const m = rr.machine;
  console.log(until, "now", m.nowNs(), "disk next", (m.disk as any).nextEventNs(), JSON.stringify((m.disk as any).pendingOp), m.engine.icount);
}
