// One guest run alone in a worker thread, for the "two guests at once" figure
// of the ft bench (bench/ft.ts, twinCpu): the guest is loaded, then the
// thread waits for "go" so both workers start together, runs the guest to its
// end with Machine.runSync in 100k-instruction slices (as a replica does) and
// posts the seconds and the console.

import { parentPort, workerData } from "node:worker_threads";
import { bootLive } from "../../host/node/boot.js";

const { image, mem } = workerData as { image: Uint8Array; mem: number };
let out = "";
const m = await bootLive(image, { engine: "wasm", ramSize: mem, clock: "virtual", onSerial: (b) => (out += String.fromCharCode(b)), onDebugcon: (b) => (out += String.fromCharCode(b)) });
parentPort!.once("message", () => {
  const t0 = performance.now();
  let r = m.runSync(100_000);
  while (r.reason === "limit") r = m.runSync(100_000);
  const seconds = (performance.now() - t0) / 1000;
  parentPort!.postMessage({ seconds, output: out, exitStatus: r.exitStatus });
});
parentPort!.postMessage("ready");
