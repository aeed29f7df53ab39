// The 16550A driven as a serial driver drives it (register offsets, bits and
// interrupt priorities from the PC16550D datasheet), with a fake IRQ line and
// a fake guest clock.

import { describe, expect, it } from "vitest";
import { Uart16550 } from "../../host/devices/uart16550.js";

const BASE = 0x3f8;
const RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

// IIR identification values (bits 3-0) from the datasheet's table.
const NO_INT = 0x01, ID_RLS = 0x06, ID_RDA = 0x04, ID_CTI = 0x0c, ID_THRE = 0x02, ID_MSR = 0x00;
const FIFO_BITS = 0xc0;

function rig(opts: { base?: number } = {}) {
  const clock = { t: 1_000_000, nowNs() { return this.t; } };
  const irqLog: boolean[] = [];
  let level = false;
  const irq = {
    raise: () => { level = true; irqLog.push(true); },
    lower: () => { level = false; irqLog.push(false); },
  };
  const sent: number[] = [];
  const base = opts.base ?? BASE;
  const uart = new Uart16550({ clock, irq, onTransmit: (b) => sent.push(b), base });
  const out = (reg: number, v: number) => uart.write(base + reg, 1, v);
  const inb = (reg: number) => uart.read(base + reg, 1);
  return { clock, uart, out, inb, sent, irqLog, irqHigh: () => level };
}

/** A typical driver bring-up: divisor, 8N1, FIFOs with the given trigger bits, DTR|RTS|OUT2. */
function init(r: ReturnType<typeof rig>, divisor = 1, fcr = 0xc7, lcr = 0x03) {
  r.out(LCR, 0x80);
  r.out(DLL, divisor & 0xff);
  r.out(DLM, divisor >> 8);
  r.out(LCR, lcr);
  r.out(FCR, fcr);
  r.out(MCR, 0x0b);
}

describe("16550A: registers", () => {
  it("has the datasheet's reset values", () => {
    const r = rig();
    expect(r.inb(IER)).toBe(0);
    expect(r.inb(IIR)).toBe(NO_INT);
    expect(r.inb(LCR)).toBe(0);
    expect(r.inb(MCR)).toBe(0);
    expect(r.inb(LSR)).toBe(0x60); // THRE | TEMT
    expect(r.irqHigh()).toBe(false);
  });

  it("DLAB switches offsets 0/1 to the divisor latch", () => {
    const r = rig();
    init(r, 0x0180);
    r.out(LCR, 0x83);
    expect(r.inb(DLL)).toBe(0x80);
    expect(r.inb(DLM)).toBe(0x01);
    r.out(LCR, 0x03);
    expect(r.inb(IER)).toBe(0);
    expect(r.uart.divisor()).toBe(0x180);
  });

  it("scratch register holds a byte; LCR and MCR read back", () => {
    const r = rig();
    r.out(SCR, 0x5a);
    expect(r.inb(SCR)).toBe(0x5a);
    r.out(LCR, 0x1b);
    expect(r.inb(LCR)).toBe(0x1b);
    r.out(MCR, 0xff);
    expect(r.inb(MCR)).toBe(0x1f); // bits 7-5 are always 0
  });

  it("IIR bits 7-6 report the FIFOs enabled; FCR0=0 returns to 16450 mode", () => {
    const r = rig();
    init(r);
    expect(r.inb(IIR)).toBe(FIFO_BITS | NO_INT);
    r.out(FCR, 0x00);
    expect(r.inb(IIR)).toBe(NO_INT);
  });

  it("IER keeps bits 3-0 only", () => {
    const r = rig();
    r.out(IER, 0xff);
    expect(r.inb(IER)).toBe(0x0f);
  });

  it("works at another base (COM2)", () => {
    const r = rig({ base: 0x2f8 });
    expect(r.uart.ports).toEqual([[0x2f8, 0x300]]);
    r.out(SCR, 7);
    expect(r.inb(SCR)).toBe(7);
  });
});

describe("16550A: transmit", () => {
  it("bytes written to THR go out immediately; THRE and TEMT stay set", () => {
    const r = rig();
    init(r);
    for (const c of "hi\n") r.out(THR, c.charCodeAt(0));
    expect(r.sent).toEqual([0x68, 0x69, 0x0a]);
    expect(r.inb(LSR) & 0x60).toBe(0x60);
  });

  it("enabling ETBEI with THR empty raises the THR-empty interrupt; reading IIR clears it", () => {
    const r = rig();
    init(r);
    r.out(IER, 0x02);
    expect(r.irqHigh()).toBe(true);
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_THRE);
    expect(r.irqHigh()).toBe(false);
    expect(r.inb(IIR)).toBe(FIFO_BITS | NO_INT);
  });

  it("each THR write re-raises it (a new edge on the line)", () => {
    const r = rig();
    init(r);
    r.out(IER, 0x02);
    r.inb(IIR);
    r.irqLog.length = 0;
    r.out(THR, 0x41);
    expect(r.irqLog).toEqual([true]);
    r.out(THR, 0x42); // still pending: the write clears it, the instant send sets it again
    expect(r.irqLog).toEqual([true, false, true]);
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_THRE);
  });
});

describe("16550A: receive", () => {
  for (const [bits, level] of [[0x00, 1], [0x40, 4], [0x80, 8], [0xc0, 14]] as const) {
    it(`FIFO trigger level ${level}: the data-available interrupt comes at ${level} bytes`, () => {
      const r = rig();
      init(r, 1, 0x07 | bits);
      r.out(IER, 0x01);
      r.uart.receive(new Array(level - 1).fill(0x30));
      expect(r.irqHigh()).toBe(false);
      expect(r.inb(IIR)).toBe(FIFO_BITS | NO_INT);
      expect(r.inb(LSR) & 0x01).toBe(level > 1 ? 0x01 : 0); // DR
      r.uart.receive([0x31]);
      expect(r.irqHigh()).toBe(true);
      expect(r.inb(IIR)).toBe(FIFO_BITS | ID_RDA);
      const got = [r.inb(RBR)]; // below the trigger again
      expect(r.irqHigh()).toBe(false);
      while (r.inb(LSR) & 0x01) got.push(r.inb(RBR));
      expect(got).toEqual([...new Array(level - 1).fill(0x30), 0x31]);
    });
  }

  it("16 bytes fit; the 17th is lost and sets OE (line-status interrupt, which beats data-available)", () => {
    const r = rig();
    init(r, 1, 0xc7);
    r.out(IER, 0x05);
    const data = Array.from({ length: 17 }, (_, i) => 0x40 + i);
    expect(r.uart.rxSpace()).toBe(16);
    r.uart.receive(data);
    expect(r.uart.rxSpace()).toBe(0);
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_RLS);
    expect(r.inb(LSR)).toBe(0x60 | 0x02 | 0x01);
    expect(r.inb(LSR)).toBe(0x60 | 0x01); // OE cleared by the read
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_RDA);
    const got: number[] = [];
    while (r.inb(LSR) & 0x01) got.push(r.inb(RBR));
    expect(got).toEqual(data.slice(0, 16));
  });

  it("16450 mode: one holding register; a second byte overwrites it and sets OE", () => {
    const r = rig();
    init(r, 1, 0x00);
    r.out(IER, 0x01);
    r.uart.receive([0x11]);
    expect(r.inb(IIR)).toBe(ID_RDA); // any byte, no FIFO bits
    expect(r.uart.rxSpace()).toBe(0);
    r.uart.receive([0x22]);
    expect(r.inb(LSR)).toBe(0x60 | 0x02 | 0x01);
    expect(r.inb(RBR)).toBe(0x22);
    expect(r.inb(LSR)).toBe(0x60);
    expect(r.inb(IIR)).toBe(NO_INT);
  });

  it("RX FIFO reset empties the FIFO", () => {
    const r = rig();
    init(r);
    r.uart.receive([1, 2, 3]);
    r.out(FCR, 0xc3);
    expect(r.inb(LSR) & 0x01).toBe(0);
  });

  it("interrupts reach the line only with OUT2 set", () => {
    const r = rig();
    init(r);
    r.out(MCR, 0x03); // DTR|RTS, no OUT2
    r.out(IER, 0x01);
    r.uart.receive(new Array(14).fill(0));
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_RDA);
    expect(r.irqHigh()).toBe(false);
    r.out(MCR, 0x0b);
    expect(r.irqHigh()).toBe(true);
    r.out(IER, 0x00);
    expect(r.irqHigh()).toBe(false);
  });
});

describe("16550A: character timeout", () => {
  /** Four character times in ns: (start + data + parity + stop bits) / baud, baud = 1.8432 MHz / 16 / divisor. */
  const fourChars = (bitsPerChar: number, divisor: number) => Math.ceil((4 * bitsPerChar * 16 * divisor * 1e9) / 1_843_200);

  for (const [lcr, bits, divisor, label] of [
    [0x03, 10, 1, "8N1 at 115200"],
    [0x1e, 11, 12, "7E2 at 9600"],
    [0x0b, 11, 3, "8O1 at 38400"],
  ] as const) {
    it(`fires after four character times (${label}) when data sits below the trigger level`, () => {
      const r = rig();
      init(r, divisor, 0xc7, lcr);
      r.out(IER, 0x01);
      const t0 = r.clock.t;
      r.uart.receive([0x61, 0x62, 0x63]);
      const due = t0 + fourChars(bits, divisor);
      expect(r.uart.nextEventNs()).toBe(due);
      r.clock.t = due - 1;
      r.uart.advance(r.clock.t);
      expect(r.inb(IIR)).toBe(FIFO_BITS | NO_INT);
      r.clock.t = due;
      r.uart.advance(r.clock.t);
      expect(r.irqHigh()).toBe(true);
      expect(r.inb(IIR)).toBe(FIFO_BITS | ID_CTI);
      expect(r.uart.nextEventNs()).toBeNull();
      // Reading a character clears it and restarts the timer from the read.
      r.clock.t = due + 5000;
      expect(r.inb(RBR)).toBe(0x61);
      expect(r.irqHigh()).toBe(false);
      expect(r.uart.nextEventNs()).toBe(due + 5000 + fourChars(bits, divisor));
    });
  }

  it("an IIR read after the deadline shows the timeout even before advance() is called", () => {
    const r = rig();
    init(r);
    r.out(IER, 0x01);
    r.uart.receive([1]);
    r.clock.t += fourChars(10, 1) - 1;
    expect(r.inb(IIR)).toBe(FIFO_BITS | NO_INT);
    r.clock.t += 1;
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_CTI);
    expect(r.irqHigh()).toBe(true);
  });

  it("a new character restarts the timer; an empty FIFO or 16450 mode has none", () => {
    const r = rig();
    init(r);
    r.uart.receive([1]);
    r.clock.t += 100_000;
    r.uart.receive([2]);
    expect(r.uart.nextEventNs()).toBe(r.clock.t + fourChars(10, 1));
    r.inb(RBR);
    r.inb(RBR);
    expect(r.uart.nextEventNs()).toBeNull();
    r.out(FCR, 0);
    r.uart.receive([3]);
    expect(r.uart.nextEventNs()).toBeNull();
  });
});

describe("16550A: interrupt priorities", () => {
  it("line status > data available > THR empty > modem status, each cleared its own way", () => {
    const r = rig();
    init(r, 1, 0x07); // trigger 1
    r.uart.setModemInputs({ cts: false, dsr: true, ri: false, dcd: true }); // DCTS
    r.out(IER, 0x0f);
    r.uart.receive(new Array(17).fill(0x55)); // data + overrun
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_RLS);
    r.inb(LSR);
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_RDA);
    r.out(FCR, 0x03); // empty the receive FIFO (trigger 1)
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_THRE); // this read clears it
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_MSR);
    expect(r.irqHigh()).toBe(true);
    expect(r.inb(MSR) & 0x0f).toBe(0x01); // DCTS, cleared by the read
    expect(r.inb(IIR)).toBe(FIFO_BITS | NO_INT);
    expect(r.irqHigh()).toBe(false);
  });

  it("the character timeout ranks with data available, above THR empty", () => {
    const r = rig();
    init(r);
    r.out(IER, 0x03);
    r.uart.receive([9]);
    r.clock.t = r.uart.nextEventNs()!;
    r.uart.advance(r.clock.t);
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_CTI);
    r.inb(RBR);
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_THRE);
  });
});

describe("16550A: modem control and status, loopback", () => {
  it("MSR shows the far end's lines (default CTS, DSR, DCD) and their changes", () => {
    const r = rig();
    expect(r.inb(MSR)).toBe(0xb0);
    r.uart.setModemInputs({ cts: true, dsr: true, ri: true, dcd: false });
    expect(r.inb(MSR)).toBe(0x10 | 0x20 | 0x40 | 0x08); // DDCD
    r.uart.setModemInputs({ cts: true, dsr: true, ri: false, dcd: false });
    expect(r.inb(MSR)).toBe(0x30 | 0x04); // TERI: RI went away
  });

  it("loopback: MCR outputs appear as MSR inputs (0x1A gives CTS|DCD, as drivers probe)", () => {
    const r = rig();
    r.out(MCR, 0x1a);
    expect(r.inb(MSR) & 0xf0).toBe(0x90);
    r.out(MCR, 0x1f);
    expect(r.inb(MSR) & 0xf0).toBe(0xf0);
  });

  it("loopback: transmitted bytes come back into the receiver and are not sent; the line input is cut", () => {
    const r = rig();
    init(r);
    r.out(MCR, 0x1b);
    r.out(THR, 0x77);
    r.uart.receive([0x99]);
    expect(r.sent).toEqual([]);
    expect(r.inb(LSR) & 0x01).toBe(1);
    expect(r.inb(RBR)).toBe(0x77);
    expect(r.inb(LSR) & 0x01).toBe(0);
  });

  it("loopback: interrupts work inside the chip but the OUT2-gated IRQ stays low", () => {
    const r = rig();
    init(r);
    r.out(MCR, 0x1b);
    r.out(IER, 0x01);
    r.out(THR, 1);
    r.out(FCR, 0x07); // trigger 1
    r.out(THR, 2);
    expect(r.inb(IIR)).toBe(FIFO_BITS | ID_RDA);
    expect(r.irqHigh()).toBe(false);
    r.out(MCR, 0x0b);
    expect(r.irqHigh()).toBe(true);
  });

  it("a 16-bit IN at the base reads RBR and IER", () => {
    const r = rig();
    init(r);
    r.out(IER, 0x05);
    r.uart.receive([0xab]);
    expect(r.uart.read(BASE, 2)).toBe(0xab | (0x05 << 8));
  });
});

describe("16550A: snapshots", () => {
  it("save -> JSON -> load -> continue behaves the same", () => {
    const a = rig();
    init(a, 3, 0x87, 0x1b);
    a.out(IER, 0x0f);
    a.out(SCR, 0x42);
    a.uart.receive([1, 2, 3, 4, 5]);
    a.inb(RBR);
    a.clock.t += 777;
    a.uart.setModemInputs({ cts: false, dsr: true, ri: true, dcd: true });
    const json = JSON.stringify(a.uart.saveState());
    const b = rig();
    b.clock.t = a.clock.t;
    b.uart.loadState(JSON.parse(json));
    expect(b.uart.saveState()).toEqual(a.uart.saveState());
    const script = (r: ReturnType<typeof rig>) => {
      r.irqLog.length = 0;
      const v: (number | null)[] = [r.uart.nextEventNs()];
      r.clock.t = r.uart.nextEventNs()!;
      r.uart.advance(r.clock.t);
      for (let i = 0; i < 8; i++) v.push(r.inb(IIR), r.inb(LSR), r.inb(MSR), r.inb(RBR));
      r.out(THR, 0x33);
      r.uart.receive(new Array(20).fill(7));
      for (let i = 0; i < 4; i++) v.push(r.inb(IIR), r.inb(LSR));
      v.push(r.inb(SCR), r.uart.nextEventNs());
      return v;
    };
    expect(script(b)).toEqual(script(a));
    expect(b.irqLog).toEqual(a.irqLog);
    expect(b.sent).toEqual(a.sent);
  });

  it("rejects malformed state", () => {
    const r = rig();
    const s = r.uart.saveState() as { rx: number[] };
    s.rx = new Array(17).fill(0);
    expect(() => r.uart.loadState(s)).toThrow(TypeError);
  });
});
