// What a lockstep subcommand module provides. Each command lives in its own
// file under host/cli/ and default-exports defineCommand({...}); main.ts lists
// it in its registry and does the flag parsing, --help and error reporting.

import type { FlagSpecs, Flags } from "./args.js";

/** Exit statuses shared by every command (a command may document more). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 3;

export interface CommandContext<S extends FlagSpecs> {
  flags: Flags<S>;
  positionals: string[];
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface CommandSpec<S extends FlagSpecs = FlagSpecs> {
  /** What follows the command name in the usage line, e.g. "FILE... [flags]". */
  usage: string;
  /** A paragraph or two for `lockstep help CMD`. */
  description: string;
  flags: S;
  /** Positional argument count; main.ts reports a usage error outside it. */
  positionals?: { min?: number; max?: number; name: string };
  /** Exit statuses as "status: meaning" lines, for the help text. */
  exitStatus: string[];
  /** Runs the command; resolves to the exit status. Throw UsageError for usage mistakes. */
  run(ctx: CommandContext<S>): Promise<number>;
}

/** Identity function that keeps the flag types precise for run(). */
export function defineCommand<const S extends FlagSpecs>(spec: CommandSpec<S>): CommandSpec<S> {
  return spec;
}

/**
 * A failure the command reports as one line "lockstep: message" with a chosen
 * exit status (e.g. an unreadable or malformed input file → 2).
 */
export class CommandError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}
