// A port lockstep run needs that is already taken (--serial tcp:PORT,
// --nic udp:LISTEN:PEER) is a usage error: one line naming the flag and the
// port, exit 2 — and, under record, no log left behind.

import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runLockstep } from "./helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "lockstep-ports-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const lockstep = (...args: string[]) => runLockstep(tmp, ...args);
const guestBin = (name: string) => new URL(`../guests/bin/${name}.elf`, import.meta.url).pathname;

/** A TCP server on a free 127.0.0.1 port, holding it. */
function holdTcp(): Promise<{ port: number; server: Server }> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once("error", rej);
    server.listen(0, "127.0.0.1", () => res({ port: (server.address() as { port: number }).port, server }));
  });
}

/** A UDP socket bound to a free 127.0.0.1 port, holding it. */
function holdUdp(): Promise<{ port: number; socket: UdpSocket }> {
  return new Promise((res, rej) => {
    const socket = createSocket("udp4");
    socket.once("error", rej);
    socket.bind(0, "127.0.0.1", () => res({ port: socket.address().port, socket }));
  });
}

describe("a port already in use", () => {
  it("--serial tcp:PORT: one line naming the flag and port, exit 2", async () => {
    const { port, server } = await holdTcp();
    try {
      const r = await lockstep("run", guestBin("ticks"), "--serial", `tcp:${port}`, "--clock", "virtual");
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`lockstep: --serial tcp:${port}: TCP port ${port} on 127.0.0.1 is already in use\n`);
    } finally {
      server.close();
    }
  });

  it("--nic udp:LISTEN:PEER: one line naming the flag and port, exit 2; record leaves no log", async () => {
    const { port, socket } = await holdUdp();
    try {
      const nic = `udp:${port}:${port === 65535 ? port - 1 : port + 1}`;
      const r = await lockstep("record", guestBin("kv"), "--log", join(tmp, "kv.log"), "--nic", nic);
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`lockstep: --nic ${nic}: UDP port ${port} on 127.0.0.1 is already in use\n`);
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      socket.close();
    }
  });
});
