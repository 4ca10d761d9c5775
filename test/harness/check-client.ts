// The tests' stand-in for Envoy: the same client `tokenscope check` uses, on a loopback port.
import { createCheckClient, type CheckClient } from "../../src/envoy/check-client.ts";

export {
  headerMap,
  type CheckClient,
  type CheckResponse,
  type HeaderOption,
} from "../../src/envoy/check-client.ts";

export function checkClient(port: number): CheckClient {
  return createCheckClient(`127.0.0.1:${port}`);
}
