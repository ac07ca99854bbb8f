/**
 * Per-cell-type activity statistics logged at every update (MODEL.md 5.3; across-neuron std with ddof = 0 as the
 * original's trainer): mean and std of firing rates, mean and std of CVs over neurons that have one, active fraction.
 */

export interface CellTypeStats {
  cellType: string;
  rateMean: number;
  rateStd: number;
  cvMean: number;
  cvStd: number;
  activeFraction: number;
  /** Mean over the type's neurons of the membrane ratio std(V)/(θ − mean(V)) (target: threshold_ratio). */
  ratioMean: number;
}

/**
 * Mean and standard deviation of the finite values, with `ddof` (0: the population std the original's trainer logs;
 * 1: the sample std the figures show); NaN where undefined (no values, or one value with ddof 1).
 */
export function meanStd(values: ArrayLike<number>, ddof: 0 | 1): { mean: number; std: number; n: number } {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) {
      n++;
      sum += values[i];
    }
  }
  const mean = n > 0 ? sum / n : NaN;
  let ss = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) ss += (values[i] - mean) * (values[i] - mean);
  return { mean, std: n > ddof ? Math.sqrt(ss / (n - ddof)) : NaN, n };
}

/** rates in Hz, cvs (NaN = undefined) and membrane ratios per neuron; cellType indexes names. */
export function cellTypeStats(rates: ArrayLike<number>, cvs: ArrayLike<number>, ratios: ArrayLike<number>, cellType: Int32Array, names: string[]): CellTypeStats[] {
  return names.map((name, k) => {
    const r: number[] = [];
    const c: number[] = [];
    const m: number[] = [];
    for (let j = 0; j < cellType.length; j++) {
      if (cellType[j] !== k) continue;
      r.push(rates[j]);
      m.push(ratios[j]);
      if (!Number.isNaN(cvs[j])) c.push(cvs[j]);
    }
    const rate = meanStd(r, 0);
    const cv = meanStd(c, 0);
    const activeFraction = r.length ? r.filter((x) => x > 0).length / r.length : NaN;
    return { cellType: name, rateMean: rate.mean, rateStd: rate.std, cvMean: cv.mean, cvStd: cv.std, activeFraction, ratioMean: meanStd(m, 0).mean };
  });
}

/** Mean of per-trial CVs per neuron, ignoring trials without a CV (the original's nanmean over batches). */
export function nanMeanRows(perTrial: Float64Array, trials: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    let k = 0;
    for (let b = 0; b < trials; b++) {
      const x = perTrial[b * n + j];
      if (!Number.isNaN(x)) {
        s += x;
        k++;
      }
    }
    out[j] = k ? s / k : NaN;
  }
  return out;
}

/**
 * Statistics of several equally long epochs taken together (an interval's, or a simulation's): each neuron's rate
 * over all of them and the mean of its CVs, then per cell type. A neuron counts as active if it spiked in any of
 * them, so the active fraction is measured over A·B·T steps (5 s of network time at the defaults) rather than one
 * epoch's B·T: at 0.5 Hz a single 1 s epoch could show at most ~40% of the cells active.
 */
export function pooledStats(
  epochs: { rates: ArrayLike<number>; cvs: ArrayLike<number>; ratios: ArrayLike<number> }[],
  cellType: Int32Array,
  names: string[],
): CellTypeStats[] {
  const N = cellType.length;
  const E = epochs.length;
  const rates = new Float64Array(N);
  const ratios = new Float64Array(N);
  const cvs = new Float64Array(E * N);
  for (let k = 0; k < E; k++) addEpoch(epochs[k], E, rates, ratios, cvs.subarray(k * N, (k + 1) * N));
  return cellTypeStats(rates, nanMeanRows(cvs, E, N), ratios, cellType, names);
}

/** rates += e.rates/E, ratios += e.ratios/E and cvs = e.cvs per neuron: one epoch's share of pooledStats. */
function addEpoch(e: { rates: ArrayLike<number>; cvs: ArrayLike<number>; ratios: ArrayLike<number> }, E: number, rates: Float64Array, ratios: Float64Array, cvs: Float64Array): void {
  for (let j = 0; j < rates.length; j++) {
    rates[j] += e.rates[j] / E;
    ratios[j] += e.ratios[j] / E;
    cvs[j] = e.cvs[j];
  }
}

export interface WeightAgreement {
  /** Pearson correlation over synapses (NaN when either vector is constant). */
  correlation: number;
  /** ‖w − w_ref‖ / ‖w_ref‖ (L2 over synapses). */
  relativeError: number;
}

/** Pearson correlation of x and y (equal lengths), two-pass in float64; NaN when either is constant or empty. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let cov = 0;
  let vx = 0;
  let vy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    cov += dx * dy;
    vx += dx * dx;
    vy += dy * dy;
  }
  return vx > 0 && vy > 0 ? cov / Math.sqrt(vx * vy) : NaN;
}

/** How close learned weights are to a reference (the teacher's), synapse by synapse. */
export function weightAgreement(w: ArrayLike<number>, reference: ArrayLike<number>): WeightAgreement {
  let err = 0;
  let norm = 0;
  for (let e = 0; e < w.length; e++) {
    err += (w[e] - reference[e]) ** 2;
    norm += reference[e] ** 2;
  }
  return { correlation: pearson(w, reference), relativeError: Math.sqrt(err / norm) };
}

/** Per-type mean of a per-neuron quantity (e.g. targets), in type order. */
export function meanByType(values: ArrayLike<number>, cellType: Int32Array, numTypes: number): number[] {
  const sum = new Float64Array(numTypes);
  const count = new Float64Array(numTypes);
  for (let j = 0; j < cellType.length; j++) {
    sum[cellType[j]] += values[j];
    count[cellType[j]]++;
  }
  return Array.from(sum, (x, k) => x / count[k]);
}

/** RMS difference (Hz) between per-neuron rates averaged over equally long epochs and per-neuron target rates. */
export function rateRmse(ratesPerEpoch: ArrayLike<number>[], target: ArrayLike<number>): number {
  let se = 0;
  for (let j = 0; j < target.length; j++) {
    let r = 0;
    for (const rates of ratesPerEpoch) r += rates[j];
    se += (r / ratesPerEpoch.length - target[j]) ** 2;
  }
  return Math.sqrt(se / target.length);
}
