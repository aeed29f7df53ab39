// An NS16550A UART (a PC serial port: COM1 is base 0x3F8, IRQ 4). Registers
// as in the National Semiconductor PC16550D datasheet; see docs/devices.md.
//
// Transmission is instant: a byte written to THR goes straight to the output
// callback (or, in loopback mode, into the receiver), so THR and the
// transmitter are always empty again by the time the guest looks: LSR.THRE
// and LSR.TEMT always read 1, and every THR write re-raises the THR-empty
// interrupt (with ETBEI set the IRQ line drops and rises again, a new edge
// for the PIC).
//
// Reception: the host pushes bytes with receive(). They enter the 16-byte
// receive FIFO (FIFO mode) or the single receive buffer (16450 mode); a byte
// that finds no room is lost and sets LSR.OE (in 16450 mode the new byte
// replaces the unread one, as the datasheet describes). The host should pace
// its input with rxSpace() if it does not want overruns.
//
// The character timeout is timed: in FIFO mode, when the receive FIFO holds
// data and nothing has entered or left it for four character times (start
// bit, data bits, parity, stop bits at the programmed baud rate, 1.8432 MHz
// input clock / 16 / divisor), the timeout interrupt is raised. The UART is a
// TimedDevice: nextEventNs() is that deadline and advance() fires it.
//
// On a PC the UART's INTR reaches the interrupt controller through a buffer
// enabled by the OUT2 modem-control output: the IRQ line is high only while
// an enabled interrupt is pending, MCR.OUT2 is set and loopback is off (in
// loopback the chip forces its OUT2 pin inactive, which closes that buffer).

import type { AccessSize, GuestClock, IrqLine, PortDevice, StatefulDevice, TimedDevice } from "./device.js";
import { asRecord, bool, bytes, int, num, readBytes, writeBytes } from "./port-io.js";

export const UART_FIFO_SIZE = 16;

// IER bits
const ERBFI = 0x01, ETBEI = 0x02, ELSI = 0x04, EDSSI = 0x08;
// LSR bits
const DR = 0x01, OE = 0x02, THRE = 0x20, TEMT = 0x40;
// MCR bits
const DTR = 0x01, RTS = 0x02, OUT1 = 0x04, OUT2 = 0x08, LOOP = 0x10;
// MSR bits (inputs in the high nibble, their deltas in the low one)
const DCTS = 0x01, DDSR = 0x02, TERI = 0x04, DDCD = 0x08, CTS = 0x10, DSR = 0x20, RI = 0x40, DCD = 0x80;

/** IIR interrupt identification codes (bits 3-0), highest priority first. */
export const IIR_NONE = 0x01, IIR_RLS = 0x06, IIR_RDA = 0x04, IIR_TIMEOUT = 0x0c, IIR_THRE = 0x02, IIR_MSR = 0x00;

const TRIGGER_LEVELS = [1, 4, 8, 14];

/** The modem-status inputs as the far end drives them (outside loopback). */
export interface ModemInputs {
  cts: boolean;
  dsr: boolean;
  ri: boolean;
  dcd: boolean;
}

export interface Uart16550Options {
  /** Guest time, for the character timeout. */
  clock: GuestClock;
  /** The interrupt line (IRQ 4 for COM1). */
  irq: IrqLine;
  /** Receives each transmitted byte at the moment the guest writes THR (not called in loopback). */
  onTransmit: (byte: number) => void;
  /** First of the eight ports (default 0x3F8, COM1). */
  base?: number;
  /** Device name (default "uart0"). */
  name?: string;
  /** Modem inputs at power-on (default: CTS, DSR and DCD asserted, RI not: a connected cable). */
  modem?: ModemInputs;
}

interface UartState {
  dll: number;
  dlm: number;
  ier: number;
  lcr: number;
  mcr: number;
  scr: number;
  fifoEnabled: boolean;
  /** FCR bits 7-6: receive trigger level index. */
  trigger: number;
  /** Receive FIFO (or the single receive buffer in 16450 mode), oldest first. */
  rx: number[];
  /** The byte RBR shows when the receiver is empty (the last one read). */
  lastRbr: number;
  /** LSR.OE, cleared by reading LSR. */
  overrun: boolean;
  /** A THR-empty interrupt is pending (cleared by reading IIR while it is the one shown, or by writing THR). */
  thrPending: boolean;
  /** MSR delta bits 3-0. */
  msrDelta: number;
  /** MSR status bits 7-4 as last seen (to compute deltas). */
  msrLines: number;
  /** The modem inputs the far end drives. */
  ext: ModemInputs;
  /** Character timeout indicated. */
  timeout: boolean;
  /** Guest time (ns) of the last byte into or out of the receive FIFO. */
  rxActivityNs: number;
  /** The level driven onto the IRQ line. */
  irqHigh: boolean;
}

export class Uart16550 implements PortDevice, StatefulDevice, TimedDevice {
  readonly name: string;
  readonly ports: readonly (readonly [number, number])[];
  readonly base: number;
  private readonly clock: GuestClock;
  private readonly irq: IrqLine;
  private readonly onTransmit: (byte: number) => void;
  private s: UartState;

  constructor(opts: Uart16550Options) {
    this.base = opts.base ?? 0x3f8;
    this.name = opts.name ?? "uart0";
    this.ports = [[this.base, this.base + 8]];
    this.clock = opts.clock;
    this.irq = opts.irq;
    this.onTransmit = opts.onTransmit;
    const ext = opts.modem ? { ...opts.modem } : { cts: true, dsr: true, ri: false, dcd: true };
    // Master-reset values; the divisor latch is not reset by the chip, it starts at 12 (9600 baud).
    this.s = {
      dll: 12, dlm: 0, ier: 0, lcr: 0, mcr: 0, scr: 0, fifoEnabled: false, trigger: 0,
      rx: [], lastRbr: 0, overrun: false, thrPending: false,
      msrDelta: 0, msrLines: 0, ext, timeout: false, rxActivityNs: 0, irqHigh: false,
    };
    this.s.msrLines = this.modemLines();
  }

  // ---- host side ----

  /**
   * Bytes arriving on the serial line, at the current guest time. Each enters
   * the receive FIFO; one that finds it full is lost and sets LSR.OE. In
   * loopback mode the line input is disconnected and the bytes are dropped.
   */
  receive(data: Uint8Array | readonly number[]): void {
    if (this.s.mcr & LOOP) return;
    for (const b of data) this.rxByte(b & 0xff);
    this.update();
  }

  /** How many bytes receive() can take now without an overrun. */
  rxSpace(): number {
    return this.rxCapacity() - this.s.rx.length;
  }

  /** Changes the modem-status inputs (the far end's CTS, DSR, RI, DCD); sets the MSR delta bits. */
  setModemInputs(inputs: ModemInputs): void {
    this.s.ext = { ...inputs };
    this.refreshModem();
    this.update();
  }

  // ---- TimedDevice ----

  /** Guest time at which the character timeout will fire, or null. */
  nextEventNs(): number | null {
    const s = this.s;
    if (!s.fifoEnabled || s.rx.length === 0 || s.timeout) return null;
    return s.rxActivityNs + this.timeoutNs();
  }

  advance(nowNs: number): void {
    const due = this.nextEventNs();
    if (due !== null && nowNs >= due) {
      this.s.timeout = true;
      this.update();
    }
  }

  /** Four character times at the current line settings, in ns (rounded up). */
  timeoutNs(): number {
    const lcr = this.s.lcr;
    const dataBits = 5 + (lcr & 3);
    const parity = lcr & 0x08 ? 1 : 0;
    // Stop bits: 1, or 2 (1.5 with 5-bit characters) when LCR bit 2 is set.
    const stopHalves = lcr & 0x04 ? (dataBits === 5 ? 3 : 4) : 2;
    const halfBits = 2 * (1 + dataBits + parity) + stopHalves;
    // One bit lasts 16 * divisor / 1.8432 MHz = divisor * 1e9 / 115200 ns; four
    // characters are halfBits/2 * 4 bits = halfBits * divisor * 1e9 / 57600 ns.
    return Math.ceil((halfBits * this.divisor() * 156250) / 9);
  }

  /** The programmed divisor (a divisor latch of 0 counts as 65536). */
  divisor(): number {
    return (this.s.dlm << 8 | this.s.dll) || 0x10000;
  }

  // ---- ports ----

  read(port: number, size: AccessSize): number {
    return readBytes(this.ports, port, size, (p) => this.readReg(p - this.base));
  }

  write(port: number, size: AccessSize, value: number): void {
    writeBytes(this.ports, port, size, value, (p, b) => this.writeReg(p - this.base, b));
  }

  // ---- StatefulDevice ----

  saveState(): unknown {
    const s = this.s;
    return { ...s, rx: s.rx.slice(), ext: { ...s.ext } };
  }

  /** Restores every register; does not drive the IRQ line (the PIC's snapshot holds its input levels). */
  loadState(state: unknown): void {
    const w = this.name;
    const r = asRecord(state, w);
    const b8 = (k: string) => int(r, k, w, 0, 0xff);
    const e = asRecord(r.ext, `${w}.ext`);
    const f = (k: string) => bool(e, k, `${w}.ext`);
    this.s = {
      dll: b8("dll"), dlm: b8("dlm"), ier: b8("ier"), lcr: b8("lcr"), mcr: b8("mcr"), scr: b8("scr"),
      fifoEnabled: bool(r, "fifoEnabled", w), trigger: int(r, "trigger", w, 0, 3),
      rx: bytes(r, "rx", w, UART_FIFO_SIZE), lastRbr: b8("lastRbr"), overrun: bool(r, "overrun", w),
      thrPending: bool(r, "thrPending", w), msrDelta: int(r, "msrDelta", w, 0, 0x0f), msrLines: b8("msrLines"),
      ext: { cts: f("cts"), dsr: f("dsr"), ri: f("ri"), dcd: f("dcd") },
      timeout: bool(r, "timeout", w), rxActivityNs: num(r, "rxActivityNs", w), irqHigh: bool(r, "irqHigh", w),
    };
  }

  // ---- registers ----

  private readReg(off: number): number {
    const s = this.s;
    const dlab = (s.lcr & 0x80) !== 0;
    switch (off) {
      case 0: {
        if (dlab) return s.dll;
        if (s.rx.length > 0) {
          s.lastRbr = s.rx.shift()!;
          s.rxActivityNs = this.clock.nowNs();
        }
        s.timeout = false;
        this.update();
        return s.lastRbr;
      }
      case 1:
        return dlab ? s.dlm : s.ier;
      case 2: {
        // A character timeout already due shows even if advance() has not been called yet.
        const due = this.nextEventNs();
        if (due !== null) this.advance(this.clock.nowNs());
        const id = this.interruptId();
        // Reading IIR while it shows the THR-empty interrupt clears that interrupt.
        if (id === IIR_THRE) {
          s.thrPending = false;
          this.update();
        }
        return id | (s.fifoEnabled ? 0xc0 : 0);
      }
      case 3:
        return s.lcr;
      case 4:
        return s.mcr;
      case 5: {
        const v = this.lsr();
        s.overrun = false; // reading LSR clears the error bits
        this.update();
        return v;
      }
      case 6: {
        const v = s.msrLines | s.msrDelta;
        s.msrDelta = 0; // reading MSR clears the delta bits
        this.update();
        return v;
      }
      default:
        return s.scr;
    }
  }

  private writeReg(off: number, v: number): void {
    const s = this.s;
    const dlab = (s.lcr & 0x80) !== 0;
    switch (off) {
      case 0:
        if (dlab) {
          s.dll = v;
          return;
        }
        this.transmit(v);
        return;
      case 1: {
        if (dlab) {
          s.dlm = v;
          return;
        }
        const old = s.ier;
        s.ier = v & 0x0f;
        // Enabling ETBEI while THR is empty (always, here) signals THR empty.
        if (!(old & ETBEI) && s.ier & ETBEI) s.thrPending = true;
        this.update();
        return;
      }
      case 2:
        this.writeFcr(v);
        return;
      case 3:
        s.lcr = v;
        return;
      case 4: {
        s.mcr = v & 0x1f;
        this.refreshModem();
        this.update();
        return;
      }
      case 5:
        return; // LSR: factory test only
      case 6:
        return; // MSR is read-only
      default:
        s.scr = v;
    }
  }

  private writeFcr(v: number): void {
    const s = this.s;
    const enable = (v & 0x01) !== 0;
    if (enable !== s.fifoEnabled) {
      // Switching between FIFO and 16450 mode empties the FIFOs.
      s.fifoEnabled = enable;
      this.clearRx();
    }
    // The other bits are only written when FCR0 is 1.
    if (enable) {
      if (v & 0x02) this.clearRx(); // receive FIFO reset (the transmit FIFO is always empty)
      s.trigger = v >> 6;
    }
    this.update();
  }

  private clearRx(): void {
    this.s.rx = [];
    this.s.timeout = false;
  }

  private transmit(b: number): void {
    const s = this.s;
    // Writing THR clears the THR-empty interrupt; the byte leaves at once, so
    // THR is empty again and the interrupt is pending again.
    s.thrPending = false;
    this.update();
    if (s.mcr & LOOP) this.rxByte(b);
    else this.onTransmit(b);
    s.thrPending = true;
    this.update();
  }

  private rxCapacity(): number {
    return this.s.fifoEnabled ? UART_FIFO_SIZE : 1;
  }

  private rxByte(b: number): void {
    const s = this.s;
    if (s.rx.length >= this.rxCapacity()) {
      s.overrun = true;
      // 16450 mode: the new character overwrites the unread one. FIFO mode: it is lost.
      if (!s.fifoEnabled) s.rx[0] = b;
    } else {
      s.rx.push(b);
    }
    s.rxActivityNs = this.clock.nowNs();
    s.timeout = false;
  }

  private lsr(): number {
    const s = this.s;
    return (s.rx.length > 0 ? DR : 0) | (s.overrun ? OE : 0) | THRE | TEMT;
  }

  /** MSR bits 7-4: the far end's inputs, or in loopback the MCR outputs wired back. */
  private modemLines(): number {
    const s = this.s;
    if (s.mcr & LOOP) {
      return (s.mcr & RTS ? CTS : 0) | (s.mcr & DTR ? DSR : 0) | (s.mcr & OUT1 ? RI : 0) | (s.mcr & OUT2 ? DCD : 0);
    }
    const e = s.ext;
    return (e.cts ? CTS : 0) | (e.dsr ? DSR : 0) | (e.ri ? RI : 0) | (e.dcd ? DCD : 0);
  }

  private refreshModem(): void {
    const s = this.s;
    const now = this.modemLines();
    const changed = now ^ s.msrLines;
    if (changed & CTS) s.msrDelta |= DCTS;
    if (changed & DSR) s.msrDelta |= DDSR;
    if (changed & DCD) s.msrDelta |= DDCD;
    if (s.msrLines & RI && !(now & RI)) s.msrDelta |= TERI; // trailing edge of RI
    s.msrLines = now;
  }

  /** Whether the receive-data interrupt condition holds. */
  private rxDataReady(): boolean {
    const s = this.s;
    if (s.fifoEnabled) return s.rx.length >= TRIGGER_LEVELS[s.trigger];
    return s.rx.length > 0;
  }

  /** IIR bits 3-0: the highest-priority enabled pending interrupt. */
  private interruptId(): number {
    const s = this.s;
    if (s.ier & ELSI && s.overrun) return IIR_RLS;
    if (s.ier & ERBFI) {
      if (this.rxDataReady()) return IIR_RDA;
      if (s.fifoEnabled && s.timeout && s.rx.length > 0) return IIR_TIMEOUT;
    }
    if (s.ier & ETBEI && s.thrPending) return IIR_THRE;
    if (s.ier & EDSSI && s.msrDelta) return IIR_MSR;
    return IIR_NONE;
  }

  /** Drives the IRQ line: an interrupt pending, gated by OUT2 (and off in loopback). */
  private update(): void {
    const s = this.s;
    const high = this.interruptId() !== IIR_NONE && (s.mcr & (OUT2 | LOOP)) === OUT2;
    if (high === s.irqHigh) return;
    s.irqHigh = high;
    if (high) this.irq.raise();
    else this.irq.lower();
  }
}
