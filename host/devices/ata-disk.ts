// An ATA hard disk on the primary IDE channel, programmed I/O only: the
// command block at ports 0x1F0-0x1F7, the control block (alternate status /
// device control) at 0x3F6, interrupt request line 14. One disk, the master;
// the slave position is empty. See docs/disk.md.
//
// Timing model. Nothing happens behind the machine's back: a command that
// needs the medium (IDENTIFY, each sector of READ, each sector of WRITE once
// the host has filled the buffer, CACHE FLUSH) and the end of a software reset
// set BSY and schedule a completion at clock.nowNs() + a fixed delay. The
// machine sees that time in nextEventNs() and performs the completion by
// calling advance(now) (or completeNow()): only then is the store read or
// written, DRQ set or BSY cleared, and INTRQ asserted. Everything else
// (register accesses, aborts, the first DRQ of a WRITE) is a direct function
// of the port accesses. Given the same accesses and clock values the device
// does the same things, which is what record/replay needs.

import type { AccessSize, GuestClock, IrqLine, PortDevice, StatefulDevice, TimedDevice } from "./device.js";
import { SECTOR_SIZE, type BlockStore } from "./block-store.js";

// ---- ports and register bits

export const ATA_PRIMARY_BASE = 0x1f0;
export const ATA_PRIMARY_CONTROL = 0x3f6;
export const ATA_PRIMARY_IRQ = 14;

/** Command block register offsets from the base port. */
export const REG_DATA = 0;
export const REG_ERROR = 1; // read; write: features
export const REG_COUNT = 2;
export const REG_LBA_LOW = 3;
export const REG_LBA_MID = 4;
export const REG_LBA_HIGH = 5;
export const REG_DEVICE = 6;
export const REG_STATUS = 7; // read; write: command

/** Status register bits. */
export const ST_BSY = 0x80;
export const ST_DRDY = 0x40;
export const ST_DF = 0x20;
export const ST_DSC = 0x10;
export const ST_DRQ = 0x08;
export const ST_ERR = 0x01;

/** Error register bits. */
export const ERR_ABRT = 0x04;

/** Device/head register bits. */
export const DEV_LBA = 0x40;
export const DEV_SLAVE = 0x10;
/** Bits 7 and 5 of the device register read as one (obsolete, formerly required). */
const DEV_FIXED = 0xa0;

/** Device control register bits. */
export const CTL_NIEN = 0x02;
export const CTL_SRST = 0x04;

/** Commands. */
export const CMD_READ_SECTORS = 0x20;
export const CMD_WRITE_SECTORS = 0x30;
export const CMD_CACHE_FLUSH = 0xe7;
export const CMD_IDENTIFY = 0xec;

/** The largest sector count a 28-bit LBA reaches. */
export const LBA28_MAX_SECTORS = 0x0fffffff;

/** Status values the device shows (those of QEMU's IDE disk, the reference). */
const IDLE = ST_DRDY | ST_DSC; // 0x50
const DATA = ST_DRDY | ST_DSC | ST_DRQ; // 0x58
const BUSY = ST_BSY | ST_DRDY | ST_DSC; // 0xD0: the other bits mean nothing while BSY
const ABORTED = ST_DRDY | ST_ERR; // 0x41

/** Delays (guest nanoseconds) from the start of an operation to its completion. */
export interface AtaTiming {
  /** IDENTIFY DEVICE: command to the identify data being ready. */
  identifyNs: number;
  /** Each sector of a READ (command or previous sector drained → data ready) and of a WRITE (buffer full → committed). */
  sectorNs: number;
  /** CACHE FLUSH: command to done. */
  flushNs: number;
  /** Software reset: SRST cleared to the device being ready. */
  resetNs: number;
}

export const DEFAULT_ATA_TIMING: Readonly<AtaTiming> = Object.freeze({
  identifyNs: 10_000,
  sectorNs: 10_000,
  flushNs: 50_000,
  resetNs: 10_000,
});

export interface AtaDiskOptions {
  /** The medium. Sectors past 2^28 - 1 are not reachable with 28-bit LBAs. */
  store: BlockStore;
  /** Guest time, read when an operation is scheduled. */
  clock: GuestClock;
  /** Interrupt request line (IRQ 14 on a PC). */
  irq: IrqLine;
  /** Device name for messages and snapshots (default "ata0"). */
  name?: string;
  /** IDENTIFY model number, printable ASCII, at most 40 characters (default "LOCKSTEP VIRTUAL DISK"). */
  model?: string;
  /** IDENTIFY serial number, at most 20 characters (default "LOCKSTEP0001"). */
  serial?: string;
  /** IDENTIFY firmware revision, at most 8 characters (default "1.0"). */
  firmware?: string;
  /** Operation delays; missing fields take DEFAULT_ATA_TIMING's. */
  timing?: Partial<AtaTiming>;
}

/** What the device is doing. */
export type AtaPhase =
  /** Ready for a command. */
  | "idle"
  /** BSY: an operation is scheduled (see pending()). */
  | "busy"
  /** DRQ, data-in: the host reads the sector buffer through the data port. */
  | "data-in"
  /** DRQ, data-out: the host fills the sector buffer through the data port. */
  | "data-out"
  /** SRST is set (and, once it is cleared, the reset is scheduled). */
  | "reset";

export type AtaOperation = "identify" | "read" | "write" | "flush" | "reset";

/** The scheduled operation: what completes, when, and the sector it concerns (read/write). */
export interface AtaPending {
  op: AtaOperation;
  dueNs: number;
  lba?: number;
}

/** The saved protocol state (saveState()/loadState()). */
export interface AtaDiskState {
  version: 1;
  features: number;
  count: number;
  lbaLow: number;
  lbaMid: number;
  lbaHigh: number;
  device: number;
  error: number;
  status: number;
  control: number;
  phase: AtaPhase;
  /** The command being executed (0 when idle). */
  command: number;
  /** Next sector to load or commit, and sectors left in the command (including the one in the buffer). */
  xferLba: number;
  remaining: number;
  pending: AtaPending | null;
  /** Byte position in the sector buffer during a DRQ block. */
  bufferPos: number;
  /** The sector buffer, 512 bytes as lowercase hex. */
  buffer: string;
  /** INTRQ pending (asserted by the device, not yet cleared by a status read or a command). */
  intrq: boolean;
  /** The level last driven on the IrqLine. */
  line: boolean;
}

export class AtaDisk implements PortDevice, TimedDevice, StatefulDevice {
  readonly name: string;
  readonly ports: readonly (readonly [number, number])[] = [
    [ATA_PRIMARY_BASE, ATA_PRIMARY_BASE + 8],
    [ATA_PRIMARY_CONTROL, ATA_PRIMARY_CONTROL + 1],
  ];
  /** Sectors addressable with 28-bit LBAs: min(store.sectors, 2^28 - 1). */
  readonly sectors: number;
  readonly timing: Readonly<AtaTiming>;

  private readonly store: BlockStore;
  private readonly clock: GuestClock;
  private readonly irq: IrqLine;
  private readonly identifyData: Uint8Array;

  // Task file.
  private features = 0;
  private count = 0;
  private lbaLow = 0;
  private lbaMid = 0;
  private lbaHigh = 0;
  private device = DEV_FIXED;
  private error = 0;
  private status = IDLE;
  private control = 0;

  private phase: AtaPhase = "idle";
  private command = 0;
  private xferLba = 0;
  private remaining = 0;
  private pendingOp: AtaPending | null = null;
  private buffer: Uint8Array = new Uint8Array(SECTOR_SIZE);
  private bufferPos = 0;
  private intrq = false;
  private line = false;

  constructor(opts: AtaDiskOptions) {
    this.store = opts.store;
    this.clock = opts.clock;
    this.irq = opts.irq;
    this.name = opts.name ?? "ata0";
    this.sectors = Math.min(opts.store.sectors, LBA28_MAX_SECTORS);
    const timing = { ...DEFAULT_ATA_TIMING, ...opts.timing };
    for (const [k, v] of Object.entries(timing)) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${this.name}: timing.${k} must be a non-negative integer (ns), got ${v}`);
    }
    this.timing = Object.freeze(timing);
    this.identifyData = buildIdentify({
      sectors: this.sectors,
      model: checkText("model", opts.model ?? "LOCKSTEP VIRTUAL DISK", 40),
      serial: checkText("serial", opts.serial ?? "LOCKSTEP0001", 20),
      firmware: checkText("firmware", opts.firmware ?? "1.0", 8),
    });
    this.signature(); // power-on: as after a completed reset
  }

  /** The 512-byte IDENTIFY DEVICE block this disk returns (a copy). */
  identify(): Uint8Array {
    return this.identifyData.slice();
  }

  /** The current phase of the PIO protocol. */
  currentPhase(): AtaPhase {
    return this.phase;
  }

  /** The scheduled operation, if any (a copy). */
  pending(): AtaPending | null {
    return this.pendingOp ? { ...this.pendingOp } : null;
  }

  // ---- PortDevice

  read(port: number, size: AccessSize): number {
    if (port === ATA_PRIMARY_BASE + REG_DATA) {
      if (size === 1) return this.readDataWord() & 0xff; // a byte read still moves a whole word (as QEMU)
      if (size === 2) return this.readDataWord();
      const lo = this.readDataWord();
      return (lo | (this.readDataWord() << 16)) >>> 0;
    }
    // A wider access to an 8-bit register is that many byte accesses, lowest port first.
    let v = 0;
    for (let k = 0; k < size; k++) v |= this.readByte(port + k) << (8 * k);
    return v >>> 0;
  }

  write(port: number, size: AccessSize, value: number): void {
    if (port === ATA_PRIMARY_BASE + REG_DATA) {
      // 8-bit writes to the 16-bit data register are ignored (as QEMU).
      if (size >= 2) this.writeDataWord(value & 0xffff);
      if (size === 4) this.writeDataWord((value >>> 16) & 0xffff);
      return;
    }
    for (let k = 0; k < size; k++) this.writeByte(port + k, (value >>> (8 * k)) & 0xff);
  }

  // ---- TimedDevice

  nextEventNs(): number | null {
    return this.pendingOp ? this.pendingOp.dueNs : null;
  }

  advance(nowNs: number): void {
    if (this.pendingOp && this.pendingOp.dueNs <= nowNs) this.completeNow();
  }

  /**
   * Completes the scheduled operation now, whatever its due time (for a
   * replaying machine that completes it at a logged moment). Returns what
   * completed, or null if nothing was scheduled.
   */
  completeNow(): AtaPending | null {
    const p = this.pendingOp;
    if (!p) return null;
    this.pendingOp = null;
    switch (p.op) {
      case "identify":
        this.buffer.set(this.identifyData);
        this.startDataIn();
        break;
      case "read":
        this.buffer.set(this.store.read(this.xferLba, 1));
        this.stepRegisters();
        this.startDataIn();
        break;
      case "write":
        this.store.write(this.xferLba, this.buffer);
        this.stepRegisters();
        this.remaining--;
        if (this.remaining > 0) {
          this.phase = "data-out";
          this.bufferPos = 0;
          this.status = DATA;
        } else {
          this.finish();
        }
        this.interrupt();
        break;
      case "flush":
        this.store.flush();
        this.finish();
        this.interrupt();
        break;
      case "reset":
        this.signature();
        break;
    }
    return p;
  }

  // ---- StatefulDevice

  saveState(): AtaDiskState {
    return {
      version: 1,
      features: this.features,
      count: this.count,
      lbaLow: this.lbaLow,
      lbaMid: this.lbaMid,
      lbaHigh: this.lbaHigh,
      device: this.device,
      error: this.error,
      status: this.status,
      control: this.control,
      phase: this.phase,
      command: this.command,
      xferLba: this.xferLba,
      remaining: this.remaining,
      pending: this.pendingOp ? { ...this.pendingOp } : null,
      bufferPos: this.bufferPos,
      buffer: toHex(this.buffer),
      intrq: this.intrq,
      line: this.line,
    };
  }

  /**
   * Restores a saved state. The IRQ line's level is restored as state without
   * calling raise()/lower(): the interrupt controller restores its own inputs.
   */
  loadState(state: unknown): void {
    const s = state as AtaDiskState;
    const bad = (what: string) => new Error(`${this.name}: bad saved state (${what})`);
    if (!s || typeof s !== "object" || s.version !== 1) throw bad("version");
    const byte = (k: keyof AtaDiskState) => {
      const v = s[k];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xff) throw bad(k);
      return v;
    };
    if (!["idle", "busy", "data-in", "data-out", "reset"].includes(s.phase)) throw bad("phase");
    if (typeof s.buffer !== "string" || !/^[0-9a-f]{1024}$/.test(s.buffer)) throw bad("buffer");
    if (!Number.isInteger(s.bufferPos) || s.bufferPos < 0 || s.bufferPos > SECTOR_SIZE || s.bufferPos % 2) throw bad("bufferPos");
    if (!Number.isSafeInteger(s.xferLba) || s.xferLba < 0 || !Number.isInteger(s.remaining) || s.remaining < 0 || s.remaining > 256) throw bad("transfer");
    const p = s.pending;
    if (p !== null && (typeof p !== "object" || !["identify", "read", "write", "flush", "reset"].includes(p.op) || typeof p.dueNs !== "number")) throw bad("pending");
    if (typeof s.intrq !== "boolean" || typeof s.line !== "boolean") throw bad("irq");
    this.features = byte("features");
    this.count = byte("count");
    this.lbaLow = byte("lbaLow");
    this.lbaMid = byte("lbaMid");
    this.lbaHigh = byte("lbaHigh");
    this.device = byte("device");
    this.error = byte("error");
    this.status = byte("status");
    this.control = byte("control");
    this.command = byte("command");
    this.phase = s.phase;
    this.xferLba = s.xferLba;
    this.remaining = s.remaining;
    this.pendingOp = p ? { ...p } : null;
    this.bufferPos = s.bufferPos;
    this.buffer = fromHex(s.buffer);
    this.intrq = s.intrq;
    this.line = s.line;
  }

  // ---- registers

  private slaveSelected(): boolean {
    return (this.device & DEV_SLAVE) !== 0;
  }

  private readByte(port: number): number {
    switch (port) {
      case ATA_PRIMARY_BASE + REG_DATA: return this.readDataWord() & 0xff;
      case ATA_PRIMARY_BASE + REG_ERROR: return this.error;
      case ATA_PRIMARY_BASE + REG_COUNT: return this.count;
      case ATA_PRIMARY_BASE + REG_LBA_LOW: return this.lbaLow;
      case ATA_PRIMARY_BASE + REG_LBA_MID: return this.lbaMid;
      case ATA_PRIMARY_BASE + REG_LBA_HIGH: return this.lbaHigh;
      case ATA_PRIMARY_BASE + REG_DEVICE: return this.device;
      case ATA_PRIMARY_BASE + REG_STATUS:
        // The absent slave reads as no device: status 0. Reading the master's status acknowledges INTRQ.
        if (this.slaveSelected()) return 0;
        this.intrq = false;
        this.updateLine();
        return this.status;
      case ATA_PRIMARY_CONTROL:
        return this.slaveSelected() ? 0 : this.status; // alternate status: no acknowledge
      default:
        return 0xff; // a byte of a wide access that falls outside this device
    }
  }

  private writeByte(port: number, v: number): void {
    if (port === ATA_PRIMARY_CONTROL) return this.writeControl(v);
    if (port === ATA_PRIMARY_BASE + REG_DATA) return; // byte write to the data register: ignored
    if (port <= ATA_PRIMARY_BASE || port > ATA_PRIMARY_BASE + REG_STATUS) return;
    // The command block is not writable while the device is busy or transferring data.
    if (this.status & (ST_BSY | ST_DRQ)) return;
    switch (port - ATA_PRIMARY_BASE) {
      case REG_ERROR: this.features = v; break;
      case REG_COUNT: this.count = v; break;
      case REG_LBA_LOW: this.lbaLow = v; break;
      case REG_LBA_MID: this.lbaMid = v; break;
      case REG_LBA_HIGH: this.lbaHigh = v; break;
      case REG_DEVICE:
        this.device = v | DEV_FIXED;
        this.updateLine(); // only the selected device drives INTRQ
        break;
      case REG_STATUS:
        if (!this.slaveSelected()) this.execute(v); // no device 1 to take the command
        break;
    }
  }

  private writeControl(v: number): void {
    const wasReset = (this.control & CTL_SRST) !== 0;
    this.control = v & (CTL_NIEN | CTL_SRST);
    const reset = (this.control & CTL_SRST) !== 0;
    if (reset && !wasReset) {
      // SRST set: abandon whatever was going on; BSY until the reset completes.
      this.pendingOp = null;
      this.phase = "reset";
      this.command = 0;
      this.remaining = 0;
      this.bufferPos = 0;
      this.status = BUSY;
      this.intrq = false;
    } else if (!reset && wasReset) {
      this.schedule("reset", this.timing.resetNs);
    }
    this.updateLine();
  }

  // ---- commands

  private execute(cmd: number): void {
    this.intrq = false; // writing the command register acknowledges INTRQ
    this.error = 0;
    this.command = cmd;
    switch (cmd) {
      case CMD_IDENTIFY:
        this.remaining = 1;
        this.schedule("identify", this.timing.identifyNs);
        break;
      case CMD_READ_SECTORS:
      case CMD_WRITE_SECTORS: {
        const n = this.count === 0 ? 256 : this.count;
        const lba = this.registerLba();
        // LBA addressing only (CHS is refused), and the whole range must exist.
        if (!(this.device & DEV_LBA) || lba + n > this.sectors) {
          this.abort();
          break;
        }
        this.xferLba = lba;
        this.remaining = n;
        if (cmd === CMD_READ_SECTORS) {
          this.schedule("read", this.timing.sectorNs, lba);
        } else {
          // The buffer is free at once: DRQ for the first sector, without an interrupt.
          this.phase = "data-out";
          this.bufferPos = 0;
          this.status = DATA;
        }
        break;
      }
      case CMD_CACHE_FLUSH:
        this.schedule("flush", this.timing.flushNs);
        break;
      default:
        this.abort();
    }
    this.updateLine();
  }

  private abort(): void {
    this.error = ERR_ABRT;
    this.status = ABORTED;
    this.phase = "idle";
    this.command = 0;
    this.remaining = 0;
    this.interrupt();
  }

  private schedule(op: AtaOperation, delayNs: number, lba?: number): void {
    this.pendingOp = { op, dueNs: this.clock.nowNs() + delayNs, ...(lba === undefined ? {} : { lba }) };
    if (op !== "reset") {
      this.phase = "busy";
      this.status = BUSY;
    }
  }

  /** The 28-bit LBA in the task file. */
  private registerLba(): number {
    return ((this.device & 0x0f) * 0x1000000 + (this.lbaHigh << 16) + (this.lbaMid << 8) + this.lbaLow);
  }

  /** One sector done: the count register counts down and the LBA registers up (as QEMU shows them). */
  private stepRegisters(): void {
    this.xferLba++;
    const lba = this.xferLba;
    this.lbaLow = lba & 0xff;
    this.lbaMid = (lba >>> 8) & 0xff;
    this.lbaHigh = (lba >>> 16) & 0xff;
    this.device = (this.device & 0xf0) | ((lba >>> 24) & 0x0f);
    this.count = (this.count - 1) & 0xff;
  }

  private startDataIn(): void {
    this.phase = "data-in";
    this.bufferPos = 0;
    this.status = DATA;
    this.interrupt();
  }

  private finish(): void {
    this.phase = "idle";
    this.status = IDLE;
    this.command = 0;
    this.remaining = 0;
    this.bufferPos = 0;
  }

  /** The state after a reset (and at power-on): ready, diagnostic code 01h, the ATA signature. */
  private signature(): void {
    this.finish();
    this.pendingOp = null;
    this.error = 0x01;
    this.count = 0x01;
    this.lbaLow = 0x01;
    this.lbaMid = 0x00;
    this.lbaHigh = 0x00;
    this.device = DEV_FIXED;
    this.intrq = false;
    this.updateLine();
  }

  // ---- data port

  private readDataWord(): number {
    if (this.phase !== "data-in") return 0; // no DRQ: reads as 0 (as QEMU)
    const v = this.buffer[this.bufferPos] | (this.buffer[this.bufferPos + 1] << 8);
    this.bufferPos += 2;
    if (this.bufferPos === SECTOR_SIZE) {
      this.remaining--;
      if (this.command === CMD_READ_SECTORS && this.remaining > 0) {
        this.schedule("read", this.timing.sectorNs, this.xferLba);
      } else {
        this.finish(); // end of the last DRQ block: no interrupt
      }
    }
    return v;
  }

  private writeDataWord(v: number): void {
    if (this.phase !== "data-out") return;
    this.buffer[this.bufferPos] = v & 0xff;
    this.buffer[this.bufferPos + 1] = v >>> 8;
    this.bufferPos += 2;
    if (this.bufferPos === SECTOR_SIZE) this.schedule("write", this.timing.sectorNs, this.xferLba);
  }

  // ---- interrupt

  private interrupt(): void {
    this.intrq = true;
    this.updateLine();
  }

  /** INTRQ is driven while an interrupt is pending, nIEN is clear and the master is selected. */
  private updateLine(): void {
    const level = this.intrq && (this.control & CTL_NIEN) === 0 && !this.slaveSelected();
    if (level === this.line) return;
    this.line = level;
    if (level) this.irq.raise();
    else this.irq.lower();
  }
}

// ---- IDENTIFY DEVICE data

function checkText(what: string, s: string, max: number): string {
  if (s.length > max || !/^[\x20-\x7e]*$/.test(s)) throw new RangeError(`ATA ${what} must be at most ${max} printable ASCII characters, got ${JSON.stringify(s)}`);
  return s;
}

/**
 * The 256-word identify block (ATA/ATAPI-6 layout): words little-endian,
 * strings space-padded with the first character of each pair in the high byte.
 */
export function buildIdentify(p: { sectors: number; model: string; serial: string; firmware: string }): Uint8Array {
  const w = new Uint16Array(256);
  const text = (at: number, words: number, s: string) => {
    const t = s.padEnd(words * 2, " ");
    for (let i = 0; i < words; i++) w[at + i] = (t.charCodeAt(2 * i) << 8) | t.charCodeAt(2 * i + 1);
  };
  const total = Math.min(p.sectors, LBA28_MAX_SECTORS);
  // A nominal CHS geometry for software that reads it (the device itself takes LBAs only).
  const heads = 16, perTrack = 63;
  w[0] = 0x0040; // ATA device, fixed (not removable)
  w[1] = Math.max(1, Math.min(16383, Math.floor(total / (heads * perTrack)))); // cylinders
  w[3] = heads;
  w[6] = perTrack;
  text(10, 10, p.serial);
  text(23, 4, p.firmware);
  text(27, 20, p.model);
  w[47] = 0x8000; // READ/WRITE MULTIPLE: not supported (0 sectors per DRQ block)
  w[49] = 0x0200; // capabilities: LBA supported (no DMA)
  w[50] = 0x4000; // capabilities: bit 14 shall be one
  w[51] = 0x0200; // PIO cycle timing mode 2 (obsolete field)
  w[60] = total & 0xffff; // sectors addressable with 28-bit commands
  w[61] = total >>> 16;
  w[82] = 0x0020; // write cache supported (stores buffer writes until CACHE FLUSH)
  w[83] = 0x5000; // bit 14 one; FLUSH CACHE supported; no 48-bit addressing
  w[84] = 0x4000; // bit 14 one
  w[85] = 0x0020; // write cache enabled
  w[86] = 0x1000; // FLUSH CACHE supported (enabled set mirrors word 83)
  w[87] = 0x4000; // bit 14 one
  const bytes = new Uint8Array(512);
  for (let i = 0; i < 256; i++) {
    bytes[2 * i] = w[i] & 0xff;
    bytes[2 * i + 1] = w[i] >>> 8;
  }
  // Word 255: signature A5h and a checksum making the 512 bytes sum to 0 mod 256.
  bytes[510] = 0xa5;
  let sum = 0;
  for (let i = 0; i < 511; i++) sum += bytes[i];
  bytes[511] = (256 - (sum & 0xff)) & 0xff;
  return bytes;
}

/** Decodes an identify string field (words [at, at + words)). */
export function identifyString(block: Uint8Array, at: number, words: number): string {
  let s = "";
  for (let i = at; i < at + words; i++) s += String.fromCharCode(block[2 * i + 1], block[2 * i]);
  return s.trimEnd();
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
function fromHex(s: string): Uint8Array {
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return b;
}
