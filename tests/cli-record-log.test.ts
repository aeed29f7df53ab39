// lockstep record and its --log FILE: an existing file is refused without
// --force, the guest image and the disk image are refused even with it, and
// the log appears (by rename of a temporary file) only once the run has
// written its end record: a record that fails leaves the old file as it was
// and no temporary file behind.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runLockstep } from "./helpers/cli.js";
import { parseLog } from "../host/replay/log-format.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-record-log-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const lockstep = (...args: string[]) => runLockstep(tmp, ...args);
const guestBin = (name: string) => new URL(`../guests/bin/${name}.elf`, import.meta.url).pathname;
const OLD = "an old log the user wants to keep\n";

/** A fresh directory holding only `files`; returns its path. */
function dir(name: string, files: Record<string, string> = {}): string {
  const d = join(tmp, name);
  mkdirSync(d);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
  return d;
}

const quick = ["--clock", "virtual", "--cmdline", "ticks=3", "--serial", "none"];

describe("lockstep record --log", () => {
  it("refuses an existing log without --force, in one line, exit 2, leaving it as it was", async () => {
    const d = dir("exists", { "a.log": OLD });
    const r = await lockstep("record", guestBin("ticks"), "--log", join(d, "a.log"), ...quick);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`lockstep: ${join(d, "a.log")} already exists (use --force to replace it)\n`);
    expect(r.stdout).toBe("");
    expect(readFileSync(join(d, "a.log"), "utf8")).toBe(OLD);
    expect(readdirSync(d)).toEqual(["a.log"]);
  });

  it("replaces an existing log with --force, only by a complete one", async () => {
    const d = dir("force", { "a.log": OLD });
    const r = await lockstep("record", guestBin("ticks"), "--log", join(d, "a.log"), "--force", ...quick);
    expect(r.status, r.stderr).toBe(0);
    const log = parseLog(new Uint8Array(readFileSync(join(d, "a.log"))));
    expect(log.end.finalIcount).toBeGreaterThan(0n);
    expect(readdirSync(d)).toEqual(["a.log"]);
  });

  it("refuses, even with --force, a --log that is the guest image or the disk image", async () => {
    const d = dir("self");
    const elf = join(d, "ticks.elf");
    copyFileSync(guestBin("ticks"), elf);
    const disk = join(d, "disk.img");
    writeFileSync(disk, new Uint8Array(64 * 1024));
    symlinkSync(elf, join(d, "link.elf"));
    const before = readFileSync(elf);
    for (const [log, what] of [[elf, "the guest image"], [join(d, "link.elf"), "the guest image"], [disk, "the --disk image"]]) {
      const r = await lockstep("record", elf, "--log", log, "--disk", disk, "--force", ...quick);
      expect(r.status, log).toBe(2);
      expect(r.stderr).toBe(`lockstep: --log ${log} is ${what}; refusing to overwrite it\n`);
    }
    expect(readFileSync(elf).equals(before)).toBe(true);
    expect(readFileSync(disk).every((b) => b === 0)).toBe(true);
    expect(readdirSync(d).sort()).toEqual(["disk.img", "link.elf", "ticks.elf"]);
  });

  it("leaves the old log untouched and no temporary file when the guest cannot be loaded", async () => {
    const d = dir("fail", { "a.log": OLD, "bad.elf": "not an ELF file, just some text that is long enough to look at\n" });
    const bad = await lockstep("record", join(d, "bad.elf"), "--log", join(d, "a.log"), "--force", ...quick);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/bad guest image/);
    const small = await lockstep("record", guestBin("ticks"), "--log", join(d, "a.log"), "--force", "--mem", "1M", ...quick);
    expect(small.status).toBe(2);
    expect(small.stderr).toMatch(/outside RAM/);
    expect(readFileSync(join(d, "a.log"), "utf8")).toBe(OLD);
    expect(readdirSync(d).sort()).toEqual(["a.log", "bad.elf"]);
  });

  it("creates no file when the run fails before the machine starts, and names a missing directory", async () => {
    const d = dir("nolog");
    const r = await lockstep("record", guestBin("ticks"), "--log", join(d, "a.log"), "--mem", "1M", ...quick);
    expect(r.status).toBe(2);
    expect(readdirSync(d)).toEqual([]);
    const m = await lockstep("record", guestBin("ticks"), "--log", join(d, "no-such-dir", "a.log"), ...quick);
    expect(m.status).toBe(2);
    expect(m.stderr).toMatch(/^lockstep: cannot write .*no-such-dir\/a\.log: /);
  });
});
