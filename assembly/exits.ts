// Leaving run() for the host. Two kinds of exit:
// - aborting (fault, INT n, or an input the host must supply): the instruction
//   does not retire, EIP stays on it, and it runs again from the start;
// - after retiring (OUT, HLT, MMIO write): the instruction completed and the host
//   acts on what it produced.

import { st, setSt } from "./target/wasm";
import {
  S_EXIT, S_ABORT, S_EXIT_ADDR, S_EXIT_SIZE, S_EXIT_VALUE, S_EXIT_VECTOR, S_EXIT_ERROR,
  S_EXIT_NEXT, S_ANSWER_VALID, S_ANSWER, EXIT_FAULT, EXIT_INT,
} from "./state";

/** Raises exception `vec` (error code err, -1 for none): the instruction aborts. */
export function fault(vec: i32, err: i32): void {
  setSt(S_EXIT, EXIT_FAULT);
  setSt(S_EXIT_VECTOR, vec);
  setSt(S_EXIT_ERROR, err);
  setSt(S_ABORT, 1);
}

/** INT n / INT3 / INTO: handed to the host for now (IDT delivery comes later). */
export function softInt(vec: i32, nextEip: i32): void {
  setSt(S_EXIT, EXIT_INT);
  setSt(S_EXIT_VECTOR, vec);
  setSt(S_EXIT_NEXT, nextEip);
  setSt(S_ABORT, 1);
}

/**
 * Asks the host for an input value. Returns true and leaves the answer in
 * answer(0..3) if the host already supplied it (the re-execution), otherwise
 * records the exit and aborts the instruction.
 */
export function input(reason: i32, addr: i32, size: i32): bool {
  if (st(S_ANSWER_VALID) != 0) {
    setSt(S_ANSWER_VALID, 0);
    return true;
  }
  setSt(S_EXIT, reason);
  setSt(S_EXIT_ADDR, addr);
  setSt(S_EXIT_SIZE, size);
  setSt(S_ABORT, 1);
  return false;
}
// @ts-ignore: decorator
@inline export function answer(i: i32): i32 { return st(S_ANSWER + i); }

/** Reports an output after the instruction retires. */
export function output(reason: i32, addr: i32, size: i32, value: i32): void {
  setSt(S_EXIT, reason);
  setSt(S_EXIT_ADDR, addr);
  setSt(S_EXIT_SIZE, size);
  setSt(S_EXIT_VALUE, value);
}
