// The host tools the system tests need, and the one rule for a missing one:
// under CI (CI set to anything but "", "0" or "false") the test FAILS, saying
// what to install, so a CI machine without QEMU cannot go green by skipping;
// elsewhere the test is skipped with that same reason, printed to stderr too
// so a local run shows why it did less.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "vitest";

/** True when the CI environment variable says this is a CI run. */
export const ON_CI = ((v) => v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false")(process.env.CI);

export interface HostTool {
  /** What the test needs, as a reader would name it. */
  what: string;
  /** The Debian package that provides it. */
  pkg: string;
  /** Whether it works here, and if not, what went wrong (probed once). */
  probe: () => { ok: true } | { ok: false; why: string };
}

function runs(cmd: string, args: string[], input?: string): { ok: true } | { ok: false; why: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "ignore", "pipe"], timeout: 60_000 });
  if (r.error) return { ok: false, why: `${cmd}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}` };
  if (r.status !== 0) return { ok: false, why: `${cmd} ${args.join(" ")} exited ${r.status}: ${(r.stderr ?? "").trim().split("\n").pop()}` };
  return { ok: true };
}

const cached = (f: HostTool["probe"]): HostTool["probe"] => {
  let v: ReturnType<HostTool["probe"]> | undefined;
  return () => (v ??= f());
};

export const MAKE: HostTool = { what: "make", pkg: "make", probe: cached(() => runs("make", ["--version"])) };

/** gcc able to link a 32-bit freestanding image against libgcc, as guests/Makefile does. */
export const GCC_M32: HostTool = {
  what: "gcc with 32-bit support (-m32 -lgcc)",
  pkg: "gcc-multilib",
  probe: cached(() => {
    const dir = mkdtempSync(join(tmpdir(), "lockstep-gcc-probe-"));
    try {
      return runs("gcc", ["-m32", "-ffreestanding", "-nostdlib", "-static", "-x", "c", "-", "-lgcc", "-o", join(dir, "probe.elf")], "void _start(void) { for (;;); }\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }),
};

export const QEMU: HostTool = { what: "qemu-system-i386", pkg: "qemu-system-x86", probe: cached(() => runs("qemu-system-i386", ["--version"])) };

/** Debian's python3 with its Unicorn module (a pyenv python3 on PATH lacks it). */
export const PYTHON3 = "/usr/bin/python3";
export const PYTHON_UNICORN: HostTool = {
  what: `${PYTHON3} with the unicorn module`,
  pkg: "python3-unicorn",
  probe: cached(() => runs(PYTHON3, ["-c", "import unicorn"])),
};

/**
 * Fails (under CI) or skips (otherwise) the running test with `reason` unless
 * `ok`. Use it for a precondition of the host, never for the property tested.
 */
export function requireHost(ctx: TestContext, ok: boolean, reason: string): void {
  if (ok) return;
  if (ON_CI) throw new Error(`${reason} (CI is set, so this fails instead of skipping)`);
  process.stderr.write(`[system test skipped] ${ctx.task.name}: ${reason}\n`);
  ctx.skip(reason);
}

/** requireHost for each tool: a missing one names itself and its Debian package. */
export function requireTools(ctx: TestContext, ...tools: HostTool[]): void {
  const missing = tools.map((t) => ({ t, p: t.probe() })).filter((x) => !x.p.ok);
  if (missing.length === 0) return;
  const whys = missing.map(({ t, p }) => `${t.what} is not available (${p.ok ? "" : p.why})`);
  const pkgs = [...new Set(missing.map(({ t }) => t.pkg))].join(" ");
  requireHost(ctx, false, `${whys.join("; ")}: install it with apt-get install -y ${pkgs}`);
}
