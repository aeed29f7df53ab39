// Reading a replay log file for a command: a missing or unreadable file and a
// malformed log both become one-line errors with exit status 2, the latter
// with the byte offset and what is wrong.

import { readFileSync } from "node:fs";
import { LogFormatError, parseLog, type ParsedLog } from "../replay/log-format.js";
import { CommandError, EXIT_USAGE } from "./command.js";

export function readLogFile(file: string): { bytes: Uint8Array; log: ParsedLog } {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CommandError(`cannot read ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`, EXIT_USAGE);
  }
  try {
    return { bytes, log: parseLog(bytes) };
  } catch (e) {
    throw logError(file, e);
  }
}

/** A LogFormatError as the command's error; anything else unchanged. */
export function logError(file: string, e: unknown): unknown {
  if (e instanceof LogFormatError) return new CommandError(`${file}: not a valid replay log: ${e.reason} (at byte offset ${e.offset})`, EXIT_USAGE);
  return e;
}
