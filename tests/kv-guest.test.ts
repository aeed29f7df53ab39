// The interrupt-driven kv guest (guests/bin/kv.elf: the full runtime, the
// pvnic's IRQ 11 through the PIC, HLT between frames) on the whole machine
// (host/machine/machine.ts) with the NIC and an ATA disk, on both engines,
// virtual clock. Every reply is compared with the server model's by the
// exchange in tests/helpers/kv-script.ts; a reboot is a new machine on the
// same block store, so the store, the reply log and the cached replies must
// survive it. Both engines must agree on everything the guest does.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MemoryBlockStore } from "../host/devices/block-store.js";
import { ENGINE_KINDS, type EngineKind } from "../host/engine/engine.js";
import { readDisk } from "../host/kv/disk-layout.js";
import { KvModel } from "../host/kv/model.js";
import { decodeReply, REPLY_FLAG_REPLAYED } from "../host/kv/protocol.js";
import { Machine } from "../host/machine/machine.js";
import {
  checkStandardTranscript, randomKvScript, runKvExchange, standardKvScript, type KvExchangeRecord, type KvStep, type KvVm,
} from "./helpers/kv-script.js";

const ELF = new Uint8Array(readFileSync(new URL("../guests/bin/kv.elf", import.meta.url)));
const RAM = 32 << 20;
const DISK_SECTORS = 8192; // 4 MiB: room for the store's 4160 sectors
const SLICE = 20_000;

/** A slice of the machine: runSync returns "idle" when the guest waits in HLT with nothing that can wake it. */
function runSlice(m: Machine, n: number): { reason: string; exitStatus?: number; instructions: bigint } {
  return m.runSync(n);
}

/**
 * KvVm on the Machine. boot() must be synchronous but Machine.create is not,
 * so the machines for every boot the script needs are created beforehand
 * (creating one loads the image into its own RAM and touches no disk); each
 * boot takes the next one, on the same block store, so a reboot keeps the disk.
 */
class KvMachineVm implements KvVm {
  readonly store = new MemoryBlockStore(DISK_SECTORS);
  /** Console output of each boot. */
  readonly consoles: string[] = [];
  /** Instructions each boot retired. */
  readonly instructions: bigint[] = [];
  private spare: Machine[] = [];
  private m: Machine | null = null;
  private pending: Uint8Array[] = [];

  private constructor(readonly kind: EngineKind) {}

  static async create(kind: EngineKind, boots: number): Promise<KvMachineVm> {
    const vm = new KvMachineVm(kind);
    for (let i = 0; i < boots; i++) {
      const index = i;
      const m = await Machine.create(ELF, {
        engine: kind,
        ramSize: RAM,
        clock: "virtual",
        disk: vm.store,
        nic: true,
        onSerial: (b) => (vm.consoles[index] += String.fromCharCode(b)),
        onTransmit: (f) => vm.pending.push(f.slice()),
      });
      
      vm.spare.push(m);
    }
    return vm;
  }

  get machine(): Machine {
    if (!this.m) throw new Error("not booted");
    return this.m;
  }

  boot(): void {
    if (this.m) this.instructions.push(this.m.engine.icount);
    const m = this.spare.shift();
    if (!m) throw new Error("no machine left for another boot");
    this.m = m;
    this.consoles.push("");
    this.pending = [];
    const i = this.consoles.length - 1;
    const ready = () => /kv: ready[^\n]*\n/.test(this.consoles[i]);
    let done = 0;
    while (!ready()) {
      const r = runSlice(m, SLICE);
      done += Number(r.instructions);
      if ((r.reason !== "limit" && r.reason !== "idle") || done > 200_000_000) {
        throw new Error(`boot ${i}: the kv guest did not become ready (${r.reason}):\n${this.consoles[i]}`);
      }
      if (r.reason === "idle" && !ready()) throw new Error(`boot ${i}: idle before ready:\n${this.consoles[i]}`);
    }
  }

  receive(frame: Uint8Array): boolean {
    return this.machine.nic!.receive(frame);
  }

  runUntilTransmit(maxInstructions: number): Uint8Array[] {
    const m = this.machine;
    this.pending = [];
    let done = 0;
    while (this.pending.length === 0 && done < maxInstructions) {
      const r = runSlice(m, Math.min(SLICE, maxInstructions - done));
      done += Number(r.instructions);
      if (r.reason === "idle") break; // waiting in HLT with nothing scheduled: no frame is coming
      if (r.reason !== "limit") throw new Error(`the kv guest stopped (${r.reason}, status ${r.exitStatus}):\n${this.consoles.at(-1)}`);
    }
    return this.pending;
  }

  finish(): void {
    if (this.m) this.instructions.push(this.m.engine.icount);
    this.m = null;
  }
}

const bootsIn = (steps: KvStep[]) => 1 + steps.filter((s) => "restart" in s).length;

interface KvRun {
  log: KvExchangeRecord[];
  vm: KvMachineVm;
  model: KvModel;
}
const standardRuns = new Map<EngineKind, KvRun>();
const randomRuns = new Map<EngineKind, KvRun>();

async function exchange(kind: EngineKind, steps: KvStep[]): Promise<KvRun> {
  const vm = await KvMachineVm.create(kind, bootsIn(steps));
  const model = new KvModel();
  const log = runKvExchange(vm, steps, { model });
  vm.finish();
  return { log, vm, model };
}

const decoded = (r: KvExchangeRecord) => {
  try {
    return r.reply ? decodeReply(r.reply) : null;
  } catch {
    return null;
  }
};

describe.each(ENGINE_KINDS)("kv.elf on the machine with the NIC and a disk (%s engine)", (kind) => {
  it("answers the standard exchange exactly as the model does, resent requests from the reply cache, across a reboot", async () => {
    const steps = standardKvScript({ restart: true });
    const run = await exchange(kind, steps);
    standardRuns.set(kind, run);
    const { log, vm, model } = run;
    checkStandardTranscript(log);
    expect(log.length).toBeGreaterThan(150);
    expect(vm.consoles).toHaveLength(2);
    expect(vm.consoles[0]).toMatch(/^kv: formatted the disk \(8192 sectors\)\n.*\nkv: ready on 52:54:00:4c:53:01 \(IRQ 11\)\n$/s);
    expect(vm.consoles[1]).toMatch(/^kv: \d+ keys, 3 clients; disk generation 1, \d+ log records\nkv: ready on 52:54:00:4c:53:01 \(IRQ 11\)\n$/);

    // Every resend of a frame (attempt > 0) that got a reply was answered from the cache.
    const resent = log.filter((r) => r.attempt > 0 && r.reply);
    expect(resent.length).toBeGreaterThanOrEqual(3);
    for (const r of resent) expect(decoded(r)!.flags & REPLY_FLAG_REPLAYED, `step ${r.step}`).toBe(REPLY_FLAG_REPLAYED);
    // The INCR resent after the reboot: the reply logged on the disk before it, marked replayed.
    const reboot = steps.findIndex((s) => "restart" in s);
    const afterReboot = log.find((r) => r.step === reboot + 1)!;
    const beforeReboot = log.find((r) => r.step === reboot - 1)!;
    expect(Buffer.from(afterReboot.request).equals(beforeReboot.request)).toBe(true);
    expect(decoded(afterReboot)!.flags & REPLY_FLAG_REPLAYED).toBe(REPLY_FLAG_REPLAYED);
    expect(decoded(afterReboot)!.value).toEqual(decoded(beforeReboot)!.value);

    // The disk holds the model's store.
    const disk = readDisk((lba, n) => vm.store.read(lba, n));
    expect(disk.generation).toBe(1);
    expect(disk.store.size).toBe(model.keys);
    for (const e of disk.store.values()) expect(model.peek(e.key)).toEqual(e.value);
  });

  it("answers a seeded random exchange (resends, stale numbers, malformed frames, reboots) as the model does", async () => {
    const steps = randomKvScript(20260101, 150, { restarts: true });
    const run = await exchange(kind, steps);
    randomRuns.set(kind, run);
    expect(run.log.length).toBeGreaterThanOrEqual(steps.filter((s) => !("restart" in s)).length);
    expect(run.vm.consoles.length).toBe(bootsIn(steps));
  });
});

describe("kv.elf on both engines", () => {
  it("gives the same replies, console output, instruction counts and disk contents", () => {
    for (const runs of [standardRuns, randomRuns]) {
      const [a, b] = ENGINE_KINDS.map((k) => runs.get(k));
      expect(a && b).toBeTruthy();
      expect(b!.log).toEqual(a!.log);
      expect(b!.vm.consoles).toEqual(a!.vm.consoles);
      expect(b!.vm.instructions).toEqual(a!.vm.instructions);
      expect(Buffer.from(b!.vm.store.bytes()).equals(Buffer.from(a!.vm.store.bytes()))).toBe(true);
    }
  });
});
