// The guest images: `make -C guests` builds every guest the Makefile lists
// (make list), reproducibly, and with the gcc recorded in guests/TOOLCHAIN
// the result is byte for byte the committed guests/bin/*.elf; every
// committed ELF belongs to a listed guest. Also: bench.elf passes on QEMU
// with its console on the debug port (the UART left out). Needs
// gcc-multilib, make and qemu-system-x86.

import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const guests = fileURLToPath(new URL("../../guests/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "lockstep-guests-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;

/** The guests the Makefile builds. */
const listed = (dir: string) => execFileSync("make", ["-s", "-C", dir, "list"], { encoding: "utf8" }).trim().split(/\s+/).filter(Boolean);
const committedElfs = () => readdirSync(join(guests, "bin")).filter((f) => f.endsWith(".elf")).map((f) => f.slice(0, -4)).sort();

describe("guests", () => {
  it("every committed ELF is a guest the Makefile builds, and every guest is committed", () => {
    expect(has("make", ["--version"]), "make is not installed").toBe(true);
    expect(committedElfs()).toEqual(listed(guests).sort());
  });

  const built = new Map<string, Buffer>();

  it("rebuild reproducibly (twice, from a clean copy without bin/ and build/)", () => {
    expect(has("make", ["--version"]) && has("gcc", ["--version"]), "make and gcc (gcc-multilib) are needed").toBe(true);
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
    const a = build();
    const b = build();
    for (const n of names) expect(a.get(n)!.equals(b.get(n)!), `${n}.elf differs between two builds`).toBe(true);
    for (const [n, bytes] of a) built.set(n, bytes);
  });

  it("are byte-identical to the committed ELFs when built with the recorded compiler", (ctx) => {
    expect(built.size, "the rebuild test did not run or failed").toBeGreaterThan(0);
    const gcc = execFileSync("gcc", ["--version"], { encoding: "utf8" }).split("\n")[0];
    const recorded = readFileSync(join(guests, "TOOLCHAIN"), "utf8").trim();
    if (gcc !== recorded) {
      ctx.skip(`gcc is "${gcc}", guests/TOOLCHAIN records "${recorded}": the bytes cannot be compared`);
      return;
    }
    for (const [n, bytes] of built) {
      const file = join(guests, "bin", `${n}.elf`);
      expect(existsSync(file), `guests/bin/${n}.elf is not committed`).toBe(true);
      expect(bytes.equals(readFileSync(file)), `guests/bin/${n}.elf is not what the sources build: run npm run build:guests`).toBe(true);
    }
  });

  it("bench.elf passes on QEMU with its console on the debug port (no UART)", () => {
    expect(has("qemu-system-i386", ["--version"]), "qemu-system-i386 is not installed (qemu-system-x86)").toBe(true);
    const r = spawnSync("qemu-system-i386", [
      "-kernel", join(guests, "bin", "bench.elf"), "-m", "64", "-display", "none", "-no-reboot",
      "-serial", "none", "-monitor", "none", "-debugcon", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ], { encoding: "utf8", timeout: 300_000 });
    expect(r.stdout).toMatch(/^total +[0-9a-f]{8} ok\nPASS\n$/m);
    expect(r.status).toBe(1); // isa-debug-exit: (status << 1) | 1
  });
});
