// `tokenscope check`: sends one CheckRequest exactly as Envoy would and prints the decision.
import * as grpc from "@grpc/grpc-js";
import { UsageError, parseFlags, stringFlag } from "../config.ts";
import { buildCheckRequest } from "../envoy/check-request.ts";
import { authorizationClientConstructor, httpStatusNumber } from "../envoy/protos.ts";

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

interface HeaderOption {
  header?: { key?: string; value?: string };
}

interface CheckResponse {
  status?: { code?: number; message?: string };
  denied_response?: {
    status?: { code?: string | number };
    headers?: HeaderOption[];
    body?: string;
  };
  ok_response?: { headers?: HeaderOption[]; headers_to_remove?: string[] };
}

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

function headersOf(list: HeaderOption[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list ?? []) if (h.header?.key) out[h.header.key] = h.header.value ?? "";
  return out;
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
      upstreamHeaders: headersOf(r.ok_response?.headers),
      removedHeaders: r.ok_response?.headers_to_remove ?? [],
    };
  }
  return {
    decision: "deny",
    grpcStatus: r.status?.code ?? null,
    reason: r.status?.message ?? "",
    httpStatus: httpStatusNumber(r.denied_response?.status?.code) ?? null,
    headers: headersOf(r.denied_response?.headers),
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

type CheckClient = grpc.Client & {
  Check(
    req: object,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res: CheckResponse) => void,
  ): void;
};

function send(addr: string, request: object, timeoutMs: number): Promise<CheckResponse> {
  const Client = authorizationClientConstructor();
  const client = new Client(addr, grpc.credentials.createInsecure()) as unknown as CheckClient;
  return new Promise((resolve, reject) => {
    client.Check(request, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err)
        reject(new UsageError(`check: no answer from ${addr}: ${err.details || err.message}`));
      else resolve(res);
    });
  });
}
