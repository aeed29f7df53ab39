// The etcd arbiter (host/node/etcd-arbiter.ts) against a real etcd (Debian's
// etcd-server), started here on loopback with a temporary data directory: the
// arbiter contract the memory and file arbiters pass, 8 claimants racing,
// damaged keys, etcd frozen and killed in the middle of a run, and the
// lockstep arbiter command on it.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ArbiterError, type ArbiterClaim } from "../../host/ft/arbiter.js";
import { EtcdArbiter } from "../../host/node/etcd-arbiter.js";
import { arbiterContract, claim } from "../ft/arbiter-contract.js";
import { runLockstep } from "../helpers/cli.js";
import { requireTools, type HostTool } from "./host-tools.js";

const ETCD: HostTool = {
  what: "etcd",
  pkg: "etcd-server",
  probe: (() => {
    let v: ReturnType<HostTool["probe"]> | undefined;
    return () => {
      if (v) return v;
      const r = spawnSync("etcd", ["--version"], { encoding: "utf8", timeout: 30_000 });
      return (v = r.error ? { ok: false, why: `etcd: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}` } : r.status === 0 ? { ok: true } : { ok: false, why: `etcd --version exited ${r.status}` });
    };
  })(),
};

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const tmp = mkdtempSync(join(tmpdir(), "lockstep-etcd-"));
let etcd: ChildProcess | undefined;
let etcdLog = "";
let url = "";
let peerUrl = "";

/** Starts etcd on `url` with the data directory in tmp (kept across restarts), and waits until it answers. */
async function startEtcd(): Promise<void> {
  etcdLog = "";
  const proc = spawn(
    "etcd",
    [
      "--name", "arbiter-test",
      "--data-dir", join(tmp, "data"),
      "--listen-client-urls", url,
      "--advertise-client-urls", url,
      "--listen-peer-urls", peerUrl,
      "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", `arbiter-test=${peerUrl}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  etcd = proc;
  proc.stdout!.on("data", (b: Buffer) => (etcdLog += b.toString()));
  proc.stderr!.on("data", (b: Buffer) => (etcdLog += b.toString()));
  const t0 = Date.now();
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`etcd exited ${proc.exitCode} while starting:\n${etcdLog.slice(-2000)}`);
    try {
      await new EtcdArbiter(url, { timeoutMs: 1000 }).vms();
      return;
    } catch {
      if (Date.now() - t0 > 60_000) throw new Error(`etcd did not answer on ${url} within 60 s:\n${etcdLog.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stopEtcd(): Promise<void> {
  const proc = etcd;
  etcd = undefined;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGKILL");
  await gone;
}

beforeAll(async () => {
  if (!ETCD.probe().ok) return; // each test then fails (CI) or skips, saying what to install
  url = `http://127.0.0.1:${await freePort()}`;
  peerUrl = `http://127.0.0.1:${await freePort()}`;
  await startEtcd();
}, 90_000);

afterAll(async () => {
  await stopEtcd();
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach((ctx) => requireTools(ctx, ETCD));

// Each arbiter of the contract gets its own key prefix: a fresh, empty arbiter on the one etcd.
let prefixes = 0;
const fresh = (): EtcdArbiter => new EtcdArbiter(url, { prefix: `test-${++prefixes}/lockstep/arbiter/` });

arbiterContract([["EtcdArbiter", fresh]]);

describe("EtcdArbiter: keys", () => {
  it("a claim is the key PREFIX/VM/EPOCH holding the claim as JSON, and PREFIX/VM/top its epoch", async () => {
    const a = fresh();
    await a.claim(claim(2, "primary"));
    await a.claim(claim(5, "backup"));
    await a.claim(claim(5, "late"));
    const client = new Etcd3({ hosts: url });
    try {
      expect(await client.getAll().prefix(a.prefix).strings()).toEqual({
        [`${a.prefix}vm-a/2`]: JSON.stringify(claim(2, "primary")),
        [`${a.prefix}vm-a/5`]: JSON.stringify(claim(5, "backup")),
        [`${a.prefix}vm-a/top`]: "5",
      });
    } finally {
      client.close();
    }
  });

  it("another EtcdArbiter on the same etcd sees the same claims (it is the arbiter, not the object)", async () => {
    const a = fresh();
    await a.claim(claim(1, "primary"));
    expect(await new EtcdArbiter(url, { prefix: a.prefix }).claim(claim(1, "backup"))).toEqual({ won: false, holder: claim(1, "primary") });
  });

  it("damaged keys are errors naming the key, never 'no holder'", async () => {
    const a = fresh();
    const client = new Etcd3({ hosts: url });
    const key = (name: string) => `${a.prefix}vm-a/${name}`;
    const where = (name: string) => `etcd key ${key(name)} at ${url}`;
    try {
      await a.claim(claim(3, "primary"));
      await client.put(key("3")).value('{"vm": "vm-a", "epo');
      await expect(a.claim(claim(3, "backup"))).rejects.toThrow(`damaged claim: ${where("3")}: not JSON`);
      await expect(a.claim(claim(2, "backup"))).rejects.toThrow(`damaged claim: ${where("3")}: not JSON`);
      await expect(a.status("vm-a")).rejects.toThrow(`damaged claim: ${where("3")}: not JSON`);
      await client.put(key("3")).value(JSON.stringify(claim(4, "primary")));
      await expect(a.status("vm-a")).rejects.toThrow(`damaged claim: ${where("3")}: it holds VM vm-a epoch 4, not its own key's`);
      // Epochs come from the keys: a damaged claim still holds its epoch, and a higher one is won above it.
      expect(await a.claim(claim(5, "backup"))).toEqual({ won: true });
      await expect(a.claims("vm-a")).rejects.toThrow(`damaged claim: ${where("3")}`);

      // A missing top would let a low epoch win again.
      await client.delete().key(key("top"));
      await expect(a.claim(claim(1, "backup"))).rejects.toThrow(`damaged arbiter: ${where("top")} is missing, but epoch 5 is claimed`);
      await expect(a.status("vm-a")).rejects.toThrow(ArbiterError);
      await client.put(key("top")).value("05");
      await expect(a.claim(claim(9, "backup"))).rejects.toThrow(`damaged arbiter: ${where("top")} holds "05", not an epoch`);
      await client.put(key("top")).value("4");
      await expect(a.claim(claim(9, "backup"))).rejects.toThrow(`damaged arbiter: ${where("top")} says epoch 4, but the highest claim key is 5`);
      await client.put(key("top")).value("5");
      await client.put(key("07")).value(JSON.stringify(claim(7, "x")));
      await expect(a.claim(claim(9, "backup"))).rejects.toThrow(`damaged arbiter: ${where("07")} is not a claim key (an epoch, an integer >= 1, or top)`);

      // Reset clears it all and says what it could not read.
      expect(await a.reset("vm-a")).toEqual({ removed: [claim(5, "backup")], unreadable: ["07", "3"] });
      expect(await client.getAll().prefix(a.prefix).keys()).toEqual([]);
      expect(await a.claim(claim(1, "primary"))).toEqual({ won: true });
    } finally {
      client.close();
    }
  });
});

/** `epochs[k]` claimed by replica rk, each through its own arbiter (its own connection), all at once. */
async function race(prefix: string, vm: string, epochs: number[]) {
  const arbiters = epochs.map(() => new EtcdArbiter(url, { prefix }));
  const results = await Promise.all(arbiters.map((a, k) => a.claim({ vm, epoch: epochs[k], replica: `r${k}`, atMs: Date.now(), reason: "race" })));
  return results.map((result, k) => ({ replica: `r${k}`, epoch: epochs[k], result }));
}

describe("EtcdArbiter: claimants racing", () => {
  it("8 claim epoch 1 at once: exactly one wins and every loser names it, round after round", async () => {
    const a = fresh();
    for (let round = 0; round < 10; round++) {
      const vm = `race-${round}`;
      const results = await race(a.prefix, vm, Array(8).fill(1));
      const winners = results.filter((r) => r.result.won);
      expect(winners).toHaveLength(1);
      const holder = { vm, epoch: 1, replica: winners[0].replica, atMs: expect.any(Number), reason: "race" };
      for (const r of results.filter((x) => !x.result.won)) expect(r.result).toEqual({ won: false, holder });
      expect(await a.claims(vm)).toEqual([holder]);
    }
  });

  it("8 claim epochs 1..8 at once: epoch 8 wins, and no loser is told of a holder below its epoch", async () => {
    const a = fresh();
    for (let round = 0; round < 5; round++) {
      const vm = `mixed-${round}`;
      const results = await race(a.prefix, vm, [1, 2, 3, 4, 5, 6, 7, 8]);
      expect(results[7].result).toEqual({ won: true });
      for (const r of results.slice(0, 7)) {
        if (!r.result.won) expect(r.result.holder.epoch).toBeGreaterThanOrEqual(r.epoch);
      }
      expect((await a.status(vm))?.replica).toBe("r7");
    }
  });
});

describe("EtcdArbiter: etcd stops in the middle of a run", () => {
  it("a frozen etcd is an error after the deadline, a killed one at once; after a restart the claims are all there", async () => {
    const a = new EtcdArbiter(url, { prefix: `stop-${process.pid}/`, timeoutMs: 1000 });
    expect(await a.claim(claim(1, "primary"))).toEqual({ won: true });

    etcd!.kill("SIGSTOP");
    try {
      const t0 = Date.now();
      await expect(a.claim(claim(2, "backup"))).rejects.toThrow(new RegExp(`^etcd at ${url}: cannot .*\\(no answer within 1000 ms\\)$`));
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      etcd!.kill("SIGCONT");
    }

    await stopEtcd();
    const t1 = Date.now();
    await expect(a.claim(claim(3, "backup"))).rejects.toThrow(new RegExp(`^etcd at ${url}: cannot read the claims of VM vm-a: .*UNAVAILABLE`));
    await expect(a.status("vm-a")).rejects.toThrow(ArbiterError);
    expect(Date.now() - t1).toBeLessThan(3000);

    // The same data directory: raft kept what was decided. The claim made while
    // etcd was frozen may or may not have been applied; nothing after it was.
    await startEtcd();
    const held = await a.claims("vm-a");
    expect(held.at(-1)).toEqual(claim(1, "primary"));
    expect(held.map((c) => c.epoch).filter((e) => e !== 1 && e !== 2)).toEqual([]);
    expect(await a.claim(claim(1, "late"))).toEqual({ won: false, holder: held[0] });
    expect(await a.claim(claim(3, "backup"))).toEqual({ won: true });
  });
});

describe("lockstep arbiter on etcd", () => {
  const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);
  const c = (vm: string, epoch: number, replica: string, reason: string): ArbiterClaim => ({ vm, epoch, replica, atMs: T0 + epoch * 1000, reason });

  it("status lists the claims under the default prefix; reset removes one VM's; an unreachable etcd exits 2", async () => {
    const a = new EtcdArbiter(url);
    await a.claim(c("vm-b", 1, "primary", "first start"));
    await a.claim(c("vm-a", 1, "primary", "first start"));
    await a.claim(c("vm-a", 2, "backup", "primary silent"));
    const spec = `etcd:${url}`;
    expect(await runLockstep(tmp, "arbiter", "status", spec)).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        "VM vm-a: 2 claim(s), epoch 2 highest",
        '  epoch 2  replica backup  at 2025-01-02T03:04:07.000Z  reason "primary silent"',
        '  epoch 1  replica primary  at 2025-01-02T03:04:06.000Z  reason "first start"',
        "VM vm-b: 1 claim(s), epoch 1 highest",
        '  epoch 1  replica primary  at 2025-01-02T03:04:06.000Z  reason "first start"',
        "",
      ].join("\n"),
    });
    expect(await runLockstep(tmp, "arbiter", "reset", spec, "--vm", "vm-a")).toEqual({
      status: 0,
      stderr: "",
      stdout: [
        `removed 2 claim(s) of VM vm-a from ${spec}:`,
        '  epoch 2  replica backup  at 2025-01-02T03:04:07.000Z  reason "primary silent"',
        '  epoch 1  replica primary  at 2025-01-02T03:04:06.000Z  reason "first start"',
        "",
      ].join("\n"),
    });
    const json = await runLockstep(tmp, "arbiter", "status", spec, "--json");
    expect(JSON.parse(json.stdout)).toEqual({ arbiter: spec, vms: [{ vm: "vm-b", claims: [c("vm-b", 1, "primary", "first start")] }] });
    expect(await a.claim(c("vm-a", 1, "again", "new run"))).toEqual({ won: true });

    const closed = `http://127.0.0.1:${await freePort()}`;
    const down = await runLockstep(tmp, "arbiter", "status", `etcd:${closed}`);
    expect(down.status).toBe(2);
    expect(down.stdout).toBe("");
    expect(down.stderr).toMatch(new RegExp(`^lockstep: etcd at ${closed}: cannot list the VMs: .*UNAVAILABLE.*\\n$`));
  });
});
