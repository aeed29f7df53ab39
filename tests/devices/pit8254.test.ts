// The 8254 driven through its ports with a fake guest clock. Expected edges
// and counts are computed here from the Intel 8254 datasheet's mode rules:
//  - a count written at some moment is loaded into the counter on the next
//    CLK pulse (that pulse does not decrement it);
//  - mode 0: OUT low from the count write, high when the count reaches 0,
//    i.e. N + 1 pulses after the write;
//  - mode 2: OUT goes low for one pulse when the count reaches 1, then the
//    count reloads and OUT goes high: a period of N pulses;
//  - mode 3: high for ceil(N/2) pulses, low for floor(N/2), period N; the
//    counter takes 2 per pulse from N (even N) or N - 1 (odd N);
//  - mode 4: OUT high; low for one pulse when the count reaches 0.
// Time: the 1,193,182 Hz input clock's pulse p happens at guest time
// ceil(p * 1e9 / 1193182) ns (pulse 0 at time 0).

import { describe, expect, it } from "vitest";
import { Pit8254 } from "../../host/devices/pit8254.js";

const HZ = 1193182n;
const E9 = 1_000_000_000n;
/** Pulses that have happened by time ns. */
const pulsesAt = (ns: number) => Number((BigInt(Math.floor(ns)) * HZ) / E9);
/** The time of pulse p. */
const pulseTime = (p: number) => Number((BigInt(p) * E9 + HZ - 1n) / HZ);

type Edge = [pulse: number, high: boolean];

function rig(startNs = 0) {
  const clock = { t: startNs, nowNs() { return this.t; } };
  const edges: Edge[] = [];
  const irq = {
    raise: () => edges.push([pulsesAt(clock.t), true]),
    lower: () => edges.push([pulsesAt(clock.t), false]),
  };
  const pit = new Pit8254({ clock, irq });
  const out = (port: number, v: number) => pit.write(port, 1, v);
  const inb = (port: number) => pit.read(port, 1);
  /** Follows nextEventNs() like the machine would, up to time endNs. */
  const runTo = (endNs: number) => {
    for (;;) {
      const e = pit.nextEventNs();
      if (e === null || e > endNs) break;
      expect(e).toBeGreaterThanOrEqual(clock.t);
      clock.t = e;
      pit.advance(e);
    }
    clock.t = endNs;
    pit.advance(endNs);
  };
  /** Latches channel ch and reads LSB, MSB (rw 3). */
  const latchRead = (ch: number) => {
    out(0x43, ch << 6);
    const lo = inb(0x40 + ch);
    return lo | (inb(0x40 + ch) << 8);
  };
  /** Programs channel ch: control word, then the 16-bit count LSB first. */
  const program = (ch: number, control: number, n: number) => {
    out(0x43, control);
    out(0x40 + ch, n & 0xff);
    out(0x40 + ch, (n >> 8) & 0xff);
    return pulsesAt(clock.t) + 1; // the load pulse
  };
  return { clock, edges, pit, out, inb, runTo, latchRead, program };
}

/** Mode 2 edges for count N loaded at pulse L, up to pulse end. */
function mode2Edges(L: number, N: number, end: number): Edge[] {
  const e: Edge[] = [];
  for (let k = 1; L + k * N - 1 <= end; k++) e.push([L + k * N - 1, false], [L + k * N, true]);
  return e.filter(([p]) => p <= end);
}

/** Mode 3 edges for count N loaded at pulse L starting high, up to pulse end. */
function mode3Edges(L: number, N: number, end: number, startHigh = true): Edge[] {
  const e: Edge[] = [];
  const first = startHigh ? Math.ceil(N / 2) : Math.floor(N / 2);
  for (let k = 0; L + k * N <= end; k++) e.push([L + k * N + first, !startHigh], [L + (k + 1) * N, startHigh]);
  return e.filter(([p]) => p <= end);
}

const T_WRITE = 12_345; // a time between two pulses

describe("8254: mode 2 (rate generator) on channel 0", () => {
  for (const N of [2, 3, 1193, 11932, 65536]) {
    it(`divisor ${N}: low for one pulse every ${N} pulses`, () => {
      const r = rig(T_WRITE);
      r.edges.length = 0;
      const L = r.program(0, 0x34, N);
      const end = L + 5 * N + 1;
      r.runTo(pulseTime(end));
      expect(r.edges).toEqual(mode2Edges(L, N, end));
    });
  }

  it("counts down N, N-1, ... 1 and reloads", () => {
    const r = rig(T_WRITE);
    const N = 1000;
    const L = r.program(0, 0x34, N);
    for (const j of [0, 1, 2, 500, 998, 999, 1000, 1001, 2999]) {
      r.runTo(pulseTime(L + j) + 300); // between pulses L+j and L+j+1
      expect(r.latchRead(0)).toBe(N - (j % N));
    }
  });

  it("a count of 0 means 65536 (reads as 0 right after the reload)", () => {
    const r = rig(T_WRITE);
    const L = r.program(0, 0x34, 0);
    r.runTo(pulseTime(L) + 1);
    expect(r.latchRead(0)).toBe(0);
    r.runTo(pulseTime(L + 1) + 1);
    expect(r.latchRead(0)).toBe(65535);
  });

  it("nextEventNs is the exact time of the next OUT change; advancing short of it changes nothing", () => {
    const r = rig(T_WRITE);
    r.edges.length = 0;
    const L = r.program(0, 0x34, 100);
    expect(r.pit.nextEventNs()).toBe(pulseTime(L + 99));
    r.clock.t = pulseTime(L + 99) - 1;
    r.pit.advance(r.clock.t);
    expect(r.edges).toEqual([]);
    expect(r.pit.nextEventNs()).toBe(pulseTime(L + 99));
  });

  it("a new count written while counting takes over at the end of the current period", () => {
    const r = rig(T_WRITE);
    r.edges.length = 0;
    const L = r.program(0, 0x34, 100);
    r.runTo(pulseTime(L + 150) + 10);
    r.out(0x40, 40);
    r.out(0x40, 0);
    r.runTo(pulseTime(L + 200 + 40 * 3));
    expect(r.edges).toEqual([...mode2Edges(L, 100, L + 200), ...mode2Edges(L + 200, 40, L + 320)]);
    // Before the reload the old count is still running.
    const r2 = rig(T_WRITE);
    const L2 = r2.program(0, 0x34, 100);
    r2.runTo(pulseTime(L2 + 150) + 10);
    r2.out(0x40, 40);
    r2.out(0x40, 0);
    r2.runTo(pulseTime(L2 + 160) + 10);
    expect(r2.latchRead(0)).toBe(100 - 60);
    r2.runTo(pulseTime(L2 + 205) + 10);
    expect(r2.latchRead(0)).toBe(40 - 5);
  });

  it("catching up over many periods at once gives one rising edge and the right final level", () => {
    const r = rig(T_WRITE);
    const L = r.program(0, 0x34, 100);
    r.edges.length = 0;
    r.clock.t = pulseTime(L + 1050);
    r.pit.advance(r.clock.t);
    expect(r.edges.map(([, h]) => h)).toEqual([false, true]);
    r.edges.length = 0;
    r.clock.t = pulseTime(L + 1099); // the one low pulse
    r.pit.advance(r.clock.t);
    expect(r.edges.map(([, h]) => h)).toEqual([false]);
  });
});

describe("8254: mode 3 (square wave)", () => {
  for (const N of [2, 3, 1000, 1001, 65536]) {
    it(`divisor ${N}: high ${Math.ceil(N / 2)} pulses, low ${Math.floor(N / 2)}`, () => {
      const r = rig(T_WRITE);
      r.edges.length = 0;
      const L = r.program(0, 0x36, N);
      const end = L + 4 * N;
      r.runTo(pulseTime(end));
      expect(r.edges).toEqual(mode3Edges(L, N, end));
    });
  }

  it("even count: takes 2 per pulse from N in each half", () => {
    const r = rig(T_WRITE);
    const N = 1000;
    const L = r.program(0, 0x36, N);
    for (const j of [0, 1, 100, 499, 500, 501, 999, 1000]) {
      r.runTo(pulseTime(L + j) + 300);
      const k = j % N < N / 2 ? j % N : j % N - N / 2;
      expect(r.latchRead(0)).toBe(N - 2 * k);
    }
  });

  it("odd count: takes 2 per pulse from N-1; the high half is one pulse longer", () => {
    const r = rig(T_WRITE);
    const N = 1001;
    const L = r.program(0, 0x36, N);
    const H = (N + 1) / 2;
    for (const j of [0, 1, 499, 500, 501, 502, 1000, 1001]) {
      r.runTo(pulseTime(L + j) + 300);
      const q = j % N;
      const k = q < H ? q : q - H;
      expect(r.latchRead(0)).toBe(N - 1 - 2 * k);
    }
  });

  it("a new count written while counting takes over at the end of the current half-cycle", () => {
    const r = rig(T_WRITE);
    r.edges.length = 0;
    const L = r.program(0, 0x36, 100);
    r.runTo(pulseTime(L + 20) + 5); // in the high half
    r.out(0x40, 60);
    r.out(0x40, 0);
    r.runTo(pulseTime(L + 50 + 2 * 60));
    // The high half of 50 completes; the new count starts with a low half of 30.
    expect(r.edges).toEqual([[L + 50, false], ...mode3Edges(L + 50, 60, L + 170, false)]);
  });

  it("catching up into a low half: lower, raise, lower", () => {
    const r = rig(T_WRITE);
    const L = r.program(0, 0x36, 100);
    r.edges.length = 0;
    r.clock.t = pulseTime(L + 777);
    r.pit.advance(r.clock.t);
    expect(r.edges.map(([, h]) => h)).toEqual([false, true, false]);
  });
});

describe("8254: one-shot modes", () => {
  it("mode 0: OUT low at the write, high N+1 pulses later, then no more events; the count wraps", () => {
    const r = rig(T_WRITE);
    r.edges.length = 0;
    const N = 500;
    const L = r.program(0, 0x30, N);
    expect(r.edges).toEqual([[L - 1, false]]); // low at once
    r.runTo(pulseTime(L + N + 100));
    expect(r.edges).toEqual([[L - 1, false], [L + N, true]]);
    expect(r.pit.nextEventNs()).toBeNull();
    r.runTo(pulseTime(L + N + 110) + 1);
    expect(r.latchRead(0)).toBe(65536 - 110); // N - (N + 110), modulo 2^16
  });

  it("mode 0: count values before terminal count", () => {
    const r = rig(T_WRITE);
    const L = r.program(0, 0x30, 300);
    r.runTo(pulseTime(L) + 1);
    expect(r.latchRead(0)).toBe(300);
    r.runTo(pulseTime(L + 299) + 1);
    expect(r.latchRead(0)).toBe(1);
    r.runTo(pulseTime(L + 300) + 1);
    expect(r.latchRead(0)).toBe(0);
  });

  it("mode 0: writing the first byte of a new count stops counting and drops OUT", () => {
    const r = rig(T_WRITE);
    const L = r.program(0, 0x30, 50);
    r.runTo(pulseTime(L + 60)); // OUT high
    r.edges.length = 0;
    r.out(0x40, 100); // LSB only so far
    expect(r.edges.map(([, h]) => h)).toEqual([false]);
    const frozen = r.latchRead(0);
    r.runTo(pulseTime(L + 500));
    expect(r.latchRead(0)).toBe(frozen);
    expect(r.pit.nextEventNs()).toBeNull();
    r.out(0x40, 0); // MSB: count 100 loads on the next pulse
    const L2 = pulsesAt(r.clock.t) + 1;
    r.runTo(pulseTime(L2 + 200));
    expect(r.edges).toEqual([[L + 60, false], [L2 + 100, true]]);
  });

  it("mode 4: one low pulse when the count reaches 0", () => {
    const r = rig(T_WRITE);
    r.edges.length = 0;
    const N = 1234;
    const L = r.program(0, 0x38, N);
    r.runTo(pulseTime(L + 3 * N));
    expect(r.edges).toEqual([[L + N, false], [L + N + 1, true]]);
    expect(r.pit.nextEventNs()).toBeNull();
  });

  it("modes 1 and 5 wait for a gate edge that never comes: OUT stays high, the count does not move", () => {
    for (const control of [0x32, 0x3a]) {
      const r = rig(T_WRITE);
      r.program(0, 0x34, 100);
      r.runTo(pulseTime(1000) + 3);
      const before = r.latchRead(0);
      r.edges.length = 0;
      r.program(0, control, 77);
      r.runTo(pulseTime(5000));
      expect(r.edges).toEqual([]);
      expect(r.pit.nextEventNs()).toBeNull();
      expect(r.latchRead(0)).toBe(before);
      expect(r.pit.output(0)).toBe(true);
    }
  });

  it("a control word resets OUT at once (low for mode 0, high for the others)", () => {
    const r = rig(T_WRITE);
    r.program(0, 0x34, 100);
    r.edges.length = 0;
    r.runTo(pulseTime(2000) + 1);
    r.edges.length = 0;
    r.out(0x43, 0x30);
    expect(r.edges).toEqual([[2000, false]]);
    r.out(0x43, 0x34);
    expect(r.edges).toEqual([[2000, false], [2000, true]]);
  });
});

describe("8254: reading", () => {
  it("a latched count is held until read; a second latch before the read is ignored", () => {
    const r = rig(T_WRITE);
    const L = r.program(0, 0x34, 1000);
    r.runTo(pulseTime(L + 10) + 1);
    r.out(0x43, 0x00);
    r.runTo(pulseTime(L + 20) + 1);
    r.out(0x43, 0x00);
    r.runTo(pulseTime(L + 500) + 1);
    expect(r.inb(0x40) | (r.inb(0x40) << 8)).toBe(990);
    expect(r.latchRead(0)).toBe(500);
  });

  it("without a latch, LSB then MSB read the live count (the flip-flop toggles)", () => {
    const r = rig(T_WRITE);
    const L = r.program(0, 0x34, 0x1234);
    r.runTo(pulseTime(L + 0x10) + 1);
    expect(r.inb(0x40)).toBe(0x24);
    r.runTo(pulseTime(L + 0x110) + 1);
    expect(r.inb(0x40)).toBe(0x11);
    expect(r.inb(0x40)).toBe(0x24); // LSB again
  });

  it("LSB-only and MSB-only access", () => {
    const r = rig(T_WRITE);
    r.out(0x43, 0x14); // ch0, LSB only, mode 2
    r.out(0x40, 0x80); // N = 128
    const L = pulsesAt(r.clock.t) + 1;
    r.runTo(pulseTime(L + 5) + 1);
    expect(r.inb(0x40)).toBe(123);
    expect(r.inb(0x40)).toBe(123);
    r.out(0x43, 0x24); // ch0, MSB only, mode 2
    r.out(0x40, 0x02); // N = 0x200
    const L2 = pulsesAt(r.clock.t) + 1;
    r.runTo(pulseTime(L2 + 0x100) + 1);
    expect(r.inb(0x40)).toBe(0x01);
    r.runTo(pulseTime(L2 + 0x1ff) + 1);
    r.out(0x43, 0x00); // latch count 1: MSB-only reads give the latched MSB, once
    r.runTo(pulseTime(L2 + 0x250) + 1);
    expect(r.inb(0x40)).toBe(0x00);
    expect(r.inb(0x40)).toBe((0x200 - 0x50) >> 8);
  });

  it("read-back: status (OUT, NULL COUNT, RW, mode, BCD) first, then the count", () => {
    const r = rig(T_WRITE);
    r.out(0x43, 0x34); // ch0, LSB+MSB, mode 2, binary
    r.out(0x43, 0xe2); // read-back status of ch0
    expect(r.inb(0x40)).toBe(0x80 | 0x40 | 0x30 | (2 << 1)); // OUT high, no count yet
    r.out(0x40, 100);
    r.out(0x40, 0);
    r.out(0x43, 0xe2);
    expect(r.inb(0x40) & 0x40).toBe(0x40); // written, not loaded until the next pulse
    const L = pulsesAt(r.clock.t) + 1;
    r.runTo(pulseTime(L + 99) + 1); // the low pulse
    r.out(0x43, 0xc2); // status and count of ch0
    expect(r.inb(0x40)).toBe(0x00 | 0x30 | (2 << 1));
    expect(r.inb(0x40) | (r.inb(0x40) << 8)).toBe(1);
    // Channel 2 through the read-back, channel 0 untouched.
    r.program(2, 0xb7, 0x0500); // ch2, LSB+MSB, mode 3, BCD
    r.out(0x43, 0xe8);
    expect(r.inb(0x42)).toBe(0x80 | 0x40 | 0x30 | (3 << 1) | 1);
  });

  it("the control register reads as 0xFF", () => {
    const r = rig();
    expect(r.inb(0x43)).toBe(0xff);
  });

  it("BCD counting: count 1000 (written 0x1000) has a 1000-pulse period and reads in BCD", () => {
    const r = rig(T_WRITE);
    r.edges.length = 0;
    const L = r.program(0, 0x35, 0x1000);
    r.runTo(pulseTime(L + 1) + 1);
    expect(r.latchRead(0)).toBe(0x0999);
    r.runTo(pulseTime(L + 1000 - 1 - 12) + 1);
    expect(r.latchRead(0)).toBe(0x0013);
    r.edges.length = 0;
    r.runTo(pulseTime(L + 3000));
    expect(r.edges).toEqual(mode2Edges(L, 1000, L + 3000).filter(([p]) => p > L + 987));
  });
});

describe("8254: channels 1 and 2, power-on", () => {
  it("channel 2 counts and its OUT is visible through output(2); it does not drive IRQ 0", () => {
    const r = rig(T_WRITE);
    r.edges.length = 0;
    const N = 1193;
    const L = r.program(2, 0xb6, N);
    r.runTo(pulseTime(L + 10) + 1);
    expect(r.latchRead(2)).toBe(N - 1 - 20);
    expect(r.pit.output(2)).toBe(true);
    r.runTo(pulseTime(L + (N + 1) / 2) + 1);
    expect(r.pit.output(2)).toBe(false);
    expect(r.edges).toEqual([]);
  });

  it("channel 1 can be programmed and read", () => {
    const r = rig(T_WRITE);
    const L = r.program(1, 0x74, 18);
    r.runTo(pulseTime(L + 5) + 1);
    expect(r.latchRead(1)).toBe(13);
  });

  it("starts like a PC after the BIOS: mode 3, count 65536, counting from construction", () => {
    const r = rig(0);
    expect(r.edges).toEqual([[0, true]]);
    r.runTo(pulseTime(65536 * 2));
    expect(r.edges).toEqual([[0, true], ...mode3Edges(0, 65536, 65536 * 2)]);
  });
});

describe("8254: snapshots", () => {
  it("save -> JSON -> load -> continue gives the same edges and reads", () => {
    const a = rig(T_WRITE);
    const L = a.program(0, 0x36, 1001);
    a.program(2, 0xb4, 300);
    a.runTo(pulseTime(L + 1700) + 17);
    a.out(0x40, 0x10); // a pending count change (mode 3, end of half-cycle)
    a.out(0x40, 0x02);
    a.out(0x43, 0x80); // latch ch2, read only the LSB
    a.inb(0x42);
    const json = JSON.stringify(a.pit.saveState());
    const b = rig(a.clock.t);
    b.pit.loadState(JSON.parse(json));
    expect(b.pit.saveState()).toEqual(a.pit.saveState());
    a.edges.length = 0;
    b.edges.length = 0;
    const reads = (r: ReturnType<typeof rig>) => {
      const v = [r.inb(0x42), r.inb(0x42)];
      for (const p of [L + 1800, L + 2400, L + 3100]) {
        r.runTo(pulseTime(p) + 5);
        v.push(r.latchRead(0), r.latchRead(2));
      }
      r.runTo(pulseTime(L + 9000));
      return v;
    };
    expect(reads(b)).toEqual(reads(a));
    expect(b.edges).toEqual(a.edges);
    expect(b.edges.length).toBeGreaterThan(10);
  });

  it("loadState does not drive the line and rejects malformed state", () => {
    const a = rig(T_WRITE);
    a.program(0, 0x30, 10);
    const b = rig(0);
    b.edges.length = 0;
    b.pit.loadState(a.pit.saveState());
    expect(b.edges).toEqual([]);
    expect(() => b.pit.loadState({ channels: [] })).toThrow(TypeError);
  });
});
