// Which replica plays a role: the primary (host/ft/replica.ts), a replay-mode
// backup, or a checkpoint-mode backup (checkpoint-replica.ts). The drivers
// that start a replica in a thread of its own (host/node/ft-worker.ts,
// web/replica-worker.ts) ask here, so the choice is made in one place.

import { CheckpointBackup } from "./checkpoint-replica.js";
import { BackupReplica, PrimaryReplica, type Replica, type ReplicaOptions } from "./replica.js";

export function newReplica(role: "primary" | "backup", o: ReplicaOptions, nowMs: number): Replica {
  if (role === "primary") return new PrimaryReplica(o, nowMs);
  return o.checkpoint ? new CheckpointBackup(o, nowMs) : new BackupReplica(o, nowMs);
}
