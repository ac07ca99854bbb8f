/**
 * The engine interface: one epoch (batch_size trials × chunks_per_epoch chunks of chunk_steps steps) from a given
 * initial stream state, forward and, on request, backward with truncated BPTT at chunk boundaries.
 * Gradients are per existing synapse (edge order of the network's edge lists), never dense matrices.
 */
import { LossTerms } from "../model/losses.js";
import { NetworkSpec } from "../model/network.js";
import { CellTypeStats } from "../model/statistics.js";
import { firstNonFinite } from "../model/optimizer.js";

export type EngineKind = "sparse-cpu" | "webgpu" | "tfjs" | "tfjs-gpu";

/**
 * Neuron state of every trial of a stream, in the one layout shared by the engine interface, messages and
 * checkpoints (format 2 stores exactly this): v[b·N + j] (mV); g[((c·S + l)·B + b)·N + j] (nS), slot-major, with
 * c = 0 rise, 1 decay component and l = synapse slot. Each (component, slot) is then one contiguous [b][j] block,
 * which engines copy in and out once per epoch and which compresses well (long runs of exact zeros).
 */
export interface StreamState {
  v: Float32Array;
  g: Float32Array;
  /** The odour mixture's Ornstein–Uhlenbeck state a (model/odours.ts), one per pattern; only with odour inputs. */
  ou?: Float64Array;
}

/** No NaN or ±Infinity anywhere in a stream state: a stream is carried on only from a finite one. */
export function isFiniteState(s: StreamState): boolean {
  return firstNonFinite(s.v) < 0 && firstNonFinite(s.g) < 0 && (!s.ou || firstNonFinite(s.ou) < 0);
}

export interface EpochTask {
  /** Global epoch index: keys the Poisson input. */
  epoch: number;
  /** null = from rest (v = U_reset, g = 0). */
  initialState: StreamState | null;
  recWeight: Float32Array;
  ffWeight: Float32Array;
  computeGradient: boolean;
  /** Extract the designated trial's activity for figures. */
  recordActivity: boolean;
}

/**
 * One designated trial of one epoch, for figures (the original's "batch 0"): spikes of all neurons, traces of one sample neuron. */
export interface TrialActivity {
  /** Global epoch index the activity comes from. */
  epoch: number;
  /** Time steps in the trial (chunks_per_epoch × chunk_steps). */
  steps: number;
  /** Step length in ms. */
  dt: number;
  /** Spikes of every recurrent neuron as CSR: neuron j spiked at steps spikeSteps[spikePtr[j] .. spikePtr[j+1]). */
  spikePtr: Int32Array;
  spikeSteps: Int32Array;
  /** Spikes of every input neuron, same CSR layout. */
  inputSpikePtr: Int32Array;
  inputSpikeSteps: Int32Array;
  /** The sample neuron whose traces are recorded (an excitatory neuron that spiked and received input, as the original). */
  sampleNeuron: number;
  /** Membrane potential of the sample neuron after each step (mV), length steps. */
  sampleVoltage: Float32Array;
  /** Effective conductance (rise + decay) per synapse slot of the sample neuron, [step][slot] (nS). */
  sampleConductance: Float32Array;
  /** Synaptic current per slot of the sample neuron, [step][slot] (pA, positive = hyperpolarising). */
  sampleCurrent: Float32Array;
  /**
   * Every neuron's spike count in every trial of the epoch, [b·N + j]: counts across trials of the same epoch (same
   * window, independent inputs), which the Fano factor needs.
   */
  trialSpikeCounts: Int32Array;
  /**
   * Spikes per step of each population summed over all trials, [t·P + p] (P = recurrent types, then input types): the
   * population rate (PSTH) of the whole epoch.
   */
  populationSpikes: Int32Array;
  /**
   * Inter-spike intervals within a trial, over all trials of the epoch, per recurrent cell type: [k·T + d] is how many
   * intervals of d steps neurons of type k had (d = 1..T−1; index 0 unused). The ISI figure's whole data.
   */
  isiSteps: Int32Array;
  /** Voltage traces of a few neurons per cell type for the voltage figure: neuron ids and [neuron][step] values. */
  traceNeurons: Int32Array;
  traceVoltages: Float32Array;
  /** With odour inputs: the trial's mixture weights over its steps, [t·P + a] (P odour patterns). */
  odourMixture?: Float32Array;
}

/** What an epoch's activity amounts to: the loss terms and the statistics (per cell type and per neuron). */
export interface EpochStatistics {
  losses: LossTerms;
  stats: CellTypeStats[];
  /** Per neuron: firing rate over all trials (Hz) and the mean of its per-trial CVs (NaN if none). */
  rates: Float32Array;
  cvs: Float32Array;
  /** Per neuron: membrane ratio std(V)/(θ − mean(V)), mean over trials. */
  ratios: Float32Array;
}

/** One epoch's result: the one record engines return, results carry on the wire (protocol.ts) and the trainer reduces. */
export interface EpochResult extends EpochStatistics {
  epoch: number;
  /** Per-edge ∂L/∂w (edge order of the network's lists); null when the task asked for no gradient (burn-in). */
  recGrad: Float32Array | null;
  ffGrad: Float32Array | null;
  finalState: StreamState;
  activity: TrialActivity | null;
}

export interface Engine {
  readonly kind: EngineKind;
  runEpoch(task: EpochTask): Promise<EpochResult>;
  dispose(): void;
}

export function restState(spec: NetworkSpec): StreamState {
  const { numNeurons: N, numSlots: S, uReset } = spec.constants;
  const B = spec.batchSize;
  const v = new Float32Array(B * N);
  for (let b = 0; b < B; b++) v.set(uReset, b * N);
  return { v, g: new Float32Array(B * N * 2 * S) };
}

export function epochSteps(spec: NetworkSpec): number {
  return spec.chunkSteps * spec.chunksPerEpoch;
}
