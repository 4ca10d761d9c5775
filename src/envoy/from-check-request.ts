// CheckRequest → what the decision needs. Two readers fill the same RequestFields: the gRPC server
// reads Envoy's bytes directly (check-request-wire.ts), everything else reads an object decoded
// by proto-loader with keepCase (fromCheckRequest). One assembly turns the fields into a
// CheckView, so both readers mean the same thing by every field.
// Envoy sends headers either in `headers` (a map; duplicates joined with ",") or, with
// `encode_raw_headers: true`, in `header_map` (repeated, values in raw_value bytes).
import type { RequestRoute, RequestSource } from "../domain/scope-types.ts";
import type { NamespaceSources } from "../domain/namespace.ts";

export interface CheckView {
  readonly authorization: readonly string[];
  readonly route: RequestRoute;
  readonly source: RequestSource;
  readonly namespaceSources: Omit<NamespaceSources, "serverNamespace">;
  readonly requestId: string | undefined;
}

/** The headers a decision reads (lowercase); no other header is ever decoded. */
export const WANTED_HEADERS = [
  "authorization",
  ":authority",
  "host",
  ":path",
  ":method",
  "x-request-id",
] as const;
export type WantedHeader = (typeof WANTED_HEADERS)[number];

/** The fields of a CheckRequest a decision reads; absent when the request does not carry them. */
export interface RequestFields {
  id?: string;
  method?: string;
  path?: string;
  host?: string;
  /** `headers` map values of the wanted names (a later entry of one key replaces an earlier). */
  headers?: Partial<Record<WantedHeader, string>>;
  /** True when `header_map` has any entry at all: then `headers` is not read. */
  headerMapUsed: boolean;
  /** `header_map` entries of the wanted names, in order; name already lowercased. */
  headerMap?: { name: WantedHeader; value: string }[];
  sourceAddress?: string;
  sourcePrincipal?: string;
  destinationPrincipal?: string;
  contextNamespace?: string;
}

export function isWantedHeader(name: string): name is WantedHeader {
  return (WANTED_HEADERS as readonly string[]).includes(name);
}

/** All values of one wanted header, from header_map when Envoy used it. */
function headerValues(fields: RequestFields, name: WantedHeader): string[] {
  if (fields.headerMapUsed) {
    const out: string[] = [];
    for (const h of fields.headerMap ?? []) if (h.name === name) out.push(h.value);
    return out;
  }
  const v = fields.headers?.[name];
  return v === undefined ? [] : [v];
}

export function checkViewOf(fields: RequestFields): CheckView {
  const host =
    fields.host || headerValues(fields, ":authority")[0] || headerValues(fields, "host")[0];
  return {
    authorization: headerValues(fields, "authorization"),
    route: {
      host: host ?? "",
      path: fields.path || (headerValues(fields, ":path")[0] ?? ""),
      method: fields.method || (headerValues(fields, ":method")[0] ?? ""),
    },
    source: {
      address: fields.sourceAddress,
      principal: fields.sourcePrincipal || undefined,
    },
    namespaceSources: {
      contextExtensionNamespace: fields.contextNamespace,
      destinationPrincipal: fields.destinationPrincipal || undefined,
    },
    requestId: fields.id || headerValues(fields, "x-request-id")[0],
  };
}

interface HeaderValue {
  key?: string;
  value?: string;
  raw_value?: Uint8Array;
}

interface HttpRequest {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: { headers?: HeaderValue[] };
  path?: string;
  host?: string;
}

interface Peer {
  address?: { socket_address?: { address?: string } };
  principal?: string;
}

interface DecodedCheckRequest {
  attributes?: {
    source?: Peer;
    destination?: Peer;
    request?: { http?: HttpRequest };
    context_extensions?: Record<string, string>;
  };
}

function str(x: unknown): string | undefined {
  return typeof x === "string" ? x : undefined;
}

/** A header_map entry's value: raw_value (bytes, as Latin-1) when set, else value. */
export function rawHeaderValue(h: HeaderValue): string {
  if (h.raw_value && h.raw_value.length > 0) return Buffer.from(h.raw_value).toString("latin1");
  return h.value ?? "";
}

function fieldsOf(request: unknown): RequestFields {
  const attrs = (request as DecodedCheckRequest | null | undefined)?.attributes;
  const http = attrs?.request?.http;
  const raw = http?.header_map?.headers;
  const fields: RequestFields = {
    id: str(http?.id),
    method: str(http?.method),
    path: str(http?.path),
    host: str(http?.host),
    headerMapUsed: raw !== undefined && raw.length > 0,
    sourceAddress: str(attrs?.source?.address?.socket_address?.address),
    sourcePrincipal: str(attrs?.source?.principal),
    destinationPrincipal: str(attrs?.destination?.principal),
    contextNamespace: str(attrs?.context_extensions?.namespace),
  };
  if (fields.headerMapUsed) {
    fields.headerMap = [];
    for (const h of raw ?? []) {
      const name = h.key?.toLowerCase();
      if (name !== undefined && isWantedHeader(name))
        fields.headerMap.push({ name, value: rawHeaderValue(h) });
    }
  } else if (http?.headers !== undefined) {
    fields.headers = {};
    for (const name of WANTED_HEADERS) {
      const v = http.headers[name];
      if (typeof v === "string") fields.headers[name] = v;
    }
  }
  return fields;
}

/** A CheckRequest as proto-loader decodes it (keepCase) → the view a decision reads. */
export function fromCheckRequest(request: unknown): CheckView {
  return checkViewOf(fieldsOf(request));
}
