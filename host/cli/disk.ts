// lockstep disk create FILE --size SIZE: makes a zero-filled raw disk image
// for the ATA disk (host/devices/ata-disk.ts). See docs/disk.md.

import { closeSync, ftruncateSync, openSync, statSync, unlinkSync } from "node:fs";
import { formatSize, UsageError } from "./args.js";
import { CommandError, defineCommand, EXIT_USAGE } from "./command.js";
import { SECTOR_SIZE } from "../devices/block-store.js";
import { LBA28_MAX_SECTORS } from "../devices/ata-disk.js";

/** The largest image: 2^28 sectors (128G). The disk addresses all but the last sector (28-bit LBAs). */
export const MAX_IMAGE_BYTES = (LBA28_MAX_SECTORS + 1) * SECTOR_SIZE;

/** Why a size is refused, or undefined if it is a valid image size. */
export function imageSizeProblem(bytes: number): string | undefined {
  if (bytes <= 0) return "must be more than 0";
  if (bytes % SECTOR_SIZE !== 0) return `must be a whole number of ${SECTOR_SIZE}-byte sectors (a multiple of 512, or K, M or G)`;
  if (bytes > MAX_IMAGE_BYTES) return `must be at most ${formatSize(MAX_IMAGE_BYTES)} (the disk takes 28-bit sector numbers)`;
  return undefined;
}

/** Creates FILE as a zero-filled image of `bytes`; refuses an existing file unless `force`. */
export function createImage(file: string, bytes: number, force: boolean): void {
  const problem = imageSizeProblem(bytes);
  if (problem) throw new RangeError(`image size ${bytes} ${problem}`);
  let existed = false;
  try {
    const st = statSync(file);
    existed = true;
    if (st.isDirectory()) throw new CommandError(`cannot create ${file}: it is a directory`, EXIT_USAGE);
    if (!force) throw new CommandError(`${file} already exists (use --force to replace it)`, EXIT_USAGE);
    if (!st.isFile()) throw new CommandError(`cannot create ${file}: it exists and is not a regular file`, EXIT_USAGE);
  } catch (e) {
    if (e instanceof CommandError) throw e;
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new CommandError(`cannot create ${file}: ${describeFileError(e)}`, EXIT_USAGE);
  }
  let fd: number;
  try {
    // "wx" fails if the file appeared meanwhile; "w" (with --force) truncates it to nothing first.
    fd = openSync(file, existed ? "w" : "wx");
  } catch (e) {
    throw new CommandError(`cannot create ${file}: ${describeFileError(e)}`, EXIT_USAGE);
  }
  try {
    ftruncateSync(fd, bytes); // zeros (sparse where the file system allows it)
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(file);
    } catch {
      // leave it: the message below says what happened
    }
    throw new CommandError(`cannot create ${file}: ${describeFileError(e)}`, EXIT_USAGE);
  }
  closeSync(fd);
}

/** A file-system error in words for a one-line message ("permission denied"). */
export function describeFileError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case "ENOENT": return "no such directory";
    case "ENOTDIR": return "a component of the path is not a directory";
    case "EACCES": case "EPERM": return "permission denied";
    case "EEXIST": return "it already exists (use --force to replace it)";
    case "EISDIR": return "it is a directory";
    case "ENOSPC": return "no space left on the device";
    case "EFBIG": return "the file system does not allow a file this big";
    case "EROFS": return "read-only file system";
    default: return err?.message ?? String(e);
  }
}

export default defineCommand({
  usage: "FILE --size SIZE [--force]",
  description: `
Creates FILE, a raw disk image of --size bytes, all zeros, for the ATA disk:
sector n is bytes 512n to 512n+511 of the file, with no header. SIZE is bytes
with an optional binary unit (512, 64K, 16M, 1G) and must be a whole number of
512-byte sectors, at most 128G. The file is made with ftruncate, so it is
sparse where the file system allows.

An existing FILE is refused unless --force is given, which replaces it with
the new, zeroed image.`,
  flags: {
    size: { type: "size", arg: "SIZE", help: "image size: a multiple of 512 bytes, or K, M, G (required)" },
    force: { type: "boolean", help: "replace FILE if it exists" },
  },
  positionals: { min: 1, max: 1, name: "FILE (the image to create)" },
  exitStatus: [
    "0  the image was created",
    "2  usage error (missing or bad --size, missing FILE), FILE exists without --force, or FILE cannot be created",
    "3  internal error",
  ],
  async run({ flags, positionals, stdout }) {
    const size = flags.size;
    if (size === undefined) throw new UsageError("missing --size (e.g. --size 16M)");
    const problem = imageSizeProblem(size);
    if (problem) throw new UsageError(`--size ${problem}, got ${size}`);
    const file = positionals[0];
    createImage(file, size, flags.force);
    stdout.write(`created ${file}: ${formatSize(size)} (${size} bytes, ${size / SECTOR_SIZE} sectors of ${SECTOR_SIZE} bytes)\n`);
    return 0;
  },
});
