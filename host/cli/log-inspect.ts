// lockstep log inspect FILE: what a replay log holds (docs/log-format.md):
// its header and end record, events and bytes per kind, and its rate. A log
// cut short is shown up to its last complete record, with where it was cut.

import { inspect } from "../replay/log-format.js";
import { cutText, readLogFile } from "./log-file.js";
import { cutLogEnd, logConfig } from "../replay/session.js";
import { initHash, toHex as hex } from "../common/hash.js";
import { defineCommand, EXIT_OK } from "./command.js";


export default defineCommand({
  usage: "FILE [--json]",
  description: `
Reads a replay log (lockstep record) and prints its header (format
version, configuration hash, start instruction count), the configuration it
was recorded with, its end record (final instruction count, guest time,
output digest, state hash), the number of events and their bytes per kind,
and the log's rate: bytes and events per second of guest time and bytes
per million instructions. A log cut short (no end record: its recorder was
killed, or its disk filled) is shown up to its last complete record, with the
byte offset where it was cut and the instruction count its events reach; it
has no final count, guest time, digest or hash, and no rates per guest
second. A log cut inside its header, or with a damaged record (a CRC that
fails, even in the last record), is refused with the byte offset and what is
wrong. See docs/log-format.md.`,
  flags: {
    json: { type: "boolean", default: false, help: "print one JSON object instead of the table" },
  },
  positionals: { min: 1, max: 1, name: "FILE (a replay log)" },
  exitStatus: [
    "0  the log is well formed, or well formed up to where it was cut short",
    "2  usage error, or a FILE that is missing, unreadable, cut inside its header or corrupted",
    "3  internal error",
  ],
  async run({ flags, positionals, stdout }) {
    const file = positionals[0];
    const { bytes, log } = readLogFile(file, { allowCut: true });
    const s = inspect(log.entries, log.header.startIcount);
    const end = log.end;
    // A cut log's events reach the count its replay stops at; its guest time is unknown.
    const reach = end ? end.finalIcount : cutLogEnd(log);
    const span = reach - log.header.startIcount;
    const instructions = Number(span);
    const guestSeconds = end ? Number(end.guestNs) / 1e9 : null;
    const perMillion = instructions > 0 ? (bytes.length / instructions) * 1e6 : 0;
    const perSecond = guestSeconds === null ? null : guestSeconds > 0 ? bytes.length / guestSeconds : 0;
    const eventsPerSecond = guestSeconds === null ? null : guestSeconds > 0 ? s.entries / guestSeconds : 0;
    await initHash();
    let config: unknown = null;
    try {
      config = logConfig(log);
    } catch {
      config = null; // a log without a configuration (written by hand or by a test) is still inspectable
    }
    const summary = {
      file, bytes: bytes.length, version: log.header.version, configHash: hex(log.header.configHash), config,
      startIcount: log.header.startIcount.toString(), finalIcount: end ? end.finalIcount.toString() : null,
      cut: log.cut ? { ...log.cut, lastIcount: reach.toString() } : null,
      guestSeconds, outputDigest: end ? hex(end.outputDigest) : null, stateHash: end ? hex(end.stateHash) : null,
      events: s.entries, byKind: s.byKind,
      bytesPerMillionInstructions: perMillion, bytesPerGuestSecond: perSecond, eventsPerGuestSecond: eventsPerSecond,
    };
    if (flags.json) {
      stdout.write(JSON.stringify(summary) + "\n");
      return EXIT_OK;
    }
    const lines = [
      `${file}: replay log version ${summary.version}, ${bytes.length} bytes` + (log.cut ? `, ${cutText(log.cut)}` : ""),
      `config hash   ${summary.configHash}`,
      `config        ${config ? JSON.stringify(config) : "(none)"}`,
      guestSeconds === null
        ? `instructions  ${summary.startIcount} .. ${reach} (${span} retired) as far as its last complete record; guest time unknown (no end record)`
        : `instructions  ${summary.startIcount} .. ${summary.finalIcount} (${span} retired), ${(guestSeconds * 1000).toFixed(3)} ms of guest time`,
      `output digest ${summary.outputDigest ?? "(none: cut short)"}`,
      `state hash    ${summary.stateHash ?? "(none: cut short)"}`,
      "",
      "kind            events  payload bytes  log bytes",
      ...Object.entries(s.byKind).map(([k, v]) =>
        `${k.padEnd(14)}  ${String(v.count).padStart(6)}  ${String(v.payloadBytes).padStart(13)}  ${String(v.encodedBytes).padStart(9)}`),
      `${"all".padEnd(14)}  ${String(s.entries).padStart(6)}  ${String(s.payloadBytes).padStart(13)}  ${String(s.encodedBytes).padStart(9)}`,
      "",
      (perSecond === null || eventsPerSecond === null ? "" : `${perSecond.toFixed(1)} bytes and ${eventsPerSecond.toFixed(1)} events per second of guest time; `) +
        `${perMillion.toFixed(1)} bytes per million instructions`,
    ];
    stdout.write(lines.join("\n") + "\n");
    return EXIT_OK;
  },
});
