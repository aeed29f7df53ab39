// The prebuilt guests (guests/bin/, docs/guests.md) a page can run, as
// assets of its build: name, URL, the command line it runs with, whether it
// needs the NIC. The page's guest list and the examples use this table.

import kvUrl from "../guests/bin/kv.elf?url";
import ticksUrl from "../guests/bin/ticks.elf?url";
import helloUrl from "../guests/bin/hello.elf?url";
import benchUrl from "../guests/bin/bench.elf?url";

export interface GuestEntry {
  name: string;
  url: string;
  cmdline: string;
  nic: boolean;
  /** What it does, for a person choosing. */
  about: string;
}

export const GUESTS: readonly GuestEntry[] = [
  { name: "kv", url: kvUrl, cmdline: "kv.elf verbose=1", nic: true, about: "key-value server" },
  { name: "ticks", url: ticksUrl, cmdline: "ticks.elf ticks=1000000 every=5", nic: false, about: "timer ticks" },
  { name: "hello", url: helloUrl, cmdline: "hello.elf", nic: false, about: "greets and exits" },
  { name: "bench", url: benchUrl, cmdline: "bench.elf", nic: false, about: "CPU benchmark" },
];
