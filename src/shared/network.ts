/**
 * The static network a worker needs to simulate any epoch: structure, constants, schedule, targets, loss weights.
 * Sent once per worker and cached by `hash`; weights travel separately, by version.
 */
import { createHash } from "node:crypto";
import { Config } from "./config.js";
import { Connectome, EdgeList } from "./connectome.js";
import { LossWeights, NeuronTargets } from "./losses.js";
import { buildModelConstants, ModelConstants } from "./model.js";
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
  cellTypeNames: string[];
  /** Which trial's activity goes into figures. */
  plotTrial: number;
}

export function neuronTargets(config: Config, cellType: Int32Array, theta: Float32Array): NeuronTargets {
  const byType = (v: number[]) => Float64Array.from(cellType, (k) => v[k]);
  return {
    rate: byType(config.targets.firing_rates),
    alpha: byType(config.targets.alpha),
    ratio: byType(config.targets.threshold_ratio),
    theta: Float64Array.from(theta),
    cv: config.targets.cvs,
  };
}

export function buildNetworkSpec(config: Config, connectome: Connectome, targets?: NeuronTargets): NetworkSpec {
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
    targets: targets ?? neuronTargets(config, connectome.cellType, constants.theta),
    lossWeights: { ...config.hyperparameters.loss_weight },
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
