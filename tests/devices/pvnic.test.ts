// pvnic unit tests: a fake guest memory and IRQ line, and a small driver in
// TypeScript that programs the device through its ports exactly as the guest
// driver (guests/runtime/nic.c) does.

import { describe, expect, it } from "vitest";
import type { GuestMemory, IrqLine } from "../../host/devices/device.js";
import {
  CTRL_RESET, CTRL_RX_EN, CTRL_TX_EN, DESC_ERR_DMA, DESC_ERR_LEN, DESC_ERR_LINK, DESC_OK, DESC_OWN,
  ERR_CAUSE_RX_RING, ERR_CAUSE_TX_RING, INT_ERROR, INT_LINK, INT_RX, INT_RX_NOBUF, INT_TX, PVNIC_BASE, PVNIC_ID,
  PVNIC_MTU, Pvnic, REG, formatMac, parseMac,
} from "../../host/devices/pvnic.js";
import { PortBus } from "../../host/machine/bus.js";

class FakeMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  reads = 0;
  writes = 0;
  constructor(size = 1 << 20) {
    this.bytes = new Uint8Array(size);
  }
  read(addr: number, len: number): Uint8Array {
    if (addr < 0 || addr + len > this.bytes.length) throw new RangeError(`read outside RAM at ${addr}`);
    this.reads++;
    return this.bytes.slice(addr, addr + len);
  }
  write(addr: number, data: Uint8Array): void {
    if (addr < 0 || addr + data.length > this.bytes.length) throw new RangeError(`write outside RAM at ${addr}`);
    this.writes++;
    this.bytes.set(data, addr);
  }
  u16(a: number): number { return this.bytes[a] | (this.bytes[a + 1] << 8); }
  u32(a: number): number { return (this.u16(a) | (this.u16(a + 2) << 16)) >>> 0; }
  set16(a: number, v: number): void { this.bytes[a] = v & 0xff; this.bytes[a + 1] = (v >> 8) & 0xff; }
  set32(a: number, v: number): void { this.set16(a, v & 0xffff); this.set16(a + 2, v >>> 16); }
}

/** Records the line's level and every transition. */
class FakeIrq implements IrqLine {
  high = false;
  events: ("raise" | "lower")[] = [];
  raise(): void { this.high = true; this.events.push("raise"); }
  lower(): void { this.high = false; this.events.push("lower"); }
  get edges(): number { return this.events.filter((e) => e === "raise").length; }
}

const RX_RING = 0x10000, TX_RING = 0x11000, RX_BUFS = 0x20000, TX_BUFS = 0x40000, BUF = 2048;
/** Room for the rings and buffers of the small tests. */
const SMALL = 0x48000;

/** A driver doing what the guest driver does, through the port bus. */
class Driver {
  rxHead = 0;
  txHead = 0;
  constructor(readonly bus: PortBus, readonly mem: FakeMemory, readonly rxSize = 4, readonly txSize = 4) {}
  inl(reg: number): number { return this.bus.read(PVNIC_BASE + reg, 4); }
  outl(reg: number, v: number): void { this.bus.write(PVNIC_BASE + reg, 4, v); }
  rxDesc(i: number): number { return RX_RING + 16 * i; }
  txDesc(i: number): number { return TX_RING + 16 * i; }
  init(ctrl = CTRL_RX_EN | CTRL_TX_EN, imr = INT_RX | INT_TX | INT_RX_NOBUF | INT_LINK | INT_ERROR): void {
    for (let i = 0; i < this.rxSize; i++) this.giveRx(i);
    for (let i = 0; i < this.txSize; i++) this.mem.bytes.fill(0, this.txDesc(i), this.txDesc(i) + 16);
    this.outl(REG.RX_BASE, RX_RING);
    this.outl(REG.RX_SIZE, this.rxSize);
    this.outl(REG.TX_BASE, TX_RING);
    this.outl(REG.TX_SIZE, this.txSize);
    this.outl(REG.IMR, imr);
    this.outl(REG.CTRL, ctrl);
  }
  giveRx(i: number, cap = BUF): void {
    const d = this.rxDesc(i);
    this.mem.set32(d, RX_BUFS + i * BUF);
    this.mem.set16(d + 4, cap);
    this.mem.set16(d + 8, 0);
    this.mem.set16(d + 10, 0xffff);
    this.mem.set32(d + 12, 0xcafe0000 + i);
    this.mem.set16(d + 6, DESC_OWN);
  }
  /** Takes the next received frame, if any, and gives its buffer back. */
  poll(): { frame: Uint8Array; status: number; outLen: number } | undefined {
    const d = this.rxDesc(this.rxHead);
    if (this.mem.u16(d + 6) & DESC_OWN) return undefined;
    const outLen = this.mem.u16(d + 8);
    const status = this.mem.u16(d + 10);
    const frame = status === DESC_OK ? this.mem.bytes.slice(this.mem.u32(d), this.mem.u32(d) + outLen) : new Uint8Array(0);
    expect(this.mem.u32(d + 12), "the device never touches the user field").toBe(0xcafe0000 + this.rxHead);
    this.giveRx(this.rxHead);
    this.rxHead = (this.rxHead + 1) % this.rxSize;
    return { frame, status, outLen };
  }
  /** Queues a frame on the next TX descriptor (no doorbell). */
  queue(frame: Uint8Array, len = frame.length, addr = TX_BUFS + this.txHead * BUF): number {
    const i = this.txHead;
    const d = this.txDesc(i);
    expect(this.mem.u16(d + 6) & DESC_OWN, "TX descriptor still owned by the device").toBe(0);
    if (addr + frame.length <= this.mem.bytes.length) this.mem.bytes.set(frame, addr);
    this.mem.set32(d, addr);
    this.mem.set16(d + 4, len);
    this.mem.set16(d + 6, DESC_OWN);
    this.txHead = (this.txHead + 1) % this.txSize;
    return i;
  }
  send(frame: Uint8Array): number {
    const i = this.queue(frame);
    this.outl(REG.TX_DOORBELL, 0);
    return i;
  }
}

function setup(opts: { rxSize?: number; txSize?: number; memSize?: number } = {}) {
  const mem = new FakeMemory(opts.memSize);
  const irq = new FakeIrq();
  const nic = new Pvnic({ memory: mem, irq, mac: "52:54:00:12:34:56" });
  const bus = new PortBus();
  bus.attach(nic);
  const drv = new Driver(bus, mem, opts.rxSize, opts.txSize);
  const sent: Uint8Array[] = [];
  nic.onTransmit((f) => sent.push(f));
  return { mem, irq, nic, bus, drv, sent };
}

const frameOf = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, k) => (k * 7 + seed) & 0xff);

describe("pvnic registers", () => {
  it("identifies itself and reports MAC and link", () => {
    const { drv, bus } = setup();
    expect(drv.inl(REG.ID)).toBe(PVNIC_ID);
    expect(drv.inl(REG.MAC_LO)).toBe(0x12005452);
    expect(drv.inl(REG.MAC_HI)).toBe(0x5634);
    expect(bus.read(PVNIC_BASE + REG.MAC_LO + 1, 1)).toBe(0x54); // byte reads see the register bytes
    expect(bus.read(PVNIC_BASE + REG.MAC_HI, 2)).toBe(0x5634);
    expect(bus.read(PVNIC_BASE + 0x3e, 4)).toBe(0xffff0000); // past the block: 0xff bytes
    expect(drv.inl(REG.STATUS)).toBe(1);
    expect(formatMac(parseMac("52-54-00-AB-cd-01"))).toBe("52:54:00:ab:cd:01");
    expect(() => parseMac("52:54:00")).toThrow(/bad MAC address/);
  });

  it("decodes exactly 0xC000-0xC03F on the bus", () => {
    const { nic, bus } = setup();
    expect(nic.ports).toEqual([[0xc000, 0xc040]]);
    expect(bus.read(0xbfff, 4)).toBe(0xffffffff);
    expect(bus.read(0xc040, 1)).toBe(0xff);
  });

  it("ignores narrow and unaligned writes and writes to read-only registers", () => {
    const { drv, bus } = setup();
    bus.write(PVNIC_BASE + REG.RX_BASE, 2, 0x1230);
    bus.write(PVNIC_BASE + REG.RX_BASE + 1, 4, 0x1230);
    expect(drv.inl(REG.RX_BASE)).toBe(0);
    drv.outl(REG.ID, 0);
    drv.outl(REG.MAC_LO, 0);
    drv.outl(REG.RX_NEXT, 3);
    expect(drv.inl(REG.ID)).toBe(PVNIC_ID);
    expect(drv.inl(REG.MAC_LO)).toBe(0x12005452);
    expect(drv.inl(REG.RX_NEXT)).toBe(0);
  });

  it("masks ring base low bits, refuses ring sizes above 1024, and resets the index on ring writes", () => {
    const { drv, nic } = setup();
    drv.outl(REG.RX_BASE, 0x1234567f);
    expect(drv.inl(REG.RX_BASE)).toBe(0x12345670);
    drv.outl(REG.RX_SIZE, 1024);
    expect(drv.inl(REG.RX_SIZE)).toBe(1024);
    drv.outl(REG.RX_SIZE, 1025);
    expect(drv.inl(REG.RX_SIZE)).toBe(1024);
    drv.outl(REG.TX_SIZE, 0xffffffff);
    expect(drv.inl(REG.TX_SIZE)).toBe(0);
    drv.outl(REG.CTRL, 0xff);
    expect(drv.inl(REG.CTRL)).toBe(CTRL_RX_EN | CTRL_TX_EN);
    expect(nic.saveState().rxNext).toBe(0);
  });

  it("CTRL.RESET clears the registers and lowers the line but keeps MAC and link", () => {
    const { drv, nic, irq } = setup();
    drv.init();
    nic.receive(frameOf(10));
    expect(irq.high).toBe(true);
    drv.outl(REG.CTRL, CTRL_RESET);
    expect(irq.high).toBe(false);
    for (const reg of [REG.CTRL, REG.ISR, REG.IMR, REG.RX_BASE, REG.RX_SIZE, REG.RX_NEXT, REG.TX_BASE, REG.TX_SIZE, REG.TX_NEXT, REG.RX_DROPS, REG.ERR_CAUSE]) {
      expect(drv.inl(reg), `register 0x${reg.toString(16)}`).toBe(0);
    }
    expect(drv.inl(REG.MAC_LO)).toBe(0x12005452);
    expect(drv.inl(REG.STATUS)).toBe(1);
    expect(nic.receive(frameOf(10))).toBe(false);
  });
});

describe("pvnic receive", () => {
  it("delivers frames into the ring in order, with length and status, and wraps", () => {
    const { drv, nic, mem } = setup({ rxSize: 3 });
    drv.init();
    for (let n = 0; n < 7; n++) {
      const f = frameOf(60 + n, n);
      expect(nic.receive(f)).toBe(true);
      expect(drv.inl(REG.RX_NEXT)).toBe((n + 1) % 3);
      const got = drv.poll()!;
      expect(got.status).toBe(DESC_OK);
      expect(got.outLen).toBe(f.length);
      expect(got.frame).toEqual(f);
      expect(drv.poll()).toBeUndefined();
    }
    // Bytes past the frame in the buffer are untouched.
    expect(mem.bytes[RX_BUFS + 2 * BUF + 66]).toBe(0);
    expect(nic.stats()).toMatchObject({ rxFrames: 7, rxBytes: 7 * 60 + 21, rxDroppedNoBuffer: 0 });
  });

  it("accepts a 1514-byte frame in a 1514-byte buffer and refuses 0 or 1515 bytes", () => {
    const { drv, nic } = setup();
    drv.init();
    drv.giveRx(0, PVNIC_MTU);
    expect(nic.receive(frameOf(PVNIC_MTU))).toBe(true);
    expect(drv.poll()!.frame).toEqual(frameOf(PVNIC_MTU));
    expect(() => nic.receive(new Uint8Array(0))).toThrow(RangeError);
    expect(() => nic.receive(new Uint8Array(1515))).toThrow(/1 to 1514 bytes, got 1515/);
  });

  it("drops and counts when the ring is full, raising RX_NOBUF, then resumes when buffers come back", () => {
    const { drv, nic } = setup({ rxSize: 2 });
    drv.init();
    expect(nic.receive(frameOf(10, 1))).toBe(true);
    expect(nic.receive(frameOf(10, 2))).toBe(true);
    expect(nic.rxBufferAvailable()).toBe(false);
    expect(nic.receive(frameOf(10, 3))).toBe(false);
    expect(nic.receive(frameOf(10, 4))).toBe(false);
    expect(drv.inl(REG.RX_DROPS)).toBe(2);
    expect(drv.inl(REG.ISR) & INT_RX_NOBUF).toBe(INT_RX_NOBUF);
    expect(drv.inl(REG.RX_NEXT)).toBe(0);
    expect(nic.stats().rxDroppedNoBuffer).toBe(2);
    expect(drv.poll()!.frame).toEqual(frameOf(10, 1));
    expect(nic.rxBufferAvailable()).toBe(true);
    expect(nic.receive(frameOf(10, 5))).toBe(true);
    expect(drv.poll()!.frame).toEqual(frameOf(10, 2));
    expect(drv.poll()!.frame).toEqual(frameOf(10, 5));
  });

  it("returns a too-small buffer with ERR_LEN and the frame's length, and counts the drop", () => {
    const { drv, nic, mem } = setup();
    drv.init();
    drv.giveRx(0, 16);
    expect(nic.receive(frameOf(17))).toBe(false);
    const got = drv.poll()!;
    expect(got.status).toBe(DESC_ERR_LEN);
    expect(got.outLen).toBe(17);
    expect(mem.bytes[RX_BUFS]).toBe(0); // nothing copied
    expect(drv.inl(REG.ISR) & INT_RX).toBe(INT_RX);
    expect(drv.inl(REG.RX_DROPS)).toBe(1);
    expect(nic.stats().rxErrors).toBe(1);
    expect(nic.receive(frameOf(16))).toBe(true);
  });

  it("returns a buffer outside guest memory with ERR_DMA", () => {
    const { drv, nic, mem } = setup({ memSize: 0x80000 });
    drv.init();
    mem.set32(drv.rxDesc(0), 0x7fff0); // the frame would run past the end
    expect(nic.receive(frameOf(64))).toBe(false);
    const got = drv.poll()!;
    expect(got.status).toBe(DESC_ERR_DMA);
    expect(got.outLen).toBe(0);
    expect(nic.receive(frameOf(64))).toBe(true);
  });

  it("drops while RX is disabled, the ring is empty or the link is down", () => {
    const { drv, nic, mem } = setup();
    drv.init(CTRL_TX_EN);
    const before = mem.writes;
    expect(nic.receive(frameOf(5))).toBe(false);
    drv.outl(REG.CTRL, CTRL_RX_EN);
    drv.outl(REG.RX_SIZE, 0);
    expect(nic.receive(frameOf(5))).toBe(false);
    drv.outl(REG.RX_SIZE, 4);
    nic.setLink(false);
    expect(drv.inl(REG.STATUS)).toBe(0);
    expect(nic.receive(frameOf(5))).toBe(false);
    expect(mem.writes).toBe(before);
    expect(nic.stats()).toMatchObject({ rxDroppedDisabled: 2, rxDroppedLinkDown: 1, rxFrames: 0 });
    expect(drv.inl(REG.RX_DROPS)).toBe(3);
    nic.setLink(true);
    expect(nic.receive(frameOf(5))).toBe(true);
  });

  it("disables RX and raises ERROR when the ring itself is outside memory", () => {
    const { drv, nic, irq } = setup({ memSize: 0x20000 });
    drv.init(CTRL_RX_EN | CTRL_TX_EN, INT_ERROR);
    drv.outl(REG.RX_BASE, 0x30000);
    expect(nic.receive(frameOf(5))).toBe(false);
    expect(drv.inl(REG.CTRL)).toBe(CTRL_TX_EN);
    expect(drv.inl(REG.ERR_CAUSE)).toBe(ERR_CAUSE_RX_RING);
    expect(drv.inl(REG.ISR)).toBe(INT_ERROR);
    expect(irq.high).toBe(true);
  });
});

describe("pvnic transmit", () => {
  it("sends the frames queued before a doorbell, in ring order, completing them in the same OUT", () => {
    const { drv, nic, sent, mem } = setup({ txSize: 3 });
    drv.init();
    drv.queue(frameOf(100, 1));
    drv.queue(frameOf(200, 2));
    expect(sent).toHaveLength(0); // nothing before the doorbell
    drv.outl(REG.TX_DOORBELL, 0x1234);
    expect(sent).toEqual([frameOf(100, 1), frameOf(200, 2)]);
    for (const i of [0, 1]) {
      expect(mem.u16(drv.txDesc(i) + 6) & DESC_OWN).toBe(0);
      expect(mem.u16(drv.txDesc(i) + 10)).toBe(DESC_OK);
    }
    expect(mem.u16(drv.txDesc(1) + 8)).toBe(200);
    expect(drv.inl(REG.TX_NEXT)).toBe(2);
    expect(drv.inl(REG.ISR) & INT_TX).toBe(INT_TX);
    for (let n = 0; n < 5; n++) drv.send(frameOf(50, n)); // wraps around the 3-entry ring
    expect(sent).toHaveLength(7);
    expect(sent[6]).toEqual(frameOf(50, 4));
    expect(nic.stats()).toMatchObject({ txFrames: 7, txBytes: 550, txErrors: 0 });
  });

  it("hands listeners a copy that later guest writes do not change", () => {
    const { drv, sent, mem } = setup();
    drv.init();
    drv.send(frameOf(20));
    mem.bytes.fill(0xee, TX_BUFS, TX_BUFS + 20);
    expect(sent[0]).toEqual(frameOf(20));
  });

  it("completes bad descriptors with ERR_LEN / ERR_DMA / ERR_LINK without sending them", () => {
    const { drv, nic, sent, mem } = setup({ memSize: 0x80000, txSize: 8 });
    drv.init();
    const a = drv.queue(new Uint8Array(0), 0);
    const b = drv.queue(frameOf(10), 1515);
    const c = drv.queue(new Uint8Array(0), 64, 0x7fff0);
    const d = drv.queue(frameOf(10));
    drv.outl(REG.TX_DOORBELL, 0);
    expect([a, b, c, d].map((i) => mem.u16(drv.txDesc(i) + 10))).toEqual([DESC_ERR_LEN, DESC_ERR_LEN, DESC_ERR_DMA, DESC_OK]);
    expect(mem.u16(drv.txDesc(a) + 8)).toBe(0);
    expect(sent).toHaveLength(1);
    nic.setLink(false);
    const e = drv.send(frameOf(10));
    expect(mem.u16(drv.txDesc(e) + 10)).toBe(DESC_ERR_LINK);
    expect(mem.u16(drv.txDesc(e) + 6) & DESC_OWN).toBe(0);
    expect(sent).toHaveLength(1);
    expect(nic.stats()).toMatchObject({ txFrames: 1, txErrors: 4 });
  });

  it("ignores the doorbell while TX is disabled and sends on a later one", () => {
    const { drv, sent } = setup();
    drv.init(CTRL_RX_EN);
    drv.send(frameOf(10));
    expect(sent).toHaveLength(0);
    expect(drv.inl(REG.TX_NEXT)).toBe(0);
    drv.outl(REG.CTRL, CTRL_RX_EN | CTRL_TX_EN);
    drv.outl(REG.TX_DOORBELL, 0);
    expect(sent).toHaveLength(1);
  });

  it("walks at most TX_SIZE descriptors per doorbell", () => {
    const { drv, sent, mem } = setup({ txSize: 2 });
    drv.init();
    drv.queue(frameOf(3, 1));
    drv.queue(frameOf(3, 2));
    drv.outl(REG.TX_DOORBELL, 0);
    expect(sent).toHaveLength(2);
    // A guest that sets OWN again on every completed descriptor from inside the listener still ends the walk.
    const { drv: drv2, nic: nic2, mem: mem2 } = setup({ txSize: 2 });
    drv2.init();
    let calls = 0;
    nic2.onTransmit(() => {
      calls++;
      for (let i = 0; i < 2; i++) mem2.set16(drv2.txDesc(i) + 6, DESC_OWN);
    });
    drv2.queue(frameOf(3));
    drv2.outl(REG.TX_DOORBELL, 0);
    expect(calls).toBe(1);
    expect(mem.u16(drv.txDesc(0) + 6)).toBe(0);
  });

  it("disables TX and raises ERROR when the TX ring is outside memory", () => {
    const { drv, sent } = setup({ memSize: 0x20000 });
    drv.init();
    drv.outl(REG.TX_BASE, 0x40000);
    drv.outl(REG.TX_DOORBELL, 0);
    expect(sent).toHaveLength(0);
    expect(drv.inl(REG.CTRL)).toBe(CTRL_RX_EN);
    expect(drv.inl(REG.ERR_CAUSE)).toBe(ERR_CAUSE_TX_RING);
    expect(drv.inl(REG.ISR) & INT_ERROR).toBe(INT_ERROR);
  });

  it("lets a listener unsubscribe", () => {
    const { drv, nic } = setup();
    drv.init();
    const got: number[] = [];
    const off = nic.onTransmit((f) => got.push(f.length));
    drv.send(frameOf(4));
    off();
    drv.send(frameOf(5));
    expect(got).toEqual([4]);
  });
});

describe("pvnic interrupts", () => {
  it("drives the line from ISR & IMR; W1C acknowledges", () => {
    const { drv, nic, irq } = setup();
    drv.init(CTRL_RX_EN | CTRL_TX_EN, 0);
    nic.receive(frameOf(8));
    expect(drv.inl(REG.ISR)).toBe(INT_RX); // set even while masked
    expect(irq.events).toEqual([]);
    drv.outl(REG.IMR, INT_RX);
    expect(irq.events).toEqual(["raise"]);
    drv.outl(REG.ISR, INT_TX); // not pending: RX stays, and is re-signalled
    expect(irq.events).toEqual(["raise", "lower", "raise"]);
    drv.outl(REG.ISR, INT_RX);
    expect(irq.events).toEqual(["raise", "lower", "raise", "lower"]);
    expect(drv.inl(REG.ISR)).toBe(0);
    expect(nic.stats().interrupts).toBe(2);
  });

  it("re-signals a cause that arrived while the line was high once the handler acknowledges", () => {
    const { drv, nic, irq } = setup();
    drv.init();
    nic.receive(frameOf(8));
    expect(irq.events).toEqual(["raise"]);
    // The handler read ISR = RX; a TX completes before it acknowledges.
    const seen = drv.inl(REG.ISR);
    drv.send(frameOf(8));
    expect(irq.events).toEqual(["raise"]); // still high: no edge
    drv.outl(REG.ISR, seen);
    expect(irq.events).toEqual(["raise", "lower", "raise"]); // a fresh edge for TX
    expect(drv.inl(REG.ISR)).toBe(INT_TX);
    drv.outl(REG.ISR, INT_TX);
    expect(irq.high).toBe(false);
  });

  it("raises LINK on a link change only", () => {
    const { drv, nic, irq } = setup();
    drv.init(0, INT_LINK);
    nic.setLink(true);
    expect(irq.events).toEqual([]);
    nic.setLink(false);
    expect(irq.high).toBe(true);
    expect(drv.inl(REG.ISR)).toBe(INT_LINK);
  });
});

describe("pvnic state", () => {
  it("round-trips through JSON and continues identically", () => {
    const a = setup({ rxSize: 3, memSize: SMALL });
    a.drv.init();
    a.nic.receive(frameOf(30, 1));
    a.drv.send(frameOf(40, 2));
    a.nic.receive(frameOf(30, 3));
    const saved = JSON.parse(JSON.stringify(a.nic.saveState()));

    const b = setup({ rxSize: 3, memSize: SMALL });
    b.mem.bytes.set(a.mem.bytes);
    b.nic.loadState(saved);
    expect(b.irq.events).toEqual([]); // loadState does not drive the line
    b.drv.rxHead = a.drv.rxHead;
    b.drv.txHead = a.drv.txHead;
    for (const s of [a, b]) {
      s.nic.receive(frameOf(30, 4));
      s.drv.send(frameOf(12, 5));
      s.drv.outl(REG.ISR, 0xff);
    }
    expect(Buffer.from(b.mem.bytes).equals(a.mem.bytes)).toBe(true);
    expect(b.nic.saveState()).toEqual(a.nic.saveState());
    expect(b.sent).toEqual(a.sent.slice(1));
  });

  it("refuses a malformed state", () => {
    const { nic } = setup();
    const good = nic.saveState();
    expect(() => nic.loadState({ ...good, rxSize: 4096 })).toThrow(/ring size/);
    expect(() => nic.loadState({ ...good, isr: -1 })).toThrow(/bad isr/);
    expect(() => nic.loadState({ ...good, mac: [1, 2] })).toThrow(/bad mac/);
    expect(() => nic.loadState(null)).toThrow(TypeError);
  });

  it("behaves the same for the same calls (determinism)", () => {
    const run = () => {
      const s = setup({ rxSize: 2, txSize: 2, memSize: SMALL });
      s.drv.init();
      const log: unknown[] = [];
      for (let n = 0; n < 20; n++) {
        log.push(s.nic.receive(frameOf(10 + n, n)));
        if (n % 3 === 0) log.push(s.drv.poll()?.outLen);
        if (n % 4 === 0) s.drv.send(frameOf(n + 1, n));
        if (n % 5 === 0) s.drv.outl(REG.ISR, s.drv.inl(REG.ISR));
      }
      return { log, state: s.nic.saveState(), irq: s.irq.events, sent: s.sent, mem: s.mem.bytes };
    };
    const [x, y] = [run(), run()];
    expect(Buffer.from(x.mem).equals(y.mem)).toBe(true);
    expect({ ...x, mem: null }).toEqual({ ...y, mem: null });
  });
});
