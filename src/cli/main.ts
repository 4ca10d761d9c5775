// `tokenscope` entry point: dispatches to a command; turns known errors into one clear line and
// an exit status, never a stack trace.
import { UsageError, serveConfig } from "../config.ts";
import { KeyError } from "../hmac-key.ts";
import { WebhookCertificateError } from "../kube/webhook-server.ts";
import { StoreConflictError, StoreUnavailableError } from "../store/token-store.ts";
import { TokenRequestError } from "../tokens/token-service.ts";
import { runToken } from "./token-commands.ts";
import { AUDIT_USAGE, runAudit } from "./audit-command.ts";
import { serve } from "../main.ts";
import { serveCluster } from "../cluster.ts";
import { createLogger } from "../observability/logger.ts";

export const USAGE = `Usage: tokenscope <command> [flags]

Commands:
  serve                         run the ext_authz gRPC server and the ops HTTP server
  token issue --scope NS/NAME --owner WHO [--ttl 24h] [--label k=v]... [--description TEXT] [-o json]
  token rotate ID [--grace 1h] [-o json]
  token revoke ID [-o json]
  token list [--scope NS/NAME] [--owner WHO] [-o json]
  token inspect ID [-o json]
  token export > FILE           back up every record (hashes and metadata; no secret exists to export)
  token import FILE|-           restore an export: checked whole first, existing records kept
  check --addr HOST:PORT --token T --method GET --path /x --host H --namespace NS [--source-ip IP]
  ${AUDIT_USAGE}

Store flags (serve, token and audit): --redis-url, --data-dir, --hmac-key-file, --environment, --scopes
Every flag can also be set as TOKENSCOPE_<FLAG> (e.g. TOKENSCOPE_GRPC_ADDR).`;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        return await runServe(rest, env);
      case "token":
        return await runToken(rest, env);
      case "check": {
        // Loaded on demand: the client loads Envoy's protos (proto-loader), which `serve` never does.
        const { runCheck } = await import("./check-command.ts");
        return await runCheck(rest, env);
      }
      case "audit":
        return await runAudit(rest, env);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE + "\n");
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof UsageError || err instanceof TokenRequestError) {
    process.stderr.write(
      `tokenscope: ${err.message}\n${err instanceof UsageError ? "Run 'tokenscope help' for usage.\n" : ""}`,
    );
    return 2;
  }
  if (
    err instanceof KeyError ||
    err instanceof StoreConflictError ||
    err instanceof WebhookCertificateError
  ) {
    process.stderr.write(`tokenscope: ${err.message}\n`);
    return 1;
  }
  if (err instanceof StoreUnavailableError) {
    process.stderr.write(`tokenscope: ${err.message}; is the token store reachable?\n`);
    return 1;
  }
  process.stderr.write(`tokenscope: unexpected error: ${(err as Error).message}\n`);
  return 1;
}

async function runServe(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const config = serveConfig(argv, env);
  const logger = createLogger({ level: config.logLevel });
  if (config.workers > 1) return serveCluster(config, logger);
  const server = await serve(config, logger);
  return new Promise((resolve) => {
    const stop = (signal: string, delayMs: number) => {
      logger.log("info", "draining", { signal, delay_ms: delayMs });
      server.stop({ delayMs }).then(
        () => resolve(0),
        (err: unknown) => {
          logger.log("error", "shutdown failed", { err: String(err) });
          resolve(1);
        },
      );
    };
    // SIGTERM is Kubernetes ending the pod: wait out endpoint removal. SIGINT is a person at a
    // terminal: stop now.
    process.once("SIGTERM", () => stop("SIGTERM", config.shutdownDelayMs));
    process.once("SIGINT", () => stop("SIGINT", 0));
  });
}
