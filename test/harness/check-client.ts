// A gRPC client of envoy.service.auth.v3.Authorization built from Envoy's official protos:
// the stand-in for Envoy in the tests.
import * as grpc from "@grpc/grpc-js";
import { authorizationClientConstructor } from "../../src/envoy/protos.ts";

export interface HeaderOption {
  header?: { key?: string; value?: string };
  append_action?: string;
}

export interface CheckResponse {
  status?: { code?: number; message?: string };
  denied_response?: {
    status?: { code?: string | number };
    headers?: HeaderOption[];
    body?: string;
  };
  ok_response?: { headers?: HeaderOption[]; headers_to_remove?: string[] };
}

export interface CheckClient {
  check(request: object, timeoutMs?: number): Promise<CheckResponse>;
  close(): void;
}

export function checkClient(port: number): CheckClient {
  const Client = authorizationClientConstructor();
  const client = new Client(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Check(
      req: object,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res: CheckResponse) => void,
    ): void;
  };
  return {
    check: (request, timeoutMs = 2000) =>
      new Promise((resolve, reject) => {
        client.Check(request, { deadline: Date.now() + timeoutMs }, (err, res) => {
          if (err) reject(err);
          else resolve(res);
        });
      }),
    close: () => client.close(),
  };
}

export function headerMap(list: HeaderOption[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list ?? []) if (h.header?.key) out[h.header.key] = h.header.value ?? "";
  return out;
}
