// Cross-check against QEMU: every guest of tests/system/cross-guests.ts runs
// as a Multiboot kernel under qemu-system-i386 (-kernel, serial to a file,
// isa-debug-exit on port 0xF4) and under lockstep (`lockstep run GUEST
// --serial stdio`), and both must print the same serial bytes and exit with
// the same status (QEMU's process status is (status << 1) | 1). A guest whose
// ELF is missing fails the test; a missing QEMU fails it under CI and skips
// it, saying why, elsewhere (tests/system/host-tools.ts).

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CROSS_GUESTS, type CrossGuest } from "./cross-guests.js";
import { QEMU, requireTools } from "./host-tools.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "lockstep-cross-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const DEFAULT_MEM_MIB = 32;
const DEFAULT_TIMEOUT_MS = 120_000;

interface Outcome {
  serial: string;
  status: number | null;
  stderr: string;
}

/** A fresh empty directory for one run. */
const scratch = (what: string) => mkdtempSync(join(tmp, `${what}-`));

function runQemu(g: CrossGuest, elf: string): Outcome {
  const dir = scratch(`qemu-${g.name}`);
  const serialFile = join(dir, "serial.out");
  const extra = g.args?.(dir).qemu ?? [];
  const r = spawnSync("qemu-system-i386", [
    "-kernel", elf, "-m", String(g.memMiB ?? DEFAULT_MEM_MIB), "-display", "none", "-no-reboot", "-monitor", "none",
    "-serial", `file:${serialFile}`, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", ...extra,
  ], { cwd: root, encoding: "utf8", timeout: g.timeoutMs ?? DEFAULT_TIMEOUT_MS, input: "" });
  if (r.error) throw new Error(`qemu-system-i386 on ${elf}: ${r.error.message}`);
  // isa-debug-exit: the process exits with (status << 1) | 1; anything even is QEMU's own status.
  const status = r.status !== null && (r.status & 1) === 1 ? r.status >> 1 : null;
  if (status === null) throw new Error(`qemu-system-i386 on ${elf} did not exit through port 0xF4 (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
  return { serial: existsSync(serialFile) ? readFileSync(serialFile, "latin1") : "", status, stderr: r.stderr };
}

function runLockstep(g: CrossGuest, elf: string): Outcome {
  const dir = scratch(`lockstep-${g.name}`);
  const extra = g.args?.(dir).lockstep ?? [];
  const r = spawnSync(process.execPath, [
    join(root, "bin", "lockstep.mjs"), "run", elf, "--mem", `${g.memMiB ?? DEFAULT_MEM_MIB}M`, "--serial", "stdio", "--debugcon", "none", ...extra,
  ], { cwd: root, encoding: "latin1", timeout: g.timeoutMs ?? DEFAULT_TIMEOUT_MS, input: "" });
  if (r.error) throw new Error(`lockstep run ${elf}: ${r.error.message}`);
  return { serial: r.stdout, status: r.status, stderr: r.stderr };
}

/** Replaces the loader-dependent lines by a marker (checking lockstep's exact text where it is known). */
function normalize(g: CrossGuest, serial: string, machine: "qemu" | "lockstep"): string {
  const lines = serial.split("\n");
  for (const [i, dep] of (g.loaderDependent ?? []).entries()) {
    const at = lines.findIndex((l) => dep.line.test(l));
    expect(at, `${machine}: no line matching ${dep.line} in the serial output:\n${serial}`).toBeGreaterThanOrEqual(0);
    if (machine === "lockstep" && dep.lockstep) expect(lines[at]).toBe(dep.lockstep(g.memMiB ?? DEFAULT_MEM_MIB));
    lines[at] = `<loader-dependent line ${i}>`;
  }
  return lines.join("\n");
}

describe("guests under QEMU and lockstep", () => {
  for (const g of CROSS_GUESTS) it(`${g.name}: same serial output and exit status`, (ctx) => {
    const elf = join("guests", "bin", `${g.name}.elf`);
    expect(existsSync(join(root, elf)), `${elf} does not exist (build it with make -C guests, commit it)`).toBe(true);
    requireTools(ctx, QEMU);

    const q = runQemu(g, elf);
    expect(q.status, `QEMU: ${g.name} exited with status ${q.status}; serial:\n${q.serial}`).toBe(g.status);
    if (g.expect) expect(q.serial).toMatch(g.expect);

    const l = runLockstep(g, elf);
    expect(l.status, `lockstep: ${g.name} exited with ${l.status}; stderr:\n${l.stderr}\nserial:\n${l.serial}`).toBe(g.status);
    expect(normalize(g, l.serial, "lockstep")).toBe(normalize(g, q.serial, "qemu"));
  });
});
