// Reading a replay log file for a command: a missing or unreadable file and a
// malformed log both become one-line errors with exit status 2, the latter
// with the byte offset and what is wrong. With allowCut a log cut short after
// its header is accepted (parseLog's allowCut): replay and log inspect use it
// up to its last complete record.

import { readFileSync } from "node:fs";
import { LogFormatError, parseLog, type LogCut, type ParsedLog, type ReadLog } from "../replay/log-format.js";
import { CommandError, EXIT_USAGE } from "./command.js";

export function readLogFile(file: string): { bytes: Uint8Array; log: ParsedLog };
export function readLogFile(file: string, opts: { allowCut: true }): { bytes: Uint8Array; log: ReadLog };
export function readLogFile(file: string, opts?: { allowCut: true }): { bytes: Uint8Array; log: ParsedLog | ReadLog } {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CommandError(`cannot read ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`, EXIT_USAGE);
  }
  try {
    return { bytes, log: opts?.allowCut ? parseLog(bytes, opts) : parseLog(bytes) };
  } catch (e) {
    throw logError(file, e);
  }
}

/** A LogFormatError as the command's error; anything else unchanged. */
export function logError(file: string, e: unknown): unknown {
  if (e instanceof LogFormatError) return new CommandError(`${file}: not a valid replay log: ${e.reason} (at byte offset ${e.offset})`, EXIT_USAGE);
  return e;
}

/** One line saying where a log was cut short. */
export function cutText(cut: LogCut): string {
  return `cut short at byte offset ${cut.offset}` +
    (cut.bytes > 0 ? ` (followed by ${cut.bytes} bytes of an incomplete record)` : " (after a whole record)") +
    ": no end record";
}
