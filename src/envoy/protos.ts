// Envoy's official v3 protos, loaded from the envoy-api tree that @grpc/grpc-js-xds ships
// (deps/envoy-api and the trees it imports). Nothing of Envoy's is copied into this repository.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as protoLoader from "@grpc/proto-loader";
import * as grpc from "@grpc/grpc-js";

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");

export const ENVOY_PROTO_DIRS: readonly string[] = [
  join(XDS_DEPS, "envoy-api"),
  join(XDS_DEPS, "xds"),
  join(XDS_DEPS, "googleapis"),
  join(XDS_DEPS, "protoc-gen-validate"),
];

export const EXT_AUTHZ_PROTO = "envoy/service/auth/v3/external_auth.proto";

// keepCase: field names as Envoy documents them (context_extensions, header_map).
// defaults: false so absent fields stay absent and a decoded request allocates little.
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [...ENVOY_PROTO_DIRS],
};

let cached: protoLoader.PackageDefinition | undefined;

export function extAuthzPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(EXT_AUTHZ_PROTO, LOADER_OPTIONS);
  return cached;
}

export function authorizationService(): grpc.ServiceDefinition {
  const def = extAuthzPackageDefinition()["envoy.service.auth.v3.Authorization"];
  if (!def || !("Check" in def))
    throw new Error("envoy.service.auth.v3.Authorization not found in protos");
  return def;
}

/** Authorization/Check as proto-loader defines it: Envoy's own encoding, both ways. */
export function checkMethod() {
  const check = authorizationService().Check;
  if (check === undefined) throw new Error("Authorization/Check missing from Envoy's protos");
  return check;
}

/** A client for the Authorization service (used by `tokenscope check` and the tests). */
export function authorizationClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeClientConstructor(authorizationService(), "envoy.service.auth.v3.Authorization");
}

/** envoy.type.v3.StatusCode is decoded by name ("Forbidden"); its number is the HTTP status. */
export function httpStatusNumber(code: string | number | undefined): number | undefined {
  if (typeof code === "number" || code === undefined) return code;
  const def = extAuthzPackageDefinition()["envoy.type.v3.StatusCode"] as
    { type?: { value?: { name: string; number: number }[] } } | undefined;
  return def?.type?.value?.find((v) => v.name === code)?.number;
}
