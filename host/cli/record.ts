// lockstep record GUEST --log FILE [run flags]: `lockstep run`, with every
// value the guest takes from outside the VM written to a replay log
// (docs/log-format.md, docs/replay.md).

import { UsageError } from "./args.js";
import { defineCommand } from "./command.js";
import { RUN_EXIT_STATUS, RUN_FLAGS, RUN_USAGE, runGuest } from "./run.js";

export default defineCommand({
  usage: RUN_USAGE.replace("GUEST", "GUEST --log FILE [--force]"),
  description: `
Runs GUEST exactly as 'lockstep run' does (same flags, same devices, same
output), and writes a replay log to FILE: the VM's configuration, then every
value the guest takes from outside the VM, each at the instruction count
where it took it — host-clock readings, RDTSC, RDRAND, COM1 bytes, NIC
frames, disk sector data — plus the interrupts delivered, as checks. When the
run ends (the guest exits or halts, --max-instructions, or Ctrl-C) the log
gets its end record: the final instruction count, guest time, a digest of all
the guest's output and a hash of the final machine state.

The log is written to a temporary file beside FILE and renamed to FILE only
once its end record is written: a record that fails leaves FILE as it was.
An existing FILE is refused unless --force is given; the GUEST or --disk
image is refused even with --force.

'lockstep replay GUEST --log FILE' reruns the guest from the log alone.
With --clock virtual nothing about time is logged; a guest that reads no
time and gets no input then logs no events at all.`,
  flags: {
    log: { type: "string", arg: "FILE", help: "the replay log to write (required)" },
    force: { type: "boolean", help: "replace FILE if it exists (never the GUEST or --disk image)" },
    ...RUN_FLAGS,
  },
  positionals: { min: 1, max: 1, name: "GUEST (a Multiboot kernel or ELF32 i386 executable)" },
  exitStatus: RUN_EXIT_STATUS.map((l) => (l.startsWith("2 ") ? l + ", or a log FILE that exists (without --force), is the GUEST or --disk image, or cannot be written" : l)),
  run(ctx) {
    const log = ctx.flags.log;
    if (log === undefined || log === "") throw new UsageError("record needs --log FILE");
    return runGuest(ctx, "record", { log, force: ctx.flags.force });
  },
});
