// Divergence checks and repair (host/ft/divergence.ts, issue 10 §5): the
// pair compares digests every N instructions; a backup corrupted on purpose
// — a RAM bit, a device register, EAX — is caught at the first check after
// the corruption, says what differs first and where, becomes untrusted, and
// is repaired by a transfer of only the pages that differ; the pair then
// reaches the same state hash on both sides and the world's console is the
// solo run's. An untrusted backup whose primary dies does not go live.
//
// One RAM bit is flipped through the engine (writeMem), so the backup's
// dirty tracker marks the page: the check compares the pages dirtied since
// the last check, and a page dirtied on one side only is a divergence.
// Another is flipped in engine.ram directly, as a memory fault would, with
// no dirty mark: that one is found by the scrub, the stretch of RAM each
// check compares whether dirtied or not.

import { beforeAll, describe, expect, it } from "vitest";
import { checkCost, repairFigures, repairLines } from "../../bench/divergence.js";
import { initHash } from "../../host/common/hash.js";
import { MemoryArbiter } from "../../host/ft/arbiter.js";
import { compareDigests, describeDivergence, DivergenceCheck, groupPages, namedRegisters, RepairList, RepairRequest, repairRequest, type CheckFrame, type Divergence } from "../../host/ft/divergence.js";
import { memoryLinkPair } from "../../host/ft/link.js";
import { BackupReplica, PrimaryReplica } from "../../host/ft/replica.js";
import type { TransferFigures } from "../../host/ft/state-transfer.js";
import { frameTagger } from "../../host/ft/wire.js";
import type { EngineKind } from "../../host/engine/engine.js";
import type { Machine } from "../../host/machine/machine.js";
import { bootLive } from "../../host/node/boot.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { driveReplica } from "../../host/ft/driver.js";
import { stateHash } from "../../host/replay/state-hash.js";
import { outsideWorld } from "../helpers/ft-world.js";
import { guestImage } from "../helpers/replay.js";

const RAM = 4 << 20;
const PAGES = RAM / 4096;
const CMDLINE = "ticks.elf ticks=300 every=30 hz=200";
/** The check interval, and where both replicas stop to compare their final states (the guest exits near 116,000). */
const N = 10_000;
const END = 100_000n;
/** A page the guest never touches (3.5 MiB in). */
const SPARE_PAGE = 900;

beforeAll(initHash);

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

async function solo(): Promise<string> {
  const out: number[] = [];
  const m = await bootLive(guestImage("ticks"), { engine: "wasm", ramSize: RAM, clock: "virtual", cmdline: CMDLINE, onSerial: (b) => out.push(b) });
  m.runSync(Number(END));
  m.dispose();
  return Buffer.from(out).toString("latin1");
}

interface Scenario {
  backupEngine?: EngineKind;
  /** Called between the backup's steps: corrupts its machine once; returns the count it did it at. */
  corrupt?: (m: Machine) => bigint | null;
  atCheck?: (m: Machine, icount: bigint) => void;
  /** Stop the primary dead as soon as the backup reports a divergence. */
  killPrimaryOnDivergence?: boolean;
  scrubPages?: number;
}

async function pair(sc: Scenario) {
  const [pl, bl] = memoryLinkPair(await frameTagger(null));
  const arbiter = new MemoryArbiter();
  await arbiter.claim({ vm: "t", epoch: 1, replica: "primary", atMs: 0, reason: "first start" });
  const world = outsideWorld();
  const lines: string[] = [];
  const divergences: Divergence[] = [];
  const figures: TransferFigures[] = [];
  const common = {
    image: guestImage("ticks"), clock: "virtual" as const, cmdline: CMDLINE, configHash: new Uint8Array(32).fill(7), vm: "t",
    arbiter, timeouts: { intervalMs: 20, timeoutMs: 300 }, slice: 5_000, maxLag: 2_000_000n, release: world.release, limit: END, checkEvery: N, scrubPages: sc.scrubPages,
  };
  const now = performance.now();
  const p = new PrimaryReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "primary", link: pl, say: (l) => lines.push(`primary| ${l}`), transferred: (f) => figures.push(f) }, now);
  const b = new BackupReplica({
    ...common, engine: await loadEngine(sc.backupEngine ?? "wasm", { ramSize: RAM }), name: "backup", link: bl, say: (l) => lines.push(`backup| ${l}`),
    diverged: (d) => divergences.push(d), atCheck: sc.atCheck,
  }, now);
  let corruptedAt: bigint | null = null;
  const both = () => p.machine.engine.icount >= END && (b.machine?.engine.icount ?? 0n) >= END && p.role.held === 0;
  await Promise.all([
    driveReplica(p, { stop: () => both() || (sc.killPrimaryOnDivergence === true && divergences.length > 0) }),
    driveReplica(b, {
      stop: () => {
        if (corruptedAt === null && sc.corrupt && b.machine) corruptedAt = sc.corrupt(b.machine);
        return both();
      },
    }),
  ]);
  return { p, b, lines, log: lines.join("\n"), divergences, figures, corruptedAt, serial: world.serial(), contradictions: world.contradictions, arbiter };
}

/** The pair went on after the repair: a later check agreed, both stopped at END with one state hash, the console is the solo run's. */
async function expectRepaired(r: Awaited<ReturnType<typeof pair>>) {
  expect(r.log).toMatch(/backup\| backup: repaired: the primary's state installed at instruction \d+; trusted again/);
  expect(r.figures).toHaveLength(1);
  expect(r.b.divergences).toHaveLength(1);
  expect(r.b.checksPassed, r.log).toBeGreaterThan(0);
  expect(r.p.machine.engine.icount).toBe(END);
  expect(r.b.machine!.engine.icount).toBe(END);
  expect(hex(stateHash(r.b.machine!))).toBe(hex(stateHash(r.p.machine)));
  expect(r.serial, r.log).toBe(await solo());
  expect(r.contradictions).toBe(0);
}

describe("divergence checks (ticks, virtual clock, checks every 10,000 instructions)", () => {
  it("with nothing wrong, a wasm primary and a TS backup agree at every check", async () => {
    const r = await pair({ backupEngine: "ts" });
    expect(r.divergences, r.log).toEqual([]);
    expect(r.b.checksPassed).toBe(Number(END) / N);
    expect(hex(stateHash(r.b.machine!))).toBe(hex(stateHash(r.p.machine)));
    expect(r.serial).toBe(await solo());
  });

  it("a RAM bit flipped on the backup: caught at the next check, naming the page; repaired with a few pages", async () => {
    const r = await pair({
      corrupt: (m) => {
        if (m.engine.icount < 33_000n) return null;
        const at = SPARE_PAGE * 4096 + 123;
        m.engine.writeMem(at, Uint8Array.of(m.engine.readMem(at, 1)[0]! ^ 0x08));
        return m.engine.icount;
      },
    });
    expect(r.corruptedAt).not.toBeNull();
    const d = r.divergences[0]!;
    expect(d, r.log).toBeDefined();
    // Within one interval: the first check at or after the flip.
    expect(d.icount).toBeGreaterThanOrEqual(r.corruptedAt!);
    expect(d.icount - r.corruptedAt!).toBeLessThanOrEqual(BigInt(N));
    expect(d.icount % BigInt(N)).toBe(0n);
    expect(d.first).toEqual({ kind: "page", index: SPARE_PAGE, span: 1, primary: "clean", backup: "dirty" });
    expect(r.log).toMatch(new RegExp(`backup\\| backup: divergence at instruction ${d.icount}: page ${SPARE_PAGE} differs \\(dirtied on the backup only\\)`));
    expect(r.log).toMatch(/This backup is untrusted \(it will not go live\) and asks the primary for repair/);
    const f = r.figures[0]!;
    console.log(`repair of a flipped bit (4 MiB): ${f.pages} pages sent (${f.unchangedPages} already right), ${f.bytes} bytes + ${f.requestBytes} bytes of page list, against ${f.fullBytes} bytes for a full round 0`);
    expect(f.pages).toBeLessThan(PAGES / 20);
    expect(f.unchangedPages).toBeGreaterThan(PAGES - PAGES / 20);
    expect(f.bytes + f.requestBytes).toBeLessThan(f.fullBytes);
    await expectRepaired(r);
  });

  it("a RAM bit flipped behind the dirty tracker's back: found by the scrub within a round of it; repaired", async () => {
    // 256 pages a check: all 1,024 pages every 4 checks.
    const r = await pair({
      scrubPages: 256,
      corrupt: (m) => {
        if (m.engine.icount < 23_000n) return null;
        m.engine.ram[SPARE_PAGE * 4096 + 9]! ^= 0x40; // not through writeMem: no dirty mark
        return m.engine.icount;
      },
    });
    const d = r.divergences[0]!;
    expect(d, r.log).toBeDefined();
    expect(d.icount - r.corruptedAt!).toBeLessThanOrEqual(BigInt(4 * N));
    expect(d.first).toEqual({ kind: "page", index: SPARE_PAGE, span: 1, primary: "clean", backup: "clean" });
    expect(r.log).toMatch(new RegExp(`page ${SPARE_PAGE} differs \\(dirtied on neither side: found by the scrub\\)`));
    await expectRepaired(r);
  });

  it("a device skewed on the backup (the UART's scratch register): caught at the next check as device state; repaired", async () => {
    const r = await pair({
      corrupt: (m) => {
        if (m.engine.icount < 52_000n) return null;
        m.uart.loadState({ ...(m.uart.saveState() as object), scr: 0x5a });
        return m.engine.icount;
      },
    });
    const d = r.divergences[0]!;
    expect(d, r.log).toBeDefined();
    expect(d.icount - r.corruptedAt!).toBeLessThanOrEqual(BigInt(N));
    expect(d.first).toEqual({ kind: "device", name: "uart" });
    expect(d.devices).toEqual(["uart"]);
    expect(r.log).toMatch(/divergence at instruction \d+: device state differs \(uart\)/);
    await expectRepaired(r);
  });

  it("EAX flipped on the backup at a check: the report names EAX with both values", async () => {
    let was = 0;
    const r = await pair({
      atCheck: (m, icount) => {
        if (icount !== 40_000n) return;
        was = m.engine.getReg(0);
        m.engine.setReg(0, was ^ 0x10);
      },
    });
    const d = r.divergences[0]!;
    expect(d, r.log).toBeDefined();
    expect(d.icount).toBe(40_000n);
    expect(d.first).toEqual({ kind: "register", name: "eax", primary: BigInt(was), backup: BigInt(was ^ 0x10) });
    expect(r.log).toContain(`register eax is 0x${was.toString(16)} on the primary, 0x${(was ^ 0x10).toString(16)} here`);
    await expectRepaired(r);
  });

  it("the backup's guest sent astray (EIP to a CLI; HLT) stops before the next check: a divergence too; repaired", async () => {
    const r = await pair({
      corrupt: (m) => {
        if (m.engine.icount < 43_000n) return null;
        // CLI; HLT in a spare page, and the CPU sent there: the guest stops for good.
        m.engine.writeMem(SPARE_PAGE * 4096, Uint8Array.of(0xfa, 0xf4));
        m.engine.eip = SPARE_PAGE * 4096;
        return m.engine.icount;
      },
    });
    const d = r.divergences[0]!;
    expect(d, r.log).toBeDefined();
    expect(d.first.kind).toBe("replay");
    expect(d.icount - r.corruptedAt!).toBeLessThan(BigInt(N));
    expect(r.log).toMatch(/the replay departed from the log \(the guest stopped \([a-z-]+\) at instruction \d+, before the primary's check at \d+\)/);
    await expectRepaired(r);
  });

  it("the primary dies while the backup is untrusted: the backup refuses to go live", async () => {
    const r = await pair({
      killPrimaryOnDivergence: true,
      corrupt: (m) => {
        if (m.engine.icount < 33_000n) return null;
        m.engine.writeMem(SPARE_PAGE * 4096, Uint8Array.of(1));
        return m.engine.icount;
      },
    });
    expect(r.divergences.length, r.log).toBe(1);
    expect(r.log).toMatch(/backup stops: the primary went silent while this backup was untrusted \(diverged at instruction \d+, not yet repaired\): it cannot go live/);
    expect(r.b.live).toBe(false);
    expect(r.log).not.toMatch(/won epoch/);
    expect((await r.arbiter.claim({ vm: "t", epoch: 2, replica: "x", atMs: 0, reason: "probe" })).won).toBe(true);
  });
});

describe("the digest and the page list (host/ft/divergence.ts)", () => {
  it("names the registers, finds nothing between equal machines, and names the first page of a coarse entry", async () => {
    const a = await bootLive(guestImage("bench"), { engine: "wasm", ramSize: RAM, clock: "virtual", onSerial: () => {} });
    const b = await bootLive(guestImage("bench"), { engine: "ts", ramSize: RAM, clock: "virtual", onSerial: () => {} });
    const [ca, cb] = [new DivergenceCheck(a), new DivergenceCheck(b)];
    a.runSync(200_000);
    b.runSync(200_000);
    const [da, db] = [ca.digest(), cb.digest()];
    expect(da.regs.slice(0, 10).map((r) => r.name)).toEqual(["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags"]);
    expect(da.regs.map((r) => r.name)).toEqual(expect.arrayContaining(["cs.base", "ss.sel", "cr0", "gdt.limit", "idt.base", "icount", "halted"]));
    expect(namedRegisters(a.engine.archState()).find((r) => r.name === "icount")!.value).toBe(200_000n);
    expect(da.pages.length).toBeGreaterThan(0);
    expect(compareDigests(da, db)).toBeNull();
    // A coarse CHECK (span 4) against the backup's per-page digest with one page changed.
    const changed = da.pages[0]!.index;
    const coarse: CheckFrame = { ...da, span: 4, pages: groupPages(da.pages, 4) };
    const other: CheckFrame = { ...db, pages: db.pages.map((p) => (p.index === changed ? { ...p, hash: new Uint8Array(16) } : p)) };
    const d = compareDigests(coarse, other)!;
    expect(d.first).toEqual({ kind: "page", index: Math.floor(changed / 4) * 4, span: 4, primary: "dirty", backup: "dirty" });
    expect(describeDivergence(d)).toMatch(new RegExp(`pages ${Math.floor(changed / 4) * 4}\\.\\.${Math.floor(changed / 4) * 4 + 3} differ`));
  });

  it("a REPAIR list is taken in order, for a RAM of the primary's size only", async () => {
    const m = await bootLive(guestImage("bench"), { engine: "wasm", ramSize: RAM, clock: "virtual", onSerial: () => {} });
    const req = repairRequest(5n, m.engine.ram);
    expect(req.full).toBe(false);
    expect(req.frames).toHaveLength(1);
    expect(req.frames[0]!.hashes.filter((h) => h !== null).length).toBeLessThan(PAGES / 4);
    expect(new RepairList().add(req.frames[0]!, PAGES)).toHaveLength(PAGES);
    expect(() => new RepairList().add(req.frames[0]!, PAGES * 2)).toThrow(/REPAIR for a RAM of 1024 pages; this one has 2048/);
    expect(() => new RepairList().add({ ...req.frames[0]!, first: 3, hashes: req.frames[0]!.hashes.slice(3) }, PAGES)).toThrow(/REPAIR pages from 3, expected 0/);
    expect(new RepairList().add({ type: "repair", icount: 5n, full: true, total: 0, first: 0, hashes: [] }, PAGES)).toBe("full");
    // In pieces, as a backup sends it a step at a time: the same list.
    const pieces = new RepairRequest(5n, m.engine.ram);
    const list = new RepairList();
    const got: unknown[] = [];
    for (let f = pieces.frame(300); f; f = pieces.frame(300)) got.push(list.add(f, PAGES));
    expect(got.map((x) => x === null)).toEqual([true, true, true, false]);
    expect(got[3]).toEqual(new RepairList().add(req.frames[0]!, PAGES));
    expect(pieces.bytes).toBe(req.bytes);
  });
});

describe("a check's place in the log (host clock, stepped by hand)", () => {
  // The primary may log more entries at a check's count after it took its
  // digest: its next run starts at that count, and input that arrived
  // meanwhile (here a byte on COM1) is logged at that same count. The backup holds the entries that come after a
  // CHECK until it has taken its own digest there; were they handed to the
  // replay at once, its machine would take them before the digest and the
  // check would see a difference that is not one.
  it("entries logged at a check's count after the CHECK: the backup gets them all before it runs, and the check agrees", async () => {
    const [pl, bl] = memoryLinkPair(await frameTagger(null));
    const arbiter = new MemoryArbiter();
    await arbiter.claim({ vm: "t", epoch: 1, replica: "primary", atMs: 0, reason: "first start" });
    const world = outsideWorld();
    const lines: string[] = [];
    let ns = 0;
    const common = {
      image: guestImage("ticks"), clock: "host" as const, cmdline: "ticks.elf ticks=20 every=5 hz=100", configHash: new Uint8Array(32).fill(7), vm: "t",
      arbiter, timeouts: { intervalMs: 20, timeoutMs: 60_000 }, slice: 2_000, maxLag: 2_000_000n, release: world.release, say: (l: string) => lines.push(l),
      checkEvery: 6_000, world: { hostNs: () => ns, epochMs: () => 1.7e12, entropy: () => 4 }, lagTargetMs: 60_000,
    };
    const sent: { type: string; icount?: bigint; entries?: bigint[] }[] = [];
    const send = pl.send.bind(pl);
    pl.send = (f) => {
      sent.push({ type: f.type, icount: "icount" in f ? f.icount : undefined, entries: f.type === "log" ? f.entries.map((e) => e.icount) : undefined });
      send(f);
    };
    const p = new PrimaryReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "primary", link: pl }, 0);
    const b = new BackupReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "backup", link: bl }, 0);
    const settle = () => new Promise((r) => setImmediate(r));
    await settle();
    // The primary alone runs to the first check (1 ms of host time a step); the backup is not stepped.
    let t = 0;
    while (p.machine.engine.icount < 6_000n) {
      ns += 1e6;
      await p.step((t += 1));
      await settle();
    }
    expect(p.machine.engine.icount).toBe(6_000n);
    // A byte arrives: the next run logs it at 6,000, after the CHECK.
    p.machine.serialInput([0x41]);
    ns += 1e6;
    await p.step((t += 1));
    await settle();
    const checkAt = sent.findIndex((f) => f.type === "check" && f.icount === 6_000n);
    expect(checkAt).toBeGreaterThan(0);
    expect(sent.slice(checkAt).some((f) => f.type === "log" && f.entries!.includes(6_000n)), JSON.stringify(sent, (_, v) => (typeof v === "bigint" ? String(v) : v))).toBe(true);
    // Now the backup takes everything at once and runs.
    for (let i = 0; i < 20 && b.checksPassed + b.divergences.length === 0; i++) {
      await b.step((t += 1));
      await settle();
    }
    expect(b.divergences, lines.join("\n")).toEqual([]);
    expect(b.checksPassed).toBe(1);
  });
});

describe("the figures (bench/divergence.ts)", () => {
  it("repairing a 32 MiB backup diverged in 4 pages sends a few pages, far fewer bytes than a full transfer", async () => {
    // As the guest leaves RAM (mostly zero pages, cheap in both), and with 24 MiB of it in use.
    for (const fill of [0, 24 << 20]) {
      const f = await repairFigures({ guest: "bench", at: 20_000_000, corrupt: 4, fill });
      console.log(repairLines(f).join("\n"));
      expect(f.exact).toBe(true);
      expect(f.repair.unchangedPages).toBeGreaterThan(f.ramPages - 200);
      expect(f.repair.pages).toBeLessThan(200);
      expect(f.repair.bytes + f.repair.requestBytes).toBeLessThan(f.full.bytes / (fill > 0 ? 50 : 5));
    }
  }, 120_000);

  it("a check's digest costs little against the interval it follows", async () => {
    const c = await checkCost({ guest: "bench", interval: 20_000_000, checks: 6 });
    console.log(`check every ${c.interval} instructions on ${c.guest}.elf: run ${c.runMs.toFixed(1)} ms, digest ${c.digestMs.toFixed(2)} ms (${c.dirtyPages} dirty pages): ${(c.overhead * 100).toFixed(2)}%`);
    expect(c.checks).toBeGreaterThan(0);
    expect(c.overhead).toBeLessThan(0.05);
  }, 60_000);
});
