// The kv guest end to end, on both engines, in the bare build
// (guests/bin/kvbare.elf: polling, interrupts never enabled) on the whole
// machine with the pvnic and an ATA disk, virtual clock
// (tests/helpers/kv-machine.ts, as tests/kv-guest.test.ts runs the
// IRQ-driven kv.elf). This checks the guest's protocol, at-most-once
// execution, persistence, recovery and checkpoints against the server model
// and the documented disk layout.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MemoryBlockStore } from "../host/devices/block-store.js";
import {
  encodeRecord, encodeSuperblock, readDisk, RecordType, REGION_SECTORS, regionLba, SECTOR,
} from "../host/kv/disk-layout.js";
import { KvModel } from "../host/kv/model.js";
import { crc32, decodeReply, decodeStats, encodeRequest, Op, REPLY_FLAG_REPLAYED, request, Status } from "../host/kv/protocol.js";
import { ENGINE_KINDS, type EngineKind } from "../host/engine/engine.js";
import { bootsIn, KvMachineVm, type KvMachineOptions } from "./helpers/kv-machine.js";
import { checkStandardTranscript, randomKvScript, runKvExchange, standardKvScript, type KvStep } from "./helpers/kv-script.js";

const ELF = new Uint8Array(readFileSync(new URL("../guests/bin/kvbare.elf", import.meta.url)));
const t = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The machines for `boots` boots of kvbare.elf, on one disk. */
const machine = (kind: EngineKind, opts: KvMachineOptions) => KvMachineVm.create(ELF, kind, opts);
/** The machines for a script's boots. */
const machineFor = (kind: EngineKind, steps: KvStep[], opts: Omit<KvMachineOptions, "boots"> = {}) =>
  machine(kind, { ...opts, boots: bootsIn(steps) });

/** One request, its reply decoded (after checking the guest sent exactly one frame). */
function ask(m: KvMachineVm, op: Op, client: number, n: number, f: Parameters<typeof request>[3] = {}) {
  const frame = encodeRequest(request(op, client, n, f));
  expect(m.receive(frame)).toBe(true);
  const out = m.runUntilTransmit(50_000_000);
  expect(out).toHaveLength(1);
  return decodeReply(out[0]);
}

describe.each(ENGINE_KINDS)("kv guest, bare build (%s)", (kind) => {
  it("answers the standard exchange exactly as the model does, across a reboot", async () => {
    const steps = standardKvScript({ restart: true });
    const m = await machineFor(kind, steps);
    const model = new KvModel();
    const log = runKvExchange(m, steps, { model });
    checkStandardTranscript(log);
    expect(log.length).toBeGreaterThan(150);
    expect(m.boots).toBe(2);
    expect(m.console).toMatch(/^kv: \d+ keys, 3 clients; disk generation 1, \d+ log records\nkv: ready on 52:54:00:4c:53:01 \(polling\)\n$/);

    // The disk holds what docs/kv-protocol.md says: the model's store, one record per change.
    const disk = readDisk((lba, n) => m.store.read(lba, n));
    expect(disk.generation).toBe(1);
    expect(disk.records.length).toBe(model.logRecords);
    expect(disk.store.size).toBe(model.keys);
    for (const e of disk.store.values()) expect(model.peek(e.key), text(e.key)).toEqual(e.value);
    expect(disk.records.every((r) => r.client !== 0 && r.type !== RecordType.Client)).toBe(true);
    expect(m.nicStats.rxDroppedNoBuffer).toBe(0);
    // The bare build polls: it never enabled interrupts.
    expect(m.machine.engine.eflags & 0x200).toBe(0);
  });

  it("runs in memory only without a usable disk", async () => {
    const steps = standardKvScript();
    const m = await machineFor(kind, steps, { store: new MemoryBlockStore(1000) });
    const log = runKvExchange(m, steps, { model: new KvModel({ generation: 0 }) });
    checkStandardTranscript(log);
    expect(m.console).toMatch(/the disk has 1000 sectors, the store needs 4160: kept in memory only\n.*memory only, generation 0/s);
  });

  it("checkpoints into the other region when the log is full, and recovers from it", async () => {
    // Generation 1 with region 1 filled up to 2 sectors from its end: SETs of 100 keys, over and over.
    const store = new MemoryBlockStore(8192);
    store.write(1, encodeSuperblock(1));
    let at = 0, seq = 0;
    while (at < REGION_SECTORS - 2) {
      const k = seq % 100;
      const rec = encodeRecord(1, seq, { type: RecordType.Set, key: t(`key${k}`), value: t(`v${seq}`), client: 0, last: 0, requestCrc: 0, reply: new Uint8Array(0) });
      store.write(regionLba(1) + at, rec);
      at += rec.length / SECTOR;
      seq++;
    }
    /** The value the log ends with for key k: that of its last SET. */
    const lastValue = (k: number) => {
      let last = -1;
      for (let s = 0; s < seq; s++) if (s % 100 === k) last = s;
      return `v${last}`;
    };
    const m = await machine(kind, { boots: 2, store });
    m.boot();
    expect(m.console).toContain(`kv: 100 keys, 0 clients; disk generation 1, ${seq} log records`);
    expect(text(ask(m, Op.Get, 7, 1, { key: t("key3") }).value)).toBe(lastValue(3));
    // Two one-sector records still fit; the third needs a checkpoint first.
    expect(ask(m, Op.Put, 7, 2, { key: t("new1"), value: t("a") }).status).toBe(Status.Ok);
    expect(ask(m, Op.Put, 7, 3, { key: t("new2"), value: t("b") }).status).toBe(Status.Ok);
    expect(readDisk((l, n) => store.read(l, n)).generation).toBe(1);
    expect(ask(m, Op.Incr, 8, 1, { key: t("n"), value: t("5") }).status).toBe(Status.Ok);
    const disk = readDisk((l, n) => store.read(l, n));
    expect(disk.generation).toBe(2);
    // The checkpoint: a SET per key (no client), a CLIENT record per client with a reply, then the INCR.
    expect(disk.records.slice(0, 102).every((r) => r.type === RecordType.Set && r.client === 0)).toBe(true);
    expect(disk.records.slice(102, 103).map((r) => [r.type, r.client, r.last])).toEqual([[RecordType.Client, 7, 3]]);
    expect(disk.records.at(-1)).toMatchObject({ type: RecordType.Set, client: 8, last: 1, value: t("5") });
    expect(disk.store.size).toBe(103);
    const stats = decodeStats(ask(m, Op.Stats, 8, 2).value);
    expect(stats).toMatchObject({ keys: 103, generation: 2, logRecords: 104 });

    // A reboot recovers from generation 2: the data and the reply cache.
    m.boot();
    expect(m.console).toContain("kv: 103 keys, 2 clients; disk generation 2, 104 log records");
    const replay = ask(m, Op.Put, 7, 3, { key: t("new2"), value: t("b") });
    expect(replay.flags & REPLY_FLAG_REPLAYED).toBe(REPLY_FLAG_REPLAYED);
    expect(text(ask(m, Op.Get, 9, 1, { key: t("key99") }).value)).toBe(lastValue(99));
    expect(text(ask(m, Op.Get, 9, 2, { key: t("n") }).value)).toBe("5");
  });

  it("stops recovery at a torn record: the request it held runs again when resent", async () => {
    const m = await machine(kind, { boots: 2 });
    m.boot();
    expect(ask(m, Op.Put, 5, 1, { key: t("a"), value: t("one") }).status).toBe(Status.Ok);
    expect(ask(m, Op.Put, 5, 2, { key: t("a"), value: t("two") }).status).toBe(Status.Ok);
    const before = readDisk((l, n) => m.store.read(l, n));
    expect(before.records).toHaveLength(2);
    // Damage the second record's value byte (its CRC no longer matches).
    const lba = regionLba(1) + before.positions[1];
    const sector = m.store.read(lba, 1);
    sector[40 + 1] ^= 0xff;
    m.store.write(lba, sector);
    m.boot();
    expect(m.console).toContain("kv: 1 keys, 1 clients; disk generation 1, 1 log records");
    expect(ask(m, Op.Hello, 5, 0).result).toBe(1);
    expect(text(ask(m, Op.Get, 6, 1, { key: t("a") }).value)).toBe("one");
    const again = ask(m, Op.Put, 5, 2, { key: t("a"), value: t("two") });
    expect([again.status, again.flags]).toEqual([Status.Ok, 0]); // executed, not replayed
    const after = readDisk((l, n) => m.store.read(l, n));
    expect(after.records).toHaveLength(2);
    expect(text(after.store.get(Buffer.from("a").toString("hex"))!.value)).toBe("two");
    expect(after.records[1].requestCrc).toBe(crc32(encodeRequest(request(Op.Put, 5, 2, { key: t("a"), value: t("two") }))));
  });
});

describe("kv guest, bare build: random exchanges", () => {
  it.each([[1, "wasm"], [2, "wasm"], [3, "ts"]] as const)("seed %i on %s matches the model, reboots included", async (seed, kind) => {
    const steps = randomKvScript(seed, 400, { restarts: true });
    expect(steps.filter((s) => "restart" in s).length).toBeGreaterThan(0);
    const log = runKvExchange(await machineFor(kind, steps), steps);
    expect(log.filter((r) => r.reply && r.reply[18] & REPLY_FLAG_REPLAYED).length).toBeGreaterThan(10);
  });
});

describe("kv guest, bare build: the engines agree", () => {
  it("retires the same instructions, prints the same and sends the same frames on wasm and ts", async () => {
    const steps = standardKvScript({ restart: true });
    const runs = await Promise.all(ENGINE_KINDS.map(async (kind) => {
      const m = await machineFor(kind, steps);
      runKvExchange(m, steps);
      return { frames: m.transmitted.map((f) => Buffer.from(f).toString("hex")), instructions: m.instructions, consoles: m.consoles, disk: Buffer.from(m.store.bytes()) };
    }));
    expect(runs[0].instructions).toHaveLength(2);
    expect(runs[1].frames).toEqual(runs[0].frames);
    expect(runs[1].instructions).toEqual(runs[0].instructions);
    expect(runs[1].consoles).toEqual(runs[0].consoles);
    expect(runs[1].disk.equals(runs[0].disk)).toBe(true);
  });
});
