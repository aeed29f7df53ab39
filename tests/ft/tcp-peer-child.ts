// A peer in its own process for tests/ft/tcp-link.test.ts: connects to the
// listener, sends HELLO and then a HEARTBEAT every 10 ms until it is killed,
// and says "connected" on stdout once HELLO is sent.
// argv: PORT KEYHEX|-

import { connectLink } from "../../host/node/tcp-link.js";

const [port, keyHex] = process.argv.slice(2);
const key = keyHex && keyHex !== "-" ? Uint8Array.from(Buffer.from(keyHex, "hex")) : null;
const link = await connectLink({ host: "127.0.0.1", port: Number(port), key });
link.send({ type: "hello", role: "primary", version: 1, configHash: new Uint8Array(32).fill(7), epoch: 1, startIcount: 0n, replica: "child" });
process.stdout.write("connected\n");
let ms = 0;
setInterval(() => link.send({ type: "heartbeat", ms: (ms += 10) }), 10);
