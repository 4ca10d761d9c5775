// The benchmark's floor: a grpc-js server on the same Envoy protos that answers every Check with
// OK and nothing else. Run as its own process: node test/bench/baseline-server.ts PORT
import * as grpc from "@grpc/grpc-js";
import { authorizationService } from "../../src/envoy/protos.ts";

const OK = { status: { code: 0 } };
// The floor is grpc-js at its cheapest: without channelz bookkeeping, as tokenscope runs it.
const server = new grpc.Server({ "grpc.enable_channelz": 0 });
server.addService(authorizationService(), {
  Check(_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
    callback(null, OK);
  },
});
server.bindAsync(
  `127.0.0.1:${process.argv[2] ?? "0"}`,
  grpc.ServerCredentials.createInsecure(),
  (err, port) => {
    if (err) throw err;
    process.stdout.write(`${JSON.stringify({ msg: "baseline serving", grpc_port: port })}\n`);
  },
);
process.once("SIGTERM", () => server.forceShutdown());
