// The interrupt-driven kv guest (guests/bin/kv.elf: the full runtime, the
// pvnic's IRQ 11 through the PIC, HLT between frames) on the whole machine
// (host/machine/machine.ts) with the NIC and an ATA disk, on both engines,
// virtual clock. Every reply is compared with the server model's by the
// exchange in tests/helpers/kv-script.ts, on the machine of
// tests/helpers/kv-machine.ts; a reboot is a new machine on the same block
// store, so the store, the reply log and the cached replies must survive it.
// Both engines must agree on everything the guest does.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ENGINE_KINDS, type EngineKind } from "../host/engine/engine.js";
import { readDisk } from "../host/kv/disk-layout.js";
import { KvModel } from "../host/kv/model.js";
import { decodeReply, REPLY_FLAG_REPLAYED } from "../host/kv/protocol.js";
import { bootsIn, KvMachineVm } from "./helpers/kv-machine.js";
import {
  checkStandardTranscript, randomKvScript, runKvExchange, standardKvScript, type KvExchangeRecord, type KvStep,
} from "./helpers/kv-script.js";

const ELF = new Uint8Array(readFileSync(new URL("../guests/bin/kv.elf", import.meta.url)));

interface KvRun {
  log: KvExchangeRecord[];
  vm: KvMachineVm;
  model: KvModel;
}
const standardRuns = new Map<EngineKind, KvRun>();
const randomRuns = new Map<EngineKind, KvRun>();

async function exchange(kind: EngineKind, steps: KvStep[]): Promise<KvRun> {
  const vm = await KvMachineVm.create(ELF, kind, { boots: bootsIn(steps) });
  const model = new KvModel();
  const log = runKvExchange(vm, steps, { model });
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
