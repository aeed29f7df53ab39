// The README's commands, run as a user pastes them: every line of its
// command blocks, in order, in one bash, so a background `... &` is running
// when the next lines talk to it and `kill $!` must stop it (the port is
// free afterwards). Each command must exit 0 and no command's output may be
// doubled (each character twice: COM1 and the debug console both on stdout).
//
// `npx lockstep` is run as `node <repo>/bin/lockstep.mjs`: on first use npx
// installs the checkout into its cache and runs its `prepare` script (the
// engine build) in the shared tree while other tests read build/. The last
// test runs npx itself (with scripts off) for the part that is npx's own:
// `npx lockstep ... &` then `kill $!` stopping the VM.

import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { LOCKSTEP_BIN } from "./helpers/cli.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const tmp = mkdtempSync(join(tmpdir(), "lockstep-readme-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * The fenced code blocks with no language tag (the README's command blocks),
 * as lists of lines. Fences are paired in order, so a block with a tag
 * (```sh: commands that are shown, not run) is skipped whole.
 */
function commandBlocks(md: string): string[][] {
  const blocks: string[][] = [];
  let open: { tag: string; lines: string[] } | null = null;
  for (const line of md.split("\n")) {
    const fence = /^```(.*)$/.exec(line);
    if (!fence) {
      open?.lines.push(line);
    } else if (open) {
      if (open.tag === "") blocks.push(open.lines.filter((l) => l.trim() !== ""));
      open = null;
    } else {
      open = { tag: fence[1]!.trim(), lines: [] };
    }
  }
  return blocks;
}

/** True if the line is its characters each written twice ("hheelloo"), as with two consoles on one stdout. */
function doubled(line: string): boolean {
  if (line.length < 6 || line.length % 2 !== 0 || new Set(line).size < 3) return false;
  for (let i = 0; i < line.length; i += 2) if (line[i] !== line[i + 1]) return false;
  return true;
}

/** Whether a UDP port on 127.0.0.1 can be bound (nothing holds it). */
function udpFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createSocket("udp4");
    s.once("error", () => { s.close(); res(false); });
    s.bind(port, "127.0.0.1", () => s.close(() => res(true)));
  });
}

async function waitFor(what: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (await what()) return true;
  return what();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const blocks = commandBlocks(README);
const quickStart = blocks.find((b) => b.some((l) => l.startsWith("npm ")));
const commands = blocks.filter((b) => b !== quickStart).flat();

/** Runs a bash script in `cwd`; resolves with its status when it (not its background children) ends. */
function bash(script: string, cwd: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn("bash", ["-c", script], { cwd, stdio: "ignore" });
    p.on("error", reject);
    p.on("exit", (status) => resolve(status));
  });
}

describe("the README's commands", () => {
  it("has the quick start exactly, and one block of lockstep commands", () => {
    expect(quickStart).toEqual(["npm ci && npm start", "npm test"]);
    expect(commands.length).toBeGreaterThan(5);
    for (const c of commands) expect(c, c).toMatch(/^(npx lockstep |kill \$!$)/);
  });

  // `npm ci` reinstalls node_modules under the running tests and `npm test` is
  // this very run; `npm start` is the one quick-start command run here.
  it("npm start runs and exits 0, its output not doubled", () => {
    const r = spawnSync("npm", ["start", "--silent"], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split("\n").filter(doubled)).toEqual([]);
    // The fault-tolerant demo (lockstep ft-demo): the primary killed, the backup live, the checks passed.
    expect(r.stdout).toMatch(/backup is live at instruction \d+ \(epoch 2\)/);
    expect(r.stdout).toMatch(/^ok: nothing acknowledged was lost and nothing was applied twice$/m);
  }, 320_000);

  it("each command, pasted in order, exits 0 with its output not doubled; kill $! stops the VM and frees its port", async () => {
    // The commands name files under guests/ and tests/ and create files in the
    // working directory: a scratch directory with those two linked in.
    const work = join(tmp, "cmds");
    mkdirSync(work);
    symlinkSync(join(ROOT, "guests"), join(work, "guests"));
    symlinkSync(join(ROOT, "tests"), join(work, "tests"));
    const lines = commands.map((c, i) => {
      const cmd = c.replace(/^npx lockstep /, `node ${LOCKSTEP_BIN} `);
      if (cmd.endsWith("&")) return `${cmd.slice(0, -1)} > out.${i} 2> err.${i} & echo $! > bg.pid`;
      return `${cmd} > out.${i} 2> err.${i}; echo $? > status.${i}`;
    });
    const bgLine = commands.findIndex((c) => c.endsWith("&"));
    const status = await bash(lines.join("\n"), work);
    expect(status).toBe(0);
    const bgPid = Number(readFileSync(join(work, "bg.pid"), "utf8"));
    try {
      for (const [i, c] of commands.entries()) {
        const out = readFileSync(join(work, `out.${i}`), "utf8");
        const err = readFileSync(join(work, `err.${i}`), "utf8");
        if (i !== bgLine) expect(readFileSync(join(work, `status.${i}`), "utf8").trim(), `${c}\n${err}`).toBe("0");
        expect(out.split("\n").filter(doubled), c).toEqual([]);
      }
      // kill $! is the VM itself (not a wrapper that leaves it running): it ends, and its port is free.
      expect(await waitFor(() => !alive(bgPid), 10_000), "the background VM is still running after kill $!").toBe(true);
      const nic = /--nic udp:(\d+):/.exec(commands[bgLine]);
      expect(nic).not.toBeNull();
      expect(await udpFree(Number(nic![1]))).toBe(true);
      expect(readFileSync(join(work, `err.${bgLine}`), "utf8")).toMatch(/interrupted by SIGTERM/);
      // The put the README makes is what its get reads back.
      const get = commands.findIndex((c) => / get /.test(c));
      const put = /put (\S+) (\S+)/.exec(commands.find((c) => / put /.test(c)) ?? "");
      expect(put).not.toBeNull();
      expect(readFileSync(join(work, `out.${get}`), "utf8").trim()).toBe(put![2]);
    } finally {
      if (alive(bgPid)) process.kill(bgPid, "SIGKILL");
    }
  }, 300_000);

  it("npx lockstep ... & then kill $! stops the VM, not only npx", async () => {
    const bg = commands.find((c) => c.endsWith("&"))!;
    const port = Number(/--nic udp:(\d+):/.exec(bg)![1]);
    // No --disk: the image is the other test's; scripts off so npx does not rebuild the engines.
    const cmd = bg.replace(/ --disk \S+/, "");
    // bash prints $! (npx's pid) and waits; the test then does what `kill $!` does: SIGTERM to that pid.
    const sh = spawn("bash", ["-c", `${cmd.slice(0, -1)} > /dev/null 2>&1 & echo $!; wait`], {
      cwd: ROOT, stdio: ["ignore", "pipe", "ignore"], detached: true, env: { ...process.env, npm_config_ignore_scripts: "true" },
    });
    try {
      const npxPid = await new Promise<number>((res, rej) => {
        sh.stdout.setEncoding("utf8").once("data", (d: string) => res(Number(d.trim())));
        sh.on("error", rej);
      });
      expect(await waitFor(async () => !(await udpFree(port)), 60_000), "the VM never bound its port").toBe(true);
      process.kill(npxPid, "SIGTERM");
      expect(await waitFor(() => udpFree(port), 10_000), "the VM outlived kill $! of npx and holds the port").toBe(true);
    } finally {
      // Whatever is left of the group bash leads (npm, sh, the VM) goes.
      try { process.kill(-sh.pid!, "SIGKILL"); } catch { /* already gone */ }
    }
  }, 120_000);
});
