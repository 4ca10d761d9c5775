// The proxy configs in deploy/examples are the README's, word for word, and say what the
// HTTP authorization tests assume (nginx's is run as is by test/integration/nginx-authz.test.ts).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { parseAuthzTarget } from "../../src/http-authz/dialect.ts";

const root = new URL("../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
const readme = read("README.md");

interface Traefik {
  http: {
    middlewares: {
      tokenscope: {
        forwardAuth: {
          address: string;
          trustForwardHeader: boolean;
          authResponseHeaders: string[];
        };
      };
    };
  };
}

interface EnvoyHttp {
  http_filters: {
    typed_config: {
      failure_mode_allow?: boolean;
      http_service?: {
        path_prefix: string;
        authorization_response: { allowed_upstream_headers: { patterns: { prefix?: string }[] } };
      };
    };
  }[];
}

describe("proxy examples", () => {
  for (const path of [
    "deploy/examples/nginx/tokenscope.conf",
    "deploy/examples/traefik/tokenscope.yaml",
    "deploy/examples/envoy/http-ext-authz.yaml",
  ]) {
    it(`the README shows ${path} exactly`, () => {
      assert.ok(readme.includes(read(path)), `README.md lacks the text of ${path}`);
    });
  }

  it("Traefik asks the prod endpoint, trusts no client X-Forwarded-*, strips the token", () => {
    const config = parse(read("deploy/examples/traefik/tokenscope.yaml")) as Traefik;
    const auth = config.http.middlewares.tokenscope.forwardAuth;
    const target = parseAuthzTarget(new URL(auth.address).pathname);
    assert.deepEqual(target, { dialect: "traefik", namespace: "prod" });
    assert.equal(auth.trustForwardHeader, false);
    for (const header of ["token-id", "scope", "owner", "dry-run-deny", "reason"]) {
      assert.ok(
        auth.authResponseHeaders.includes(
          `X-Tokenscope-${header.replace(/(^|-)\w/g, (c) => c.toUpperCase())}`,
        ),
        header,
      );
    }
    assert.ok(auth.authResponseHeaders.includes("Authorization"));
  });

  it("Envoy's HTTP service fails closed on the prod endpoint and copies x-tokenscope-* upstream", () => {
    const config = parse(read("deploy/examples/envoy/http-ext-authz.yaml")) as EnvoyHttp;
    const filter = config.http_filters[0]?.typed_config;
    assert.ok(filter);
    assert.equal(filter.failure_mode_allow, false);
    const service = filter.http_service;
    assert.deepEqual(parseAuthzTarget(`${service?.path_prefix ?? ""}/v1/x`), {
      dialect: "envoy",
      namespace: "prod",
      originalPath: "/v1/x",
    });
    const patterns = service?.authorization_response.allowed_upstream_headers.patterns ?? [];
    assert.deepEqual(patterns, [{ prefix: "x-tokenscope-" }]);
  });
});
