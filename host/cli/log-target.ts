// Where `lockstep record` writes its log: FILE.partial beside --log FILE,
// renamed over FILE only once the end record is written, so a record that
// fails (or is killed) never leaves a partial log where a good one was. A
// record killed outright (SIGKILL, power) leaves FILE.partial: a log cut
// short, which `lockstep replay` and `log inspect` use up to its last
// complete record (docs/replay.md).
// FILE is checked first: an existing file needs --force, and the guest image
// or the disk image is never overwritten, --force or not.

import { closeSync, openSync, renameSync, statSync, unlinkSync, writeSync, type Stats } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CommandError, EXIT_USAGE } from "./command.js";
import { describeFileError } from "./disk.js";

export interface LogTargetOptions {
  /** Replace an existing FILE. */
  force: boolean;
  /** Files FILE must not be, whatever `force` says: [path, what it is], e.g. ["g.elf", "the guest image"]. */
  protect: [string, string][];
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new CommandError(`cannot write ${path}: ${describeFileError(e)}`, EXIT_USAGE);
  }
}

export class LogTarget {
  private fd: number | null;

  private constructor(readonly file: string, private readonly temp: string, fd: number) {
    this.fd = fd;
  }

  /** Checks FILE and creates the temporary file; throws CommandError (exit 2) if it may not or cannot. */
  static open(file: string, o: LogTargetOptions): LogTarget {
    const st = statOrNull(file);
    if (st) {
      for (const [path, what] of o.protect) {
        const other = statOrNull(path);
        // Same device and inode: the same file under any name (a link, a symlink, ./x).
        if (other && other.dev === st.dev && other.ino === st.ino) {
          throw new CommandError(`--log ${file} is ${what}; refusing to overwrite it`, EXIT_USAGE);
        }
      }
      if (st.isDirectory()) throw new CommandError(`cannot write ${file}: it is a directory`, EXIT_USAGE);
      if (!o.force) throw new CommandError(`${file} already exists (use --force to replace it)`, EXIT_USAGE);
    }
    const temp = join(dirname(file), `${basename(file)}.partial`);
    try {
      return new LogTarget(file, temp, openSync(temp, o.force ? "w" : "wx"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") {
        throw new CommandError(`${temp} already exists: the log of a record that did not finish (replay it, remove it, or use --force)`, EXIT_USAGE);
      }
      throw new CommandError(`cannot write ${file}: ${describeFileError(e)}`, EXIT_USAGE);
    }
  }

  write(chunk: Uint8Array): void {
    if (this.fd === null) throw new Error(`log ${this.file} is already closed`);
    writeSync(this.fd, chunk);
  }

  /** The log is complete: it replaces FILE. */
  commit(): void {
    if (this.fd === null) throw new Error(`log ${this.file} is already closed`);
    closeSync(this.fd);
    this.fd = null;
    renameSync(this.temp, this.file);
  }

  /** The record failed: the temporary file goes, FILE stays as it was. Safe to call after commit. */
  abandon(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    try {
      unlinkSync(this.temp);
    } catch {
      // already gone: nothing to clean up
    }
  }
}
