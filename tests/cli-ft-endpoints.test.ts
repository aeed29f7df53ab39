// Clients of the pair as two processes (`lockstep primary` / `lockstep
// backup --nic`, docs/ft-endpoints.md): the kv guest behind both replicas'
// NIC ports, `lockstep kv-client --vm A,B` finding the live one by probing.
// The primary is killed with SIGKILL while a request is in flight (its reply
// held by the Output Rule: the backup is stopped meanwhile); the client
// carries on against the backup (live, epoch 2), every acknowledged
// PUT reads back and the counter equals the acknowledged INCRs. And the
// replica's host drops malformed probes, counts them, and goes on.

import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeProbe, encodeProbeAsk, type ProbeAnswer } from "../host/net/probe.js";
import { LOCKSTEP_BIN, runLockstep, startLockstep, type LockstepProc } from "./helpers/cli.js";

const REPO = new URL("..", import.meta.url).pathname;
const GUEST = join(REPO, "guests/bin/kv.elf");
const tmp = mkdtempSync(join(tmpdir(), "lockstep-ft-endpoints-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
const children: ChildProcess[] = [];
afterAll(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL"); });

/** A port free on both TCP and UDP a moment ago (the channel is TCP, the NICs UDP). */
async function freePort(): Promise<number> {
  for (;;) {
    const p = await new Promise<number>((res) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => res(port));
      });
    });
    const udpFree = await new Promise<boolean>((res) => {
      const u = createSocket("udp4");
      u.once("error", () => res(false));
      u.bind(p, "127.0.0.1", () => u.close(() => res(true)));
    });
    if (udpFree) return p;
  }
}

type Proc = LockstepProc;
const start = (args: string[]): Proc => startLockstep(REPO, args, children);

const until = async (what: () => boolean, ms = 20_000) => {
  for (const t0 = Date.now(); !what(); ) {
    if (Date.now() - t0 > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** A primary and a backup of the kv guest, NICs on their own ports, frames to `clientPort`. */
async function startPair() {
  const arb = join(tmp, `arb${++dirs}`);
  mkdirSync(arb);
  const [channel, pNic, bNic, clientPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  // A generous silence timeout: a loaded 2-core machine must not fail over by
  // itself, nor while the test holds the backup stopped (below).
  const common = [GUEST, "--cmdline", "", "--arbiter", `file:${arb}`, "--timeout-ms", "4000"];
  const p = start(["primary", ...common, "--listen", `127.0.0.1:${channel}`, "--nic", `udp:${pNic}:${clientPort}`]);
  await until(() => /waiting for the backup/.test(p.err()));
  const b = start(["backup", ...common, "--connect", `127.0.0.1:${channel}`, "--nic", `udp:${bNic}:${clientPort}`]);
  await until(() => /backup connected/.test(p.err()));
  return { p, b, pNic, bNic, clientPort };
}

/** One kv-client run, as a user runs it, with both endpoints; its stdout, stderr and status. */
function kv(pair: { pNic: number; bNic: number; clientPort: number }, onStderr: ((s: string) => void) | null, ...args: string[]) {
  const child = spawn(process.execPath, [LOCKSTEP_BIN, "kv-client", "--vm", `127.0.0.1:${pair.pNic},127.0.0.1:${pair.bNic}`,
    "--listen", String(pair.clientPort), "--client-id", "77", "--timeout", "300", "--retries", "40", "--verbose", ...args], { cwd: REPO });
  children.push(child);
  let out = "", err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => { err += d; onStderr?.(err); });
  return new Promise<{ status: number | null; out: string; err: string }>((res) => child.on("exit", (code) => res({ status: code, out, err })));
}

/** Asks one port; the answer, or null after `ms`. */
async function probe(port: number, bytes: Uint8Array = encodeProbeAsk(42), ms = 1000): Promise<ProbeAnswer | null> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  try {
    return await new Promise((res) => {
      const t = setTimeout(() => res(null), ms);
      s.on("message", (m) => {
        clearTimeout(t);
        const a = decodeProbe(new Uint8Array(m));
        res(a.kind === "answer" ? a : null);
      });
      s.send(bytes, port, "127.0.0.1");
    });
  } finally {
    s.close();
  }
}

describe("lockstep kv-client --vm A,B against lockstep primary / backup --nic", () => {
  it("the primary killed with SIGKILL mid-request: the client finishes on the backup (epoch 2); nothing acknowledged is lost or applied twice", async () => {
    const pair = await startPair();
    expect(await probe(pair.pNic)).toMatchObject({ role: "primary", live: true, epoch: 1 });
    expect(await probe(pair.bNic)).toMatchObject({ role: "backup", live: false, epoch: 1 });

    const OPS = 12, KILL_AT = 5;
    const puts = new Map<string, string>();
    let incrs = 0;
    let lastCounter = 0n;
    const clientErr: string[] = [];
    for (let k = 0; k < OPS; k++) {
      const isPut = k % 2 === 0;
      const args = isPut ? ["put", `key${k}`, `value${k}`] : ["incr", "counter"];
      // At KILL_AT the request cannot be answered before the primary dies: the
      // backup is stopped (SIGSTOP), so the primary holds every reply for its
      // acknowledgement. Once the client has sent the request, the primary is
      // killed and the backup continued: it takes over, and the client must
      // find it and resend there. Request numbers are given (no HELLO, which
      // would wait for a reply too).
      if (k === KILL_AT) pair.b.child.kill("SIGSTOP");
      const watch = k === KILL_AT ? (e: string) => {
        if (/send (PUT|INCR) request/.test(e) && !pair.p.child.killed) {
          pair.p.child.kill("SIGKILL");
          pair.b.child.kill("SIGCONT");
        }
      } : null;
      const r = await kv(pair, watch, "--request-number", String(k + 1), ...args);
      clientErr.push(r.err);
      expect(r.status, r.err).toBe(0);
      if (isPut) puts.set(`key${k}`, `value${k}`);
      else {
        incrs++;
        lastCounter = BigInt(r.out.trim());
      }
    }
    expect(await pair.p.exit).toBe(-9);
    expect(pair.b.err()).toMatch(/backup is live at instruction \d+ \(epoch 2\)/);
    // The request in flight was resent where a probe found the backup live at epoch 2.
    const killed = clientErr[KILL_AT];
    expect(killed).toMatch(/resend (PUT|INCR) request \d+ \(attempt \d+\)/);
    expect(killed).toMatch(new RegExp(`127\\.0\\.0\\.1:${pair.pNic} no answer; 127\\.0\\.0\\.1:${pair.bNic} backup, live, epoch 2 -> 127\\.0\\.0\\.1:${pair.bNic}`));
    expect(killed.indexOf("epoch 2 ->")).toBeLessThan(killed.lastIndexOf("resend"));
    expect(clientErr.slice(0, KILL_AT).join("")).not.toMatch(/resend/);
    expect(clientErr.at(-1)).toMatch(new RegExp(`127\\.0\\.0\\.1:${pair.pNic} no answer; 127\\.0\\.0\\.1:${pair.bNic} backup, live, epoch 2`));
    expect(lastCounter).toBe(BigInt(incrs));

    for (const [key, value] of puts) {
      const r = await kv(pair, null, "get", key);
      expect(r.status, r.err).toBe(0);
      expect(r.out.trim()).toBe(value);
    }
    const c = await kv(pair, null, "get", "counter");
    expect(c.out.trim()).toBe(String(incrs));
    pair.b.child.kill("SIGTERM");
    expect(await pair.b.exit).toBe(143);
    expect(pair.b.err()).toMatch(/nic: [1-9]\d* frames in, \d+ dropped while not live, [1-9]\d* out; [1-9]\d* probes answered, 0 malformed dropped/);
  }, 120_000);

  it("a malformed probe is dropped and counted; the replica answers the next one and serves the guest", async () => {
    const pair = await startPair();
    const bad = [
      Uint8Array.of(0x4c, 0x53, 0x50, 0x42), // magic only
      Uint8Array.of(...encodeProbeAsk(1), 0), // too long
      Uint8Array.from(encodeProbeAsk(1), (x, k) => (k === 4 ? 7 : x)), // version 7
    ];
    for (const b of bad) expect(await probe(pair.bNic, b, 300)).toBeNull();
    expect(await probe(pair.bNic)).toMatchObject({ role: "backup", live: false, epoch: 1 });
    expect(await probe(pair.pNic, bad[0], 300)).toBeNull();
    expect(await probe(pair.pNic)).toMatchObject({ role: "primary", live: true, epoch: 1 });
    // The client probes each endpoint once more (2 answered each, with ours).
    const r = await kv(pair, null, "ping", "still-here");
    expect(r.status, r.err).toBe(0);
    expect(r.out).toMatch(/^still-here /);
    pair.b.child.kill("SIGTERM");
    pair.p.child.kill("SIGTERM");
    await Promise.all([pair.p.exit, pair.b.exit]);
    expect(pair.b.err()).toMatch(/2 probes answered, 3 malformed dropped \(last: probe: version 7, expected 1 \(offset 4\)\)/);
    expect(pair.p.err()).toMatch(/2 probes answered, 1 malformed dropped \(last: probe: 4 bytes is shorter than the 8-byte header/);
  }, 60_000);

  it("refuses a bad --vm list or --nic (status 2) and keeps the single endpoint form", async () => {
    const lists = ["127.0.0.1:1,", "127.0.0.1:1,,127.0.0.1:2", "127.0.0.1:1,localhost:1", "127.0.0.1:1,nohost"];
    const runs = await Promise.all(lists.map((vm) => runLockstep(REPO, "kv-client", "--vm", vm, "--listen", "1", "ping")));
    runs.forEach((r, k) => {
      expect(r.status, lists[k] + r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^lockstep: --vm/);
    });
    expect(runs[2].stderr).toMatch(/127\.0\.0\.1:1 is listed twice/);
    const single = await runLockstep(REPO, "kv-client", "--vm", "127.0.0.1:9", "--listen", String(await freePort()), "--timeout", "20", "--retries", "0", "ping");
    expect(single.status).toBe(4);
    expect(single.stderr).toMatch(/is the VM running with --nic udp:9:/);
    const r = await runLockstep(REPO, "primary", GUEST, "--listen", "127.0.0.1:1", "--arbiter", `file:${tmp}`, "--nic", "udp:1");
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--nic: bad NIC spec 'udp:1'/);
    // A NIC port in use fails before the arbiter is claimed: the arbiter stays empty.
    const taken = createSocket("udp4");
    await new Promise<void>((res) => taken.bind(0, "127.0.0.1", () => res()));
    const port = taken.address().port;
    const arb = join(tmp, `arb${++dirs}`);
    mkdirSync(arb);
    const inUse = await runLockstep(REPO, "primary", GUEST, "--listen", `127.0.0.1:${await freePort()}`, "--arbiter", `file:${arb}`, "--nic", `udp:${port}:9`);
    taken.close();
    expect(inUse.status, inUse.stderr).toBe(2);
    expect(inUse.stderr).toMatch(new RegExp(`--nic udp:${port}:9: UDP port ${port} on 127\\.0\\.0\\.1 is already in use`));
    expect(readdirSync(arb)).toEqual([]);
  }, 60_000);
});
