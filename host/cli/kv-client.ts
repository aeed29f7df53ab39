// lockstep kv-client COMMAND [ARGS]: one request to the kv guest through a VM
// whose NIC is on UDP (lockstep run --nic udp:LISTENPORT:PEERPORT). See
// docs/kv-protocol.md for the protocol and the exit statuses.

import { randomInt } from "node:crypto";
import { KvClient, KvServerError, KvTimeoutError, type ClientEvent } from "../kv/client.js";
import { KV_MAX_KEY, KV_MAX_VALUE, KvProtocolError, opName, Status, statusName, STATS_FIELDS } from "../kv/protocol.js";
import { parseHostPort, parsePort } from "../net/frame-transport.js";
import { UdpTransport } from "../node/udp-transport.js";
import { UsageError } from "./args.js";
import { CommandError, defineCommand, EXIT_FAILURE, EXIT_OK } from "./command.js";

export const EXIT_NO_REPLY = 4;
export const EXIT_REFUSED = 5;

/** Each command: its argument names (a trailing "?" marks an optional one). */
const COMMAND_ARGS: Record<string, string[]> = {
  get: ["KEY"],
  put: ["KEY", "VALUE"],
  del: ["KEY"],
  incr: ["KEY", "DELTA?"],
  cas: ["KEY", "EXPECTED", "NEW"],
  count: [],
  list: ["PREFIX?"],
  ping: ["TEXT?"],
  stats: [],
  hello: [],
};

function parseBytes(arg: string, name: string, hex: boolean): Uint8Array {
  if (!hex) return new TextEncoder().encode(arg);
  if (!/^([0-9a-f]{2})*$/i.test(arg)) throw new UsageError(`${name} must be hex bytes (--hex), got '${arg}'`);
  return Uint8Array.from(arg.match(/../g) ?? [], (h) => parseInt(h, 16));
}

const showBytes = (b: Uint8Array, hex: boolean) => (hex ? Buffer.from(b).toString("hex") : Buffer.from(b).toString("utf8"));

function describeEvent(e: ClientEvent): string {
  switch (e.type) {
    case "send":
      return `${e.attempt === 1 ? "send" : "resend"} ${opName(e.op)} request ${e.requestNumber}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ""}`;
    case "reply":
      return `reply to ${opName(e.op)} request ${e.requestNumber}: ${statusName(e.status)}${e.replayed ? " (replayed)" : ""}`;
    case "ignored":
      return `ignored a frame: ${e.reason}`;
  }
}

export default defineCommand({
  usage: "COMMAND [ARGS...] --vm HOST:PORT --listen PORT [--client-id N] [--timeout MS] [--retries N] [--hex] [--verbose]",
  description: `
Sends one request to the kv guest (guests/kv) running in a VM whose NIC is on
UDP: lockstep run --nic udp:LISTENPORT:PEERPORT receives the datagrams sent to
LISTENPORT and sends the guest's frames to 127.0.0.1:PEERPORT, so use
--vm 127.0.0.1:LISTENPORT --listen PEERPORT. One datagram is one frame
(docs/kv-protocol.md).

Commands: get KEY, put KEY VALUE, del KEY, incr KEY [DELTA],
cas KEY EXPECTED NEW (or cas --expect-absent KEY NEW), count, list [PREFIX],
ping [TEXT], stats, hello.

Unless --request-number is given, the client first asks the server (HELLO)
for the last request number it remembers for the client id and uses the next
one. A request that gets no reply within --timeout is resent unchanged, up to
--retries times; the server executes it at most once.`,
  flags: {
    vm: { type: "string", arg: "HOST:PORT", help: "where the VM's NIC receives datagrams (required)" },
    listen: { type: "string", arg: "PORT", help: "local UDP port the VM sends its frames to (required)" },
    "client-id": { type: "int", min: 1, max: 0xffffffff, arg: "N", help: "client id (default: random)" },
    "request-number": { type: "int", min: 1, max: 0xffffffff, arg: "N", help: "request number to use (default: the server's last + 1, from HELLO)" },
    timeout: { type: "int", min: 1, max: 3_600_000, default: 500, arg: "MS", help: "milliseconds to wait for each reply" },
    retries: { type: "int", min: 0, max: 1000, default: 5, arg: "N", help: "resends of a request that got no reply" },
    "expect-absent": { type: "boolean", help: "cas: succeed only if the key does not exist (then: cas KEY NEW)" },
    hex: { type: "boolean", help: "keys and values are given and printed as hex bytes" },
    verbose: { type: "boolean", help: "report sends, resends and ignored frames on stderr" },
  },
  positionals: { min: 1, max: 4, name: "COMMAND and its arguments" },
  exitStatus: [
    "0  done",
    "1  a negative answer: NOT_FOUND (get, del) or MISMATCH (cas)",
    "2  usage error",
    "3  internal error",
    "4  no reply after all retries, or the --listen port could not be bound",
    "5  the server refused the request (status named on stderr)",
  ],
  async run({ flags, positionals, stdout, stderr }) {
    const [cmd, ...args] = positionals;
    const spec = COMMAND_ARGS[cmd];
    if (!spec) throw new UsageError(`unknown kv command '${cmd}' (one of: ${Object.keys(COMMAND_ARGS).join(", ")})`);
    const names = cmd === "cas" && flags["expect-absent"] ? ["KEY", "NEW"] : spec;
    if (flags["expect-absent"] && cmd !== "cas") throw new UsageError("--expect-absent is for cas only");
    const required = names.filter((n) => !n.endsWith("?")).length;
    if (args.length < required) throw new UsageError(`${cmd}: missing ${names[args.length].replace("?", "")}`);
    if (args.length > names.length) throw new UsageError(`${cmd}: too many arguments (${cmd} ${names.join(" ")})`);
    if (flags.vm === undefined) throw new UsageError("--vm HOST:PORT is required");
    if (flags.listen === undefined) throw new UsageError("--listen PORT is required");
    let vm: { host: string; port: number };
    let listen: number;
    try {
      vm = parseHostPort(flags.vm, "--vm");
      listen = parsePort(flags.listen, "--listen");
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const hex = flags.hex;
    const arg = (k: number) => parseBytes(args[k], names[k].replace("?", ""), hex);
    for (const [k, name] of names.entries()) {
      if (args[k] === undefined) continue;
      const n = arg(k).length;
      const bare = name.replace("?", "");
      if (bare === "KEY" && (n < 1 || n > KV_MAX_KEY)) throw new UsageError(`${cmd}: KEY must be 1 to ${KV_MAX_KEY} bytes, got ${n}`);
      if (bare === "PREFIX" && n > KV_MAX_KEY) throw new UsageError(`${cmd}: PREFIX must be at most ${KV_MAX_KEY} bytes, got ${n}`);
      if (["VALUE", "EXPECTED", "NEW", "TEXT"].includes(bare) && n > KV_MAX_VALUE) {
        throw new UsageError(`${cmd}: ${bare} must be at most ${KV_MAX_VALUE} bytes, got ${n}`);
      }
    }
    if (cmd === "incr" && args[1] !== undefined && !/^-?[0-9]{1,19}$/.test(args[1])) {
      throw new UsageError(`incr: DELTA must be a decimal integer, got '${args[1]}'`);
    }

    let transport: UdpTransport;
    try {
      transport = await UdpTransport.open({ listenPort: listen, peerHost: vm.host, peerPort: vm.port });
    } catch (e) {
      throw new CommandError(`cannot listen on UDP port ${listen}: ${(e as Error).message}`, EXIT_NO_REPLY);
    }
    const clientId = flags["client-id"] ?? randomInt(1, 0xffffffff);
    const say = (line: string) => stderr.write(`kv-client: ${line}\n`);
    const client = new KvClient({
      transport,
      clientId,
      timeoutMs: flags.timeout,
      retries: flags.retries,
      firstRequestNumber: flags["request-number"],
      onEvent: flags.verbose ? (e) => say(describeEvent(e)) : undefined,
    });
    if (flags.verbose) say(`client id ${clientId}, VM at ${vm.host}:${vm.port}, listening on ${transport.localPort}`);
    const out = (line: string) => stdout.write(line + "\n");
    try {
      if (flags["request-number"] === undefined && cmd !== "hello") await client.hello();
      switch (cmd) {
        case "get": {
          const v = await client.get(arg(0));
          if (v === undefined) {
            say(`get ${args[0]}: not found`);
            return EXIT_FAILURE;
          }
          out(showBytes(v, hex));
          return EXIT_OK;
        }
        case "put":
          out((await client.put(arg(0), arg(1))) ? "created" : "replaced");
          return EXIT_OK;
        case "del":
          if (!(await client.del(arg(0)))) {
            say(`del ${args[0]}: not found`);
            return EXIT_FAILURE;
          }
          out("deleted");
          return EXIT_OK;
        case "incr":
          out(String(await client.incr(arg(0), args[1])));
          return EXIT_OK;
        case "cas": {
          const r = flags["expect-absent"] ? await client.cas(arg(0), null, arg(1)) : await client.cas(arg(0), arg(1), arg(2));
          if (r.ok) {
            out("ok");
            return EXIT_OK;
          }
          say(`cas ${args[0]}: mismatch; ${r.current === undefined ? "the key does not exist" : `current value: ${showBytes(r.current, hex)}`}`);
          return EXIT_FAILURE;
        }
        case "count":
          out(String(await client.count()));
          return EXIT_OK;
        case "list":
          for (const k of await client.list(args[0] === undefined ? "" : arg(0))) out(showBytes(k, hex));
          return EXIT_OK;
        case "ping": {
          const t0 = performance.now();
          const echo = await client.ping(args[0] === undefined ? "" : arg(0));
          out(`${showBytes(echo, hex)}${echo.length ? " " : ""}(${(performance.now() - t0).toFixed(1)} ms)`);
          return EXIT_OK;
        }
        case "stats": {
          const s = await client.stats();
          for (const f of STATS_FIELDS) out(`${f} ${s[f]}`);
          return EXIT_OK;
        }
        case "hello":
          out(String(await client.hello()));
          return EXIT_OK;
      }
      throw new Error(`unhandled command ${cmd}`);
    } catch (e) {
      if (e instanceof KvTimeoutError) throw new CommandError(`${cmd}: ${e.message} (is the VM running with --nic udp:${vm.port}:${listen}?)`, EXIT_NO_REPLY);
      if (e instanceof KvServerError) {
        const why = e.status === Status.Stale ? " (the request number is not newer than the server's last one for this client id)" : "";
        throw new CommandError(`${cmd}: the server refused the request: ${statusName(e.status)}${why}`, EXIT_REFUSED);
      }
      if (e instanceof KvProtocolError) throw new CommandError(`${cmd}: the server's reply is malformed: ${e.message}`, EXIT_REFUSED);
      throw e;
    } finally {
      client.close();
      await transport.close();
    }
  },
});
