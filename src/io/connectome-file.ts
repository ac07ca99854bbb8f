/**
 * Connectomes read from files ([recurrent] connectome_file / neurons_file, [feedforward] connectome_file /
 * inputs_file) and written by `snn-sim --export-connectome DIR`.
 *
 * Edge lists are CSV `pre,post,weight` (the header line optional), one synapse a line; or NumPy files: a dense `.npy`
 * matrix [pre, post] whose non-zero entries are the synapses, or a `.npz` sparse matrix as scipy.sparse.save_npz writes
 * it (coo, csr or csc). Neurons are CSV `neuron,cell_type[,assembly]` (header required, cell types by name from
 * recurrent.names, one row per neuron), inputs `input,input_type` (by name from feedforward.names). Or one container
 * for both keys, safetensors or `.npz` (connectome.safetensors / connectome.npz of the export: integer rec_pre,
 * rec_post, ff_pre, ff_post, cell_type, input_type, assembly_id; float rec_weight, ff_weight), checked the same way,
 * its edges named by index. Edges are sorted into CSR order (pre, post); the file's weights
 * are the initial weights. Weights are written as the shortest decimal that reads back as the same float32, so an
 * exported network loads bit-identically (same structure hash, same weights). The structure hash is computed from
 * the content, so a moved file keeps it and an edited one changes it. Every problem is a ConfigError naming the key,
 * the file, the line and what is wrong.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { extname, join } from "node:path";
import { readSafetensorsFile, writeFileAtomic, writeSafetensorsFile } from "../platform/atomic-file.js";
import { decodeNpy, decodeNpz, encodeNpz, NpyArray, NpyError } from "../platform/numpy.js";
import { SafetensorsError, Tensor } from "../platform/safetensors.js";
import { Config, ConfigError, typeCounts } from "../model/config.js";
import { checkConnectomeStability, Connectome, EdgeList, generateConnectome, generateFeedforward, makeEdgeList, structureHash } from "../model/connectome.js";

type Fail = (problem: string) => never;

export const CONNECTOME_FORMAT = "snn-train connectome";

function failer(key: string, path: string): Fail {
  return (problem) => {
    throw new ConfigError(`${key} "${path}": ${problem}`);
  };
}

function readText(path: string, fail: Fail): string {
  if (!existsSync(path)) fail("file not found");
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    return fail(`cannot read (${(e as Error).message})`);
  }
}

/** The network of `config`: read from its connectome files when they are set, generated otherwise. */
export function loadConnectome(config: Config): Connectome {
  if (!config.recurrent.connectome_file && !config.feedforward.connectome_file) return generateConnectome(config);
  const net = readConnectomeFiles(config);
  const files = [...new Set([config.recurrent.connectome_file, config.feedforward.connectome_file].filter(Boolean))].map((f) => `"${f}"`).join(" and ");
  checkConnectomeStability(config, net, files);
  return net;
}

/** The files a connectome was read from, for messages ("" when generated). */
export function connectomeFilesNote(config: Config): string {
  const r = config.recurrent;
  if (!r.connectome_file && !config.feedforward.connectome_file) return "";
  const files = [r.connectome_file, r.neurons_file, config.feedforward.connectome_file, config.feedforward.inputs_file].filter(Boolean);
  return ` (the connectome is read from ${files.map((f) => `"${f}"`).join(", ")}: has one of them changed?)`;
}

export function readConnectomeFiles(config: Config): Connectome {
  const N = config.recurrent.num_neurons;
  const M = config.feedforward.num_neurons;
  const A = config.recurrent.num_assemblies;
  const size = Math.floor(N / A);
  const recFile = config.recurrent.connectome_file;
  const ffFile = config.feedforward.connectome_file;
  const policy = config.recurrent.duplicate_edges;
  const exact = config.recurrent.topology.generator === "exact";
  const recSource = recFile === undefined ? null : openEdgeSource("recurrent.connectome_file", recFile);
  const ffSource = ffFile === undefined ? null : ffFile === recFile ? recSource : openEdgeSource("feedforward.connectome_file", ffFile);
  // A container holds the whole network: both keys name one (an edge list or a generated part beside it is refused).
  const container = [recSource, ffSource].find((s) => s?.kind === "container");
  if (container) {
    if (recSource?.kind !== "container" || ffSource?.kind !== "container") {
      const other = container === recSource ? ffSource : recSource;
      const where = other ? `${other.key} "${other.path}"` : container === recSource ? "feedforward.connectome_file" : "recurrent.connectome_file";
      throw new ConfigError(`${where}: "${container.path}" holds the whole network; point recurrent.connectome_file and feedforward.connectome_file both at it`);
    }
    return readContainerConnectome(config, recSource, ffSource, N, M, A, size, policy, exact);
  }
  // The recurrent part: from its file with the neurons' types, or generated (with its types and assemblies).
  let recurrent: Pick<Connectome, "cellType" | "assemblyId" | "rec" | "recWeight">;
  if (recSource) {
    if (!config.recurrent.neurons_file) {
      throw new ConfigError(`recurrent.neurons_file: needed with the edge list "${recFile}" (the cell type of every neuron, CSV neuron,cell_type[,assembly])`);
    }
    const types = readTypes("recurrent.neurons_file", config.recurrent.neurons_file, N, config.recurrent.names, "neuron", "cell_type", size);
    const rec = edgesOf(recSource, N, N, true, policy);
    recurrent = { ...types, rec: rec.edges, recWeight: rec.weight };
  } else recurrent = generateConnectome(config);
  // The feedforward part: from its file, or generated onto the recurrent neurons' types.
  let feedforward: Pick<Connectome, "inputType" | "ff" | "ffWeight">;
  if (ffSource) {
    const inputType = config.feedforward.inputs_file
      ? readTypes("feedforward.inputs_file", config.feedforward.inputs_file, M, config.feedforward.names, "input", "input_type", 0).cellType
      : blockTypes(M, config.feedforward.proportion);
    const ff = edgesOf(ffSource, M, N, false, policy);
    feedforward = { inputType, ff: ff.edges, ffWeight: ff.weight };
  } else feedforward = generateFeedforward(config, recurrent.cellType);
  const { cellType, assemblyId, rec, recWeight } = recurrent;
  const { inputType, ff, ffWeight } = feedforward;
  const structure = { numNeurons: N, numInputs: M, cellType, inputType, numAssemblies: A, assemblySize: size, rec, ff };
  return { ...structure, assemblyId, recWeight, ffWeight, hash: structureHash(exact ? { ...structure, assemblyId } : structure) };
}

/** Where one key's edges come from: a CSV, a dense .npy, a scipy.sparse .npz, or a container of the whole network. */
type EdgeSource =
  | { kind: "csv"; key: string; path: string }
  | { kind: "dense"; key: string; path: string; array: NpyArray }
  | { kind: "sparse"; key: string; path: string; arrays: Record<string, NpyArray> }
  | { kind: "container"; key: string; path: string; tensors: Record<string, Tensor> };
type ContainerSource = Extract<EdgeSource, { kind: "container" }>;

function openEdgeSource(key: string, path: string): EdgeSource {
  const fail = failer(key, path);
  const kind = extname(path).toLowerCase();
  if (kind === ".safetensors") return { kind: "container", key, path, tensors: readContainer(key, path) };
  if (kind !== ".npy" && kind !== ".npz") return { kind: "csv", key, path };
  if (!existsSync(path)) fail("file not found");
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    return fail(`cannot read (${(e as Error).message})`);
  }
  try {
    if (kind === ".npy") return { kind: "dense", key, path, array: decodeNpy(bytes) };
    const arrays = decodeNpz(bytes);
    // The export's names make a container of the whole network; anything else is one sparse matrix.
    if (arrays.rec_pre || arrays.ff_pre) return { kind: "container", key, path, tensors: npzTensors(arrays, fail) };
    return { kind: "sparse", key, path, arrays };
  } catch (e) {
    if (e instanceof NpyError) fail(e.message);
    throw e;
  }
}

function edgesOf(source: EdgeSource, numPre: number, numPost: number, recurrent: boolean, policy: "error" | "sum" | "keep-first"): { edges: EdgeList; weight: Float32Array } {
  const fail = failer(source.key, source.path);
  if (source.kind === "csv") return readEdges(source.key, source.path, numPre, numPost, recurrent, policy);
  if (source.kind === "dense") return denseEdges(source.array, numPre, numPost, recurrent, fail);
  if (source.kind === "sparse") return sparseEdges(source.arrays, numPre, numPost, recurrent, policy, fail);
  return fail("is a whole-network container; point recurrent.connectome_file and feedforward.connectome_file at it, or at two edge lists");
}

/** What a pre or post id means in messages. */
const idRange = (recurrent: boolean, numPre: number, numPost: number) => ({
  pre: `${recurrent ? "neuron" : "input"} ids 0..${numPre - 1}`,
  post: `neuron ids 0..${numPost - 1}`,
});

/** The checks every edge of a file passes: ids in range, no self-loop, a finite weight ≥ 0. */
function checkEdge(i: number, j: number, w: number, where: string, numPre: number, numPost: number, recurrent: boolean, fail: Fail): void {
  const ids = idRange(recurrent, numPre, numPost);
  if (!(Number.isInteger(i) && i >= 0 && i < numPre)) fail(`${where}: pre ${i} is out of range (${ids.pre})`);
  if (!(Number.isInteger(j) && j >= 0 && j < numPost)) fail(`${where}: post ${j} is out of range (${ids.post})`);
  if (recurrent && i === j) fail(`${where}: self-loop ${i} → ${j} (recurrent synapses from a neuron to itself are not allowed)`);
  if (!Number.isFinite(w)) fail(`${where}: weight ${w} is not a finite number`);
  if (w < 0) fail(`${where}: weight ${w} is negative (weights are ≥ 0; the cell type gives the sign)`);
}

const matrixShape = (recurrent: boolean) => (recurrent ? "(recurrent.num_neurons, recurrent.num_neurons)" : "(feedforward.num_neurons, recurrent.num_neurons)");

/** A dense .npy matrix W[pre, post]: every non-zero entry is a synapse with that initial weight. */
function denseEdges(a: NpyArray, numPre: number, numPost: number, recurrent: boolean, fail: Fail): { edges: EdgeList; weight: Float32Array } {
  if (a.dtype === "S") fail("holds strings, expected a matrix of weights");
  if (a.shape.length !== 2 || a.shape[0] !== numPre || a.shape[1] !== numPost)
    fail(`shape (${a.shape.join(", ")}), expected (${numPre}, ${numPost}) = ${matrixShape(recurrent)}: row = pre, column = post`);
  let m = 0;
  const d = a.data;
  // First pass: check every entry and count the synapses; second: list them in (pre, post) order.
  for (let x = 0; x < d.length; x++) {
    const w = d[x];
    if (w === 0) continue;
    const i = Math.floor(x / numPost);
    checkEdge(i, x - i * numPost, w, `[${i}, ${x - i * numPost}]`, numPre, numPost, recurrent, fail);
    m++;
  }
  if (m === 0) fail("empty matrix (no non-zero weight)");
  const pre = new Int32Array(m);
  const post = new Int32Array(m);
  const weight = new Float64Array(m);
  let e = 0;
  for (let x = 0; x < d.length; x++) {
    if (d[x] === 0) continue;
    pre[e] = Math.floor(x / numPost);
    post[e] = x - pre[e] * numPost;
    weight[e++] = d[x];
  }
  return sortEdges(pre, post, weight, m, numPre, numPost, "error", (k) => `[${pre[k]}, ${post[k]}]`, fail);
}

/** A scipy.sparse.save_npz matrix [pre, post] (coo, csr or csc): every stored entry is a synapse. */
function sparseEdges(
  arrays: Record<string, NpyArray>,
  numPre: number,
  numPost: number,
  recurrent: boolean,
  policy: "error" | "sum" | "keep-first",
  fail: Fail,
): { edges: EdgeList; weight: Float32Array } {
  const format = arrays.format?.text?.[0];
  if (format === undefined)
    fail(
      "neither the arrays of scipy.sparse.save_npz (format, shape, data, row and col or indices and indptr) nor those of snn-sim --export-connectome (rec_pre, rec_post, rec_weight, ...)",
    );
  const array = (name: string, length?: number): Float64Array | Int32Array | Float32Array => {
    const a = arrays[name];
    if (!a || a.dtype === "S") return fail(`${format} matrix without a numeric "${name}" array`);
    if (a.shape.length !== 1 || (length !== undefined && a.data.length !== length)) fail(`"${name}" has shape (${a.shape.join(", ")}), expected (${length ?? "nnz"},)`);
    return a.data;
  };
  const shape = array("shape", 2);
  if (shape[0] !== numPre || shape[1] !== numPost) fail(`shape (${shape[0]}, ${shape[1]}), expected (${numPre}, ${numPost}) = ${matrixShape(recurrent)}: row = pre, column = post`);
  const data = array("data");
  const m = data.length;
  if (m === 0) fail("empty matrix (no stored entries)");
  const pre = new Int32Array(m);
  const post = new Int32Array(m);
  if (format === "coo") {
    pre.set(array("row", m));
    post.set(array("col", m));
  } else if (format === "csr" || format === "csc") {
    const major = format === "csr" ? numPre : numPost;
    const indptr = array("indptr", major + 1);
    const indices = array("indices", m);
    if (indptr[0] !== 0 || indptr[major] !== m) fail(`"indptr" runs from ${indptr[0]} to ${indptr[major]}, expected 0 to ${m}`);
    for (let r = 0; r < major; r++) {
      if (!(indptr[r + 1] >= indptr[r])) fail(`"indptr" decreases at ${r + 1}`);
      for (let x = indptr[r]; x < indptr[r + 1]; x++) {
        if (format === "csr") [pre[x], post[x]] = [r, indices[x]];
        else [pre[x], post[x]] = [indices[x], r];
      }
    }
  } else fail(`sparse format "${format}" is not supported (coo, csr, csc)`);
  const weight = Float64Array.from(data);
  for (let e = 0; e < m; e++) checkEdge(pre[e], post[e], weight[e], `entry ${e}`, numPre, numPost, recurrent, fail);
  return sortEdges(pre, post, weight, m, numPre, numPost, policy, (e) => `entry ${e}`, fail);
}

/** A .npz container's arrays as tensors: integers as I32 (each must fit), floats as F32. */
function npzTensors(arrays: Record<string, NpyArray>, fail: Fail): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(arrays)) {
    if (a.dtype === "S") continue;
    if (a.dtype === "f4" || a.dtype === "f8") {
      out[name] = { dtype: "F32", shape: a.shape, data: a.data instanceof Float32Array ? a.data : Float32Array.from(a.data) };
      continue;
    }
    if (!(a.data instanceof Int32Array)) {
      const bad = a.data.findIndex((v) => v < -(2 ** 31) || v >= 2 ** 31);
      if (bad >= 0) fail(`array "${name}" element ${bad} = ${a.data[bad]} does not fit an int32`);
    }
    out[name] = { dtype: "I32", shape: a.shape, data: a.data instanceof Int32Array ? a.data : Int32Array.from(a.data) };
  }
  return out;
}

/** `neuron,cell_type[,assembly]` (or `input,input_type`): one row per id 0..n−1, types by name. */
function readTypes(key: string, path: string, n: number, names: string[], idCol: string, typeCol: string, assemblySize: number): { cellType: Int32Array; assemblyId: Int32Array } {
  const fail = failer(key, path);
  const lines = readText(path, fail).split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  if (lines.length === 0) fail(`empty file (expected a header \`${idCol},${typeCol}${assemblySize ? "[,assembly]" : ""}\` and one row per id)`);
  const header = lines[0].split(",").map((h) => h.trim().toLowerCase());
  const expected = assemblySize ? [[idCol, typeCol], [idCol, typeCol, "assembly"]] : [[idCol, typeCol]];
  if (!expected.some((e) => e.join(",") === header.join(",")))
    fail(`line 1: bad header "${lines[0]}" (expected ${expected.map((e) => e.join(",")).join(" or ")})`);
  const rows = lines.length - 1;
  if (rows !== n) fail(`${rows} rows, but the parameters say ${n} (${key.startsWith("recurrent") ? "recurrent" : "feedforward"}.num_neurons; one row per id 0..${n - 1})`);
  const cellType = new Int32Array(n).fill(-1);
  const assemblyId = Int32Array.from({ length: n }, (_, j) => (assemblySize ? Math.floor(j / assemblySize) : 0));
  for (let r = 1; r < lines.length; r++) {
    const cells = lines[r].split(",").map((c) => c.trim());
    if (cells.length !== header.length) fail(`line ${r + 1}: ${cells.length} values, expected ${header.length} (${header.join(",")})`);
    const j = Number(cells[0]);
    if (cells[0] === "" || !Number.isInteger(j) || j < 0 || j >= n) fail(`line ${r + 1}: ${idCol} "${cells[0]}" is not an id in 0..${n - 1}`);
    if (cellType[j] >= 0) fail(`line ${r + 1}: ${idCol} ${j} appears twice`);
    const t = names.indexOf(cells[1]);
    if (t < 0) fail(`line ${r + 1}: ${typeCol} "${cells[1]}" is not a cell type of the parameters (${names.join(", ")})`);
    cellType[j] = t;
    if (cells.length === 3) {
      const a = Number(cells[2]);
      if (!Number.isInteger(a) || a < 0) fail(`line ${r + 1}: assembly "${cells[2]}" is not a non-negative integer`);
      assemblyId[j] = a;
    }
  }
  return { cellType, assemblyId };
}

/** A CSV edge list `pre,post,weight`, validated and sorted by (pre, post). */
export function readEdges(
  key: string,
  path: string,
  numPre: number,
  numPost: number,
  recurrent: boolean,
  duplicates: "error" | "sum" | "keep-first",
): { edges: EdgeList; weight: Float32Array } {
  const fail = failer(key, path);
  const text = readText(path, fail);
  let cap = 1024;
  let pre = new Int32Array(cap);
  let post = new Int32Array(cap);
  let weight = new Float64Array(cap);
  let lineOf = new Int32Array(cap);
  let m = 0;
  let pos = 0;
  let line = 0;
  const L = text.length;
  const preName = recurrent ? "neuron" : "input";
  while (pos < L) {
    let end = text.indexOf("\n", pos);
    if (end < 0) end = L;
    line++;
    let s = text.slice(pos, end);
    pos = end + 1;
    if (s.endsWith("\r")) s = s.slice(0, -1);
    if (s.trim() === "") continue;
    const c1 = s.indexOf(",");
    const c2 = c1 < 0 ? -1 : s.indexOf(",", c1 + 1);
    if (c1 < 0 || c2 < 0 || s.indexOf(",", c2 + 1) >= 0) {
      if (m === 0 && line === 1) fail(`line 1: bad header "${s}" (expected pre,post,weight, or a first edge)`);
      fail(`line ${line}: expected 3 values pre,post,weight, got "${s}"`);
    }
    const a = s.slice(0, c1).trim();
    const b = s.slice(c1 + 1, c2).trim();
    const wText = s.slice(c2 + 1).trim();
    if (line === 1 && !/^[-+0-9]/.test(a)) {
      if (`${a},${b},${wText}`.toLowerCase() !== "pre,post,weight") fail(`line 1: bad header "${s}" (expected pre,post,weight)`);
      continue;
    }
    const i = Number(a);
    const j = Number(b);
    const w = Number(wText);
    if (a === "" || !Number.isInteger(i) || i < 0 || i >= numPre) fail(`line ${line}: pre "${a}" is out of range (${preName} ids 0..${numPre - 1})`);
    if (b === "" || !Number.isInteger(j) || j < 0 || j >= numPost) fail(`line ${line}: post "${b}" is out of range (neuron ids 0..${numPost - 1})`);
    if (recurrent && i === j) fail(`line ${line}: self-loop ${i} → ${j} (recurrent synapses from a neuron to itself are not allowed)`);
    if (wText === "" || !Number.isFinite(w)) fail(`line ${line}: weight "${wText}" is not a finite number`);
    if (w < 0) fail(`line ${line}: weight ${wText} is negative (weights are ≥ 0; the cell type gives the sign)`);
    if (m === cap) {
      cap *= 2;
      const grow = <T extends Int32Array | Float64Array>(x: T, y: T): T => {
        y.set(x);
        return y;
      };
      pre = grow(pre, new Int32Array(cap));
      post = grow(post, new Int32Array(cap));
      weight = grow(weight, new Float64Array(cap));
      lineOf = grow(lineOf, new Int32Array(cap));
    }
    pre[m] = i;
    post[m] = j;
    weight[m] = w;
    lineOf[m] = line;
    m++;
  }
  if (m === 0) fail("empty file (no edges; expected lines pre,post,weight)");
  return sortEdges(pre, post, weight, m, numPre, numPost, duplicates, (e) => `line ${lineOf[e]}`, fail);
}

/** Edges in any order → CSR order (pre, post); duplicates by `duplicates`; `where(e)` names edge e for messages. */
function sortEdges(
  pre: Int32Array,
  post: Int32Array,
  weight: Float64Array,
  m: number,
  numPre: number,
  numPost: number,
  duplicates: "error" | "sum" | "keep-first",
  where: (e: number) => string,
  fail: Fail,
): { edges: EdgeList; weight: Float32Array } {
  // Bucket by pre (stable: file order within a row), then sort each row by (post, file order).
  const rowPtr = new Int32Array(numPre + 1);
  for (let e = 0; e < m; e++) rowPtr[pre[e] + 1]++;
  for (let r = 0; r < numPre; r++) rowPtr[r + 1] += rowPtr[r];
  const fill = rowPtr.slice(0, numPre);
  const order = new Int32Array(m);
  for (let e = 0; e < m; e++) order[fill[pre[e]]++] = e;
  let keys = new Float64Array(0);
  for (let r = 0; r < numPre; r++) {
    const lo = rowPtr[r];
    const n = rowPtr[r + 1] - lo;
    if (n < 2) continue;
    if (keys.length < n) keys = new Float64Array(Math.max(n, 2 * keys.length));
    const k = keys.subarray(0, n);
    for (let x = 0; x < n; x++) {
      const e = order[lo + x];
      k[x] = post[e] * m + e;
    }
    k.sort();
    for (let x = 0; x < n; x++) order[lo + x] = k[x] % m;
  }
  const outPre = new Int32Array(m);
  const outPost = new Int32Array(m);
  const outW = new Float32Array(m);
  let u = 0;
  let acc = 0;
  for (let x = 0; x < m; x++) {
    const e = order[x];
    if (u > 0 && outPre[u - 1] === pre[e] && outPost[u - 1] === post[e]) {
      if (duplicates === "error")
        fail(
          `${where(e)}: duplicate edge ${pre[e]} → ${post[e]} (first at ${where(order[x - 1])}); set recurrent.duplicate_edges = "sum" or "keep-first" to accept duplicates`,
        );
      if (duplicates === "sum") {
        acc += weight[e];
        outW[u - 1] = Math.fround(acc);
      }
      continue;
    }
    outPre[u] = pre[e];
    outPost[u] = post[e];
    acc = weight[e];
    outW[u] = Math.fround(acc);
    u++;
  }
  const finalPre = u === m ? outPre : outPre.slice(0, u);
  const finalPost = u === m ? outPost : outPost.slice(0, u);
  return { edges: makeEdgeList(numPre, numPost, finalPre, finalPost), weight: u === m ? outW : outW.slice(0, u) };
}

function readContainer(key: string, path: string): Record<string, Tensor> {
  const fail = failer(key, path);
  if (!existsSync(path)) fail("file not found");
  try {
    return readSafetensorsFile(path).tensors;
  } catch (e) {
    return fail(e instanceof SafetensorsError ? e.message.slice(e.source.length + 2) : `cannot read (${(e as Error).message})`);
  }
}

function tensorOf(tensors: Record<string, Tensor>, name: string, dtype: "I32" | "F32", length: number | null, fail: Fail): Int32Array | Float32Array {
  const t = tensors[name];
  if (!t) fail(`tensor "${name}" is missing`);
  if (t.dtype !== dtype) fail(`tensor "${name}" has dtype ${t.dtype}, expected ${dtype}`);
  if (t.shape.length !== 1 || (length !== null && t.shape[0] !== length))
    fail(`tensor "${name}" has shape [${t.shape.join(", ")}], expected [${length ?? "E"}]${length !== null && name !== "input_type" ? " (recurrent.num_neurons)" : ""}`);
  return t.data as Int32Array | Float32Array;
}

/** One container (connectome.safetensors or connectome.npz of snn-sim --export-connectome) for both keys, or one per key. */
function readContainerConnectome(
  config: Config,
  recSource: ContainerSource,
  ffSource: ContainerSource,
  N: number,
  M: number,
  A: number,
  size: number,
  policy: "error" | "sum" | "keep-first",
  exact: boolean,
): Connectome {
  const recT = recSource.tensors;
  const ffT = ffSource.tensors;
  const recFail = failer(recSource.key, recSource.path);
  const ffFail = failer(ffSource.key, ffSource.path);
  let cellType: Int32Array;
  let assemblyId: Int32Array;
  if (config.recurrent.neurons_file) ({ cellType, assemblyId } = readTypes("recurrent.neurons_file", config.recurrent.neurons_file, N, config.recurrent.names, "neuron", "cell_type", size));
  else {
    cellType = Int32Array.from(tensorOf(recT, "cell_type", "I32", N, recFail));
    const K = config.recurrent.names.length;
    cellType.forEach((t, j) => {
      if (t < 0 || t >= K) recFail(`cell_type[${j}] = ${t} is not a cell type of the parameters (0..${K - 1}: ${config.recurrent.names.join(", ")})`);
    });
    assemblyId = recT.assembly_id ? Int32Array.from(tensorOf(recT, "assembly_id", "I32", N, recFail)) : Int32Array.from({ length: N }, (_, j) => Math.floor(j / size));
  }
  let inputType: Int32Array;
  if (config.feedforward.inputs_file) inputType = readTypes("feedforward.inputs_file", config.feedforward.inputs_file, M, config.feedforward.names, "input", "input_type", 0).cellType;
  else if (ffT.input_type) {
    inputType = Int32Array.from(tensorOf(ffT, "input_type", "I32", M, ffFail));
    const K = config.feedforward.names.length;
    inputType.forEach((t, i) => {
      if (t < 0 || t >= K) ffFail(`input_type[${i}] = ${t} is not an input type of the parameters (0..${K - 1}: ${config.feedforward.names.join(", ")})`);
    });
  } else inputType = blockTypes(M, config.feedforward.proportion);
  const edges = (t: Record<string, Tensor>, prefix: string, numPre: number, recurrent: boolean, fail: Fail) => {
    const pre = tensorOf(t, `${prefix}_pre`, "I32", null, fail) as Int32Array;
    const m = pre.length;
    const post = tensorOf(t, `${prefix}_post`, "I32", m, fail) as Int32Array;
    const w = tensorOf(t, `${prefix}_weight`, "F32", m, fail);
    if (m === 0) fail(`empty file (tensor "${prefix}_pre" has no edges)`);
    for (let e = 0; e < m; e++) checkEdge(pre[e], post[e], w[e], `edge ${e}`, numPre, N, recurrent, fail);
    return sortEdges(pre, post, Float64Array.from(w), m, numPre, N, policy, (e) => `edge ${e}`, fail);
  };
  const rec = edges(recT, "rec", N, true, recFail);
  const ff = edges(ffT, "ff", M, false, ffFail);
  const structure = { numNeurons: N, numInputs: M, cellType, inputType, numAssemblies: A, assemblySize: size, rec: rec.edges, ff: ff.edges };
  return { ...structure, assemblyId, recWeight: rec.weight, ffWeight: ff.weight, hash: structureHash(exact ? { ...structure, assemblyId } : structure) };
}

/** Inputs typed in contiguous blocks, round(M·p) of each type in the order of the names. */
function blockTypes(M: number, proportion: number[]): Int32Array {
  const types = new Int32Array(M);
  let k = 0;
  typeCounts(M, proportion).forEach((c, t) => {
    types.fill(t, k, k + c);
    k += c;
  });
  return types;
}

/** The shortest decimal that reads back as the float32 `x`. */
export function float32Text(x: number): string {
  for (let p = 1; p < 10; p++) {
    const t = x.toPrecision(p);
    if (Math.fround(Number(t)) === x) return String(Number(t));
  }
  return String(x);
}

/**
 * recurrent.csv, feedforward.csv, neurons.csv, inputs.csv, and connectome.safetensors and connectome.npz (each all in
 * one) in `dir`: the keys pointed at them load this network.
 */
export function writeConnectomeFiles(dir: string, c: Connectome, config: Config): string[] {
  mkdirSync(dir, { recursive: true });
  const edges = (list: EdgeList, w: Float32Array): string => {
    const parts = ["pre,post,weight\n"];
    for (let e = 0; e < w.length; e++) parts.push(`${list.pre[e]},${list.post[e]},${float32Text(w[e])}\n`);
    return parts.join("");
  };
  const neurons = ["neuron,cell_type,assembly\n"];
  for (let j = 0; j < c.numNeurons; j++) neurons.push(`${j},${config.recurrent.names[c.cellType[j]]},${c.assemblyId[j]}\n`);
  const inputs = ["input,input_type\n"];
  for (let i = 0; i < c.numInputs; i++) inputs.push(`${i},${config.feedforward.names[c.inputType[i]]}\n`);
  const files: [string, string][] = [
    ["recurrent.csv", edges(c.rec, c.recWeight)],
    ["feedforward.csv", edges(c.ff, c.ffWeight)],
    ["neurons.csv", neurons.join("")],
    ["inputs.csv", inputs.join("")],
  ];
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  const arrays = {
    rec_pre: c.rec.pre,
    rec_post: c.rec.post,
    rec_weight: c.recWeight,
    ff_pre: c.ff.pre,
    ff_post: c.ff.post,
    ff_weight: c.ffWeight,
    cell_type: c.cellType,
    input_type: c.inputType,
    assembly_id: c.assemblyId,
  };
  const tensors = Object.fromEntries(
    Object.entries(arrays).map(([name, a]): [string, Tensor] => [name, { dtype: a instanceof Int32Array ? "I32" : "F32", shape: [a.length], data: a }]),
  );
  const container = join(dir, "connectome.safetensors");
  writeSafetensorsFile(container, tensors, {
    format: CONNECTOME_FORMAT,
    network_hash: c.hash,
    cell_types: config.recurrent.names.join(","),
    input_types: config.feedforward.names.join(","),
  });
  const npz = join(dir, "connectome.npz");
  writeFileAtomic(npz, encodeNpz(arrays));
  return [...files.map(([name]) => join(dir, name)), container, npz];
}
