// `lockstep primary` and `lockstep backup`: one replica of the pair in this
// process, the logging channel over TCP (host/node/tcp-link.ts, optionally
// authenticated with a pre-shared key), the arbiter a directory both
// processes reach. The primary listens and waits for its backup before the
// guest starts; the backup connects. Each prints the outputs it releases:
// the primary while it is live, the backup once it has gone live (first the
// outputs it kept, which the primary may already have shown). With
// `--outputs numbered` each output is a JSON line with its number, so a
// reader of both streams can take each number once (docs/ft.md).
// With `--nic udp:LISTENPORT:PEERPORT` the guest has the NIC: frames sent to
// LISTENPORT go into the guest only while this replica is live, released
// frames go to PEERPORT, and the host answers endpoint probes on LISTENPORT
// (docs/ft-endpoints.md) so clients find the live replica.
// With `--disk FILE` the guest has the ATA disk on one image both processes
// reach (docs/ft-disk.md): each replica reads it through its own overlay and
// never writes it; the process whose replica is live writes each disk
// output it releases, so only the live primary's released writes reach it.
// `lockstep backup --standby --listen HOST:PORT` boots nothing: it waits for
// a live primary to connect and send it the state (a standby, docs/ft.md "A
// new backup"), refusing another VM's and waiting on. With `--spare
// HOST:PORT` a replica live without a backup brings such a standby in
// (host/node/spare.ts).

import { initHash, toHex } from "../common/hash.js";
import { MAX_RAM, MIN_RAM } from "../engine/load.js";
import type { Arbiter } from "../ft/arbiter.js";
import { DEFAULT_TIMEOUTS, FIRST_CONTACT_MS } from "../ft/failure-detector.js";
import type { PeerLink } from "../ft/link.js";
import type { Output } from "../ft/output-gate.js";
import { DEFAULT_CHECK_EVERY } from "../ft/divergence.js";
import { applyDiskOutput, SharedDiskStore, type DiskEmit } from "../ft/shared-disk.js";
import { BlockStoreError } from "../devices/block-store.js";
import { FileBlockStore } from "../node/file-block-store.js";
import { BackupReplica, PrimaryReplica } from "../ft/replica.js";
import { parseHostPort, parseNicSpec, type NicSpec } from "../net/frame-transport.js";
import { decodeProbe, encodeProbeAnswer, isProbe, ProbeError } from "../net/probe.js";
import { loadEngine } from "../node/core-modules.js";
import { driveReplica } from "../ft/driver.js";
import { Waker } from "../common/waker.js";
import { SpareKeeper } from "../node/spare.js";
import { connectLink, listenLink, readKeyFile, TcpLinkError, type Listener } from "../node/tcp-link.js";
import { UdpTransport } from "../node/udp-transport.js";
import { vmConfig, vmConfigHash } from "../replay/vm-config.js";
import { UsageError } from "./args.js";
import { openArbiter } from "./arbiter.js";
import { CommandError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CommandContext } from "./command.js";
import { guestCmdline, readGuest } from "./run.js";

export const REPLICA_FLAGS = {
  arbiter: { type: "string", arg: "file:PATH", help: "the arbiter both replicas reach (required)" },
  vm: { type: "string", arg: "NAME", help: "the VM's name on the arbiter (default: from the configuration's hash)" },
  key: { type: "string", arg: "FILE", help: "the channel's pre-shared key: 64 hex digits (docs/ft-protocol.md)" },
  spare: { type: "string", arg: "HOST:PORT", help: "whenever this replica is live without a backup, bring in the standby waiting there (lockstep backup --standby --listen HOST:PORT)" },
  engine: { type: "enum", values: ["wasm", "ts"], default: "wasm", help: "the CPU engine" },
  mem: { type: "size", default: 32 << 20, arg: "SIZE", help: "guest RAM: a multiple of 4K from 1M to 1G (both replicas alike)" },
  clock: { type: "enum", values: ["host", "virtual"], default: "host", help: "guest time source (both replicas alike)" },
  cmdline: { type: "string", default: "", arg: "TEXT", help: "the Multiboot command line (both replicas alike)" },
  outputs: { type: "enum", values: ["raw", "numbered"], default: "raw", help: "COM1 bytes as they are, or every output as a JSON line with its number" },
  nic: { type: "string", arg: "udp:LISTEN:PEER", help: "the NIC on UDP, 127.0.0.1 (both replicas or neither; each its own LISTEN)" },
  disk: { type: "string", arg: "FILE", help: "the ATA disk on one raw image both replicas reach; only the live primary's released writes reach it (docs/ft-disk.md)" },
  "timeout-ms": { type: "int", min: 2, default: DEFAULT_TIMEOUTS.timeoutMs, arg: "MS", help: "silence after which the peer counts as failed" },
  "heartbeat-ms": { type: "int", min: 1, default: DEFAULT_TIMEOUTS.intervalMs, arg: "MS", help: "longest this side stays silent" },
  "max-instructions": { type: "int", min: 1, arg: "N", help: "the guest runs no further than instruction N (then this replica stops dead: a fault to test with)" },
  "check-every": { type: "int", min: 0, default: DEFAULT_CHECK_EVERY, arg: "N", help: "the primary compares its state with the backup's every N instructions, 0: never (a backup follows the primary's checks; it uses N once it is live)" },
} as const;

type ReplicaFlags = CommandContext<typeof REPLICA_FLAGS & { listen: { type: "string"; help: string }; connect: { type: "string"; help: string }; standby: { type: "boolean"; help: string } }>["flags"];

type Replica = PrimaryReplica | BackupReplica;

/** The exit status of a replica stopped by a signal (dead: the peer takes over). */
const signalStatus = (sig: string | null) => (sig === "SIGINT" ? 130 : sig === "SIGTERM" ? 143 : EXIT_FAILURE);

export async function runReplicaProcess(role: "primary" | "backup", flags: ReplicaFlags, positionals: string[], stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
  const say = (s: string) => stderr.write(`lockstep ${role}: ${s}\n`);
  const mem = flags.mem;
  if (mem < MIN_RAM || mem > MAX_RAM || mem % 4096 !== 0) throw new UsageError(`--mem must be a multiple of 4K between 1M and 1G, got ${mem}`);
  if (flags["heartbeat-ms"] >= flags["timeout-ms"]) throw new UsageError(`--heartbeat-ms (${flags["heartbeat-ms"]}) must be below --timeout-ms (${flags["timeout-ms"]})`);
  if (flags.arbiter === undefined) throw new UsageError(`${role} needs --arbiter file:PATH (a directory both replicas reach)`);
  // A standby (backup --standby) listens, as the primary does: live primaries connect to it when they need a backup.
  const standby = role === "backup" && flags.standby === true;
  if (role === "backup" && standby && flags.connect !== undefined) throw new UsageError("--standby waits on --listen HOST:PORT for a live primary to connect; it takes no --connect");
  if (role === "backup" && !standby && flags.listen !== undefined) throw new UsageError("--listen is for a standby (--standby); a backup that starts with its primary takes --connect HOST:PORT");
  const endpointFlag = role === "primary" || standby ? "listen" : "connect";
  const endpoint = endpointFlag === "listen" ? flags.listen : flags.connect;
  if (endpoint === undefined) throw new UsageError(standby ? "a standby needs --listen HOST:PORT (where a live primary brings it in)" : `${role} needs --${endpointFlag} HOST:PORT`);
  let where: { host: string; port: number };
  try { where = parseHostPort(endpoint, `--${endpointFlag}`); } catch (e) { throw new UsageError((e as Error).message); }
  let spareAt: { host: string; port: number } | undefined;
  if (flags.spare !== undefined) {
    try { spareAt = parseHostPort(flags.spare, "--spare"); } catch (e) { throw new UsageError((e as Error).message); }
  }
  let nicSpec: NicSpec | undefined;
  if (flags.nic !== undefined) {
    try { nicSpec = parseNicSpec(flags.nic); } catch (e) { throw new UsageError(`--nic: ${(e as Error).message}`); }
  }
  let key: Uint8Array | null = null;
  if (flags.key !== undefined) {
    try {
      const k = readKeyFile(flags.key);
      if (k.warning) say(k.warning);
      key = k.key;
    } catch (e) {
      throw new CommandError((e as Error).message, EXIT_USAGE);
    }
  }
  if (flags.disk !== undefined && (standby || spareAt)) {
    // A standby would open the image after the primary had written to it: its identity would no longer be the pair's.
    throw new UsageError("--disk does not go with --standby or --spare yet: a standby opens the image after the live primary has written it (docs/ft-disk.md)");
  }
  const arbiter: Arbiter = openArbiter(flags.arbiter);
  const file = positionals[0]!;
  const image = readGuest(file);
  const cmdline = guestCmdline(file, image, flags.cmdline);
  await initHash();
  // This process's store on the image: the replica reads through it, and it writes what this process releases.
  let disk: FileBlockStore | undefined;
  if (flags.disk !== undefined) {
    try { disk = FileBlockStore.open(flags.disk); } catch (e) {
      if (e instanceof BlockStoreError) throw new CommandError(e.message, EXIT_USAGE);
      throw e;
    }
  }
  const diskCounts = { writes: 0, flushes: 0 };
  const configHash = vmConfigHash(vmConfig(image, { ramSize: mem, clock: flags.clock, cmdline, nic: nicSpec !== undefined, disk }));
  const vm = flags.vm ?? `ft-${toHex(configHash).slice(0, 16)}`;

  // The NIC's port is bound first, so a port in use fails before the arbiter is claimed.
  let replica: Replica | null = null;
  const waker = new Waker();
  const nic = nicSpec ? await openNic(role, nicSpec, flags.nic!, () => replica, waker, say) : null;

  if (role === "primary") {
    const first = await arbiter.claim({ vm, epoch: 1, replica: "primary", atMs: Date.now(), reason: "first start" });
    if (!first.won) {
      throw new CommandError(`the arbiter already holds epoch ${first.holder.epoch} of ${vm} (a finished run's? lockstep arbiter reset ${flags.arbiter} --vm ${vm})`, EXIT_USAGE);
    }
  }

  // Loaded before the wait, so the replica exists (and answers probes as live) as soon as its peer is there.
  let engine = await loadEngine(flags.engine, { ramSize: mem });
  let interrupted: string | null = null;
  /** A standby following a primary (or taking one on): further connections are refused. */
  let following = false;
  // The channel: the primary waits for its backup's connection, the backup
  // connects, a standby waits for a live primary's.
  let listener: Listener | null = null;
  let nextLink: () => Promise<PeerLink | null>;
  try {
    if (standby) {
      const w = await waitForPrimaries(where, key, waker, () => following, () => interrupted !== null, say);
      listener = w.listener;
      say(`standby: waiting for a live primary on ${where.host}:${w.listener.port} (vm ${vm})`);
      nextLink = w.next;
    } else {
      let first: PeerLink;
      if (role === "primary") {
        first = await new Promise<PeerLink>((resolve, reject) => {
          listenLink({
            host: where.host, port: where.port, key,
            onLink: (l, peer) => { say(`backup connected from ${peer}`); resolve(l); },
            onRefused: (peer, reason) => say(`refused a connection from ${peer}: ${reason}`),
          }).then((l) => {
            listener = l;
            say(`waiting for the backup on ${where.host}:${l.port} (vm ${vm})`);
          }, reject);
        });
      } else {
        first = await connectLink({ host: where.host, port: where.port, key });
        say(`connected to the primary at ${where.host}:${where.port} (vm ${vm})`);
      }
      nextLink = () => Promise.resolve(first);
    }
  } catch (e) {
    if (e instanceof TcpLinkError || (e as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new CommandError(`--${endpointFlag} ${endpoint}: ${(e as Error).message}`, EXIT_USAGE);
    }
    throw e;
  }

  const onSignal = (sig: NodeJS.Signals) => { interrupted = sig; waker.wake(); };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  let exitStatus: number | null = null;
  // Resolves when stdout has taken the bytes (a pipe's write may finish
  // later): only then may the backup forget them (PrimaryRole.delivered).
  const print = (outputs: Output[]): Promise<void> => {
    const chunks: Uint8Array[] = [];
    const sent: Promise<void>[] = [];
    for (const o of outputs) {
      if (o.channel === "exit") exitStatus = o.value as number;
      if (o.channel === "frame" && nic) sent.push(nic.transmit(o.value as Uint8Array));
      // A released write goes on the image now, a flush makes the writes before it durable.
      if (disk && applyDiskOutput(disk, o)) diskCounts[o.channel === "disk" ? "writes" : "flushes"]++;
      if (flags.outputs === "numbered") {
        const value = o.value instanceof Uint8Array ? Array.from(o.value) : o.value;
        chunks.push(new TextEncoder().encode(JSON.stringify({ seq: o.seq, channel: o.channel, value }) + "\n"));
      } else if (o.channel === "serial") {
        chunks.push(Uint8Array.of(o.value as number));
      }
    }
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) { bytes.set(c, at); at += c.length; }
    sent.push(new Promise((res) => stdout.write(bytes, () => res())));
    return Promise.all(sent).then(() => undefined);
  };

  // The channel in use: the first link, then each one a spare was brought in on.
  let link: PeerLink | null = null;
  const spare = spareAt && new SpareKeeper({ ...spareAt, key, waker, say, onLink: (l) => { link = l; } });
  const limit = flags["max-instructions"] === undefined ? undefined : BigInt(flags["max-instructions"]);
  let r: Replica;
  let outcome: "done" | "stopped";
  for (;;) {
    const l = await nextLink();
    if (l === null) {
      say(`stopped while waiting for a primary (${interrupted})`);
      process.exit(signalStatus(interrupted));
    }
    link = l;
    following = true;
    l.onFrame(() => waker.wake());
    const options = {
      image, engine, clock: flags.clock, cmdline, nic: nic !== null, configHash, vm, name: standby ? "standby" : role, link: l, arbiter,
      timeouts: { intervalMs: flags["heartbeat-ms"], timeoutMs: flags["timeout-ms"], firstContactMs: FIRST_CONTACT_MS }, slice: 100_000, maxLag: 50_000_000n,
      limit, checkEvery: flags["check-every"], release: print, say, standby, transferred: () => spare?.transferred(),
      disk: disk && ((emit: DiskEmit) => new SharedDiskStore(disk!, disk!.identity(), emit)),
    };
    r = role === "primary" ? new PrimaryReplica(options, performance.now()) : new BackupReplica(options, performance.now());
    replica = r;
    outcome = await driveReplica(r, {
      waker,
      stop: () => {
        spare?.poll(r, performance.now());
        return interrupted !== null || (limit !== undefined && r.machine !== null && r.machine.engine.icount >= limit);
      },
    });
    // A standby that took no state (it refused its peer, or the peer went away first) is still a standby.
    if (standby && outcome === "done" && r.machine === null) {
      l.close("this standby took no state");
      replica = null;
      following = false;
      // A fresh engine for the next peer: nothing of this one is left behind.
      engine = await loadEngine(flags.engine, { ramSize: mem });
      say(`standby: still waiting for a live primary on ${where.host}:${listener!.port}`);
      continue;
    }
    break;
  }
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  const icount = r.machine?.engine.icount ?? 0n;
  const ls = (link as PeerLink).stats;
  say(`channel: ${ls.framesOut} frames (${ls.bytesOut} bytes) sent, ${ls.framesIn} (${ls.bytesIn} bytes) received, ${ls.dropped} repeats dropped`);
  if (nic) say(nic.summary());
  if (disk) say(`disk: ${diskCounts.writes} sectors written to ${flags.disk}, ${diskCounts.flushes} flushes`);
  if (outcome === "stopped") {
    // Stopped dead: no goodbye to the peer (it must notice the silence), as a crash would.
    say(`stopped at instruction ${icount} (${interrupted ?? "--max-instructions"})`);
    process.exit(signalStatus(interrupted));
  }
  (link as PeerLink).close("done");
  await (listener as Listener | null)?.close();
  await nic?.close();
  if (disk) { disk.flush(); disk.close(); }
  const st = r.status();
  say(`done at instruction ${icount} (${st.state}, epoch ${st.epoch})`);
  if (r.lostArbiter) return EXIT_FAILURE;
  if (exitStatus !== null) return Math.min(exitStatus, 255);
  return EXIT_OK;
}

/**
 * A standby's listener: live primaries connect to it when they need a
 * backup. One is taken at a time; a connection while a primary is being
 * followed is closed at once (this standby is someone's backup already).
 * `next` resolves to the next connection, or null once `stopped()`.
 */
async function waitForPrimaries(where: { host: string; port: number }, key: Uint8Array | null, waker: Waker, busy: () => boolean, stopped: () => boolean, say: (s: string) => void): Promise<{ listener: Listener; next: () => Promise<PeerLink | null> }> {
  const queue: PeerLink[] = [];
  const listener = await listenLink({
    host: where.host, port: where.port, key,
    onLink: (l, peer) => {
      if (busy() || queue.length > 0) {
        say(`standby: refused a connection from ${peer}: this standby has a primary already`);
        l.close("this standby has a primary already");
        return;
      }
      say(`standby: a primary connected from ${peer}`);
      queue.push(l);
      waker.wake();
    },
    onRefused: (peer, reason) => say(`standby: refused a connection from ${peer}: ${reason}`),
  });
  const next = async (): Promise<PeerLink | null> => {
    while (queue.length === 0 && !stopped()) await waker.wait(1_000);
    return stopped() ? null : queue.shift()!;
  };
  return { listener, next };
}

interface ReplicaNic {
  /** Sends a released frame to PEERPORT; resolves once the socket has handed it on. */
  transmit(frame: Uint8Array): Promise<void>;
  summary(): string;
  close(): Promise<void>;
}

/**
 * The replica's NIC on UDP: guest frames in while the replica is live (a
 * replica that is not live drops them, as a dead host would: the client
 * resends), probes answered by this host, not the guest.
 */
async function openNic(role: "primary" | "backup", spec: NicSpec, text: string, replica: () => Replica | null, waker: Waker, say: (s: string) => void): Promise<ReplicaNic> {
  let udp: UdpTransport;
  try {
    udp = await UdpTransport.open({ listenPort: spec.listenPort, peerPort: spec.peerPort });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "EADDRINUSE" ? `UDP port ${spec.listenPort} on 127.0.0.1 is already in use` : (e as Error).message;
    throw new CommandError(`--nic ${text}: ${why}`, EXIT_USAGE);
  }
  const n = { framesIn: 0, notLive: 0, framesOut: 0, probes: 0, malformed: 0 };
  let lastMalformed = "";
  udp.onError((e) => say(`nic: ${e.message}`));
  udp.onFrame((b, from) => {
    const r = replica();
    if (isProbe(b)) {
      let ask;
      try {
        ask = decodeProbe(b);
      } catch (e) {
        if (!(e instanceof ProbeError)) throw e;
        n.malformed++;
        lastMalformed = e.message;
        return;
      }
      if (ask.kind !== "ask") {
        n.malformed++;
        lastMalformed = "an answer sent to a replica";
        return;
      }
      n.probes++;
      // Before the replica exists (the primary waits for its backup) it is not live, at epoch 1.
      udp.sendTo(encodeProbeAnswer({ nonce: ask.nonce, role, live: r?.isLive ?? false, epoch: r?.epoch ?? 1 }), from);
      return;
    }
    if (r && r.isLive && r.machine) {
      n.framesIn++;
      r.machine.nicInput(b);
      waker.wake();
    } else {
      n.notLive++;
    }
  });
  return {
    transmit: (frame) => {
      n.framesOut++;
      return new Promise((res) => udp.send(frame, () => res()));
    },
    summary: () => `nic: ${n.framesIn} frames in, ${n.notLive} dropped while not live, ${n.framesOut} out; ${n.probes} probes answered, ${n.malformed} malformed dropped${n.malformed ? ` (last: ${lastMalformed})` : ""}; ${udp.stats.droppedIn} empty or oversized datagrams dropped`,
    close: () => udp.close(),
  };
}
