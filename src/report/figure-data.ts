/**
 * What the figures need, and nothing more: the activity of one designated trial of an epoch (the engine's
 * TrialActivity, extracted on the worker so that full conductance tensors never cross the network), the network's
 * structure, and the run's history.
 */
import type { TrialActivity } from "../engine/engine.js";

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
  /** Recurrent neurons shown in the spike raster ([plotting] raster_neurons; a quarter as many inputs). */
  rasterNeurons: number;
}
