// The snapshot file format (docs/snapshot-format.md): a magic, a version,
// then sections in a fixed order, each with its own header (kind,
// compression, stored and raw lengths, BLAKE3 of the raw bytes), and an END
// section whose hash covers every byte before it. The writer and the reader
// are both here, so they cannot drift apart; the reader refuses anything
// that is not exactly what the writer makes, with a SnapshotError naming the
// byte offset and the section.
//
// What goes into the sections (the VM configuration, the machine state, the
// disk overlay) is decided by the callers (snapshot.ts); this file only
// frames, compresses and checks bytes.

import { deflateSync, inflateSync } from "fflate";
import { DIGEST_BYTES, hashBytes, toHex } from "../common/hash.js";
import { packPages, unpackPages } from "./zero-pages.js";

/** "LSSNAP\r\n": like PNG's, the CR LF shows a copy that went through a text-mode transfer. */
export const SNAPSHOT_MAGIC = Uint8Array.of(0x4c, 0x53, 0x53, 0x4e, 0x41, 0x50, 0x0d, 0x0a);
export const SNAPSHOT_VERSION = 1;
/** Magic and u16le version. */
export const FILE_HEADER_BYTES = SNAPSHOT_MAGIC.length + 2;
/** kind u8, compression u8, stored length u32le, raw length u32le, BLAKE3 of the raw bytes. */
export const SECTION_HEADER_BYTES = 1 + 1 + 4 + 4 + DIGEST_BYTES;

export const enum Compression {
  None = 0,
  /** Raw DEFLATE (RFC 1951), no zlib or gzip wrapper. */
  Deflate = 1,
  /** A bitmap of the 4 KiB pages that are not all zero, then raw DEFLATE of those pages (zero-pages.ts). */
  Pages = 2,
}

/** Sections at least this long are stored as pages (compression 2): only RAM, in practice. */
const PAGES_FROM = 1 << 20;

export interface SectionSpec {
  readonly code: number;
  readonly name: string;
  /** Largest raw length a reader accepts: no section is inflated into more memory than this. */
  readonly maxRaw: number;
  readonly optional?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** The sections, in the one order a file may have them. */
export const SECTIONS: Record<"CONFIG" | "META" | "IMAGE" | "STATE" | "RAM" | "DISK" | "END", SectionSpec> = {
  CONFIG: { code: 1, name: "CONFIG", maxRaw: 64 * KiB },
  META: { code: 2, name: "META", maxRaw: 64 * KiB },
  IMAGE: { code: 3, name: "IMAGE", maxRaw: 256 * MiB },
  STATE: { code: 4, name: "STATE", maxRaw: 16 * MiB },
  // Guest RAM is at most 1 GiB (host/engine/load.ts MAX_RAM).
  RAM: { code: 5, name: "RAM", maxRaw: 1024 * MiB },
  DISK: { code: 6, name: "DISK", maxRaw: 2 ** 32 - 1, optional: true },
  END: { code: 0xff, name: "END", maxRaw: 0 },
};

export type SectionName = keyof typeof SECTIONS;
const ORDER: SectionName[] = ["CONFIG", "META", "IMAGE", "STATE", "RAM", "DISK", "END"];
const byCode = new Map<number, SectionName>(ORDER.map((n) => [SECTIONS[n].code, n]));

/** A snapshot that is not well formed: where (byte offset), in which section, and what is wrong. */
export class SnapshotError extends Error {
  constructor(
    readonly offset: number,
    readonly section: string,
    readonly reason: string,
  ) {
    super(`snapshot: ${section === "" ? "" : `section ${section}: `}${reason} (at byte ${offset})`);
    this.name = "SnapshotError";
  }
}

/** One section as it was read: where it starts, how it was stored, and its raw bytes. */
export interface SectionInfo {
  name: SectionName;
  /** Offset of the section's header in the file. */
  offset: number;
  compression: Compression;
  storedBytes: number;
  rawBytes: number;
}

export interface SnapshotSections {
  CONFIG: Uint8Array;
  META: Uint8Array;
  IMAGE: Uint8Array;
  STATE: Uint8Array;
  RAM: Uint8Array;
  /** Absent when the VM has no disk. */
  DISK?: Uint8Array;
}

export interface ReadSnapshot {
  version: number;
  sections: SnapshotSections;
  /** Every section as it was stored, END included, in file order. */
  layout: SectionInfo[];
  bytes: number;
}

export interface WriteOptions {
  /** fflate's level, 0-9 (default 1: RAM is mostly zeros or repeated pages, where level 1 is nearly as small and several times faster). */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
}

/**
 * Frames `s` as a snapshot file. Each section is deflated unless that does
 * not make it smaller. Call await initHash() (host/common/hash.ts) first.
 */
export function writeSnapshot(s: SnapshotSections, o: WriteOptions = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(FILE_HEADER_BYTES);
  head.set(SNAPSHOT_MAGIC);
  new DataView(head.buffer).setUint16(SNAPSHOT_MAGIC.length, SNAPSHOT_VERSION, true);
  parts.push(head);
  for (const name of ORDER) {
    if (name === "END") break;
    const raw = s[name];
    if (raw === undefined) {
      if (SECTIONS[name].optional) continue;
      throw new TypeError(`snapshot: section ${name} is missing`);
    }
    if (raw.length > SECTIONS[name].maxRaw) throw new RangeError(`snapshot: section ${name} is ${raw.length} bytes, more than ${SECTIONS[name].maxRaw}`);
    const how = raw.length >= PAGES_FROM ? Compression.Pages : Compression.Deflate;
    const packed = raw.length === 0 ? raw : how === Compression.Pages ? packPages(raw, o.level ?? 1) : deflateSync(raw, { level: o.level ?? 1 });
    const deflated = packed.length < raw.length;
    parts.push(sectionHeader(SECTIONS[name].code, deflated ? how : Compression.None, deflated ? packed.length : raw.length, raw.length, hashBytes(raw)));
    parts.push(deflated ? packed : raw);
  }
  parts.push(sectionHeader(SECTIONS.END.code, Compression.None, 0, 0, hashBytes(...parts)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function sectionHeader(code: number, compression: Compression, stored: number, raw: number, digest: Uint8Array): Uint8Array {
  const h = new Uint8Array(SECTION_HEADER_BYTES);
  const v = new DataView(h.buffer);
  v.setUint8(0, code);
  v.setUint8(1, compression);
  v.setUint32(2, stored, true);
  v.setUint32(6, raw, true);
  h.set(digest, 10);
  return h;
}

/**
 * Reads and checks a whole snapshot file: the magic, the version, each
 * section's header, length, decompression and hash, the order of the
 * sections, the END hash over every byte before END, and that nothing
 * follows END. Throws SnapshotError; returns the raw sections.
 */
export function readSnapshot(file: Uint8Array): ReadSnapshot {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < FILE_HEADER_BYTES) {
    throw new SnapshotError(file.length, "", `the file is ${file.length} bytes, shorter than the ${FILE_HEADER_BYTES}-byte file header (magic and version): truncated, or not a snapshot`);
  }
  for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) {
    if (file[i] !== SNAPSHOT_MAGIC[i]) throw new SnapshotError(i, "", "not a lockstep snapshot (wrong magic; a snapshot begins with \"LSSNAP\\r\\n\")");
  }
  const version = view.getUint16(SNAPSHOT_MAGIC.length, true);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotError(SNAPSHOT_MAGIC.length, "", `format version ${version}; this lockstep reads version ${SNAPSHOT_VERSION} only`);

  const sections: Partial<SnapshotSections> = {};
  const layout: SectionInfo[] = [];
  let at = FILE_HEADER_BYTES;
  let next = 0; // index in ORDER of the earliest section that may come next
  for (;;) {
    const want = expectedNames(next);
    if (at + SECTION_HEADER_BYTES > file.length) {
      throw new SnapshotError(at, want[0]!, `truncated: the file ends ${file.length - at} bytes into the ${SECTION_HEADER_BYTES}-byte header of section ${want.join(" or ")}`);
    }
    const code = view.getUint8(at);
    const name = byCode.get(code);
    if (name === undefined || !want.includes(name)) {
      throw new SnapshotError(at, want[0]!, `found section kind ${code}${name ? ` (${name})` : ""} where section ${want.join(" or ")} must be: the file is damaged or sections are out of order`);
    }
    const spec = SECTIONS[name];
    const compression = view.getUint8(at + 1);
    const stored = view.getUint32(at + 2, true);
    const raw = view.getUint32(at + 6, true);
    const digest = file.subarray(at + 10, at + SECTION_HEADER_BYTES);
    if (name === "END") {
      if (compression !== Compression.None || stored !== 0 || raw !== 0) throw new SnapshotError(at, name, "the END section must have compression 0 and lengths 0");
      if (toHex(hashBytes(file.subarray(0, at))) !== toHex(digest)) {
        throw new SnapshotError(at + 10, name, "the file hash does not match: some byte before END was changed");
      }
      const end = at + SECTION_HEADER_BYTES;
      layout.push({ name, offset: at, compression, storedBytes: 0, rawBytes: 0 });
      if (end !== file.length) throw new SnapshotError(end, name, `${file.length - end} bytes follow the END section; nothing may`);
      return { version, sections: sections as SnapshotSections, layout, bytes: file.length };
    }
    if (compression !== Compression.None && compression !== Compression.Deflate && compression !== Compression.Pages) {
      throw new SnapshotError(at + 1, name, `unknown compression ${compression} (0 none, 1 deflate, 2 pages)`);
    }
    if (raw > spec.maxRaw) throw new SnapshotError(at + 6, name, `raw length ${raw} is more than this section's limit of ${spec.maxRaw} bytes`);
    if (compression === Compression.None && stored !== raw) throw new SnapshotError(at + 2, name, `stored length ${stored} differs from raw length ${raw} in an uncompressed section`);
    const body = at + SECTION_HEADER_BYTES;
    if (body + stored > file.length) {
      throw new SnapshotError(body, name, `truncated: the section's ${stored} stored bytes run past the end of the file (${file.length - body} left)`);
    }
    const storedBytes = file.subarray(body, body + stored);
    let bytes: Uint8Array;
    if (compression === Compression.Deflate) {
      // One byte of room past `raw`: a stream that inflates to more than it says is caught, not cut short.
      let out: Uint8Array;
      try {
        out = inflateSync(storedBytes, { out: new Uint8Array(raw + 1) });
      } catch (e) {
        throw new SnapshotError(body, name, `the deflated data is damaged (${(e as Error).message})`);
      }
      if (out.length !== raw) throw new SnapshotError(body, name, `the deflated data inflates to ${out.length > raw ? `more than ${raw}` : out.length} bytes, not the raw length ${raw}`);
      bytes = out.subarray(0, raw);
    } else if (compression === Compression.Pages) {
      try {
        bytes = unpackPages(storedBytes, raw);
      } catch (e) {
        throw new SnapshotError(body, name, (e as Error).message);
      }
    } else {
      bytes = storedBytes.slice();
    }
    if (toHex(hashBytes(bytes)) !== toHex(digest)) throw new SnapshotError(at + 10, name, "the section's content does not match its hash: the file is damaged");
    sections[name] = bytes;
    layout.push({ name, offset: at, compression, storedBytes: stored, rawBytes: raw });
    next = ORDER.indexOf(name) + 1;
    at = body + stored;
  }
}

/** The sections that may come at ORDER[next]: it, and past it while the ones skipped are optional. */
function expectedNames(next: number): SectionName[] {
  const out: SectionName[] = [];
  for (let k = next; k < ORDER.length; k++) {
    out.push(ORDER[k]!);
    if (!SECTIONS[ORDER[k]!].optional) break;
  }
  return out;
}

/** The SnapshotError for something wrong inside a section's content (found by a caller that decodes it). */
export function contentError(s: ReadSnapshot, name: SectionName, reason: string): SnapshotError {
  const info = s.layout.find((l) => l.name === name);
  return new SnapshotError(info ? info.offset + SECTION_HEADER_BYTES : 0, name, reason);
}
