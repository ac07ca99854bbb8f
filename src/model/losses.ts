/**
 * The epoch loss (MODEL.md section 4) as pure functions of per-neuron summaries, each returning its value and the
 * coefficients of its gradient with respect to the spikes S[b,t,j] and voltages V[b,t,j] of the epoch:
 *   dL/dS[b,t,j] = spikeGrad[j]                                  (rates pool all trials and steps)
 *   dL/dV[b,t,j] = devCoef[b,j] · (V[b,t,j] − mean[b,j]) + meanCoef[b,j]   (membrane variance)
 * plus, with a teacher, the van Rossum term's dL/dS[b,t,j] per spike (van-rossum.ts).
 * Engines add these to their adjoints; the tfjs engine recomputes the same expressions with autodiff (the oracle).
 */

export interface LossWeights {
  firing_rate: number;
  cv: number;
  silent_penalty: number;
  membrane_variance: number;
  van_rossum: number;
}

export interface LossTerms {
  firing_rate: number;
  cv: number;
  silent_penalty: number;
  membrane_variance: number;
  /** Spike-train distance to the teacher (van-rossum.ts); 0 without a teacher. */
  van_rossum: number;
  total: number;
}

export const LOSS_TERM_NAMES = ["firing_rate", "cv", "silent_penalty", "membrane_variance", "van_rossum", "total"] as const;

/** Per-neuron targets, filled by cell type (or per neuron from a targets file). */
export interface NeuronTargets {
  rate: Float64Array;
  alpha: Float64Array;
  ratio: Float64Array;
  theta: Float64Array;
  cv: Float64Array;
}

/** Firing-rate loss: mean_j (r_j − r*_j)² / (r*_j + 1e−6), with r_j = count_j / duration. Adds to spikeGrad. */
export function firingRateLoss(counts: Float64Array, durationS: number, targetRate: Float64Array, spikeGrad: Float64Array | null, weight = 1): number {
  const N = counts.length;
  let sum = 0;
  for (let j = 0; j < N; j++) {
    const denom = targetRate[j] + 1e-6;
    const diff = counts[j] / durationS - targetRate[j];
    sum += (diff * diff) / denom;
    if (spikeGrad) spikeGrad[j] += (weight * 2 * diff) / (denom * N * durationS);
  }
  return sum / N;
}

/** Silent-neuron penalty: mean_j exp(−α_j r_j). Adds to spikeGrad. */
export function silentPenaltyLoss(counts: Float64Array, durationS: number, alpha: Float64Array, spikeGrad: Float64Array | null, weight = 1): number {
  const N = counts.length;
  let sum = 0;
  for (let j = 0; j < N; j++) {
    const e = Math.exp(-alpha[j] * (counts[j] / durationS));
    sum += e;
    if (spikeGrad) spikeGrad[j] -= (weight * alpha[j] * e) / (N * durationS);
  }
  return sum / N;
}

/** Membrane fluctuation relative to the distance to threshold, std(V) / (θ − mean(V) + 1e−8). */
export function thresholdRatio(mean: number, std: number, theta: number): number {
  return std / (theta - mean + 1e-8);
}

/**
 * Membrane-variance loss: per (trial, neuron) ratio = std_t(V) / (θ − mean_t(V) + 1e−8) (unbiased std over the
 * epoch's steps, reset samples included), L = mean (ratio − ρ*)². mean and std are indexed [b·N + j].
 * A neuron with zero std gets zero gradient (autograd would produce NaN there).
 */
export function membraneVarianceLoss(
  mean: Float64Array,
  std: Float64Array,
  steps: number,
  theta: Float64Array,
  targetRatio: Float64Array,
  coefs: { devCoef: Float64Array; meanCoef: Float64Array } | null,
  weight = 1,
): number {
  const BN = mean.length;
  const N = theta.length;
  let sum = 0;
  for (let k = 0; k < BN; k++) {
    const j = k % N;
    const d = theta[j] - mean[k] + 1e-8;
    const ratio = thresholdRatio(mean[k], std[k], theta[j]);
    const diff = ratio - targetRatio[j];
    sum += diff * diff;
    if (coefs) {
      const dRatio = (weight * 2 * diff) / BN;
      coefs.devCoef[k] = std[k] > 0 ? dRatio / ((steps - 1) * std[k] * d) : 0;
      coefs.meanCoef[k] = (dRatio * std[k]) / (d * d * steps);
    }
  }
  return sum / BN;
}

/**
 * Streaming CV of one spike train: feed spike positions in increasing order. CV = std(ISI, ddof=1)/mean(ISI),
 * NaN with fewer than 3 spikes (as the original).
 */
export class IsiAccumulator {
  count = 0;
  private last = 0;
  private sum = 0;
  private sumSq = 0;

  reset(): void {
    this.count = 0;
    this.sum = 0;
    this.sumSq = 0;
  }

  add(position: number): void {
    if (this.count > 0) {
      const isi = position - this.last;
      this.sum += isi;
      this.sumSq += isi * isi;
    }
    this.last = position;
    this.count++;
  }

  cv(): number {
    return isiCv(this.count, this.sum, this.sumSq);
  }
}

/** CV from a train's spike count and the sum and sum of squares of its ISIs; NaN with fewer than 3 spikes. */
export function isiCv(count: number, sum: number, sumSq: number): number {
  if (count < 3) return NaN;
  const n = count - 1;
  const mean = sum / n;
  if (mean <= 0) return NaN;
  const variance = Math.max(0, (sumSq - n * mean * mean) / (n - 1));
  return Math.sqrt(variance) / mean;
}

/** CV loss: nanmean_j (CV_j − CV*_j)²; NaN when no neuron has a CV. It carries no gradient. */
export function cvLoss(cvs: Float64Array, target: Float64Array): number {
  let sum = 0;
  let n = 0;
  for (let j = 0; j < cvs.length; j++) {
    const c = cvs[j];
    if (Number.isNaN(c)) continue;
    sum += (c - target[j]) * (c - target[j]);
    n++;
  }
  return n > 0 ? sum / n : NaN;
}

/**
 * Weighted total. A NaN CV loss (no neuron spiked 3 times) counts as 0 in the total so that the total, and hence
 * "best checkpoint" tracking, stays defined; the term itself is still reported as NaN.
 */
export function totalLoss(t: Omit<LossTerms, "total">, w: LossWeights): number {
  const cv = Number.isNaN(t.cv) ? 0 : t.cv;
  return (
    w.firing_rate * t.firing_rate + w.cv * cv + w.silent_penalty * t.silent_penalty + w.membrane_variance * t.membrane_variance + w.van_rossum * t.van_rossum
  );
}
