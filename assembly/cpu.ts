// The run loop and the instruction counter.
//
// run(budget) retires exactly `budget` instructions unless an exit comes first.
// The retired-instruction count is the VM's clock: a faulting or aborted
// instruction does not count, an instruction that exits after completing (OUT,
// HLT, MMIO write) counts once, and each REP iteration counts once.

import { st, setSt, ltu, targetInit } from "./target/wasm";
import {
  S_EXIT, S_ABORT, S_LEFT, S_STEP_MODE, S_EXECUTED, S_ICOUNT_LO, S_ICOUNT_HI, S_MMIOW_COUNT,
  S_RAMSIZE, S_EIP, S_SEL, S_BASE, S_CR0, S_EXIT_ERROR, EXIT_BUDGET, SEG_CS, ZERO_REG, EXIT_HLT,
  S_GDT_BASE, S_GDT_LIMIT, S_IDT_BASE, S_IDT_LIMIT, S_IDT_SET, S_HALTED, S_SHADOW, S_IRQ_PENDING,
  S_PENDING_EXIT,
} from "./state";
import { runLoop, setBytesOnly } from "./dispatch";
import { flatSegments, segmentReset } from "./segment";
import { getIp, setIp, decodeReset } from "./decode";
import { flagsReset } from "./flags";
import { memoryInit } from "./memory";
import { execReset } from "./exec";
import { operandReset } from "./operand";
import { icacheReset } from "./icache";

// The host reuses cores (host/engine/load.ts pools them), so init() must leave
// every module-level variable of the core as a fresh instance has it:
// targetInit (RAM, state words, caches, hiWord/remWord), memoryInit (RAM
// limits), setBytesOnly, and cpuReset for the rest.
export function cpuInit(ramSize: i32): void {
  targetInit(ramSize);
  memoryInit(ramSize);
  setSt(S_RAMSIZE, ramSize);
  setBytesOnly(false);
  cpuReset();
}

/** Registers to their power-on values for a flat 32-bit machine; RAM is untouched. */
export function cpuReset(): void {
  for (let i = 0; i < 8; i++) setSt(i, 0);
  setSt(ZERO_REG, 0);
  setSt(S_EIP, 0);
  flatSegments();
  setSt(S_GDT_BASE, 0); setSt(S_GDT_LIMIT, 0);
  setSt(S_IDT_BASE, 0); setSt(S_IDT_LIMIT, 0); setSt(S_IDT_SET, 0);
  setSt(S_HALTED, 0); setSt(S_SHADOW, 0); setSt(S_IRQ_PENDING, 0); setSt(S_PENDING_EXIT, 0);
  setSt(S_CR0, 0x11); // PE set (protected mode), ET set
  setSt(S_ICOUNT_LO, 0);
  setSt(S_ICOUNT_HI, 0);
  setSt(S_EXIT, 0);
  setSt(S_EXIT_ERROR, -1);
  flagsReset();
  // Decoder scratch: set before every use, reset so nothing can carry over.
  decodeReset();
  execReset();
  operandReset();
  icacheReset();
  segmentReset();
}

export function run(budget: i32): i32 {
  // A triple-faulted machine stays dead (until reset).
  if (st(S_PENDING_EXIT) != 0) {
    setSt(S_EXIT, st(S_PENDING_EXIT));
    setSt(S_EXECUTED, 0);
    return st(S_EXIT);
  }
  setSt(S_EXIT, EXIT_BUDGET);
  setSt(S_ABORT, 0);
  setSt(S_MMIOW_COUNT, 0);
  setIp((st(S_BASE + SEG_CS) + st(S_EIP)) | 0);
  // Running again ends a HLT: the host either delivered an interrupt or chose
  // to go on (the machine layer does not run a halted CPU until one arrives).
  setSt(S_HALTED, 0);
  const left = budget > 0 ? runLoop(budget) : 0;
  setSt(S_EIP, (getIp() - st(S_BASE + SEG_CS)) | 0);
  const done = budget > 0 ? (budget - left) | 0 : 0;
  setSt(S_EXECUTED, done);
  const lo = (st(S_ICOUNT_LO) + done) | 0;
  if (ltu(lo, st(S_ICOUNT_LO))) setSt(S_ICOUNT_HI, (st(S_ICOUNT_HI) + 1) | 0);
  setSt(S_ICOUNT_LO, lo);
  return st(S_EXIT);
}

/** Executes one whole architectural instruction (every REP iteration). */
export function step(): i32 {
  setSt(S_STEP_MODE, 1);
  const r = run(1);
  setSt(S_STEP_MODE, 0);
  return r;
}
