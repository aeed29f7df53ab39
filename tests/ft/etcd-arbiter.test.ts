// The etcd arbiter without an etcd (host/node/etcd-arbiter.ts): its spec
// parsing, and that an etcd nobody answers at is an ArbiterError naming the
// URL, soon. Against a real etcd: tests/system/etcd-arbiter.test.ts.

import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { ArbiterError } from "../../host/ft/arbiter.js";
import { EtcdArbiter, parseEtcdUrls } from "../../host/node/etcd-arbiter.js";
import { openArbiter } from "../../host/cli/arbiter.js";
import { UsageError } from "../../host/cli/args.js";
import { claim } from "./arbiter-contract.js";

/** A loopback port nothing listens on: bound once to learn a free one, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe("etcd: spec parsing", () => {
  it("takes one endpoint, or a cluster's endpoints separated by commas", () => {
    expect(parseEtcdUrls("http://127.0.0.1:2379")).toEqual(["http://127.0.0.1:2379"]);
    expect(parseEtcdUrls("http://a.example:2379/,http://[::1]:2380")).toEqual(["http://a.example:2379", "http://[::1]:2380"]);
    expect(parseEtcdUrls("http://h:80")).toEqual(["http://h:80"]);
    const a = openArbiter("etcd:http://10.0.0.1:2379,http://10.0.0.2:2379");
    expect(a).toBeInstanceOf(EtcdArbiter);
    expect((a as EtcdArbiter).urls).toEqual(["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
    expect((a as EtcdArbiter).prefix).toBe("lockstep/arbiter/");
  });

  it.each([
    ["", "etcd:URL names no endpoint (etcd:http://HOST:PORT)"],
    ["127.0.0.1:2379", "etcd endpoint '127.0.0.1:2379' is not http://HOST:PORT"],
    ["ftp://h:2379", "etcd endpoint 'ftp://h:2379' is not http://HOST:PORT"],
    ["https://h:2379", "etcd endpoint 'https://h:2379': https (TLS) is not supported yet, only http://HOST:PORT"],
    ["http://h", "etcd endpoint 'http://h' names no port (etcd's is usually 2379)"],
    ["http://u:p@h:2379", "etcd endpoint 'http://u:p@h:2379': user names and passwords are not supported"],
    ["http://h:2379/v3", "etcd endpoint 'http://h:2379/v3' must be just http://HOST:PORT"],
    ["http://h:2379,", "etcd endpoint '' is not http://HOST:PORT"],
  ])("refuses %j", (urls, message) => {
    expect(() => parseEtcdUrls(urls)).toThrow(new ArbiterError(message));
    expect(() => openArbiter(`etcd:${urls}`)).toThrow(new UsageError(`arbiter 'etcd:${urls}': ${message}`));
  });
});

describe("etcd: nobody answers", () => {
  it("a closed port is an ArbiterError naming the URL, at once, for every call", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const a = new EtcdArbiter(url);
    const t0 = Date.now();
    await expect(a.claim(claim(1, "primary"))).rejects.toThrow(ArbiterError);
    await expect(a.claim(claim(1, "primary"))).rejects.toThrow(`etcd at ${url}: cannot read the claims of VM vm-a: `);
    await expect(a.status("vm-a")).rejects.toThrow(`etcd at ${url}: cannot read the claims of VM vm-a: `);
    await expect(a.claims("vm-a")).rejects.toThrow(ArbiterError);
    await expect(a.vms()).rejects.toThrow(`etcd at ${url}: cannot list the VMs: `);
    await expect(a.reset("vm-a")).rejects.toThrow(`etcd at ${url}: cannot read the claims of VM vm-a: `);
    // A refused connection fails without waiting for the deadline (3 s per call).
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("a server that accepts and never answers is an error after the deadline, not a hang", async () => {
    // Accepts TCP connections and says nothing, as a frozen etcd would.
    const sockets: import("node:net").Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const t0 = Date.now();
      await expect(new EtcdArbiter(url, { timeoutMs: 500 }).claim(claim(1, "primary"))).rejects.toThrow(
        new RegExp(`^etcd at ${url}: cannot read the claims of VM vm-a: .*\\(no answer within 500 ms\\)$`),
      );
      expect(Date.now() - t0).toBeLessThan(2500);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("a malformed claim or VM is refused before etcd is asked", async () => {
    const a = new EtcdArbiter("http://127.0.0.1:1");
    await expect(a.claim({ ...claim(1, "p"), vm: "a/b" })).rejects.toThrow("bad claim: vm may hold only");
    await expect(a.status("")).rejects.toThrow("VM identity \"\" must not be empty");
  });
});
