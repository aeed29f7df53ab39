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
  addMmio(start: number, end: number): number;
  clearMmio(): void;
  ramBase(): View;
  dirtyBase(): View;
  stateBase(): View;
}
