// lockstep arbiter status|reset ARBITER: what an arbiter (host/ft/arbiter.ts)
// holds, and clearing a finished run's claims. ARBITER is a spec string;
// openArbiter() is where every command that takes one turns it into an
// arbiter. See docs/arbiter.md.

import { UsageError } from "./args.js";
import { CommandError, defineCommand, EXIT_USAGE } from "./command.js";
import { ArbiterError, vmIdProblem, type Arbiter, type ArbiterClaim } from "../ft/arbiter.js";
import { FileArbiter } from "../node/file-arbiter.js";
import { EtcdArbiter } from "../node/etcd-arbiter.js";

/** The arbiter an ARBITER spec names; UsageError if the spec is malformed or its kind is not implemented. */
export function openArbiter(spec: string): Arbiter {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? "" : spec.slice(0, colon);
  const rest = colon < 0 ? "" : spec.slice(colon + 1);
  if (kind === "file") {
    if (rest === "") throw new UsageError(`arbiter '${spec}' names no directory (file:PATH)`);
    return new FileArbiter(rest);
  }
  if (kind === "etcd") {
    try {
      return new EtcdArbiter(rest);
    } catch (e) {
      if (e instanceof ArbiterError) throw new UsageError(`arbiter '${spec}': ${e.message}`);
      throw e;
    }
  }
  throw new UsageError(`unknown arbiter '${spec}' (expected file:PATH, a directory both replicas can reach, or etcd:http://HOST:PORT)`);
}

function describeClaim(c: ArbiterClaim): string {
  return `epoch ${c.epoch}  replica ${c.replica}  at ${new Date(c.atMs).toISOString()}  reason ${JSON.stringify(c.reason)}`;
}

/** Runs an arbiter call; its errors (damaged files, missing directory) become one-line status 2 failures. */
async function using<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof ArbiterError) throw new CommandError(e.message, EXIT_USAGE);
    throw e;
  }
}

export default defineCommand({
  usage: "status|reset ARBITER [--vm V] [--json]",
  description: `
ARBITER names the arbiter the replicas of a VM claim epochs on before going
live; file:PATH is a directory both replicas can reach (it must exist).
etcd:http://HOST:PORT[,http://HOST:PORT...] is an etcd cluster's endpoints.

status prints the claims of every VM on the arbiter, or of --vm V only,
highest epoch first: epoch, replica, time and reason. The highest is the one
that may be live. --json prints {"arbiter", "vms": [{"vm", "claims": [...]}]}.

reset --vm V forgets every claim of V, so its next run can claim epoch 1
again. Only for a VM none of whose replicas runs. It says what it removed.`,
  flags: {
    vm: { type: "string", arg: "V", help: "the VM identity (required by reset)" },
    json: { type: "boolean", help: "status: print JSON" },
  },
  positionals: { min: 2, max: 2, name: "status|reset and ARBITER" },
  exitStatus: [
    "0  the claims were shown, or removed",
    "2  usage error (bad subcommand, ARBITER or --vm, reset without --vm), a missing arbiter directory, an unreachable etcd or a damaged claim",
    "3  internal error",
  ],
  async run({ flags, positionals, stdout }) {
    const [sub, spec] = positionals;
    if (sub !== "status" && sub !== "reset") throw new UsageError(`unknown subcommand '${sub}' (one of: status, reset)`);
    const arbiter = openArbiter(spec);
    if (flags.vm !== undefined) {
      const problem = vmIdProblem(flags.vm);
      if (problem) throw new UsageError(`--vm ${problem}`);
    }
    if (sub === "reset") {
      if (flags.vm === undefined) throw new UsageError("reset needs --vm V (it removes one VM's claims)");
      if (flags.json) throw new UsageError("--json is for status");
      const vm = flags.vm;
      const { removed, unreadable } = await using(() => arbiter.reset(vm));
      if (removed.length + unreadable.length === 0) {
        stdout.write(`VM ${vm} has no claims on ${spec}: nothing removed\n`);
        return 0;
      }
      stdout.write(`removed ${removed.length + unreadable.length} claim(s) of VM ${vm} from ${spec}:\n`);
      for (const c of removed) stdout.write(`  ${describeClaim(c)}\n`);
      for (const name of unreadable) stdout.write(`  ${name} (damaged, unreadable)\n`);
      return 0;
    }
    const vms = flags.vm !== undefined ? [flags.vm] : await using(() => arbiter.vms());
    const listed: Array<{ vm: string; claims: ArbiterClaim[] }> = [];
    for (const vm of vms) listed.push({ vm, claims: await using(() => arbiter.claims(vm)) });
    if (flags.json) {
      stdout.write(JSON.stringify({ arbiter: spec, vms: listed }, null, 2) + "\n");
      return 0;
    }
    if (listed.every((v) => v.claims.length === 0)) {
      stdout.write(flags.vm !== undefined ? `VM ${flags.vm} has no claims on ${spec}\n` : `no claims on ${spec}\n`);
      return 0;
    }
    for (const { vm, claims } of listed) {
      stdout.write(`VM ${vm}: ${claims.length} claim(s), epoch ${claims[0]?.epoch ?? "-"} highest\n`);
      for (const c of claims) stdout.write(`  ${describeClaim(c)}\n`);
    }
    return 0;
  },
});
