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
import { readTargetsFile, readTeacherWeights } from "../io/targets-file.js";

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

/** Targets by cell type, overridden per neuron by `[targets] file` for the quantities it holds. */
export function neuronTargets(config: Config, connectome: Connectome, theta: Float32Array): NeuronTargets {
  const byType = (v: number[]) => Float64Array.from(connectome.cellType, (k) => v[k]);
  const targets: NeuronTargets = {
    rate: byType(config.targets.firing_rates),
    alpha: byType(config.targets.alpha),
    ratio: byType(config.targets.threshold_ratio),
    theta: Float64Array.from(theta),
    cv: Float64Array.from(connectome.cellType, () => config.targets.cvs),
  };
  if (!config.targets.file) return targets;
  const file = readTargetsFile("targets.file", config.targets.file, connectome);
  if (file.rate) targets.rate = file.rate;
  if (file.ratio) targets.ratio = file.ratio;
  if (file.cv) targets.cv = file.cv.map((cv, j) => (Number.isNaN(cv) ? targets.cv[j] : cv));
  return targets;
}

/**
 * Everything a worker needs, from the parameters: reads `[targets] file` and, when the van Rossum loss is on, the
 * teacher's weights from `[student] teacher_file`. Their contents enter the hash, so a changed file is noticed on
 * resume.
 */
export function buildNetworkSpec(config: Config, connectome: Connectome): NetworkSpec {
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
    targets: neuronTargets(config, connectome, constants.theta),
    lossWeights: { ...config.hyperparameters.loss_weight },
    vanRossumTau: config.hyperparameters.van_rossum_tau,
    ...(config.hyperparameters.loss_weight.van_rossum > 0 ? teacherWeightFields(config, connectome) : {}),
    cellTypeNames: config.recurrent.names,
    plotTrial: config.plotting.trial,
  };
  return { ...spec, hash: hashValue(spec) };
}

function teacherWeightFields(config: Config, connectome: Connectome): Pick<NetworkSpec, "teacherRecWeight" | "teacherFfWeight"> {
  const { recWeight, ffWeight } = readTeacherWeights("student.teacher_file", config.student.teacher_file!, connectome);
  return { teacherRecWeight: recWeight, teacherFfWeight: ffWeight };
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
