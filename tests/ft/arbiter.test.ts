// The arbiter (host/ft/arbiter.ts, host/node/file-arbiter.ts): both
// implementations pass one contract; the file arbiter also refuses damaged
// or missing state, and picks exactly one winner among processes racing.

import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ArbiterError, MemoryArbiter, vmIdProblem, type Arbiter } from "../../host/ft/arbiter.js";
import { FileArbiter } from "../../host/node/file-arbiter.js";
import { arbiterContract, claim } from "./arbiter-contract.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-arbiter-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let dirs = 0;
function freshDir(): string {
  const d = join(tmp, `arb-${++dirs}`);
  mkdirSync(d);
  return d;
}

const implementations: Array<[string, () => Arbiter]> = [
  ["MemoryArbiter", () => new MemoryArbiter()],
  ["FileArbiter", () => new FileArbiter(freshDir())],
];

arbiterContract(implementations);

describe("vmIdProblem", () => {
  it("takes a hex prefix plus a run id, and 128 safe characters", () => {
    expect(vmIdProblem("3fa9c2d1-run.7_b")).toBeUndefined();
    expect(vmIdProblem("a".repeat(128))).toBeUndefined();
    expect(vmIdProblem("a b")).toBe("may hold only letters, digits, '.', '_' and '-', got \" \" at position 1");
    expect(vmIdProblem(7)).toBe("must be a string, got number");
  });
});

describe("FileArbiter on disk", () => {
  it("a claim is the file VM/EPOCH.claim holding the claim as JSON, and no temporary file stays", async () => {
    const dir = freshDir();
    const a = new FileArbiter(dir);
    await a.claim(claim(2, "primary"));
    expect(readdirSync(join(dir, "vm-a"))).toEqual(["2.claim"]);
    expect(JSON.parse(readFileSync(join(dir, "vm-a", "2.claim"), "utf8"))).toEqual(claim(2, "primary"));
    await a.claim(claim(2, "backup"));
    expect(readdirSync(join(dir, "vm-a"))).toEqual(["2.claim"]);
  });

  it("another FileArbiter on the same directory sees the same claims (it is the arbiter, not the object)", async () => {
    const dir = freshDir();
    await new FileArbiter(dir).claim(claim(1, "primary"));
    expect(await new FileArbiter(dir).claim(claim(1, "backup"))).toEqual({ won: false, holder: claim(1, "primary") });
  });

  it("refuses a directory that does not exist, rather than creating a second arbiter", async () => {
    const dir = join(tmp, "not-mounted");
    const a = new FileArbiter(dir);
    await expect(a.claim(claim(1, "p"))).rejects.toThrow(`arbiter directory ${dir} does not exist (create it, or mount the file system both replicas share)`);
    await expect(a.status("vm-a")).rejects.toThrow(ArbiterError);
    expect(existsSync(dir)).toBe(false);
    writeFileSync(dir, "a file");
    await expect(a.claim(claim(1, "p"))).rejects.toThrow(`arbiter ${dir} is not a directory`);
  });

  it("names the path it cannot write", async () => {
    // Root writes through any mode bits, so as root (CI) the directory is sysfs, where mkdir is refused with EPERM.
    const asRoot = process.getuid?.() === 0;
    const dir = asRoot ? "/sys" : freshDir();
    if (!asRoot) chmodSync(dir, 0o500);
    try {
      await expect(new FileArbiter(dir).claim(claim(1, "p"))).rejects.toThrow(`cannot create the VM directory ${join(dir, "vm-a")}: permission denied`);
    } finally {
      if (!asRoot) chmodSync(dir, 0o700);
    }
  });

  it("a damaged claim file still holds its epoch, and reading it is an error naming it", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "vm-a"));
    const damaged = join(dir, "vm-a", "3.claim");
    writeFileSync(damaged, '{"vm": "vm-a", "epo');
    const a = new FileArbiter(dir);
    // Never "no holder": the claim neither wins nor reports a holder it cannot read.
    await expect(a.claim(claim(3, "backup"))).rejects.toThrow(`damaged claim file ${damaged}: not JSON`);
    await expect(a.claim(claim(2, "backup"))).rejects.toThrow(`damaged claim file ${damaged}: not JSON`);
    await expect(a.status("vm-a")).rejects.toThrow(`damaged claim file ${damaged}: not JSON`);
    writeFileSync(damaged, JSON.stringify(claim(4, "primary")));
    await expect(a.status("vm-a")).rejects.toThrow(`damaged claim file ${damaged}: it holds VM vm-a epoch 4, not its own name's`);
    writeFileSync(damaged, JSON.stringify({ ...claim(3, "primary"), epoch: "3" }));
    await expect(a.status("vm-a")).rejects.toThrow(`damaged claim file ${damaged}: epoch must be an integer >= 1, got "3"`);
    // A higher epoch is still won above it; reset clears it and says it could not read it.
    expect(await a.claim(claim(5, "backup"))).toEqual({ won: true });
    expect(await a.reset("vm-a")).toEqual({ removed: [claim(5, "backup")], unreadable: ["3.claim"] });
    expect(existsSync(join(dir, "vm-a"))).toBe(false);
  });

  it("a claim file name that is not EPOCH.claim is refused, not skipped", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "vm-a"));
    writeFileSync(join(dir, "vm-a", "07.claim"), JSON.stringify(claim(7, "p")));
    await expect(new FileArbiter(dir).claim(claim(8, "p"))).rejects.toThrow(
      `damaged arbiter: ${join(dir, "vm-a", "07.claim")} is not a claim file name (EPOCH.claim, EPOCH an integer >= 1)`,
    );
  });

  it("reset removes a crashed claimant's temporary file but leaves files that are not the arbiter's", async () => {
    const dir = freshDir();
    const a = new FileArbiter(dir);
    await a.claim(claim(1, "p"));
    writeFileSync(join(dir, "vm-a", ".tmp-123-abc"), "half");
    writeFileSync(join(dir, "vm-a", "notes.txt"), "mine");
    expect(await a.reset("vm-a")).toEqual({ removed: [claim(1, "p")], unreadable: [] });
    expect(readdirSync(join(dir, "vm-a"))).toEqual(["notes.txt"]);
  });

  it("of two claims of different epochs that both got linked, the lower one loses to the higher", async () => {
    const dir = freshDir();
    // Between epoch 2's link and its check, epoch 3 is claimed by another arbiter on the same directory.
    const other = new FileArbiter(dir);
    const a = new FileArbiter(dir, { afterLink: async () => void expect(await other.claim(claim(3, "backup"))).toEqual({ won: true }) });
    expect(await a.claim(claim(2, "primary"))).toEqual({ won: false, holder: claim(3, "backup") });
    expect(await other.status("vm-a")).toEqual(claim(3, "backup"));
  });
});

// The real race: separate processes, as two replicas on two hosts would be.
const CHILD = fileURLToPath(new URL("./arbiter-race-child.ts", import.meta.url));

interface Contender { proc: ChildProcess; lines: string[]; ready: Promise<void>; done: Promise<number | null> }

function contender(args: string[]): Contender {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let stderr = "";
  let buffered = "";
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  proc.stdout!.setEncoding("utf8").on("data", (s: string) => {
    buffered += s;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line === "ready") onReady();
      else lines.push(line);
    }
  });
  proc.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const done = new Promise<number | null>((resolve) =>
    proc.on("close", (status) => {
      if (status !== 0) process.stderr.write(`contender ${args[4]} exited ${status}: ${stderr}\n`);
      onReady(); // a contender that died before "ready" must not hang the test
      resolve(status);
    }),
  );
  return { proc, lines, ready, done };
}

async function race(dir: string, vm: string, epochs: number[]): Promise<Array<{ replica: string; epoch: number; result: any }>> {
  const barrier = join(dir, `go-${vm}`);
  const cs = epochs.map((epoch, k) => ({ epoch, replica: `r${k}`, c: contender([dir, barrier, vm, String(epoch), `r${k}`]) }));
  await Promise.all(cs.map((x) => x.c.ready));
  writeFileSync(barrier, "");
  const statuses = await Promise.all(cs.map((x) => x.c.done));
  expect(statuses).toEqual(epochs.map(() => 0));
  return cs.map((x) => ({ replica: x.replica, epoch: x.epoch, result: JSON.parse(x.c.lines[0]) }));
}

describe("FileArbiter: processes racing", () => {
  it("8 processes claim epoch 1 at once: exactly one wins and every loser names it, round after round", async () => {
    const dir = freshDir();
    for (let round = 0; round < 3; round++) {
      const vm = `race-${round}`;
      const results = await race(dir, vm, Array(8).fill(1));
      const winners = results.filter((r) => r.result.won);
      expect(winners).toHaveLength(1);
      const holder = { vm, epoch: 1, replica: winners[0].replica, atMs: expect.any(Number), reason: "race" };
      for (const r of results.filter((x) => !x.result.won)) expect(r.result.holder).toEqual(holder);
      expect(await new FileArbiter(dir).status(vm)).toEqual(holder);
      expect(readdirSync(join(dir, vm))).toEqual(["1.claim"]);
    }
  }, 120_000);

  it("8 processes claim epochs 1..8 at once: epoch 8 wins, and no loser is told of a holder below its epoch", async () => {
    const dir = freshDir();
    const results = await race(dir, "mixed", [1, 2, 3, 4, 5, 6, 7, 8]);
    expect(results[7].result).toEqual({ won: true });
    for (const r of results.filter((x) => !x.result.won)) expect(r.result.holder.epoch).toBeGreaterThanOrEqual(r.epoch);
    expect((await new FileArbiter(dir).status("mixed"))?.replica).toBe("r7");
  }, 120_000);
});
