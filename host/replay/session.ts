// Record and replay of a whole run, over the Machine and the gate:
//
//   record: the configuration in the header, then the live gate logs every outside value as the
//           machine takes it; finish() writes the end record (final count,
//           output digest, state hash).
//   replay: the machine is rebuilt from the log's configuration and the guest image
//           alone, its gate reads the log, and at the end the outputs and the
//           state must hash to the end record's values.
//
// The log is written through a sink (a file, memory, or a channel) and read
// from a parsed log; docs/replay.md describes the whole scheme.

import { Machine, type MachineConfig, type RunOutcome } from "../machine/machine.js";
import type { Engine, EngineKind } from "../engine/engine.js";
import { LogFormatError, LogWriter, type LogCut, type LogEnd, type LogEntry, type LogHeader, type ParsedLog } from "./log-format.js";
import { LiveGate, type World } from "./live-gate.js";
import { EntryQueue, ReplayGate } from "./replay-gate.js";
import type { DerivedKind } from "../machine/input-gate.js";
import { kindSpec } from "./event-kinds.js";
import { DivergenceError } from "./divergence.js";
import { DiscardStore } from "./discard-store.js";
import { hashBytes, initHash, toHex } from "../common/hash.js";
import { OutputDigest } from "./output-digest.js";
import { stateHash } from "./state-hash.js";
import {
  ConfigMismatchError, decodeVmConfig, encodeVmConfig, vmConfig, vmConfigHash, type VmConfig,
} from "./vm-config.js";

/**
 * Makes an engine of `kind` with `ramSize` bytes of RAM: the caller's way of
 * loading the core (in Node, loadEngine from host/node/core-modules.ts).
 */
export type EngineLoader = (kind: EngineKind, opts: { ramSize: number }) => Promise<Engine>;

/** What the guest sends out; each callback is optional. */
export interface OutputHandlers {
  onSerial?: (byte: number) => void;
  onDebugcon?: (byte: number) => void;
  onTransmit?: (frame: Uint8Array) => void;
}

export interface RecordOptions extends OutputHandlers {
  engine: EngineKind;
  loadEngine: EngineLoader;
  ramSize: number;
  clock: MachineConfig["clock"];
  cmdline?: string;
  disk?: MachineConfig["disk"];
  nic?: boolean;
  world?: Partial<World>;
  /** Receives the log, record by record. */
  sink: (chunk: Uint8Array) => void;
}

function tapOutputs(h: OutputHandlers, digest: OutputDigest): Pick<MachineConfig, "onSerial" | "onDebugcon" | "onTransmit" | "onExit"> {
  return {
    onSerial: (b) => { digest.serial(b); h.onSerial?.(b); },
    onDebugcon: (b) => { digest.debugcon(b); h.onDebugcon?.(b); },
    onTransmit: (f) => { digest.frame(f); h.onTransmit?.(f); },
    onExit: (s) => digest.exit(s),
  };
}

/** A live run whose outside values are being logged. */
export class Recording {
  private constructor(
    readonly machine: Machine,
    readonly config: VmConfig,
    readonly writer: LogWriter,
    private readonly digest: OutputDigest,
  ) {}

  static async start(image: Uint8Array, o: RecordOptions): Promise<Recording> {
    await initHash();
    const config = vmConfig(image, o);
    const writer = new LogWriter(o.sink, vmConfigHash(config), 0n, encodeVmConfig(config));
    const digest = await OutputDigest.create();
    const gate = new LiveGate({ clock: o.clock, world: o.world, record: (i, k, p) => writer.append(i, k, p) });
    const machine = Machine.create(image, {
      engine: await o.loadEngine(o.engine, { ramSize: o.ramSize }), clock: o.clock, cmdline: o.cmdline, disk: o.disk, nic: o.nic,
      gate, ...tapOutputs(o, digest),
    });
    return new Recording(machine, config, writer, digest);
  }

  /** Events logged so far. */
  get bytes(): number {
    return this.writer.bytesWritten;
  }

  /** Ends the log at the machine's current count; returns the end record. */
  finish(): LogEnd {
    const m = this.machine;
    const end: LogEnd = {
      finalIcount: m.engine.icount, guestNs: BigInt(Math.floor(m.nowNs())), outputDigest: this.digest.digest(), stateHash: stateHash(m),
    };
    this.writer.end(end.finalIcount, end.guestNs, end.outputDigest, end.stateHash);
    return end;
  }
}

export interface ReplayOptions extends OutputHandlers {
  engine: EngineKind;
  loadEngine: EngineLoader;
  /** Stop after this many instructions (default: the log's final count). */
  until?: bigint;
  /** Longest runSync() call, to replay in slices of another size than the recording's. */
  slice?: number | (() => number);
}

export interface ReplayResult {
  machine: Machine;
  config: VmConfig;
  /** Where the replay stopped and the last outcome. */
  icount: bigint;
  outcome: RunOutcome | null;
  /** Only when the replay ran to the log's end. */
  matched?: { outputDigest: boolean; stateHash: boolean };
  outputDigest: Uint8Array;
  stateHash: Uint8Array;
  end: LogEnd;
  cut?: undefined;
}

/** How far the replay of a log cut short got (docs/replay.md, "A log cut short"). */
export interface ReplayCut extends LogCut {
  /** Entries in the log, all of which the replay used. */
  entries: number;
  /** The count the whole cut log reaches: its last entry's (one more for an RDTSC/ENTROPY, taken by that instruction). */
  lastIcount: bigint;
}

/** A replay of a log with no end record: nothing to compare the final hashes with. */
export interface CutReplayResult extends Omit<ReplayResult, "end" | "cut" | "matched"> {
  end: null;
  cut: ReplayCut;
}

/** A parsed log that may have been cut short (parseLog with allowCut). */
export interface MaybeCutLog {
  header: LogHeader;
  entries: LogEntry[];
  end: LogEnd | null;
  cut?: LogCut | null;
}

/**
 * The replay gate for a log cut short. Once every entry has been used the
 * replay is at the log's last count, where the machine may still compute a
 * consequence (an interrupt, a disk completion) whose check entry was cut
 * off: it is the machine's own, so it goes through unchecked rather than as
 * a divergence. Nothing runs past that count (replay() stops there).
 */
class CutReplayGate extends ReplayGate {
  override derived(icount: bigint, kind: DerivedKind, value: number): void {
    if (this.remaining === 0) return;
    super.derived(icount, kind, value);
  }
}

/** Where a cut log's replay stops: every entry used, the last one's instruction retired if it is taken by one. */
export function cutLogEnd(log: MaybeCutLog): bigint {
  const last = log.entries.at(-1);
  if (!last) return log.header.startIcount;
  return kindSpec(last.kind)?.phase === "instruction" ? last.icount + 1n : last.icount;
}

/** The configuration a parsed log carries, checked against its header's hash. */
export function logConfig(log: { header: LogHeader }): VmConfig {
  const at = log.header.configOffset ?? 0;
  let config: VmConfig;
  try {
    config = decodeVmConfig(log.header.config);
  } catch (e) {
    throw new LogFormatError(at, (e as Error).message);
  }
  const h = vmConfigHash(config);
  if (toHex(h) !== toHex(log.header.configHash)) {
    throw new LogFormatError(at, `the configuration does not hash to the header's configuration hash (${toHex(log.header.configHash).slice(0, 16)}…)`);
  }
  return config;
}

/**
 * Replays a parsed log on `image`. Refuses (ConfigMismatchError) before
 * running if the image is not the one recorded; throws DivergenceError at the
 * first event the replay does not reproduce.
 */
export async function replay(image: Uint8Array, log: ParsedLog, o: ReplayOptions): Promise<ReplayResult>;
export async function replay(image: Uint8Array, log: MaybeCutLog, o: ReplayOptions): Promise<ReplayResult | CutReplayResult>;
export async function replay(image: Uint8Array, log: MaybeCutLog, o: ReplayOptions): Promise<ReplayResult | CutReplayResult> {
  await initHash();
  const config = logConfig(log);
  // Everything else comes from the log's configuration: only the image given can differ.
  const imageHash = toHex(hashBytes(image));
  if (imageHash !== config.image || image.length !== config.imageBytes) {
    throw new ConfigMismatchError(`this log was recorded for another configuration: guest image (log: ${config.image.slice(0, 16)}…, ${config.imageBytes} bytes; given: ${imageHash.slice(0, 16)}…, ${image.length} bytes)`);
  }
  const logEnd = log.end;
  const stop = logEnd ? logEnd.finalIcount : cutLogEnd(log);
  const until = o.until ?? stop;
  if (until > stop) {
    throw new RangeError(logEnd
      ? `--until ${until} is past the log's end at instruction ${stop}`
      : `--until ${until} is past the end of the log, which was cut short: its last complete record takes the replay to instruction ${stop}`);
  }
  if (until < log.header.startIcount) throw new RangeError(`--until ${until} is before the log's start at instruction ${log.header.startIcount}`);

  const digest = await OutputDigest.create();
  const gate = new (logEnd ? ReplayGate : CutReplayGate)({ clock: config.clock, queue: new EntryQueue(log.entries) });
  const machine = Machine.create(image, {
    engine: await o.loadEngine(o.engine, { ramSize: config.ramSize }), clock: config.clock, cmdline: config.cmdline, nic: config.nic,
    disk: config.disk ? new DiscardStore(config.disk.sectors, config.disk.identity) : undefined,
    gate, ...tapOutputs(o, digest),
  });
  const slice = typeof o.slice === "function" ? o.slice : () => (o.slice as number | undefined) ?? Number.MAX_SAFE_INTEGER;
  let outcome: RunOutcome | null = null;
  for (;;) {
    const left = until - machine.engine.icount;
    const n = BigInt(slice());
    outcome = machine.runSync(Number(left < n ? left : n));
    if (machine.engine.icount >= until) break;
    if (outcome.reason !== "limit") {
      const next = gate.next();
      throw new DivergenceError(machine.engine.icount,
        `the guest stopped (${outcome.reason}) but the log goes on to instruction ${stop}${next ? `; its next event is ${next.what}` : ""}`, next?.offset);
    }
  }
  const common = { machine, config, icount: machine.engine.icount, outcome, outputDigest: digest.digest(), stateHash: stateHash(machine) };
  if (!logEnd) {
    // Every entry must have been used by the last one's count, as at a whole log's end.
    if (until === stop && gate.remaining > 0) {
      throw new DivergenceError(until, `the log has ${gate.remaining} events the replay never reached`, gate.next()?.offset);
    }
    const cut = log.cut ?? { offset: 0, bytes: 0 };
    return { ...common, end: null, cut: { offset: cut.offset, bytes: cut.bytes, entries: log.entries.length, lastIcount: stop } };
  }
  const result: ReplayResult = { ...common, end: logEnd };
  if (o.until === undefined || until === logEnd.finalIcount) {
    if (gate.remaining > 0) {
      throw new DivergenceError(until, `the log has ${gate.remaining} events the replay never reached`);
    }
    result.matched = {
      outputDigest: toHex(result.outputDigest) === toHex(logEnd.outputDigest),
      stateHash: toHex(result.stateHash) === toHex(logEnd.stateHash),
    };
  }
  return result;
}

export { ConfigMismatchError, DivergenceError };
