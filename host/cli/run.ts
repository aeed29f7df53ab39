// lockstep run GUEST: boots an ELF guest on one engine with the minimal
// machine of host/machine/simple-run.ts (debug console, exit port, no devices
// yet). Guest console bytes go to stdout, a one-line summary to stderr, and
// the guest's exit status becomes the process's.

import { readFileSync } from "node:fs";
import { createEngine, MAX_RAM, MIN_RAM } from "../engine/load.js";
import { ElfError } from "../machine/elf.js";
import { simpleRun, type SimpleRunResult } from "../machine/simple-run.js";
import { UsageError } from "./args.js";
import { CommandError, defineCommand, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./command.js";

const DEFAULT_MEM = 32 << 20;

function readGuest(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "is a directory" : err.message;
    throw new CommandError(`cannot read ${file}: ${why}`, EXIT_USAGE);
  }
}

/** The process exit status for a finished run. */
export function runExitStatus(r: SimpleRunResult): number {
  switch (r.reason) {
    case "exit":
      return Math.min(r.exitStatus!, 255);
    case "halt":
      return EXIT_OK;
    default:
      return EXIT_FAILURE;
  }
}

export function formatSummary(r: SimpleRunResult, engine: string): string {
  const mips = r.seconds > 0 ? r.instructions / r.seconds / 1e6 : 0;
  return `lockstep run: ${r.instructions} instructions in ${r.seconds.toFixed(3)} s, ${mips.toFixed(1)} MIPS (${engine}); ${r.detail.message}\n`;
}

export default defineCommand({
  usage: "GUEST [--engine wasm|ts] [--mem SIZE] [--max-instructions N]",
  description: `
Loads GUEST, a static ELF32 i386 executable (e.g. guests/bin/bench.elf), into
a machine with --mem bytes of RAM and runs it from its entry point with
EAX = 0x2BADB002 and ESP at the top of RAM. This stage of the machine has no
devices: bytes the guest writes to port 0xE9 (the debug console) go to stdout,
a write to port 0xF4 ends the run with that value as the exit status, and
CPUID, RDTSC (the retired-instruction count), RDRAND and reads of unassigned
ports get fixed, deterministic answers.

The run ends when the guest writes port 0xF4, executes HLT, faults or
executes INT n (there is no IDT yet), or retires --max-instructions
instructions. A one-line summary then goes to stderr: instructions retired,
seconds, MIPS, the engine and why the run ended (for a fault: the vector,
EIP and the instruction bytes).`,
  flags: {
    engine: { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "the CPU engine" },
    mem: { type: "size", default: DEFAULT_MEM, arg: "SIZE", help: "guest RAM: a multiple of 4K from 1M to 1G" },
    "max-instructions": { type: "int", min: 0, arg: "N", help: "stop after N retired instructions (default: no limit)" },
  },
  positionals: { min: 1, max: 1, name: "GUEST (an ELF32 i386 executable)" },
  exitStatus: [
    "N  the guest wrote N to port 0xF4 (values above 255 are reported as 255)",
    "0  the guest halted (HLT with nothing to wake it) without writing an exit status",
    "1  the guest faulted or executed INT n, or --max-instructions was reached",
    "2  usage error, or a GUEST that is missing, unreadable or not a loadable ELF image",
    "3  internal error (e.g. the engines are not built: npm run build)",
  ],
  async run({ flags, positionals, stdout, stderr }) {
    const mem = flags.mem;
    if (mem < MIN_RAM || mem > MAX_RAM || mem % 4096 !== 0) {
      throw new UsageError(`--mem must be a multiple of 4K between 1M and 1G, got ${mem}`);
    }
    const file = positionals[0];
    const elf = readGuest(file);
    const engine = await createEngine(flags.engine, { ramSize: mem });
    let result: SimpleRunResult;
    try {
      result = simpleRun(engine, elf, {
        maxInstructions: flags["max-instructions"],
        onOutput: (bytes) => stdout.write(bytes),
        collectOutput: false,
      });
    } catch (e) {
      if (e instanceof ElfError) throw new CommandError(`${file}: ${e.message}`, EXIT_USAGE);
      throw e;
    }
    stderr.write(formatSummary(result, flags.engine));
    return runExitStatus(result);
  },
});
