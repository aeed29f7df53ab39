// Runs test cases on an engine: load the initial state, step() one whole
// instruction, compare with the expected final state. Every case should pass
// on both execution paths of both engines (EXEC_PATHS): the cached handlers
// (assembly/dispatch.ts) and the byte interpreter they stand in for
// (assembly/exec.ts), which otherwise only runs what the cache does not take.

import { ExitReason, REG_NAMES, type Engine } from "../engine/engine.js";
import type { TestCase } from "./case.js";

/** Exception mnemonics used by the format, by vector. */
export const EXCEPTION_NAMES: Record<number, string> = {
  0: "DE", 1: "DB", 3: "BP", 4: "OF", 5: "BR", 6: "UD", 7: "NM", 8: "DF",
  10: "TS", 11: "NP", 12: "SS", 13: "GP", 14: "PF", 16: "MF", 17: "AC",
};

export interface Mismatch {
  what: string;      // "eax", "eip", "flags.CF", "mem[0x1000]", "exception"
  expected: string;
  got: string;
}
export interface CaseResult {
  pass: boolean;
  mismatches: Mismatch[];
}

/** How an engine executes: from the decoded-instruction cache (the normal path), or every instruction through the byte interpreter. */
export type ExecPath = "cache" | "bytes";
export const EXEC_PATHS: readonly ExecPath[] = ["cache", "bytes"];
/** The engine option (host/engine/load.ts EngineOptions) that selects a path. */
export const pathOption = (path: ExecPath): { byteInterpreter: boolean } => ({ byteInterpreter: path === "bytes" });

/** RAM the runner gives the engine: the format keeps addresses under 4 MiB. */
export const CONFORMANCE_RAM = 8 << 20;

const FLAG_NAMES = new Map<number, string>([
  [0, "CF"], [2, "PF"], [4, "AF"], [6, "ZF"], [7, "SF"], [8, "TF"], [9, "IF"], [10, "DF"], [11, "OF"],
  [14, "NT"], [18, "AC"], [21, "ID"],
]);
const hex32 = (v: number) => "0x" + (v >>> 0).toString(16).padStart(8, "0");

export function runCase(engine: Engine, tc: TestCase): CaseResult {
  engine.reset();
  for (let r = 0; r < 8; r++) engine.setReg(r, tc.init.regs[REG_NAMES[r]]);
  engine.eflags = tc.init.flags;
  engine.eip = tc.init.eip;
  for (const w of tc.init.mem) engine.writeMem(w.addr, w.bytes);
  engine.writeMem(tc.init.eip, tc.bytes);

  const exit = engine.step();
  const mismatches: Mismatch[] = [];
  let exception: string | null = null;
  if (exit.reason === ExitReason.Fault) exception = EXCEPTION_NAMES[exit.vector ?? -1] ?? `#${exit.vector}`;
  else if (exit.reason !== ExitReason.Budget && exit.reason !== ExitReason.Hlt) {
    exception = `exit:${ExitReason[exit.reason]}`;
  }
  if (exception !== tc.final.exception) {
    mismatches.push({ what: "exception", expected: String(tc.final.exception), got: String(exception) });
  }
  for (let r = 0; r < 8; r++) {
    const n = REG_NAMES[r];
    if (tc.undefRegs.includes(n)) continue;
    const got = engine.getReg(r);
    if (got !== tc.final.regs[n]) mismatches.push({ what: n, expected: hex32(tc.final.regs[n]), got: hex32(got) });
  }
  if (engine.eip !== tc.final.eip) mismatches.push({ what: "eip", expected: hex32(tc.final.eip), got: hex32(engine.eip) });
  const f = engine.eflags;
  const diff = (f ^ tc.final.flags) & tc.flagsMask;
  for (let bit = 0; bit < 32; bit++) {
    if ((diff >>> bit) & 1) {
      const name = FLAG_NAMES.get(bit) ?? `bit${bit}`;
      mismatches.push({ what: `flags.${name}`, expected: String((tc.final.flags >>> bit) & 1), got: String((f >>> bit) & 1) });
    }
  }
  for (const w of tc.final.mem) {
    const got = engine.readMem(w.addr, w.bytes.length);
    for (let k = 0; k < w.bytes.length; k++) {
      const a = w.addr + k;
      if (got[k] !== w.bytes[k] && !tc.undefMem.includes(a)) {
        mismatches.push({ what: `mem[0x${a.toString(16)}]`, expected: hex8(w.bytes[k]), got: hex8(got[k]) });
      }
    }
  }
  return { pass: mismatches.length === 0, mismatches };
}
const hex8 = (v: number) => "0x" + v.toString(16).padStart(2, "0");
