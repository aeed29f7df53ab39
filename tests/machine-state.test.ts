// Machine.saveState()/loadState() (host/machine/machine.ts) and the state
// hash over them (host/replay/state-hash.ts).
//
// Round trip: a guest runs on one engine to a random instruction count, its
// state is saved and loaded into a fresh machine of the same configuration on
// the OTHER engine; both then run on the same number of instructions, taking
// the same inputs at the same counts, and must end with equal state hashes,
// equal outputs and equal disks. Cases: ticks.elf (PIT, RTC, RDTSC, serial
// echo) with serial input, and kv.elf with the NIC and a MemoryBlockStore
// disk with request frames; each under both clocks.
//
// How the two machines get the same outside world:
// - virtual clock: each has its own live gate (host/replay/live-gate.ts).
//   Under this clock a live gate reads nothing from the host (no guest here
//   executes RDRAND), so two of them are equal whatever happened before; the
//   inputs are queued on both at the same counts.
// - host clock: a live gate is not plain state (it remembers when it last
//   read its clock and where guest time was then), so a second live gate on
//   an equal fake clock would still read differently from the first. The
//   first machine therefore records (its gate logs every value it reads,
//   on a fake world clock as in tests/helpers/replay.ts), and the loaded
//   machine runs on a replay gate (host/replay/replay-gate.ts) fed with the
//   log entries written after the save: exactly the readings, bytes and
//   frames the first machine took, at the counts it took them, with its
//   interrupts and disk completions checked as they happen.
//
// The save point, slicing and inputs come from one seed, random per run
// unless MACHINE_STATE_SEED is set, and printed in the test names.

import { beforeAll, describe, expect, it } from "vitest";
import { initHash, toHex } from "../host/common/hash.js";
import { MemoryBlockStore } from "../host/devices/block-store.js";
import type { EngineKind } from "../host/engine/engine.js";
import { encodeRequest, Op, request } from "../host/kv/protocol.js";
import { Machine, type MachineState, type RunOutcome } from "../host/machine/machine.js";
import { bootLive } from "../host/node/boot.js";
import { loadEngine } from "../host/node/core-modules.js";
import { KINDS } from "../host/replay/event-kinds.js";
import { LiveGate } from "../host/replay/live-gate.js";
import type { LogEntry } from "../host/replay/log-format.js";
import { EntryQueue, ReplayGate } from "../host/replay/replay-gate.js";
import { hashState, stateHash, stateJson } from "../host/replay/state-hash.js";
import { randomKvScript } from "./helpers/kv-script.js";
import { fakeWorld, guestImage, MiB, otherEngine, stateDiff, steppingClock, text } from "./helpers/replay.js";

function pickSeed(given: string | undefined): number {
  if (given === undefined) return Math.floor(Math.random() * 0x7fffffff) + 1;
  const n = Number(given);
  if (!Number.isInteger(n) || n < 1 || n > 0x7fffffff) throw new Error(`MACHINE_STATE_SEED must be an integer in [1, 2^31), got ${JSON.stringify(given)}`);
  return n;
}
const SEED = pickSeed(process.env.MACHINE_STATE_SEED);
process.stderr.write(`machine-state: seed ${SEED} (re-run with MACHINE_STATE_SEED=${SEED})\n`);
beforeAll(() => initHash());

/** A 32-bit xorshift; `below(n)` in [0, n). */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
  return { next, below: (n: number) => next() % n };
}

type Clock = "host" | "virtual";
const TERMINAL = new Set<RunOutcome["reason"]>(["exit-port", "halted", "fault", "int", "triple-fault"]);

interface Input { serial?: Uint8Array; frame?: Uint8Array }

interface Scenario {
  image: string;
  cmdline?: string;
  ramSize: number;
  nic?: boolean;
  diskSectors?: number;
  /** Inputs go in only once this holds of the output so far. */
  ready: (out: Out) => boolean;
  /** The next input (from the scenario's own stream). */
  input: (r: ReturnType<typeof rng>) => Input;
  /** Also give the next input whenever the guest is idle (it waits for one). */
  feedWhenIdle: boolean;
  /** Most instructions between inputs while the guest runs. */
  gapMax: number;
  /** The save point is in [saveMin, saveMin + saveSpan); the run goes on `after` instructions past it. */
  saveMin: number;
  saveSpan: number;
  after: number;
  /** Largest runSync slice. */
  sliceMax: number;
}

interface Out { serial: number[]; debugcon: number[]; frames: string[] }
const newOut = (): Out => ({ serial: [], debugcon: [], frames: [] });
const handlers = (o: Out) => ({
  onSerial: (b: number) => o.serial.push(b),
  onDebugcon: (b: number) => o.debugcon.push(b),
  onTransmit: (f: Uint8Array) => o.frames.push(toHex(f)),
});
const outAfter = (o: Out, mark: { serial: number; debugcon: number; frames: number }) =>
  ({ serial: text(o.serial.slice(mark.serial)), debugcon: text(o.debugcon.slice(mark.debugcon)), frames: o.frames.slice(mark.frames) });
const markOf = (o: Out) => ({ serial: o.serial.length, debugcon: o.debugcon.length, frames: o.frames.length });

/** Printable bytes other than 'q' (which ends ticks). */
function echoBytes(r: ReturnType<typeof rng>): Uint8Array {
  return Uint8Array.from({ length: 1 + r.below(12) }, () => { const b = 0x20 + r.below(0x5f); return b === 0x71 ? 0x51 : b; });
}

/** Request frames for kv: a PUT, then a seeded random script's, then GETs of the PUT's key, forever. */
function kvFrames(seed: number): (r: ReturnType<typeof rng>) => Input {
  const frames = [encodeRequest(request(Op.Put, 77, 1, { key: Uint8Array.of(1, 2, 3), value: Uint8Array.of(9, 8, 7) }))];
  for (const s of randomKvScript(seed, 40)) {
    if ("send" in s) for (let i = 0; i < (s.times ?? 1); i++) frames.push(s.send instanceof Uint8Array ? s.send : encodeRequest(s.send));
  }
  let i = 0;
  let seq = 2;
  return () => ({ frame: i < frames.length ? frames[i++]! : encodeRequest(request(Op.Get, 77, seq++, { key: Uint8Array.of(1, 2, 3) })) });
}

const SCENARIOS: Record<"ticks" | "kv", (seed: number) => Scenario> = {
  ticks: () => ({
    image: "ticks", cmdline: "ticks=1000000 every=5 hz=1000", ramSize: 32 * MiB,
    ready: (o) => o.serial.length > 0, input: (r) => ({ serial: echoBytes(r) }), feedWhenIdle: false,
    gapMax: 400_000, saveMin: 1, saveSpan: 2_500_000, after: 1_500_000, sliceMax: 60_000,
  }),
  kv: (seed) => ({
    image: "kv", ramSize: 32 * MiB, nic: true, diskSectors: 8192,
    ready: (o) => /kv: ready/.test(text(o.serial)), input: kvFrames(seed), feedWhenIdle: true,
    gapMax: 150_000, saveMin: 1, saveSpan: 4_000_000, after: 1_500_000, sliceMax: 60_000,
  }),
};

/** The first machine's driver: random slices, inputs at random counts once the guest is ready (and when it waits idle). */
class Driver {
  private nextAt: bigint | null = null;
  readonly fed: { at: bigint; input: Input }[] = [];
  constructor(private readonly m: Machine, private readonly out: Out, private readonly sc: Scenario, private readonly r: ReturnType<typeof rng>) {}

  runTo(target: bigint): void {
    const m = this.m;
    for (let calls = 0; m.engine.icount < target; calls++) {
      if (calls > 200_000) throw new Error(`no progress at instruction ${m.engine.icount}`);
      const ready = this.sc.ready(this.out);
      if (ready && this.nextAt === null) this.nextAt = m.engine.icount + BigInt(this.r.below(this.sc.gapMax));
      let stop = target;
      if (this.nextAt !== null && this.nextAt > m.engine.icount && this.nextAt < stop) stop = this.nextAt;
      const o = m.runSync(Math.min(1 + this.r.below(this.sc.sliceMax), Number(stop - m.engine.icount)));
      if (TERMINAL.has(o.reason)) throw new Error(`the guest stopped (${o.reason}) at ${m.engine.icount}: ${text(this.out.serial)}`);
      if (ready && (m.engine.icount >= this.nextAt! || (o.reason === "idle" && this.sc.feedWhenIdle))) {
        const input = this.sc.input(this.r);
        if (input.serial) m.serialInput(input.serial);
        if (input.frame) m.nicInput(input.frame);
        this.fed.push({ at: m.engine.icount, input });
        this.nextAt = m.engine.icount + BigInt(this.r.below(this.sc.gapMax));
      }
    }
  }
}

/** Runs `m` to exactly `target` in random slices; the guest may not stop or go idle before it. */
function runExactly(m: Machine, target: bigint, r: ReturnType<typeof rng>, sliceMax: number): void {
  for (let calls = 0; m.engine.icount < target; calls++) {
    if (calls > 200_000) throw new Error(`no progress at instruction ${m.engine.icount}`);
    const o = m.runSync(Math.min(1 + r.below(sliceMax), Number(target - m.engine.icount)));
    // A replayed host-clock guest is idle where the recording's was until the log's next reading: go on.
    if (TERMINAL.has(o.reason)) throw new Error(`the loaded machine stopped (${o.reason}) at ${m.engine.icount}, before ${target}`);
    if (o.reason === "idle" && o.instructions === 0n && m.gate.mode === "live") throw new Error(`the loaded machine went idle at ${m.engine.icount}, before ${target}`);
  }
}

const storeBytes = (s: MemoryBlockStore) => s.read(0, s.sectors);

describe.each([
  ["ticks", "virtual", "wasm"],
  ["ticks", "host", "ts"],
  ["kv", "virtual", "ts"],
  ["kv", "host", "wasm"],
] as const)("%s, %s clock: saved on %s, loaded on the other engine", (guest, clock, first: EngineKind) => {
  const seed = (SEED ^ (guest === "kv" ? 0x4b56 : 0x7c) ^ (clock === "host" ? 0x10000 : 0)) >>> 0 || 1;
  it(`runs on exactly as the original (seed ${SEED}; MACHINE_STATE_SEED=${SEED} reproduces)`, async () => {
    const sc = SCENARIOS[guest](seed);
    const r = rng(seed);
    const image = guestImage(sc.image);
    const saveAt = BigInt(sc.saveMin + r.below(sc.saveSpan));
    const end = saveAt + BigInt(sc.after);

    // The first machine, live; under the host clock it logs what its gate reads.
    const entries: LogEntry[] = [];
    const steps = Array.from({ length: 6 }, () => 1000 + r.below(400_000));
    const world = clock === "host" ? fakeWorld(steppingClock(steps).hostNs, seed) : undefined;
    const gateA = new LiveGate({ clock, world, record: clock === "host" ? (icount, kind, payload) => entries.push({ icount, kind, payload: payload.slice() }) : undefined });
    const outA = newOut();
    const diskA = sc.diskSectors ? new MemoryBlockStore(sc.diskSectors) : undefined;
    const a = Machine.create(image, {
      engine: await loadEngine(first, { ramSize: sc.ramSize }), gate: gateA, clock, cmdline: sc.cmdline, nic: sc.nic, disk: diskA, ...handlers(outA),
    });
    const driver = new Driver(a, outA, sc, r);
    driver.runTo(saveAt);
    expect(a.engine.icount).toBe(saveAt);

    const saved = a.saveState();
    const savedHash = toHex(hashState(saved));
    const logged = entries.length;
    const fedBefore = driver.fed.length;

    // The fresh machine: booted, then given the saved state (and a copy of the disk as it is now).
    const outB = newOut();
    const diskB = diskA ? new MemoryBlockStore(storeBytes(diskA)) : undefined;
    let gateB: LiveGate | ReplayGate;
    let queue: EntryQueue | undefined;
    if (clock === "host") {
      // The calendar base opens a host-clock log; the machine's own comes from the saved state.
      expect(entries[0]!.kind).toBe(KINDS.WALLCLOCK.code);
      queue = new EntryQueue([entries[0]!]);
      gateB = new ReplayGate({ clock, queue });
    } else {
      gateB = new LiveGate({ clock });
    }
    const b = Machine.create(image, {
      engine: await loadEngine(otherEngine(first), { ramSize: sc.ramSize }), gate: gateB, clock, cmdline: sc.cmdline, nic: sc.nic, disk: diskB, ...handlers(outB),
    });
    try {
      expect(toHex(stateHash(b))).not.toBe(savedHash);
      b.loadState(saved);
      expect(stateDiff(a, b)).toEqual([]);
      expect(toHex(stateHash(b))).toBe(savedHash);

      // Both run on.
      const markA = markOf(outA);
      driver.runTo(end);
      const fedAfter = driver.fed.slice(fedBefore);
      const rb = rng(seed ^ 0x5a5a5a5a);
      if (queue) {
        queue.push(entries.slice(logged));
        runExactly(b, end, rb, sc.sliceMax);
        expect((gateB as ReplayGate).remaining).toBe(0);
      } else {
        for (const f of fedAfter) {
          runExactly(b, f.at, rb, sc.sliceMax);
          if (f.input.serial) b.serialInput(f.input.serial);
          if (f.input.frame) b.nicInput(f.input.frame);
        }
        runExactly(b, end, rb, sc.sliceMax);
      }
      expect(b.engine.icount).toBe(end);
      expect(stateDiff(a, b)).toEqual([]);
      expect(toHex(stateHash(b))).toBe(toHex(stateHash(a)));
      expect(outAfter(outB, { serial: 0, debugcon: 0, frames: 0 })).toEqual(outAfter(outA, markA));
      if (diskA && diskB) expect(toHex(storeBytes(diskB))).toBe(toHex(storeBytes(diskA)));

      // The case did something after the save: the guest printed, and (kv) took and answered frames.
      expect(outB.serial.length + outB.frames.length, `saved at ${saveAt}`).toBeGreaterThan(0);
      if (guest === "kv" && a.engine.icount > 0n && sc.ready(outA)) expect(fedAfter.length + (clock === "host" ? 1 : 0)).toBeGreaterThan(0);
    } finally {
      a.dispose();
      b.dispose();
    }
  }, 120_000);
});

// ------------------------------------------------------------ refusals and coverage

async function kvMachine(o: { ramSize?: number; nic?: boolean; disk?: boolean; out?: Out } = {}): Promise<Machine> {
  return bootLive(guestImage("kv"), {
    ...handlers(o.out ?? newOut()),
    engine: "wasm", ramSize: o.ramSize ?? 16 * MiB, clock: "virtual", nic: o.nic ?? true,
    disk: o.disk === false ? undefined : new MemoryBlockStore(8192),
  });
}

describe("loadState refuses a state of another configuration", () => {
  it.each([
    ["RAM size", { ramSize: 8 * MiB }, /machine state: ram must be 8388608 bytes/],
    ["no NIC vs NIC", { nic: false }, /^machine state: devices must be exactly debugcon,disk,exitPort,pic,pit,rtc,uart$/],
    ["no disk vs disk", { disk: false }, /^machine state: devices must be exactly debugcon,exitPort,nic,pic,pit,rtc,uart$/],
  ] as const)("%s: a TypeError naming the part, the machine unchanged", async (_what, config, message) => {
    const from = await kvMachine();
    const to = await kvMachine(config);
    try {
      from.runSync(300_000);
      to.runSync(100_000);
      const state = from.saveState();
      const before = toHex(stateHash(to));
      const json = stateJson(to.saveState());
      expect(() => to.loadState(state)).toThrow(TypeError);
      expect(() => to.loadState(state)).toThrow(message);
      expect(toHex(stateHash(to))).toBe(before);
      expect(stateJson(to.saveState())).toBe(json);
    } finally {
      from.dispose();
      to.dispose();
    }
  });

  it("a state refused part-way (a bad UART state, after the PIC's and PIT's were taken) leaves the machine as it was", async () => {
    const from = await kvMachine();
    const to = await kvMachine();
    try {
      from.runSync(300_000);
      const state = from.saveState();
      state.devices.uart = { ...(state.devices.uart as object), lcr: 0x100 };
      const before = toHex(stateHash(to));
      expect(() => to.loadState(state)).toThrow(/uart.*lcr/i);
      expect(toHex(stateHash(to))).toBe(before);
    } finally {
      from.dispose();
      to.dispose();
    }
  });
});

/** Every leaf of a JSON value, by path (long arrays: first and last element only). */
function leaves(v: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) {
    const idx = v.length > 8 ? [0, v.length - 1] : v.map((_, i) => i);
    return idx.flatMap((i) => leaves(v[i], [...path, i]));
  }
  if (typeof v === "object" && v !== null) return Object.keys(v).flatMap((k) => leaves((v as Record<string, unknown>)[k], [...path, k]));
  return [path];
}

/**
 * Other values for a leaf, of its type where it can be: a loader may refuse
 * some (out of range) or normalise them (a PIC's vector base keeps only its
 * top five bits), so there are several to try.
 */
function changes(v: unknown): unknown[] {
  if (typeof v === "boolean") return [!v];
  if (typeof v === "number") return Number.isInteger(v) ? [(v ^ 1) >>> 0, (v ^ 0x10) >>> 0, (v ^ 0x80) >>> 0, v + 1, v - 1] : [v + 0.5];
  if (v === null) return [1, 0];
  if (typeof v === "string") return /^\d+$/.test(v) ? [String(BigInt(v) + 1n)] : /^[0-9a-f]+$/.test(v) ? [(v[0] === "0" ? "1" : "0") + v.slice(1)] : [];
  return [];
}

const at = (o: unknown, path: (string | number)[]) => path.reduce<unknown>((x, k) => (x as Record<string | number, unknown>)[k], o);

describe("the state hash covers every part of MachineState", () => {
  it("each part of a saved state, changed and loaded, changes the machine's hash and is what the machine then saves", async () => {
    // Small RAM: each load copies it twice (the undo and the state).
    const out = newOut();
    const m = await kvMachine({ ramSize: 2 * MiB, out });
    try {
      m.runSync(2_000_000);
      m.nicInput(encodeRequest(request(Op.Put, 5, 1, { key: Uint8Array.of(1), value: Uint8Array.of(2) })));
      m.runSync(50_000);
      expect(text(out.serial)).toMatch(/kv: ready/);
      expect(out.frames.length).toBe(1); // the NIC, disk and PIC have been used
      const original = m.saveState();
      const hash = toHex(hashState(original));
      expect(toHex(stateHash(m))).toBe(hash);
      const accepted = new Map<string, number>();
      const partOf = (p: (string | number)[]) => (p[0] === "devices" ? `devices.${p[1]}` : String(p[0]));

      /** Loads `s`; true if the machine took it as it is (its saved state is then `s`). */
      const took = (s: MachineState, where: string): boolean => {
        try {
          m.loadState(s);
        } catch (e) {
          // Refused (a value out of range): the machine is as it was. (Not always a TypeError: the ATA
          // disk refuses with a plain Error; the refusals above check the machine's own messages.)
          expect(e, where).toBeInstanceOf(Error);
          expect(toHex(stateHash(m)), where).toBe(hash);
          return false;
        }
        const now = m.saveState();
        const same = stateJson(now) === stateJson(s) && Buffer.compare(now.ram, s.ram) === 0;
        // Taken as it is: the hash must see the change.
        if (same) expect(toHex(stateHash(m)), where).not.toBe(hash);
        m.loadState(original);
        expect(toHex(stateHash(m))).toBe(hash);
        return same;
      };

      const { ram: _ram, ...rest } = original;
      for (const path of leaves(rest)) {
        for (const value of changes(at(original, path))) {
          const s = { ...structuredClone(rest), ram: original.ram } as MachineState;
          const parent = at(s, path.slice(0, -1)) as Record<string | number, unknown>;
          parent[path[path.length - 1]!] = value;
          if (took(s, `${path.join(".")} = ${JSON.stringify(value)}`)) {
            accepted.set(partOf(path), (accepted.get(partOf(path)) ?? 0) + 1);
            break;
          }
        }
      }
      const s = structuredClone(original);
      s.ram[0x100000] ^= 0x40;
      if (took(s, "ram[0x100000]")) accepted.set("ram", 1);

      // Every part of MachineState and every device's state took at least one change. The debug
      // console alone has no state ({}); should it get some, this asks for it to be covered.
      expect(original.devices.debugcon).toEqual({});
      const parts = [...Object.keys(original).filter((k) => k !== "devices"), ...Object.keys(original.devices).filter((d) => d !== "debugcon").map((d) => `devices.${d}`)];
      expect(parts).toEqual(expect.arrayContaining(["cpu", "ram", "time", "wallEpochMs", "idleSkips", "exitStatus", "devices.nic", "devices.disk", "devices.uart"]));
      for (const p of parts) expect(accepted.get(p) ?? 0, p).toBeGreaterThan(0);
    } finally {
      m.dispose();
    }
  }, 120_000);
});
