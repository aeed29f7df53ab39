// The guest images: `make -C guests` builds every guest the Makefile lists
// (make list), reproducibly, and with the gcc recorded in guests/TOOLCHAIN
// the result is byte for byte the committed guests/bin/*.elf; every
// committed ELF belongs to a listed guest. Also: bench.elf passes on QEMU
// with its console on the debug port (the UART left out). Needs
// gcc-multilib, make and qemu-system-x86; under CI a missing one, or a gcc
// other than the one guests/TOOLCHAIN records, fails (tests/system/host-tools.ts).

import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { GCC_M32, MAKE, QEMU, requireHost, requireTools } from "./host-tools.js";

const guests = fileURLToPath(new URL("../../guests/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "lockstep-guests-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The guests the Makefile builds. */
const listed = (dir: string) => execFileSync("make", ["-s", "-C", dir, "list"], { encoding: "utf8" }).trim().split(/\s+/).filter(Boolean);
const committedElfs = () => readdirSync(join(guests, "bin")).filter((f) => f.endsWith(".elf")).map((f) => f.slice(0, -4)).sort();

describe("guests", () => {
  it("every committed ELF is a guest the Makefile builds, and every guest is committed", (ctx) => {
    requireTools(ctx, MAKE);
    expect(committedElfs()).toEqual(listed(guests).sort());
  });

  /** Two clean builds of a copy of guests/ without bin/ and build/, made once for the tests that need them. */
  let builds: { names: string[]; a: Map<string, Buffer>; b: Map<string, Buffer> } | undefined;
  const buildTwice = () => {
    if (builds) return builds;
    const dir = join(tmp, "guests");
    cpSync(guests, dir, {
      recursive: true,
      filter: (src) => {
        const rel = relative(guests, src);
        return !(rel === "bin" || rel.startsWith("bin/") || rel === "build" || rel.startsWith("build/"));
      },
    });
    const names = listed(dir);
    const build = () => {
      execFileSync("make", ["-C", dir, "clean"], { stdio: "ignore" });
      execFileSync("make", ["-C", dir], { stdio: "pipe" });
      return new Map(names.map((n) => [n, readFileSync(join(dir, "bin", `${n}.elf`))]));
    };
    return (builds = { names, a: build(), b: build() });
  };

  it("rebuild reproducibly (twice, from a clean copy without bin/ and build/)", (ctx) => {
    requireTools(ctx, MAKE, GCC_M32);
    const { names, a, b } = buildTwice();
    for (const n of names) expect(a.get(n)!.equals(b.get(n)!), `${n}.elf differs between two builds`).toBe(true);
  });

  it("are byte-identical to the committed ELFs when built with the recorded compiler", (ctx) => {
    requireTools(ctx, MAKE, GCC_M32);
    const gcc = execFileSync("gcc", ["--version"], { encoding: "utf8" }).split("\n")[0];
    const recorded = readFileSync(join(guests, "TOOLCHAIN"), "utf8").trim();
    requireHost(ctx, gcc === recorded,
      `gcc is "${gcc}" but guests/TOOLCHAIN records "${recorded}": the committed ELFs can only be compared ` +
      "with that compiler (Debian 12's gcc-multilib); install it, or rebuild and commit the guests (npm run build:guests)");
    const built = buildTwice().a;
    expect(built.size, "make list names no guest").toBeGreaterThan(0);
    for (const [n, bytes] of built) {
      const file = join(guests, "bin", `${n}.elf`);
      expect(existsSync(file), `guests/bin/${n}.elf is not committed`).toBe(true);
      expect(bytes.equals(readFileSync(file)), `guests/bin/${n}.elf is not what the sources build: run npm run build:guests`).toBe(true);
    }
  });

  it("bench.elf passes on QEMU with its console on the debug port (no UART)", (ctx) => {
    requireTools(ctx, QEMU);
    const r = spawnSync("qemu-system-i386", [
      "-kernel", join(guests, "bin", "bench.elf"), "-m", "64", "-display", "none", "-no-reboot",
      "-serial", "none", "-monitor", "none", "-debugcon", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ], { encoding: "utf8", timeout: 300_000 });
    expect(r.stdout).toMatch(/^total +[0-9a-f]{8} ok\nPASS\n$/m);
    expect(r.status).toBe(1); // isa-debug-exit: (status << 1) | 1
  });
});
