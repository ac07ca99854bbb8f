/**
 * Per-neuron statistics of one stream of epochs, as targets for a student (snn-sim --export-targets): each trial is
 * one long continuous simulation across the epochs, so rates and CVs are measured over the whole stream, and the
 * membrane ratio is measured per epoch, the window the membrane-variance loss compares over.
 */
import { IsiAccumulator, thresholdRatio } from "../model/losses.js";
import { nanMeanRows } from "../model/statistics.js";
import { ActivityLayout, voltageMoments } from "./epoch-summary.js";

export interface NeuronStatistics {
  /** Spikes per second over every trial and step added (Hz). */
  rate: Float64Array;
  /** nanmean over trials of each trial's CV over the whole stream (NaN: fewer than 3 spikes in every trial). */
  cv: Float64Array;
  /** Mean over trials and epochs of std(V)/(θ − mean V) within an epoch. */
  ratio: Float64Array;
}

export class StreamStatistics {
  private readonly counts: Float64Array;
  private readonly ratioSum: Float64Array;
  private readonly isi: IsiAccumulator[];
  private readonly meanV: Float64Array;
  private readonly stdV: Float64Array;
  private epochs = 0;

  constructor(
    private readonly trials: number,
    private readonly steps: number,
    private readonly theta: ArrayLike<number>,
    private readonly dt: number,
  ) {
    const N = theta.length;
    this.counts = new Float64Array(N);
    this.ratioSum = new Float64Array(N);
    this.isi = Array.from({ length: trials * N }, () => new IsiAccumulator());
    this.meanV = new Float64Array(trials * N);
    this.stdV = new Float64Array(trials * N);
  }

  /** The next epoch of the stream (trial b continues trial b of the previous epoch). */
  add(a: ActivityLayout): void {
    const { trials: B, steps: T, neurons: N } = a;
    const offset = this.epochs * T;
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < N; j++) {
        const base = b * a.sb + j * a.sj;
        const acc = this.isi[b * N + j];
        for (let t = 0; t < T; t++) {
          if (!a.spikes[base + t * a.st]) continue;
          acc.add(offset + t);
          this.counts[j]++;
        }
      }
    }
    voltageMoments(a, this.meanV, this.stdV);
    for (let k = 0; k < B * N; k++) this.ratioSum[k % N] += thresholdRatio(this.meanV[k], this.stdV[k], this.theta[k % N]);
    this.epochs++;
  }

  result(): NeuronStatistics {
    const N = this.theta.length;
    const seconds = (this.epochs * this.trials * this.steps * this.dt) / 1000;
    return {
      rate: this.counts.map((c) => c / seconds),
      cv: nanMeanRows(Float64Array.from(this.isi, (acc) => acc.cv()), this.trials, N),
      ratio: this.ratioSum.map((r) => r / (this.epochs * this.trials)),
    };
  }
}
