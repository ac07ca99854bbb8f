/**
 * What a coordinator run starts from: the parameters (and an --epochs override), the network, the output directory,
 * and the training state — fresh (the student's initial weights, streams at rest) or resumed from a checkpoint.
 * Every problem is an expected error (ConfigError, CheckpointError) raised before anything is written.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { Config, ConfigError, parametersTables, withEpochs } from "../model/config.js";
import { Connectome, generateConnectome } from "../model/connectome.js";
import { NetworkSpec } from "../model/network.js";
import { CheckpointIdentity, initialTrainingState, resumeCheckpoint, TrainingState } from "../io/checkpoint.js";
import { checkpointIdentity } from "../io/identity.js";
import { loadNetworkSpec } from "../io/network-files.js";
import { loadConfig } from "../io/parameters-file.js";
import { discardNewRun, MetadataFile, metricsColumns, MetricsCsv, prepareOutputDir, recordedOverrides, writeParameters } from "../io/run-dir.js";
import { WASM_MEMORY_LIMIT_BYTES } from "../engine/sparse-cpu/kernels/workspace.js";
import { sparseCpuEpochBytes } from "../engine/sparse-cpu/sparse-cpu.js";
import { studentInitialWeights, teacherWeights } from "./student.js";

export interface RunSetup {
  paramsFile: string;
  config: Config;
  /** The parameters file's exact text (copied into the run directory). */
  text: string;
  totalEpochs: number;
  outputDir: string;
  connectome: Connectome;
  spec: NetworkSpec;
  identity: CheckpointIdentity;
  teacher: { recWeight: Float32Array; ffWeight: Float32Array } | null;
  state: TrainingState;
  resuming: boolean;
  /** Command-line values replacing the file's (dotted key → value), and every parameter with them applied. */
  overrides: Record<string, number>;
  effective: Record<string, unknown>;
}

export interface RunRequest {
  params: string;
  /** --epochs */
  epochs?: number;
  /** --output (default runs/<parameters name>-<timestamp>) */
  output?: string;
  /** --resume: "auto" (or "") for the run directory's checkpoint_latest, or a checkpoint path. */
  resume?: string;
  /** --fallback: resume from checkpoint_best when checkpoint_latest is corrupt. */
  fallback: boolean;
}

/**
 * Creates (or, resuming, reopens) the run directory: parameters.toml, metrics.csv with this run's columns (kept up
 * to the resumed epoch), metadata.json.
 */
export function openRunDirectory(
  run: RunSetup,
  o: { force: boolean; workers: number | string; metricsPort: number },
): { csv: MetricsCsv; metadata: MetadataFile } {
  const { config, spec, state, outputDir, resuming } = run;
  const existed = existsSync(outputDir);
  prepareOutputDir(outputDir, resuming ? "resume" : o.force ? "force" : "new");
  try {
    if (!resuming) writeParameters(outputDir, run.text);
    const columns = metricsColumns(config.recurrent.names, { vanRossum: spec.teacherRecWeight !== undefined, teacher: run.teacher !== null, perNeuronTargets: config.targets.file !== undefined });
    const csv = new MetricsCsv(outputDir, columns);
    csv.open(resuming ? state.epoch : null);
    const metadata = new MetadataFile(outputDir, {
      command: process.argv.slice(1).join(" "),
      engine: null,
      workers: o.workers,
      parameters_file: resolve(run.paramsFile),
      output_dir: outputDir,
      ...(resuming ? { resumed_from_epoch: state.epoch } : {}),
      overrides: run.overrides,
      metrics_port: o.metricsPort,
      effective_parameters: run.effective,
    });
    return { csv, metadata };
  } catch (e) {
    // A new run that cannot write its first files leaves nothing that would block the same command later.
    if (!resuming) discardNewRun(outputDir, !existed);
    throw e;
  }
}

/** The coordinator's bound on the stream states it holds (A streams × B trials × N neurons × (1 + 2S) floats). */
const STREAM_STATE_LIMIT_BYTES = 16 * 2 ** 30;

/** Sizes a worker or the coordinator cannot hold are refused before anything starts, with the computed figure. */
function checkResources(config: Config, spec: NetworkSpec): void {
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const epoch = sparseCpuEpochBytes(spec);
  if (epoch > WASM_MEMORY_LIMIT_BYTES)
    throw new ConfigError(
      `simulation.batch_size: an epoch of ${spec.batchSize} trials × ${spec.chunkSteps * spec.chunksPerEpoch} steps of ${spec.constants.numNeurons} neurons needs ${gib(epoch)} ` +
        `of worker memory (mostly the history the backward reads), above the 4 GiB a sparse-cpu worker can address; use fewer trials or shorter epochs`,
    );
  const streams = config.simulation.accumulation_interval * spec.batchSize * spec.constants.numNeurons * (1 + 2 * spec.constants.numSlots) * 4;
  if (streams > STREAM_STATE_LIMIT_BYTES)
    throw new ConfigError(
      `simulation.accumulation_interval: ${config.simulation.accumulation_interval} streams of ${spec.batchSize} trials need ${gib(streams)} of coordinator memory for their states, above the ${gib(STREAM_STATE_LIMIT_BYTES)} limit`,
    );
}

export function setUpRun(r: RunRequest, log: (line: string) => void): RunSetup {
  const { config, text } = loadConfig(r.params);
  const A = config.simulation.accumulation_interval;
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const outputDir = resolve(r.output ?? join("runs", `${basename(r.params, ".toml")}-${stamp}`));
  const resuming = r.resume !== undefined;
  // A resumed run keeps the --epochs it was started with, unless it is given again.
  const recorded = resuming ? recordedOverrides(outputDir)["simulation.epochs"] : undefined;
  if (r.epochs === undefined && recorded !== undefined) log(`continuing to --epochs ${recorded}, as the run was started with`);
  const epochs = r.epochs ?? recorded;
  const overrides: Record<string, number> = epochs === undefined ? {} : { "simulation.epochs": epochs };
  const effectiveConfig = withEpochs(config, epochs);
  const totalEpochs = effectiveConfig.simulation.epochs;
  const connectome = generateConnectome(config);
  const spec = loadNetworkSpec(config, connectome);
  checkResources(config, spec);
  const identity = checkpointIdentity(config, spec);
  const teacher = teacherWeights(config, connectome);
  let state: TrainingState;
  if (resuming) {
    state = resumeCheckpoint(r.resume!, outputDir, r.fallback, log, identity, A).state;
    log(`resuming from epoch ${state.epoch} (step ${state.adam.step})`);
    if (state.epoch > totalEpochs) throw new ConfigError(`--epochs: the checkpoint is at epoch ${state.epoch}, beyond the requested ${totalEpochs} epochs`);
  } else {
    const wandbRunId = randomUUID().replace(/-/g, "").slice(0, 8);
    state = initialTrainingState(studentInitialWeights(config, connectome, teacher), A, config.hyperparameters.parameterisation, wandbRunId);
  }
  return { paramsFile: r.params, config, text, totalEpochs, outputDir, connectome, spec, identity, teacher, state, resuming, overrides, effective: parametersTables(effectiveConfig) };
}
