// The lockstep command line: a registry of subcommands and the dispatcher.
// To add a command, write host/cli/<name>.ts default-exporting
// defineCommand({...}) (see command.ts) and add one line to COMMANDS.

import { readFileSync } from "node:fs";
import { formatFlags, parseArgs, UsageError, type FlagSpecs } from "./args.js";
import { CommandError, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, type CommandSpec } from "./command.js";

interface CommandEntry {
  /** One or more words, e.g. "conformance" or "disk create". */
  name: string;
  summary: string;
  load: () => Promise<{ default: CommandSpec<any> }>;
}

export const COMMANDS: CommandEntry[] = [
  { name: "arbiter", summary: "show (status) or clear (reset) the epoch claims on an arbiter", load: () => import("./arbiter.js") },
  { name: "conformance", summary: "run single-instruction CPU test cases against the engines", load: () => import("./conformance.js") },
  { name: "log inspect", summary: "show what a replay log holds: events and bytes per kind, its rate", load: () => import("./log-inspect.js") },
  { name: "ft", summary: "run a guest as a fault-tolerant pair (primary and backup in worker threads)", load: () => import("./ft.js") },
  { name: "ft-demo", summary: "the kv guest as a fault-tolerant pair, its primary killed mid-run (npm start)", load: () => import("./ft-demo.js") },
  { name: "primary", summary: "run the primary of a fault-tolerant pair, its backup in another process (TCP)", load: () => import("./primary.js") },
  { name: "backup", summary: "run the backup of a fault-tolerant pair, following a primary over TCP", load: () => import("./backup.js") },
  { name: "disk create", summary: "create a zero-filled raw disk image for the ATA disk", load: () => import("./disk.js") },
  { name: "kv-client", summary: "send a request to the kv guest through a VM's UDP-attached NIC", load: () => import("./kv-client.js") },
  { name: "record", summary: "run a guest and write a replay log of everything it takes from outside", load: () => import("./record.js") },
  { name: "replay", summary: "rerun a guest from a replay log and check it against the log's end", load: () => import("./replay.js") },
  { name: "snapshot save", summary: "run a guest to instruction N and write its snapshot (CPU, devices, RAM, disk writes)", load: () => import("./snapshot.js").then((m) => ({ default: m.save })) },
  { name: "snapshot inspect", summary: "show what a snapshot holds: sections, sizes, compression, instruction count, configuration", load: () => import("./snapshot.js").then((m) => ({ default: m.inspect })) },
  { name: "run", summary: "boot a guest (Multiboot kernel or ELF) on the lockstep PC: UART, PIC, PIT, RTC, disk, NIC", load: () => import("./run.js") },
];

const GENERAL_EXIT_STATUS = [
  "0  success",
  "1  the command ran and found a failure (e.g. a conformance mismatch)",
  "2  usage error, or an input file that is missing, unreadable or malformed",
  "3  internal error (a bug in lockstep, or the engine build is missing: npm run build)",
];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: lockstep COMMAND [ARGS...] [flags]",
    "",
    "A fault-tolerant virtual machine on an i386 emulator.",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run 'lockstep help COMMAND' or 'lockstep COMMAND --help' for a command's flags.",
    "Other flags: -h/--help (this text), --version.",
    "",
    "exit status:",
    ...GENERAL_EXIT_STATUS.map((l) => "  " + l),
    "",
  ].join("\n");
}

function commandHelp(entry: CommandEntry, spec: CommandSpec<FlagSpecs>): string {
  return [
    `usage: lockstep ${entry.name} ${spec.usage}`,
    "",
    entry.summary.charAt(0).toUpperCase() + entry.summary.slice(1) + ".",
    "",
    spec.description.trim(),
    "",
    "flags:",
    formatFlags(spec.flags),
    "",
    "exit status:",
    ...spec.exitStatus.map((l) => "  " + l),
    "",
  ].join("\n");
}

/** The registry entry named by the longest run of leading words, with the remaining args. */
function findCommand(args: string[]): { entry: CommandEntry; rest: string[] } | undefined {
  let best: { entry: CommandEntry; rest: string[] } | undefined;
  for (const entry of COMMANDS) {
    const words = entry.name.split(" ");
    if (words.every((w, k) => args[k] === w) && (!best || words.length > best.entry.name.split(" ").length)) {
      best = { entry, rest: args.slice(words.length) };
    }
  }
  return best;
}

function usageError(message: string, hint: string): number {
  process.stderr.write(`lockstep: ${message}\n${hint}\n`);
  return EXIT_USAGE;
}

function unknownCommand(args: string[]): number {
  const group = COMMANDS.filter((c) => c.name.startsWith(args[0] + " ")).map((c) => c.name.split(" ")[1]);
  if (group.length > 0) {
    const what = args.length > 1 ? `unknown command '${args[0]} ${args[1]}'` : `'${args[0]}' needs a subcommand`;
    return usageError(`${what} (one of: ${group.join(", ")})`, "Run 'lockstep --help' for the list of commands.");
  }
  return usageError(`unknown command '${args[0]}'`, "Run 'lockstep --help' for the list of commands.");
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function runCommand(entry: CommandEntry, rest: string[]): Promise<number> {
  const spec = (await entry.load()).default as CommandSpec<FlagSpecs>;
  const hint = `Run 'lockstep ${entry.name} --help' for usage.`;
  try {
    const parsed = parseArgs(rest, spec.flags);
    if (parsed.help) {
      process.stdout.write(commandHelp(entry, spec));
      return EXIT_OK;
    }
    const p = spec.positionals ?? { max: 0, name: "" };
    const n = parsed.positionals.length;
    if (p.min !== undefined && n < p.min) throw new UsageError(`missing ${p.name}`);
    if (p.max !== undefined && n > p.max) {
      throw new UsageError(p.max === 0 ? `unexpected argument '${parsed.positionals[0]}'` : `too many arguments (at most ${p.max} ${p.name})`);
    }
    return await spec.run({ flags: parsed.flags, positionals: parsed.positionals, stdout: process.stdout, stderr: process.stderr });
  } catch (e) {
    if (e instanceof UsageError) return usageError(e.message, hint);
    if (e instanceof CommandError) {
      process.stderr.write(`lockstep: ${e.message}\n`);
      return e.status;
    }
    throw e;
  }
}

/** Runs the command line (without the node and script paths); resolves to the exit status. */
export async function main(args: string[]): Promise<number> {
  try {
    if (args.length === 0) {
      process.stderr.write(mainHelp());
      return EXIT_USAGE;
    }
    if (args[0] === "-h" || args[0] === "--help") {
      process.stdout.write(mainHelp());
      return EXIT_OK;
    }
    if (args[0] === "--version") {
      process.stdout.write(`lockstep ${version()}\n`);
      return EXIT_OK;
    }
    if (args[0].startsWith("-")) return usageError(`unknown flag ${args[0]}`, "Run 'lockstep --help' for usage.");
    if (args[0] === "help") {
      if (args.length === 1) {
        process.stdout.write(mainHelp());
        return EXIT_OK;
      }
      const found = findCommand(args.slice(1));
      if (!found || found.rest.length > 0) return unknownCommand(args.slice(1));
      return await runCommand(found.entry, ["--help"]);
    }
    const found = findCommand(args);
    if (!found) return unknownCommand(args);
    return await runCommand(found.entry, found.rest);
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`lockstep: internal error: ${err?.message ?? String(e)}\n`);
    if (process.env.LOCKSTEP_DEBUG) process.stderr.write(`${err?.stack ?? ""}\n`);
    else process.stderr.write("(set LOCKSTEP_DEBUG=1 for a stack trace)\n");
    return EXIT_INTERNAL;
  }
}
