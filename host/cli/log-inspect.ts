// lockstep log inspect FILE: what a replay log holds (docs/log-format.md):
// its header and end record, events and bytes per kind, and its rate.

import { readFileSync } from "node:fs";
import { inspect, LogFormatError, parseLog } from "../replay/log-format.js";
import { VIRTUAL_NS_PER_INSTRUCTION } from "../machine/machine.js";
import { CommandError, defineCommand, EXIT_OK, EXIT_USAGE } from "./command.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export default defineCommand({
  usage: "FILE [--json]",
  description: `
Reads a replay log and prints its header (format version, configuration
hash, start instruction count), its end record (final instruction count,
output digest, state hash), the number of events and their bytes per kind,
and the log's size per million instructions and per second of guest time
at the virtual clock's rate (${VIRTUAL_NS_PER_INSTRUCTION} ns an instruction). A truncated or
corrupted log is refused with the byte offset and what is wrong.`,
  flags: {
    json: { type: "boolean", default: false, help: "print one JSON object instead of the table" },
  },
  positionals: { min: 1, max: 1, name: "FILE (a replay log)" },
  exitStatus: [
    "0  the log is well formed",
    "2  usage error, or a FILE that is missing, unreadable, truncated or corrupted",
    "3  internal error",
  ],
  async run({ flags, positionals, stdout }) {
    const file = positionals[0];
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(file));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new CommandError(`cannot read ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`, EXIT_USAGE);
    }
    let log;
    try {
      log = parseLog(bytes);
    } catch (e) {
      if (e instanceof LogFormatError) throw new CommandError(`${file}: not a valid replay log: ${e.reason} (at byte offset ${e.offset})`, EXIT_USAGE);
      throw e;
    }
    const s = inspect(log.entries, log.header.startIcount);
    const span = log.end.finalIcount - log.header.startIcount;
    const instructions = Number(span);
    const guestSeconds = (instructions * VIRTUAL_NS_PER_INSTRUCTION) / 1e9;
    const perMillion = instructions > 0 ? (bytes.length / instructions) * 1e6 : 0;
    const perSecond = guestSeconds > 0 ? bytes.length / guestSeconds : 0;
    const summary = {
      file, bytes: bytes.length, version: log.header.version, configHash: hex(log.header.configHash),
      startIcount: log.header.startIcount.toString(), finalIcount: log.end.finalIcount.toString(),
      outputDigest: hex(log.end.outputDigest), stateHash: hex(log.end.stateHash),
      events: s.entries, byKind: s.byKind,
      bytesPerMillionInstructions: perMillion, bytesPerGuestSecondAtVirtualRate: perSecond,
    };
    if (flags.json) {
      stdout.write(JSON.stringify(summary) + "\n");
      return EXIT_OK;
    }
    const lines = [
      `${file}: replay log version ${summary.version}, ${bytes.length} bytes`,
      `config hash   ${summary.configHash}`,
      `instructions  ${summary.startIcount} .. ${summary.finalIcount} (${span} retired)`,
      `output digest ${summary.outputDigest}`,
      `state hash    ${summary.stateHash}`,
      "",
      "kind            events  payload bytes  log bytes",
      ...Object.entries(s.byKind).map(([k, v]) =>
        `${k.padEnd(14)}  ${String(v.count).padStart(6)}  ${String(v.payloadBytes).padStart(13)}  ${String(v.encodedBytes).padStart(9)}`),
      `${"all".padEnd(14)}  ${String(s.entries).padStart(6)}  ${String(s.payloadBytes).padStart(13)}  ${String(s.encodedBytes).padStart(9)}`,
      "",
      `${perMillion.toFixed(1)} bytes per million instructions; ${perSecond.toFixed(1)} bytes per second of guest time at ${VIRTUAL_NS_PER_INSTRUCTION} ns an instruction`,
    ];
    stdout.write(lines.join("\n") + "\n");
    return EXIT_OK;
  },
});
