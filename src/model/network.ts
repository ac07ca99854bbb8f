/**
 * The static network a worker needs to simulate any epoch: structure, constants, schedule, targets, loss weights.
 * Sent once per worker and cached by `hash`; weights travel separately, by version.
 */
import { createHash } from "node:crypto";
import { Config } from "./config.js";
import { Connectome, EdgeList } from "./connectome.js";
import { LossWeights, NeuronTargets } from "./losses.js";
import { buildModelConstants, ModelConstants } from "./constants.js";
import { InputSpikes, poissonInputs, spikeProbabilities } from "./inputs.js";
import { placeOf, RECORDED_INPUTS, RecordedChannel, recordedInputs, TeacherRecording } from "./teacher-replay.js";
import { VanRossumKernel } from "./van-rossum.js";
import { simulatedConfig, simulatedConnectome, teacherForcedWeights } from "./teacher-forcing.js";
import { OdourInputs, odourPatterns, OdourProcess, restMixture } from "./odours.js";

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
  /**
   * Present with `[inputs] process = "odours"` (model/odours.ts): epochs draw their inputs from the odour mixture,
   * whose state each stream carries (StreamState.ou), instead of at inputProbability.
   */
  odours?: OdourProcess;
  targets: NeuronTargets;
  lossWeights: LossWeights;
  /** Time constants (ms) of the van Rossum filter (model/van-rossum.ts): tauRise = 0 is the single exponential. */
  vanRossum: VanRossumKernel;
  /**
   * The teacher's weights, present when the van Rossum loss is on: workers simulate the teacher forward on each
   * epoch's input from the epoch's initial state and compare spike trains.
   */
  teacherRecWeight?: Float32Array;
  teacherFfWeight?: Float32Array;
  /**
   * A teacher's recorded input and output spike trains (`[targets] teacher_spikes`, model/teacher-replay.ts), present
   * only with the van Rossum loss on: epochs replay its inputs instead of Poisson input and fit its outputs, and the
   * on-the-fly teacher (teacherRecWeight) is then absent. It travels with the network, so the hash covers it.
   */
  teacherRecording?: TeacherRecording;
  /**
   * Present when scaling factors are trained (optimise ≠ "weights"): results carry ∂L/∂ln S per connection-type pair
   * (scaling-factors.ts factorLogGradient) instead of per-edge gradients, reduced on the worker.
   */
  reduceToScalingFactors?: true;
  /**
   * A teacher-forced feedforward student ([student] mode = "feedforward", teacher-forcing.ts): input types from
   * `inputTypes` on are the teacher's recurrent neurons, recorded; there are no recurrent synapses.
   */
  teacherForcing?: { inputTypes: number };
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
  /** `[targets] teacher_spikes`, validated against these parameters (io/teacher-recording.ts). */
  teacherRecording?: TeacherRecording | null;
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
export function buildNetworkSpec(config: Config, recurrent: Connectome, files: NetworkFiles): NetworkSpec {
  // A teacher-forced student simulates the teacher-forced network of the connectome (files are read against the
  // connectome itself: they describe the teacher).
  const forced = config.student.mode === "feedforward";
  const connectome = simulatedConnectome(config, recurrent);
  const simulated = simulatedConfig(config);
  const teacherWeights = files.teacherWeights && forced ? teacherForcedWeights(files.teacherWeights) : files.teacherWeights;
  const constants = buildModelConstants(simulated, connectome);
  const spec: Omit<NetworkSpec, "hash"> = {
    seed: config.simulation.seed,
    batchSize: config.simulation.batch_size,
    chunkSteps: config.simulation.chunk_steps,
    chunksPerEpoch: config.simulation.chunks_per_epoch,
    constants,
    rec: connectome.rec,
    ff: connectome.ff,
    inputProbability: spikeProbabilities(connectome.inputType, simulated.feedforward.firing_rate, config.simulation.dt),
    ...(config.odours ? { odours: odourProcess(config, connectome) } : {}),
    targets: neuronTargets(config, connectome, constants.theta, files.targets),
    lossWeights: { ...config.hyperparameters.loss_weight },
    vanRossum: { tauRise: config.hyperparameters.van_rossum_tau_rise, tauDecay: config.hyperparameters.van_rossum_tau_decay },
    ...(teacherWeights ? { teacherRecWeight: teacherWeights.recWeight, teacherFfWeight: teacherWeights.ffWeight } : {}),
    ...(files.teacherRecording ? { teacherRecording: files.teacherRecording } : {}),
    ...(config.hyperparameters.optimise !== "weights" ? { reduceToScalingFactors: true as const } : {}),
    ...(forced ? { teacherForcing: { inputTypes: config.feedforward.names.length } } : {}),
    cellTypeNames: config.recurrent.names,
    plotTrial: config.plotting.trial,
  };
  return { ...spec, hash: hashValue(spec) };
}

/** The van Rossum loss compares with a teacher's spike trains: simulated on the fly, or recorded. */
export function hasSpikeTrainTeacher(spec: Pick<NetworkSpec, "teacherRecWeight" | "teacherRecording">): boolean {
  return spec.teacherRecWeight !== undefined || spec.teacherRecording !== undefined;
}

/** The odour process of `[odours]`: patterns from the connectome's own feedforward weights. */
function odourProcess(config: Config, c: Connectome): OdourProcess {
  const o = config.odours!;
  const { numPatterns, patterns } = odourPatterns(c.assemblyId, c.cellType, c.inputType, c.ff, c.ffWeight, config.feedforward.names, o.types);
  return { numPatterns, patterns, tau: o.tau, sigma: o.sigma, temperature: o.temperature };
}

/** What an epoch's input leaves besides its spikes: the odour mixture's state after the epoch, and its trajectory. */
export interface EpochDrive {
  /** The stream's odour mixture state after the epoch (StreamState.ou); absent without odours. */
  ou?: Float64Array;
  /** The plot trial's mixture weights, [t·P + a], when the epoch records activity (TrialActivity.odourMixture). */
  odourMixture?: Float32Array;
}

/** One odour generator (and its buffers) per network and thread. */
const odourGenerators = new WeakMap<OdourProcess, OdourInputs>();

/**
 * The input spikes of global epoch `epoch` into `out` (trials × steps × inputs, inputs.ts layout): the teacher's
 * recorded inputs of the epoch's place in the recording when the network replays one, the odour mixture from the
 * stream's state when the network has odour inputs, else the keyed Poisson input.
 */
export function epochInputs(
  spec: NetworkSpec,
  task: { epoch: number; initialState: { ou?: Float64Array } | null; recordActivity: boolean },
  out: InputSpikes,
): EpochDrive {
  const r = spec.teacherRecording;
  const o = spec.odours;
  if (r) {
    // A teacher-forced network's inputs are the recorded inputs followed by the teacher's recorded recurrent spikes.
    const channels: readonly RecordedChannel[] = spec.teacherForcing ? ["inputs", "outputs"] : RECORDED_INPUTS;
    recordedInputs(r, placeOf(r, task.epoch, spec.batchSize, out.steps), spec.batchSize, out.steps, out, channels);
    return {};
  }
  if (!o) {
    poissonInputs(spec.seed, task.epoch, out.trials, out.steps, spec.inputProbability, out);
    return {};
  }
  let generator = odourGenerators.get(o);
  if (!generator) odourGenerators.set(o, (generator = new OdourInputs(o)));
  // Advanced in place by the draw: a copy of the stream's state, never the task's own.
  const start = task.initialState?.ou;
  const ou = start ? Float64Array.from(start) : restMixture(o.numPatterns);
  const mixture = task.recordActivity ? { trial: spec.plotTrial, weights: new Float32Array(out.steps * o.numPatterns) } : undefined;
  generator.draw(spec.seed, task.epoch, spec.constants.dt, ou, out, mixture);
  return { ou, ...(mixture ? { odourMixture: mixture.weights } : {}) };
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
