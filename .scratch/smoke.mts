import { readFileSync } from "node:fs";
import { Recording, replay } from "../host/replay/session.ts";
import { parseLog, inspect } from "../host/replay/log-format.ts";
for (const name of ["hello", "ticks", "disk"]) {
  for (const clock of ["virtual", "host"] as const) {
    const image = new Uint8Array(readFileSync(`/work/main/guests/bin/${name}.elf`));
    const chunks: Uint8Array[] = [];
    let out = "";
    const { MemoryBlockStore } = await import("../host/devices/block-store.ts");
    const disk = name === "disk" ? new MemoryBlockStore(2048) : undefined;
    const rec = await Recording.start(image, { engine: "wasm", ramSize: 32 << 20, clock, disk, sink: (c) => chunks.push(c.slice()), onSerial: (b) => (out += String.fromCharCode(b)) });
    let r;
    for (let i = 0; i < 200; i++) { r = await rec.machine.run(50_000_000, () => i < 3); if (r.reason !== "idle" && r.reason !== "limit") break; if (name === "ticks" && i === 1) rec.machine.serialInput([0x71]); }
    rec.finish();
    const bytes = Buffer.concat(chunks);
    const log = parseLog(bytes);
    console.log(name, clock, r!.reason, "icount", rec.machine.engine.icount, "log", bytes.length, JSON.stringify(inspect(log.entries).byKind));
    for (const engine of ["wasm", "ts"] as const) {
      const rr = await replay(image, log, { engine });
      console.log("  replay", engine, rr.matched);
    }
  }
}
