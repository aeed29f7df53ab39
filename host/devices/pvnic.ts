// pvnic: the paravirtual network card (docs/nic.md). Frames of 1..1514 bytes
// move through descriptor rings in guest memory; the host delivers received
// frames with receive() and gets transmitted ones through onTransmit(). The
// device has no clock and no queue: every effect happens inside a port access,
// receive() or setLink(), so the same calls give the same guest-visible
// behaviour (and the same transmitted frames) on a replay.

import type { AccessSize, GuestMemory, IrqLine, PortDevice, StatefulDevice } from "./device.js";

export const PVNIC_BASE = 0xc000;
export const PVNIC_PORTS = 0x40;
export const PVNIC_IRQ = 11;
export const PVNIC_MTU = 1514;
export const PVNIC_MAX_RING = 1024;
export const PVNIC_ID = 0x50564e01;
export const PVNIC_DESC_SIZE = 16;

/** Register offsets from the base port. */
export const REG = {
  ID: 0x00,
  CTRL: 0x04,
  STATUS: 0x08,
  ISR: 0x0c,
  IMR: 0x10,
  MAC_LO: 0x14,
  MAC_HI: 0x18,
  RX_BASE: 0x1c,
  RX_SIZE: 0x20,
  RX_NEXT: 0x24,
  TX_BASE: 0x28,
  TX_SIZE: 0x2c,
  TX_NEXT: 0x30,
  TX_DOORBELL: 0x34,
  RX_DROPS: 0x38,
  ERR_CAUSE: 0x3c,
} as const;

export const CTRL_RX_EN = 1 << 0;
export const CTRL_TX_EN = 1 << 1;
export const CTRL_RESET = 1 << 31;
export const STATUS_LINK_UP = 1 << 0;

export const INT_RX = 1 << 0;
export const INT_TX = 1 << 1;
export const INT_RX_NOBUF = 1 << 2;
export const INT_LINK = 1 << 3;
export const INT_ERROR = 1 << 4;
const INT_ALL = INT_RX | INT_TX | INT_RX_NOBUF | INT_LINK | INT_ERROR;

export const DESC_OWN = 1 << 0;
export const DESC_OK = 0;
export const DESC_ERR_LEN = 1;
export const DESC_ERR_DMA = 2;
export const DESC_ERR_LINK = 3;

export const ERR_CAUSE_RX_RING = 1;
export const ERR_CAUSE_TX_RING = 2;

export interface PvnicStats {
  rxFrames: number;
  rxBytes: number;
  rxDroppedNoBuffer: number;
  rxDroppedDisabled: number;
  rxDroppedLinkDown: number;
  rxErrors: number;
  txFrames: number;
  txBytes: number;
  txErrors: number;
  interrupts: number;
}

export interface PvnicOptions {
  memory: GuestMemory;
  irq: IrqLine;
  /** Six bytes, or "52:54:00:12:34:56". Default 52:54:00:4c:53:01. */
  mac?: Uint8Array | readonly number[] | string;
  /** First port of the 64-port block (default 0xC000). */
  base?: number;
  name?: string;
  /** Link state at power-on (default up). */
  linkUp?: boolean;
}

interface Registers {
  ctrl: number;
  isr: number;
  imr: number;
  rxBase: number;
  rxSize: number;
  rxNext: number;
  txBase: number;
  txSize: number;
  txNext: number;
  rxDrops: number;
  errCause: number;
}

export interface PvnicState extends Registers {
  mac: number[];
  linkUp: boolean;
  lineHigh: boolean;
  stats: PvnicStats;
}

const zeroStats = (): PvnicStats => ({
  rxFrames: 0, rxBytes: 0, rxDroppedNoBuffer: 0, rxDroppedDisabled: 0, rxDroppedLinkDown: 0, rxErrors: 0,
  txFrames: 0, txBytes: 0, txErrors: 0, interrupts: 0,
});

const zeroRegs = (): Registers => ({
  ctrl: 0, isr: 0, imr: 0, rxBase: 0, rxSize: 0, rxNext: 0, txBase: 0, txSize: 0, txNext: 0, rxDrops: 0, errCause: 0,
});

/** Parses "52:54:00:12:34:56" (or "-" separated) into six bytes. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-f]{2}$/i.test(p))) {
    throw new RangeError(`bad MAC address '${text}' (expected six hex bytes like 52:54:00:12:34:56)`);
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

export function formatMac(mac: ArrayLike<number>): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** Thrown inside the device when guest memory refuses an access; never escapes. */
class DmaFault {}

interface Desc {
  addr: number;
  len: number;
  flags: number;
}

export class Pvnic implements PortDevice, StatefulDevice {
  readonly name: string;
  readonly ports: readonly (readonly [number, number])[];
  readonly base: number;

  private readonly memory: GuestMemory;
  private readonly irq: IrqLine;
  private mac: Uint8Array;
  private linkUp: boolean;
  private r: Registers = zeroRegs();
  private lineHigh = false;
  private counters: PvnicStats = zeroStats();
  private readonly txListeners: ((frame: Uint8Array) => void)[] = [];

  constructor(opts: PvnicOptions) {
    this.memory = opts.memory;
    this.irq = opts.irq;
    this.base = opts.base ?? PVNIC_BASE;
    if (!Number.isInteger(this.base) || this.base < 0 || this.base + PVNIC_PORTS > 0x10000 || this.base % 4 !== 0) {
      throw new RangeError(`pvnic: bad base port ${this.base}`);
    }
    this.name = opts.name ?? "pvnic0";
    this.ports = [[this.base, this.base + PVNIC_PORTS]];
    const mac = opts.mac === undefined ? [0x52, 0x54, 0x00, 0x4c, 0x53, 0x01] : typeof opts.mac === "string" ? parseMac(opts.mac) : opts.mac;
    if (mac.length !== 6 || !Array.from(mac).every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
      throw new RangeError("pvnic: the MAC address must be six bytes");
    }
    this.mac = Uint8Array.from(mac);
    this.linkUp = opts.linkUp ?? true;
  }

  // ---- host API

  /** Registers a listener for each frame the guest transmits (called during the doorbell OUT, in ring order). */
  onTransmit(cb: (frame: Uint8Array) => void): () => void {
    this.txListeners.push(cb);
    return () => {
      const k = this.txListeners.indexOf(cb);
      if (k >= 0) this.txListeners.splice(k, 1);
    };
  }

  /**
   * Delivers one received frame into the next RX descriptor. Returns true if
   * the guest got it, false if it was dropped (ring full, receive disabled,
   * link down, buffer too small or outside RAM); every drop is counted.
   */
  receive(frame: Uint8Array): boolean {
    if (frame.length < 1 || frame.length > PVNIC_MTU) {
      throw new RangeError(`pvnic: a frame must be 1 to ${PVNIC_MTU} bytes, got ${frame.length}`);
    }
    const r = this.r;
    if (!this.linkUp) return this.drop("rxDroppedLinkDown");
    if (!(r.ctrl & CTRL_RX_EN) || r.rxSize === 0) return this.drop("rxDroppedDisabled");
    const at = r.rxBase + r.rxNext * PVNIC_DESC_SIZE;
    let desc: Desc;
    try {
      desc = this.readDesc(at);
    } catch (e) {
      if (!(e instanceof DmaFault)) throw e;
      this.ringError(CTRL_RX_EN, ERR_CAUSE_RX_RING);
      return this.drop("rxDroppedDisabled");
    }
    if (!(desc.flags & DESC_OWN)) {
      r.isr |= INT_RX_NOBUF;
      this.updateLine();
      return this.drop("rxDroppedNoBuffer");
    }
    let status = DESC_OK;
    let outLen = frame.length;
    if (desc.len < frame.length) status = DESC_ERR_LEN;
    else {
      try {
        this.dmaWrite(desc.addr, frame);
      } catch (e) {
        if (!(e instanceof DmaFault)) throw e;
        status = DESC_ERR_DMA;
        outLen = 0;
      }
    }
    try {
      this.completeDesc(at, desc.flags, outLen, status);
    } catch (e) {
      if (!(e instanceof DmaFault)) throw e;
      this.ringError(CTRL_RX_EN, ERR_CAUSE_RX_RING);
      return this.drop("rxDroppedDisabled");
    }
    r.rxNext = (r.rxNext + 1) % r.rxSize;
    r.isr |= INT_RX;
    this.updateLine();
    if (status !== DESC_OK) {
      r.rxDrops = (r.rxDrops + 1) >>> 0;
      this.counters.rxErrors++;
      return false;
    }
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    return true;
  }

  /** Changes the link state (STATUS.LINK_UP); a change raises ISR.LINK. */
  setLink(up: boolean): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    this.r.isr |= INT_LINK;
    this.updateLine();
  }

  get link(): boolean {
    return this.linkUp;
  }

  get macAddress(): Uint8Array {
    return this.mac.slice();
  }

  stats(): PvnicStats {
    return { ...this.counters };
  }

  /** Whether the descriptor the next frame would go to is owned by the device (receive() would not drop for lack of a buffer). */
  rxBufferAvailable(): boolean {
    const r = this.r;
    if (!this.linkUp || !(r.ctrl & CTRL_RX_EN) || r.rxSize === 0) return false;
    try {
      return (this.readDesc(r.rxBase + r.rxNext * PVNIC_DESC_SIZE).flags & DESC_OWN) !== 0;
    } catch (e) {
      if (e instanceof DmaFault) return false;
      throw e;
    }
  }

  // ---- PortDevice

  read(port: number, size: AccessSize): number {
    let v = 0;
    for (let k = size - 1; k >= 0; k--) v = (v << 8) | this.readByte(port - this.base + k);
    return v >>> 0;
  }

  write(port: number, size: AccessSize, value: number): void {
    const off = port - this.base;
    if (size !== 4 || off % 4 !== 0) return;
    value >>>= 0;
    const r = this.r;
    switch (off) {
      case REG.CTRL:
        if (value & CTRL_RESET) this.reset();
        else r.ctrl = value & (CTRL_RX_EN | CTRL_TX_EN);
        break;
      case REG.ISR:
        r.isr &= ~value;
        this.updateLine(true);
        break;
      case REG.IMR:
        r.imr = value & INT_ALL;
        this.updateLine(true);
        break;
      case REG.RX_BASE:
        r.rxBase = (value & ~0xf) >>> 0;
        r.rxNext = 0;
        break;
      case REG.RX_SIZE:
        if (value <= PVNIC_MAX_RING) {
          r.rxSize = value;
          r.rxNext = 0;
        }
        break;
      case REG.TX_BASE:
        r.txBase = (value & ~0xf) >>> 0;
        r.txNext = 0;
        break;
      case REG.TX_SIZE:
        if (value <= PVNIC_MAX_RING) {
          r.txSize = value;
          r.txNext = 0;
        }
        break;
      case REG.TX_DOORBELL:
        this.transmit();
        break;
      default:
        break; // read-only or unassigned
    }
  }

  // ---- StatefulDevice

  saveState(): PvnicState {
    return { ...this.r, mac: Array.from(this.mac), linkUp: this.linkUp, lineHigh: this.lineHigh, stats: { ...this.counters } };
  }

  loadState(state: unknown): void {
    const s = state as PvnicState;
    const regs = zeroRegs();
    for (const k of Object.keys(regs) as (keyof Registers)[]) {
      const v = s?.[k];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`pvnic state: bad ${k}`);
      regs[k] = v;
    }
    if (regs.rxSize > PVNIC_MAX_RING || regs.txSize > PVNIC_MAX_RING) throw new TypeError("pvnic state: ring size above 1024");
    if (!Array.isArray(s.mac) || s.mac.length !== 6) throw new TypeError("pvnic state: bad mac");
    if (typeof s.linkUp !== "boolean" || typeof s.lineHigh !== "boolean") throw new TypeError("pvnic state: bad linkUp/lineHigh");
    const stats = zeroStats();
    for (const k of Object.keys(stats) as (keyof PvnicStats)[]) {
      const v = s.stats?.[k];
      if (typeof v !== "number") throw new TypeError(`pvnic state: bad stats.${k}`);
      stats[k] = v;
    }
    this.r = regs;
    this.mac = Uint8Array.from(s.mac);
    this.linkUp = s.linkUp;
    this.lineHigh = s.lineHigh;
    this.counters = stats;
  }

  // ---- internals

  private readByte(off: number): number {
    if (off < 0 || off >= PVNIC_PORTS) return 0xff;
    return (this.register(off & ~3) >>> ((off & 3) * 8)) & 0xff;
  }

  private register(off: number): number {
    const r = this.r;
    switch (off) {
      case REG.ID: return PVNIC_ID;
      case REG.CTRL: return r.ctrl;
      case REG.STATUS: return this.linkUp ? STATUS_LINK_UP : 0;
      case REG.ISR: return r.isr;
      case REG.IMR: return r.imr;
      case REG.MAC_LO: return (this.mac[0] | (this.mac[1] << 8) | (this.mac[2] << 16) | (this.mac[3] << 24)) >>> 0;
      case REG.MAC_HI: return this.mac[4] | (this.mac[5] << 8);
      case REG.RX_BASE: return r.rxBase;
      case REG.RX_SIZE: return r.rxSize;
      case REG.RX_NEXT: return r.rxNext;
      case REG.TX_BASE: return r.txBase;
      case REG.TX_SIZE: return r.txSize;
      case REG.TX_NEXT: return r.txNext;
      case REG.RX_DROPS: return r.rxDrops;
      case REG.ERR_CAUSE: return r.errCause;
      default: return 0; // TX_DOORBELL
    }
  }

  private reset(): void {
    this.r = zeroRegs();
    this.updateLine();
  }

  private drop(reason: "rxDroppedNoBuffer" | "rxDroppedDisabled" | "rxDroppedLinkDown"): false {
    this.counters[reason]++;
    this.r.rxDrops = (this.r.rxDrops + 1) >>> 0;
    return false;
  }

  private ringError(enableBit: number, cause: number): void {
    this.r.ctrl &= ~enableBit;
    this.r.errCause = cause;
    this.r.isr |= INT_ERROR;
    this.updateLine();
  }

  /** Drives the line to (ISR & IMR) != 0; `resignal`: a still-pending cause after an ISR/IMR write makes a fresh edge. */
  private updateLine(resignal = false): void {
    const want = (this.r.isr & this.r.imr) !== 0;
    if (want && this.lineHigh && resignal) {
      this.irq.lower();
      this.lineHigh = false;
    }
    if (want && !this.lineHigh) {
      this.irq.raise();
      this.lineHigh = true;
      this.counters.interrupts++;
    } else if (!want && this.lineHigh) {
      this.irq.lower();
      this.lineHigh = false;
    }
  }

  private transmit(): void {
    const r = this.r;
    if (!(r.ctrl & CTRL_TX_EN) || r.txSize === 0) return;
    const sent: Uint8Array[] = [];
    let completed = 0;
    for (let n = 0; n < r.txSize; n++) {
      const at = r.txBase + r.txNext * PVNIC_DESC_SIZE;
      let desc: Desc;
      try {
        desc = this.readDesc(at);
      } catch (e) {
        if (!(e instanceof DmaFault)) throw e;
        this.ringError(CTRL_TX_EN, ERR_CAUSE_TX_RING);
        break;
      }
      if (!(desc.flags & DESC_OWN)) break;
      let status = DESC_OK;
      let frame: Uint8Array | undefined;
      if (desc.len < 1 || desc.len > PVNIC_MTU) status = DESC_ERR_LEN;
      else {
        try {
          frame = this.dmaRead(desc.addr, desc.len);
        } catch (e) {
          if (!(e instanceof DmaFault)) throw e;
          status = DESC_ERR_DMA;
        }
        if (frame && !this.linkUp) {
          status = DESC_ERR_LINK;
          frame = undefined;
        }
      }
      try {
        this.completeDesc(at, desc.flags, frame ? frame.length : 0, status);
      } catch (e) {
        if (!(e instanceof DmaFault)) throw e;
        this.ringError(CTRL_TX_EN, ERR_CAUSE_TX_RING);
        break;
      }
      r.txNext = (r.txNext + 1) % r.txSize;
      completed++;
      if (frame) {
        sent.push(frame);
        this.counters.txFrames++;
        this.counters.txBytes += frame.length;
      } else this.counters.txErrors++;
    }
    if (completed > 0) {
      r.isr |= INT_TX;
      this.updateLine();
    }
    // Listeners run after the ring walk, with the device in a consistent state.
    for (const frame of sent) for (const cb of [...this.txListeners]) cb(frame.slice());
  }

  private readDesc(at: number): Desc {
    const b = this.dmaRead(at, 8);
    return { addr: (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0, len: b[4] | (b[5] << 8), flags: b[6] | (b[7] << 8) };
  }

  /** Writes flags (OWN cleared), out_len and status: bytes 6..11 of the descriptor. */
  private completeDesc(at: number, flags: number, outLen: number, status: number): void {
    const f = flags & ~DESC_OWN;
    this.dmaWrite(at + 6, Uint8Array.of(f & 0xff, f >> 8, outLen & 0xff, outLen >> 8, status & 0xff, status >> 8));
  }

  private dmaRead(addr: number, len: number): Uint8Array {
    if (addr + len > 0x100000000) throw new DmaFault();
    let b: Uint8Array;
    try {
      b = this.memory.read(addr, len);
    } catch {
      throw new DmaFault();
    }
    if (b.length !== len) throw new DmaFault();
    return b;
  }

  private dmaWrite(addr: number, bytes: Uint8Array): void {
    if (addr + bytes.length > 0x100000000) throw new DmaFault();
    try {
      this.memory.write(addr, bytes);
    } catch {
      throw new DmaFault();
    }
  }
}
