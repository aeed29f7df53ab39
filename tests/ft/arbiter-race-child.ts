// One contender in tests/ft/arbiter.test.ts's race: opens the file arbiter,
// says "ready", waits for the barrier file to appear, claims at once, and
// prints the result as one JSON line.
// argv: DIR BARRIER VM EPOCH REPLICA

import { existsSync } from "node:fs";
import { FileArbiter } from "../../host/node/file-arbiter.js";

const [dir, barrier, vm, epoch, replica] = process.argv.slice(2);
const arbiter = new FileArbiter(dir);
process.stdout.write("ready\n");
// Polls every 1 ms with a blocking sleep (no event loop turns), so every
// contender leaves within about a millisecond of the barrier appearing,
// without spinning CPUs the others still need to start.
const nap = new Int32Array(new SharedArrayBuffer(4));
while (!existsSync(barrier)) Atomics.wait(nap, 0, 0, 1);
const result = await arbiter.claim({ vm, epoch: Number(epoch), replica, atMs: Date.now(), reason: "race" });
process.stdout.write(JSON.stringify(result) + "\n");
