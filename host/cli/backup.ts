// lockstep backup GUEST --connect HOST:PORT --arbiter file:PATH: the backup half of
// the fault-tolerant pair in its own process (host/cli/replica-process.ts);
// with --standby --listen HOST:PORT, a spare that waits for a live primary
// to bring it in by state transfer.

import { defineCommand } from "./command.js";
import { REPLICA_FLAGS, runReplicaProcess } from "./replica-process.js";

export default defineCommand({
  usage: "GUEST (--connect HOST:PORT | --standby --listen HOST:PORT) --arbiter file:PATH [--spare HOST:PORT] [--key FILE] [--vm NAME] [--nic udp:LISTEN:PEER] [--disk FILE] [--outputs raw|numbered] [--engine wasm|ts] [--mem SIZE] [--clock host|virtual] [--cmdline TEXT]",
  description: `
The backup of a fault-tolerant pair, one process per replica, on one host or
two: it connects to the primary at HOST:PORT and follows it, replaying its log. The logging channel is TCP (docs/ft-protocol.md); with --key
every frame carries a MAC under the pre-shared key, and a peer without it is
refused. Both replicas must be given the same GUEST, --mem, --clock and
--cmdline (the HELLO frames compare the configurations) and the same
--arbiter. When the primary goes silent for --timeout-ms, this replica asks
the arbiter for the next epoch: the winner goes on (the backup goes live),
the loser stops and says so. 'kill -9' of either process is a fail-stop the
other survives. See docs/ft.md.

With --disk FILE the guest has the ATA disk on one raw image that both
replicas reach (the same file, or shared storage): neither replica writes
it; the process whose replica is live writes each of the guest's writes
once the Output Rule releases it, so the image only ever holds writes the
backup can repeat. Give both replicas the same FILE before the run starts
(its identity is part of the configuration the HELLO frames compare). Not
with --standby or --spare yet (docs/ft-disk.md).

With --nic udp:LISTENPORT:PEERPORT the guest has the paravirtual NIC on
UDP (127.0.0.1), as with 'lockstep run': datagrams sent to LISTENPORT are
dropped until this replica has gone live and go into the guest after; from
go-live its frames go to PEERPORT, first the ones it kept (which the primary
may already have sent). Give each replica its own LISTENPORT and the same
PEERPORT. The host also answers endpoint probes on LISTENPORT (its role,
whether it is live, its epoch), so a client given both replicas' ports finds
the live one: lockstep kv-client --vm
127.0.0.1:PRIMARY_LISTEN,127.0.0.1:BACKUP_LISTEN --listen PEERPORT
(docs/ft-endpoints.md).

With --standby --listen HOST:PORT it boots nothing: it waits there for a
live primary without a backup (one started with --spare HOST:PORT) to
connect, takes the machine's state from it while its guest runs, and is
its backup from then on, as above. A peer that is not the primary of this
VM (another GUEST, --mem, --clock, --cmdline or --nic) is refused and the
standby waits on. With --spare HOST:PORT, whenever this replica is live
without a backup (it went live), it brings in the standby waiting there.`,
  flags: {
    connect: { type: "string", arg: "HOST:PORT", help: "where the primary listens" },
    standby: { type: "boolean", help: "join a live primary later, by state transfer, rather than at the start (with --listen)" },
    listen: { type: "string", arg: "HOST:PORT", help: "with --standby: where a live primary brings this standby in" },
    ...REPLICA_FLAGS,
  },
  positionals: { min: 1, max: 1, name: "GUEST (a Multiboot kernel or ELF32 i386 executable)" },
  exitStatus: [
    "N  the guest wrote N to port 0xF4",
    "0  the run ended (the guest halted, or the primary ended it)",
    "1  lost the arbiter to the other replica, or stopped by --max-instructions",
    "2  usage error, a GUEST, key or arbiter that cannot be used, or an address in use",
    "130/143  stopped by SIGINT/SIGTERM (dead: the other replica takes over)",
  ],
  run: ({ flags, positionals, stdout, stderr }) => runReplicaProcess("backup", flags as never, positionals, stdout, stderr),
});
