/**
 * What the figures need, and nothing more: a worker extracts this from one designated trial of an epoch
 * (the original's "batch 0") so that full conductance tensors never cross the network.
 */

/** One designated trial of one epoch: spikes of all neurons, traces of one sample neuron. */
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
  /** Voltage traces of a few neurons per cell type for the voltage figure: neuron ids and [neuron][step] values. */
  traceNeurons: Int32Array;
  traceVoltages: Float32Array;
}

/** Static description of the network that the structure figures draw. */
export interface NetworkView {
  cellTypeNames: string[];
  inputTypeNames: string[];
  /** Per recurrent neuron, index into cellTypeNames (0 = excitatory drawn with +, others inhibitory −). */
  cellType: Int32Array;
  inputType: Int32Array;
  assemblySize: number;
  numAssemblies: number;
  recPre: Int32Array;
  recPost: Int32Array;
  recWeight: Float32Array;
  ffPre: Int32Array;
  ffPost: Int32Array;
  ffWeight: Float32Array;
  /** Per recurrent type: threshold (mV) and resting potential (mV), for the voltage figure. */
  theta: number[];
  restingPotential: number[];
  /** Synapse slots in model order: name, presynaptic population name, whether it is excitatory (E_syn above rest). */
  slots: { name: string; source: string; excitatory: boolean; gBar: number }[];
}

/** One row of the training history (metrics.csv). */
export interface HistoryRow {
  epoch: number;
  [column: string]: number;
}

export interface FigureData {
  /** Epoch number shown in titles and folder name (epochs completed). */
  epoch: number;
  totalEpochs: number;
  network: NetworkView;
  activity: TrialActivity;
  /** Firing rate (Hz) of every recurrent neuron over all trials of the epoch. */
  rates: Float32Array;
  /** CV of every recurrent neuron over all trials (NaN where fewer than 3 spikes). */
  cvs: Float32Array;
  targets: {
    firingRate: number[];
    cv: number;
    /** Per-neuron target rates (Hz), when a targets file sets them: rate_scatter.png plots the rates against them. */
    perNeuronRate?: Float32Array;
  };
  history: HistoryRow[];
}
