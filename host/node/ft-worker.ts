// One replica of `lockstep ft` in a worker thread: its engine, its machine,
// its role, and the peer link — over the MessagePort it was given
// (host/ft/port-link.ts), or over loopback TCP (tcp-link.ts: the primary, or
// a standby, listens on a free port and says which; the main thread tells
// the backup, or the live replica that is to bring the standby in). It tells the main thread what the outside world
// may see (released outputs, numbered), what happened, and its status; the
// arbiter is the main thread's (claims go up and answers come back), so one
// process holds one arbiter client. Messages to the main thread: FtWorkerEvent;
// from it: FtWorkerCommand.

import { closeSync, openSync, readSync } from "node:fs";
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import type { PeerLink } from "../ft/link.js";
import { initHash } from "../common/hash.js";
import type { EngineKind } from "../engine/engine.js";
import type { Arbiter, ArbiterClaim, ClaimResult } from "../ft/arbiter.js";
import { FIRST_CONTACT_MS, type Timeouts } from "../ft/failure-detector.js";
import type { LinkStats } from "../ft/link.js";
import type { Output } from "../ft/output-gate.js";
import { portLink } from "../ft/port-link.js";
import { newReplica } from "../ft/new-replica.js";
import type { Replica, ReplicaStatus } from "../ft/replica.js";
import type { TransferFigures } from "../ft/state-transfer.js";
import { SharedDiskStore, type DiskEmit, type ImageReader } from "../ft/shared-disk.js";
import { frameTagger } from "../ft/wire.js";
import type { ClockMode } from "../machine/guest-time.js";
import { adoptCoreModules, loadEngine } from "./core-modules.js";
import type { CoreModules } from "../engine/load.js";
import { driveReplica } from "../ft/driver.js";
import { connectLink, listenLink, type Listener } from "./tcp-link.js";
import { Waker } from "../common/waker.js";

export interface FtWorkerData {
  role: "primary" | "backup";
  /**
   * The logging channel: a MessagePort to the other worker, loopback TCP, or
   * (a warm spare: a standby started ahead, its engine loaded) a port the
   * main thread sends with a "join" command when a live replica needs a backup.
   */
  channel: { kind: "port"; port: MessagePort } | { kind: "tcp" } | { kind: "later" };
  image: Uint8Array;
  engine: EngineKind;
  ramSize: number;
  clock: ClockMode;
  cmdline: string;
  /** Attach the paravirtual NIC (frames in from the main thread, out as outputs). */
  nic: boolean;
  /**
   * The shared disk image (docs/ft-disk.md): opened read-only here; its
   * writes are outputs the main thread applies. Identity as the main thread
   * hashed it, so the worker does not read the whole image again.
   */
  disk: { path: string; sectors: number; identity: string } | null;
  configHash: Uint8Array;
  vm: string;
  name: string;
  timeouts: Timeouts;
  slice: number;
  maxLag: string;
  key: Uint8Array | null;
  /** Stop dead (a fail-stop: no goodbye, nothing more sent) on reaching this instruction count. */
  failAt: string | null;
  /** Cut the channel (both ways; both replicas go on) on reaching this instruction count. */
  partitionAt: string | null;
  /** Flip one bit of RAM (the last page's first byte, through the engine) on reaching this instruction count. */
  corruptAt?: string | null;
  /** How often a status is posted, ms (default 100). */
  statusMs?: number;
  /** A backup that joins the live replica by state transfer (host/ft/state-transfer.ts) rather than booting. */
  standby?: boolean;
  /** Instructions between divergence checks (host/ft/divergence.ts); 0: none. */
  checkEvery?: number;
  /** Checkpoint mode (docs/ft-checkpoint.md): a checkpoint every `epochMs`; none: replay mode. */
  checkpoint?: { epochMs: number } | null;
}

/** With each status: when it was taken (performance.timeOrigin + now, ms: comparable across threads) and the link's counters. */
export interface FtStatusExtra {
  atMs: number;
  link: LinkStats;
}

export type FtWorkerEvent =
  | { type: "release"; outputs: Output[] }
  /** The TCP listener is up (transport tcp): the primary's, for the backup to connect to; a standby's, for the live replica to. */
  | { type: "listening"; port: number }
  | { type: "say"; line: string }
  /** A state transfer from this replica to a new backup ended. */
  | { type: "transferred"; figures: TransferFigures }
  | { type: "status"; status: ReplicaStatus; extra?: FtStatusExtra }
  | { type: "claim"; id: number; claim: ArbiterClaim }
  | { type: "failed"; icount: string }
  | { type: "done"; status: ReplicaStatus; extra?: FtStatusExtra }
  /** The worker asks for the core's compiled modules (answered with "modules"). */
  | { type: "modules?" };

export type FtWorkerCommand =
  | { type: "claimed"; id: number; result: ClaimResult }
  /** Bytes on COM1 / a frame on the NIC from the outside world: taken only by the live replica. */
  | { type: "input"; bytes: Uint8Array }
  | { type: "frame"; bytes: Uint8Array }
  /** Transport tcp, to the backup: the primary listens on this loopback port. */
  | { type: "connect"; port: number }
  /** Cut the channel now (an injected partition): the link closes, both replicas go on. */
  | { type: "partition" }
  /** To the live replica: a new backup waits on this port; send it the state (state-transfer.ts). */
  | { type: "attach"; port: MessagePort }
  /** To a warm spare (channel "later"): the live replica is on this port; join it as its backup. */
  | { type: "join"; port: MessagePort }
  /** The same over TCP: the new backup listens on this loopback port. */
  | { type: "attach-tcp"; port: number }
  /**
   * The core as the main thread compiled it: the worker compiles nothing, and
   * every worker runs one compiled module, so the optimizing compiler's work
   * on the interpreter is done once, not once per replica on a host whose
   * cores the replicas themselves keep busy.
   */
  | { type: "modules"; modules: CoreModules };

const d = workerData as FtWorkerData;
const parent = parentPort!;
const post = (e: FtWorkerEvent) => parent.postMessage(e);

/** The main thread's arbiter, asked over the parent port. */
const pending = new Map<number, (r: ClaimResult) => void>();
let nextId = 1;
const arbiter: Pick<Arbiter, "claim"> = {
  claim(claim) {
    const id = nextId++;
    post({ type: "claim", id, claim });
    return new Promise((res) => pending.set(id, res));
  },
};

const waker = new Waker();
/** The channel's frame tags (keyed when there is a key): one for every MessagePort link this replica opens. */
const tagger = initHash().then(() => frameTagger(d.key));
let replica: Replica | null = null;
let link: PeerLink | null = null;
let listener: Listener | null = null;
let connectTo: ((port: number) => void) | null = null;
const connectPort = new Promise<number>((res) => { connectTo = res; });
let joinWith: ((port: MessagePort) => void) | null = null;
const joinPort = new Promise<MessagePort>((res) => { joinWith = res; });
let partitioned = false;
const partition = () => {
  if (partitioned || !link) return;
  partitioned = true;
  post({ type: "say", line: `${d.name}: the channel is cut (an injected partition)` });
  link.close("partitioned (an injected fault)");
};

const onCommand = (c: FtWorkerCommand) => {
  waker.wake();
  if (c.type === "claimed") {
    pending.get(c.id)?.(c.result);
    pending.delete(c.id);
  } else if (c.type === "connect") connectTo?.(c.port);
  else if (c.type === "partition") partition();
  else if (c.type === "attach") void workerPortLink(c.port).then(attach);
  else if (c.type === "join") joinWith?.(c.port);
  else if (c.type === "modules") gotModules?.(c.modules);
  else if (c.type === "attach-tcp") {
    connectLink({ host: "127.0.0.1", port: c.port, key: d.key }).then(attach, (e: Error) => post({ type: "say", line: `${d.name}: no new backup: ${e.message}` }));
  }
  else if (replica?.isLive && replica.machine) {
    if (c.type === "input") replica.machine.serialInput(c.bytes);
    else replica.machine.nicInput(c.bytes);
  }
};
parent.on("message", onCommand);

/** A link over a MessagePort, tagged as every link of this replica. */
const workerPortLink = async (port: MessagePort) => portLink(port, await tagger);

/** A new backup on link `l`: the live replica sends it its state, then they are a pair. */
function attach(l: PeerLink): void {
  l.onFrame(() => waker.wake());
  try {
    replica!.attachBackup(l, performance.now());
  } catch (e) {
    post({ type: "say", line: `${d.name}: no new backup: ${(e as Error).message}` });
    l.close("not taken");
  }
  waker.wake();
}

/** The channel to the peer: the port given, or loopback TCP (the primary and a standby listen, the backup connects). */
async function openLink(): Promise<PeerLink> {
  if (d.channel.kind === "port") return workerPortLink(d.channel.port);
  if (d.channel.kind === "later") return workerPortLink(await joinPort);
  if (d.role === "backup" && !d.standby) return connectLink({ host: "127.0.0.1", port: await connectPort, key: d.key });
  return new Promise<PeerLink>((resolve, reject) => {
    listenLink({
      host: "127.0.0.1", port: 0, key: d.key,
      onLink: (l) => resolve(l),
      onRefused: (peer, reason) => post({ type: "say", line: `${d.name}: refused a connection from ${peer}: ${reason}` }),
    }).then((l) => {
      listener = l;
      post({ type: "listening", port: l.port });
    }, reject);
  });
}

await initHash(); // state hashes (state transfer) and keyed frame tags
let gotModules: ((m: CoreModules) => void) | null = null;
const modules = new Promise<CoreModules>((res) => { gotModules = res; });
post({ type: "modules?" });
adoptCoreModules(await modules);
const engine = await loadEngine(d.engine, { ramSize: d.ramSize });
link = await openLink();
link.onFrame(() => waker.wake());
/** The image read-only: the guest's writes go out as outputs, never to this file. */
function openImage(path: string, sectors: number): ImageReader & { close(): void } {
  const fd = openSync(path, "r");
  return {
    sectors,
    read(lba, count) {
      const out = new Uint8Array(count * 512);
      for (let at = 0; at < out.length; ) {
        const n = readSync(fd, out, at, out.length - at, lba * 512 + at);
        if (n <= 0) throw new Error(`disk image ${path}: short read at sector ${lba + Math.floor(at / 512)} (the file shrank?)`);
        at += n;
      }
      return out;
    },
    close: () => closeSync(fd),
  };
}
const diskImage = d.disk === null ? null : openImage(d.disk.path, d.disk.sectors);
const disk = d.disk === null ? undefined : (emit: DiskEmit) => new SharedDiskStore(diskImage!, d.disk!.identity, emit);

const options = {
  image: d.image, disk, engine, clock: d.clock, cmdline: d.cmdline, nic: d.nic, configHash: d.configHash, vm: d.vm, name: d.name,
  link, arbiter: arbiter as Arbiter, standby: d.standby ?? false,
  transferred: (figures: TransferFigures) => post({ type: "transferred", figures }), timeouts: { ...d.timeouts, firstContactMs: FIRST_CONTACT_MS }, slice: d.slice, maxLag: BigInt(d.maxLag),
  limit: d.failAt === null ? undefined : BigInt(d.failAt),
  checkEvery: d.checkEvery ?? 0,
  checkpoint: d.checkpoint ?? undefined,
  release: (outputs: Output[]) => { post({ type: "release", outputs }); },
  say: (line: string) => post({ type: "say", line }),
};
const now = performance.now();
const r: Replica = newReplica(d.role, options, now);
replica = r;

const partitionAt = d.partitionAt === null ? null : BigInt(d.partitionAt);
const failAt = d.failAt === null ? null : BigInt(d.failAt);
let corruptAt = d.corruptAt == null ? null : BigInt(d.corruptAt);
let lastStatus = 0;
const statusMs = d.statusMs ?? 100;
const extra = (): FtStatusExtra => ({ atMs: performance.timeOrigin + performance.now(), link: { ...link!.stats } });
const outcome = await driveReplica(r, {
  waker,
  stop: () => {
    const t = performance.now();
    if (t - lastStatus >= statusMs) {
      lastStatus = t;
      post({ type: "status", status: r.status(), extra: extra() });
    }
    // The guest's count; a checkpoint-mode backup, which runs none until it goes live, the last checkpoint's.
    const icount = r.machine?.engine.icount ?? (d.checkpoint ? r.status().icount : null);
    if (partitionAt !== null && icount !== null && icount >= partitionAt) partition();
    if (corruptAt !== null && r.machine !== null && r.machine.engine.icount >= corruptAt) {
      const e = r.machine.engine, at = e.ramSize - 4096;
      e.writeMem(at, Uint8Array.of(e.readMem(at, 1)[0]! ^ 1));
      post({ type: "say", line: `${d.name}: one bit of RAM flipped (page ${at / 4096}) at instruction ${e.icount} (--fail corrupt)` });
      corruptAt = null;
    }
    return failAt !== null && icount !== null && icount >= failAt;
  },
});
if (outcome === "stopped") {
  // A fail-stop: report where, then end the thread without a word to the peer.
  post({ type: "failed", icount: String(r.machine?.engine.icount ?? r.status().icount) });
  process.exit(0);
}
diskImage?.close();
post({ type: "done", status: r.status(), extra: extra() });
link.close("done");
await (listener as Listener | null)?.close();
// Nothing left to wait for: the thread ends once the listener is gone.
parent.off("message", onCommand);
