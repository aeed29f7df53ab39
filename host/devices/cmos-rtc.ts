// The MC146818 real-time clock and CMOS RAM of a PC at ports 0x70 (index)
// and 0x71 (data). See docs/devices.md.
//
// The clock is not a counter that ticks: the time is the injected WallClock
// (UTC, ms since the epoch) plus an offset the guest changes by setting the
// clock, read at the moment of each access. Registers 0x00-0x09 and the
// century byte 0x32 are computed from it in the format register B selects
// (BCD or binary, 24- or 12-hour). While register B's SET bit is 1 the time
// registers are ordinary bytes (frozen at the moment SET was written, then
// whatever the guest writes); clearing SET makes the clock run again from
// those values. The day of the week is a separate counter on the chip; here
// it is kept as an offset from the weekday of the date, so writing the date
// does not change it and writing it does not change the date.
//
// No interrupts: the periodic, alarm and update-ended interrupts are not
// generated (IRQ 8 is not driven) whatever register B enables. Register C's
// update-ended flag (UF) is reported (set when a second has passed since C
// was last read); its PF and AF flags read 0.

import type { AccessSize, PortDevice, StatefulDevice, WallClock } from "./device.js";
import { asRecord, bool, bytes, int, num, readBytes, writeBytes } from "./port-io.js";

export const RTC_SECONDS = 0x00, RTC_MINUTES = 0x02, RTC_HOURS = 0x04, RTC_DAY_OF_WEEK = 0x06,
  RTC_DAY = 0x07, RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_A = 0x0a, RTC_B = 0x0b, RTC_C = 0x0c, RTC_D = 0x0d,
  RTC_CENTURY = 0x32;

const B_SET = 0x80, B_UIE = 0x10, B_BINARY = 0x04, B_24H = 0x02;
const A_UIP = 0x80;
const C_IRQF = 0x80, C_UF = 0x10;
const D_VRT = 0x80;
/** UIP reads 1 during the last UIP_MS milliseconds before each second boundary. */
export const UIP_MS = 2;

const TIME_REGS = [RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_DAY_OF_WEEK, RTC_DAY, RTC_MONTH, RTC_YEAR, RTC_CENTURY];

const fdiv = (a: number, b: number) => Math.floor(a / b);
const mod = (a: number, b: number) => ((a % b) + b) % b;

/** Days from 1970-01-01 to the proleptic Gregorian date y-m-d (month 1-12, day may overflow). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y += fdiv(m - 1, 12); // month out of 1..12 rolls into the year
  m = mod(m - 1, 12) + 1;
  const yy = m <= 2 ? y - 1 : y; // years start in March, so the leap day is last
  const era = fdiv(yy, 400);
  const yoe = yy - era * 400; // 0..399
  const mp = (m + 9) % 12; // March = 0
  const doy = fdiv(153 * mp + 2, 5) + d - 1;
  const doe = yoe * 365 + fdiv(yoe, 4) - fdiv(yoe, 100) + doy;
  return era * 146097 + doe - 719468; // 719468 = days from 0000-03-01 to 1970-01-01
}

/** The date of day z counted from 1970-01-01: [year, month 1-12, day 1-31]. */
export function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = fdiv(z, 146097);
  const doe = z - era * 146097;
  const yoe = fdiv(doe - fdiv(doe, 1460) + fdiv(doe, 36524) - fdiv(doe, 146096), 365);
  const doy = doe - (365 * yoe + fdiv(yoe, 4) - fdiv(yoe, 100));
  const mp = fdiv(5 * doy + 2, 153);
  const d = doy - fdiv(153 * mp + 2, 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return [y, m, d];
}

/** 0 = Sunday. */
const weekday = (days: number) => mod(days + 4, 7); // 1970-01-01 was a Thursday

interface Fields {
  sec: number;
  min: number;
  hour: number;
  day: number;
  month: number;
  year: number;
}

function fieldsOf(epochSec: number): Fields & { days: number } {
  const days = fdiv(epochSec, 86400);
  const s = epochSec - days * 86400;
  const [year, month, day] = civilFromDays(days);
  return { sec: s % 60, min: fdiv(s, 60) % 60, hour: fdiv(s, 3600), day, month, year, days };
}

function secondsOf(f: Fields): number {
  return daysFromCivil(f.year, f.month, f.day) * 86400 + f.hour * 3600 + f.min * 60 + f.sec;
}

export interface CmosRtcOptions {
  wallClock: WallClock;
  /** Guest RAM size in bytes, reported in the CMOS memory-size bytes (default 0: none reported). */
  memoryBytes?: number;
  /** Device name (default "rtc"). */
  name?: string;
}

interface RtcState {
  /** The 128 bytes; the time registers are meaningful here only while SET is 1. */
  ram: number[];
  index: number;
  nmiDisabled: boolean;
  /** RTC time minus wall-clock time (ms). */
  offsetMs: number;
  /** Day-of-week register minus the weekday of the date (mod 7). */
  dowAdjust: number;
  /** The RTC second at the last read of register C, or null (never read). */
  lastCSecond: number | null;
}

export class CmosRtc implements PortDevice, StatefulDevice {
  readonly name: string;
  readonly ports: readonly (readonly [number, number])[] = [[0x70, 0x72]];
  private readonly wall: WallClock;
  private s: RtcState;

  constructor(opts: CmosRtcOptions) {
    this.name = opts.name ?? "rtc";
    this.wall = opts.wallClock;
    const ram = new Array<number>(128).fill(0);
    ram[RTC_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
    ram[RTC_B] = B_24H; // BCD, 24-hour, no interrupts
    ram[RTC_D] = D_VRT;
    fillMemorySize(ram, opts.memoryBytes ?? 0);
    this.s = { ram, index: 0, nmiDisabled: false, offsetMs: 0, dowAdjust: 0, lastCSecond: null };
  }

  /** The NMI-disable bit of the last index write (bit 7 of port 0x70); the machine may honour it. */
  get nmiDisabled(): boolean {
    return this.s.nmiDisabled;
  }

  /** Port 0x70 is write-only (reads 0xFF); port 0x71 reads the indexed register. */
  read(port: number, size: AccessSize): number {
    return readBytes(this.ports, port, size, (p) => (p === 0x70 ? 0xff : this.readReg(this.s.index)));
  }

  write(port: number, size: AccessSize, value: number): void {
    writeBytes(this.ports, port, size, value, (p, b) => {
      if (p === 0x70) {
        this.s.index = b & 0x7f;
        this.s.nmiDisabled = (b & 0x80) !== 0;
      } else this.writeReg(this.s.index, b);
    });
  }

  saveState(): unknown {
    return { ...this.s, ram: this.s.ram.slice() };
  }

  loadState(state: unknown): void {
    const w = this.name;
    const r = asRecord(state, w);
    const ram = bytes(r, "ram", w, 128);
    if (ram.length !== 128) throw new TypeError(`${w}: state.ram is not 128 bytes`);
    this.s = {
      ram, index: int(r, "index", w, 0, 0x7f), nmiDisabled: bool(r, "nmiDisabled", w),
      offsetMs: num(r, "offsetMs", w), dowAdjust: int(r, "dowAdjust", w, 0, 6),
      lastCSecond: r.lastCSecond === null ? null : num(r, "lastCSecond", w),
    };
  }

  // ---- registers ----

  private get binary(): boolean {
    return (this.s.ram[RTC_B] & B_BINARY) !== 0;
  }

  private get h24(): boolean {
    return (this.s.ram[RTC_B] & B_24H) !== 0;
  }

  private get running(): boolean {
    return (this.s.ram[RTC_B] & B_SET) === 0;
  }

  /** RTC time now (ms since the epoch). */
  private nowMs(): number {
    return Math.floor(this.wall.epochMs()) + this.s.offsetMs;
  }

  private enc(v: number): number {
    return this.binary ? v & 0xff : ((fdiv(v, 10) % 10) << 4) | v % 10;
  }

  private dec(b: number): number {
    return this.binary ? b : (b >> 4) * 10 + (b & 15);
  }

  private encHour(h: number): number {
    if (this.h24) return this.enc(h);
    return this.enc(h % 12 || 12) | (h >= 12 ? 0x80 : 0);
  }

  private decHour(b: number): number {
    if (this.h24) return this.dec(b);
    return (this.dec(b & 0x7f) % 12) + (b & 0x80 ? 12 : 0);
  }

  /** The encoded time register `reg` for RTC time ms. */
  private timeReg(reg: number, ms: number): number {
    const f = fieldsOf(fdiv(ms, 1000));
    switch (reg) {
      case RTC_SECONDS: return this.enc(f.sec);
      case RTC_MINUTES: return this.enc(f.min);
      case RTC_HOURS: return this.encHour(f.hour);
      case RTC_DAY_OF_WEEK: return this.enc(mod(weekday(f.days) + this.s.dowAdjust, 7) + 1);
      case RTC_DAY: return this.enc(f.day);
      case RTC_MONTH: return this.enc(f.month);
      case RTC_YEAR: return this.enc(mod(f.year, 100));
      default: return this.enc(mod(fdiv(f.year, 100), 100)); // century
    }
  }

  private readReg(reg: number): number {
    const s = this.s;
    if (TIME_REGS.includes(reg)) return this.running ? this.timeReg(reg, this.nowMs()) : s.ram[reg];
    switch (reg) {
      case RTC_A: {
        const uip = this.running && mod(this.nowMs(), 1000) >= 1000 - UIP_MS;
        return (s.ram[RTC_A] & 0x7f) | (uip ? A_UIP : 0);
      }
      case RTC_C: {
        let v = 0;
        if (this.running) {
          const sec = fdiv(this.nowMs(), 1000);
          if (s.lastCSecond === null || sec > s.lastCSecond) v |= C_UF;
          s.lastCSecond = sec;
        }
        if (v & C_UF && s.ram[RTC_B] & B_UIE) v |= C_IRQF;
        return v;
      }
      case RTC_D:
        return D_VRT;
      default:
        return s.ram[reg];
    }
  }

  private writeReg(reg: number, v: number): void {
    const s = this.s;
    if (TIME_REGS.includes(reg)) {
      if (this.running) this.setRunningField(reg, v);
      else s.ram[reg] = v;
      return;
    }
    switch (reg) {
      case RTC_A:
        s.ram[RTC_A] = v & 0x7f; // UIP is read-only
        return;
      case RTC_B: {
        const wasRunning = this.running;
        if (wasRunning && v & B_SET) {
          // SET: freeze the time registers at their current values (current format).
          const ms = this.nowMs();
          for (const r of TIME_REGS) s.ram[r] = this.timeReg(r, ms);
        }
        s.ram[RTC_B] = v;
        if (!wasRunning && !(v & B_SET)) this.restart();
        return;
      }
      case RTC_C:
      case RTC_D:
        return; // read-only
      default:
        s.ram[reg] = v;
    }
  }

  /** Decodes the frozen time registers (in the current format) and runs the clock from them. */
  private restart(): void {
    const s = this.s;
    const r = s.ram;
    const f: Fields = {
      sec: this.dec(r[RTC_SECONDS]), min: this.dec(r[RTC_MINUTES]), hour: this.decHour(r[RTC_HOURS]),
      day: this.dec(r[RTC_DAY]), month: this.dec(r[RTC_MONTH]),
      year: this.dec(r[RTC_CENTURY]) * 100 + this.dec(r[RTC_YEAR]),
    };
    this.setTime(f);
    const days = fdiv(secondsOf(f), 86400);
    s.dowAdjust = mod(this.dec(r[RTC_DAY_OF_WEEK]) - 1 - weekday(days), 7);
  }

  /** A time register written while the clock runs: that field changes, the rest keep counting. */
  private setRunningField(reg: number, v: number): void {
    const ms = this.nowMs();
    const cur = fieldsOf(fdiv(ms, 1000));
    const f: Fields = { sec: cur.sec, min: cur.min, hour: cur.hour, day: cur.day, month: cur.month, year: cur.year };
    switch (reg) {
      case RTC_SECONDS: f.sec = this.dec(v); break;
      case RTC_MINUTES: f.min = this.dec(v); break;
      case RTC_HOURS: f.hour = this.decHour(v); break;
      case RTC_DAY: f.day = this.dec(v); break;
      case RTC_MONTH: f.month = this.dec(v); break;
      case RTC_YEAR: f.year = fdiv(cur.year, 100) * 100 + this.dec(v); break;
      case RTC_CENTURY: f.year = this.dec(v) * 100 + mod(cur.year, 100); break;
      case RTC_DAY_OF_WEEK:
        this.s.dowAdjust = mod(this.dec(v) - 1 - weekday(cur.days), 7);
        return;
    }
    const dow = mod(weekday(cur.days) + this.s.dowAdjust, 7);
    this.setTime(f);
    // The day-of-week counter keeps its value when the date is changed.
    this.s.dowAdjust = mod(dow - weekday(fdiv(secondsOf(f), 86400)), 7);
  }

  /**
   * Makes the RTC read f now. The divider chain keeps its phase (setting the
   * time does not reset it), so the fraction of the current second is kept.
   */
  private setTime(f: Fields): void {
    const ms = this.nowMs();
    this.s.offsetMs += (secondsOf(f) - fdiv(ms, 1000)) * 1000;
  }
}

/** The PC CMOS memory-size bytes and the standard checksum over 0x10-0x2D. */
function fillMemorySize(ram: number[], memoryBytes: number): void {
  const kb = Math.floor(memoryBytes / 1024);
  const base = Math.min(640, kb);
  const ext = Math.max(0, Math.min(0xffff, kb - 1024)); // KiB above 1 MiB
  const above16 = Math.max(0, Math.min(0xffff, Math.floor((memoryBytes - 16 * 1024 * 1024) / 65536))); // 64 KiB blocks above 16 MiB
  ram[0x15] = base & 0xff;
  ram[0x16] = base >> 8;
  ram[0x17] = ram[0x30] = ext & 0xff;
  ram[0x18] = ram[0x31] = ext >> 8;
  ram[0x34] = above16 & 0xff;
  ram[0x35] = above16 >> 8;
  let sum = 0;
  for (let i = 0x10; i <= 0x2d; i++) sum += ram[i];
  ram[0x2e] = (sum >> 8) & 0xff;
  ram[0x2f] = sum & 0xff;
}
