// The guest images: `make -C guests` reproduces the committed bench.elf
// byte for byte (with the gcc recorded in guests/TOOLCHAIN), and the image
// passes its own checks on QEMU as a Multiboot kernel, as it does on the
// engines. Needs gcc-multilib, make and qemu-system-x86.

import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const guests = fileURLToPath(new URL("../../guests/", import.meta.url));
const committed = readFileSync(join(guests, "bin", "bench.elf"));
const tmp = mkdtempSync(join(tmpdir(), "lockstep-guests-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;

describe("guests", () => {
  it.runIf(has("make", ["--version"]) && has("gcc", ["--version"]))("rebuild reproducibly (twice, from a clean copy)", () => {
    const dir = join(tmp, "guests");
    cpSync(guests, dir, { recursive: true, filter: (src) => !src.includes(`${join(guests, "build")}`) });
    const build = () => {
      execFileSync("make", ["-C", dir, "clean"], { stdio: "ignore" });
      execFileSync("make", ["-C", dir], { stdio: "pipe" });
      return readFileSync(join(dir, "bin", "bench.elf"));
    };
    const a = build();
    const b = build();
    expect(a.equals(b)).toBe(true);
    const gcc = execFileSync("gcc", ["--version"], { encoding: "utf8" }).split("\n")[0];
    const recorded = readFileSync(join(guests, "TOOLCHAIN"), "utf8").trim();
    if (gcc === recorded) expect(a.equals(committed), "guests/bin/bench.elf is not what the sources build: run npm run build:guests").toBe(true);
  });

  it.runIf(has("qemu-system-i386", ["--version"]))("bench.elf passes on QEMU", () => {
    const r = spawnSync("qemu-system-i386", [
      "-kernel", join(guests, "bin", "bench.elf"), "-m", "64", "-display", "none", "-no-reboot",
      "-serial", "none", "-monitor", "none", "-debugcon", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ], { encoding: "utf8", timeout: 300_000 });
    expect(r.stdout).toMatch(/^total +[0-9a-f]{8} ok\nPASS\n$/m);
    expect(r.status).toBe(1); // isa-debug-exit: (status << 1) | 1
  });
});
