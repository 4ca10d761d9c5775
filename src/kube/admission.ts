// AdmissionReview v1 → the answer for a TokenScope, pure. It judges with validateTokenScope, the
// same code that loads scopes from files and from the cluster, so what admission lets in is
// exactly what the server will enforce; the webhook adds only warnings and the UPDATE rules.
import { isDeepStrictEqual } from "node:util";
import { ALLOW_BROAD_ANNOTATION, SCOPE_KIND, validateTokenScope } from "../domain/scope.ts";
import { formatDuration, parseDuration } from "../domain/duration.ts";
import type { FieldProblem } from "../domain/scope-types.ts";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";
const SCOPE_GROUP = "tokenscope.dev";
/** A maxTTL above this is allowed but warned about: a leaked token stays useful for long. */
const LONG_TTL_MS = 720 * 3_600_000;
const DEFAULT_MAX_TTL = "2160h";
/** The API server shows warnings as single lines; it may cut long ones. */
const MAX_WARNING_CHARS = 200;
const MAX_WARNINGS = 12;

export interface AdmissionOptions {
  /** The installation's cap on tokenPolicy.maxTTL (--max-ttl-cap). */
  readonly maxTTLCapMs: number;
}

interface ReviewRequest {
  readonly uid: string;
  readonly group: string;
  readonly kind: string;
  readonly operation: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly object: unknown;
  readonly oldObject: unknown;
  readonly dryRun: boolean;
  readonly username?: string;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: {
    readonly code: number;
    readonly reason: string;
    readonly message: string;
    readonly details: {
      readonly group: string;
      readonly kind: string;
      readonly name: string;
      readonly causes: { reason: string; field: string; message: string }[];
    };
  };
  readonly warnings?: string[];
}

/** What the webhook logs about one review (never the object itself). */
export interface ReviewSummary {
  readonly uid: string;
  readonly operation: string;
  readonly kind: string;
  readonly namespace: string | null;
  readonly name: string | null;
  readonly dry_run: boolean;
  readonly user: string | null;
  readonly allowed: boolean;
  readonly problems: number;
  readonly warnings: number;
}

export type ReviewOutcome =
  | { readonly ok: false; readonly error: string }
  | {
      readonly ok: true;
      readonly review: {
        apiVersion: string;
        kind: "AdmissionReview";
        response: AdmissionResponse;
      };
      readonly summary: ReviewSummary;
    };

type Json = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function field(obj: Json, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function str(obj: Json, key: string): string | undefined {
  const value = field(obj, key);
  return typeof value === "string" ? value : undefined;
}

/** The request, or what makes the review unusable (answered with HTTP 400). */
export function parseReview(body: unknown): ReviewRequest | { error: string } {
  if (!isObject(body)) return { error: "the body must be a JSON AdmissionReview object" };
  if (field(body, "apiVersion") !== ADMISSION_API_VERSION) {
    return {
      error: `apiVersion must be "${ADMISSION_API_VERSION}" (admissionReviewVersions: [v1])`,
    };
  }
  if (field(body, "kind") !== "AdmissionReview") return { error: 'kind must be "AdmissionReview"' };
  const request = field(body, "request");
  if (!isObject(request)) return { error: "request is missing" };
  const uid = str(request, "uid");
  if (!uid || uid.length > 256) return { error: "request.uid must be a non-empty string" };
  const kind = field(request, "kind");
  if (!isObject(kind) || typeof field(kind, "kind") !== "string") {
    return { error: "request.kind must be a {group, version, kind} object" };
  }
  const operation = str(request, "operation");
  if (!operation) return { error: "request.operation must be a string" };
  const userInfo = field(request, "userInfo");
  return {
    uid,
    group: str(kind, "group") ?? "",
    kind: str(kind, "kind") ?? "",
    operation,
    namespace: str(request, "namespace"),
    name: str(request, "name"),
    object: field(request, "object"),
    oldObject: field(request, "oldObject"),
    dryRun: field(request, "dryRun") === true,
    username: isObject(userInfo) ? str(userInfo, "username") : undefined,
  };
}

function metadataOf(obj: unknown): Json {
  const meta = isObject(obj) ? field(obj, "metadata") : undefined;
  return isObject(meta) ? meta : {};
}

function annotation(obj: unknown, key: string): unknown {
  const annotations = field(metadataOf(obj), "annotations");
  return isObject(annotations) ? field(annotations, key) : undefined;
}

/**
 * The object as validated: namespace and name filled in from the request when the object lacks
 * them (the API server sets both before validating admission, but a review is input).
 */
function withIdentity(obj: unknown, req: ReviewRequest): unknown {
  if (!isObject(obj)) return obj;
  const meta = metadataOf(obj);
  return {
    ...obj,
    metadata: {
      ...meta,
      namespace: field(meta, "namespace") ?? req.namespace,
      name: field(meta, "name") ?? req.name,
    },
  };
}

function clip(text: string): string {
  const line = text.replaceAll(/\s+/g, " ");
  return line.length <= MAX_WARNING_CHARS ? line : `${line.slice(0, MAX_WARNING_CHARS - 1)}…`;
}

/** Risky but allowed: said to the user by kubectl as "Warning: …". */
function riskWarnings(obj: unknown, req: ReviewRequest, opts: AdmissionOptions): string[] {
  const spec = isObject(obj) ? field(obj, "spec") : undefined;
  if (!isObject(spec)) return [];
  const warnings: string[] = [];
  if (field(spec, "mode") === "DryRun") {
    warnings.push(
      "spec.mode: DryRun lets requests this scope would deny through (they are only logged and counted)",
    );
    const old = isObject(req.oldObject) ? field(req.oldObject, "spec") : undefined;
    if (req.operation === "UPDATE" && isObject(old) && field(old, "mode") !== "DryRun") {
      warnings.push("spec.mode changed from Enforce to DryRun: this scope stops denying requests");
    }
  }
  const policy = field(spec, "tokenPolicy");
  const maxTTL = (isObject(policy) ? str(policy, "maxTTL") : undefined) ?? DEFAULT_MAX_TTL;
  const ms = parseDuration(maxTTL);
  // Above the cap it is a problem already, said once.
  if (ms !== undefined && ms > LONG_TTL_MS && ms <= opts.maxTTLCapMs) {
    warnings.push(
      `spec.tokenPolicy.maxTTL: tokens may live ${formatDuration(ms)}; a leaked token stays useful that long (consider ${formatDuration(LONG_TTL_MS)} or less)`,
    );
  }
  return warnings;
}

function denial(req: ReviewRequest, obj: unknown, problems: readonly FieldProblem[]) {
  const meta = metadataOf(obj);
  const name = str(meta, "name") ?? req.name ?? "";
  const namespace = str(meta, "namespace") ?? req.namespace ?? "";
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const lines = problems.map((p) => `${p.field}: ${p.message}`);
  return {
    code: 422,
    reason: "Invalid",
    message: `TokenScope ${namespace}/${name} is invalid (${count}):\n${lines.join("\n")}`,
    details: {
      group: SCOPE_GROUP,
      kind: "tokenscopes",
      name,
      causes: problems.map((p) => ({
        reason: "FieldValueInvalid",
        field: p.field,
        message: p.message,
      })),
    },
  };
}

function specAndBroadUnchanged(req: ReviewRequest): boolean {
  if (req.operation !== "UPDATE" || !isObject(req.object) || !isObject(req.oldObject)) return false;
  return (
    isDeepStrictEqual(field(req.object, "spec"), field(req.oldObject, "spec")) &&
    annotation(req.object, ALLOW_BROAD_ANNOTATION) ===
      annotation(req.oldObject, ALLOW_BROAD_ANNOTATION)
  );
}

function judge(
  req: ReviewRequest,
  opts: AdmissionOptions,
): {
  allowed: boolean;
  status?: AdmissionResponse["status"];
  warnings: string[];
  problems: number;
} {
  const ours = req.group === SCOPE_GROUP && req.kind === SCOPE_KIND;
  if (!ours || (req.operation !== "CREATE" && req.operation !== "UPDATE")) {
    return { allowed: true, warnings: [], problems: 0 };
  }
  if (req.object === undefined || req.object === null) {
    const problems = [{ field: "<root>", message: "request.object is missing" }];
    return { allowed: false, status: denial(req, undefined, problems), warnings: [], problems: 1 };
  }
  // An object on its way out only loses finalizers; refusing that would wedge the deletion.
  if (req.operation === "UPDATE" && field(metadataOf(req.object), "deletionTimestamp")) {
    return { allowed: true, warnings: [], problems: 0 };
  }
  const obj = withIdentity(req.object, req);
  const { problems, warnings } = validateTokenScope(obj, opts);
  const all = [...warnings, ...riskWarnings(obj, req, opts)];
  if (problems.length === 0) return { allowed: true, warnings: all, problems: 0 };
  // A label or annotation edit on a scope that was already invalid (say, the cap was lowered
  // since) is let through: it changes nothing the server enforces, and the scope stays not ready.
  if (specAndBroadUnchanged(req)) {
    const first = problems[0];
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    const note = `spec unchanged but still invalid (${count}; the scope stays not ready): ${first?.field ?? ""}: ${first?.message ?? ""}`;
    return { allowed: true, warnings: [note, ...all], problems: problems.length };
  }
  return {
    allowed: false,
    status: denial(req, obj, problems),
    warnings: all,
    problems: problems.length,
  };
}

/** The AdmissionReview to send back, or a reason to answer HTTP 400. */
export function reviewAdmission(body: unknown, opts: AdmissionOptions): ReviewOutcome {
  const req = parseReview(body);
  if ("error" in req) return { ok: false, error: req.error };
  const verdict = judge(req, opts);
  const warnings = verdict.warnings.slice(0, MAX_WARNINGS).map(clip);
  const meta = metadataOf(req.object ?? req.oldObject);
  const response: AdmissionResponse = {
    uid: req.uid,
    allowed: verdict.allowed,
    ...(verdict.status ? { status: verdict.status } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
  return {
    ok: true,
    review: { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response },
    summary: {
      uid: req.uid,
      operation: req.operation,
      kind: req.kind,
      namespace: str(meta, "namespace") ?? req.namespace ?? null,
      name: str(meta, "name") ?? req.name ?? null,
      // No side effects whatever dryRun says (sideEffects: None); logged for the audit trail.
      dry_run: req.dryRun,
      user: req.username ?? null,
      allowed: verdict.allowed,
      problems: verdict.problems,
      warnings: warnings.length,
    },
  };
}
