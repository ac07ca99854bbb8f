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
  /** With odour inputs (model/odours.ts): the patterns, rate (Hz) of input i under odour a at [a·M + i]. */
  odours?: { numPatterns: number; patterns: Float64Array };
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
  /**
   * Every epoch of the accumulation interval that ends with activity.epoch: the same weights, independent streams. Per
   * epoch (in order, the last being activity.epoch's) each neuron's rate and CV over its `trials` trials of
   * activity.steps steps. The statistics figures pool them and count the Fano factor across them.
   */
  interval: { trials: number; epochs: number[]; rates: Float32Array[]; cvs: Float32Array[] };
  /**
   * The run's initial weights (those of the epoch_0000 set), same edge order as network.recWeight / ffWeight, for the
   * weight distributions; null where they are not known (a run resumed from a checkpoint).
   */
  initialWeights: { rec: Float32Array; ff: Float32Array } | null;
  targets: {
    firingRate: number[];
    cv: number;
    /** Per-neuron target rates (Hz), when a targets file sets them: rate_scatter.png plots the rates against them. */
    perNeuronRate?: Float32Array;
  };
  history: HistoryRow[];
  /** Recurrent neurons shown in the spike raster ([plotting] raster_neurons; a quarter as many inputs). */
  rasterNeurons: number;
  /**
   * The recorded teacher's activity in the same epoch (activity.epoch) when the run replays one: spike_comparison.png
   * and firing_rate_correlogram.png compare the student with it (teacher-figure-data.ts recordedTeacherFigureData).
   */
  teacher?: TeacherFigureData;
}

/** A recorded teacher's part of one epoch, on the student's very inputs. */
export interface TeacherFigureData {
  /** Its spikes in the plotted trial, CSR as TrialActivity's spikePtr / spikeSteps (steps increasing per neuron). */
  spikePtr: Int32Array;
  spikeSteps: Int32Array;
  /** Per-neuron rate (Hz) over all trials of the epoch, as FigureData.rates is the student's. */
  rates: Float32Array;
  /**
   * Per-neuron rates (Hz) over trials 0 .. split − 1 and split .. trials − 1 (split = ⌊trials/2⌋): the same network on
   * independent Poisson inputs. Null with a single trial per epoch.
   */
  halves: { trials: number; split: number; first: Float32Array; second: Float32Array } | null;
}
