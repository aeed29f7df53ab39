// lockstep kv-client COMMAND [ARGS]: one request to the kv guest through a VM
// whose NIC is on UDP (lockstep run --nic udp:LISTENPORT:PEERPORT). See
// docs/kv-protocol.md for the protocol and the exit statuses. With several
// endpoints (a fault-tolerant pair's replicas, `lockstep primary/backup
// --nic`), it probes them and talks to the live one (docs/ft-endpoints.md).

import { randomInt } from "node:crypto";
import { KvClient, KvServerError, KvTimeoutError, type ClientEvent } from "../kv/client.js";
import { describeRound, EndpointSet, showEndpoint, type Endpoint } from "../kv/endpoints.js";
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

/** The --vm value: one HOST:PORT, or several separated by commas (no spaces, none twice). */
export function parseEndpoints(text: string): Endpoint[] {
  const parts = text.split(",");
  const out: Endpoint[] = [];
  for (const [k, p] of parts.entries()) {
    if (p === "") throw new RangeError(`--vm: endpoint ${k + 1} of ${parts.length} is empty in '${text}'`);
    const e = parseHostPort(p, parts.length === 1 ? "--vm" : `--vm endpoint ${k + 1}`);
    if (out.some((o) => o.host === e.host && o.port === e.port)) throw new RangeError(`--vm: ${showEndpoint(e)} is listed twice`);
    out.push(e);
  }
  return out;
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
  usage: "COMMAND [ARGS...] --vm HOST:PORT[,HOST:PORT...] --listen PORT [--client-id N] [--timeout MS] [--retries N] [--probe-ms MS] [--hex] [--verbose]",
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
--retries times; the server executes it at most once.

--vm may list several endpoints, HOST:PORT,HOST:PORT: the replicas of a
fault-tolerant pair (lockstep primary/backup --nic udp:LISTENPORT:PEERPORT,
each with its own LISTENPORT and the same PEERPORT, which is --listen here).
The client then probes every endpoint (the replica's host answers with its
role, whether it is live and its epoch; docs/ft-endpoints.md), waiting at
most --probe-ms, and sends to the live one with the highest epoch; when a
request gets no reply in time it probes again and resends there. The request
keeps its number, so a replica that already executed it (before a failover)
replays the answer instead of executing it twice.`,
  flags: {
    vm: { type: "string", arg: "HOST:PORT[,...]", help: "where the VM's NIC receives datagrams (required); several: the replicas of a pair, probed" },
    listen: { type: "string", arg: "PORT", help: "local UDP port the VM sends its frames to (required)" },
    "client-id": { type: "int", min: 1, max: 0xffffffff, arg: "N", help: "client id (default: random)" },
    "request-number": { type: "int", min: 1, max: 0xffffffff, arg: "N", help: "request number to use (default: the server's last + 1, from HELLO)" },
    timeout: { type: "int", min: 1, max: 3_600_000, default: 500, arg: "MS", help: "milliseconds to wait for each reply" },
    retries: { type: "int", min: 0, max: 1000, default: 5, arg: "N", help: "resends of a request that got no reply" },
    "probe-ms": { type: "int", min: 1, max: 60_000, default: 100, arg: "MS", help: "with several --vm endpoints: how long a probe waits for their answers" },
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
    let vms: Endpoint[];
    let listen: number;
    try {
      vms = parseEndpoints(flags.vm);
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
      transport = await UdpTransport.open({ listenPort: listen, peerHost: vms[0].host, peerPort: vms[0].port });
    } catch (e) {
      throw new CommandError(`cannot listen on UDP port ${listen}: ${(e as Error).message}`, EXIT_NO_REPLY);
    }
    const clientId = flags["client-id"] ?? randomInt(1, 0xffffffff);
    const say = (line: string) => stderr.write(`kv-client: ${line}\n`);
    // One endpoint: straight to it, as ever. Several: through the probed set.
    const set = vms.length > 1 ? new EndpointSet({ socket: transport, endpoints: vms, probeMs: flags["probe-ms"], firstNonce: randomInt(0, 0xffffffff) }) : null;
    const probe = async () => {
      const round = await set!.probe();
      if (flags.verbose) say(describeRound(round));
    };
    const client = new KvClient({
      transport: set ?? transport,
      beforeResend: set ? probe : undefined,
      clientId,
      timeoutMs: flags.timeout,
      retries: flags.retries,
      firstRequestNumber: flags["request-number"],
      onEvent: flags.verbose ? (e) => say(describeEvent(e)) : undefined,
    });
    if (flags.verbose) say(`client id ${clientId}, VM at ${vms.map(showEndpoint).join(", ")}, listening on ${transport.localPort}`);
    const out = (line: string) => stdout.write(line + "\n");
    try {
      if (set) await probe();
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
      if (e instanceof KvTimeoutError) {
        const hint = set ? `was any replica live? probe: ${describeRound(await set.probe())}` : `is the VM running with --nic udp:${vms[0].port}:${listen}?`;
        throw new CommandError(`${cmd}: ${e.message} (${hint})`, EXIT_NO_REPLY);
      }
      if (e instanceof KvServerError) {
        const why = e.status === Status.Stale ? " (the request number is not newer than the server's last one for this client id)" : "";
        throw new CommandError(`${cmd}: the server refused the request: ${statusName(e.status)}${why}`, EXIT_REFUSED);
      }
      if (e instanceof KvProtocolError) throw new CommandError(`${cmd}: the server's reply is malformed: ${e.message}`, EXIT_REFUSED);
      throw e;
    } finally {
      client.close();
      set?.close();
      await transport.close();
    }
  },
});
