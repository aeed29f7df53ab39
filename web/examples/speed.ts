// The browser's side of the speed benchmark (bench/browser.ts): bench.elf on
// one VM (createMachine, virtual clock) to its end. The benchmark calls
// window.lockstepSpeed.run() through Playwright; a person clicks Run.

import { createMachine, fetchGuest } from "../lockstep.js";
import benchUrl from "../../guests/bin/bench.elf?url";

export interface SpeedRun {
  engine: "wasm" | "ts";
  reason: string;
  exitStatus: number | null;
  /** Decimal: a bigint does not cross page.evaluate. */
  instructions: string;
  seconds: number;
  mips: number;
  output: string;
}

const image = fetchGuest(benchUrl);

async function run(o: { engine?: "wasm" | "ts"; maxInstructions?: number } = {}): Promise<SpeedRun> {
  let output = "";
  const vm = await createMachine({
    image: await image, cmdline: "bench.elf", engine: o.engine ?? "wasm", clock: "virtual", maxInstructions: o.maxInstructions,
    onSerial: (b) => { output += String.fromCharCode(...b); },
  });
  const end = await vm.done;
  return { engine: o.engine ?? "wasm", reason: end.reason, exitStatus: end.exitStatus, instructions: String(end.icount), seconds: end.seconds, mips: end.mips, output };
}

(window as unknown as { lockstepSpeed: { run: typeof run } }).lockstepSpeed = { run };

let n = 0;
const button = document.querySelector<HTMLButtonElement>("#run")!;
button.addEventListener("click", async () => {
  button.disabled = true;
  try {
    const r = await run({ engine: document.querySelector<HTMLSelectElement>("#engine")!.value === "ts" ? "ts" : "wasm" });
    const row = document.createElement("tr");
    for (const v of [String(++n), r.engine, Number(r.instructions).toLocaleString("en"), r.seconds.toFixed(3), r.mips.toFixed(1)]) {
      const td = document.createElement("td");
      td.textContent = v;
      row.append(td);
    }
    document.querySelector("#runs")!.append(row);
  } finally {
    button.disabled = false;
  }
});
