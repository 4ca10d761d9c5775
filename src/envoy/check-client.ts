// A client of envoy.service.auth.v3.Authorization built from Envoy's official protos: what
// `tokenscope check` uses, and the tests' stand-in for Envoy.
import * as grpc from "@grpc/grpc-js";
import { authorizationClientConstructor } from "./protos.ts";

export interface HeaderOption {
  header?: { key?: string; value?: string };
  append_action?: string;
}

/** A CheckResponse as proto-loader decodes it (keepCase, enums as names). */
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

type RawClient = grpc.Client & {
  Check(
    req: object,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res: CheckResponse) => void,
  ): void;
};

export function createCheckClient(addr: string): CheckClient {
  const Client = authorizationClientConstructor();
  const client = new Client(addr, grpc.credentials.createInsecure()) as unknown as RawClient;
  return {
    check: (request, timeoutMs = 2000) =>
      new Promise((resolve, reject) => {
        client.Check(request, { deadline: Date.now() + timeoutMs }, (err, res) => {
          if (err) reject(err);
          else resolve(res);
        });
      }),
    close: () => {
      client.close();
    },
  };
}

export function headerMap(list: HeaderOption[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list ?? []) if (h.header?.key) out[h.header.key] = h.header.value ?? "";
  return out;
}
