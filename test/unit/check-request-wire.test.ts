// The server reads CheckRequest bytes with its own narrow reader (src/envoy/check-request-wire.ts)
// instead of decoding the whole message with proto-loader. Here both readers see the same bytes,
// encoded with Envoy's official protos: the Envoy and Istio fixtures, random hostile requests,
// requests with repeated fields, and corrupted bytes. Wherever the narrow reader accepts the bytes,
// its view must equal proto-loader's, field for field.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readCheckRequestFields, WireError } from "../../src/envoy/check-request-wire.ts";
import {
  checkViewOf,
  fromCheckRequest,
  type CheckView,
} from "../../src/envoy/from-check-request.ts";
import { authorizationService } from "../../src/envoy/protos.ts";
import { checkRequestFixture } from "../harness/fixtures.ts";
import {
  chance,
  corrupt,
  hostileCheckRequest,
  int,
  randomBytes,
  seededRng,
} from "../fuzz/generators.ts";

const CHECK = (() => {
  const method = authorizationService().Check;
  if (!method) throw new Error("Authorization/Check missing from Envoy's protos");
  return method;
})();
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const TOKEN = "tks_prod_0123456789abcdefghijklmnop_secretsecretsecretsecret_abcdef";

const encode = (request: object): Buffer => CHECK.requestSerialize(request);
const viaProtoLoader = (bytes: Buffer): CheckView =>
  fromCheckRequest(CHECK.requestDeserialize(bytes));
const viaWire = (bytes: Buffer): CheckView => checkViewOf(readCheckRequestFields(bytes));

function tryRead(read: (b: Buffer) => CheckView, bytes: Buffer): CheckView | Error {
  try {
    return read(bytes);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

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

  it("corrupt and random bytes: whatever the narrow reader accepts, it reads as proto-loader", () => {
    const rng = seededRng(SEED + 2);
    const counts = { both: 0, neither: 0, onlyProtoLoader: 0, onlyWire: 0 };
    for (let i = 0; i < 20_000; i++) {
      const bytes = chance(rng, 0.8)
        ? corrupt(rng, encode(hostileCheckRequest(rng, "prod", [TOKEN])))
        : randomBytes(rng, int(rng, 200));
      const wire = tryRead(viaWire, bytes);
      const full = tryRead(viaProtoLoader, bytes);
      if (wire instanceof Error) {
        assert.ok(wire instanceof WireError, `unexpected ${wire.name}: ${wire.message}`);
        counts[full instanceof Error ? "neither" : "onlyProtoLoader"]++;
      } else if (full instanceof Error) {
        counts.onlyWire++;
      } else {
        counts.both++;
        assert.deepEqual(wire, full, `seed ${SEED + 2} case ${i}`);
      }
    }
    process.stdout.write(`# corrupt bytes, seed ${SEED + 2}: ${JSON.stringify(counts)}\n`);
    assert.ok(counts.both > 1000 && counts.neither > 1000, JSON.stringify(counts));
  });

  it("a length running past its message is refused, not read short", () => {
    const good = encode({ attributes: { request: { http: { path: "/reports" } } } });
    for (let cut = 1; cut < good.length; cut++) {
      assert.throws(() => readCheckRequestFields(good.subarray(0, cut)), WireError, `cut ${cut}`);
    }
    // Group wire types (3, 4) are never sent by Envoy.
    assert.throws(() => readCheckRequestFields(Buffer.from([0x0b, 0x0c])), WireError);
  });
});
