// The log is needed: the same guest, the same image and configuration (the
// same configuration and configuration hash), run live twice with outside
// input arriving differently — the host clock read at other times, serial
// bytes or NIC frames arriving between other instructions — ends in another
// state, and usually shows the world other output. Each run replays exactly
// from its own log; replaying one run's log does not give the other run's
// state. And two live runs given exactly the same world log the same events
// and end in the same state: the difference comes from outside, and the log
// is where it is kept.

import { describe, expect, it } from "vitest";
import { MemoryBlockStore } from "../../host/devices/block-store.js";
import { toHex } from "../../host/common/hash.js";
import { encodeRequest, Op, request } from "../../host/kv/protocol.js";
import {
  drive, EventKind, fakeWorld, guestImage, kindCounts, cycling, recordRun, replayRun, steppingClock, text,
  type Input, type Recorded, type RecordSpec,
} from "../helpers/replay.js";
import { buildElf, PF_R, PF_W, PF_X } from "../helpers/elf-builder.js";
import { le32 } from "../helpers/x86.js";

const hex = toHex;
const entriesOf = (rec: Recorded, kind: number) => rec.log.entries.filter((e) => e.kind === kind).map((e) => `${e.icount}:${hex(e.payload)}`);

/** Replays `rec` and checks it reproduces its own run exactly; returns the replay. */
async function replaysItself(image: Uint8Array, rec: Recorded, engine: "wasm" | "ts", slices: number[]) {
  const r = await replayRun(image, rec.log, { engine, slice: cycling(slices) });
  expect(r.result.matched).toEqual({ outputDigest: true, stateHash: true });
  expect(r.result.icount).toBe(rec.end.finalIcount);
  expect(text(r.out.serial)).toBe(text(rec.out.serial));
  expect(r.out.frames.map(hex)).toEqual(rec.out.frames.map(hex));
  return r;
}

/** Two runs of one configuration: same configuration in the header, different end. */
function sameConfigDifferentEnd(a: Recorded, b: Recorded): void {
  expect(hex(a.log.header.configHash)).toBe(hex(b.log.header.configHash));
  expect(hex(a.log.header.config)).toBe(hex(b.log.header.config));
  expect(hex(a.end.stateHash)).not.toBe(hex(b.end.stateHash));
}

/** Replaying A's log ends in A's state, not in B's (and shows A's output, not B's, where they differ). */
async function crossCheck(image: Uint8Array, a: Recorded, b: Recorded, engine: "wasm" | "ts") {
  const r = await replayRun(image, a.log, { engine, slice: 7919 });
  expect(hex(r.result.stateHash)).toBe(hex(a.end.stateHash));
  expect(hex(r.result.stateHash)).not.toBe(hex(b.end.stateHash));
  if (hex(a.end.outputDigest) !== hex(b.end.outputDigest)) {
    expect(hex(r.result.outputDigest)).not.toBe(hex(b.end.outputDigest));
    expect(text(r.out.serial)).not.toBe(text(b.out.serial));
  }
}

/**
 * A guest that never halts: it counts ECX to 40000 (120k instructions, more
 * than the live gate's RUN_GAP_NS of running between readings), stores an
 * RDTSC reading at 0x180000 + 8 x n, and after 64 readings writes its exit
 * status (encodings from the SDM Vol. 2). What it stores is the host clock as
 * read at those points: a ticking guest that sleeps between timer events sees
 * only the events' own times, whatever the host clock says (tests/pit-wakes.test.ts).
 */
const RDTSC_LOOP = buildElf(0x100000, [
  {
    paddr: 0x100000, flags: PF_R | PF_X, data: [
      0x31, 0xff,                        //        xor edi, edi
      0x31, 0xc9,                        // start: xor ecx, ecx
      0x41,                              // again: inc ecx
      0x81, 0xf9, ...le32(40000),        //        cmp ecx, 40000
      0x75, 0xf7,                        //        jne again (-9)
      0x0f, 0x31,                        //        rdtsc
      0x89, 0x04, 0xfd, ...le32(0x180000), //      mov [edi*8 + 0x180000], eax
      0x89, 0x14, 0xfd, ...le32(0x180004), //      mov [edi*8 + 0x180004], edx
      0x47,                              //        inc edi
      0x83, 0xff, 64,                    //        cmp edi, 64
      0x75, 0xdf,                        //        jne start (-33)
      0x31, 0xc0,                        //        xor eax, eax
      0xe7, 0xf4,                        //        out 0xf4, eax
    ],
  },
  { paddr: 0x180000, memsz: 0x1000, flags: PF_R | PF_W },
]);

describe("a running guest reading RDTSC, host clock: the host clock read at other times", () => {
  const spec = (steps: number[]): RecordSpec => ({ image: RDTSC_LOOP, engine: "wasm", clock: "host", ramSize: 2 << 20, world: fakeWorld(steppingClock(steps).hostNs, 7) });
  const run = (steps: number[]) => recordRun(spec(steps), (m) => drive(m, { slices: [5000], maxInstructions: 20_000_000, maxCalls: 100_000 }));

  it("two clocks give other RDTSC readings and another state; each run replays from its own log only", async () => {
    const a = await run([250_000]);
    const b = await run([310_000, 170_000, 40_000]);
    for (const r of [a, b]) {
      expect(r.driven.last).toMatchObject({ reason: "exit-port", exitStatus: 0 });
      expect(kindCounts(r.log).RDTSC).toBe(64);
    }
    sameConfigDifferentEnd(a, b);
    expect(entriesOf(a, EventKind.RDTSC)).not.toEqual(entriesOf(b, EventKind.RDTSC));

    await replaysItself(RDTSC_LOOP, a, "ts", [3000, 40_000]);
    await replaysItself(RDTSC_LOOP, b, "wasm", [77, 100_000]);
    await crossCheck(RDTSC_LOOP, a, b, "wasm");
    await crossCheck(RDTSC_LOOP, b, a, "ts");
  });

  it("the same clock twice gives the same log and the same end: the difference above came from the world", async () => {
    const a = await run([250_000]);
    const again = await run([250_000]);
    expect(hex(again.bytes)).toBe(hex(a.bytes));
  });
});

describe("ticks, virtual clock: serial input arriving at another instruction", () => {
  const image = guestImage("ticks");
  const run = (gap: number) =>
    recordRun({ image, engine: "wasm", clock: "virtual", cmdline: "ticks=100000 every=5 hz=1000" }, (m, out) =>
      drive(m, {
        slices: [2000],
        inputs: [{ gap, serial: new TextEncoder().encode("echo me") }, { gap: 40, serial: Uint8Array.of(0x71) }],
        ready: () => out.serial.length > 0,
        maxInstructions: 20_000_000,
      }),
    );

  it("the same bytes 5 or 60 slices after the header end in another state; each log replays its own run, not the other", async () => {
    const a = await run(5);
    const b = await run(60);
    for (const r of [a, b]) {
      expect(r.driven.last).toMatchObject({ reason: "exit-port", exitStatus: 0 });
      expect(text(r.out.serial)).toContain("echo me");
      expect(text(r.out.serial)).toMatch(/\nticks: 'q' received at tick \d+\n$/);
    }
    sameConfigDifferentEnd(a, b);
    // The same bytes, at other counts.
    const rx = (r: Recorded) => r.log.entries.filter((e) => e.kind === EventKind.SERIAL_RX);
    expect(rx(a).map((e) => text([...e.payload])).join("")).toBe("echo meq");
    expect(rx(b).map((e) => text([...e.payload])).join("")).toBe("echo meq");
    expect(rx(a)[0]!.icount).not.toBe(rx(b)[0]!.icount);
    // The echo lands between other tick lines.
    expect(text(a.out.serial)).not.toBe(text(b.out.serial));
    // Nothing about time is logged under the virtual clock: the input's timing is the whole difference.
    for (const r of [a, b]) expect(Object.keys(kindCounts(r.log)).sort()).toEqual(["IRQ", "SERIAL_RX"]);

    await replaysItself(image, a, "ts", [1, 5000]);
    await replaysItself(image, b, "wasm", [999]);
    await crossCheck(image, a, b, "ts");
    await crossCheck(image, b, a, "wasm");
  });
});

describe("kv, virtual clock: the same requests at other times", () => {
  const image = guestImage("kv");
  const t = (s: string) => new TextEncoder().encode(s);
  const frames = [
    encodeRequest(request(Op.Put, 9, 1, { key: t("k"), value: t("v1") })),
    encodeRequest(request(Op.Incr, 9, 2, { key: t("n"), value: t("5") })),
    encodeRequest(request(Op.Get, 9, 3, { key: t("k") })),
  ];
  const run = (gaps: number[]) =>
    recordRun({ image, engine: "wasm", clock: "virtual", nic: true, disk: () => new MemoryBlockStore(8192) }, (m, out) =>
      drive(m, {
        slices: [3000],
        inputs: frames.map((frame, i): Input => ({ gap: gaps[i]!, frame })),
        ready: () => /kv: ready/.test(text(out.serial)),
        stop: (last) => last.reason === "idle" && out.frames.length >= frames.length,
        maxInstructions: 50_000_000,
      }),
    );

  it("gives the same replies but ends in another state; only its own log reproduces each", async () => {
    const a = await run([0, 0, 0]);
    const b = await run([3, 30, 1]);
    for (const r of [a, b]) {
      expect(r.driven.stoppedBy).toBe("stop");
      expect(r.out.frames).toHaveLength(3);
      expect(kindCounts(r.log).NIC_RX).toBe(3);
    }
    // The world saw the same thing (the replies, the console)...
    expect(a.out.frames.map(hex)).toEqual(b.out.frames.map(hex));
    expect(text(a.out.serial)).toBe(text(b.out.serial));
    expect(hex(a.end.outputDigest)).toBe(hex(b.end.outputDigest));
    // ...but the frames came in at other counts, and the machines differ: only the log tells them apart.
    expect(entriesOf(a, EventKind.NIC_RX)).not.toEqual(entriesOf(b, EventKind.NIC_RX));
    sameConfigDifferentEnd(a, b);

    await replaysItself(image, a, "ts", [50_000]);
    await replaysItself(image, b, "wasm", [13, 20_000]);
    await crossCheck(image, a, b, "wasm");
    await crossCheck(image, b, a, "ts");
  });
});
