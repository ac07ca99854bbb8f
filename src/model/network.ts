/**
 * The static network a worker needs to simulate any epoch: structure, constants, schedule, targets, loss weights.
 * Sent once per worker and cached by `hash`; weights travel separately, by version.
 */
import { createHash } from "node:crypto";
import { Config } from "./config.js";
import { Connectome, EdgeList } from "./connectome.js";
import { LossWeights, NeuronTargets } from "./losses.js";
import { buildModelConstants, ModelConstants } from "./constants.js";
import { spikeProbabilities } from "./inputs.js";

export interface NetworkSpec {
  /** Content hash of everything below: workers cache by it, checkpoints are checked against it. */
  hash: string;
  seed: number;
  batchSize: number;
  chunkSteps: number;
  chunksPerEpoch: number;
  constants: ModelConstants;
  rec: EdgeList;
  ff: EdgeList;
  inputProbability: Float64Array;
  targets: NeuronTargets;
  lossWeights: LossWeights;
  /** Time constant (ms) of the van Rossum filter. */
  vanRossumTau: number;
  /**
   * The teacher's weights, present when the van Rossum loss is on: workers simulate the teacher forward on each
   * epoch's input from the epoch's initial state and compare spike trains.
   */
  teacherRecWeight?: Float32Array;
  teacherFfWeight?: Float32Array;
  cellTypeNames: string[];
  /** Which trial's activity goes into figures. */
  plotTrial: number;
}

/**
 * What the parameters' files contribute, read by io/network-files.ts: per-neuron targets of `[targets] file` (the
 * quantities it holds; NaN CV entries: no CV target for that neuron) and, with the van Rossum loss on, the teacher's
 * weights of `[student] teacher_file`.
 */
export interface NetworkFiles {
  targets: { rate?: Float64Array; cv?: Float64Array; ratio?: Float64Array } | null;
  teacherWeights: { recWeight: Float32Array; ffWeight: Float32Array } | null;
}

/** Targets by cell type, overridden per neuron by `[targets] file` for the quantities it holds. */
export function neuronTargets(config: Config, connectome: Connectome, theta: Float32Array, file: NetworkFiles["targets"]): NeuronTargets {
  const byType = (v: number[]) => Float64Array.from(connectome.cellType, (k) => v[k]);
  const targets: NeuronTargets = {
    rate: byType(config.targets.firing_rates),
    alpha: byType(config.targets.alpha),
    ratio: byType(config.targets.threshold_ratio),
    theta: Float64Array.from(theta),
    cv: Float64Array.from(connectome.cellType, () => config.targets.cvs),
  };
  if (!file) return targets;
  if (file.rate) targets.rate = file.rate;
  if (file.ratio) targets.ratio = file.ratio;
  if (file.cv) targets.cv = file.cv.map((cv, j) => (Number.isNaN(cv) ? targets.cv[j] : cv));
  return targets;
}

/**
 * Everything a worker needs, from the parameters and what their files hold (io/network-files.ts loadNetworkSpec
 * reads them). The files' contents enter the hash, so a changed file is noticed on resume.
 */
export function buildNetworkSpec(config: Config, connectome: Connectome, files: NetworkFiles): NetworkSpec {
  const constants = buildModelConstants(config, connectome);
  const spec: Omit<NetworkSpec, "hash"> = {
    seed: config.simulation.seed,
    batchSize: config.simulation.batch_size,
    chunkSteps: config.simulation.chunk_steps,
    chunksPerEpoch: config.simulation.chunks_per_epoch,
    constants,
    rec: connectome.rec,
    ff: connectome.ff,
    inputProbability: spikeProbabilities(connectome.inputType, config.feedforward.firing_rate, config.simulation.dt),
    targets: neuronTargets(config, connectome, constants.theta, files.targets),
    lossWeights: { ...config.hyperparameters.loss_weight },
    vanRossumTau: config.hyperparameters.van_rossum_tau,
    ...(files.teacherWeights ? { teacherRecWeight: files.teacherWeights.recWeight, teacherFfWeight: files.teacherWeights.ffWeight } : {}),
    cellTypeNames: config.recurrent.names,
    plotTrial: config.plotting.trial,
  };
  return { ...spec, hash: hashValue(spec) };
}

/** sha256 over a structure of numbers, strings and typed arrays, in key order. */
export function hashValue(value: unknown): string {
  const h = createHash("sha256");
  const visit = (v: unknown): void => {
    if (ArrayBuffer.isView(v)) {
      h.update(`${v.constructor.name}:${v.byteLength}:`);
      h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    } else if (Array.isArray(v)) {
      h.update(`[${v.length}`);
      v.forEach(visit);
      h.update("]");
    } else if (typeof v === "object" && v !== null) {
      for (const k of Object.keys(v).sort()) {
        h.update(`{${k}:`);
        visit((v as Record<string, unknown>)[k]);
      }
    } else {
      h.update(`${typeof v}:${String(v)};`);
    }
  };
  visit(value);
  return h.digest("hex");
}
