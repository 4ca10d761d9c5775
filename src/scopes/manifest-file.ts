// One manifest file as plain objects: multi-document YAML (JSON is YAML too), empty documents
// skipped, a `kind: List` (what `kubectl get -o yaml` prints) expanded into its items.
import { readFile } from "node:fs/promises";
import { parseAllDocuments } from "yaml";

export interface Manifest {
  /** Where it is in the file, for logs when it has no namespace/name: "document 2 item 1". */
  readonly label: string;
  readonly value: unknown;
}

export type ManifestRead =
  { readonly manifests: readonly Manifest[] } | { readonly error: string; readonly line?: number };

/** Bounds YAML alias expansion ("billion laughs") in a manifest someone else may have written. */
const MAX_ALIAS_COUNT = 100;

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** "apiVersion kind" of an object that is plainly not ours (a ConfigMap next to the scopes). */
export function foreignKind(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return undefined;
  if (kind === "TokenScope" || apiVersion.startsWith("tokenscope.dev/")) return undefined;
  return `${apiVersion} ${kind}`;
}

export function parseManifests(text: string): ManifestRead {
  const manifests: Manifest[] = [];
  for (const [i, doc] of [...parseAllDocuments(text)].entries()) {
    const error = doc.errors[0];
    if (error) {
      // The first line says what and where; the rest is a source excerpt, too noisy for a log.
      const message = (error.message.split("\n")[0] ?? "").replace(/:$/, "");
      return { error: message, line: error.linePos?.[0].line };
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      return { error: `document ${i + 1}: ${(err as Error).message}` };
    }
    if (value === null || value === undefined) continue;
    const label = `document ${i + 1}`;
    const items = isRecord(value) && value.kind === "List" ? value.items : undefined;
    if (Array.isArray(items)) {
      items.forEach((item: unknown, j) =>
        manifests.push({ label: `${label} item ${j + 1}`, value: item }),
      );
    } else {
      manifests.push({ label, value });
    }
  }
  return { manifests };
}

export async function readManifestFile(file: string): Promise<ManifestRead> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    return { error: `cannot read: ${(err as Error).message}` };
  }
  return parseManifests(text);
}
