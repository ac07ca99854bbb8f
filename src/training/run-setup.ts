/**
 * What a coordinator run starts from: the parameters (with --set and --epochs overrides), the network, the output directory,
 * and the training state — fresh (the student's initial weights, streams at rest) or resumed from a checkpoint.
 * Every problem is an expected error (ConfigError, CheckpointError) raised before anything is written.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { Config, ConfigError, parametersTables, withEpochs } from "../model/config.js";
import { formatValue, Override, overridesRecord, parseSettings } from "../model/overrides.js";
import { Connectome } from "../model/connectome.js";
import { loadConnectome } from "../io/connectome-file.js";
import { hasSpikeTrainTeacher, NetworkSpec } from "../model/network.js";
import { CheckpointIdentity, initialTrainingState, resumeCheckpoint, TrainingState } from "../io/checkpoint.js";
import { factorNames } from "../model/scaling-factors.js";
import { simulatedConnectome, teacherForcedWeights } from "../model/teacher-forcing.js";
import { checkpointIdentity } from "../io/identity.js";
import { loadNetworkSpec } from "../io/network-files.js";
import { loadConfig } from "../io/parameters-file.js";
import { discardNewRun, MetadataFile, metricsColumns, MetricsCsv, prepareOutputDir, recordedOverrides, writeFactorTargets, writeParameters } from "../io/run-dir.js";
import { WASM_MEMORY_LIMIT_BYTES } from "../engine/sparse-cpu/kernels/workspace.js";
import { sparseCpuEpochBytes } from "../engine/sparse-cpu/sparse-cpu.js";
import { freshStart, teacherWeights } from "./student.js";

export interface RunSetup {
  paramsFile: string;
  config: Config;
  /** The parameters file's exact text (copied into the run directory). */
  text: string;
  totalEpochs: number;
  outputDir: string;
  /** The network the run simulates (teacher-forced under [student] mode = "feedforward"). */
  connectome: Connectome;
  spec: NetworkSpec;
  identity: CheckpointIdentity;
  teacher: { recWeight: Float32Array; ffWeight: Float32Array } | null;
  state: TrainingState;
  resuming: boolean;
  /** Command-line values replacing the file's (dotted key → value), and every parameter with them applied. */
  overrides: Record<string, unknown>;
  effective: Record<string, unknown>;
  /** What the scaling factors should become, when the run trains them (1/p of the factor perturbation; else ones). */
  factorTargets: { recurrent: Float64Array; feedforward: Float64Array } | null;
}

export interface RunRequest {
  params: string;
  /** --epochs */
  epochs?: number;
  /** --set KEY=VALUE, each */
  set?: readonly string[];
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
    const factors = run.factorTargets ? factorNames(config.recurrent.names, config.feedforward.names) : null;
    if (!resuming && factors) writeFactorTargets(outputDir, factors, run.factorTargets!);
    const columns = metricsColumns(config.recurrent.names, {
      vanRossum: hasSpikeTrainTeacher(spec),
      teacher: run.teacher !== null,
      perNeuronTargets: config.targets.file !== undefined,
      ...(factors ? { scalingFactors: [...factors.rec, ...factors.ff] } : {}),
      ...(spec.teacherRecording ? { teacherRates: true } : {}),
    });
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

const EPOCHS = "simulation.epochs";

/**
 * The parameters a run uses: the file with the --set values (and `overrides`, parsed elsewhere: snn-study's grid)
 * applied before validation, then --epochs. Resuming (`recorded`: the overrides the run was started with), the
 * recorded values are applied again and a --set that differs from one, or sets a key the run did not, is refused;
 * simulation.epochs may be raised, as --epochs may. `overrides` in the result is what metadata.json records.
 */
export function runParameters(
  r: { params: string; set?: readonly string[]; overrides?: readonly Override[]; epochs?: number },
  recorded: Record<string, unknown> | null = null,
  log: (line: string) => void = () => undefined,
): { config: Config; text: string; effectiveConfig: Config; overrides: Record<string, unknown> } {
  const given = [...parseSettings(r.set ?? []), ...(r.overrides ?? [])];
  given.forEach((o, i) => {
    const twice = given.findIndex((x) => x.key === o.key);
    if (twice !== i) throw new ConfigError(`${o.key}: given both by ${given[twice].source} and by ${o.source}`);
  });
  const setEpochs = given.find((o) => o.key === EPOCHS);
  if (r.epochs !== undefined && setEpochs && setEpochs.value !== r.epochs)
    throw new ConfigError(`--epochs ${r.epochs} and ${setEpochs.source} ${EPOCHS}=${formatValue(setEpochs.value)} disagree`);
  const sets = given.filter((o) => r.epochs === undefined || o.key !== EPOCHS);
  if (recorded) {
    const started = Object.entries(recorded).map(([k, v]) => `${k}=${formatValue(v)}`).join(", ") || "none";
    for (const o of given) {
      if (o.key === EPOCHS) continue;
      const same = o.key in recorded && JSON.stringify(recorded[o.key]) === JSON.stringify(o.value);
      if (!same)
        throw new ConfigError(
          `${o.source} ${o.key}=${o.text ?? formatValue(o.value)}: a resumed run keeps the parameters it was started with (its overrides: ${started}); ` +
            "start a new run (another --output, or --force) for other values",
        );
    }
    const again = Object.entries(recorded).filter(([k]) => !given.some((o) => o.key === k) && !(k === EPOCHS && r.epochs !== undefined));
    sets.unshift(...again.map(([key, value]) => ({ key, value, source: "metadata.json's overrides" })));
    if (recorded[EPOCHS] !== undefined && r.epochs === undefined && !setEpochs) log(`continuing to --epochs ${formatValue(recorded[EPOCHS])}, as the run was started with`);
  }
  const { config, text } = loadConfig(r.params, sets);
  const overrides = { ...overridesRecord(sets), ...(r.epochs === undefined ? {} : { [EPOCHS]: r.epochs }) };
  return { config, text, effectiveConfig: withEpochs(config, r.epochs), overrides };
}

export function setUpRun(r: RunRequest, log: (line: string) => void): RunSetup {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const outputDir = resolve(r.output ?? join("runs", `${basename(r.params, ".toml")}-${stamp}`));
  const resuming = r.resume !== undefined;
  // A resumed run keeps the --set values and --epochs it was started with.
  const { config, text, effectiveConfig, overrides } = runParameters(r, resuming ? recordedOverrides(outputDir) : null, log);
  const A = config.simulation.accumulation_interval;
  const totalEpochs = effectiveConfig.simulation.epochs;
  const connectome = loadConnectome(config);
  const spec = loadNetworkSpec(config, connectome);
  checkResources(config, spec);
  const identity = checkpointIdentity(config, spec);
  // A teacher-forced student simulates the teacher-forced network (model/teacher-forcing.ts): its weights and the
  // teacher's, for the weight metrics, are that network's.
  const forced = config.student.mode === "feedforward";
  const recurrentTeacher = teacherWeights(config, connectome);
  const teacher = recurrentTeacher && forced ? teacherForcedWeights(recurrentTeacher) : recurrentTeacher;
  const trainsFactors = config.hyperparameters.optimise !== "weights";
  let state: TrainingState;
  // The factors' targets come from the student's initial weights, which a resumed run recomputes (they are keyed by
  // the seed) only when it trains factors.
  const start = resuming && !trainsFactors ? null : freshStart(config, connectome, spec, recurrentTeacher);
  if (resuming) {
    state = resumeCheckpoint(r.resume!, outputDir, r.fallback, log, identity, A).state;
    log(`resuming from epoch ${state.epoch} (step ${state.adam.step})`);
    if (state.epoch > totalEpochs) throw new ConfigError(`--epochs: the checkpoint is at epoch ${state.epoch}, beyond the requested ${totalEpochs} epochs`);
  } else {
    const wandbRunId = randomUUID().replace(/-/g, "").slice(0, 8);
    state = initialTrainingState(start!.weights, A, config.hyperparameters.parameterisation, wandbRunId, start!.factors);
  }
  return {
    paramsFile: r.params,
    config,
    text,
    totalEpochs,
    outputDir,
    connectome: simulatedConnectome(config, connectome),
    spec,
    identity,
    teacher,
    state,
    resuming,
    overrides,
    effective: parametersTables(effectiveConfig),
    factorTargets: trainsFactors ? start!.factorTargets : null,
  };
}
