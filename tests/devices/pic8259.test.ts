// The 8259A pair driven as a guest kernel drives it. Expected vectors follow
// the datasheet's rule (8086 mode: vector = ICW2 bits 7-3, then the 3-bit IR
// level); expected orders follow fully nested priority (IR0 highest, the
// slave's eight levels sitting at the master's IR2).

import { describe, expect, it } from "vitest";
import { Pic8259 } from "../../host/devices/pic8259.js";

const MASTER_BASE = 0x20;
const SLAVE_BASE = 0x28;
const vec = (irq: number) => (irq < 8 ? MASTER_BASE : SLAVE_BASE) + (irq & 7);

// OCW2 / OCW3 command bytes (datasheet bit layouts).
const EOI = 0x20;
const specificEoi = (l: number) => 0x60 | l;
const ROTATE_EOI = 0xa0;
const setPriority = (l: number) => 0xc0 | l;
const rotateSpecificEoi = (l: number) => 0xe0 | l;
const READ_IRR = 0x0a;
const READ_ISR = 0x0b;
const POLL = 0x0c;
const SET_SMM = 0x68;
const CLEAR_SMM = 0x48;

function harness(icw4 = 0x01, icw1 = 0x11) {
  const pic = new Pic8259();
  const out = (port: number, v: number) => pic.write(port, 1, v);
  const inb = (port: number) => pic.read(port, 1);
  // The classic Linux/BSD sequence: ICW1 edge+cascade+ICW4, ICW2 base, ICW3, ICW4 8086.
  out(0x20, icw1); out(0x21, MASTER_BASE); out(0x21, 0x04); out(0x21, icw4);
  out(0xa0, icw1); out(0xa1, SLAVE_BASE); out(0xa1, 0x02); out(0xa1, icw4);
  out(0x21, 0x00); // unmask everything
  out(0xa1, 0x00);
  const isr = (port: number) => { out(port, READ_ISR); const v = inb(port); out(port, READ_IRR); return v; };
  const irr = (port: number) => { out(port, READ_IRR); return inb(port); };
  return { pic, out, inb, isr, irr, raise: (n: number) => pic.line(n).raise(), lower: (n: number) => pic.line(n).lower() };
}

describe("8259A pair: initialization", () => {
  it("takes the ICW1-ICW4 sequence, then OCW1 masks read back on the odd ports", () => {
    const { out, inb } = harness();
    out(0x21, 0xb8);
    out(0xa1, 0x8f);
    expect(inb(0x21)).toBe(0xb8);
    expect(inb(0xa1)).toBe(0x8f);
  });

  it("delivers vector base + IR level on both chips", () => {
    const h = harness();
    for (const irq of [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]) {
      h.raise(irq);
      expect(h.pic.pendingVector()).toBe(vec(irq));
      expect(h.pic.acknowledge()).toBe(vec(irq));
      if (irq >= 8) h.out(0xa0, EOI);
      h.out(0x20, EOI);
      h.lower(irq);
    }
    expect(h.pic.pendingVector()).toBeNull();
  });

  it("ICW1 clears the mask and in-service registers and resets the edge latches", () => {
    const h = harness();
    h.out(0x21, 0xff);
    h.raise(3);
    h.out(0x21, 0x00);
    expect(h.pic.acknowledge()).toBe(vec(3));
    h.raise(5); // latched in IRR
    h.out(0x20, 0x11); h.out(0x21, 0x40); h.out(0x21, 0x04); h.out(0x21, 0x01);
    expect(h.inb(0x21)).toBe(0x00);
    expect(h.isr(0x20)).toBe(0);
    expect(h.irr(0x20)).toBe(0); // edge sense reset: IRQ 5, still high, needs a new rising edge
    expect(h.pic.pendingVector()).toBeNull();
    h.lower(5);
    h.raise(5);
    expect(h.pic.pendingVector()).toBe(0x40 + 5);
  });

  it("skips ICW3 in single mode and ICW4 when IC4 is clear", () => {
    const pic = new Pic8259();
    // ICW1 = 0x12: single, no ICW4 -> only ICW2 follows; the next odd write is OCW1.
    pic.write(0x20, 1, 0x12);
    pic.write(0x21, 1, 0x50);
    pic.write(0x21, 1, 0xfe); // OCW1
    expect(pic.read(0x21, 1)).toBe(0xfe);
    pic.line(0).raise();
    // No ICW4: 8086 mode bits are zero, but vectors are still delivered as in 8086 mode.
    expect(pic.acknowledge()).toBe(0x50);
  });

  it("in single mode the master's IR2 is an ordinary input (no cascade acknowledge)", () => {
    const pic = new Pic8259();
    pic.write(0x20, 1, 0x13); pic.write(0x21, 1, 0x50); pic.write(0x21, 1, 0x01); // single, ICW4
    pic.write(0xa0, 1, 0x11); pic.write(0xa1, 1, 0x70); pic.write(0xa1, 1, 0x02); pic.write(0xa1, 1, 0x01);
    pic.write(0xa1, 1, 0x00);
    pic.line(9).raise(); // slave INT -> master IR2
    expect(pic.acknowledge()).toBe(0x50 + 2);
  });

  it("has BIOS-like power-on defaults: bases 0x08/0x70, everything masked but the cascade", () => {
    const pic = new Pic8259();
    expect(pic.read(0x21, 1)).toBe(0xfb);
    expect(pic.read(0xa1, 1)).toBe(0xff);
    pic.write(0x21, 1, 0xfa); // IR0 and the cascade unmasked
    pic.line(0).raise();
    expect(pic.acknowledge()).toBe(0x08);
    pic.write(0xa1, 1, 0xfe);
    pic.line(8).raise();
    pic.write(0x20, 1, EOI);
    expect(pic.acknowledge()).toBe(0x70);
  });

  it("rejects IRQ 2 (the cascade) and numbers outside 0-15", () => {
    const pic = new Pic8259();
    expect(() => pic.line(2)).toThrow(RangeError);
    expect(() => pic.line(16)).toThrow(RangeError);
    expect(() => pic.line(-1)).toThrow(RangeError);
    expect(pic.line(9)).toBe(pic.line(9));
  });
});

describe("8259A pair: requests, priorities, in-service", () => {
  it("moves the request from IRR to ISR on acknowledge", () => {
    const h = harness();
    h.raise(4);
    expect(h.irr(0x20)).toBe(1 << 4);
    expect(h.isr(0x20)).toBe(0);
    h.pic.acknowledge();
    expect(h.irr(0x20)).toBe(0);
    expect(h.isr(0x20)).toBe(1 << 4);
    h.out(0x20, EOI);
    expect(h.isr(0x20)).toBe(0);
  });

  it("delivers the highest priority first and nests higher priorities over an in-service one", () => {
    const h = harness();
    h.raise(5);
    h.raise(3);
    expect(h.pic.acknowledge()).toBe(vec(3));
    // IRQ 5 is lower than the in-service IRQ 3: blocked.
    expect(h.pic.pendingVector()).toBeNull();
    h.raise(1); // higher: nests
    expect(h.pic.acknowledge()).toBe(vec(1));
    expect(h.isr(0x20)).toBe((1 << 1) | (1 << 3));
    h.out(0x20, EOI); // non-specific: clears the highest in service, IRQ 1
    expect(h.isr(0x20)).toBe(1 << 3);
    expect(h.pic.pendingVector()).toBeNull();
    h.out(0x20, EOI);
    expect(h.pic.acknowledge()).toBe(vec(5));
  });

  it("places the slave's IRQs 8-15 between IRQ 1 and IRQ 3", () => {
    const h = harness();
    h.raise(3);
    h.raise(14);
    h.raise(1);
    h.raise(8);
    const order: number[] = [];
    for (let i = 0; i < 4; i++) {
      const v = h.pic.acknowledge();
      order.push(v);
      if (v >= SLAVE_BASE) h.out(0xa0, EOI);
      h.out(0x20, EOI);
    }
    expect(order).toEqual([vec(1), vec(8), vec(14), vec(3)]);
  });

  it("keeps masked requests in IRR and delivers them when unmasked", () => {
    const h = harness();
    h.out(0x21, 1 << 6);
    h.raise(6);
    expect(h.irr(0x20)).toBe(1 << 6);
    expect(h.pic.pendingVector()).toBeNull();
    h.out(0x21, 0);
    expect(h.pic.acknowledge()).toBe(vec(6));
  });

  it("a masked slave IRQ or a masked cascade input holds back the slave", () => {
    const h = harness();
    h.out(0xa1, 1 << 3);
    h.raise(11);
    expect(h.pic.pendingVector()).toBeNull();
    h.out(0xa1, 0);
    h.out(0x21, 1 << 2);
    expect(h.pic.pendingVector()).toBeNull();
    h.out(0x21, 0);
    expect(h.pic.acknowledge()).toBe(vec(11));
  });

  it("edge-triggered: a line held high interrupts once; a new rising edge is needed", () => {
    const h = harness();
    h.raise(4);
    h.raise(4); // still high: no new edge
    expect(h.pic.acknowledge()).toBe(vec(4));
    h.out(0x20, EOI);
    expect(h.pic.pendingVector()).toBeNull();
    h.lower(4);
    h.raise(4);
    expect(h.pic.acknowledge()).toBe(vec(4));
  });

  it("a rising edge while the same level is in service is remembered in IRR", () => {
    const h = harness();
    h.raise(4);
    h.pic.acknowledge();
    h.lower(4);
    h.raise(4);
    expect(h.irr(0x20)).toBe(1 << 4);
    expect(h.pic.pendingVector()).toBeNull();
    h.out(0x20, EOI);
    expect(h.pic.acknowledge()).toBe(vec(4));
  });

  it("level-triggered (ICW1.LTIM): the line still high after EOI interrupts again", () => {
    const h = harness(0x01, 0x19);
    h.raise(5);
    expect(h.pic.acknowledge()).toBe(vec(5));
    h.out(0x20, EOI);
    expect(h.pic.acknowledge()).toBe(vec(5));
    h.out(0x20, EOI);
    h.lower(5);
    expect(h.pic.pendingVector()).toBeNull();
  });

  it("a request withdrawn before the acknowledge is lost: INTA then gets the spurious IR7", () => {
    const h = harness();
    h.raise(3);
    expect(h.pic.pendingVector()).toBe(vec(3));
    h.lower(3);
    expect(h.pic.pendingVector()).toBeNull();
    expect(h.pic.acknowledge()).toBe(MASTER_BASE + 7);
    expect(h.isr(0x20)).toBe(0); // a spurious IRQ 7 sets no in-service bit
  });

  it("a slave request vanishing during the INTA sequence gives spurious IRQ 15 with the master's IR2 in service", () => {
    const h = harness();
    h.raise(12);
    // Capture the state at the first INTA pulse: the master has latched IR2,
    // then the slave's request goes away before the slave is asked.
    const snap = h.pic.saveState() as { master: { irr: number }; slave: { irr: number; levels: number } };
    expect(snap.master.irr & 4).toBe(4);
    snap.slave.irr = 0;
    snap.slave.levels = 0;
    h.pic.loadState(snap);
    expect(h.pic.acknowledge()).toBe(SLAVE_BASE + 7);
    expect(h.isr(0xa0)).toBe(0);
    expect(h.isr(0x20)).toBe(1 << 2); // so the handler must EOI the master only
  });

  it("a slave IRQ puts IR2 in service on the master and its level in service on the slave", () => {
    const h = harness();
    h.raise(12);
    expect(h.pic.acknowledge()).toBe(vec(12));
    expect(h.isr(0x20)).toBe(1 << 2);
    expect(h.isr(0xa0)).toBe(1 << 4);
    // Another slave IRQ of higher slave priority is blocked by the master's IR2 in service (fully nested).
    h.raise(9);
    expect(h.pic.pendingVector()).toBeNull();
    h.out(0xa0, EOI);
    expect(h.pic.pendingVector()).toBeNull();
    h.out(0x20, EOI);
    expect(h.pic.acknowledge()).toBe(vec(9));
  });

  it("special fully nested mode lets a higher slave IRQ through while IR2 is in service", () => {
    const pic = new Pic8259();
    const out = (p: number, v: number) => pic.write(p, 1, v);
    out(0x20, 0x11); out(0x21, MASTER_BASE); out(0x21, 0x04); out(0x21, 0x11); // ICW4: SFNM + 8086
    out(0xa0, 0x11); out(0xa1, SLAVE_BASE); out(0xa1, 0x02); out(0xa1, 0x01);
    out(0x21, 0); out(0xa1, 0);
    pic.line(12).raise();
    expect(pic.acknowledge()).toBe(vec(12));
    pic.line(9).raise(); // higher than 12 on the slave
    expect(pic.acknowledge()).toBe(vec(9));
    pic.line(13).raise(); // lower than both in service on the slave: held
    expect(pic.pendingVector()).toBeNull();
  });

  it("automatic EOI (ICW4.AEOI) leaves nothing in service", () => {
    const h = harness(0x03);
    h.raise(3);
    expect(h.pic.acknowledge()).toBe(vec(3));
    expect(h.isr(0x20)).toBe(0);
    h.raise(5); // not blocked: nothing in service
    expect(h.pic.acknowledge()).toBe(vec(5));
  });

  it("specific EOI clears the named level only", () => {
    const h = harness();
    h.raise(5);
    h.pic.acknowledge();
    h.raise(3);
    h.pic.acknowledge();
    expect(h.isr(0x20)).toBe((1 << 3) | (1 << 5));
    h.out(0x20, specificEoi(5));
    expect(h.isr(0x20)).toBe(1 << 3);
  });

  it("set priority and the rotating EOIs move the lowest-priority level", () => {
    const h = harness();
    h.out(0x20, setPriority(4)); // IR4 lowest, so IR5 highest
    h.raise(1);
    h.raise(6);
    h.raise(4);
    const order: number[] = [];
    for (let i = 0; i < 3; i++) {
      order.push(h.pic.acknowledge());
      h.out(0x20, EOI);
    }
    expect(order).toEqual([vec(6), vec(1), vec(4)]);

    // Rotate on non-specific EOI: the level just served becomes the lowest.
    h.out(0x20, setPriority(7));
    h.raise(0); h.raise(3);
    h.lower(0); h.lower(3);
    h.raise(0); h.raise(3);
    expect(h.pic.acknowledge()).toBe(vec(0));
    h.out(0x20, ROTATE_EOI); // IR0 lowest now: IR1 highest ... IR3 above IR0
    h.lower(0);
    h.raise(0);
    expect(h.pic.acknowledge()).toBe(vec(3));
    h.out(0x20, rotateSpecificEoi(3)); // IR3 lowest: IR4..IR7, IR0 ahead of it
    expect(h.isr(0x20)).toBe(0);
    h.lower(3);
    h.raise(3);
    expect(h.pic.acknowledge()).toBe(vec(0));
  });

  it("rotate in AEOI mode makes each served level the lowest", () => {
    const h = harness(0x03);
    h.out(0x20, 0x80); // rotate in automatic EOI mode (set)
    h.raise(1);
    expect(h.pic.acknowledge()).toBe(vec(1));
    // IR1 lowest now, so IR2..IR7 and IR0 come before it.
    h.lower(1); h.raise(1); h.raise(7);
    expect(h.pic.acknowledge()).toBe(vec(7));
    h.out(0x20, 0x00); // clear
    h.raise(0); // IR7 lowest now, so IR0 is highest
    expect(h.pic.acknowledge()).toBe(vec(0));
  });

  it("special mask mode: masking the in-service level lets lower levels in", () => {
    const h = harness();
    h.raise(3);
    expect(h.pic.acknowledge()).toBe(vec(3));
    h.raise(6);
    expect(h.pic.pendingVector()).toBeNull();
    h.out(0x21, 1 << 3);
    h.out(0x20, SET_SMM);
    expect(h.pic.acknowledge()).toBe(vec(6));
    // A non-specific EOI in special mask mode skips the masked in-service IR3.
    h.out(0x20, EOI);
    expect(h.isr(0x20)).toBe(1 << 3);
    h.out(0x20, CLEAR_SMM);
    h.out(0x21, 0);
    h.out(0x20, EOI);
    expect(h.isr(0x20)).toBe(0);
  });

  it("OCW3 poll returns 0x80 | level and takes it into service; 0 when nothing is pending", () => {
    const h = harness();
    h.out(0x20, POLL);
    expect(h.inb(0x20)).toBe(0);
    h.raise(6);
    h.raise(4);
    h.out(0x20, POLL);
    expect(h.inb(0x21)).toBe(0x80 | 4); // either address
    expect(h.isr(0x20)).toBe(1 << 4);
    expect(h.inb(0x21)).toBe(0); // next read is OCW1 again
  });

  it("a 16-bit IN at 0x20 reads IRR (0x20) and IMR (0x21)", () => {
    const h = harness();
    h.out(0x21, 0x80);
    h.raise(7);
    expect(h.pic.read(0x20, 2)).toBe(0x80 | (0x80 << 8));
  });
});

describe("8259A pair: snapshots", () => {
  function script(pic: Pic8259): number[] {
    const log: number[] = [];
    const step = () => log.push(pic.pendingVector() ?? -1);
    pic.line(10).raise(); step();
    log.push(pic.acknowledge()); step();
    pic.write(0xa0, 1, EOI); pic.write(0x20, 1, EOI); step();
    pic.line(5).lower(); pic.line(5).raise(); step();
    log.push(pic.acknowledge()); step();
    pic.write(0x20, 1, READ_ISR); log.push(pic.read(0x20, 1));
    pic.write(0x20, 1, EOI);
    log.push(pic.acknowledge()); step();
    return log;
  }

  it("save -> JSON -> load into a fresh pair -> continue behaves the same", () => {
    const h = harness();
    h.out(0x21, 0x01);
    h.raise(5);
    h.raise(13);
    h.pic.acknowledge(); // IRQ 13 in service
    h.out(0x20, setPriority(3));
    h.out(0xa0, READ_ISR);
    const json = JSON.stringify(h.pic.saveState());
    const copy = new Pic8259();
    copy.loadState(JSON.parse(json));
    expect(copy.saveState()).toEqual(h.pic.saveState());
    expect(script(copy)).toEqual(script(h.pic));
    expect(copy.saveState()).toEqual(h.pic.saveState());
  });

  it("rejects malformed state", () => {
    const pic = new Pic8259();
    expect(() => pic.loadState(null)).toThrow(TypeError);
    const s = pic.saveState() as { master: { imr: number } };
    s.master.imr = 300;
    expect(() => pic.loadState(s)).toThrow(TypeError);
  });
});
