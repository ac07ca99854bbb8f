/**
 * Per-neuron target files and teacher files for teacher-student fitting.
 *
 * `snn-sim --teacher --export-targets FILE` writes safetensors (readable with Python's `safetensors` or numpy):
 *   target_rate (N, f32, Hz), target_cv (N, f32; NaN where the neuron never fired 3 spikes in a trial),
 *   target_ratio (N, f32, std(V)/(θ − mean V)), teacher_rec_weight (E, f32), teacher_ff_weight (F, f32);
 *   metadata format = "snn-train targets", network_hash (the connectome's structure hash: cell types and synapses,
 *   so that the same network with other targets or loss weights still matches), epochs, seed.
 * Targets measured elsewhere (recordings) come as CSV: header `neuron,rate[,cv][,ratio]` (columns in any order),
 * one row per neuron 0..N−1. An empty or "nan" CV cell means "no per-neuron CV" (the scalar targets.cvs applies),
 * as a NaN does in the safetensors file.
 * Every problem is a ConfigError naming the parameter, the file and what is wrong.
 */
import { existsSync, readFileSync } from "node:fs";
import { extname } from "node:path";
import { readSafetensorsFile, writeSafetensorsFile } from "../platform/atomic-file.js";
import { ConfigError } from "../model/config.js";
import { Connectome } from "../model/connectome.js";
import { SafetensorsError, Tensor } from "../platform/safetensors.js";

export const TARGETS_FORMAT = "snn-train targets";

/** The quantities a file holds, one value per neuron; absent quantities keep their scalar or per-type targets. */
export interface PerNeuronTargets {
  rate?: Float64Array;
  /** NaN entries: no CV target for that neuron. */
  cv?: Float64Array;
  ratio?: Float64Array;
}

export interface TeacherExport {
  rate: Float64Array;
  cv: Float64Array;
  ratio: Float64Array;
  recWeight: Float32Array;
  ffWeight: Float32Array;
  networkHash: string;
  epochs: number;
  seed: number;
}

type Network = Pick<Connectome, "numNeurons" | "hash" | "rec" | "ff">;

const QUANTITIES = ["rate", "cv", "ratio"] as const;

export function writeTargetsFile(path: string, t: TeacherExport): void {
  const f32 = (data: ArrayLike<number>): Tensor => ({ dtype: "F32", shape: [data.length], data: Float32Array.from(data) });
  writeSafetensorsFile(
    path,
    {
      target_rate: f32(t.rate),
      target_cv: f32(t.cv),
      target_ratio: f32(t.ratio),
      teacher_rec_weight: f32(t.recWeight),
      teacher_ff_weight: f32(t.ffWeight),
    },
    { format: TARGETS_FORMAT, network_hash: t.networkHash, epochs: String(t.epochs), seed: String(t.seed) },
  );
}

/** Per-neuron targets from a .safetensors file written by snn-sim or a .csv file; `key` is the parameter naming it. */
export function readTargetsFile(key: string, path: string, network: Network): PerNeuronTargets {
  const fail = failer(key, path);
  const ext = extname(path).toLowerCase();
  if (ext !== ".csv" && ext !== ".safetensors") fail(`unknown file type "${ext}" (expected .safetensors from snn-sim --export-targets, or .csv)`);
  if (!existsSync(path)) fail("file not found");
  const targets = ext === ".csv" ? readCsv(path, network.numNeurons, fail) : readSafetensorsTargets(path, network, fail);
  for (const q of QUANTITIES) {
    const v = targets[q];
    if (!v) continue;
    for (let j = 0; j < v.length; j++) {
      const x = v[j];
      if (q === "cv" && Number.isNaN(x)) continue;
      if (!Number.isFinite(x) || x < 0) fail(`${q} of neuron ${j} is ${x}; targets must be finite and ≥ 0${q === "cv" ? " (NaN: no CV target)" : ""}`);
    }
  }
  return targets;
}

/** The teacher's weights from a file written by snn-sim --export-targets, checked against this network. */
export function readTeacherWeights(key: string, path: string, network: Network): { recWeight: Float32Array; ffWeight: Float32Array } {
  const fail = failer(key, path);
  if (!existsSync(path)) fail("file not found");
  const { tensors } = openTargetsSafetensors(path, network, fail);
  const weights = (name: string, edges: number) => {
    const w = tensor(tensors, name, edges, fail);
    for (let e = 0; e < w.length; e++) if (!Number.isFinite(w[e])) fail(`${name}[${e}] is ${w[e]}`);
    return w;
  };
  return { recWeight: weights("teacher_rec_weight", network.rec.pre.length), ffWeight: weights("teacher_ff_weight", network.ff.pre.length) };
}

type Fail = (problem: string) => never;

function failer(key: string, path: string): Fail {
  return (problem) => {
    throw new ConfigError(`${key} "${path}": ${problem}`);
  };
}

function openTargetsSafetensors(path: string, network: Network, fail: Fail): ReturnType<typeof readSafetensorsFile> {
  let decoded;
  try {
    decoded = readSafetensorsFile(path);
  } catch (e) {
    // The decoder's message starts with the path, which ours already names.
    fail(e instanceof SafetensorsError ? e.message.slice(e.source.length + 2) : `cannot read (${(e as Error).message})`);
  }
  const { metadata } = decoded;
  if (metadata.format !== TARGETS_FORMAT) fail(`not a targets file written by snn-sim --export-targets (format "${metadata.format ?? ""}")`);
  if (metadata.network_hash !== network.hash)
    fail(
      `exported from a different network (network hash ${String(metadata.network_hash).slice(0, 12)}…, these parameters give ` +
        `${network.hash.slice(0, 12)}…: cell types, assemblies or synapses differ — same seed and connectome parameters needed)`,
    );
  return decoded;
}

function tensor(tensors: Record<string, Tensor>, name: string, length: number, fail: Fail): Float32Array {
  const t = tensors[name];
  if (!t) fail(`tensor "${name}" is missing`);
  if (t.dtype !== "F32") fail(`tensor "${name}" has dtype ${t.dtype}, expected F32`);
  if (t.shape.length !== 1 || t.shape[0] !== length) fail(`tensor "${name}" has shape [${t.shape.join(", ")}], expected [${length}]`);
  return t.data as Float32Array;
}

function readSafetensorsTargets(path: string, network: Network, fail: Fail): PerNeuronTargets {
  const { tensors } = openTargetsSafetensors(path, network, fail);
  const out: PerNeuronTargets = {};
  for (const q of QUANTITIES) {
    const name = `target_${q}`;
    if (tensors[name]) out[q] = Float64Array.from(tensor(tensors, name, network.numNeurons, fail));
  }
  if (!out.rate && !out.cv && !out.ratio) fail("holds none of target_rate, target_cv, target_ratio");
  return out;
}

function readCsv(path: string, numNeurons: number, fail: Fail): PerNeuronTargets {
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  if (lines.length === 0) fail("empty file (expected a header `neuron,rate[,cv][,ratio]` and one row per neuron)");
  const header = lines[0].split(",").map((h) => h.trim().toLowerCase());
  const allowed = ["neuron", ...QUANTITIES];
  header.forEach((h, i) => {
    if (!allowed.includes(h)) fail(`line 1: unknown column "${h}" (columns are neuron, rate, and optionally cv and ratio)`);
    if (header.indexOf(h) !== i) fail(`line 1: column "${h}" appears twice`);
  });
  if (!header.includes("neuron") || !header.includes("rate")) fail("line 1: the header needs the columns neuron and rate (`neuron,rate[,cv][,ratio]`)");
  const rows = lines.length - 1;
  if (rows !== numNeurons) fail(`${rows} rows, but the network has ${numNeurons} neurons (one row per neuron 0..${numNeurons - 1})`);

  const present = QUANTITIES.filter((q) => header.includes(q));
  const out: PerNeuronTargets = {};
  for (const q of present) out[q] = new Float64Array(numNeurons);
  const seenOn = new Int32Array(numNeurons);
  for (let r = 1; r < lines.length; r++) {
    const cells = lines[r].split(",").map((c) => c.trim());
    if (cells.length !== header.length) fail(`line ${r + 1}: ${cells.length} values, expected ${header.length} (${header.join(",")})`);
    const id = cells[header.indexOf("neuron")];
    const j = Number(id);
    if (id === "" || !Number.isInteger(j) || j < 0 || j >= numNeurons) fail(`line ${r + 1}: neuron "${id}" is not an id in 0..${numNeurons - 1}`);
    if (seenOn[j]) fail(`line ${r + 1}: neuron ${j} appears twice (also on line ${seenOn[j]})`);
    seenOn[j] = r + 1;
    for (const q of present) {
      const cell = cells[header.indexOf(q)];
      const noCv = q === "cv" && (cell === "" || cell.toLowerCase() === "nan");
      const x = cell === "" ? NaN : Number(cell);
      if (!noCv && !Number.isFinite(x)) fail(`line ${r + 1}: ${q} "${cell}" is not a finite number`);
      out[q]![j] = x;
    }
  }
  return out;
}
