/** What a checkpoint must match to continue a run exactly. */
import { Config } from "../model/config.js";
import { hashValue, NetworkSpec } from "../model/network.js";
import { CheckpointIdentity } from "./checkpoint.js";
import { connectomeFilesNote } from "./connectome-file.js";

/**
 * Parameters that must match for a checkpoint to continue exactly (everything but length, logging and transport).
 * A targets file (or teacher recording) counts by its contents, which the network hash covers, not by its path: a
 * moved run still resumes.
 */
export function trainingHash(config: Config): string {
  const { epochs: _e, checkpoint_interval: _c, ...simulation } = config.simulation;
  const { file: _f, teacher_spikes: _s, ...targets } = config.targets;
  // When to stop (patience, max_skipped_updates) changes no update's result, so a resume may change it.
  const { patience: _p, max_skipped_updates: _m, ...hyperparameters } = config.hyperparameters;
  return hashValue({ simulation, hyperparameters, targets });
}

export function checkpointIdentity(config: Config, spec: NetworkSpec): CheckpointIdentity {
  return {
    networkHash: spec.hash,
    trainingHash: trainingHash(config),
    seed: config.simulation.seed,
    numNeurons: spec.constants.numNeurons,
    numSlots: spec.constants.numSlots,
    batchSize: spec.batchSize,
    parameterisation: config.hyperparameters.parameterisation,
    optimise: config.hyperparameters.optimise,
    odourPatterns: spec.odours?.numPatterns ?? 0,
    networkNote: connectomeFilesNote(config),
  };
}
