// kv wire protocol: round trips of every operation's request and reply, and
// malformed frames refused with the field and offset named.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compareKeys, crc32, decodeListValue, decodeReply, decodeRequest, decodeStats, encodeListValue, encodeReply,
  encodeRequest, encodeStats, KV_HEADER, KV_MAX_FRAME, KvProtocolError, Op, parseDecimal, REPLY_FLAG_MORE,
  REPLY_FLAG_REPLAYED, REQ_FLAG_EXPECT_ABSENT, request, Status, type KvReply,
} from "../../host/kv/protocol.js";

const t = (s: string) => new TextEncoder().encode(s);

function refused(f: () => unknown): KvProtocolError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(KvProtocolError);
    return e as KvProtocolError;
  }
  throw new Error("expected a KvProtocolError");
}

describe("kv protocol: requests", () => {
  it("encodes the header as docs/kv-protocol.md lays it out", () => {
    const b = encodeRequest(request(Op.Cas, 0x01020304, 0xa0b0c0d0, { key: t("k"), value: t("vv"), value2: t("www") }));
    expect(Array.from(b.subarray(0, KV_HEADER))).toEqual([
      0x4c, 0x53, 0x4b, 0x56, 1, 0, 5, 0, 4, 3, 2, 1, 0xd0, 0xc0, 0xb0, 0xa0, 1, 0, 2, 0, 3, 0, 0, 0,
    ]);
    expect(new TextDecoder().decode(b.subarray(KV_HEADER))).toBe("kvvwww");
  });

  it("round-trips every operation", () => {
    const cases = [
      request(Op.Get, 1, 1, { key: t("a") }),
      request(Op.Put, 2, 7, { key: t("key"), value: t("value") }),
      request(Op.Put, 2, 8, { key: new Uint8Array(64).fill(0xff), value: new Uint8Array(512) }),
      request(Op.Del, 3, 9, { key: t("gone") }),
      request(Op.Incr, 4, 10, { key: t("n"), value: t("-9223372036854775808") }),
      request(Op.Cas, 5, 11, { key: t("c"), value: new Uint8Array(512), value2: new Uint8Array(512) }),
      request(Op.Cas, 5, 12, { key: t("c"), value2: t("new"), flags: REQ_FLAG_EXPECT_ABSENT }),
      request(Op.Count, 6, 13),
      request(Op.List, 7, 14),
      request(Op.List, 7, 15, { key: t("pre"), value: t("pre9") }),
      request(Op.Ping, 8, 16, { value: t("echo") }),
      request(Op.Stats, 9, 17),
      request(Op.Hello, 0xffffffff, 0),
    ];
    for (const r of cases) {
      const b = encodeRequest(r);
      expect(b.length).toBeLessThanOrEqual(KV_MAX_FRAME);
      expect(decodeRequest(b)).toEqual(r);
    }
    expect(KV_MAX_FRAME).toBeLessThanOrEqual(1514);
  });

  it("round-trips arbitrary valid PUT and CAS requests", () => {
    const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 1, max: 0xffffffff }), bytes(1, 64), bytes(0, 512), bytes(0, 512),
      (c, n, key, value, value2) => {
        const put = request(Op.Put, c, n, { key, value });
        expect(decodeRequest(encodeRequest(put))).toEqual(put);
        const cas = request(Op.Cas, c, n, { key, value, value2 });
        expect(decodeRequest(encodeRequest(cas))).toEqual(cas);
      },
    ), { numRuns: 200 });
  });

  it("refuses malformed request frames, naming the field and offset", () => {
    const good = encodeRequest(request(Op.Put, 1, 2, { key: t("k"), value: t("v") }));
    const mutate = (f: (b: Uint8Array) => void, b = good.slice()) => {
      f(b);
      return b;
    };
    const cases: [Uint8Array, string, number, RegExp][] = [
      [good.slice(0, 23), "frame", 23, /23 bytes is shorter than the 24-byte header/],
      [mutate((b) => (b[2] = 0x58)), "magic", 0, /expected 4c 53 4b 56 \("LSKV"\), got 4c 53 58 56/],
      [mutate((b) => (b[4] = 2)), "version", 4, /expected 1, got 2/],
      [mutate((b) => (b[5] = 1)), "kind", 5, /expected 0 \(request\), got 1/],
      [mutate((b) => (b[6] = 42)), "opcode", 6, /unknown opcode 42/],
      [mutate((b) => (b[7] = 1)), "flags", 7, /0x1 has bits not defined for PUT/],
      [mutate((b) => b.fill(0, 8, 12)), "client_id", 8, /must not be 0/],
      [mutate((b) => b.fill(0, 12, 16)), "request_number", 12, /must not be 0 for PUT/],
      [mutate((b) => (b[22] = 1)), "reserved", 22, /must be 0, got 1/],
      [good.slice(0, good.length - 1), "frame", 25, /length 25 does not match the header \(24 \+ key_len 1 \+ value_len 1 \+ value2_len 0 = 26\)/],
      [Uint8Array.of(...good, 0), "frame", 26, /length 27 does not match/],
      [mutate((b) => (b[6] = Op.Get)), "value_len", 18, /1 must be 0 for GET/],
    ];
    for (const [frame, field, offset, msg] of cases) {
      const e = refused(() => decodeRequest(frame));
      expect([e.field, e.offset], e.message).toEqual([field, offset]);
      expect(e.message).toMatch(msg);
      expect(e.message.startsWith(`${field} at offset ${offset}: `)).toBe(true);
    }
    const hello = encodeRequest(request(Op.Hello, 1, 0));
    const e = refused(() => decodeRequest(mutate((b) => (b[12] = 3), hello.slice())));
    expect(e.message).toBe("request_number at offset 12: must be 0 for HELLO, got 3");
  });

  it("refuses to encode requests that break the field rules", () => {
    expect(refused(() => encodeRequest(request(Op.Get, 1, 1))).message).toBe("key_len at offset 16: 0 must be 1..64 for GET");
    expect(refused(() => encodeRequest(request(Op.Get, 1, 1, { key: new Uint8Array(65) }))).message).toMatch(/key_len at offset 16: 65 must be 1..64/);
    expect(refused(() => encodeRequest(request(Op.Put, 1, 1, { key: t("k"), value: new Uint8Array(513) }))).field).toBe("value_len");
    expect(refused(() => encodeRequest(request(Op.Count, 1, 1, { value2: t("x") }))).message).toMatch(/value2_len at offset 20: 1 must be 0 for COUNT/);
    expect(refused(() => encodeRequest(request(Op.Cas, 1, 1, { key: t("k"), value: t("x"), flags: REQ_FLAG_EXPECT_ABSENT }))).message)
      .toMatch(/value_len.*EXPECT_ABSENT/);
    expect(refused(() => encodeRequest(request(Op.Get, 0x100000000, 1, { key: t("k") }))).message).toMatch(/client_id at offset 8: 4294967296 is not a 32-bit/);
    expect(refused(() => encodeRequest(request(Op.Incr, 1, 1, { key: t("k"), value: new Uint8Array(21) }))).field).toBe("value_len");
  });
});

describe("kv protocol: replies", () => {
  const reply = (over: Partial<KvReply> = {}): KvReply => ({
    op: Op.Get, status: Status.Ok, clientId: 9, requestNumber: 77, flags: 0, result: 0, value: t("hello"), ...over,
  });

  it("round-trips replies, with flags and result", () => {
    for (const r of [
      reply(),
      reply({ op: Op.Put, result: 1, value: new Uint8Array(0) }),
      reply({ op: Op.List, flags: REPLY_FLAG_MORE | REPLY_FLAG_REPLAYED, result: 0xffffffff, value: new Uint8Array(1024) }),
      reply({ status: Status.BadVersion, value: new Uint8Array(0) }),
    ]) {
      expect(decodeReply(encodeReply(r))).toEqual(r);
    }
    const b = encodeReply(reply({ op: Op.Count, status: Status.Ok, result: 0x01020304, value: new Uint8Array(0) }));
    expect(Array.from(b)).toEqual([0x4c, 0x53, 0x4b, 0x56, 1, 1, 6, 0, 9, 0, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0, 4, 3, 2, 1]);
  });

  it("refuses malformed replies, naming the field and offset", () => {
    const good = encodeReply(reply());
    const m = (at: number, v: number) => {
      const b = good.slice();
      b[at] = v;
      return b;
    };
    const cases: [Uint8Array, string, number][] = [
      [good.slice(0, 10), "frame", 10],
      [m(0, 0), "magic", 0],
      [m(4, 0), "version", 4],
      [m(5, 0), "kind", 5],
      [m(6, 0), "opcode", 6],
      [m(7, 99), "status", 7],
      [m(18, 4), "flags", 18],
      [m(19, 1), "reserved", 19],
      [m(17, 8), "value_len", 16], // 2053 > 1024
      [good.slice(0, 27), "frame", 27],
    ];
    for (const [frame, field, offset] of cases) {
      const e = refused(() => decodeReply(frame));
      expect([e.field, e.offset], e.message).toEqual([field, offset]);
    }
    expect(refused(() => decodeReply(m(7, 99))).message).toBe("status at offset 7: unknown status 99");
  });
});

describe("kv protocol: helpers", () => {
  it("LIST values round-trip and malformed entries are refused", () => {
    const keys = [t("a"), t("bb"), new Uint8Array(64).fill(7)];
    expect(decodeListValue(encodeListValue(keys))).toEqual(keys);
    expect(decodeListValue(new Uint8Array(0))).toEqual([]);
    expect(refused(() => decodeListValue(Uint8Array.of(3, 1, 2))).message).toBe("list entry at offset 24: key of 3 bytes runs past the end of the value");
    expect(refused(() => decodeListValue(Uint8Array.of(1, 9, 0))).message).toMatch(/list entry at offset 26: key length 0/);
  });

  it("STATS values round-trip", () => {
    const s = { keys: 1, keyCapacity: 256, clients: 2, clientCapacity: 64, generation: 3, logRecords: 4, requests: 5, replays: 6 };
    expect(decodeStats(encodeStats(s))).toEqual(s);
    expect(refused(() => decodeStats(new Uint8Array(31))).field).toBe("value_len");
  });

  it("CRC-32 is the IEEE/zlib one", () => {
    expect(crc32(t("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it("parses INCR's decimal grammar", () => {
    expect(parseDecimal(t("0"))).toBe(0n);
    expect(parseDecimal(t("-42"))).toBe(-42n);
    expect(parseDecimal(t("007"))).toBe(7n);
    expect(parseDecimal(t("9223372036854775807"))).toBe(2n ** 63n - 1n);
    expect(parseDecimal(t("-9223372036854775808"))).toBe(-(2n ** 63n));
    for (const bad of ["", "-", "+1", "1 ", " 1", "9223372036854775808", "12345678901234567890", "1e3", "0x10"]) {
      expect(parseDecimal(t(bad)), bad).toBeUndefined();
    }
  });

  it("orders keys byte-wise with a prefix first", () => {
    const sorted = [t("a"), t("ab"), t("b"), Uint8Array.of(0x80)];
    expect([...sorted].reverse().sort(compareKeys)).toEqual(sorted);
  });
});
