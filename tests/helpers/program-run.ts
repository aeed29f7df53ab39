// Runs a generated program (codegen.ts) on one engine, handling every exit
// the way tests/differential.test.ts does, so that two engines driven with the
// same seed see the same inputs and can be compared afterwards.

import { ExitReason, type Engine } from "../../host/engine/engine.js";
import { LAYOUT, type Program } from "./codegen.js";
import { Rng } from "./machine.js";
import { ESP, FS, GS } from "./x86.js";

export interface ProgramInit {
  regs: number[];
  eflags: number;
  /** LAYOUT.dataLo .. LAYOUT.stackTop */
  data: Uint8Array;
}

export function randomInit(r: { u32(): number }): ProgramInit {
  const regs = Array.from({ length: 8 }, () => r.u32());
  regs[ESP] = LAYOUT.stackTop;
  const data = new Uint8Array(LAYOUT.stackTop - LAYOUT.dataLo);
  for (let i = 0; i < data.length; i++) data[i] = r.u32() & 0xff;
  // Any writable flag but TF (single-step traps are not modelled).
  const eflags = (r.u32() & 0x247fd5 & ~0x100) | 2;
  return { regs, eflags, data };
}

/** Loads the program and its data at the LAYOUT addresses and sets the initial registers (RAM elsewhere is left as it is). */
export function loadProgram(e: Engine, prog: Program, init: ProgramInit): void {
  e.reset();
  e.addMmio(LAYOUT.mmio, LAYOUT.mmio + LAYOUT.mmioSize);
  e.writeMem(LAYOUT.dataLo, init.data);
  e.writeMem(LAYOUT.code, prog.bytes);
  init.regs.forEach((v, i) => e.setReg(i, v));
  e.eflags = init.eflags;
  e.eip = LAYOUT.code;
  e.setSegBase(FS, LAYOUT.fsBase);
  e.setSegBase(GS, LAYOUT.gsBase);
}

/**
 * Runs until the program's final HLT or `limit` instructions, in slices of at
 * most `slice`. Input exits are answered from `answers`, INT n resumes at the
 * next instruction, a fault skips the faulting instruction. Returns one line
 * per exit (for comparing two runs) and the instructions retired.
 */
export function driveProgram(e: Engine, prog: Program, answers: Rng, limit: number, slice: number): { exits: string[]; executed: number } {
  const exits: string[] = [];
  let executed = 0;
  while (executed < limit) {
    const x = e.run(Math.min(slice, limit - executed));
    executed += x.executed;
    exits.push(JSON.stringify(x));
    switch (x.reason) {
      case ExitReason.Budget: case ExitReason.Out: case ExitReason.MmioWrite:
        break;
      case ExitReason.Hlt:
        if (e.eip === LAYOUT.code + prog.end) return { exits, executed };
        break;
      case ExitReason.In: case ExitReason.MmioRead:
        e.answer(answers.u32());
        break;
      case ExitReason.Rdtsc: case ExitReason.Rdrand: case ExitReason.Rdseed:
        e.answer(answers.u32(), answers.u32() & 1);
        break;
      case ExitReason.Cpuid:
        e.answer(answers.u32(), answers.u32(), answers.u32(), answers.u32());
        break;
      case ExitReason.Int:
        e.eip = x.nextEip!;
        break;
      case ExitReason.Fault: {
        const len = prog.starts.get(e.eip - LAYOUT.code);
        if (len === undefined) return { exits, executed };
        e.eip += len;
        break;
      }
      default:
        return { exits, executed };
    }
  }
  return { exits, executed };
}
