// lockstep run, as a user runs it (node bin/lockstep.mjs run ...) in a child
// process: console bytes on stdout, the summary on stderr, the guest's exit
// status as the process's, and status 2 for missing or malformed images.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runLockstep } from "./helpers/cli.js";
import { codeElf } from "./helpers/elf-builder.js";
import { le32 } from "./helpers/x86.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-run-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const lockstep = (...args: string[]) => runLockstep(tmp, ...args);
function guest(name: string, code: number[]): string {
  const p = join(tmp, name);
  writeFileSync(p, codeElf(code));
  return p;
}
const print = (s: string) => [...s].flatMap((c) => [0xb0, c.charCodeAt(0), 0xe6, 0xe9]); // mov al, c; out 0xe9, al
const exitWith = (v: number) => [0xb8, ...le32(v), 0xe7, 0xf4]; // mov eax, v; out 0xf4, eax

describe("lockstep run", () => {
  it.each(["wasm", "ts"])("prints the guest's output and exits with its status (%s)", async (engine) => {
    const r = await lockstep("run", guest(`hello-${engine}.elf`, [...print("hello\n"), ...exitWith(7)]), "--engine", engine, "--debugcon", "stdout");
    expect(r.stdout).toBe("hello\n");
    expect(r.status).toBe(7);
    expect(r.stderr).toMatch(new RegExp(`^lockstep run: 14 instructions in [\\d.]+ s, [\\d.]+ MIPS \\(${engine}\\); guest exit status 7\\n$`));
  });

  it("shows the debug console on stdout only when COM1 is not there (the guests print on both)", async () => {
    const g = guest("debugcon.elf", [...print("hi\n"), ...exitWith(0)]);
    expect((await lockstep("run", g)).stdout).toBe("");
    expect((await lockstep("run", g, "--serial", "none")).stdout).toBe("hi\n");
    const e = await lockstep("run", g, "--debugcon", "stderr");
    expect([e.stdout, e.stderr.startsWith("hi\nlockstep run: ")]).toEqual(["", true]);
  });

  it("reports an exit status above 255 as 255, a halt as 0", async () => {
    expect((await lockstep("run", guest("big.elf", exitWith(0x1234)))).status).toBe(255);
    const h = await lockstep("run", guest("halt.elf", [0xfa, 0xf4]));
    expect(h.status).toBe(0);
    expect(h.stderr).toMatch(/HLT at 0x00100001 with interrupts disabled/);
  });

  it("exits 1 on a fault, naming the vector, EIP and bytes", async () => {
    const r = await lockstep("run", guest("ud.elf", [0x90, 0x0f, 0x0b]));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/#UD invalid opcode \(vector 6\) at EIP 0x00100001, bytes 0f 0b/);
  });

  it("exits 1 at --max-instructions", async () => {
    const r = await lockstep("run", guest("loop.elf", [0xeb, 0xfe]), "--max-instructions", "300000");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^lockstep run: 300000 instructions .*instruction limit 300000 reached at EIP 0x00100000/);
  });

  it("exits 2 for a missing file, a bad ELF, an image that does not fit, or a bad --mem", async () => {
    const missing = await lockstep("run", "no-such.elf");
    expect(missing).toMatchObject({ status: 2, stdout: "" });
    expect(missing.stderr).toBe("lockstep: cannot read no-such.elf: no such file\n");
    const notElf = join(tmp, "text.elf");
    writeFileSync(notElf, "hello, this is not an ELF file at all, just text padding it out to size\n");
    const bad = await lockstep("run", notElf);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/text\.elf: bad guest image: neither an ELF file nor a Multiboot image .*\(at file offset 0x0\)/);
    const big = await lockstep("run", guest("fits.elf", exitWith(0)), "--mem", "1M");
    expect(big.status).toBe(2);
    expect(big.stderr).toMatch(/is outside RAM \[0, 0x100000\)/);
    const mem = await lockstep("run", guest("mem.elf", exitWith(0)), "--mem", "1000");
    expect(mem.status).toBe(2);
    expect(mem.stderr).toMatch(/--mem must be a multiple of 4K/);
  });
});
