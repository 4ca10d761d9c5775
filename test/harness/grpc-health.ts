// A grpc.health.v1 client, as Kubernetes' gRPC probe and Envoy's health checker ask.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const require = createRequire(import.meta.url);
const PROTO = join(
  dirname(require.resolve("grpc-health-check/package.json")),
  "proto/health/v1/health.proto",
);

type HealthClient = grpc.Client & {
  Check(
    req: { service: string },
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res: { status?: string }) => void,
  ): void;
};

/** "SERVING", "NOT_SERVING", … for the whole server (service ""). */
export async function grpcHealth(port: number): Promise<string> {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, enums: String });
  const Client = grpc.makeClientConstructor(
    def["grpc.health.v1.Health"] as grpc.ServiceDefinition,
    "grpc.health.v1.Health",
  );
  const client = new Client(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  ) as unknown as HealthClient;
  try {
    return await new Promise((resolve, reject) => {
      client.Check({ service: "" }, { deadline: Date.now() + 2000 }, (err, res) => {
        if (err) reject(err);
        else resolve(res.status ?? "");
      });
    });
  } finally {
    client.close();
  }
}
