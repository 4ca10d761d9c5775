// Summarises a V8 .heapsnapshot (from `npm run bench:memory -- --snapshot DIR`): live bytes by
// node type and constructor, biggest first, and the retained size of the biggest Maps/WeakMaps
// (dominator tree, Cooper–Harvey–Kennedy), so "what holds the memory" has numbers.
// Usage: node test/bench/heap-summary.ts FILE [--top N]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "30" } },
});
const file = positionals[0];
if (file === undefined) throw new Error("usage: heap-summary.ts FILE [--top N]");
const TOP = Number(values.top);

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
    node_count: number;
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
const meta = snap.snapshot.meta;
const NF = meta.node_fields.length;
const EF = meta.edge_fields.length;
const N = snap.nodes.length / NF;
const nType = meta.node_fields.indexOf("type");
const nName = meta.node_fields.indexOf("name");
const nSize = meta.node_fields.indexOf("self_size");
const nEdges = meta.node_fields.indexOf("edge_count");
const eType = meta.edge_fields.indexOf("type");
const eTo = meta.edge_fields.indexOf("to_node");
const eName = meta.edge_fields.indexOf("name_or_index");
const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const WEAK = edgeTypes.indexOf("weak");
const SHORTCUT = edgeTypes.indexOf("shortcut");

const at = (i: number, f: number) => snap.nodes[i * NF + f] ?? 0;
const typeOf = (i: number) => nodeTypes[at(i, nType)] ?? "?";
function labelOf(i: number): string {
  const t = typeOf(i);
  const name = snap.strings[at(i, nName)] ?? "";
  if (t === "object" || t === "closure" || t === "native" || t === "hidden") {
    return `${t}:${name.slice(0, 60)}`;
  }
  return t;
}

// Live bytes by label.
const byLabel = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < N; i++) {
  const size = at(i, nSize);
  total += size;
  const l = labelOf(i);
  const e = byLabel.get(l) ?? { count: 0, bytes: 0 };
  e.count++;
  e.bytes += size;
  byLabel.set(l, e);
}
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(`${file}: ${N} nodes, ${mb(total)} MB self size in all`);
console.log(`\nself size by type/constructor (top ${TOP}):`);
for (const [l, e] of [...byLabel].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, TOP)) {
  console.log(
    `${mb(e.bytes).padStart(8)} MB ${String(e.count).padStart(9)} × ${(e.bytes / e.count).toFixed(0).padStart(6)} B  ${l}`,
  );
}

// Edges as CSR, node-indexed.
const firstEdge = new Uint32Array(N + 1);
for (let i = 0; i < N; i++) firstEdge[i + 1] = (firstEdge[i] ?? 0) + at(i, nEdges);
const E = snap.edges.length / EF;
const target = new Uint32Array(E);
const strong = new Uint8Array(E);
for (let e = 0; e < E; e++) {
  target[e] = (snap.edges[e * EF + eTo] ?? 0) / NF;
  const t = snap.edges[e * EF + eType];
  strong[e] = t === WEAK || t === SHORTCUT ? 0 : 1;
}

// DFS post-order from the root (node 0) over strong edges.
const order = new Int32Array(N).fill(-1);
const post: number[] = [];
{
  const stack: number[] = [0];
  const next = new Uint32Array(N);
  for (let i = 0; i < N; i++) next[i] = firstEdge[i] ?? 0;
  const seen = new Uint8Array(N);
  seen[0] = 1;
  while (stack.length > 0) {
    const v = stack[stack.length - 1] ?? 0;
    let pushed = false;
    while ((next[v] ?? 0) < (firstEdge[v + 1] ?? 0)) {
      const e = next[v] ?? 0;
      next[v] = e + 1;
      if (strong[e] === 0) continue;
      const w = target[e] ?? 0;
      if (seen[w] === 1) continue;
      seen[w] = 1;
      stack.push(w);
      pushed = true;
      break;
    }
    if (!pushed) {
      stack.pop();
      order[v] = post.length;
      post.push(v);
    }
  }
}
// Predecessors over strong edges among reachable nodes.
const predCount = new Uint32Array(N + 1);
for (let v = 0; v < N; v++) {
  if (order[v] === -1) continue;
  for (let e = firstEdge[v] ?? 0; e < (firstEdge[v + 1] ?? 0); e++) {
    const w = target[e] ?? 0;
    if (strong[e] === 1 && order[w] !== -1) predCount[w + 1] = (predCount[w + 1] ?? 0) + 1;
  }
}
for (let i = 0; i < N; i++) predCount[i + 1] = (predCount[i + 1] ?? 0) + (predCount[i] ?? 0);
const preds = new Uint32Array(predCount[N] ?? 0);
{
  const fill = predCount.slice(0, N);
  for (let v = 0; v < N; v++) {
    if (order[v] === -1) continue;
    for (let e = firstEdge[v] ?? 0; e < (firstEdge[v + 1] ?? 0); e++) {
      const w = target[e] ?? 0;
      if (strong[e] !== 1 || order[w] === -1) continue;
      const slot = fill[w] ?? 0;
      preds[slot] = v;
      fill[w] = slot + 1;
    }
  }
}
const idom = new Int32Array(N).fill(-1);
idom[0] = 0;
const intersect = (a: number, b: number) => {
  while (a !== b) {
    while ((order[a] ?? 0) < (order[b] ?? 0)) a = idom[a] ?? 0;
    while ((order[b] ?? 0) < (order[a] ?? 0)) b = idom[b] ?? 0;
  }
  return a;
};
for (let changed = true; changed;) {
  changed = false;
  for (let k = post.length - 2; k >= 0; k--) {
    const v = post[k] ?? 0;
    let d = -1;
    for (let p = predCount[v] ?? 0; p < (predCount[v + 1] ?? 0); p++) {
      const u = preds[p] ?? 0;
      if (idom[u] === -1) continue;
      d = d === -1 ? u : intersect(u, d);
    }
    if (d !== -1 && idom[v] !== d) {
      idom[v] = d;
      changed = true;
    }
  }
}
const retained = new Float64Array(N);
for (const v of post) {
  retained[v] = (retained[v] ?? 0) + at(v, nSize);
  if (v !== 0) retained[idom[v] ?? 0] = (retained[idom[v] ?? 0] ?? 0) + (retained[v] ?? 0);
}
console.log(`\nreachable: ${mb(retained[0] ?? 0)} MB`);
console.log(`\nbiggest retainers (objects retaining >= 1 MB, not nested in a bigger listed one):`);
const big = [];
for (let v = 1; v < N; v++)
  if ((retained[v] ?? 0) >= 2 ** 20 && typeOf(v) !== "synthetic") big.push(v);
big.sort((a, b) => (retained[b] ?? 0) - (retained[a] ?? 0));
const listed = new Set<number>();
for (const v of big) {
  let d = idom[v] ?? 0;
  let nested = false;
  while (d !== 0 && d !== -1) {
    if (listed.has(d)) {
      nested = true;
      break;
    }
    if (d === idom[d]) break;
    d = idom[d] ?? 0;
  }
  if (nested) continue;
  listed.add(v);
  // A name for the holder: the edge name from its dominator, when there is one.
  console.log(`${mb(retained[v] ?? 0).padStart(8)} MB  @${v} ${labelOf(v)}`);
  // What it holds: its edges to the nodes it dominates, biggest first.
  const held: [string, number][] = [];
  for (let e = firstEdge[v] ?? 0; e < (firstEdge[v + 1] ?? 0); e++) {
    const w = target[e] ?? 0;
    if (idom[w] !== v || (retained[w] ?? 0) < 2 ** 18) continue;
    const nameOrIndex = snap.edges[e * EF + eName] ?? 0;
    const edgeType = edgeTypes[snap.edges[e * EF + eType] ?? 0];
    const name =
      edgeType === "element" || edgeType === "hidden"
        ? `[${nameOrIndex}]`
        : snap.strings[nameOrIndex];
    held.push([`${name ?? "?"} → ${labelOf(w)}`, retained[w] ?? 0]);
  }
  for (const [what, bytes] of held.sort((a, b) => b[1] - a[1]).slice(0, 6)) {
    console.log(`${"".padStart(12)}${mb(bytes).padStart(8)} MB  ${what}`);
  }
  if (listed.size >= TOP) break;
}
