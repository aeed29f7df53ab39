// isa-debug-exit: a port (0xF4 by convention) the guest writes to stop the
// machine. The value written (1, 2 or 4 bytes, masked to the access size) is
// handed to onExit; the machine stops and `lockstep run` exits with that
// status. (QEMU's isa-debug-exit instead makes the QEMU process exit with
// (value << 1) | 1; a guest that runs under both sees value v here and
// 2v+1 there.)

import type { AccessSize, PortDevice, StatefulDevice } from "./device.js";
import { asRecord, sizeMask } from "./port-io.js";

export interface ExitPortOptions {
  /** Called with the value of every write (the machine stops on the first). */
  onExit: (value: number) => void;
  /** Port (default 0xF4). */
  port?: number;
  /** Device name (default "debug-exit"). */
  name?: string;
}

export class ExitPort implements PortDevice, StatefulDevice {
  readonly name: string;
  readonly ports: readonly (readonly [number, number])[];
  private readonly onExit: (value: number) => void;
  /** The value of the last write, or null if the guest never wrote one. */
  private last: number | null = null;

  constructor(opts: ExitPortOptions) {
    const port = opts.port ?? 0xf4;
    this.name = opts.name ?? "debug-exit";
    this.ports = [[port, port + 1]];
    this.onExit = opts.onExit;
  }

  /** The value of the last write (masked to its size), or null. */
  get exitValue(): number | null {
    return this.last;
  }

  /** Reads return all ones (the port is write-only). */
  read(_port: number, size: AccessSize): number {
    return sizeMask(size);
  }

  /** The whole value of a 1-, 2- or 4-byte write goes to onExit (it is not split into bytes). */
  write(_port: number, size: AccessSize, value: number): void {
    const v = (value & sizeMask(size)) >>> 0;
    this.last = v;
    this.onExit(v);
  }

  saveState(): unknown {
    return { last: this.last };
  }

  loadState(state: unknown): void {
    const r = asRecord(state, this.name);
    const v = r.last;
    if (v !== null && !(typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff))
      throw new TypeError(`${this.name}: state.last is not null or a 32-bit value`);
    this.last = v as number | null;
  }
}
