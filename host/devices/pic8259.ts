// The two 8259A programmable interrupt controllers of a PC: the master at
// ports 0x20/0x21 takes IRQ 0-7, the slave at 0xA0/0xA1 takes IRQ 8-15 and
// drives the master's IR2 input (the cascade). See docs/devices.md.
//
// Modelled from the Intel 8259A datasheet:
// - initialization ICW1-ICW4 (ICW3 skipped in single mode, ICW4 only if ICW1.IC4);
// - OCW1 (mask), OCW2 (all eight commands: non-specific/specific EOI, their
//   rotating forms, rotate in AEOI mode set/clear, set priority, no-op),
//   OCW3 (read IRR/ISR, poll, special mask mode);
// - edge-triggered inputs (a rising edge sets the IRR bit) or level-triggered
//   ones (ICW1.LTIM: the IRR bit follows the input); in both modes a request
//   whose input goes low before it is acknowledged is withdrawn (the datasheet
//   requires the input to stay high until the acknowledge);
// - fully nested priorities with rotation, the in-service register, automatic
//   EOI, special fully nested mode in the master;
// - an acknowledge with no request left gives the spurious vector IR7 of the
//   chip that answered: base+7 from the master without setting any ISR bit;
//   from the slave, slave base+7 with the master's IR2 in-service bit set
//   (so the handler must EOI the master only).
// The cascade wiring is fixed as on a PC (slave INT -> master IR2); the ICW3
// values are kept and the master treats IR2 as a cascade input only while
// ICW3 says a slave is there and ICW1 did not select single mode. The 8080/85
// call-instruction acknowledge (ICW4.uPM = 0) and buffered mode are accepted
// but change nothing: vectors are always delivered as in 8086 mode.

import type { AccessSize, IrqLine, PortDevice, StatefulDevice } from "./device.js";
import { asRecord, bool, int, readBytes, writeBytes } from "./port-io.js";

/** One 8259A's registers and mode bits (plain data: it is the snapshot). */
interface ChipState {
  /** Interrupt request register. */
  irr: number;
  /** In-service register. */
  isr: number;
  /** Interrupt mask register (OCW1). */
  imr: number;
  /** Current levels of the eight inputs (for edge detection). */
  levels: number;
  /** Vector base (ICW2 & 0xF8). */
  base: number;
  /** ICW3 as written (master: bit per slave; slave: its id). */
  icw3: number;
  /** ICW1 bits: level-triggered, single (no cascade), ICW4 needed. */
  ltim: boolean;
  single: boolean;
  ic4: boolean;
  /** ICW4 bits: 8086 mode, automatic EOI, master (buffered), buffered, special fully nested. */
  upm: boolean;
  aeoi: boolean;
  ms: boolean;
  buf: boolean;
  sfnm: boolean;
  /** Next initialization word expected on the odd port (2, 3, 4), 0 when initialized. */
  initStep: number;
  /** OCW3: the even port reads ISR (else IRR). */
  readIsr: boolean;
  /** OCW3 poll command pending: the next read is the poll word. */
  poll: boolean;
  /** Special mask mode. */
  smm: boolean;
  /** The input with the lowest priority (7 after initialization; rotation moves it). */
  lowest: number;
  /** OCW2 rotate-in-AEOI-mode flag. */
  rotateAeoi: boolean;
}

const CASCADE_IR = 2;

function chipAfterBios(base: number, icw3: number, imr: number): ChipState {
  return {
    irr: 0, isr: 0, imr, levels: 0, base, icw3,
    ltim: false, single: false, ic4: true,
    upm: true, aeoi: false, ms: false, buf: false, sfnm: false,
    initStep: 0, readIsr: false, poll: false, smm: false, lowest: 7, rotateAeoi: false,
  };
}

class Chip {
  constructor(public s: ChipState, private readonly isMaster: boolean) {}

  /** 0 = highest priority. */
  private prio(ir: number): number {
    return (ir - this.s.lowest - 1) & 7;
  }

  /** The highest-priority input among `bits`, or -1. */
  private highest(bits: number): number {
    for (let k = 0; k < 8; k++) {
      const ir = (this.s.lowest + 1 + k) & 7;
      if (bits & (1 << ir)) return ir;
    }
    return -1;
  }

  /** Whether input ir is wired to the slave and programmed as a cascade input. */
  isCascade(ir: number): boolean {
    return this.isMaster && ir === CASCADE_IR && !this.s.single && (this.s.icw3 & (1 << CASCADE_IR)) !== 0;
  }

  setInput(ir: number, high: boolean): void {
    const m = 1 << ir;
    const s = this.s;
    if (high) {
      if (!(s.levels & m) || s.ltim) s.irr |= m; // edge: only on the rising edge
      s.levels |= m;
    } else {
      s.levels &= ~m;
      s.irr &= ~m; // a request withdrawn before its acknowledge is lost
    }
  }

  /** The input whose request would be delivered now, or -1 (the INT output is low). */
  resolve(): number {
    const s = this.s;
    const req = s.irr & ~s.imr;
    if (!req) return -1;
    const r = this.highest(req);
    let inService = s.smm ? s.isr & ~s.imr : s.isr;
    // Special fully nested mode: an in-service cascade input does not block a
    // further request from that slave (the slave sorts out its own priorities).
    if (s.sfnm && this.isCascade(r)) inService &= ~(1 << r);
    const cur = this.highest(inService);
    if (cur !== -1 && this.prio(cur) <= this.prio(r)) return -1;
    return r;
  }

  /** The INTA cycle on this chip: returns the acknowledged input, or -1 (spurious). */
  ack(): number {
    const s = this.s;
    const r = this.resolve();
    if (r === -1) return -1;
    const m = 1 << r;
    s.irr &= ~m;
    if (s.ltim) s.irr |= s.levels & m; // a level input still high keeps requesting
    if (!s.aeoi) s.isr |= m;
    else if (s.rotateAeoi) s.lowest = r;
    return r;
  }

  writeCommand(v: number): void {
    const s = this.s;
    if (v & 0x10) {
      // ICW1: starts initialization.
      s.ltim = (v & 0x08) !== 0;
      s.single = (v & 0x02) !== 0;
      s.ic4 = (v & 0x01) !== 0;
      s.imr = 0;
      s.isr = 0;
      s.irr = s.ltim ? s.levels : 0; // the edge-sense latches are reset
      s.lowest = 7;
      s.smm = false;
      s.readIsr = false;
      s.poll = false;
      s.rotateAeoi = false;
      if (!s.ic4) {
        s.upm = false;
        s.aeoi = false;
        s.ms = false;
        s.buf = false;
        s.sfnm = false;
      }
      s.initStep = 2;
    } else if (v & 0x08) {
      // OCW3.
      if (v & 0x04) s.poll = true;
      if (v & 0x02) s.readIsr = (v & 0x01) !== 0;
      if (v & 0x40) s.smm = (v & 0x20) !== 0;
    } else {
      // OCW2.
      const l = v & 7;
      const eoiTarget = () => this.highest(s.smm ? s.isr & ~s.imr : s.isr);
      switch ((v >> 5) & 7) {
        case 1: { // non-specific EOI
          const ir = eoiTarget();
          if (ir !== -1) s.isr &= ~(1 << ir);
          break;
        }
        case 3: // specific EOI
          s.isr &= ~(1 << l);
          break;
        case 5: { // rotate on non-specific EOI
          const ir = eoiTarget();
          if (ir !== -1) {
            s.isr &= ~(1 << ir);
            s.lowest = ir;
          }
          break;
        }
        case 4: // rotate in automatic EOI mode (set)
          s.rotateAeoi = true;
          break;
        case 0: // rotate in automatic EOI mode (clear)
          s.rotateAeoi = false;
          break;
        case 7: // rotate on specific EOI
          s.isr &= ~(1 << l);
          s.lowest = l;
          break;
        case 6: // set priority
          s.lowest = l;
          break;
        case 2: // no operation
          break;
      }
    }
  }

  writeData(v: number): void {
    const s = this.s;
    switch (s.initStep) {
      case 2:
        s.base = v & 0xf8;
        s.initStep = s.single ? (s.ic4 ? 4 : 0) : 3;
        break;
      case 3:
        s.icw3 = v;
        s.initStep = s.ic4 ? 4 : 0;
        break;
      case 4:
        s.upm = (v & 0x01) !== 0;
        s.aeoi = (v & 0x02) !== 0;
        s.ms = (v & 0x04) !== 0;
        s.buf = (v & 0x08) !== 0;
        s.sfnm = (v & 0x10) !== 0;
        s.initStep = 0;
        break;
      default:
        s.imr = v; // OCW1
    }
  }

  read(odd: boolean): number {
    const s = this.s;
    if (s.poll) {
      // The poll word: bit 7 = a request was pending, bits 2-0 = its level. It
      // acts as the acknowledge (the even/odd address does not matter).
      s.poll = false;
      const r = this.ack();
      return r === -1 ? 0 : 0x80 | r;
    }
    if (odd) return s.imr;
    return s.readIsr ? s.isr : s.irr;
  }
}

export interface Pic8259Options {
  /** Vector base of the master before the guest initializes it (default 0x08, the PC BIOS value). */
  masterBase?: number;
  /** Vector base of the slave before the guest initializes it (default 0x70). */
  slaveBase?: number;
  /** Master mask before the guest initializes it (default 0xFB: all masked except the cascade). */
  masterMask?: number;
  /** Slave mask before the guest initializes it (default 0xFF). */
  slaveMask?: number;
  /** Device name (default "pic"). */
  name?: string;
}

/** The master/slave 8259A pair of a PC. */
export class Pic8259 implements PortDevice, StatefulDevice {
  readonly name: string;
  readonly ports: readonly (readonly [number, number])[] = [[0x20, 0x22], [0xa0, 0xa2]];
  private master: Chip;
  private slave: Chip;
  private readonly lines: IrqLine[] = [];

  constructor(opts: Pic8259Options = {}) {
    this.name = opts.name ?? "pic";
    this.master = new Chip(chipAfterBios((opts.masterBase ?? 0x08) & 0xf8, 1 << CASCADE_IR, (opts.masterMask ?? 0xfb) & 0xff), true);
    this.slave = new Chip(chipAfterBios((opts.slaveBase ?? 0x70) & 0xf8, CASCADE_IR, (opts.slaveMask ?? 0xff) & 0xff), false);
    for (let irq = 0; irq < 16; irq++) {
      const chip = irq < 8 ? () => this.master : () => this.slave;
      const ir = irq & 7;
      this.lines.push({
        raise: () => {
          chip().setInput(ir, true);
          this.cascade();
        },
        lower: () => {
          chip().setInput(ir, false);
          this.cascade();
        },
      });
    }
  }

  /**
   * The interrupt line for IRQ irq (0-15; the same object every call). IRQ 2
   * is the cascade input, driven by the slave: asking for it throws (on an AT
   * the bus's IRQ 2 pin is wired to IRQ 9).
   */
  line(irq: number): IrqLine {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`${this.name}: no IRQ ${irq}`);
    if (irq === CASCADE_IR) throw new RangeError(`${this.name}: IRQ 2 is the cascade input (use IRQ 9)`);
    return this.lines[irq];
  }

  /** The vector the CPU would get if it acknowledged now, or null if the INTR line is low. */
  pendingVector(): number | null {
    const r = this.master.resolve();
    if (r === -1) return null;
    if (!this.master.isCascade(r)) return this.master.s.base | r;
    const sr = this.slave.resolve();
    return this.slave.s.base | (sr === -1 ? 7 : sr);
  }

  /**
   * The INTA cycle: returns the vector and moves the request into service
   * (IRR -> ISR, on both chips for a slave IRQ). With nothing to deliver it
   * returns the spurious vector (master base + 7) and changes nothing.
   */
  acknowledge(): number {
    const r = this.master.ack();
    if (r === -1) return this.master.s.base | 7;
    if (!this.master.isCascade(r)) return this.master.s.base | r;
    const sr = this.slave.ack();
    this.cascade();
    return this.slave.s.base | (sr === -1 ? 7 : sr);
  }

  read(port: number, size: AccessSize): number {
    return readBytes(this.ports, port, size, (p) => {
      const v = this.chipAt(p).read((p & 1) !== 0);
      this.cascade(); // a poll read acknowledges
      return v;
    });
  }

  write(port: number, size: AccessSize, value: number): void {
    writeBytes(this.ports, port, size, value, (p, b) => {
      const chip = this.chipAt(p);
      if (p & 1) chip.writeData(b);
      else chip.writeCommand(b);
      this.cascade();
    });
  }

  saveState(): unknown {
    return { master: { ...this.master.s }, slave: { ...this.slave.s } };
  }

  loadState(state: unknown): void {
    const r = asRecord(state, this.name);
    this.master.s = loadChip(r.master, `${this.name}.master`);
    this.slave.s = loadChip(r.slave, `${this.name}.slave`);
  }

  private chipAt(port: number): Chip {
    return port >= 0xa0 ? this.slave : this.master;
  }

  /** The slave's INT output drives the master's IR2 input. */
  private cascade(): void {
    this.master.setInput(CASCADE_IR, this.slave.resolve() !== -1);
  }
}

function loadChip(state: unknown, what: string): ChipState {
  const r = asRecord(state, what);
  const b8 = (k: string) => int(r, k, what, 0, 0xff);
  const f = (k: string) => bool(r, k, what);
  const initStep = int(r, "initStep", what, 0, 4);
  if (initStep === 1) throw new TypeError(`${what}: state.initStep is 1`);
  return {
    irr: b8("irr"), isr: b8("isr"), imr: b8("imr"), levels: b8("levels"), base: b8("base") & 0xf8, icw3: b8("icw3"),
    ltim: f("ltim"), single: f("single"), ic4: f("ic4"),
    upm: f("upm"), aeoi: f("aeoi"), ms: f("ms"), buf: f("buf"), sfnm: f("sfnm"),
    initStep, readIsr: f("readIsr"), poll: f("poll"), smm: f("smm"),
    lowest: int(r, "lowest", what, 0, 7), rotateAeoi: f("rotateAeoi"),
  };
}
