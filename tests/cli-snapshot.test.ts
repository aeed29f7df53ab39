// lockstep snapshot save / snapshot inspect / run --from, as a user runs
// them (host/cli/snapshot.ts, host/cli/run.ts). The reference is an
// uninterrupted `lockstep record` of the same guest with the same flags: its
// console, and the final state hash in its log's end record (`log inspect
// --json`). A snapshot saved at N on one engine and run on with --from on
// the other must give the rest of that console byte for byte and end with
// that state hash. Damaged snapshots and mismatched GUEST, flags and disk
// are refused with status 2, a message naming what and where, and no run.

import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLockstep, type CliRun } from "./helpers/cli.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "lockstep-snapshot-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const lockstep = (...args: string[]): Promise<CliRun> => runLockstep(tmp, ...args);
const sha = (file: string) => createHash("sha256").update(readFileSync(join(tmp, file))).digest("hex");

beforeAll(() => {
  for (const g of ["ticks", "bench", "disk", "hello"]) copyFileSync(join(ROOT, "guests/bin", `${g}.elf`), join(tmp, `${g}.elf`));
  writeFileSync(join(tmp, "blank.img"), new Uint8Array(1 << 20));
});

/** The uninterrupted run: its console and final state hash. */
async function reference(name: string, args: string[], status: number): Promise<{ console: string; hash: string }> {
  const r = await lockstep("record", ...args, "--log", `${name}.log`);
  expect(r.status, r.stderr).toBe(status);
  const i = await lockstep("log", "inspect", `${name}.log`, "--json");
  expect(i.status, i.stderr).toBe(0);
  return { console: r.stdout, hash: JSON.parse(i.stdout).stateHash };
}

const finalHash = (stderr: string) => /final state hash ([0-9a-f]{64})/.exec(stderr)?.[1];

interface Case { name: string; guest: string; flags: string[]; at: number[]; disk?: boolean; runFlags?: (n: number) => string[] }
const CASES: Case[] = [
  { name: "ticks", guest: "ticks.elf", flags: ["--clock", "virtual", "--cmdline", "ticks=20"], at: [3000, 25000] },
  // bench runs 400M instructions: the run is cut at 1.2M, and the restored run's limit counts from the restore.
  { name: "bench", guest: "bench.elf", flags: ["--clock", "virtual", "--max-instructions", "1200000"], at: [600000], runFlags: (n) => ["--max-instructions", String(1200000 - n)] },
  { name: "disk", guest: "disk.elf", flags: ["--clock", "virtual"], at: [6000000], disk: true },
];

describe.each(CASES)("$name: saved at N on one engine, run --from on the other", (c) => {
  let ref: { console: string; hash: string };
  beforeAll(async () => {
    if (c.disk) copyFileSync(join(tmp, "blank.img"), join(tmp, `${c.name}-ref.img`));
    ref = await reference(c.name, [c.guest, ...c.flags, ...(c.disk ? ["--disk", `${c.name}-ref.img`] : [])], c.name === "bench" ? 1 : 0);
    expect(ref.console.length).toBeGreaterThan(0);
  }, 300_000);

  it.each(c.at.flatMap((n) => [[n, "wasm", "ts"], [n, "ts", "wasm"]] as const))("at %i: %s then %s", async (n, first, second) => {
    const snap = `${c.name}-${n}-${first}.snap`;
    const saveFlags = c.flags.filter((_, i, a) => a[i] !== "--max-instructions" && a[i - 1] !== "--max-instructions");
    const disk = c.disk ? ["--disk", "blank.img"] : [];
    const before = sha("blank.img");
    const s = await lockstep("snapshot", "save", c.guest, "--at", String(n), "--out", snap, "--engine", first, ...saveFlags, ...disk);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stderr).toContain(`at instruction ${n} (${first})`);
    const r = await lockstep("run", "--from", snap, "--engine", second, ...disk, ...(c.runFlags?.(n) ?? []));
    expect(r.status, r.stderr).toBe(c.name === "bench" ? 1 : 0); // bench: the instruction limit
    expect(s.stdout + r.stdout).toBe(ref.console);
    expect(finalHash(r.stderr), r.stderr).toBe(ref.hash);
    // The image the guest wrote to was never written: its writes live in the snapshot and in memory.
    expect(sha("blank.img")).toBe(before);
    if (c.disk) {
      const i = await lockstep("snapshot", "inspect", snap, "--json");
      expect(i.status, i.stderr).toBe(0);
      expect(JSON.parse(i.stdout).diskSectorsWritten).toBeGreaterThan(0);
    }
  }, 300_000);
});

describe("refusals", () => {
  let good: Uint8Array;
  beforeAll(async () => {
    const s = await lockstep("snapshot", "save", "ticks.elf", "--at", "5000", "--out", "good.snap", "--clock", "virtual", "--cmdline", "ticks=20", "--mem", "4M");
    expect(s.status, s.stderr).toBe(0);
    good = new Uint8Array(readFileSync(join(tmp, "good.snap")));
    const d = await lockstep("snapshot", "save", "disk.elf", "--at", "300000", "--out", "disk.snap", "--clock", "virtual", "--mem", "4M", "--disk", "blank.img");
    expect(d.status, d.stderr).toBe(0);
  }, 300_000);

  async function refused(args: string[], message: RegExp): Promise<void> {
    const r = await lockstep(...args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe(""); // nothing ran
  }

  it("a truncated or damaged snapshot: the section and byte offset", async () => {
    const i = await lockstep("snapshot", "inspect", "good.snap", "--json");
    const ram = JSON.parse(i.stdout).sections.find((s: { name: string }) => s.name === "RAM");
    writeFileSync(join(tmp, "cut.snap"), good.subarray(0, ram.offset + 50));
    await refused(["run", "--from", "cut.snap"], /cut\.snap: snapshot: section RAM: truncated: .* \(at byte \d+\)/);
    await refused(["snapshot", "inspect", "cut.snap"], /section RAM: truncated/);
    const flipped = good.slice();
    flipped[ram.offset + 42 + 10] ^= 0x10;
    writeFileSync(join(tmp, "flipped.snap"), flipped);
    await refused(["run", "--from", "flipped.snap"], /flipped\.snap: snapshot: section (RAM|END): .* \(at byte \d+\)/);
    await refused(["run", "--from", "ticks.elf"], /not a lockstep snapshot \(wrong magic.*at byte 0\)/);
    await refused(["run", "--from", "missing.snap"], /cannot read snapshot missing\.snap: no such file/);
  });

  it("another GUEST, a conflicting flag, another or no disk image", async () => {
    await refused(["run", "hello.elf", "--from", "good.snap"], /hello\.elf is not the guest this snapshot was taken of/);
    await refused(["run", "--from", "good.snap", "--mem", "8M"], /--mem 8388608 conflicts with the snapshot's RAM of 4194304 bytes/);
    await refused(["run", "--from", "good.snap", "--clock", "host"], /--clock host conflicts with the snapshot's clock virtual/);
    await refused(["run", "--from", "good.snap", "--cmdline", "ticks=3"], /--cmdline "ticks=3" conflicts with the snapshot's command line "ticks.elf ticks=20"/);
    await refused(["run", "--from", "good.snap", "--disk", "blank.img"], /--disk: the snapshot's VM has no disk/);
    await refused(["run", "--from", "disk.snap"], /the snapshot's VM has a disk: give --disk FILE/);
    const other = new Uint8Array(1 << 20);
    other[7] = 1;
    writeFileSync(join(tmp, "other.img"), other);
    await refused(["run", "--from", "disk.snap", "--disk", "other.img"], /--disk other\.img is not the image the snapshot was taken with: its identity is raw:1048576:blake3:[0-9a-f]+, the snapshot's raw:1048576:blake3:/);
    // The same GUEST and flags are accepted.
    const ok = await lockstep("run", "ticks.elf", "--from", "good.snap", "--mem", "4M", "--clock", "virtual", "--cmdline", "ticks=20");
    expect(ok.status, ok.stderr).toBe(0);
  }, 120_000);

  it("save: an existing FILE without --force, and a guest that ends before N", async () => {
    writeFileSync(join(tmp, "keep.snap"), "precious");
    const e = await lockstep("snapshot", "save", "ticks.elf", "--at", "100", "--out", "keep.snap", "--clock", "virtual");
    expect(e.status, e.stderr).toBe(2);
    expect(e.stderr).toContain("keep.snap exists; give --force to replace it");
    expect(readFileSync(join(tmp, "keep.snap"), "utf8")).toBe("precious");
    const g = await lockstep("snapshot", "save", "ticks.elf", "--at", "100", "--out", "ticks.elf", "--force", "--clock", "virtual");
    expect(g.status, g.stderr).toBe(2);
    expect(g.stderr).toContain("--out ticks.elf is the GUEST image; refusing to overwrite it");
    const early = await lockstep("snapshot", "save", "hello.elf", "--at", "100000000", "--out", "early.snap", "--clock", "virtual");
    expect(early.status, early.stderr).toBe(1);
    expect(early.stderr).toMatch(/the guest ended at instruction \d+, before 100000000 .*; no snapshot written/);
    expect(existsSync(join(tmp, "early.snap"))).toBe(false);
    expect(existsSync(join(tmp, "early.snap.partial"))).toBe(false);
  }, 120_000);
});
