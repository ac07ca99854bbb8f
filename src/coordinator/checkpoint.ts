/**
 * Checkpoints (DESIGN.md "Files a run writes", MODEL.md 5.4): everything the coordinator owns, as safetensors so
 * that Python reads it with `safetensors` or numpy. Written atomically with a whole-file checksum; read back with
 * every mismatch reported as one clear CheckpointError naming the file.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readSafetensorsFile, writeSafetensorsFile } from "../shared/atomic-file.js";
import { LossTerms, LOSS_TERM_NAMES } from "../shared/losses.js";
import { SafetensorsError, Tensor } from "../shared/safetensors.js";
import { StreamState } from "../worker/engine.js";
import { AdamState } from "./optimizer.js";

export const CHECKPOINT_FORMAT_VERSION = "1";

export class CheckpointError extends Error {}

/** Everything needed to continue a run exactly. */
export interface TrainingState {
  /** Epochs completed (the next epoch index). */
  epoch: number;
  recWeight: Float32Array;
  ffWeight: Float32Array;
  adam: AdamState;
  /** Carried neuron state of each stream; null while a stream has not started (rest). */
  streams: (StreamState | null)[];
  bestLoss: number;
  losses: LossTerms | null;
  /** W&B run id, so that a resumed run appends to the same run. */
  wandbRunId: string;
}

export interface CheckpointIdentity {
  networkHash: string;
  trainingHash: string;
  seed: number;
  numNeurons: number;
  numSlots: number;
  batchSize: number;
}

export function checkpointPaths(outputDir: string): { dir: string; latest: string; best: string } {
  const dir = join(outputDir, "checkpoints");
  return { dir, latest: join(dir, "checkpoint_latest.safetensors"), best: join(dir, "checkpoint_best.safetensors") };
}

const f32 = (data: Float32Array, shape: number[] = [data.length]): Tensor => ({ dtype: "F32", shape, data });

export function writeCheckpoint(path: string, s: TrainingState, id: CheckpointIdentity): void {
  const A = s.streams.length;
  const { numNeurons: N, numSlots: S, batchSize: B } = id;
  const streamV = new Float32Array(A * B * N);
  const streamG = new Float32Array(A * B * N * 2 * S);
  const started = new Uint8Array(A);
  s.streams.forEach((st, k) => {
    if (!st) return;
    started[k] = 1;
    streamV.set(st.v, k * B * N);
    streamG.set(st.g, k * B * N * 2 * S);
  });
  const tensors: Record<string, Tensor> = {
    rec_weight: f32(s.recWeight),
    ff_weight: f32(s.ffWeight),
    adam_m_rec: f32(s.adam.m[0]),
    adam_v_rec: f32(s.adam.v[0]),
    adam_m_ff: f32(s.adam.m[1]),
    adam_v_ff: f32(s.adam.v[1]),
    stream_v: f32(streamV, [A, B, N]),
    stream_g: f32(streamG, [A, B, N, 2, S]),
    stream_started: { dtype: "U8", shape: [A], data: started },
  };
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
    created: new Date().toISOString(),
  };
  writeSafetensorsFile(path, tensors, metadata);
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
  bytes: number;
}

/** Reads and checks a checkpoint against the current network; any problem is a CheckpointError naming the file. */
export function readCheckpoint(path: string, id: CheckpointIdentity | null, accumulationInterval: number | null): CheckpointInfo {
  if (!existsSync(path)) throw new CheckpointError(`${path}: checkpoint not found`);
  let decoded;
  try {
    decoded = readSafetensorsFile(path);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(`corrupt checkpoint ${e.message}`);
    throw new CheckpointError(`${path}: cannot read checkpoint (${(e as Error).message})`);
  }
  const { tensors, metadata } = decoded;
  const fail = (what: string): never => {
    throw new CheckpointError(`${path}: ${what}`);
  };
  if (metadata.format !== "snn-train checkpoint") fail("not an snn-train checkpoint");
  if (metadata.format_version !== CHECKPOINT_FORMAT_VERSION)
    fail(`checkpoint format version ${metadata.format_version} is not supported (this build reads version ${CHECKPOINT_FORMAT_VERSION})`);
  if (id && metadata.network_hash !== id.networkHash)
    fail("the checkpoint belongs to a different network (connectome, constants, targets or schedule differ from these parameters)");
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
  if (adam.m[0].length !== recWeight.length || adam.v[0].length !== recWeight.length || adam.m[1].length !== ffWeight.length || adam.v[1].length !== ffWeight.length)
    fail("optimizer moments do not match the weights");
  const vT = get("stream_v", "F32");
  const gT = get("stream_g", "F32");
  const started = get("stream_started", "U8").data as Uint8Array;
  const [A, B, N] = vT.shape;
  if (accumulationInterval !== null && A !== accumulationInterval)
    fail(`the checkpoint has ${A} streams but accumulation_interval is ${accumulationInterval}`);
  if (id && (B !== id.batchSize || N !== id.numNeurons || gT.shape[4] !== id.numSlots)) fail("stream states do not match the network size");
  const S = gT.shape[4];
  const streams = Array.from(started, (s, k) =>
    s
      ? {
          v: (vT.data as Float32Array).slice(k * B * N, (k + 1) * B * N),
          g: (gT.data as Float32Array).slice(k * B * N * 2 * S, (k + 1) * B * N * 2 * S),
        }
      : null,
  );
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
    state: { epoch, recWeight, ffWeight, adam, streams, bestLoss: jsonToNumber(JSON.parse(metadata.best_loss ?? '"Infinity"')), losses, wandbRunId: metadata.wandb_run_id ?? "" },
    metadata,
    bytes: Object.values(tensors).reduce((a, t) => a + t.data.byteLength, 0),
  };
}
