// The core's exported API: the same functions in the wasm module and in the
// pure-TypeScript build. host/engine/ wraps them in the Engine interface.

import { st, setSt, leu, MAX_RAM } from "./target/wasm";
import {
  S_MMIO_COUNT, S_MMIO, MMIO_MAX, S_ANSWER, S_ANSWER_VALID, S_MMIOR_COUNT, S_MMIOR, MMIOR_MAX, S_SHADOW,
  S_EIP, S_BASE, SEG_CS, S_EXIT, S_ABORT, S_HALTED, S_IRQ_PENDING, IF,
} from "./state";
import { getFlags, setFlags } from "./flags";
import { stored } from "./memory";
import { deliver, deliverException, idtActive } from "./interrupts";
import { getIp, setIp } from "./decode";
import { cpuInit, cpuReset, run as cpuRun, step as cpuStep } from "./cpu";
import { setBytesOnly } from "./dispatch";
import { refreshFlat } from "./segment";
import { icClearTags } from "./target/wasm";

// Where the host finds guest RAM, the dirty-page bytemap and the state words:
// byte addresses in the wasm memory for the wasm build, typed arrays for the
// TypeScript build (each build's host adapter knows which it gets).
export { ramBase, dirtyBase, stateBase, icacheBase, lineGenBase } from "./target/wasm";

/** Sets up a machine with `ramSize` bytes of guest RAM (a multiple of 4 KiB). Returns 0, or -1 for a bad size. */
export function init(ramSize: i32): i32 {
  if (ramSize < 0x1000 || ramSize > MAX_RAM || (ramSize & 0xfff) != 0) return -1;
  cpuInit(ramSize);
  return 0;
}
export function reset(): void { cpuReset(); }

/** 1: every instruction through the byte interpreter (exec.ts), the decoded-instruction cache unused; 0: the cache (after init). */
export function setByteInterpreter(on: i32): void { setBytesOnly(on != 0); }

/**
 * The host wrote architectural state words directly (a snapshot restore):
 * recompute what the core derives from them (whether all segments are flat)
 * and drop every cached decode.
 */
export function stateLoaded(): void {
  refreshFlat();
  icClearTags();
}
export function run(budget: i32): i32 { return cpuRun(budget); }
export function step(): i32 { return cpuStep(); }

/** State words (see state.ts): registers, EIP, segments, counters, exit info. */
export function getState(i: i32): i32 { return st(i); }
export function setState(i: i32, v: i32): void { setSt(i, v); }
export function getEflags(): i32 { return getFlags(); }
export function setEflags(v: i32): void { setFlags(v); }

/** The host's answer to the last input exit; the instruction then runs again and takes it. */
export function setAnswer(a: i32, b: i32, c: i32, d: i32): void {
  setSt(S_ANSWER, a);
  setSt(S_ANSWER + 1, b);
  setSt(S_ANSWER + 2, c);
  setSt(S_ANSWER + 3, d);
  setSt(S_ANSWER_VALID, 1);
}

/**
 * The host's value for the MMIO read the last exit reported. An instruction
 * may read MMIO several times: each exit is answered in turn, and the answers
 * are consumed in order when it runs again. Returns -1 if too many.
 */
export function answerMmio(v: i32): i32 {
  const n = st(S_MMIOR_COUNT);
  if (n >= MMIOR_MAX) return -1;
  setSt(S_MMIOR + n, v);
  setSt(S_MMIOR_COUNT, n + 1);
  return 0;
}

/** Registers [start, end) as MMIO. Returns the range index, or -1 when the table is full or the range is empty. */
export function addMmio(start: i32, end: i32): i32 {
  const n = st(S_MMIO_COUNT);
  if (n >= MMIO_MAX || leu(end, start)) return -1;
  setSt(S_MMIO + 2 * n, start);
  setSt(S_MMIO + 2 * n + 1, end);
  setSt(S_MMIO_COUNT, n + 1);
  return n;
}
export function clearMmio(): void { setSt(S_MMIO_COUNT, 0); }

/**
 * The host wrote guest RAM [addr, addr+len) directly (loader, snapshot
 * restore): mark the pages dirty and retire cached decodes of those lines.
 */
export function hostWrote(addr: i32, len: i32): void {
  if (len <= 0) return;
  const last = (addr + len - 1) | 0;
  for (let a = addr & ~0xff; leu(a, last); a = (a + 256) | 0) {
    stored(a);
    if (a == (last & ~0xff)) break;
  }
}

/** 1 when an external interrupt could be delivered now: IF set, no STI/MOV SS shadow. */
export function interruptible(): i32 {
  return (getFlags() & IF) != 0 && st(S_SHADOW) == 0 ? 1 : 0;
}

/**
 * Delivers external interrupt `vector` now, between instructions (counts as
 * no instruction; wakes a halted CPU). Returns 0 if it cannot be delivered
 * now (IF clear or a shadow), 1 if delivered, 2 if delivering it faulted all
 * the way to a triple fault (the next run() reports it), 3 with no IDT loaded
 * (the guest never executed LIDT).
 */
export function raiseInterrupt(vector: i32): i32 {
  if (interruptible() == 0) return 0;
  if (!idtActive()) return 3;
  const eip = st(S_EIP);
  setIp((st(S_BASE + SEG_CS) + eip) | 0);
  setSt(S_EXIT, 0);
  setSt(S_ABORT, 0);
  if (!deliver(vector & 0xff, eip, -1, 1) && !deliverException(eip)) return 2;
  setSt(S_EIP, (getIp() - st(S_BASE + SEG_CS)) | 0);
  setSt(S_HALTED, 0);
  return 1;
}

/** The host has an interrupt it could not deliver: run() then ends as soon as it can be (EXIT_IRQ_WINDOW). */
export function setIrqPending(on: i32): void { setSt(S_IRQ_PENDING, on != 0 ? 1 : 0); }
