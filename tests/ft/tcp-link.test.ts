// The logging channel over TCP (host/node/tcp-link.ts, docs/ft-protocol.md
// "Over TCP"): real sockets on 127.0.0.1. Frames of every type both ways,
// keyed and not; a long LOG stream; peers that are refused (wrong key,
// garbage, silence) while the listener goes on; a bad tag, a duplicate and a
// gap after the hand-over; a peer process killed outright; close from either
// side; a port nobody listens on; a peer that does not read; key files.

import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { FrameWriter, frameTagger, type Frame } from "../../host/ft/wire.js";
import {
  connectLink,
  listenLink,
  readKeyFile,
  type Listener,
  type TcpLink,
} from "../../host/node/tcp-link.js";
import { KINDS } from "../../host/replay/event-kinds.js";

const HOST = "127.0.0.1";
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const OTHER_KEY = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);

const hello = (role: "primary" | "backup", replica: string = role): Frame => ({
  type: "hello",
  role,
  version: 1,
  configHash: new Uint8Array(32).fill(0xab),
  epoch: 3,
  startIcount: 12345n,
  replica,
});

/** One frame of every type after HELLO. */
const OTHERS: Frame[] = [
  {
    type: "log",
    base: 5000n,
    entries: [
      { icount: 5010n, kind: KINDS.IRQ.code, payload: KINDS.IRQ.encode(0x20) },
      { icount: 5010n, kind: KINDS.SERIAL_RX.code, payload: Uint8Array.of(0x41, 0x42) },
      { icount: 9000n, kind: KINDS.NIC_RX.code, payload: new Uint8Array(1500).fill(9) },
    ],
  },
  { type: "progress", icount: 2n ** 64n - 1n },
  { type: "ack", icount: 777n },
  { type: "release", seq: 42 },
  { type: "heartbeat", ms: 123456 },
  { type: "bye", code: 1, reason: "guest exited — ünïcode" },
];

/** Frames and the close reason of one link, with waits on them. */
class Seen {
  frames: Frame[] = [];
  reason: string | null = null;
  closedAt = 0;
  private waiters: (() => void)[] = [];
  constructor(link: TcpLink) {
    link.onFrame((f) => {
      this.frames.push(f);
      this.wake();
    });
    link.onClose((r) => {
      this.reason = r;
      this.closedAt = performance.now();
      this.wake();
    });
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what} (frames ${this.frames.length}, reason ${this.reason})`)), ms);
      const check = () => {
        if (ok()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }
  count(n: number) {
    return this.until(`${n} frames`, () => this.frames.length >= n);
  }
  closed() {
    return this.until("close", () => this.reason !== null);
  }
}

/** A listener whose links and refusals the test can wait for. */
async function listener(key: Uint8Array | null, extra: { firstFrameMs?: number; maxBuffered?: number } = {}) {
  const links: { link: TcpLink; peer: string; seen: Seen }[] = [];
  const refused: { peer: string; reason: string }[] = [];
  let wake: (() => void) | null = null;
  const l = await listenLink({
    host: HOST,
    port: 0,
    key,
    ...extra,
    onLink: (link, peer) => {
      links.push({ link, peer, seen: new Seen(link) });
      wake?.();
    },
    onRefused: (peer, reason) => {
      refused.push({ peer, reason });
      wake?.();
    },
  });
  open.push(l);
  const until = (what: string, ok: () => boolean, ms = 5000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const check = () => {
        if (ok()) {
          clearTimeout(timer);
          wake = null;
          resolve();
        } else wake = check;
      };
      check();
    });
  return {
    port: l.port,
    links,
    refused,
    nthLink: async (n: number) => {
      await until(`link ${n}`, () => links.length >= n);
      return links[n - 1]!;
    },
    nthRefusal: async (n: number) => {
      await until(`refusal ${n}`, () => refused.length >= n);
      return refused[n - 1]!;
    },
  };
}

const open: Listener[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(open.splice(0).map((l) => l.close()));
});

/** A raw socket, for peers that break the protocol on purpose. */
function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: HOST, port }, () => resolve(s));
    s.on("error", reject);
    sockets.push(s);
  });
}

describe.each([
  ["no key", null],
  ["a key", KEY],
] as const)("frames over TCP, %s", (_name, key) => {
  it("every type goes both ways, the first frame included", async () => {
    const srv = await listener(key);
    const client = await connectLink({ host: HOST, port: srv.port, key });
    const fromServer = new Seen(client);
    client.send(hello("primary"));
    for (const f of OTHERS) client.send(f);
    const { link, peer, seen } = await srv.nthLink(1);
    expect(peer).toMatch(/^127\.0\.0\.1:\d+$/);
    await seen.count(1 + OTHERS.length);
    expect(seen.frames).toEqual([hello("primary"), ...OTHERS]);
    link.send(hello("backup"));
    for (const f of OTHERS) link.send(f);
    await fromServer.count(1 + OTHERS.length);
    expect(fromServer.frames).toEqual([hello("backup"), ...OTHERS]);
    expect(link.stats.framesIn).toBe(1 + OTHERS.length);
    expect(client.stats.framesIn).toBe(1 + OTHERS.length);
    expect(srv.refused).toEqual([]);
    client.close();
  });

  it("10,000 LOG frames arrive complete and in order", async () => {
    const srv = await listener(key);
    const client = await connectLink({ host: HOST, port: srv.port, key });
    client.send(hello("primary"));
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const base = BigInt(i * 100);
      client.send({ type: "log", base, entries: [{ icount: base + 7n, kind: KINDS.SERIAL_RX.code, payload: Uint8Array.of(i & 0xff, i >> 8) }] });
    }
    const { seen } = await srv.nthLink(1);
    await seen.until(`${N + 1} frames`, () => seen.frames.length >= N + 1, 20_000);
    expect(seen.frames.length).toBe(N + 1);
    seen.frames.slice(1).forEach((f, i) => {
      if (f.type !== "log" || f.base !== BigInt(i * 100) || f.entries[0]!.payload[0] !== (i & 0xff) || f.entries[0]!.payload[1] !== i >> 8) {
        throw new Error(`frame ${i + 2} out of order or damaged: ${JSON.stringify(f, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`);
      }
    });
    client.close();
  });
});

describe("latency and hand-over", () => {
  it("small frames go out at once (TCP_NODELAY): 100 round trips of two frames and a reply take far less than Nagle's delays", async () => {
    // With Nagle on, the second small frame waits for the peer's delayed ACK
    // (about 40 ms on Linux) every round; with it off a round is well under 1 ms.
    const l = await listenLink({
      host: HOST,
      port: 0,
      onLink: (link) => {
        link.send(hello("backup"));
        link.onFrame((f) => {
          if (f.type === "progress") link.send({ type: "ack", icount: f.icount });
        });
      },
    });
    open.push(l);
    const c = await connectLink({ host: HOST, port: l.port });
    let rounds = 0;
    const done = new Promise<void>((resolve) =>
      c.onFrame(() => {
        if (++rounds > 100) return resolve();
        c.send({ type: "log", base: BigInt(rounds), entries: [] });
        c.send({ type: "progress", icount: BigInt(rounds) });
      }),
    );
    const t0 = performance.now();
    c.send(hello("primary"));
    await done;
    expect(performance.now() - t0).toBeLessThan(2000);
    c.close();
  });

  it("frames that arrive before any onFrame listener wait for it, in order", async () => {
    const l = await listenLink({
      host: HOST,
      port: 0,
      onLink: (link) => {
        link.send(hello("backup"));
        for (const f of OTHERS) link.send(f);
      },
    });
    open.push(l);
    const c = await connectLink({ host: HOST, port: l.port });
    c.send(hello("primary"));
    await new Promise((r) => setTimeout(r, 200));
    expect(c.stats.framesIn).toBe(1 + OTHERS.length);
    const seen = new Seen(c);
    await seen.count(1 + OTHERS.length);
    expect(seen.frames).toEqual([hello("backup"), ...OTHERS]);
    c.close();
  });

  it("onLink that throws refuses that peer only", async () => {
    const refused: string[] = [];
    let calls = 0;
    const l = await listenLink({
      host: HOST,
      port: 0,
      onLink: (link) => {
        if (++calls === 1) throw new Error("no room");
        link.send(hello("backup"));
      },
      onRefused: (_peer, reason) => refused.push(reason),
    });
    open.push(l);
    const a = await connectLink({ host: HOST, port: l.port });
    const firstSeen = new Seen(a);
    a.send(hello("primary"));
    await firstSeen.closed();
    expect(refused).toEqual(["onLink threw: no room"]);
    const b = await connectLink({ host: HOST, port: l.port });
    const bSeen = new Seen(b);
    b.send(hello("primary"));
    await bSeen.count(1);
    expect(calls).toBe(2);
    b.close();
  });
});

describe("the listener refuses a bad peer and goes on", () => {
  it("a peer with the wrong key is refused; a peer with the right one is then accepted", async () => {
    const srv = await listener(KEY);
    const wrong = await connectLink({ host: HOST, port: srv.port, key: OTHER_KEY });
    const wrongSeen = new Seen(wrong);
    wrong.send(hello("primary", "impostor"));
    const r = await srv.nthRefusal(1);
    expect(r.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(r.reason).toMatch(/tag/);
    await wrongSeen.closed();
    expect(wrongSeen.reason).toMatch(/peer closed the connection|reset/);

    // An unkeyed peer is no better than a wrong key.
    const none = await connectLink({ host: HOST, port: srv.port, key: null });
    none.send(hello("primary", "unkeyed"));
    expect((await srv.nthRefusal(2)).reason).toMatch(/tag/);

    const right = await connectLink({ host: HOST, port: srv.port, key: KEY });
    right.send(hello("primary", "real"));
    const { seen } = await srv.nthLink(1);
    await seen.count(1);
    expect(seen.frames[0]).toEqual(hello("primary", "real"));
    expect(srv.links.length).toBe(1);
    right.close();
  });

  it("garbage bytes are refused as not this protocol", async () => {
    const srv = await listener(null);
    const s = await rawSocket(srv.port);
    s.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const r = await srv.nthRefusal(1);
    expect(r.reason).toMatch(/magic/);
    await new Promise<void>((resolve) => s.on("close", () => resolve()));
    const ok = await connectLink({ host: HOST, port: srv.port });
    ok.send(hello("backup"));
    await srv.nthLink(1);
    ok.close();
  });

  it("a peer that sends nothing is dropped after the first-frame time", async () => {
    const srv = await listener(null, { firstFrameMs: 200 });
    await rawSocket(srv.port);
    const r = await srv.nthRefusal(1);
    expect(r.reason).toBe("no valid first frame within 200 ms");
  });

  it("a peer that hangs up before its first frame is reported", async () => {
    const srv = await listener(null);
    const s = await rawSocket(srv.port);
    s.end();
    expect((await srv.nthRefusal(1)).reason).toBe("the peer closed the connection");
    expect(srv.links).toEqual([]);
  });
});

describe("after the hand-over", () => {
  /** A raw peer writing hand-made frames, and the server side of it. */
  async function handMade(key: Uint8Array | null) {
    const srv = await listener(key);
    const s = await rawSocket(srv.port);
    const writer = new FrameWriter(await frameTagger(key));
    return { srv, s, writer };
  }

  it("a frame with a bad tag closes the link naming the tag", async () => {
    const { srv, s, writer } = await handMade(KEY);
    s.write(writer.encode(hello("primary")));
    const { seen } = await srv.nthLink(1);
    const bad = writer.encode({ type: "ack", icount: 5n });
    bad[bad.length - 1]! ^= 1;
    s.write(bad);
    await seen.closed();
    expect(seen.reason).toMatch(/tag/);
    expect(seen.frames).toEqual([hello("primary")]);
    expect(srv.refused).toEqual([]);
  });

  it("a duplicate frame is dropped and counted, the link goes on", async () => {
    const { srv, s, writer } = await handMade(null);
    s.write(writer.encode(hello("primary")));
    const two = writer.encode({ type: "progress", icount: 10n });
    // The repeat arrives in the same chunk as the original, and again alone.
    s.write(Buffer.concat([two, two]));
    s.write(two);
    s.write(writer.encode({ type: "progress", icount: 20n }));
    const { link, seen } = await srv.nthLink(1);
    await seen.count(3);
    expect(seen.frames).toEqual([hello("primary"), { type: "progress", icount: 10n }, { type: "progress", icount: 20n }]);
    expect(link.stats.dropped).toBe(2);
    expect(link.closed).toBe(false);
  });

  it("a gap closes the link with a reason naming the missing frames", async () => {
    const { srv, s, writer } = await handMade(null);
    s.write(writer.encode(hello("primary")));
    const { seen } = await srv.nthLink(1);
    writer.encode({ type: "progress", icount: 10n }); // frame 2, never sent
    s.write(writer.encode({ type: "progress", icount: 20n }));
    await seen.closed();
    expect(seen.reason).toMatch(/frame number 3 after 1 \(frames 2\.\.2 missing\)/);
  });

  it("frames split into single bytes are put back together", async () => {
    const { srv, s, writer } = await handMade(KEY);
    const bytes = Buffer.concat([hello("primary"), ...OTHERS].map((f) => writer.encode(f)));
    s.setNoDelay(true);
    for (let i = 0; i < bytes.length; i += 997) {
      s.write(bytes.subarray(i, i + 1));
      s.write(bytes.subarray(i + 1, i + 997));
      await new Promise((r) => setTimeout(r, 0));
    }
    const { seen } = await srv.nthLink(1);
    await seen.count(1 + OTHERS.length);
    expect(seen.frames).toEqual([hello("primary"), ...OTHERS]);
  });
});

describe("closing", () => {
  async function pair() {
    const srv = await listener(KEY);
    const client = await connectLink({ host: HOST, port: srv.port, key: KEY });
    const clientSeen = new Seen(client);
    client.send(hello("primary"));
    const { link, seen } = await srv.nthLink(1);
    await seen.count(1);
    return { client, clientSeen, link, seen };
  }

  it("close() on the listener's side closes the connecting side, with a reason", async () => {
    const { clientSeen, link, seen } = await pair();
    link.send(hello("backup"));
    link.send({ type: "bye", code: 0, reason: "stop" });
    link.close("done here");
    await clientSeen.closed();
    // What was sent before close() still arrives.
    expect(clientSeen.frames).toEqual([hello("backup"), { type: "bye", code: 0, reason: "stop" }]);
    expect(clientSeen.reason).toBe("the peer closed the connection");
    expect(seen.reason).toBe("done here");
  });

  it("close() on the connecting side closes the listener's side, with a reason", async () => {
    const { client, clientSeen, seen } = await pair();
    client.close();
    await seen.closed();
    expect(seen.reason).toBe("the peer closed the connection");
    expect(clientSeen.reason).toBe("closed");
    // A listener registered after the close still hears it.
    const late = await new Promise<string>((resolve) => client.onClose(resolve));
    expect(late).toBe("closed");
  });

  it("a peer process killed with SIGKILL is seen as closed within a second", async () => {
    const srv = await listener(KEY);
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./tcp-peer-child.ts", import.meta.url)), String(srv.port), Buffer.from(KEY).toString("hex")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const { seen } = await srv.nthLink(1);
      await seen.until("heartbeats", () => seen.frames.length >= 5, 15_000);
      expect(seen.frames[0]).toMatchObject({ type: "hello", replica: "child" });
      const killedAt = performance.now();
      child.kill("SIGKILL");
      await seen.closed();
      expect(seen.closedAt - killedAt).toBeLessThan(1000);
      expect(seen.reason).toMatch(/^(the peer closed the connection|the peer's connection was reset)$/);
    } finally {
      child.kill("SIGKILL");
    }
  }, 30_000);

  it("closing the listener closes its links", async () => {
    const { clientSeen, seen } = await pair();
    await open.pop()!.close();
    await clientSeen.closed();
    expect(seen.reason).toBe("the listener closed");
    expect(clientSeen.reason).toMatch(/peer closed the connection|reset/);
  });

  it("a peer that does not read is cut off at the send-buffer bound, not buffered without end", async () => {
    const limit = 4 << 20;
    const srv = await listener(null, { maxBuffered: limit });
    const s = await rawSocket(srv.port);
    s.write(new FrameWriter(await frameTagger(null)).encode(hello("backup")));
    s.pause(); // reads nothing from here on
    const { link, seen } = await srv.nthLink(1);
    link.send(hello("primary"));
    const entries = Array.from({ length: 500 }, (_, i) => ({ icount: BigInt(i), kind: KINDS.NIC_RX.code, payload: new Uint8Array(1500) }));
    let sent = 0;
    // Far more than the kernel's socket buffers and the bound together.
    while (!link.closed && sent < 400 << 20) {
      link.send({ type: "log", base: 0n, entries });
      sent += 500 * 1500;
      await new Promise((r) => setImmediate(r));
    }
    await seen.closed();
    expect(seen.reason).toMatch(/^the send buffer holds \d+ bytes, over the limit of 4194304: the peer is not reading$/);
  }, 30_000);
});

describe("connecting", () => {
  it("to a port nobody listens on fails saying so", async () => {
    const l = await listenLink({ host: HOST, port: 0, onLink: () => {} });
    const port = l.port;
    await l.close();
    await expect(connectLink({ host: HOST, port })).rejects.toThrow(`nothing listens on ${HOST}:${port}`);
  });

  it("refuses a key that is not 32 bytes", async () => {
    await expect(connectLink({ host: HOST, port: 1, key: new Uint8Array(16) })).rejects.toThrow(/32 bytes/);
    await expect(listenLink({ host: HOST, port: 0, key: new Uint8Array(33), onLink: () => {} })).rejects.toThrow(/32 bytes/);
  });

  it("listening on a port in use fails saying so", async () => {
    const srv = await listener(null);
    await expect(listenLink({ host: HOST, port: srv.port, onLink: () => {} })).rejects.toThrow(`${HOST}:${srv.port} is already in use`);
  });
});

describe("key files", () => {
  const dir = mkdtempSync(join(tmpdir(), "lockstep-key-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const hex = Buffer.from(KEY).toString("hex");
  const file = (name: string, text: string, mode = 0o600) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };

  it("reads 64 hex digits, a trailing newline and either case allowed", () => {
    expect(readKeyFile(file("ok", hex + "\n"))).toEqual({ key: KEY, warning: null });
    expect(readKeyFile(file("upper", hex.toUpperCase())).key).toEqual(KEY);
  });

  it("names what is wrong", () => {
    expect(() => readKeyFile(join(dir, "absent"))).toThrow(`key file ${join(dir, "absent")}: no such file`);
    expect(() => readKeyFile(file("short", hex.slice(2)))).toThrow(/: 62 hex digits, a key is exactly 64 \(32 bytes\)$/);
    expect(() => readKeyFile(file("long", hex + "00"))).toThrow(/: 66 hex digits/);
    expect(() => readKeyFile(file("nothex", hex.slice(0, 10) + "zz" + hex.slice(12)))).toThrow(/: "z" is not a hex digit/);
    expect(() => readKeyFile(file("empty", ""))).toThrow(/: 0 hex digits/);
  });

  it.skipIf(process.platform === "win32")("warns when group or others may read it", () => {
    const r = readKeyFile(file("shared", hex, 0o644));
    expect(r.key).toEqual(KEY);
    expect(r.warning).toMatch(/group or others may access it \(mode 644\); chmod 600/);
    expect(readKeyFile(file("group", hex, 0o640)).warning).toMatch(/mode 640/);
  });
});
