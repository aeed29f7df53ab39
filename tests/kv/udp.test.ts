// The UDP frame transport on localhost, and `lockstep kv-client` run as a
// user runs it (a child process) against a stand-in for the VM: a UDP
// transport whose frames go to the server model, optionally losing replies.

import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { KvModel } from "../../host/kv/model.js";
import { parseHostPort, parseNicSpec, parsePort } from "../../host/net/frame-transport.js";
import { UdpTransport } from "../../host/node/udp-transport.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(root, "bin", "lockstep.mjs");
const open: UdpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

/** A port that was free a moment ago (bound and released). */
async function freePort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function transport(listenPort: number, peerPort: number): Promise<UdpTransport> {
  const t = await UdpTransport.open({ listenPort, peerPort });
  open.push(t);
  return t;
}

const nextFrame = (t: UdpTransport) => new Promise<Uint8Array>((resolve) => {
  const off = t.onFrame((f) => {
    off();
    resolve(f);
  });
});

describe("UDP transport", () => {
  it("carries one frame per datagram both ways, up to 1514 bytes", async () => {
    const a = await transport(0, 1); // peer fixed below
    const b = await transport(0, a.localPort);
    const a2 = await UdpTransport.open({ listenPort: 0, peerPort: b.localPort });
    open.push(a2);
    const got = nextFrame(b);
    const big = Uint8Array.from({ length: 1514 }, (_, k) => k & 0xff);
    a2.send(big);
    expect(await got).toEqual(big);
    const back = nextFrame(a);
    b.send(Uint8Array.of(1, 2, 3));
    expect(await back).toEqual(Uint8Array.of(1, 2, 3));
    expect(a2.stats.framesOut).toBe(1);
    expect(b.stats).toEqual({ framesIn: 1, framesOut: 1, droppedIn: 0 });
    expect(() => b.send(new Uint8Array(1515))).toThrow(/1 to 1514 bytes, got 1515/);
    expect(() => b.send(new Uint8Array(0))).toThrow(RangeError);
  });

  it("drops oversized datagrams on receipt and counts them", async () => {
    const b = await transport(0, 9);
    const raw = createSocket("udp4");
    const got = nextFrame(b);
    await new Promise<void>((r) => raw.send(new Uint8Array(1515), b.localPort, "127.0.0.1", () => r()));
    await new Promise<void>((r) => raw.send(Uint8Array.of(7), b.localPort, "127.0.0.1", () => r()));
    expect(await got).toEqual(Uint8Array.of(7));
    expect(b.stats.droppedIn).toBe(1);
    raw.close();
  });

  it("refuses a port that is already bound", async () => {
    const a = await transport(0, 9);
    await expect(UdpTransport.open({ listenPort: a.localPort, peerPort: 9 })).rejects.toThrow(/EADDRINUSE/);
  });

  it("parses --nic udp:LISTEN:PEER and HOST:PORT", () => {
    expect(parseNicSpec("udp:5000:5001")).toEqual({ kind: "udp", listenPort: 5000, peerPort: 5001 });
    expect(() => parseNicSpec("tcp:1:2")).toThrow("bad NIC spec 'tcp:1:2': expected udp:LISTENPORT:PEERPORT");
    expect(() => parseNicSpec("udp:0:2")).toThrow("LISTENPORT must be 1..65535, got 0");
    expect(() => parseNicSpec("udp:1:70000")).toThrow("PEERPORT must be 1..65535, got 70000");
    expect(parseHostPort("127.0.0.1:4000", "--vm")).toEqual({ host: "127.0.0.1", port: 4000 });
    expect(parseHostPort("localhost:4000", "--vm")).toEqual({ host: "127.0.0.1", port: 4000 });
    expect(() => parseHostPort("4000", "--vm")).toThrow("--vm must be HOST:PORT, got '4000'");
    expect(() => parseHostPort("example.com:1", "--vm")).toThrow(/IPv4 address or localhost/);
    expect(() => parseHostPort("1.2.3.456:1", "--vm")).toThrow(/bad IPv4 address/);
    expect(parsePort("0", "x", true)).toBe(0);
    expect(() => parsePort("12a", "--listen")).toThrow("--listen must be a port number, got '12a'");
  });
});

interface Run { status: number; stdout: string; stderr: string }
function lockstep(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ status: typeof code === "number" ? code : -1, stdout, stderr });
    });
  });
}

/** A stand-in VM: frames sent to its port go to the model; replies go to clientPort. `loseReply` drops chosen replies. */
async function fakeVm(model: KvModel, loseReply: (index: number) => boolean = () => false) {
  const clientPort = await freePort();
  const vm = await transport(0, clientPort);
  let replies = 0;
  vm.onFrame((f) => {
    const r = model.handle(f);
    if (r && !loseReply(replies++)) vm.send(r);
  });
  const kv = (...args: string[]) => lockstep("kv-client", ...args, "--vm", `127.0.0.1:${vm.localPort}`, "--listen", String(clientPort));
  return { vm, kv, clientPort };
}

describe("lockstep kv-client", () => {
  it("puts, gets, lists, counts and deletes; a missing key exits 1", async () => {
    const model = new KvModel();
    const { kv } = await fakeVm(model);
    expect(await kv("put", "greeting", "hello world", "--client-id", "5")).toMatchObject({ status: 0, stdout: "created\n" });
    expect(await kv("put", "greeting", "hi", "--client-id", "5")).toMatchObject({ status: 0, stdout: "replaced\n" });
    expect(await kv("get", "greeting", "--client-id", "5")).toMatchObject({ status: 0, stdout: "hi\n" });
    expect(await kv("incr", "n", "-3", "--client-id", "6")).toMatchObject({ status: 0, stdout: "-3\n" });
    expect(await kv("list")).toMatchObject({ status: 0, stdout: "greeting\nn\n" });
    expect(await kv("count")).toMatchObject({ status: 0, stdout: "2\n" });
    expect(await kv("get", "6869", "--hex")).toMatchObject({ status: 1, stderr: "kv-client: get 6869: not found\n" });
    expect(await kv("get", "6e", "--hex")).toMatchObject({ status: 0, stdout: "2d33\n" });
    expect(await kv("cas", "greeting", "nope", "x")).toMatchObject({ status: 1, stderr: "kv-client: cas greeting: mismatch; current value: hi\n" });
    expect(await kv("cas", "--expect-absent", "other", "x")).toMatchObject({ status: 0, stdout: "ok\n" });
    expect(await kv("del", "greeting")).toMatchObject({ status: 0, stdout: "deleted\n" });
    expect(await kv("del", "greeting")).toMatchObject({ status: 1 });
    expect(await kv("hello", "--client-id", "5")).toMatchObject({ status: 0, stdout: "3\n" }); // HELLO, PUT / HELLO, PUT / HELLO, GET
    const stats = await kv("stats");
    expect(stats.status).toBe(0);
    expect(stats.stdout).toMatch(/^keys 2\nkeyCapacity 256\nclients \d+\nclientCapacity 64\ngeneration 1\n/);
    expect(model.requests).toBe(13);
  }, 60_000);

  it("resends when a reply is lost, and the server executes the request once", async () => {
    const model = new KvModel();
    const { kv } = await fakeVm(model, (i) => i === 1); // reply 0 is HELLO's; lose INCR's first reply
    const r = await kv("incr", "counter", "--client-id", "9", "--timeout", "200", "--verbose");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("1\n");
    expect(r.stderr).toMatch(/send INCR request 1\n.*resend INCR request 1 \(attempt 2\)\n.*reply to INCR request 1: OK \(replayed\)/s);
    expect(new TextDecoder().decode(model.peek(new TextEncoder().encode("counter")))).toBe("1");
    expect(model.replays).toBe(1);
  }, 60_000);

  it("exits 4 when nothing answers, 5 when the server refuses, 2 on usage errors", async () => {
    const silent = await freePort();
    const listen = await freePort();
    const none = await lockstep("kv-client", "get", "k", "--vm", `127.0.0.1:${silent}`, "--listen", String(listen), "--timeout", "50", "--retries", "1");
    expect(none.status).toBe(4);
    expect(none.stderr).toMatch(/^lockstep: get: no reply to HELLO \(request 0\) after 2 attempts of 50 ms/);

    const model = new KvModel();
    const { kv } = await fakeVm(model);
    await kv("put", "k", "v", "--client-id", "4", "--request-number", "10");
    const stale = await kv("put", "k", "w", "--client-id", "4", "--request-number", "3");
    expect(stale.status).toBe(5);
    expect(stale.stderr).toMatch(/the server refused the request: STALE/);
    expect(await kv("incr", "k")).toMatchObject({ status: 5, stderr: expect.stringMatching(/NOT_NUMBER/) });

    const usage: [string[], RegExp][] = [
      [["get"], /get: missing KEY/],
      [["frob"], /unknown kv command 'frob'/],
      [["get", "k"], /--vm HOST:PORT is required/],
      [["get", "k", "--vm", "127.0.0.1:1"], /--listen PORT is required/],
      [["get", "k", "--vm", "nowhere", "--listen", "5"], /--vm must be HOST:PORT/],
      [["get", "x".repeat(65), "--vm", "127.0.0.1:1", "--listen", "5"], /KEY must be 1 to 64 bytes, got 65/],
      [["put", "k", "v".repeat(513), "--vm", "127.0.0.1:1", "--listen", "5"], /VALUE must be at most 512 bytes/],
      [["incr", "k", "1.5", "--vm", "127.0.0.1:1", "--listen", "5"], /DELTA must be a decimal integer/],
      [["get", "zz", "--hex", "--vm", "127.0.0.1:1", "--listen", "5"], /KEY must be hex bytes/],
      [["get", "k", "--expect-absent", "--vm", "127.0.0.1:1", "--listen", "5"], /--expect-absent is for cas only/],
      [["get", "k", "--client-id", "0", "--vm", "127.0.0.1:1", "--listen", "5"], /--client-id must be at least 1/],
    ];
    const results = await Promise.all(usage.map(([args]) => lockstep("kv-client", ...args)));
    usage.forEach(([args, msg], k) => {
      expect(results[k].status, args.join(" ")).toBe(2);
      expect(results[k].stderr).toMatch(msg);
    });
  }, 60_000);
});
