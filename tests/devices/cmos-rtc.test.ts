// The MC146818 RTC/CMOS through ports 0x70/0x71, with a fake wall clock.
// Expected dates come from JavaScript's own UTC calendar (Date's getUTC*
// methods), which the device does not use; the register encodings follow
// the MC146818 datasheet (BCD or binary per register B bit 2; 12-hour mode
// per bit 1 = 0, with bit 7 of the hours byte meaning PM; day of week 1 =
// Sunday) and the PC convention of the century byte at 0x32.

import { describe, expect, it } from "vitest";
import { CmosRtc } from "../../host/devices/cmos-rtc.js";

const SEC = 0x00, MIN = 0x02, HOUR = 0x04, DOW = 0x06, DAY = 0x07, MONTH = 0x08, YEAR = 0x09, A = 0x0a, B = 0x0b, C = 0x0c, D = 0x0d, CENTURY = 0x32;

const bcd = (v: number) => (Math.floor(v / 10) << 4) | (v % 10);

function rig(ms: number, memoryBytes?: number) {
  const wall = { ms, epochMs() { return this.ms; } };
  const rtc = new CmosRtc({ wallClock: wall, memoryBytes });
  const get = (reg: number) => { rtc.write(0x70, 1, reg); return rtc.read(0x71, 1); };
  const set = (reg: number, v: number) => { rtc.write(0x70, 1, reg); rtc.write(0x71, 1, v); };
  return { wall, rtc, get, set };
}

/** The registers a guest would read for UTC time ms, per the datasheet formats. */
function expected(ms: number, binary: boolean, h24: boolean) {
  const d = new Date(ms);
  const enc = binary ? (v: number) => v : bcd;
  const h = d.getUTCHours();
  return {
    [SEC]: enc(d.getUTCSeconds()),
    [MIN]: enc(d.getUTCMinutes()),
    [HOUR]: h24 ? enc(h) : enc(h % 12 === 0 ? 12 : h % 12) | (h >= 12 ? 0x80 : 0),
    [DOW]: enc(d.getUTCDay() + 1),
    [DAY]: enc(d.getUTCDate()),
    [MONTH]: enc(d.getUTCMonth() + 1),
    [YEAR]: enc(d.getUTCFullYear() % 100),
    [CENTURY]: enc(Math.floor(d.getUTCFullYear() / 100)),
  };
}

function readTime(get: (r: number) => number) {
  return Object.fromEntries([SEC, MIN, HOUR, DOW, DAY, MONTH, YEAR, CENTURY].map((r) => [r, get(r)]));
}

const INSTANTS = [
  "1970-01-01T00:00:00.000Z",
  "1999-12-31T23:59:59.999Z",
  "2000-02-29T12:00:00.000Z",
  "2000-03-01T00:00:00.500Z",
  "2024-02-29T13:45:30.250Z",
  "2038-01-19T03:14:08.000Z",
  "2099-12-31T23:59:59.000Z",
  "2100-02-28T11:11:11.000Z",
  "2100-03-01T00:00:00.000Z",
  "2400-02-29T07:00:00.000Z",
].map((s) => Date.parse(s));

describe("MC146818: reading the time", () => {
  it("defaults to BCD, 24-hour, with the right date across leap years and centuries", () => {
    for (const ms of INSTANTS) {
      const r = rig(ms);
      expect(r.get(B)).toBe(0x02);
      expect(readTime(r.get)).toEqual(expected(ms, false, true));
    }
  });

  it("binary mode (register B bit 2)", () => {
    for (const ms of INSTANTS) {
      const r = rig(ms);
      r.set(B, 0x06);
      expect(readTime(r.get)).toEqual(expected(ms, true, true));
    }
  });

  it("12-hour mode (register B bit 1 clear), BCD and binary, around midnight and noon", () => {
    for (const hour of [0, 1, 11, 12, 13, 23]) {
      const ms = Date.UTC(2023, 6, 14, hour, 5, 6);
      for (const binary of [false, true]) {
        const r = rig(ms);
        r.set(B, binary ? 0x04 : 0x00);
        expect(readTime(r.get)).toEqual(expected(ms, binary, false));
      }
    }
  });

  it("follows the wall clock at each read", () => {
    const t0 = Date.UTC(2024, 11, 31, 23, 59, 58, 900);
    const r = rig(t0);
    for (const dt of [0, 99, 100, 1100, 61_000, 86_400_000 * 40]) {
      r.wall.ms = t0 + dt;
      expect(readTime(r.get)).toEqual(expected(t0 + dt, false, true));
    }
  });

  it("ignores the NMI-disable bit of the index (but reports it); port 0x70 reads 0xFF", () => {
    const ms = Date.UTC(2024, 0, 2, 3, 4, 5);
    const r = rig(ms);
    r.rtc.write(0x70, 1, 0x80 | SEC);
    expect(r.rtc.read(0x71, 1)).toBe(0x05);
    expect(r.rtc.nmiDisabled).toBe(true);
    r.rtc.write(0x70, 1, MIN);
    expect(r.rtc.nmiDisabled).toBe(false);
    expect(r.rtc.read(0x70, 1)).toBe(0xff);
  });
});

describe("MC146818: setting the time", () => {
  it("SET freezes the registers; the guest writes them; clearing SET runs the clock from there", () => {
    const t0 = Date.UTC(2024, 4, 5, 6, 7, 8, 250);
    const r = rig(t0);
    r.set(B, 0x82); // SET, BCD, 24h
    r.wall.ms += 5000;
    expect(r.get(SEC)).toBe(0x08); // frozen
    // 2031-11-22 21:30:45, a Saturday (day of week 7).
    r.set(SEC, 0x45); r.set(MIN, 0x30); r.set(HOUR, 0x21); r.set(DOW, 0x07);
    r.set(DAY, 0x22); r.set(MONTH, 0x11); r.set(YEAR, 0x31); r.set(CENTURY, 0x20);
    r.wall.ms += 5000;
    expect(r.get(SEC)).toBe(0x45);
    r.set(B, 0x02);
    const set = Date.UTC(2031, 10, 22, 21, 30, 45);
    expect(readTime(r.get)).toEqual(expected(set, false, true));
    // The divider kept its phase (.250 into the second): 750 ms later is the next second.
    r.wall.ms += 749;
    expect(r.get(SEC)).toBe(0x45);
    r.wall.ms += 1;
    expect(r.get(SEC)).toBe(0x46);
    r.wall.ms += 3 * 86_400_000;
    expect(readTime(r.get)).toEqual(expected(set + 1000 + 3 * 86_400_000, false, true));
  });

  it("time written in binary 12-hour mode reads back in BCD 24-hour mode", () => {
    const r = rig(Date.UTC(2020, 0, 1));
    r.set(B, 0x80 | 0x04); // SET, binary, 12h
    r.set(HOUR, 0x80 | 11); // 11 PM
    r.set(MIN, 59); r.set(SEC, 30); r.set(DAY, 28); r.set(MONTH, 2); r.set(YEAR, 96); r.set(CENTURY, 19); r.set(DOW, 4);
    r.set(B, 0x04);
    r.set(B, 0x02);
    expect(readTime(r.get)).toEqual(expected(Date.UTC(1996, 1, 28, 23, 59, 30), false, true));
  });

  it("a field written while the clock runs changes only that field", () => {
    const t0 = Date.UTC(2024, 1, 29, 13, 45, 30, 600);
    const r = rig(t0);
    r.set(MIN, 0x07);
    expect(readTime(r.get)).toEqual(expected(Date.UTC(2024, 1, 29, 13, 7, 30), false, true));
    r.set(YEAR, 0x25); // 2025-02-29 does not exist: the date rolls over to March 1
    // (the day-of-week counter is not touched by a date write: still Thursday, 5)
    expect(readTime(r.get)).toEqual({ ...expected(Date.UTC(2025, 2, 1, 13, 7, 30), false, true), [DOW]: 5 });
    r.wall.ms += 400;
    expect(r.get(SEC)).toBe(0x31);
  });

  it("the day of week is its own counter: set independently, kept across date writes, advanced at midnight", () => {
    const t0 = Date.UTC(2024, 1, 29, 23, 59, 59); // a Thursday (5)
    const r = rig(t0);
    expect(r.get(DOW)).toBe(5);
    r.set(DOW, 1);
    expect(r.get(DOW)).toBe(1);
    expect(r.get(DAY)).toBe(0x29);
    r.set(DAY, 0x10);
    expect(r.get(DOW)).toBe(1);
    r.wall.ms += 1000;
    expect(r.get(DOW)).toBe(2);
    expect(r.get(DAY)).toBe(0x11);
  });
});

describe("MC146818: status and control registers", () => {
  it("register A: UIP is set during the last 2 ms of each second, never while SET; bit 7 is read-only", () => {
    const t = Date.UTC(2024, 0, 1, 0, 0, 10);
    const r = rig(t - 3);
    expect(r.get(A)).toBe(0x26);
    r.wall.ms = t - 2;
    expect(r.get(A)).toBe(0xa6);
    r.wall.ms = t - 1;
    expect(r.get(A)).toBe(0xa6);
    r.wall.ms = t;
    expect(r.get(A)).toBe(0x26);
    r.wall.ms = t - 1;
    r.set(B, 0x82);
    expect(r.get(A)).toBe(0x26);
    r.set(B, 0x02);
    r.wall.ms = t + 500;
    r.set(A, 0xa7);
    expect(r.get(A)).toBe(0x27);
  });

  it("register C: the update-ended flag is set once per second passed, cleared by reading; IRQF if UIE", () => {
    const t = Date.UTC(2024, 0, 1, 0, 0, 10, 300);
    const r = rig(t);
    expect(r.get(C)).toBe(0x10); // the clock has been running
    expect(r.get(C)).toBe(0x00);
    r.wall.ms += 699;
    expect(r.get(C)).toBe(0x00);
    r.wall.ms += 1;
    expect(r.get(C)).toBe(0x10);
    r.set(B, 0x12); // UIE
    r.wall.ms += 5000;
    expect(r.get(C)).toBe(0x90);
    r.set(C, 0xff); // read-only
    expect(r.get(C)).toBe(0x00);
  });

  it("register D reads 0x80 (valid RAM and time) whatever is written", () => {
    const r = rig(0);
    expect(r.get(D)).toBe(0x80);
    r.set(D, 0x00);
    expect(r.get(D)).toBe(0x80);
  });

  it("enabling the periodic, alarm and update interrupts is accepted (they are not generated)", () => {
    const t = Date.UTC(2024, 0, 1, 12, 0, 0);
    const r = rig(t);
    r.set(A, 0x23);
    r.set(B, 0x72);
    r.wall.ms += 10_000;
    expect(r.get(B)).toBe(0x72);
    expect(readTime(r.get)).toEqual(expected(t + 10_000, false, true));
  });

  it("alarm registers and the rest of the 128 bytes are plain RAM", () => {
    const r = rig(0);
    const regs = [0x01, 0x03, 0x05];
    for (let i = 0x0e; i < 0x80; i++) if (i !== CENTURY) regs.push(i);
    for (const i of regs) r.set(i, (i * 7 + 3) & 0xff);
    for (const i of regs) expect(r.get(i)).toBe((i * 7 + 3) & 0xff);
    r.set(0x80 | 0x40, 0x99); // index bit 7 is not part of the address
    expect(r.get(0x40)).toBe(0x99);
  });
});

describe("MC146818: memory size bytes", () => {
  const word = (get: (r: number) => number, lo: number) => get(lo) | (get(lo + 1) << 8);
  const checksum = (get: (r: number) => number) => {
    let s = 0;
    for (let i = 0x10; i <= 0x2d; i++) s += get(i);
    return s & 0xffff;
  };

  for (const [label, bytes, base, ext, above16] of [
    ["512 KiB", 512 * 1024, 512, 0, 0],
    ["16 MiB", 16 << 20, 640, 15 * 1024, 0],
    ["32 MiB", 32 << 20, 640, 31 * 1024, (16 << 20) / 65536],
    ["128 MiB", 128 << 20, 640, 0xffff, (112 << 20) / 65536],
  ] as const) {
    it(`${label}: base KiB at 0x15, KiB above 1 MiB at 0x17 and 0x30, 64 KiB blocks above 16 MiB at 0x34`, () => {
      const r = rig(0, bytes);
      expect(word(r.get, 0x15)).toBe(base);
      expect(word(r.get, 0x17)).toBe(ext);
      expect(word(r.get, 0x30)).toBe(ext);
      expect(word(r.get, 0x34)).toBe(above16);
      expect((r.get(0x2e) << 8) | r.get(0x2f)).toBe(checksum(r.get));
    });
  }
});

describe("MC146818: snapshots", () => {
  it("save -> JSON -> load -> continue reads the same", () => {
    const t0 = Date.UTC(2024, 5, 6, 7, 8, 9, 10);
    const a = rig(t0, 64 << 20);
    a.set(MIN, 0x33); // an offset from the wall clock
    a.set(DOW, 3);
    a.set(0x50, 0xaa);
    a.get(C);
    a.set(B, 0x86); // SET in binary mode: frozen
    a.set(HOUR, 5);
    a.rtc.write(0x70, 1, 0x80 | DAY); // index and NMI bit selected
    const b = rig(a.wall.ms);
    b.rtc.loadState(JSON.parse(JSON.stringify(a.rtc.saveState())));
    expect(b.rtc.saveState()).toEqual(a.rtc.saveState());
    const script = (r: ReturnType<typeof rig>) => {
      const v: number[] = [r.rtc.read(0x71, 1), r.rtc.nmiDisabled ? 1 : 0];
      r.wall.ms += 2500;
      v.push(...Object.values(readTime(r.get)));
      r.set(B, 0x06);
      r.wall.ms += 123_456;
      v.push(...Object.values(readTime(r.get)), r.get(C), r.get(A), r.get(0x50), r.get(0x15));
      return v;
    };
    expect(script(b)).toEqual(script(a));
  });

  it("rejects malformed state", () => {
    const r = rig(0);
    expect(() => r.rtc.loadState({ ram: [1, 2, 3] })).toThrow(TypeError);
  });
});
