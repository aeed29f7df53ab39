// The 8254 programmable interval timer of a PC at ports 0x40-0x43, clocked at
// 1,193,182 Hz. Channel 0's OUT drives IRQ 0; channels 1 and 2 count and can
// be read but drive nothing (channel 2's gate and speaker output belong to
// port 0x61, which is not modelled here: output(2) exposes its OUT for a
// device that wants to). See docs/devices.md.
//
// Nothing ticks. Guest time t (ns, from the GuestClock) is turned into the
// number of input clock pulses since guest time 0, floor(t * F / 1e9), and
// each counter is described by the pulse at which its current count was
// loaded: its count and OUT level at any later pulse follow in closed form
// from the mode rules of the Intel 8254 datasheet. A count written while the
// counter runs is kept as a pending segment that takes over at the pulse the
// datasheet says (the next pulse in modes 0 and 4, the end of the period in
// mode 2, the end of the half-cycle in mode 3).
//
// All gates are taken as high (as channels 0 and 1 are on a PC), so modes 1
// and 5, which wait for a rising edge on the gate, never start: their OUT
// stays high and their count does not move.

import type { AccessSize, GuestClock, IrqLine, PortDevice, StatefulDevice, TimedDevice } from "./device.js";
import { asRecord, bool, int, num, readBytes, writeBytes } from "./port-io.js";

/** The input clock of the PC's 8254 (Hz). */
export const PIT_HZ = 1_193_182;
const F = BigInt(PIT_HZ);
const G = 1_000_000_000n;

/** Input clock pulses from guest time 0 to guest time ns (pulse p happens at ceil(p * 1e9 / F) ns). */
export function pitTicksAt(ns: number): number {
  const t = Math.max(0, Math.floor(ns));
  return Number((BigInt(t) * F) / G);
}

/** The guest time (ns) of input clock pulse p: the first ns at which pitTicksAt reaches p. */
export function pitNsOfTick(p: number): number {
  return Number((BigInt(p) * G + F - 1n) / F);
}

/** A counter that is not counting: OUT constant, the counting element holds `value`. */
interface Idle {
  kind: "idle";
  out: boolean;
  value: number;
}

/** A counter counting from count n (1..modulus, modulus standing for 0) loaded at pulse `at`. */
interface Run {
  kind: "run";
  at: number;
  n: number;
  /** Mode 3: OUT level at `at` (a count changed mid-cycle starts with the low half). */
  high: boolean;
}

interface ChannelState {
  /** Mode bits M2-M0 as written (6 and 7 behave as 2 and 3). */
  modeBits: number;
  /** Access: 1 = LSB only, 2 = MSB only, 3 = LSB then MSB. */
  rw: number;
  bcd: boolean;
  cur: Idle | Run;
  /** A count loaded later (at pulse pend.at), or null. */
  pend: Run | null;
  /** rw 3: the LSB has been written, the MSB is next. */
  writeHigh: boolean;
  /** rw 3: the LSB written first. */
  lsb: number;
  /** rw 3: the next read returns the MSB. */
  readHigh: boolean;
  /** Latched count (as read, BCD-encoded if bcd), or null. */
  latch: number | null;
  /** Latched status byte (read-back command), or null. */
  status: number | null;
  /** Status NULL COUNT: a count was written but not yet loaded into the counting element. */
  nullCount: boolean;
}

export interface Pit8254Options {
  clock: GuestClock;
  /** Channel 0's OUT (IRQ 0). */
  irq: IrqLine;
  /** Device name (default "pit"). */
  name?: string;
}

const mode = (c: ChannelState) => (c.modeBits > 5 ? c.modeBits - 4 : c.modeBits);
const modulus = (c: ChannelState) => (c.bcd ? 10000 : 0x10000);
const mod = (a: number, m: number) => ((a % m) + m) % m;

function toBcd(v: number): number {
  v = mod(v, 10000);
  return (Math.floor(v / 1000) << 12) | (Math.floor(v / 100) % 10 << 8) | (Math.floor(v / 10) % 10 << 4) | v % 10;
}

/** Nibbles weighted as decimal digits (an invalid digit keeps its value, e.g. 0xA = 10). */
function fromBcd(v: number): number {
  return ((v >> 12) & 15) * 1000 + ((v >> 8) & 15) * 100 + ((v >> 4) & 15) * 10 + (v & 15);
}

/** The programmed counts of modes 2 and 3 start at 2 (a count of 1 is illegal there; it runs as 2). */
function effectiveN(c: ChannelState, n: number): number {
  const m = mode(c);
  return (m === 2 || m === 3) && n < 2 ? 2 : n;
}

/** Mode-3 half lengths: high for ceil(n/2) pulses, low for floor(n/2). */
const highLen = (n: number) => Math.ceil(n / 2);
const lowLen = (n: number) => Math.floor(n / 2);

/** OUT of a segment at pulse p (p >= its start for a Run). */
function segOut(c: ChannelState, s: Idle | Run, p: number): boolean {
  if (s.kind === "idle") return s.out;
  const j = p - s.at;
  const n = s.n;
  switch (mode(c)) {
    case 0:
      return j >= n; // low until the count reaches 0, then high
    case 4:
      return j !== n; // low for the one pulse at which the count reaches 0
    case 2:
      return j % n !== n - 1; // low for the one pulse at which the count is 1
    case 3: {
      const q = j % n;
      return s.high ? q < highLen(n) : q >= lowLen(n);
    }
    default:
      return true;
  }
}

/** The count in the counting element at pulse p (binary, 0..modulus-1). */
function segCount(c: ChannelState, s: Idle | Run, p: number): number {
  const m = modulus(c);
  if (s.kind === "idle") return mod(s.value, m);
  const j = p - s.at;
  const n = s.n;
  switch (mode(c)) {
    case 0:
    case 4:
      return mod(n - j, m); // counts on through 0 and wraps
    case 2:
      return mod(n - (j % n), m);
    case 3: {
      // Each half reloads the count (n, or n-1 when n is odd) and takes 2 per pulse.
      const e = n % 2 === 0 ? n : n - 1;
      const q = j % n;
      const first = s.high ? highLen(n) : lowLen(n);
      const k = q < first ? q : q - first;
      return mod(e - 2 * k, m);
    }
    default:
      return mod(s.n, m);
  }
}

/** The first pulse after max(a, start) at which the segment's OUT changes, or null. */
function segNext(c: ChannelState, s: Idle | Run, a: number): number | null {
  if (s.kind === "idle") return null;
  const from = Math.max(a, s.at);
  const n = s.n;
  const m = from - s.at;
  const q = m % n;
  const base = s.at + m - q;
  switch (mode(c)) {
    case 0: {
      const t = s.at + n;
      return t > from ? t : null;
    }
    case 4: {
      if (s.at + n > from) return s.at + n;
      if (s.at + n + 1 > from) return s.at + n + 1;
      return null;
    }
    case 2:
      return q < n - 1 ? base + n - 1 : base + n;
    case 3: {
      const first = s.high ? highLen(n) : lowLen(n);
      return q < first ? base + first : base + n;
    }
    default:
      return null;
  }
}

function freshChannel(at: number): ChannelState {
  // As a PC BIOS leaves the channels: mode 3, LSB then MSB, binary, count 0 (65536).
  return {
    modeBits: 3, rw: 3, bcd: false,
    cur: { kind: "run", at, n: 0x10000, high: true }, pend: null,
    writeHigh: false, lsb: 0, readHigh: false, latch: null, status: null, nullCount: false,
  };
}

export class Pit8254 implements PortDevice, StatefulDevice, TimedDevice {
  readonly name: string;
  readonly ports: readonly (readonly [number, number])[] = [[0x40, 0x44]];
  private readonly clock: GuestClock;
  private readonly irq: IrqLine;
  private ch: ChannelState[];
  /** The pulse up to which channel 0's OUT has been driven onto the IRQ line. */
  private done: number;
  /** The level last driven onto the IRQ line. */
  private irqHigh: boolean;

  constructor(opts: Pit8254Options) {
    this.name = opts.name ?? "pit";
    this.clock = opts.clock;
    this.irq = opts.irq;
    const t0 = pitTicksAt(this.clock.nowNs());
    this.ch = [freshChannel(t0), freshChannel(t0), freshChannel(t0)];
    this.done = t0;
    this.irqHigh = segOut(this.ch[0], this.ch[0].cur, t0);
    if (this.irqHigh) this.irq.raise();
  }

  // ---- TimedDevice ----

  /** Guest time of channel 0's next OUT change (either edge), or null if it will not change. */
  nextEventNs(): number | null {
    const p = this.nextChange(this.ch[0], this.done);
    return p === null ? null : pitNsOfTick(p);
  }

  /** Drives IRQ 0 through the OUT changes up to guest time nowNs. */
  advance(nowNs: number): void {
    this.sync(this.now(nowNs));
  }

  // ---- ports ----

  read(port: number, size: AccessSize): number {
    return readBytes(this.ports, port, size, (p) => this.readByte(p));
  }

  write(port: number, size: AccessSize, value: number): void {
    writeBytes(this.ports, port, size, value, (p, b) => this.writeByte(p, b));
  }

  /** The OUT level of a channel now (channel 2's is what port 0x61 bit 5 shows on a PC). */
  output(channel: number): boolean {
    const t = this.now(this.clock.nowNs());
    this.sync(t);
    const c = this.ch[channel];
    if (!c) throw new RangeError(`${this.name}: no channel ${channel}`);
    return this.outAt(c, t);
  }

  // ---- StatefulDevice ----

  saveState(): unknown {
    return {
      channels: this.ch.map((c) => ({
        ...c,
        cur: { ...c.cur },
        pend: c.pend && { ...c.pend },
      })),
      done: this.done,
      irqHigh: this.irqHigh,
    };
  }

  /** Restores the counters; does not drive the IRQ line (the PIC's snapshot holds its input levels). */
  loadState(state: unknown): void {
    const what = this.name;
    const r = asRecord(state, what);
    const list = r.channels;
    if (!Array.isArray(list) || list.length !== 3) throw new TypeError(`${what}: state.channels is not an array of 3`);
    const seg = (v: unknown, w: string): Idle | Run => {
      const s = asRecord(v, w);
      if (s.kind === "idle") return { kind: "idle", out: bool(s, "out", w), value: int(s, "value", w, 0, 0xffff) };
      if (s.kind === "run") return { kind: "run", at: num(s, "at", w), n: int(s, "n", w, 1, 0x10000), high: bool(s, "high", w) };
      throw new TypeError(`${w}: unknown segment kind`);
    };
    const nullable = (c: Record<string, unknown>, k: string, w: string) => (c[k] === null ? null : int(c, k, w, 0, 0xffff));
    this.ch = list.map((v, i) => {
      const w = `${what}.channels[${i}]`;
      const c = asRecord(v, w);
      const rw = int(c, "rw", w, 1, 3);
      return {
        modeBits: int(c, "modeBits", w, 0, 7), rw, bcd: bool(c, "bcd", w),
        cur: seg(c.cur, `${w}.cur`), pend: c.pend === null ? null : (seg(c.pend, `${w}.pend`) as Run),
        writeHigh: bool(c, "writeHigh", w), lsb: int(c, "lsb", w, 0, 0xff), readHigh: bool(c, "readHigh", w),
        latch: nullable(c, "latch", w), status: nullable(c, "status", w), nullCount: bool(c, "nullCount", w),
      };
    });
    this.done = num(r, "done", what);
    this.irqHigh = bool(r, "irqHigh", what);
  }

  // ---- internals ----

  private now(ns: number): number {
    return Math.max(pitTicksAt(ns), this.done);
  }

  private outAt(c: ChannelState, p: number): boolean {
    return c.pend && p >= c.pend.at ? segOut(c, c.pend, p) : segOut(c, c.cur, p);
  }

  private countAt(c: ChannelState, p: number): number {
    return c.pend && p >= c.pend.at ? segCount(c, c.pend, p) : segCount(c, c.cur, p);
  }

  /** The first pulse after a at which the channel's OUT changes, or null. */
  private nextChange(c: ChannelState, a: number): number | null {
    const pend = c.pend;
    if (!pend || a >= pend.at) return segNext(c, pend ?? c.cur, a);
    const x = segNext(c, c.cur, a);
    if (x !== null && x < pend.at) return x;
    if (segOut(c, c.cur, pend.at - 1) !== segOut(c, pend, pend.at)) return pend.at;
    return segNext(c, pend, pend.at);
  }

  /** Brings IRQ 0 up to pulse t and lets pending counts that are due take over. */
  private sync(t: number): void {
    if (t > this.done) {
      const c = this.ch[0];
      const first = this.nextChange(c, this.done);
      if (first !== null && first <= t) {
        const final = this.outAt(c, t);
        const second = this.nextChange(c, first);
        if (second !== null && second <= t) {
          // Several changes since the last call: at least one rising edge happened.
          if (this.irqHigh) this.irq.lower();
          this.irq.raise();
          this.irqHigh = true;
        }
        this.drive(final);
      }
      this.done = t;
    }
    for (const c of this.ch) {
      if (c.pend && t >= c.pend.at) {
        c.cur = c.pend;
        c.pend = null;
        c.nullCount = false;
      }
    }
  }

  private drive(high: boolean): void {
    if (high === this.irqHigh) return;
    this.irqHigh = high;
    if (high) this.irq.raise();
    else this.irq.lower();
  }

  private encode(c: ChannelState, v: number): number {
    return c.bcd ? toBcd(v) : v & 0xffff;
  }

  private readByte(port: number): number {
    if (port === 0x43) return 0xff; // the control word register cannot be read
    const t = this.now(this.clock.nowNs());
    this.sync(t);
    const c = this.ch[port - 0x40];
    if (c.status !== null) {
      const s = c.status;
      c.status = null;
      return s;
    }
    const latched = c.latch !== null;
    const v = latched ? c.latch! : this.encode(c, this.countAt(c, t));
    let b: number;
    let finished = true;
    if (c.rw === 1) b = v & 0xff;
    else if (c.rw === 2) b = v >> 8;
    else {
      b = c.readHigh ? v >> 8 : v & 0xff;
      finished = c.readHigh;
      c.readHigh = !c.readHigh;
    }
    if (latched && finished) c.latch = null;
    return b & 0xff;
  }

  private writeByte(port: number, v: number): void {
    const t = this.now(this.clock.nowNs());
    this.sync(t);
    if (port === 0x43) this.control(v, t);
    else this.writeCount(this.ch[port - 0x40], v, t);
    this.drive(this.outAt(this.ch[0], t));
  }

  private control(v: number, t: number): void {
    const sc = v >> 6;
    if (sc === 3) {
      // Read-back: bit 5 = 0 latches the counts, bit 4 = 0 the statuses, of the
      // counters selected by bits 1-3. A latch not yet read is kept.
      for (let i = 0; i < 3; i++) {
        if (!(v & (2 << i))) continue;
        const c = this.ch[i];
        if (!(v & 0x20) && c.latch === null) c.latch = this.encode(c, this.countAt(c, t));
        if (!(v & 0x10) && c.status === null)
          c.status = (this.outAt(c, t) ? 0x80 : 0) | (c.nullCount ? 0x40 : 0) | (c.rw << 4) | (c.modeBits << 1) | (c.bcd ? 1 : 0);
      }
      return;
    }
    const c = this.ch[sc];
    const rw = (v >> 4) & 3;
    if (rw === 0) {
      // Counter latch command (ignored while an earlier latch is unread).
      if (c.latch === null) c.latch = this.encode(c, this.countAt(c, t));
      return;
    }
    const held = this.countAt(c, t);
    c.rw = rw;
    c.modeBits = (v >> 1) & 7;
    c.bcd = (v & 1) !== 0;
    // Control logic reset: counting stops until a count is written; OUT goes
    // low in mode 0 and high in the others.
    c.cur = { kind: "idle", out: mode(c) !== 0, value: held };
    c.pend = null;
    c.writeHigh = false;
    c.readHigh = false;
    c.latch = null;
    c.status = null;
    c.nullCount = true;
  }

  private writeCount(c: ChannelState, b: number, t: number): void {
    let raw: number;
    if (c.rw === 1) raw = b;
    else if (c.rw === 2) raw = b << 8;
    else if (!c.writeHigh) {
      c.lsb = b;
      c.writeHigh = true;
      // Mode 0: writing the first byte stops the count and sets OUT low at once.
      if (mode(c) === 0) {
        c.cur = { kind: "idle", out: false, value: this.countAt(c, t) };
        c.pend = null;
      }
      return;
    } else {
      raw = c.lsb | (b << 8);
      c.writeHigh = false;
    }
    const m = modulus(c);
    let n = (c.bcd ? fromBcd(raw) : raw) % m;
    if (n === 0) n = m;
    n = effectiveN(c, n);
    c.nullCount = true;
    const md = mode(c);
    if (c.pend) {
      c.pend.n = n; // not loaded yet: the newer count replaces it
      return;
    }
    switch (md) {
      case 0:
        c.cur = { kind: "idle", out: false, value: this.countAt(c, t) };
        c.pend = { kind: "run", at: t + 1, n, high: true };
        break;
      case 4:
        c.pend = { kind: "run", at: t + 1, n, high: true };
        break;
      case 2:
      case 3: {
        const cur = c.cur;
        if (cur.kind === "idle") {
          c.pend = { kind: "run", at: t + 1, n, high: true };
        } else {
          // Counting: the new count takes over at the end of the period (mode 2)
          // or of the half-cycle (mode 3), i.e. at the next OUT change after
          // the current pulse (mode 2's next change may be the fall to low; its
          // period ends one pulse later).
          let at = segNext(c, cur, t)!;
          if (md === 2 && !segOut(c, cur, at)) at += 1;
          c.pend = { kind: "run", at, n, high: segOut(c, cur, at) };
        }
        break;
      }
      default:
        // Modes 1 and 5 wait for a gate trigger that never comes (gate tied high).
        break;
    }
  }
}
