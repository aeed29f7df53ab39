// Engine.setArchState is the inverse of archState(): a state (with RAM, by
// writeMem) moved from one engine to a fresh engine of the other kind in the
// middle of a random program continues exactly as the original does.

import { describe, expect, it } from "vitest";
import { ExitReason, type ArchState, type Engine, type EngineKind } from "../host/engine/engine.js";
import { loadEngine } from "../host/node/core-modules.js";
import { LAYOUT, generate } from "./helpers/codegen.js";
import { Rng } from "./helpers/machine.js";
import { driveProgram, loadProgram, randomInit } from "./helpers/program-run.js";
import { DS } from "./helpers/x86.js";

const other = (k: EngineKind): EngineKind => (k === "wasm" ? "ts" : "wasm");

async function engine(kind: EngineKind): Promise<Engine> {
  return loadEngine(kind, { ramSize: LAYOUT.ram });
}

describe("setArchState round trip", () => {
  const SEEDS = [1, 2, 3, 4, 5, 6];
  for (const seed of SEEDS) {
    const from: EngineKind = seed % 2 ? "wasm" : "ts";
    it(`seed ${seed}: ${from} -> ${other(from)} mid-program continues identically`, async () => {
      const r = new Rng(seed * 0x9e3779b1);
      const prog = generate(r, 1200);
      const init = randomInit(r);
      const cut = 1 + r.int(20_000);
      const a = await engine(from);
      loadProgram(a, prog, init);
      driveProgram(a, prog, new Rng(seed), cut, 1 + r.int(500));

      // The target ran something else first: everything must be overwritten.
      const b = await engine(other(from));
      const g = new Rng(seed + 1000);
      const junk = generate(g, 300);
      loadProgram(b, junk, randomInit(g));
      driveProgram(b, junk, new Rng(7), 5000, 333);

      const s = a.archState();
      b.writeMem(0, a.readMem(0, LAYOUT.ram));
      b.setArchState(s);
      expect(b.archState()).toEqual(s);

      const answers = 0x1234 + seed;
      const ra = driveProgram(a, prog, new Rng(answers), 100_000, 777);
      const rb = driveProgram(b, prog, new Rng(answers), 100_000, 777);
      expect(rb.exits).toEqual(ra.exits);
      expect(b.archState()).toEqual(a.archState());
      expect(Buffer.from(b.ram).equals(Buffer.from(a.ram))).toBe(true);
      a.dispose();
      b.dispose();
    });
  }

  for (const kind of ["wasm", "ts"] as const) {
    it(`${kind}: every field, unusual values included, reads back as set`, async () => {
      const e = await engine(kind);
      const s: ArchState = {
        regs: [1, 2, 3, 4, 0xfffffffc, 6, 7, 0x80000000], eip: 0x1234, eflags: 0x246 | 0x800 | 0x1,
        segSel: [0x10, 0x08, 0x10, 0x18, 0x20, 0x28], segBase: [0, 0, 0, 0x1000, 0x4000, 0xffff4000],
        segLimit: [0xffffffff, 0xffffffff, 0xffffffff, 0xfffff, 0xffffffff, 0xffff], segAttr: [0x193, 0x19b, 0x193, 0x193, 0x193, 0x93],
        cr: [0x11, 0xdead, 0xbeef, 0x10], gdt: [0x500, 0x2f], idt: [0x800, 0x7ff], icount: "123456789012345",
        halted: 1, shadow: 1, irqPending: 1, idtLoaded: 1, delivering: 0, firstVector: 13, pendingExit: 0,
      };
      e.setArchState(s);
      expect(e.archState()).toEqual(s);
      expect(e.icount).toBe(123456789012345n);
      s.pendingExit = ExitReason.TripleFault;
      e.setArchState(s);
      expect(e.archState()).toEqual(s);
      expect(e.run(5).reason).toBe(ExitReason.TripleFault);
      e.dispose();
    });

    it(`${kind}: segment limits set by it are enforced (the core's flat-segment shortcut is re-derived)`, async () => {
      const e = await engine(kind);
      e.writeMem(0x1000, Uint8Array.from([0x8b, 0x05, 0x00, 0x20, 0x00, 0x00, 0xf4])); // mov eax, [0x2000]; hlt
      const flat = e.archState();
      flat.eip = 0x1000;
      e.setArchState(flat);
      expect(e.run(2).reason).toBe(ExitReason.Hlt);
      const limited = { ...flat, segLimit: [...flat.segLimit] };
      limited.segLimit[DS] = 0xfff;
      e.setArchState(limited);
      const x = e.run(2);
      expect(x.reason).toBe(ExitReason.Fault);
      expect(x.vector).toBe(13);
      e.dispose();
    });

    it(`${kind}: malformed states are refused naming the field`, async () => {
      const e = await engine(kind);
      const good = e.archState();
      const bad = (patch: Record<string, unknown>) => () => e.setArchState({ ...good, ...patch } as ArchState);
      expect(bad({ regs: [1, 2, 3] })).toThrow(TypeError);
      expect(bad({ regs: [1, 2, 3] })).toThrow(/regs/);
      expect(bad({ segBase: [0, 0, 0, 0, 0, -1] })).toThrow(/segBase\[5\]/);
      expect(bad({ eip: 1.5 })).toThrow(/eip/);
      expect(bad({ eflags: "2" })).toThrow(/eflags/);
      expect(bad({ icount: 5 })).toThrow(/icount/);
      expect(bad({ icount: "18446744073709551616" })).toThrow(/icount/);
      expect(bad({ halted: 2 })).toThrow(/halted/);
      expect(bad({ segSel: [0x10000, 0, 0, 0, 0, 0] })).toThrow(/segSel\[0\]/);
      expect(bad({ gdt: undefined })).toThrow(/gdt/);
      expect(bad({ pendingExit: 99 })).toThrow(/pendingExit/);
      expect(() => e.setArchState(null as never)).toThrow(TypeError);
      // A refused state changed nothing.
      expect(e.archState()).toEqual(good);
      e.dispose();
    });
  }
});
