// What the primary and the backup say to each other, as values. The roles
// (primary.ts, backup.ts) take and return these; a transport turns them into
// frames on the wire and back (docs/ft-protocol.md) — the roles never see
// bytes, sockets or timers.

import type { LogEntry } from "../replay/log-format.js";

export type Role = "primary" | "backup";

export type PeerMessage =
  /** First message each way: who I am and which VM I run. */
  | { type: "hello"; role: Role; configHash: Uint8Array; epoch: number; startIcount: bigint; replica: string }
  /** Log entries, in order (the primary's gate made them). */
  | { type: "log"; entries: LogEntry[] }
  /** The primary has retired this many instructions; every entry before it has been sent. */
  | { type: "progress"; icount: bigint }
  /** The backup holds the log up to this instruction count. */
  | { type: "ack"; icount: bigint }
  /** The primary has released every output up to this sequence number. */
  | { type: "release"; seq: number }
  /** Nothing else to say; I am alive. */
  | { type: "heartbeat"; ms: number }
  /** An orderly end: the guest exited, or the sender stops. */
  | { type: "bye"; reason: string };
