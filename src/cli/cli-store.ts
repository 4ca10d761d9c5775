// What every store-touching CLI command does first: read -o, and open the token store and scopes
// with the CLI's defaults (a longer store deadline; diagnostics on stderr, results on stdout).
import { openBackends, type Backends } from "../backends.ts";
import {
  CLI_REDIS_DEADLINE,
  UsageError,
  storeConfig,
  stringFlag,
  type StoreConfig,
  type Values,
} from "../config.ts";
import { createLogger, type Logger } from "../observability/logger.ts";

/** True for `-o json`; refuses any output but json and text. */
export function jsonOutput(values: Values): boolean {
  const output = stringFlag(values, "output");
  if (output !== undefined && output !== "json" && output !== "text") {
    throw new UsageError(`-o: "${output}" is not a supported output (json, text)`);
  }
  return output === "json";
}

export async function openCliStore(
  values: Values,
  env: NodeJS.ProcessEnv,
): Promise<{ config: StoreConfig; logger: Logger; backends: Backends }> {
  const config = storeConfig(values, env, { redisDeadline: CLI_REDIS_DEADLINE });
  const logger = createLogger({ level: config.logLevel === "info" ? "warn" : config.logLevel });
  const backends = await openBackends(config, logger, { waitForStoreMs: 3000 });
  return { config, logger, backends };
}
