// The I/O port bus: routes IN/OUT to the device that decodes the port.
// Unassigned ports read as all ones and ignore writes, as on a PC.

import type { AccessSize, PortDevice } from "../devices/device.js";

export class PortBus {
  private readonly map = new Map<number, PortDevice>();
  readonly devices: PortDevice[] = [];

  /** Adds a device; refuses a port another device already decodes. */
  attach(dev: PortDevice): void {
    for (const [start, end] of dev.ports) {
      if (!(start >= 0 && end <= 0x10000 && start < end)) throw new RangeError(`${dev.name}: bad port range [${start}, ${end})`);
      for (let p = start; p < end; p++) {
        const other = this.map.get(p);
        if (other) throw new Error(`port 0x${p.toString(16)} claimed by both ${other.name} and ${dev.name}`);
      }
    }
    for (const [start, end] of dev.ports) for (let p = start; p < end; p++) this.map.set(p, dev);
    this.devices.push(dev);
  }

  read(port: number, size: AccessSize): number {
    const dev = this.map.get(port & 0xffff);
    if (!dev) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    return dev.read(port & 0xffff, size);
  }

  write(port: number, size: AccessSize, value: number): void {
    this.map.get(port & 0xffff)?.write(port & 0xffff, size, value);
  }
}
