// The TokenScope CRD's openAPIV3Schema as a JSON Schema (draft-07) for ajv, validating the way
// `kubectl apply` (strict field validation) and the API server's structural schema do:
//  - unknown fields are errors (strict field validation), except under metadata;
//  - x-kubernetes-list-type: set refuses duplicates;
//  - OpenAPI 3.0's boolean exclusiveMinimum becomes draft-07's numeric one;
//  - x-kubernetes-validations (CEL) are dropped: no CEL evaluator here. Their intent is tested
//    through the admission webhook, which refuses the same objects.
import { readFileSync } from "node:fs";
import { Ajv } from "ajv";
import type { ValidateFunction } from "ajv";
import { parse } from "yaml";

export const CRD_FILE = new URL(
  "../../deploy/crds/tokenscopes.tokenscope.dev.yaml",
  import.meta.url,
);

type Schema = Record<string, unknown>;

export interface CrdVersion {
  name: string;
  schema: { openAPIV3Schema: Schema };
  subresources?: Record<string, unknown>;
  additionalPrinterColumns?: { name: string; jsonPath: string; type: string }[];
}

export interface Crd {
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; shortNames?: string[]; categories?: string[] };
    versions: CrdVersion[];
  };
}

export function loadCrd(file: URL = CRD_FILE): Crd {
  return parse(readFileSync(file, "utf8")) as Crd;
}

function toJsonSchema(node: Schema, path: string): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith("x-kubernetes-") || key === "format") continue;
    if (key === "properties") {
      const props = value as Record<string, Schema>;
      out.properties = Object.fromEntries(
        Object.entries(props).map(([k, v]) => [k, toJsonSchema(v, `${path}.${k}`)]),
      );
    } else if (key === "items") {
      out.items = toJsonSchema(value as Schema, `${path}[]`);
    } else if (key === "exclusiveMinimum") {
      if (value === true) out.exclusiveMinimum = node.minimum;
    } else if (key === "minimum") {
      if (node.exclusiveMinimum !== true) out.minimum = value;
    } else {
      out[key] = value;
    }
  }
  if (node["x-kubernetes-list-type"] === "set") out.uniqueItems = true;
  if (node.type === "object" && node.properties && path !== ".metadata") {
    out.additionalProperties = false;
  }
  return out;
}

export function crdValidator(crd: Crd = loadCrd()): ValidateFunction {
  const version = crd.spec.versions[0];
  if (!version) throw new Error("the CRD has no version");
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
  return ajv.compile(toJsonSchema(version.schema.openAPIV3Schema, ""));
}

/** Every schema node with its path, for structural checks (descriptions, bounds). */
export function* schemaNodes(node: Schema, path = ""): Generator<[string, Schema]> {
  yield [path, node];
  const props = node.properties as Record<string, Schema> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) yield* schemaNodes(v, `${path}.${k}`);
  if (node.items) yield* schemaNodes(node.items as Schema, `${path}[]`);
}
