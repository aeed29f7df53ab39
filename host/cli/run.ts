// lockstep run GUEST: boots a Multiboot kernel or ELF32 executable on the PC
// machine (host/machine/machine.ts). COM1 and the debug console go to stdout
// (or COM1 to a TCP client), a one-line summary to stderr, and the guest's
// exit status (port 0xF4) becomes the process's.

import { readFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { createServer, type Socket } from "node:net";
import { MAX_RAM, MIN_RAM } from "../engine/load.js";
import { LoadError } from "../machine/elf.js";
import { Machine, type RunOutcome } from "../machine/machine.js";
import { VECTOR_NAMES } from "../machine/vectors.js";
import { BlockStoreError, type BlockStore } from "../devices/block-store.js";
import { parseNicSpec } from "../net/frame-transport.js";
import { initHash, toHex } from "../common/hash.js";
import { loadEngine } from "../node/core-modules.js";
import { FileBlockStore } from "../node/file-block-store.js";
import { runRealtime, type DriverOutcome } from "../machine/realtime.js";
import { UdpTransport } from "../node/udp-transport.js";
import { Waker } from "../common/waker.js";
import { bootLive } from "../node/boot.js";
import { UsageError, type Flags } from "./args.js";
import { CommandError, defineCommand, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CommandContext } from "./command.js";
import { Recording } from "../replay/session.js";
import { LogTarget } from "./log-target.js";
import { isBzImage } from "../machine/linux-boot.js";
import { stateHash } from "../replay/state-hash.js";
import { prepareRestore, type RestoreSetup } from "./snapshot-restore.js";

const DEFAULT_MEM = 32 << 20;
const hex8 = (n: number) => "0x" + (n >>> 0).toString(16).padStart(8, "0");

export function readGuest(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "is a directory" : err.message;
    throw new CommandError(`cannot read ${file}: ${why}`, EXIT_USAGE);
  }
}

/**
 * The command line the guest gets: a Multiboot kernel or ELF gets the file's
 * name first (as QEMU's -kernel gives it), a Linux bzImage exactly TEXT (a
 * first word without "=" would reach its init as an argument).
 */
export function guestCmdline(file: string, image: Uint8Array, text: string): string {
  return isBzImage(image) ? text : `${file} ${text}`;
}

/** Why the run ended, in words, for the summary line. */
export function describeOutcome(m: Machine, o: RunOutcome | DriverOutcome, limit?: number): string {
  const eip = m.engine.eip;
  const bytes = () => Array.from(m.engine.readMem(eip, Math.min(8, m.engine.ramSize - Math.min(eip, m.engine.ramSize))), (x) => x.toString(16).padStart(2, "0")).join(" ");
  switch (o.reason) {
    case "interrupted": return `interrupted at EIP ${hex8(eip)}`;
    case "exit-port": return `guest exit status ${o.exitStatus}`;
    case "halted": return `HLT at ${hex8(eip - 1)} with interrupts disabled`;
    case "idle": return `HLT at ${hex8(eip - 1)} with interrupts enabled but no interrupt sources`;
    case "limit": return `instruction limit ${limit ?? o.instructions} reached at EIP ${hex8(eip)}`;
    case "int": return `INT ${o.exit!.vector!.toString(16).padStart(2, "0")} at EIP ${hex8(eip)} (no IDT loaded)`;
    case "fault": {
      const e = o.exit!;
      const code = e.errorCode! >= 0 ? `, error code ${hex8(e.errorCode!)}` : "";
      return `${VECTOR_NAMES[e.vector!] ?? "exception"} (vector ${e.vector}${code}) at EIP ${hex8(eip)}, bytes ${bytes()} (no IDT loaded)`;
    }
    case "triple-fault": {
      const e = o.exit!;
      return `triple fault: ${VECTOR_NAMES[e.vector!] ?? `vector ${e.vector}`} could not be delivered (then vector ${e.errorCode}), at EIP ${hex8(eip)}`;
    }
  }
}

export function runExitStatus(o: RunOutcome | DriverOutcome): number {
  if (o.reason === "exit-port") return Math.min(o.exitStatus!, 255);
  if (o.reason === "halted" || o.reason === "idle") return EXIT_OK;
  return EXIT_FAILURE;
}

/** The flags `run` and `record` share. */
export const RUN_FLAGS = {
  engine: { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "the CPU engine" },
  mem: { type: "size", default: DEFAULT_MEM, arg: "SIZE", help: "guest RAM: a multiple of 4K from 1M to 1G" },
  disk: { type: "string", arg: "FILE", help: "raw disk image for the ATA disk (lockstep disk create)" },
  serial: { type: "string", default: "stdio", arg: "stdio|tcp:PORT|none", help: "where COM1 goes" },
  nic: { type: "string", arg: "udp:LISTEN:PEER", help: "the NIC's frames as UDP datagrams on 127.0.0.1" },
  debugcon: { type: "enum", values: ["stdout", "stderr", "none"], help: "where the debug console (port 0xE9) goes (default: stdout when --serial is not stdio, else none)" },
  clock: { type: "enum", values: ["host", "virtual"], default: "host", help: "guest time source" },
  cmdline: { type: "string", default: "", arg: "TEXT", help: "the Multiboot command line" },
  "max-instructions": { type: "int", min: 0, arg: "N", help: "stop after N retired instructions (default: no limit)" },
} as const;

export const RUN_USAGE = "GUEST [--engine wasm|ts] [--mem SIZE] [--disk FILE] [--serial stdio|tcp:PORT|none] [--debugcon stdout|stderr|none] [--nic udp:LISTEN:PEER] [--clock host|virtual] [--cmdline TEXT] [--max-instructions N]";

export const RUN_EXIT_STATUS = [
  "N  the guest wrote N to port 0xF4 (values above 255 are reported as 255)",
  "0  the guest halted (HLT with nothing to wake it) without writing an exit status",
  "1  the guest faulted, executed INT n or triple-faulted, or --max-instructions was reached",
  "2  usage error, a GUEST or disk that is missing, unreadable or not loadable, or a --serial/--nic port already in use",
  "3  internal error (e.g. the engines are not built: npm run build)",
  "130, 143  interrupted by SIGINT (Ctrl-C) or SIGTERM (128 + the signal's number)",
];

/**
 * Boots GUEST with the run flags and runs it to the end; with `record`,
 * records: every outside value goes to that replay log as the guest takes
 * it, and the log replaces record.log once its end record is written.
 * With `restore` (run --from), the machine is built from the snapshot's
 * configuration and image and put in its state before it runs.
 */
export async function runGuest(
  { flags, positionals, stdout, stderr }: CommandContext<typeof RUN_FLAGS>,
  command: string,
  record?: { log: string; force: boolean },
  restore?: RestoreSetup,
): Promise<number> {
  const mem = flags.mem;
  if (mem < MIN_RAM || mem > MAX_RAM || mem % 4096 !== 0) {
    throw new UsageError(`--mem must be a multiple of 4K between 1M and 1G, got ${mem}`);
  }
  const serial = flags.serial;
  const tcp = /^tcp:(\d+)$/.exec(serial);
  if (serial !== "stdio" && serial !== "none" && !(tcp && Number(tcp[1]) > 0 && Number(tcp[1]) < 65536)) {
    throw new UsageError(`--serial must be stdio, none or tcp:PORT, got ${serial}`);
  }
  let nicSpec: ReturnType<typeof parseNicSpec> | undefined;
  if (flags.nic !== undefined) {
    try { nicSpec = parseNicSpec(flags.nic); } catch (e) { throw new UsageError((e as Error).message); }
  }
  const file = positionals[0] ?? restore?.file ?? "";
  const image = restore ? restore.snap.image : readGuest(file);
  let disk: BlockStore | undefined = restore?.overlay;
  await initHash();
  if (flags.disk !== undefined && !restore) {
    try { disk = FileBlockStore.open(flags.disk); } catch (e) {
      if (e instanceof BlockStoreError) throw new CommandError(e.message, EXIT_USAGE);
      throw e;
    }
  }

  let client: Socket | null = null;
  const toSerial = (b: number) => {
    if (serial === "stdio") stdout.write(Uint8Array.of(b));
    else if (client) client.write(Uint8Array.of(b));
  };
  // With COM1 on stdout the debug console stays quiet by default: the
  // runtime's guests print on both when they have a UART (guests/disk/disk.c),
  // and every byte would show twice.
  const debugcon = flags.debugcon ?? (serial === "stdio" ? "none" : "stdout");
  const machineConfig = {
    engine: flags.engine, loadEngine, ramSize: mem, clock: flags.clock, cmdline: restore ? restore.config.cmdline : guestCmdline(file, image, flags.cmdline),
    disk, nic: restore ? restore.config.nic : nicSpec !== undefined, world: restore?.world,
    onSerial: toSerial,
    onDebugcon: debugcon === "none" ? undefined
      : (b: number) => (debugcon === "stderr" ? stderr : stdout).write(Uint8Array.of(b)),
  };

  // Ctrl-C (or SIGTERM) ends the run cleanly: a recording still gets its end
  // record. Caught from before the boot, so no signal leaves a half-made log.
  let signal: NodeJS.Signals | null = null;
  const onSignal = (s: NodeJS.Signals) => { signal ??= s; };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const cleanups: (() => void)[] = [() => { process.off("SIGINT", onSignal); process.off("SIGTERM", onSignal); }];
  const protect: [string, string][] = [[file, "the guest image"]];
  if (flags.disk !== undefined) protect.push([flags.disk, "the --disk image"]);
  let target: LogTarget | null = null;
  try {
    target = record ? LogTarget.open(record.log, { force: record.force, protect }) : null;
    let machine: Machine;
    let recording: Recording | null = null;
    try {
      if (target) {
        const t = target;
        recording = await Recording.start(image, { ...machineConfig, sink: (chunk) => t.write(chunk) });
        machine = recording.machine;
      } else {
        machine = await bootLive(image, machineConfig);
        if (restore) {
          try {
            restore.apply(machine);
          } catch (e) {
            machine.dispose();
            throw e;
          }
        }
      }
    } catch (e) {
      if (e instanceof LoadError) throw new CommandError(`${file}: ${e.message}`, EXIT_USAGE);
      throw e;
    }

    // Outside input: stdin or a TCP client for COM1, UDP for the NIC. All of
    // it reaches the guest through the machine's gate (logged when recording).
    let inputs = 0;
    // Input wakes an idle guest at once (its reply then waits for no timer).
    const waker = new Waker();
    if (serial === "stdio" && !process.stdin.isTTY && flags.clock === "host") {
      inputs++;
      const onData = (d: Buffer) => { machine.serialInput(d); waker.wake(); };
      process.stdin.on("data", onData);
      cleanups.push(() => { process.stdin.off("data", onData); process.stdin.pause(); });
    }
    if (tcp) {
      inputs++;
      const server = createServer((s) => {
        client = s;
        s.on("data", (d) => { machine.serialInput(d); waker.wake(); });
        s.on("close", () => { if (client === s) client = null; });
      });
      const port = Number(tcp[1]);
      await new Promise<void>((res, rej) => {
        server.once("error", (e) => rej(portError("--serial", serial, `TCP port ${port}`, e)));
        server.listen(port, "127.0.0.1", res);
      });
      cleanups.push(() => { client?.destroy(); server.close(); });
    }
    if (nicSpec && machine.nic) {
      inputs++;
      const nic = machine.nic;
      const udp = await UdpTransport.open({ listenPort: nicSpec.listenPort, peerPort: nicSpec.peerPort })
        .catch((e: unknown) => { throw portError("--nic", flags.nic!, `UDP port ${nicSpec.listenPort}`, e); });
      udp.onFrame((f) => { machine.nicInput(f); waker.wake(); });
      nic.onTransmit((f) => udp.send(f));
      cleanups.push(() => udp.close());
    }

    const t0 = performance.now();
    let outcome: DriverOutcome;
    const max = flags["max-instructions"];
    try {
      // The driver yields between slices, so input and signals get in.
      outcome = await runRealtime(machine, { maxInstructions: max, canWake: inputs > 0 || flags.clock === "host", interrupted: () => signal !== null, waker });
    } finally {
      disk?.flush();
    }
    const seconds = (performance.now() - t0) / 1000;
    const n = Number(outcome.instructions);
    const mips = seconds > 0 ? n / seconds / 1e6 : 0;
    let logNote = "";
    if (recording && target) {
      const end = recording.finish();
      target.commit();
      logNote = `; log ${target.file}: ${recording.bytes} bytes, ${(Number(end.guestNs) / 1e9).toFixed(3)} s of guest time`;
    }
    if (restore) logNote += `; restored from ${restore.file} at instruction ${restore.snap.meta.icount}, final state hash ${toHex(stateHash(machine))}`;
    const why = outcome.reason === "interrupted" ? `interrupted by ${signal} at EIP ${hex8(machine.engine.eip)}` : describeOutcome(machine, outcome, max);
    stderr.write(`lockstep ${command}: ${n} instructions in ${seconds.toFixed(3)} s, ${mips.toFixed(1)} MIPS (${flags.engine}); ${why}${logNote}\n`);
    // The shell's convention for a process ended by a signal: 128 + its number.
    if (outcome.reason === "interrupted") return 128 + osConstants.signals[signal!];
    return runExitStatus(outcome);
  } finally {
    target?.abandon();
    for (const c of cleanups.reverse()) c();
  }
}

/** A port lockstep cannot listen on, as a usage error naming the flag (exit 2). */
function portError(flag: string, value: string, what: string, e: unknown): CommandError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === "EADDRINUSE" ? `${what} on 127.0.0.1 is already in use`
    : code === "EACCES" ? `permission denied to listen on ${what} of 127.0.0.1`
    : `cannot listen on ${what} of 127.0.0.1: ${(e as Error).message}`;
  return new CommandError(`${flag} ${value}: ${why}`, EXIT_USAGE);
}

/**
 * `run`'s flags: the shared ones, without defaults for what a snapshot
 * fixes (--mem, --clock, --cmdline: a restore takes the snapshot's), and --from.
 */
const RUN_COMMAND_FLAGS = {
  ...RUN_FLAGS,
  mem: { type: "size", arg: "SIZE", help: `${RUN_FLAGS.mem.help} (default: 32M; with --from, the snapshot's)` },
  clock: { type: "enum", values: ["host", "virtual"], help: "guest time source (default: host; with --from, the snapshot's)" },
  cmdline: { type: "string", arg: "TEXT", help: "the Multiboot command line (default: empty; with --from, the snapshot's)" },
  from: { type: "string", arg: "FILE", help: "go on from this snapshot (lockstep snapshot save) instead of booting" },
} as const;

export default defineCommand({
  usage: RUN_USAGE.replace("GUEST", "[GUEST] [--from FILE]"),
  description: `
Boots GUEST, a Multiboot kernel or a static ELF32 i386 executable (e.g.
guests/bin/hello.elf), on the lockstep PC: 16550A UART (COM1, IRQ 4), 8259A
PICs, 8254 PIT (IRQ 0), CMOS RTC, debug console (port 0xE9), exit port (0xF4),
an ATA disk (IRQ 14) with --disk and the paravirtual NIC (IRQ 11) with --nic.
See docs/machine.md.

COM1 goes to stdout; with --serial stdio, standard input is COM1's input;
with --serial tcp:PORT, COM1 is a TCP server on 127.0.0.1. The debug console
goes to stdout only when COM1 does not (the guests print on both, so every
character would show twice); --debugcon stdout shows it anyway.
Time follows the host clock (--clock host, the default) or the instruction
count (--clock virtual: 10 ns an instruction; runs are then deterministic).

The run ends when the guest writes port 0xF4, halts with interrupts off,
faults or executes INT n before loading an IDT, triple-faults, or retires
--max-instructions instructions; with the virtual clock also when it waits in
HLT with nothing scheduled and no input source. A one-line summary then goes
to stderr: instructions retired, seconds, MIPS, engine and why it ended.
SIGINT (Ctrl-C) or SIGTERM ends the run the same way, "interrupted by
SIGINT", with status 130 (SIGTERM: 143). 'lockstep record' is the same run,
logged for replay.

With --from FILE the run goes on from a snapshot ('lockstep snapshot save',
docs/snapshot-format.md) instead of booting: the VM is rebuilt from the
snapshot's configuration and guest image (GUEST may be left out; when given
it must be that image), on either engine, and the summary line adds the
final state hash. --mem, --clock and --cmdline may be left out (a value that
differs from the snapshot's is refused). A snapshot of a VM with a disk needs
--disk, the image it was taken with (checked by its identity); the image is
only read: the snapshot's disk writes, and the guest's writes after the
restore, stay in memory and are gone when the run ends. A snapshot of a VM
with a NIC gets its NIC, wired to UDP only with --nic. --max-instructions
counts from the restore. A snapshot that is truncated, damaged or made for
another configuration is refused (status 2) before anything runs.`,
  flags: RUN_COMMAND_FLAGS,
  positionals: { min: 0, max: 1, name: "GUEST (a Multiboot kernel or ELF32 i386 executable)" },
  exitStatus: RUN_EXIT_STATUS.map((l) => (l.startsWith("2 ") ? l + ", or a --from snapshot that is missing, truncated, damaged or made for another configuration" : l)),
  async run(ctx) {
    const f = ctx.flags;
    if (f.from === undefined) {
      if (ctx.positionals.length === 0) throw new UsageError("missing GUEST (a Multiboot kernel or ELF32 i386 executable), or --from FILE");
      return runGuest({ ...ctx, flags: { ...f, mem: f.mem ?? DEFAULT_MEM, clock: f.clock ?? "host", cmdline: f.cmdline ?? "" } }, "run");
    }
    const restore = await prepareRestore(f.from, { guest: ctx.positionals[0], mem: f.mem, clock: f.clock, cmdline: f.cmdline, disk: f.disk, nic: f.nic });
    return runGuest({ ...ctx, flags: { ...f, mem: restore.config.ramSize, clock: restore.config.clock, cmdline: "" } }, "run", undefined, restore);
  },
});

export type RunFlags = Flags<typeof RUN_FLAGS>;
