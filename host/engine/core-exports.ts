// The functions both builds of assembly/index.ts export. The wasm build returns
// byte addresses from ramBase/dirtyBase/stateBase, the TS build typed arrays.

export interface CoreExports<View> {
  init(ramSize: number): number;
  reset(): void;
  run(budget: number): number;
  step(): number;
  getState(i: number): number;
  setState(i: number, v: number): void;
  getEflags(): number;
  setEflags(v: number): void;
  setAnswer(a: number, b: number, c: number, d: number): void;
  answerMmio(v: number): number;
  addMmio(start: number, end: number): number;
  clearMmio(): void;
  hostWrote(addr: number, len: number): void;
  interruptible(): number;
  raiseInterrupt(vector: number): number;
  setIrqPending(on: number): void;
  /** 1: every instruction through the byte interpreter; 0: the decoded-instruction cache (init() sets 0). */
  setByteInterpreter(on: number): void;
  /** After the host wrote architectural state words: re-derive what the core caches from them. */
  stateLoaded(): void;
  ramBase(): View;
  dirtyBase(): View;
  stateBase(): View;
  /** The decoded-instruction cache (8 words an entry) and the per-256-byte-line store generations. */
  icacheBase(): View;
  lineGenBase(): View;
}
