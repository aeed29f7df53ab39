// Dirty-page tracking: every store marks its 4 KiB page (both pages when it
// crosses a boundary), nothing else does, and DirtyTracker hands every user
// each page written since that user's last take(); only the tracker clears the
// core's map.

import { describe, expect, it } from "vitest";
import { ExitReason } from "../host/engine/engine.js";
import { DirtyTracker } from "../host/engine/dirty.js";
import { ENGINE_KINDS, freshEngine, load, RAM_1M, wr32, type Engine } from "./helpers/machine.js";
import { EAX, ECX, EBX, ESP, ESI, EDI, HLT, le32 } from "./helpers/x86.js";

const CODE = 0x1000; // page 1
const MMIO = 0xd0000000;

async function setup(kind: "wasm" | "ts", code: number[]) {
  const e = await freshEngine(kind);
  e.setReg(ESP, 0x30000);
  load(e, CODE, [...code, HLT]);
  const tracker = new DirtyTracker(e);
  const user = tracker.register("test");
  user.take(); // drop the pages the code load itself dirtied
  return { e, tracker, user };
}

function runToHlt(e: Engine): void {
  const x = e.run(100000);
  expect(x.reason).toBe(ExitReason.Hlt);
}

const movMemR32 = (addr: number, r: number) => [0x89, 0x05 | (r << 3), ...le32(addr)]; // mov [addr], r32
const movMemR16 = (addr: number, r: number) => [0x66, 0x89, 0x05 | (r << 3), ...le32(addr)];
const movMemR8 = (addr: number, r: number) => [0x88, 0x05 | (r << 3), ...le32(addr)];

describe.each(ENGINE_KINDS)("dirty pages (%s)", (kind) => {
  it("a byte store marks exactly its page", async () => {
    const { e, user } = await setup(kind, movMemR8(0x5123, EAX));
    runToHlt(e);
    expect(user.take()).toEqual([5]);
  });

  it.each([
    ["word at 0x5fff", [5, 6], movMemR16(0x5fff, EAX)],
    ["dword at 0x6ffd", [6, 7], movMemR32(0x6ffd, EAX)],
    ["dword at 0x6ffe", [6, 7], movMemR32(0x6ffe, EAX)],
    ["dword at 0x6fff", [6, 7], movMemR32(0x6fff, EAX)],
    ["dword at 0x7ffc (last 4 bytes of page 7)", [7], movMemR32(0x7ffc, EAX)],
    ["dword at 0x8000 (first 4 bytes of page 8)", [8], movMemR32(0x8000, EAX)],
    ["byte at 0x8fff", [8], movMemR8(0x8fff, EAX)],
  ])("a %s store marks pages %j", async (_n, pages, code) => {
    const { e, user } = await setup(kind, code);
    runToHlt(e);
    expect(user.take()).toEqual(pages);
  });

  it("REP STOSD across a page boundary marks both pages", async () => {
    const { e, user } = await setup(kind, [0xf3, 0xab]);
    e.setReg(EDI, 0x8ff0); e.setReg(ECX, 8); e.setReg(EAX, 0x11111111);
    runToHlt(e);
    expect(user.take()).toEqual([8, 9]);
  });

  it("a REP MOVSB stopped by the budget has marked only the pages written so far", async () => {
    const { e, user } = await setup(kind, [0xf3, 0xa4]);
    e.setReg(ESI, 0x20000); e.setReg(EDI, 0x9ffe); e.setReg(ECX, 4);
    e.run(2); // bytes at 0x9ffe, 0x9fff
    expect(user.take()).toEqual([9]);
    e.run(1); // 0xa000
    expect(user.take()).toEqual([10]);
  });

  it("a PUSH straddling a page boundary marks both pages", async () => {
    const { e, user } = await setup(kind, [0x50]); // push eax
    e.setReg(ESP, 0xa002);
    runToHlt(e);
    expect(user.take()).toEqual([9, 10]);
  });

  it("CALL marks the stack page", async () => {
    const { e, user } = await setup(kind, [0xe8, 0, 0, 0, 0]); // call next
    e.setReg(ESP, 0x22000);
    runToHlt(e);
    expect(user.take()).toEqual([0x21]);
  });

  it("reads mark nothing (MOV load, CMP, LODS, SCAS, POP, CMPS)", async () => {
    const { e, user } = await setup(kind, [
      0x8b, 0x05, ...le32(0x5000), // mov eax, [0x5000]
      0x39, 0x05, ...le32(0x6000), // cmp [0x6000], eax
      0xad, // lodsd
      0xaf, // scasd
      0x5b, // pop ebx
      0xa7, // cmpsd
      0x0f, 0xa3, 0x05, ...le32(0x7000), // bt [0x7000], eax
    ]);
    e.setReg(ESI, 0x8000); e.setReg(EDI, 0x9000); e.setReg(ESP, 0xa000);
    runToHlt(e);
    expect(user.take()).toEqual([]);
  });

  it("stores outside RAM and to MMIO mark nothing", async () => {
    const { e, user } = await setup(kind, [
      ...movMemR32(RAM_1M, EAX),
      ...movMemR32(RAM_1M + 0x1000, EAX),
      ...movMemR32(0x80000000, EAX),
      ...movMemR32(0xfffffffc, EAX),
      ...movMemR32(MMIO + 4, EAX),
    ]);
    e.addMmio(MMIO, MMIO + 0x1000);
    let x = e.run(100);
    expect(x.reason).toBe(ExitReason.MmioWrite);
    x = e.run(100);
    expect(x.reason).toBe(ExitReason.Hlt);
    expect(user.take()).toEqual([]);
    expect(e.dirtyMap().length).toBe(RAM_1M / 4096);
  });

  it("a dword store straddling the end of RAM marks only the last page", async () => {
    const { e, user } = await setup(kind, movMemR32(RAM_1M - 2, EAX));
    e.setReg(EAX, 0x44332211);
    runToHlt(e);
    expect(user.take()).toEqual([RAM_1M / 4096 - 1]);
    expect(Array.from(e.readMem(RAM_1M - 2, 2))).toEqual([0x11, 0x22]);
  });

  it("CMPXCHG writes the destination back when the comparison fails, so its page is dirty", async () => {
    // SDM Vol. 2A CMPXCHG: "the destination operand is written back if the comparison fails".
    const { e, user } = await setup(kind, [0x0f, 0xb1, 0x0d, ...le32(0xb000)]); // cmpxchg [0xb000], ecx
    wr32(e, 0xb000, 5);
    user.take();
    e.setReg(EAX, 4); e.setReg(ECX, 9);
    runToHlt(e);
    expect(e.getReg(EAX)).toBe(5);
    expect(user.take()).toEqual([0xb]);
  });

  it("an instruction aborted by an MMIO read has written nothing yet; it marks its page when it completes", async () => {
    const { e, user } = await setup(kind, [0xa5]); // movsd: [esi] in MMIO -> [edi] in RAM
    e.addMmio(MMIO, MMIO + 0x1000);
    e.setReg(ESI, MMIO); e.setReg(EDI, 0xc000);
    expect(e.run(100).reason).toBe(ExitReason.MmioRead);
    expect(user.take()).toEqual([]);
    e.answer(0x12345678);
    runToHlt(e);
    expect(user.take()).toEqual([0xc]);
  });

  it("host writes through writeMem mark their pages", async () => {
    const { e, user } = await setup(kind, []);
    e.writeMem(0x3fff, Uint8Array.of(1, 2));
    e.writeMem(0x10000, new Uint8Array(0x2001));
    expect(user.take()).toEqual([3, 4, 0x10, 0x11, 0x12]);
  });

  it("two users each see every page written since their own last take()", async () => {
    const { e, tracker, user: a } = await setup(kind, [
      ...movMemR8(0x3000, EAX), HLT,
      ...movMemR8(0x5000, EAX), HLT,
      ...movMemR8(0x7000, EAX), HLT,
    ]);
    const b = tracker.register("b");
    e.run(100); // page 3
    expect(a.take()).toEqual([3]);
    e.run(100); // page 5
    expect(b.take()).toEqual([3, 5]);
    expect(a.take()).toEqual([5]);
    expect(a.take()).toEqual([]);
    e.run(100); // page 7
    expect(b.take()).toEqual([7]);
    expect(a.take()).toEqual([7]);
    expect(b.take()).toEqual([]);
  });

  it("an unregistered user stops collecting; the others are unaffected", async () => {
    const { e, tracker, user: a } = await setup(kind, [...movMemR8(0x3000, EAX), 0xf4, ...movMemR8(0x4000, EAX)]);
    const b = tracker.register("b");
    e.run(100);
    b.unregister();
    e.run(100);
    expect(a.take()).toEqual([3, 4]);
    expect([...b.pages]).toEqual([]);
  });

  it("only the tracker clears the core's map: run, step, reset, answer and register writes leave it", async () => {
    const { e, tracker, user } = await setup(kind, [...movMemR8(0x3000, EAX), 0xf4, 0xec, 0x90]);
    const other = tracker.register("other");
    e.run(100); // the store, then HLT
    const map = e.dirtyMap();
    expect(map[3]).toBe(1);
    e.run(100); // IN exits
    e.answer(7);
    e.step();
    e.setReg(EBX, 1); e.eflags = 0x202; e.eip = CODE;
    e.reset();
    expect(map[3]).toBe(1);
    expect(Array.from(map).reduce((s, v) => s + v, 0)).toBe(1);
    // One user's take() clears the core map but not the other user's pending set.
    expect(user.take()).toEqual([3]);
    expect(Array.from(map).every((v) => v === 0)).toBe(true);
    expect(other.take()).toEqual([3]);
  });
});
