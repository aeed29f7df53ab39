// lockstep snapshot save GUEST --at N --out FILE [run flags]: runs a guest to
// instruction N and writes its snapshot (docs/snapshot-format.md);
// lockstep snapshot inspect FILE: what a snapshot holds. The restore is
// `lockstep run --from FILE` (run.ts), set up by host/cli/snapshot-restore.ts.
//
// A snapshot run never writes the user's disk image: the disk is a
// copy-on-write overlay (host/snapshot/overlay.ts) over the image opened
// read-only, and the snapshot carries the sectors written.

import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { initHash, toHex } from "../common/hash.js";
import { MAX_RAM, MIN_RAM } from "../engine/load.js";
import { LoadError } from "../machine/elf.js";
import type { Machine } from "../machine/machine.js";
import { parseNicSpec } from "../net/frame-transport.js";
import { hashState } from "../replay/state-hash.js";
import { encodeVmConfig, vmConfig, type VmConfig } from "../replay/vm-config.js";
import { captureSnapshot } from "../snapshot/snapshot.js";
import { bootLive } from "../node/boot.js";
import { runRealtime } from "../machine/realtime.js";
import { UdpTransport } from "../node/udp-transport.js";
import { UsageError } from "./args.js";
import { CommandError, defineCommand, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./command.js";
import { describeOutcome, guestCmdline, readGuest, RUN_FLAGS } from "./run.js";
import { countedEntropy, openOverlay, readInput, readSnapshotFile, sameFile } from "./snapshot-restore.js";

const SAVE_FLAGS = {
  at: { type: "string", arg: "N", help: "the instruction count to take the snapshot at (required)" },
  out: { type: "string", arg: "FILE", help: "the snapshot file to write (required)" },
  force: { type: "boolean", help: "replace FILE if it exists (never the GUEST or --disk image)" },
  engine: RUN_FLAGS.engine,
  mem: RUN_FLAGS.mem,
  disk: { type: "string", arg: "FILE", help: "raw disk image for the ATA disk: read, never written (the guest's writes go to the snapshot)" },
  serial: { type: "enum", values: ["stdio", "none"], default: "stdio", help: "where COM1 goes" },
  nic: RUN_FLAGS.nic,
  clock: RUN_FLAGS.clock,
  cmdline: RUN_FLAGS.cmdline,
} as const;

export const save = defineCommand({
  usage: "GUEST --at N --out FILE [--force] [--engine wasm|ts] [--mem SIZE] [--disk FILE] [--serial stdio|none] [--nic udp:LISTEN:PEER] [--clock host|virtual] [--cmdline TEXT]",
  description: `
Runs GUEST as 'lockstep run' does (COM1 on stdout) until N instructions have
retired, then writes the VM's snapshot to FILE: the configuration, the guest
image, the CPU's registers, every device's state, guest time, guest RAM and
the disk sectors the guest wrote, deflated and checksummed
(docs/snapshot-format.md). 'lockstep run --from FILE' goes on from there, on
either engine; with --clock virtual it then does exactly what the run would
have done had it not stopped.

The --disk image is opened read-only and never changes: the guest's writes
go to memory and into the snapshot. FILE is written beside itself and
renamed into place once complete; an existing FILE is refused unless --force
is given, and the GUEST or --disk image even then. A guest that ends (or
waits idle with the virtual clock) before instruction N leaves no file.`,
  flags: SAVE_FLAGS,
  positionals: { min: 1, max: 1, name: "GUEST (a Multiboot kernel or ELF32 i386 executable)" },
  exitStatus: [
    "0  the snapshot was written",
    "1  the guest ended before instruction N (no file is written)",
    "2  usage error; GUEST or --disk missing, unreadable or not loadable; FILE exists (without --force), is the GUEST or --disk image, or cannot be written",
    "3  internal error",
    "130, 143  interrupted by SIGINT or SIGTERM (no file is written)",
  ],
  async run({ flags, positionals, stdout, stderr }) {
    if (flags.at === undefined || !/^\d+$/.test(flags.at)) throw new UsageError(flags.at === undefined ? "snapshot save needs --at N" : `--at must be an instruction count, got ${JSON.stringify(flags.at)}`);
    if (flags.out === undefined || flags.out === "") throw new UsageError("snapshot save needs --out FILE");
    const at = BigInt(flags.at);
    if (at > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`--at ${at} is too large`);
    const mem = flags.mem;
    if (mem < MIN_RAM || mem > MAX_RAM || mem % 4096 !== 0) throw new UsageError(`--mem must be a multiple of 4K between 1M and 1G, got ${mem}`);
    let nicSpec: ReturnType<typeof parseNicSpec> | undefined;
    if (flags.nic !== undefined) {
      try { nicSpec = parseNicSpec(flags.nic); } catch (e) { throw new UsageError((e as Error).message); }
    }
    const file = positionals[0];
    const out = flags.out;
    for (const [p, what] of [[file, "the GUEST image"], ...(flags.disk ? [[flags.disk, "the --disk image"]] : [])] as [string, string][]) {
      if (existsSync(out) && sameFile(out, p)) throw new CommandError(`--out ${out} is ${what}; refusing to overwrite it`, EXIT_USAGE);
    }
    if (existsSync(out) && !flags.force) throw new CommandError(`${out} exists; give --force to replace it`, EXIT_USAGE);
    const image = readGuest(file);
    await initHash();
    const overlay = flags.disk !== undefined ? openOverlay(flags.disk) : undefined;
    const cmdline = guestCmdline(file, image, flags.cmdline);
    const entropy = flags.clock === "virtual" ? countedEntropy(0) : undefined;
    let m: Machine;
    try {
      m = await bootLive(image, {
        engine: flags.engine, ramSize: mem, clock: flags.clock, cmdline, disk: overlay, nic: nicSpec !== undefined, world: entropy?.world,
        onSerial: flags.serial === "stdio" ? (b) => stdout.write(Uint8Array.of(b)) : undefined,
      });
    } catch (e) {
      overlay?.close();
      if (e instanceof LoadError) throw new CommandError(`${file}: ${e.message}`, EXIT_USAGE);
      throw e;
    }
    let signal: NodeJS.Signals | null = null;
    const onSignal = (s: NodeJS.Signals) => { signal ??= s; };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    let udp: UdpTransport | null = null;
    try {
      if (nicSpec && m.nic) {
        const nic = m.nic;
        udp = await UdpTransport.open({ listenPort: nicSpec.listenPort, peerPort: nicSpec.peerPort })
          .catch((e: unknown) => { throw new CommandError(`--nic ${flags.nic}: cannot listen on UDP port ${nicSpec.listenPort}: ${(e as Error).message}`, EXIT_USAGE); });
        const u = udp;
        u.onFrame((f) => m.nicInput(f));
        nic.onTransmit((f) => u.send(f));
      }
      const t0 = performance.now();
      const o = await runRealtime(m, { maxInstructions: Number(at), canWake: flags.clock === "host" || udp !== null, interrupted: () => signal !== null });
      if (o.reason === "interrupted") {
        stderr.write(`lockstep snapshot save: interrupted by ${signal} at instruction ${m.engine.icount}, before ${at}; no snapshot written\n`);
        return 128 + (signal === "SIGINT" ? 2 : 15);
      }
      if (m.engine.icount !== at) {
        stderr.write(`lockstep snapshot save: the guest ended at instruction ${m.engine.icount}, before ${at} (${describeOutcome(m, o)}); no snapshot written\n`);
        return EXIT_FAILURE;
      }
      const runSeconds = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      const config = encodeVmConfig(vmConfig(image, { ramSize: mem, clock: flags.clock, cmdline, nic: m.nic !== undefined, disk: overlay }));
      const bytes = captureSnapshot(m, { config, image, engine: flags.engine, hashState, overlay, entropyDraws: entropy?.draws() ?? 0 });
      const partial = `${out}.partial`;
      try {
        writeFileSync(partial, bytes);
        renameSync(partial, out);
      } catch (e) {
        rmSync(partial, { force: true });
        throw new CommandError(`cannot write ${out}: ${(e as Error).message}`, EXIT_USAGE);
      }
      const saveSeconds = (performance.now() - t1) / 1000;
      stderr.write(`lockstep snapshot save: ${out}: ${bytes.length} bytes at instruction ${at} (${flags.engine}); ran ${runSeconds.toFixed(3)} s, saved in ${saveSeconds.toFixed(3)} s\n`);
      return EXIT_OK;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      udp?.close();
      m.dispose();
      overlay?.close();
    }
  },
});

const NAMES: Record<number, string> = { 0: "none", 1: "deflate", 2: "pages" };

export const inspect = defineCommand({
  usage: "FILE [--json]",
  description: `
Reads a snapshot (lockstep snapshot save), checks all of it — every section's
hash and the file's — and prints its sections (offset, compression, stored
and raw bytes, ratio), the instruction count and engine it was taken at, its
guest time and state hash, and the VM configuration. A damaged or truncated
file is refused with the byte offset and the section. See
docs/snapshot-format.md.`,
  flags: { json: { type: "boolean", default: false, help: "print one JSON object instead of the table" } },
  positionals: { min: 1, max: 1, name: "FILE (a snapshot)" },
  exitStatus: [
    "0  the snapshot is well formed",
    "2  usage error, or a FILE that is missing, unreadable, truncated or damaged",
    "3  internal error",
  ],
  async run({ flags, positionals, stdout }) {
    const file = positionals[0];
    const { snap, config, bytes } = await readSnapshotFile(file, { checkImage: false });
    const m = snap.meta;
    const sections = snap.file.layout.map((l) => ({
      name: l.name, offset: l.offset, compression: NAMES[l.compression]!, storedBytes: l.storedBytes, rawBytes: l.rawBytes,
    }));
    const diskSectors = snap.file.sections.DISK ? new DataView(snap.file.sections.DISK.buffer, snap.file.sections.DISK.byteOffset).getUint32(0, true) : 0;
    const summary = {
      file, bytes: bytes.length, version: snap.file.version, icount: m.icount.toString(), engine: m.engine, guestNs: m.guestNs,
      stateHash: toHex(m.stateHash), disk: m.disk, diskSectorsWritten: diskSectors, entropyDraws: m.entropyDraws, config, sections,
    };
    if (flags.json) {
      stdout.write(JSON.stringify(summary) + "\n");
      return EXIT_OK;
    }
    const raw = sections.reduce((n, s) => n + s.rawBytes, 0);
    const lines = [
      `${file}: lockstep snapshot version ${summary.version}, ${bytes.length} bytes (${raw} raw, ratio ${(raw / bytes.length).toFixed(1)}:1)`,
      `taken at     instruction ${summary.icount} on ${m.engine}, guest time ${(m.guestNs / 1e6).toFixed(3)} ms`,
      `state hash   ${summary.stateHash}`,
      `disk         ${m.disk === "overlay" ? `${diskSectors} sectors written since the image was opened` : m.disk}`,
      `config       ${JSON.stringify(config)}`,
      "",
      "section     offset  compression      stored         raw   ratio",
      ...sections.map((s) =>
        `${s.name.padEnd(8)}  ${String(s.offset).padStart(8)}  ${s.compression.padEnd(11)}  ${String(s.storedBytes).padStart(10)}  ${String(s.rawBytes).padStart(10)}  ${s.storedBytes > 0 ? (s.rawBytes / s.storedBytes).toFixed(1) + ":1" : "-"}`),
    ];
    stdout.write(lines.join("\n") + "\n");
    return EXIT_OK;
  },
});

export default save;
