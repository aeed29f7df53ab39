// RDRAND and RDSEED through record and replay (host/replay/session.ts): a tiny
// guest executes them several times and stores every value it got in memory.
// The recording's world hands out a sequence this test chose, so the values
// are known without trusting the code under test: the recorded guest's memory
// must hold exactly that sequence, and so must the memory of the replay on
// each engine, which also has to reach the end record's count, output digest
// and state hash. (A replay gate that altered a logged value — say by one bit
// — makes the replayed RAM differ from the sequence, whatever the hashes say.)

import { describe, expect, it } from "vitest";
import type { EngineKind } from "../../host/engine/engine.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { KINDS } from "../../host/replay/event-kinds.js";
import type { World } from "../../host/replay/live-gate.js";
import { parseLog } from "../../host/replay/log-format.js";
import { Recording, replay } from "../../host/replay/session.js";
import { buildElf, PF_R, PF_W, PF_X } from "../helpers/elf-builder.js";
import { EAX, EBP, EBX, ECX, EDI, EDX, ESI, le32, modrm } from "../helpers/x86.js";

const ENGINES: readonly EngineKind[] = ["wasm", "ts"];
const RAM = 2 << 20;
const CODE = 0x100000;
/** Where the guest stores the values (4 bytes each), then the CF after each (1 byte each). */
const VALUES = 0x180000;

/**
 * The entropy the test hands out, in order: both extremes, both values of the
 * low bit, single bits at either end, arbitrary patterns.
 */
const SEQUENCE: readonly number[] = [
  0x00000000, 0xffffffff, 0x12345678, 0x80000001, 0xdeadbeef, 0x00000001,
  0xfffffffe, 0x55aa55aa, 0x7fffffff, 0x0badf00d,
];
const CF_AT = VALUES + 4 * SEQUENCE.length;

// Encodings from the SDM Vol. 2: RDRAND r32 is 0F C7 /6, RDSEED r32 is 0F C7 /7 (mod 11).
const rdrand = (r: number) => [0x0f, 0xc7, modrm(3, 6, r)];
const rdseed = (r: number) => [0x0f, 0xc7, modrm(3, 7, r)];
/** MOV [disp32], r32 (89 /r, mod 00 rm 101). */
const store32 = (r: number, addr: number) => [0x89, modrm(0, r, 5), ...le32(addr)];
/** SETC [disp32] (0F 92 /0): CF, which RDRAND/RDSEED set when the value is valid. */
const setcMem = (addr: number) => [0x0f, 0x92, modrm(0, 0, 5), ...le32(addr)];
/** MOV EAX, 0; OUT 0xF4, EAX: the exit port, status 0. */
const EXIT0 = [0xb8, ...le32(0), 0xe7, 0xf4];

/** Alternates RDRAND and RDSEED over several destination registers, storing each value and its CF. */
function entropyGuest(): Uint8Array {
  const regs = [EAX, ECX, EDX, EBX, ESI, EDI, EBP];
  const code: number[] = [];
  SEQUENCE.forEach((_, k) => {
    const r = regs[k % regs.length]!;
    code.push(...(k % 2 === 0 ? rdrand(r) : rdseed(r)), ...setcMem(CF_AT + k), ...store32(r, VALUES + 4 * k));
  });
  code.push(...EXIT0);
  return buildElf(CODE, [
    { paddr: CODE, data: code, flags: PF_R | PF_X },
    { paddr: VALUES, memsz: 0x1000, flags: PF_R | PF_W },
  ]);
}

/** A world whose entropy is SEQUENCE, in order; asking for more than it holds fails the test. */
function sequenceWorld(): { world: Partial<World>; handedOut: () => number } {
  let n = 0;
  let t = 5_000_000_000;
  return {
    world: {
      entropy: () => {
        if (n >= SEQUENCE.length) throw new Error(`the guest asked for entropy value ${n + 1}, the test has ${SEQUENCE.length}`);
        return SEQUENCE[n++]!;
      },
      // Only read under the host clock: a fixed calendar and a clock that moves 1 µs a reading.
      epochMs: () => Date.UTC(2027, 0, 2, 3, 4, 5),
      hostNs: () => (t += 1000),
    },
    handedOut: () => n,
  };
}

/** The values and CF bytes the guest stored, read from its RAM. */
function stored(ram: { readMem(addr: number, len: number): Uint8Array }): { values: number[]; cf: number[] } {
  const bytes = ram.readMem(VALUES, 4 * SEQUENCE.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    values: SEQUENCE.map((_, k) => view.getUint32(4 * k, true)),
    cf: Array.from(ram.readMem(CF_AT, SEQUENCE.length)),
  };
}

const hex = (v: number[]) => v.map((x) => "0x" + x.toString(16).padStart(8, "0"));

describe.each(["virtual", "host"] as const)("RDRAND/RDSEED values through record and replay (%s clock)", (clock) => {
  for (const recordOn of ENGINES) {
    it(`recorded on ${recordOn}: the guest stores exactly the test's sequence, and the replay on both engines stores it again`, async () => {
      const image = entropyGuest();
      const { world, handedOut } = sequenceWorld();
      const chunks: Uint8Array[] = [];
      const rec = await Recording.start(image, { engine: recordOn, loadEngine, ramSize: RAM, clock, world, sink: (c) => chunks.push(c.slice()) });
      const outcome = rec.machine.runSync(10_000);
      expect(outcome.reason).toBe("exit-port");
      expect(outcome.exitStatus).toBe(0);
      const end = rec.finish();

      // (a) The recording: every value the world handed out, in order, and CF=1 after each.
      expect(handedOut()).toBe(SEQUENCE.length);
      const live = stored(rec.machine.engine);
      expect(hex(live.values)).toEqual(hex([...SEQUENCE]));
      expect(live.cf).toEqual(SEQUENCE.map(() => 1));

      const log = parseLog(new Uint8Array(Buffer.concat(chunks)));
      const logged = log.entries.filter((e) => e.kind === KINDS.ENTROPY.code).map((e) => KINDS.ENTROPY.decode(e.payload));
      expect(hex(logged)).toEqual(hex([...SEQUENCE]));

      // (b) The replays: the same values in RAM (checked against the sequence, not
      // against a hash), the same end count, and the end record's digests.
      for (const engine of ENGINES) {
        const r = await replay(image, log, { engine, loadEngine });
        const again = stored(r.machine.engine);
        expect(hex(again.values), `replay on ${engine}`).toEqual(hex([...SEQUENCE]));
        expect(again.cf, `replay on ${engine}`).toEqual(SEQUENCE.map(() => 1));
        expect(r.icount).toBe(end.finalIcount);
        expect(r.outcome?.reason).toBe("exit-port");
        expect(r.matched, `replay on ${engine}`).toEqual({ outputDigest: true, stateHash: true });
      }
    });
  }
});
