// Frames between the VM's NIC (or a kv client) and the network, one frame per
// call, and the text forms that name a network endpoint on the command line.
// The transports themselves are platform code: host/node/udp-transport.ts in
// Node; tests use in-memory ones.

/** Frames out and in; one frame per call. */
export interface FrameTransport {
  send(frame: Uint8Array): void;
  /** Registers a listener for incoming frames; returns a function that removes it. */
  onFrame(cb: (frame: Uint8Array) => void): () => void;
}

/** The largest frame the NIC carries (docs/nic.md). */
export const MAX_FRAME = 1514;

export interface NicSpec {
  kind: "udp";
  listenPort: number;
  peerPort: number;
}

/** Parses the `--nic` value "udp:LISTENPORT:PEERPORT"; throws a RangeError naming what is wrong. */
export function parseNicSpec(text: string): NicSpec {
  const m = /^udp:([^:]*):([^:]*)$/.exec(text);
  if (!m) throw new RangeError(`bad NIC spec '${text}': expected udp:LISTENPORT:PEERPORT`);
  return { kind: "udp", listenPort: parsePort(m[1], "LISTENPORT"), peerPort: parsePort(m[2], "PEERPORT") };
}

/** A port number 1..65535 (0 too if allowZero); throws a RangeError naming `what`. */
export function parsePort(text: string, what: string, allowZero = false): number {
  if (!/^\d{1,5}$/.test(text)) throw new RangeError(`${what} must be a port number, got '${text}'`);
  const n = Number(text);
  if (n > 65535 || (n === 0 && !allowZero)) throw new RangeError(`${what} must be ${allowZero ? 0 : 1}..65535, got ${n}`);
  return n;
}

/** Parses "HOST:PORT" (an IPv4 address or localhost). */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const k = text.lastIndexOf(":");
  if (k <= 0) throw new RangeError(`${what} must be HOST:PORT, got '${text}'`);
  const host = text.slice(0, k);
  if (host !== "localhost" && !/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(host)) {
    throw new RangeError(`${what}: the host must be an IPv4 address or localhost, got '${host}'`);
  }
  if (host !== "localhost" && host.split(".").some((p) => Number(p) > 255)) throw new RangeError(`${what}: bad IPv4 address '${host}'`);
  return { host: host === "localhost" ? "127.0.0.1" : host, port: parsePort(text.slice(k + 1), `${what} port`) };
}

