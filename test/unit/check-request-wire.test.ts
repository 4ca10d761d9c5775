// The server reads CheckRequest bytes with its own narrow reader (src/envoy/check-request-wire.ts)
// instead of decoding the whole message with proto-loader. Here both readers see the same bytes,
// encoded with Envoy's official protos: the Envoy and Istio fixtures, random hostile requests,
// requests with repeated fields, messages written byte by byte (repeats at every level, padded
// varints, unknown fields), and corrupted bytes. Wherever both accept the bytes, the views must
// be equal, field for field. The narrow reader refuses some bytes proto-loader reads (a field in
// the wrong wire type, a varint protobufjs would read to a different length) and accepts some it
// refuses: those whose only defect lies inside a field no decision reads, which it skips by length.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DECLARED_WIRE_TYPES,
  readCheckRequestFields,
  WireError,
  type WireTypes,
} from "../../src/envoy/check-request-wire.ts";
import {
  checkViewOf,
  fromCheckRequest,
  type CheckView,
} from "../../src/envoy/from-check-request.ts";
import { checkMethod, extAuthzPackageDefinition } from "../../src/envoy/protos.ts";
import { checkRequestFixture } from "../harness/fixtures.ts";
import {
  chance,
  corrupt,
  hostileCheckRequest,
  int,
  pick,
  randomBytes,
  seededRng,
} from "../fuzz/generators.ts";

const CHECK = checkMethod();
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const TOKEN = "tks_prod_0123456789abcdefghijklmnop_secretsecretsecretsecret_abcdef";

const encode = (request: object): Buffer => CHECK.requestSerialize(request);
const viaProtoLoader = (bytes: Buffer): CheckView =>
  fromCheckRequest(CHECK.requestDeserialize(bytes));
const viaWire = (bytes: Buffer): CheckView => checkViewOf(readCheckRequestFields(bytes));

/** Protobuf written byte by byte, so that repeats, padding and unknown fields reach every level. */
function wireWriter(rng: () => number) {
  const varint = (value: number, pad = 0): Buffer => {
    const out: number[] = [];
    let v = value;
    do {
      const b = v & 0x7f;
      v = Math.floor(v / 128);
      out.push(b | (v > 0 ? 0x80 : 0));
    } while (v > 0);
    // Non-minimal padding (0x80 ... 0x00) that protobufjs still reads as the same number.
    for (let i = 0; i < pad && out.length < 10; i++) {
      out[out.length - 1] = (out[out.length - 1] as number) | 0x80;
      out.push(0);
    }
    return Buffer.from(out);
  };
  const vi = (v: number) => varint(v, chance(rng, 0.1) ? int(rng, 6) : 0);
  const tag = (field: number, wireType: number) => vi(field * 8 + wireType);
  const ld = (field: number, body: Buffer) => Buffer.concat([tag(field, 2), vi(body.length), body]);
  const KEYS = [
    "authorization",
    "Authorization",
    ":authority",
    "host",
    "HOST",
    ":path",
    ":method",
    "x-request-id",
    "X-Request-ID",
    "cookie",
    "\u212Aey",
    "authorization ",
    "",
    "namespace",
  ];
  const text = (): Buffer => {
    switch (int(rng, 5)) {
      case 0:
        return Buffer.alloc(0);
      case 1:
        return randomBytes(rng, int(rng, 12));
      case 2:
        return Buffer.from(pick(rng, KEYS));
      default:
        return Buffer.from(
          pick(rng, ["Bearer a", "Bearer b", "/p", "GET", "10.0.0.1", "prod", "été"]),
        );
    }
  };
  const unknown = (): Buffer => {
    const field = 14 + int(rng, 20);
    switch (int(rng, 4)) {
      case 0:
        return Buffer.concat([tag(field, 0), varint(int(rng, 1e6), int(rng, 12))]);
      case 1:
        return Buffer.concat([tag(field, 1), Buffer.alloc(8, 7)]);
      case 2:
        return ld(field, text());
      default:
        return Buffer.concat([tag(field, 5), Buffer.alloc(4, 9)]);
    }
  };
  const many = (n: number, parts: (() => Buffer)[]) =>
    Buffer.concat(Array.from({ length: int(rng, n) }, () => pick(rng, parts)()));
  const key = () => ld(1, Buffer.from(pick(rng, KEYS)));
  const entry = (field: number) => ld(field, many(4, [key, () => ld(2, text()), unknown]));
  const headerValue = () =>
    ld(1, many(5, [key, () => ld(1, text()), () => ld(2, text()), () => ld(3, text()), unknown]));
  const http = () =>
    many(10, [
      () => ld(pick(rng, [1, 2, 4, 5, 6, 7]), text()),
      () => entry(3),
      () => ld(13, many(5, [headerValue, headerValue, unknown])),
      () => Buffer.concat([tag(9, 0), varint(int(rng, 100), int(rng, 12))]),
      unknown,
    ]);
  const request = () =>
    many(3, [() => ld(2, http()), () => ld(1, Buffer.concat([tag(1, 0), vi(5)])), unknown]);
  const socket = () =>
    many(4, [
      () => ld(2, text()),
      () => Buffer.concat([tag(3, 0), varint(int(rng, 70000), int(rng, 12))]),
      unknown,
    ]);
  const address = () => many(3, [() => ld(1, socket()), () => ld(2, ld(1, text())), unknown]);
  const peer = () =>
    many(4, [() => ld(1, address()), () => ld(4, text()), () => ld(2, text()), unknown]);
  const attributes = () =>
    many(6, [
      () => ld(1, peer()),
      () => ld(2, peer()),
      () => ld(4, request()),
      () => entry(10),
      unknown,
    ]);
  return () => many(3, [() => ld(1, attributes()), () => ld(1, attributes()), unknown]);
}

function tryRead(read: (b: Buffer) => CheckView, bytes: Buffer): CheckView | Error {
  try {
    return read(bytes);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

interface FieldDescriptor {
  number: number;
  type: string;
  label: string;
}
interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType?: MessageDescriptor[];
}

/**
 * The wire types a message's fields may arrive in, derived from Envoy's protos as proto-loader
 * loads them, in the reader's encoding: a bit per wire type, plus how protobufjs reads a varint.
 */
function wireTypesFromProtos(fullName: string): WireTypes {
  const [VARINT, FIXED64, LENGTH_DELIMITED, FIXED32] = [0, 1, 2, 5];
  const [VARINT_32, VARINT_64, ANY] = [1 << 8, 1 << 9, 0xff];
  const fixed: Record<string, number> = {
    TYPE_DOUBLE: FIXED64,
    TYPE_FIXED64: FIXED64,
    TYPE_SFIXED64: FIXED64,
    TYPE_FLOAT: FIXED32,
    TYPE_FIXED32: FIXED32,
    TYPE_SFIXED32: FIXED32,
  };
  const bitsOf = (f: FieldDescriptor): number => {
    if (["TYPE_STRING", "TYPE_BYTES", "TYPE_MESSAGE"].includes(f.type))
      return 1 << LENGTH_DELIMITED;
    const wireType = fixed[f.type] ?? VARINT;
    let bits = 1 << wireType;
    if (wireType === VARINT)
      bits |= ["TYPE_INT64", "TYPE_UINT64", "TYPE_SINT64"].includes(f.type) ? VARINT_64 : VARINT_32;
    return f.label === "LABEL_REPEATED" ? bits | (1 << LENGTH_DELIMITED) : bits;
  };
  const definitions = extAuthzPackageDefinition() as Record<string, { type?: MessageDescriptor }>;
  const parts = fullName.split(".");
  for (let cut = parts.length; cut > 0; cut--) {
    let message = definitions[parts.slice(0, cut).join(".")]?.type;
    for (const nested of parts.slice(cut)) {
      message = message?.nestedType?.find((m) => m.name === nested);
    }
    if (message?.field !== undefined) {
      const bits = new Array<number>(1 + Math.max(...message.field.map((f) => f.number)));
      bits.fill(ANY);
      for (const f of message.field) bits[f.number] = bitsOf(f);
      return bits;
    }
  }
  throw new Error(`${fullName} not found in Envoy's protos`);
}

describe("the reader's field tables", () => {
  for (const [name, table] of Object.entries(DECLARED_WIRE_TYPES)) {
    it(`${name}: every field number and type as Envoy's protos declare them`, () => {
      assert.deepEqual(table, wireTypesFromProtos(name));
    });
  }
});

describe("reading CheckRequest bytes for a decision", () => {
  it("reads Envoy's and Istio's CheckRequests as proto-loader does", () => {
    for (const name of ["istio-sidecar-get.json", "envoy-gateway-raw-headers.json"]) {
      const bytes = encode(checkRequestFixture(name, TOKEN));
      const view = viaWire(bytes);
      assert.deepEqual(view, viaProtoLoader(bytes), name);
      assert.deepEqual(view.authorization, [`Bearer ${TOKEN}`], name);
      assert.notEqual(view.route.path, "", name);
    }
  });

  const cases: { name: string; request: object; expect: Partial<CheckView> }[] = [
    { name: "an empty message carries nothing", request: {}, expect: { authorization: [] } },
    {
      name: "the headers map is read by exact lowercase name",
      request: {
        attributes: {
          request: { http: { headers: { authorization: "Bearer a", Authorization: "Bearer b" } } },
        },
      },
      expect: { authorization: ["Bearer a"] },
    },
    {
      name: "header_map keys are compared case-insensitively and every value is kept",
      request: {
        attributes: {
          request: {
            http: {
              header_map: {
                headers: [
                  { key: "Authorization", raw_value: Buffer.from("Bearer a") },
                  { key: "AUTHORIZATION", value: "Bearer b" },
                ],
              },
            },
          },
        },
      },
      expect: { authorization: ["Bearer a", "Bearer b"] },
    },
    {
      name: "any header_map entry means the headers map is not read",
      request: {
        attributes: {
          request: {
            http: {
              headers: { authorization: "Bearer a" },
              header_map: { headers: [{ key: "cookie", raw_value: Buffer.from("x") }] },
            },
          },
        },
      },
      expect: { authorization: [] },
    },
    {
      name: "raw_value bytes are Latin-1, not UTF-8",
      request: {
        attributes: {
          request: {
            http: {
              header_map: {
                headers: [{ key: "authorization", raw_value: Buffer.from([0xc3, 0x28]) }],
              },
            },
          },
        },
      },
      expect: { authorization: ["\u00c3("] },
    },
    {
      name: "a header_map key in any case names its header",
      request: {
        attributes: {
          request: { http: { header_map: { headers: [{ key: "X-Request-Id", value: "r1" }] } } },
        },
      },
      expect: { requestId: "r1" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const bytes = encode(c.request);
      const view = viaWire(bytes);
      assert.deepEqual(view, viaProtoLoader(bytes));
      for (const [k, v] of Object.entries(c.expect)) {
        assert.deepEqual(view[k as keyof CheckView], v, k);
      }
    });
  }

  it("a later field replaces an earlier one, as proto-loader reads repeated fields", () => {
    const rng = seededRng(SEED);
    for (let i = 0; i < 3000; i++) {
      // Concatenated encodings are one message whose fields repeat (the protobuf wire rule).
      const parts = Array.from({ length: 2 + int(rng, 2) }, () =>
        encode(hostileCheckRequest(rng, "prod", [TOKEN])),
      );
      const bytes = Buffer.concat(parts);
      assert.deepEqual(viaWire(bytes), viaProtoLoader(bytes), `seed ${SEED} case ${i}`);
    }
  });

  it("random hostile requests read the same both ways", () => {
    const rng = seededRng(SEED + 1);
    for (let i = 0; i < 5000; i++) {
      const bytes = encode(hostileCheckRequest(rng, "prod", [TOKEN]));
      assert.deepEqual(viaWire(bytes), viaProtoLoader(bytes), `seed ${SEED + 1} case ${i}`);
    }
  });

  it("fields a decision does not read are skipped, whatever their type", () => {
    const bytes = encode({
      attributes: {
        source: {
          address: { socket_address: { address: "10.0.0.1", port_value: 8080, protocol: "TCP" } },
          labels: { app: "web" },
          service: "web.prod",
          certificate: "-----BEGIN CERTIFICATE-----",
        },
        request: {
          time: { seconds: "1700000000", nanos: 5 },
          http: {
            size: "-1",
            scheme: "https",
            protocol: "HTTP/2",
            raw_body: Buffer.from([0, 1, 2]),
            headers: { authorization: `Bearer ${TOKEN}` },
          },
        },
        metadata_context: { filter_metadata: { x: { fields: { a: { number_value: 1.5 } } } } },
        tls_session: { sni: "api.example.com" },
      },
    });
    const view = viaWire(bytes);
    assert.deepEqual(view, viaProtoLoader(bytes));
    assert.equal(view.source.address, "10.0.0.1");
    assert.deepEqual(view.authorization, [`Bearer ${TOKEN}`]);
  });

  /** Reads `cases` messages both ways; equal views wherever both accept. Counts each outcome. */
  function compareOnBytes(label: string, seed: number, cases: number, next: () => Buffer) {
    const counts = { both: 0, neither: 0, onlyProtoLoader: 0, onlyWire: 0 };
    for (let i = 0; i < cases; i++) {
      const bytes = next();
      const wire = tryRead(viaWire, bytes);
      const full = tryRead(viaProtoLoader, bytes);
      if (wire instanceof Error) {
        assert.ok(wire instanceof WireError, `unexpected ${wire.name}: ${wire.message}`);
        counts[full instanceof Error ? "neither" : "onlyProtoLoader"]++;
      } else if (full instanceof Error) {
        counts.onlyWire++;
      } else {
        counts.both++;
        assert.deepEqual(wire, full, `seed ${seed} case ${i}: ${bytes.toString("hex")}`);
      }
    }
    process.stdout.write(`# ${label}, seed ${seed}: ${JSON.stringify(counts)}\n`);
    return counts;
  }

  it("corrupt and random bytes: whatever the narrow reader accepts, it reads as proto-loader", () => {
    const rng = seededRng(SEED + 2);
    const counts = compareOnBytes("corrupt bytes", SEED + 2, 20_000, () =>
      chance(rng, 0.8)
        ? corrupt(rng, encode(hostileCheckRequest(rng, "prod", [TOKEN])))
        : randomBytes(rng, int(rng, 200)),
    );
    assert.ok(counts.both > 1000 && counts.neither > 1000, JSON.stringify(counts));
  });

  it("messages written byte by byte read the same wherever both readers accept them", () => {
    const rng = seededRng(SEED + 3);
    const message = wireWriter(rng);
    const counts = compareOnBytes("written byte by byte", SEED + 3, 20_000, () => {
      const bytes = message();
      if (chance(rng, 0.8) || bytes.length === 0) return bytes;
      const flipped = Buffer.from(bytes);
      flipped[int(rng, flipped.length)] = int(rng, 256);
      return flipped;
    });
    assert.ok(counts.both > 10_000, JSON.stringify(counts));
  });

  const hex: { name: string; bytes: string; expect: "refused" | Partial<CheckView> }[] = [
    {
      // protobufjs reads a 32-bit varint as 5 bytes, then passes over 5 more unread: a 6-byte
      // port_value would hide the next field from it but not from a byte-by-byte skip.
      name: "a 6-byte varint in a 32-bit field is refused",
      bytes:
        "0a3b0a180a160a141207312e322e332e341880808080800012026869221f121d1a1b0a0d617574686f72697a6174696f6e120a42656172657220746f6b",
      expect: "refused",
    },
    {
      name: "an 11-byte varint is refused",
      bytes:
        "0a470a240a220a2018808080808080808080809200121131302e392e382e372e2e2e2e2e2e2e2e2e221f121d1a1b0a0d617574686f72697a6174696f6e120a42656172657220746f6b",
      expect: "refused",
    },
    {
      name: "a second http in one Request replaces the first, path and all",
      bytes: "0a0a2208120422022f611200",
      expect: { route: { host: "", path: "", method: "" } },
    },
  ];
  for (const c of hex) {
    it(c.name, () => {
      const bytes = Buffer.from(c.bytes, "hex");
      if (c.expect === "refused") {
        assert.throws(() => readCheckRequestFields(bytes), WireError);
        return;
      }
      const view = viaWire(bytes);
      assert.deepEqual(view, viaProtoLoader(bytes));
      for (const [k, v] of Object.entries(c.expect))
        assert.deepEqual(view[k as keyof CheckView], v, k);
    });
  }

  it("a length running past its message is refused, not read short", () => {
    const good = encode({ attributes: { request: { http: { path: "/reports" } } } });
    for (let cut = 1; cut < good.length; cut++) {
      assert.throws(() => readCheckRequestFields(good.subarray(0, cut)), WireError, `cut ${cut}`);
    }
    // Group wire types (3, 4) are never sent by Envoy.
    assert.throws(() => readCheckRequestFields(Buffer.from([0x0b, 0x0c])), WireError);
  });
});
