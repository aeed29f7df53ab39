// The outside world of an in-process pair in tests: it takes each output
// number once, counts a number that comes again with another value (a
// contradiction), and gives the console the numbers spell out.

import type { Output } from "../../host/ft/output-gate.js";
import { bootLive } from "../../host/node/boot.js";
import { guestImage } from "./replay.js";

/** The console of ticks.elf run alone (wasm, virtual clock): what the world must see from a pair. */
export async function soloTicks(ramSize: number, cmdline: string): Promise<string> {
  const out: number[] = [];
  const m = await bootLive(guestImage("ticks"), { engine: "wasm", ramSize, clock: "virtual", cmdline, onSerial: (b) => out.push(b) });
  m.runSync(200_000_000);
  m.dispose();
  return Buffer.from(out).toString("latin1");
}

export function outsideWorld() {
  const seen = new Map<number, Output>();
  let contradictions = 0;
  return {
    release: (xs: Output[]) => {
      for (const x of xs) {
        const had = seen.get(x.seq);
        if (had && (had.channel !== x.channel || had.value !== x.value)) contradictions++;
        if (!had) seen.set(x.seq, x);
      }
    },
    get contradictions() {
      return contradictions;
    },
    /** COM1 bytes in number order. */
    serial: () => Buffer.from([...seen.entries()].sort((x, y) => x[0] - y[0]).filter(([, o]) => o.channel === "serial").map(([, o]) => o.value as number)).toString("latin1"),
    exit: () => [...seen.values()].find((o) => o.channel === "exit")?.value,
  };
}
