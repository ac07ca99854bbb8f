/**
 * Checkpoints (DESIGN.md "Files a run writes", MODEL.md 5.4): everything the coordinator owns, as safetensors so
 * that Python reads it with `safetensors` or numpy. Written atomically with a whole-file checksum; read back with
 * every mismatch reported as one clear CheckpointError naming the file.
 *
 * Format versions:
 *  1. every tensor plain; stream_v and stream_g as F32.
 *  2. stream_v and stream_g stored as U8 tensors "<name>.shuffle4_deflate" (see platform/shuffle-deflate.ts), with
 *     their codec, logical dtype and shape in the `encoded_tensors` metadata entry; stream_g slot-major,
 *     A×2×S×B×N. They are half the file and compress to ~70% (the conductances hold many exact zeros), which keeps
 *     a default-size checkpoint under 20 MB; weights and Adam moments stay plain F32 so that any safetensors reader
 *     gets them directly.
 * Both are read; version 2 is written. Runs with parameterisation = "log" also store what Adam optimises, θ = ln w, as
 * rec_log_weight / ff_log_weight (the weights are stored as always); `parameterisation` in the metadata says which
 * (absent = "linear", as every earlier checkpoint). Runs that train scaling factors (optimise = "scaling_factors*",
 * metadata `optimise`; absent = "weights") store the fixed base weights W as rec_base_weight / ff_base_weight, the
 * factors S as rec_scaling_factor [K, K] / ff_scaling_factor [K_in, K], θ = ln S as rec_log_scaling_factor /
 * ff_log_scaling_factor, and Adam's moments of θ under the usual adam_* names; rec_weight / ff_weight hold W·S.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { readSafetensorsFile, writeFileAtomic } from "../platform/atomic-file.js";
import { LossTerms, LOSS_TERM_NAMES } from "../model/losses.js";
import { encodeSafetensors, SafetensorsError, Tensor } from "../platform/safetensors.js";
import { CodecError, decodeShuffleDeflate, encodeShuffleDeflate, SHUFFLE4_DEFLATE } from "../platform/shuffle-deflate.js";
import { StreamState } from "../engine/engine.js";
import { AdamState, expWeights, logWeights as logWeightsOf, newAdamState, Parameterisation } from "../model/optimizer.js";
import { allFactors, effectiveWeights, Optimise, OPTIMISE_MODES, ScalingFactors } from "../model/scaling-factors.js";

export const CHECKPOINT_FORMAT_VERSION = "2";
const READABLE_FORMAT_VERSIONS = ["1", "2"];

/** Metadata key of the description of tensors stored encoded (format version 2). */
export const ENCODED_TENSORS_KEY = "encoded_tensors";

/** One entry of the `encoded_tensors` metadata (a JSON object keyed by logical tensor name). */
export interface EncodedTensorEntry {
  stored_as: string;
  codec: typeof SHUFFLE4_DEFLATE;
  dtype: "F32";
  shape: number[];
}

export class CheckpointError extends Error {}

/** Everything needed to continue a run exactly. */
export interface TrainingState {
  /** Epochs completed (the next epoch index). */
  epoch: number;
  recWeight: Float32Array;
  ffWeight: Float32Array;
  /** θ = ln w, what Adam optimises under parameterisation = "log" (the weights are then e^θ); null under "linear". */
  logWeights: { rec: Float32Array; ff: Float32Array } | null;
  /** Adam's state of what is optimised: the weights (or θ = ln w), or θ = ln S of the scaling factors. */
  adam: AdamState;
  /** Under optimise = "scaling_factors*" (else null): recWeight and ffWeight are then W·S. */
  factors: FactorState | null;
  /** Carried neuron state of each stream; null while a stream has not started (rest). */
  streams: (StreamState | null)[];
  bestLoss: number;
  losses: LossTerms | null;
  /** W&B run id, so that a resumed run appends to the same run. */
  wandbRunId: string;
  counters: TrainingCounters;
}

/** What scaling-factor training holds: the fixed weights W, the factors S = e^θ, θ = ln S (what Adam optimises). */
export interface FactorState {
  base: { rec: Float32Array; ff: Float32Array };
  value: ScalingFactors;
  log: ScalingFactors;
  /** Rows (pre types) of each part's factor matrix: K recurrent and K_in input types; columns are the K cell types. */
  recTypes: number;
  inputTypes: number;
}

/** Bookkeeping of the stopping rules, carried through checkpoints so that a resumed run stops where it would have. */
export interface TrainingCounters {
  /** Updates skipped for a non-finite loss, gradient or weight, over the whole run. */
  skippedUpdates: number;
  /** Consecutive skipped updates up to now. */
  skippedInARow: number;
  /** Updates since the total loss last reached a new best (early stopping). */
  updatesSinceBest: number;
}

export function newCounters(): TrainingCounters {
  return { skippedUpdates: 0, skippedInARow: 0, updatesSinceBest: 0 };
}

export interface CheckpointIdentity {
  networkHash: string;
  trainingHash: string;
  seed: number;
  numNeurons: number;
  numSlots: number;
  batchSize: number;
  parameterisation: Parameterisation;
  optimise: Optimise;
  /** Odour patterns of the network's input process (0 without odours): the size of each stream's mixture state. */
  odourPatterns: number;
  /** Appended to a network mismatch: the connectome files, where the network is read from files. */
  networkNote?: string;
}

/** How a fresh run trains its scaling factors: the initial factors and each edge's type pair (scaling-factors.ts). */
export interface FactorTraining {
  initial: ScalingFactors;
  pairs: { rec: Int32Array; ff: Int32Array };
  recTypes: number;
  inputTypes: number;
}

/**
 * A fresh run's state: the given initial weights (and their logarithms under parameterisation = "log"), rest streams;
 * with `factors`, the weights are the fixed W and Adam optimises θ = ln S instead.
 */
export function initialTrainingState(
  weights: { recWeight: Float32Array; ffWeight: Float32Array },
  streams: number,
  parameterisation: Parameterisation,
  wandbRunId: string,
  factors: FactorTraining | null = null,
): TrainingState {
  const logWeights = !factors && parameterisation === "log" ? { rec: logWeightsOf(weights.recWeight), ff: logWeightsOf(weights.ffWeight) } : null;
  let factorState: FactorState | null = null;
  if (factors) {
    const log = { rec: logWeightsOf(factors.initial.rec), ff: logWeightsOf(factors.initial.ff) };
    // S = e^θ from the start, as every later step makes it.
    factorState = { base: { rec: weights.recWeight, ff: weights.ffWeight }, value: { rec: expWeights(log.rec), ff: expWeights(log.ff) }, log, recTypes: factors.recTypes, inputTypes: factors.inputTypes };
  }
  return {
    epoch: 0,
    // Under "log" the weights are e^θ from the start, as every later step makes them.
    recWeight: factorState ? effectiveWeights(weights.recWeight, allFactors(factorState.value), factors!.pairs.rec) : logWeights ? expWeights(logWeights.rec) : weights.recWeight,
    ffWeight: factorState ? effectiveWeights(weights.ffWeight, allFactors(factorState.value), factors!.pairs.ff) : logWeights ? expWeights(logWeights.ff) : weights.ffWeight,
    logWeights,
    adam: newAdamState(factorState ? [factorState.value.rec.length, factorState.value.ff.length] : [weights.recWeight.length, weights.ffWeight.length]),
    factors: factorState,
    streams: Array.from({ length: streams }, () => null),
    bestLoss: Infinity,
    losses: null,
    wandbRunId,
    counters: newCounters(),
  };
}

export function checkpointPaths(outputDir: string): { dir: string; latest: string; best: string } {
  const dir = join(outputDir, "checkpoints");
  return { dir, latest: join(dir, "checkpoint_latest.safetensors"), best: join(dir, "checkpoint_best.safetensors") };
}

const f32 = (data: Float32Array, shape: number[] = [data.length]): Tensor => ({ dtype: "F32", shape, data });

const encodedName = (name: string) => `${name}.${SHUFFLE4_DEFLATE}`;

export function writeCheckpoint(path: string, s: TrainingState, id: CheckpointIdentity): void {
  writeFileAtomic(path, encodeCheckpoint(s, id));
}

/** The bytes of a checkpoint file (safetensors with its checksum), for writing to one or more paths. */
export function encodeCheckpoint(s: TrainingState, id: CheckpointIdentity): Buffer {
  const A = s.streams.length;
  const { numNeurons: N, numSlots: S, batchSize: B } = id;
  const streamV = new Float32Array(A * B * N);
  const streamG = new Float32Array(A * B * N * 2 * S);
  const started = new Uint8Array(A);
  // The odour mixture's state per stream (stream_ou, A × P, F64), with odour inputs only.
  const P = id.odourPatterns;
  const streamOu = new Float64Array(A * P);
  s.streams.forEach((st, k) => {
    if (!st) return;
    started[k] = 1;
    streamV.set(st.v, k * B * N);
    streamG.set(st.g, k * B * N * 2 * S);
    if (P > 0) streamOu.set(st.ou!, k * P);
  });
  const encoded: Record<string, EncodedTensorEntry> = {};
  const encode = (name: string, data: Float32Array, shape: number[]): [string, Tensor] => {
    const bytes = encodeShuffleDeflate(data);
    encoded[name] = { stored_as: encodedName(name), codec: SHUFFLE4_DEFLATE, dtype: "F32", shape };
    return [encodedName(name), { dtype: "U8", shape: [bytes.length], data: bytes }];
  };
  const tensors = Object.fromEntries<Tensor>([
    ["rec_weight", f32(s.recWeight)],
    ["ff_weight", f32(s.ffWeight)],
    ["adam_m_rec", f32(s.adam.m[0])],
    ["adam_v_rec", f32(s.adam.v[0])],
    ["adam_m_ff", f32(s.adam.m[1])],
    ["adam_v_ff", f32(s.adam.v[1])],
    ...(s.logWeights ? [["rec_log_weight", f32(s.logWeights.rec)] as [string, Tensor], ["ff_log_weight", f32(s.logWeights.ff)] as [string, Tensor]] : []),
    ...(s.factors ? factorTensors(s.factors) : []),
    encode("stream_v", streamV, [A, B, N]),
    encode("stream_g", streamG, [A, 2, S, B, N]),
    ["stream_started", { dtype: "U8", shape: [A], data: started }],
    ...(P > 0 ? [["stream_ou", { dtype: "F64", shape: [A, P], data: streamOu }] as [string, Tensor]] : []),
  ]);
  const metadata: Record<string, string> = {
    format: "snn-train checkpoint",
    format_version: CHECKPOINT_FORMAT_VERSION,
    epoch: String(s.epoch),
    step: String(s.adam.step),
    best_loss: JSON.stringify(numberToJson(s.bestLoss)),
    losses: JSON.stringify(s.losses ? Object.fromEntries(LOSS_TERM_NAMES.map((k) => [k, numberToJson(s.losses![k])])) : null),
    network_hash: id.networkHash,
    training_hash: id.trainingHash,
    rng: JSON.stringify({ generator: "xoshiro128** keyed by (seed, purpose, epoch, trial)", seed: id.seed, next_epoch: s.epoch }),
    wandb_run_id: s.wandbRunId,
    parameterisation: s.logWeights ? "log" : "linear",
    ...(s.factors ? { optimise: id.optimise } : {}),
    counters: JSON.stringify(s.counters),
    [ENCODED_TENSORS_KEY]: JSON.stringify(encoded),
    created: new Date().toISOString(),
  };
  return encodeSafetensors(tensors, metadata);
}

function factorTensors(f: FactorState): [string, Tensor][] {
  const K = f.value.rec.length / f.recTypes;
  const matrix = (data: Float32Array, rows: number) => f32(data, [rows, K]);
  return [
    ["rec_base_weight", f32(f.base.rec)],
    ["ff_base_weight", f32(f.base.ff)],
    ["rec_scaling_factor", matrix(f.value.rec, f.recTypes)],
    ["ff_scaling_factor", matrix(f.value.ff, f.inputTypes)],
    ["rec_log_scaling_factor", matrix(f.log.rec, f.recTypes)],
    ["ff_log_scaling_factor", matrix(f.log.ff, f.inputTypes)],
  ];
}

/** Format 1's element-major g[e·C + c] (e = b·N + j, C = 2·S) into the canonical slot-major out[c·E + e]. */
function slotMajor(g: Float32Array, E: number, C: number): Float32Array {
  const out = new Float32Array(E * C);
  for (let e = 0; e < E; e++) for (let c = 0; c < C; c++) out[c * E + e] = g[e * C + c];
  return out;
}

/** JSON has no NaN/Infinity: write them as strings, as W&B does. */
function numberToJson(x: number): number | string {
  return Number.isFinite(x) ? x : String(x);
}

function jsonToNumber(x: unknown): number {
  return typeof x === "number" ? x : Number(x);
}

export interface CheckpointInfo {
  state: TrainingState;
  metadata: Record<string, string>;
  /** Size of the file on disk. */
  fileBytes: number;
  /** Tensor bytes as stored in the file (encoded tensors at their compressed size). */
  storedTensorBytes: number;
  /** The stream states (stream_v + stream_g): as stored, and decoded to F32. */
  streamStateBytes: { stored: number; decoded: number; codec: string };
}

/** Reads and checks a checkpoint against the current network; any problem is a CheckpointError naming the file. */
export function readCheckpoint(path: string, id: CheckpointIdentity | null, accumulationInterval: number | null): CheckpointInfo {
  if (!existsSync(path)) throw new CheckpointError(`${path}: checkpoint not found`);
  // A FIFO would block the read for ever and a device like /dev/zero never ends: only regular files are read.
  if (!statSync(path).isFile()) throw new CheckpointError(`${path}: not a regular file`);
  let decoded;
  try {
    decoded = readSafetensorsFile(path, { requireChecksum: true });
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(`corrupt checkpoint ${e.message}`);
    throw new CheckpointError(`${path}: cannot read checkpoint (${(e as Error).message})`);
  }
  const { tensors, metadata } = decoded;
  const fail = (what: string): never => {
    throw new CheckpointError(`${path}: ${what}`);
  };
  if (metadata.format !== "snn-train checkpoint") fail("not an snn-train checkpoint");
  if (!READABLE_FORMAT_VERSIONS.includes(metadata.format_version))
    fail(`checkpoint format version ${metadata.format_version} is not supported (this build reads versions ${READABLE_FORMAT_VERSIONS.join(" and ")})`);
  const parameterisation = metadata.parameterisation ?? "linear";
  if (parameterisation !== "linear" && parameterisation !== "log") fail(`unknown parameterisation ${JSON.stringify(parameterisation)}`);
  const optimise = (metadata.optimise ?? "weights") as Optimise;
  if (!OPTIMISE_MODES.includes(optimise)) fail(`unknown optimise mode ${JSON.stringify(optimise)}`);
  if (id && optimise !== id.optimise) fail(`the checkpoint was trained with hyperparameters.optimise = "${optimise}", these parameters say "${id.optimise}"; a run keeps what it trains`);
  if (id && parameterisation !== id.parameterisation)
    fail(`the checkpoint was trained with hyperparameters.parameterisation = "${parameterisation}", these parameters say "${id.parameterisation}"; a run keeps its parameterisation`);
  if (id && metadata.network_hash !== id.networkHash)
    fail(`the checkpoint belongs to a different network (connectome, constants, targets or schedule differ from these parameters)${id.networkNote ?? ""}`);
  if (id && metadata.training_hash !== id.trainingHash)
    fail("the checkpoint was trained with different parameters (learning rate, loss weights or schedule differ from these parameters)");
  const get = (name: string, dtype: string): Tensor => {
    const t = tensors[name];
    if (!t) fail(`tensor "${name}" is missing`);
    if (t.dtype !== dtype) fail(`tensor "${name}" has dtype ${t.dtype}, expected ${dtype}`);
    return t;
  };
  const F = (name: string) => get(name, "F32").data as Float32Array;
  const recWeight = F("rec_weight");
  const ffWeight = F("ff_weight");
  const adam: AdamState = { step: Number(metadata.step), m: [F("adam_m_rec"), F("adam_m_ff")], v: [F("adam_v_rec"), F("adam_v_ff")] };
  const logWeights = parameterisation === "log" ? { rec: F("rec_log_weight"), ff: F("ff_log_weight") } : null;
  if (logWeights && (logWeights.rec.length !== recWeight.length || logWeights.ff.length !== ffWeight.length)) fail("log-space weights do not match the weights");
  const factors = optimise === "weights" ? null : readFactors(get, recWeight.length, ffWeight.length, fail);
  const [recParams, ffParams] = factors ? [factors.value.rec.length, factors.value.ff.length] : [recWeight.length, ffWeight.length];
  if (adam.m[0].length !== recParams || adam.v[0].length !== recParams || adam.m[1].length !== ffParams || adam.v[1].length !== ffParams)
    fail(`optimizer moments do not match the ${factors ? "scaling factors" : "weights"}`);
  const version1 = metadata.format_version === "1";
  const readStream = version1 ? (name: string) => get(name, "F32") : decoder(path, tensors, metadata);
  const vT = readStream("stream_v");
  const gT = readStream("stream_g");
  const gLayout = version1 ? "A×B×N×2×S" : "A×2×S×B×N";
  if (vT.shape.length !== 3 || gT.shape.length !== 5) fail(`stream_v must be A×B×N and stream_g ${gLayout}`);
  const started = get("stream_started", "U8").data as Uint8Array;
  const [A, B, N] = vT.shape;
  // Version 1 stored g per (trial, neuron); version 2 slot-major, the canonical StreamState layout (engine.ts).
  const [gB, gN, two, S] = version1 ? [gT.shape[1], gT.shape[2], gT.shape[3], gT.shape[4]] : [gT.shape[3], gT.shape[4], gT.shape[1], gT.shape[2]];
  if (gT.shape[0] !== A || gB !== B || gN !== N || two !== 2 || started.length !== A)
    fail(`stream_v [${vT.shape}], stream_g [${gT.shape}] (${gLayout}) and stream_started [${started.length}] do not agree`);
  if (accumulationInterval !== null && A !== accumulationInterval)
    fail(`the checkpoint has ${A} streams but accumulation_interval is ${accumulationInterval}`);
  if (id && (B !== id.batchSize || N !== id.numNeurons || S !== id.numSlots)) fail("stream states do not match the network size");
  // With odour inputs each stream also carries its mixture state; a network without them must find none.
  const ouT = tensors.stream_ou ? get("stream_ou", "F64") : null;
  const P = ouT ? ouT.shape[1] : 0;
  if (ouT && (ouT.shape.length !== 2 || ouT.shape[0] !== A)) fail(`stream_ou [${ouT.shape}] must be ${A}×P (one odour mixture state per stream)`);
  if (id && P !== id.odourPatterns)
    fail(`the checkpoint holds ${P} odour mixture states per stream, the network has ${id.odourPatterns} odour patterns (inputs.process differs)`);
  const streams = Array.from(started, (s, k) => {
    if (!s) return null;
    const g = (gT.data as Float32Array).subarray(k * B * N * 2 * S, (k + 1) * B * N * 2 * S);
    const state: StreamState = { v: (vT.data as Float32Array).slice(k * B * N, (k + 1) * B * N), g: version1 ? slotMajor(g, B * N, 2 * S) : g.slice() };
    if (ouT) state.ou = (ouT.data as Float64Array).slice(k * P, (k + 1) * P);
    return state;
  });
  const epoch = Number(metadata.epoch);
  if (!Number.isInteger(epoch) || epoch < 0 || !Number.isInteger(adam.step)) fail("epoch or step metadata is invalid");
  let losses: LossTerms | null = null;
  try {
    const raw = JSON.parse(metadata.losses ?? "null") as Record<string, unknown> | null;
    if (raw) losses = Object.fromEntries(LOSS_TERM_NAMES.map((k) => [k, jsonToNumber(raw[k])])) as unknown as LossTerms;
  } catch {
    fail("losses metadata is not valid JSON");
  }
  return {
    state: {
      epoch,
      recWeight,
      ffWeight,
      logWeights,
      adam,
      factors,
      streams,
      bestLoss: jsonToNumber(JSON.parse(metadata.best_loss ?? '"Infinity"')),
      losses,
      wandbRunId: metadata.wandb_run_id ?? "",
      counters: readCounters(metadata.counters, fail),
    },
    metadata,
    fileBytes: statSync(path).size,
    storedTensorBytes: Object.values(tensors).reduce((a, t) => a + t.data.byteLength, 0),
    streamStateBytes: {
      stored: ["stream_v", "stream_g"].reduce((a, name) => a + (tensors[name] ?? tensors[encodedName(name)]).data.byteLength, 0),
      decoded: vT.data.byteLength + gT.data.byteLength,
      codec: metadata.format_version === "1" ? "none" : SHUFFLE4_DEFLATE,
    },
  };
}

/** The scaling-factor tensors of a checkpoint that trains them, checked against each other and the weights. */
function readFactors(get: (name: string, dtype: string) => Tensor, recEdges: number, ffEdges: number, fail: (what: string) => never): FactorState {
  const base = { rec: get("rec_base_weight", "F32").data as Float32Array, ff: get("ff_base_weight", "F32").data as Float32Array };
  if (base.rec.length !== recEdges || base.ff.length !== ffEdges) fail("base weights do not match the weights");
  const matrix = (name: string) => {
    const t = get(name, "F32");
    if (t.shape.length !== 2) fail(`tensor "${name}" must be 2-D [pre types, post types], got [${t.shape}]`);
    return t;
  };
  const [rec, ff, logRec, logFf] = ["rec_scaling_factor", "ff_scaling_factor", "rec_log_scaling_factor", "ff_log_scaling_factor"].map(matrix);
  const K = rec.shape[1];
  if (rec.shape[0] !== K || ff.shape[1] !== K || String(logRec.shape) !== String(rec.shape) || String(logFf.shape) !== String(ff.shape))
    fail(`scaling factor shapes do not agree (rec [${rec.shape}], ff [${ff.shape}], log rec [${logRec.shape}], log ff [${logFf.shape}])`);
  const data = (t: Tensor) => t.data as Float32Array;
  return { base, value: { rec: data(rec), ff: data(ff) }, log: { rec: data(logRec), ff: data(logFf) }, recTypes: K, inputTypes: ff.shape[0] };
}

/** The stopping-rule counters (absent in checkpoints written before they existed: all zero). */
function readCounters(raw: string | undefined, fail: (what: string) => never): TrainingCounters {
  if (raw === undefined) return newCounters();
  let c: Record<string, unknown> = {};
  try {
    c = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    fail("counters metadata is not valid JSON");
  }
  const out = newCounters();
  for (const k of Object.keys(out) as (keyof TrainingCounters)[]) {
    const v = c[k];
    if (!Number.isSafeInteger(v) || (v as number) < 0) fail(`counters metadata: ${k} must be a non-negative integer, got ${JSON.stringify(v)}`);
    out[k] = v as number;
  }
  return out;
}

/** Format version 2: logical tensors decoded from their `encoded_tensors` entries; every problem names the tensor. */
function decoder(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string>): (name: string) => Tensor {
  let entries: Record<string, Partial<EncodedTensorEntry>> = {};
  try {
    const parsed = JSON.parse(metadata[ENCODED_TENSORS_KEY] ?? "") as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    entries = parsed as typeof entries;
  } catch {
    throw new CheckpointError(`${path}: metadata "${ENCODED_TENSORS_KEY}" is missing or not a JSON object`);
  }
  return (name) => {
    const entry = entries[name];
    const stored = entry?.stored_as;
    const fail: (what: string) => never = (what) => {
      throw new CheckpointError(`${path}: tensor "${name}"${typeof stored === "string" ? ` (stored as "${stored}")` : ""}: ${what}`);
    };
    if (!entry || typeof entry !== "object") fail(`has no entry in the "${ENCODED_TENSORS_KEY}" metadata`);
    if (entry.codec !== SHUFFLE4_DEFLATE) fail(`unknown codec ${JSON.stringify(entry.codec)} (this build reads ${SHUFFLE4_DEFLATE})`);
    if (entry.dtype !== "F32") fail(`unsupported dtype ${JSON.stringify(entry.dtype)} (expected F32)`);
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`shape ${JSON.stringify(shape)} is invalid`);
    const t = typeof stored === "string" && Object.hasOwn(tensors, stored) ? tensors[stored] : undefined;
    if (!t) fail("the stored tensor is missing");
    if (t.dtype !== "U8" || t.shape.length !== 1) fail(`the stored tensor must be 1-D U8, got ${t.dtype} [${t.shape}]`);
    const count = shape.reduce((a, d) => a * d, 1);
    try {
      return { dtype: "F32", shape, data: decodeShuffleDeflate(t.data as Uint8Array, count) };
    } catch (e) {
      if (e instanceof CodecError) fail(e.message);
      throw e;
    }
  };
}

/**
 * The checkpoint a resume continues from: `resume` is a path, or "auto" (or "") for the run directory's
 * checkpoint_latest, falling back to checkpoint_best when latest is corrupt and `fallback` is set.
 */
export function resumeCheckpoint(resume: string, outputDir: string, fallback: boolean, log: (s: string) => void, id: CheckpointIdentity, streams: number): CheckpointInfo {
  if (resume !== "auto" && resume !== "") return readCheckpoint(resume, id, streams);
  const { latest, best } = checkpointPaths(outputDir);
  try {
    return readCheckpoint(latest, id, streams);
  } catch (e) {
    if (!(e instanceof CheckpointError) || !fallback || !existsSync(best)) throw e;
    log(`warning: ${(e as Error).message}`);
    log(`falling back to ${best} (--fallback)`);
    return readCheckpoint(best, id, streams);
  }
}

/** What `snn-coord --inspect` prints of a checkpoint. */
export function checkpointSummary(path: string): Record<string, unknown> {
  const info = readCheckpoint(path, null, null);
  const s = info.state;
  return {
    file: path,
    epoch: s.epoch,
    step: s.adam.step,
    best_loss: s.bestLoss,
    losses: s.losses,
    recurrent_synapses: s.recWeight.length,
    feedforward_synapses: s.ffWeight.length,
    streams: s.streams.length,
    streams_started: s.streams.filter(Boolean).length,
    parameterisation: info.metadata.parameterisation ?? "linear",
    optimise: info.metadata.optimise ?? "weights",
    ...(s.factors ? { scaling_factors: { recurrent: Array.from(s.factors.value.rec), feedforward: Array.from(s.factors.value.ff) } } : {}),
    counters: s.counters,
    format_version: info.metadata.format_version,
    file_bytes: info.fileBytes,
    // As stored: the stream states count at their compressed size, given decoded alongside.
    tensor_bytes: info.storedTensorBytes,
    stream_state_bytes: info.streamStateBytes,
    network_hash: info.metadata.network_hash,
    created: info.metadata.created,
  };
}
