// What a device is to the machine. Devices sit on the port bus (or map MMIO),
// raise interrupt lines, and see time and outside input only through the
// interfaces handed to them: they never read a clock, a file or a socket on
// their own (ARCHITECTURE.md invariant 2; the replay layer stands behind these
// interfaces).

export type AccessSize = 1 | 2 | 4;

/** A device answering a set of I/O ports. */
export interface PortDevice {
  /** Short name for messages and snapshots ("uart0", "pic", "pit"...). */
  readonly name: string;
  /** Port ranges [start, end) this device decodes. */
  readonly ports: readonly (readonly [number, number])[];
  /** An IN: returns the value (only the low `size` bytes are used). */
  read(port: number, size: AccessSize): number;
  /** An OUT of the low `size` bytes of value. */
  write(port: number, size: AccessSize, value: number): void;
}

/** A device whose behaviour depends on guest time (timers, delayed completions). */
export interface TimedDevice {
  /** Guest time (ns) of the next thing this device will do by itself, or null. */
  nextEventNs(): number | null;
  /** Brings the device up to guest time `nowNs` (fires what is due). */
  advance(nowNs: number): void;
}

/** Device state for snapshots and state hashes: plain JSON-able data. */
export interface StatefulDevice {
  saveState(): unknown;
  loadState(state: unknown): void;
}

/** One interrupt request line into the interrupt controller. */
export interface IrqLine {
  /** Drive the line high (level) — edge-triggered inputs latch the rising edge. */
  raise(): void;
  lower(): void;
}

/** Guest time in nanoseconds: the host clock (live) or the instruction count (virtual). */
export interface GuestClock {
  nowNs(): number;
}

/** Calendar time for the RTC, in milliseconds since the Unix epoch (injected, never Date.now in a device). */
export interface WallClock {
  epochMs(): number;
}

/** Guest physical memory as devices that do DMA see it. */
export interface GuestMemory {
  read(addr: number, len: number): Uint8Array;
  write(addr: number, bytes: Uint8Array): void;
}
