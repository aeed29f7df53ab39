// The debug console: a one-byte port (0xE9 by convention) whose writes are
// characters for the host. Reads return the port number, 0xE9, which is how a
// guest detects the console under Bochs and QEMU.

import type { AccessSize, PortDevice, StatefulDevice } from "./device.js";
import { asRecord, readBytes, writeBytes } from "./port-io.js";

export interface DebugPortOptions {
  /** Receives each byte the guest writes, as it is written. */
  onOutput: (byte: number) => void;
  /** Port (default 0xE9). */
  port?: number;
  /** Device name (default "debugcon"). */
  name?: string;
}

export class DebugPort implements PortDevice, StatefulDevice {
  readonly name: string;
  readonly ports: readonly (readonly [number, number])[];
  private readonly port: number;
  private readonly onOutput: (byte: number) => void;

  constructor(opts: DebugPortOptions) {
    this.port = opts.port ?? 0xe9;
    this.name = opts.name ?? "debugcon";
    this.ports = [[this.port, this.port + 1]];
    this.onOutput = opts.onOutput;
  }

  /** The port is one byte wide: a wide IN reads 0xE9 in the low byte, 0xFF above it. */
  read(port: number, size: AccessSize): number {
    return readBytes(this.ports, port, size, () => this.port & 0xff);
  }

  /** A wide OUT outputs only its low byte (the others fall on ports nobody decodes). */
  write(port: number, size: AccessSize, value: number): void {
    writeBytes(this.ports, port, size, value, (_p, b) => this.onOutput(b));
  }

  /** The console has no state of its own. */
  saveState(): unknown {
    return {};
  }

  loadState(state: unknown): void {
    asRecord(state, this.name);
  }
}
