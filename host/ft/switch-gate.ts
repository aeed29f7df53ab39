// The backup's gate: the replay gate while it follows the primary, the live
// gate once it goes live. The machine was built with one gate and keeps it;
// this one hands every call to whichever side is current, so going live is
// one switch between two instructions, with no machine rebuilt and no state
// copied.

import type { BoundaryView, DerivedKind, GateMode, InputGate, InputSink } from "../machine/input-gate.js";

export class SwitchGate implements InputGate {
  private current: InputGate;

  constructor(first: InputGate) {
    this.current = first;
  }

  /** From now on every value comes from `next` (called between runSync calls). */
  switchTo(next: InputGate): void {
    this.current = next;
  }

  get mode(): GateMode {
    return this.current.mode;
  }
  get epochMs(): number {
    return this.current.epochMs;
  }
  boundary(view: BoundaryView, sink: InputSink): void {
    this.current.boundary(view, sink);
  }
  budget(icount: bigint): number | null {
    return this.current.budget(icount);
  }
  wantsBoundary(nextEventNs: () => number | null): boolean {
    return this.current.wantsBoundary(nextEventNs);
  }
  pendingAt(icount: bigint): boolean {
    return this.current.pendingAt(icount);
  }
  rdtsc(view: BoundaryView, setTime: (ns: number) => void): bigint {
    return this.current.rdtsc(view, setTime);
  }
  entropy(icount: bigint): number {
    return this.current.entropy(icount);
  }
  diskRead(icount: bigint, lba: number, read: () => Uint8Array): Uint8Array {
    return this.current.diskRead(icount, lba, read);
  }
  derived(icount: bigint, kind: DerivedKind, value: number): void {
    this.current.derived(icount, kind, value);
  }
  queueSerial(bytes: ArrayLike<number>): void {
    this.current.queueSerial(bytes);
  }
  queueFrame(frame: Uint8Array): void {
    this.current.queueFrame(frame);
  }
  hostElapsedNs(): number | null {
    return this.current.hostElapsedNs();
  }
}
