// `tokenscope check`: sends one CheckRequest exactly as Envoy would and prints the decision.
import type * as grpc from "@grpc/grpc-js";
import { UsageError, parseFlags, stringFlag } from "../config.ts";
import { buildCheckRequest } from "../envoy/check-request.ts";
import { httpStatusNumber } from "../envoy/protos.ts";
import { createCheckClient, headerMap, type CheckResponse } from "../envoy/check-client.ts";

const CHECK_FLAGS = {
  addr: { type: "string" },
  token: { type: "string" },
  method: { type: "string" },
  path: { type: "string" },
  host: { type: "string" },
  namespace: { type: "string" },
  "source-ip": { type: "string" },
  "source-principal": { type: "string" },
  "destination-principal": { type: "string" },
  timeout: { type: "string" },
  output: { type: "string", short: "o" },
} as const;

export async function runCheck(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseFlags(argv, CHECK_FLAGS, env);
  if (positionals.length > 0)
    throw new UsageError(`check takes no arguments (got "${positionals.join(" ")}")`);
  const addr = stringFlag(values, "addr") ?? "127.0.0.1:9001";
  const request = buildCheckRequest({
    method: stringFlag(values, "method") ?? "GET",
    path: stringFlag(values, "path") ?? "/",
    host: stringFlag(values, "host") ?? "localhost",
    token: stringFlag(values, "token"),
    namespace: stringFlag(values, "namespace"),
    sourceIp: stringFlag(values, "source-ip"),
    sourcePrincipal: stringFlag(values, "source-principal"),
    destinationPrincipal: stringFlag(values, "destination-principal"),
  });
  const response = await send(addr, request, Number(stringFlag(values, "timeout") ?? "2000"));
  const json = stringFlag(values, "output") === "json";
  const allowed = response.status?.code === 0 && response.ok_response !== undefined;
  const result = summary(response, allowed);
  process.stdout.write(json ? JSON.stringify(result, null, 2) + "\n" : render(result));
  return allowed ? 0 : 1;
}

type Summary =
  | {
      decision: "allow";
      grpcStatus: 0;
      upstreamHeaders: Record<string, string>;
      removedHeaders: string[];
    }
  | {
      decision: "deny";
      grpcStatus: number | null;
      reason: string;
      httpStatus: number | null;
      headers: Record<string, string>;
      body: string;
    };

function summary(r: CheckResponse, allowed: boolean): Summary {
  if (allowed) {
    return {
      decision: "allow",
      grpcStatus: 0,
      upstreamHeaders: headerMap(r.ok_response?.headers),
      removedHeaders: r.ok_response?.headers_to_remove ?? [],
    };
  }
  return {
    decision: "deny",
    grpcStatus: r.status?.code ?? null,
    reason: r.status?.message ?? "",
    httpStatus: httpStatusNumber(r.denied_response?.status?.code) ?? null,
    headers: headerMap(r.denied_response?.headers),
    body: r.denied_response?.body ?? "",
  };
}

const indent = (headers: Record<string, string>) =>
  Object.entries(headers).map(([k, v]) => `  ${k}: ${v}`);

function render(s: Summary): string {
  const lines =
    s.decision === "allow"
      ? [
          "ALLOW (gRPC OK)",
          "headers set upstream:",
          ...indent(s.upstreamHeaders),
          `headers removed: ${s.removedHeaders.join(", ")}`,
        ]
      : [
          `DENY ${String(s.httpStatus)} ${s.reason} (gRPC status ${String(s.grpcStatus)})`,
          ...indent(s.headers),
          `  body: ${s.body}`,
        ];
  return lines.join("\n") + "\n";
}

async function send(addr: string, request: object, timeoutMs: number): Promise<CheckResponse> {
  const client = createCheckClient(addr);
  try {
    return await client.check(request, timeoutMs);
  } catch (err) {
    const e = err as grpc.ServiceError;
    throw new UsageError(`check: no answer from ${addr}: ${e.details || e.message}`);
  } finally {
    client.close();
  }
}
