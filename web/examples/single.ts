// The embedding example of docs/web.md: one VM in a page in a few lines.
import { createMachine, fetchGuest } from "../lockstep.js";
import ticksUrl from "../../guests/bin/ticks.elf?url";

const out = document.querySelector("#console")!;
const vm = await createMachine({
  image: await fetchGuest(ticksUrl),
  cmdline: "ticks.elf ticks=200 every=20",
  onSerial: (bytes) => { out.textContent += new TextDecoder().decode(bytes); },
  onStatus: (s) => { document.querySelector("#speed")!.textContent = `${s.mips.toFixed(0)} MIPS`; },
});
const end = await vm.done;
out.textContent += `\n[${end.reason}, exit status ${end.exitStatus}, ${end.icount} instructions]\n`;
