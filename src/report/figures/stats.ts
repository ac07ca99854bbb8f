/**
 * Pure statistics behind the figures, over typed arrays and spike CSR (ptr/steps as in TrialActivity).
 * Spike steps of one neuron are in increasing order, as the simulator emits them.
 */

/** Spikes per step summed over `members`. */
export function populationCounts(ptr: Int32Array, spikeSteps: Int32Array, members: ArrayLike<number>, steps: number): Float64Array {
  const counts = new Float64Array(steps);
  for (let m = 0; m < members.length; m++) {
    const j = members[m];
    for (let k = ptr[j]; k < ptr[j + 1]; k++) {
      const s = spikeSteps[k];
      if (s >= 0 && s < steps) counts[s]++;
    }
  }
  return counts;
}

/** numpy `convolve(x, ones(width), "same")`: out[i] sums x over [i − ⌈(width−1)/2⌉, i + ⌊(width−1)/2⌋]. */
export function boxcarSame(x: ArrayLike<number>, width: number): Float64Array {
  const n = x.length;
  const out = new Float64Array(n);
  const back = Math.ceil((width - 1) / 2);
  const ahead = width - 1 - back;
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + x[i];
  for (let i = 0; i < n; i++) out[i] = prefix[Math.min(n, i + ahead + 1)] - prefix[Math.max(0, i - back)];
  return out;
}

/**
 * Population rate (Hz per neuron) from `counts`, spikes per step summed over `neurons` (neuron-trials: members ×
 * trials): summed over a centred boxcar of `windowMs` (numpy "same" alignment) ÷ (the window's duration in s ·
 * neurons). At the trial's edges the window is cut short, so each point is divided by
 * the steps its window actually covers: a constant-rate train gives a flat PSTH up to both edges, not the dip that
 * dividing by the full window gives.
 */
export function psth(counts: ArrayLike<number>, neurons: number, dtMs: number, windowMs: number): Float64Array {
  const steps = counts.length;
  const width = Math.max(1, Math.round(windowMs / dtMs));
  const rate = boxcarSame(counts, width);
  const back = Math.ceil((width - 1) / 2);
  const ahead = width - 1 - back;
  for (let i = 0; i < rate.length; i++) {
    const covered = Math.min(steps - 1, i + ahead) - Math.max(0, i - back) + 1;
    rate[i] /= ((covered * dtMs) / 1000) * Math.max(1, neurons);
  }
  return rate;
}

/**
 * Fano factor across repeats (trials, or epochs standing in for them) of each neuron's spike count in one counting
 * window: counts[r][j] is neuron j's count in repeat r; F_j = var over repeats (ddof 1) / mean. NaN where the mean
 * is 0 or there are fewer than 2 repeats.
 */
export function fanoAcrossRepeats(counts: readonly ArrayLike<number>[], neurons: number): Float64Array {
  const R = counts.length;
  const out = new Float64Array(neurons).fill(NaN);
  if (R < 2) return out;
  for (let j = 0; j < neurons; j++) {
    let sum = 0;
    for (let r = 0; r < R; r++) sum += counts[r][j];
    const mean = sum / R;
    if (!(mean > 0)) continue;
    let ss = 0;
    for (let r = 0; r < R; r++) ss += (counts[r][j] - mean) ** 2;
    out[j] = ss / (R - 1) / mean;
  }
  return out;
}

/**
 * Log-spaced edges from lo to hi for rates that are whole spike counts × `quantum` (Hz): each edge inside (lo, hi) is
 * moved to the nearest half count, (k + ½)·quantum, and repeats dropped, so every bin holds whole counts and low
 * rates do not alternate between empty and full bins. lo and hi stay as they are (the axis domain).
 */
export function countLogBinEdges(lo: number, hi: number, bins: number, quantum: number): Float64Array {
  const raw = logBinEdges(lo, hi, bins);
  const out: number[] = [lo];
  for (let i = 1; i < raw.length - 1; i++) {
    const e = (Math.max(0, Math.round(raw[i] / quantum - 0.5)) + 0.5) * quantum;
    if (e > out[out.length - 1] && e < hi) out.push(e);
  }
  out.push(hi);
  return Float64Array.from(out);
}

/** The original's counting windows in steps: `logspace(0, 3, 20)` truncated to int (duplicates kept). */
export const FANO_WINDOWS: readonly number[] = Array.from({ length: 20 }, (_, i) => Math.trunc(10 ** ((3 * i) / 19)));

/** Distinct windows of FANO_WINDOWS that fit at least twice into `steps` (others would all be NaN). */
export function fanoWindows(steps: number): number[] {
  return [...new Set(FANO_WINDOWS)].filter((w) => Math.floor(steps / w) >= 2);
}

/**
 * Fano factor of one spike train: counts in non-overlapping windows of `window` steps (trailing remainder dropped),
 * var (ddof = 1) / mean; NaN when fewer than 2 windows or no spike in them.
 * `scratch` (length ≥ ⌊steps/window⌋, all zero) is left all zero again, so callers reuse it across neurons.
 */
export function fanoFactor(spikeSteps: ArrayLike<number>, from: number, to: number, steps: number, window: number, scratch: Int32Array): number {
  const windows = Math.floor(steps / window);
  if (windows < 2) return NaN;
  const used = windows * window;
  let sum = 0;
  let sumSq = 0;
  for (let k = from; k < to; k++) {
    const s = spikeSteps[k];
    if (s < 0 || s >= used) continue;
    const c = ++scratch[Math.floor(s / window)];
    sum++;
    sumSq += 2 * c - 1; // c² − (c − 1)²: the sum of squared counts grows by this
  }
  for (let k = from; k < to; k++) {
    const s = spikeSteps[k];
    if (s >= 0 && s < used) scratch[Math.floor(s / window)] = 0;
  }
  if (sum === 0) return NaN;
  const mean = sum / windows;
  return (sumSq - sum * mean) / (windows - 1) / mean;
}

/** Fano factor of each of `members` for one window (NaN where undefined). */
export function fanoFactors(ptr: Int32Array, spikeSteps: Int32Array, members: ArrayLike<number>, steps: number, window: number): Float64Array {
  const scratch = new Int32Array(Math.max(1, Math.floor(steps / window)));
  const out = new Float64Array(members.length);
  for (let m = 0; m < members.length; m++) out[m] = fanoFactor(spikeSteps, ptr[members[m]], ptr[members[m] + 1], steps, window, scratch);
  return out;
}

/** The inter-spike intervals of cell type `type` in seconds, from TrialActivity.isiSteps (counts by length in steps). */
export function interSpikeIntervals(isiSteps: Int32Array, type: number, steps: number, dtMs: number): Float64Array {
  const counts = isiSteps.subarray(type * steps, (type + 1) * steps);
  const out = new Float64Array(counts.reduce((a, b) => a + b, 0));
  let o = 0;
  for (let d = 1; d < steps; d++) out.fill((d * dtMs) / 1000, o, (o += counts[d]));
  return out;
}

/** `bins` + 1 geometrically spaced edges from lo to hi (both > 0), as numpy `logspace(log10(lo), log10(hi), bins + 1)`. */
export function logBinEdges(lo: number, hi: number, bins: number): Float64Array {
  const a = Math.log10(lo);
  const step = (Math.log10(hi) - a) / bins;
  return Float64Array.from({ length: bins + 1 }, (_, i) => (i === 0 ? lo : i === bins ? hi : 10 ** (a + i * step)));
}

/** `bins` + 1 evenly spaced edges from lo to hi. */
export function linearBinEdges(lo: number, hi: number, bins: number): Float64Array {
  return Float64Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + ((hi - lo) * i) / bins));
}

/** numpy `histogram` counts: bins are [e_i, e_{i+1}), the last one closed; values outside or not finite are dropped. */
export function histogram(values: ArrayLike<number>, edges: Float64Array): Float64Array {
  const bins = edges.length - 1;
  const counts = new Float64Array(Math.max(0, bins));
  if (bins < 1) return counts;
  const lo = edges[0];
  const hi = edges[bins];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= lo && v <= hi)) continue;
    // Binary search rather than arithmetic so log and linear edges share one path and rounding never misplaces.
    let a = 0;
    let b = bins;
    while (b - a > 1) {
      const mid = (a + b) >> 1;
      if (v >= edges[mid]) a = mid;
      else b = mid;
    }
    counts[a]++;
  }
  return counts;
}


/** numpy `percentile(values, q)` (linear interpolation) of the finite values; NaN when there are none. */
export function percentile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).filter(Number.isFinite).sort();
  if (sorted.length === 0) return NaN;
  const pos = ((sorted.length - 1) * q) / 100;
  const i = Math.floor(pos);
  return i + 1 < sorted.length ? sorted[i] + (sorted[i + 1] - sorted[i]) * (pos - i) : sorted[i];
}

/** Finite minimum and maximum of the values above `floor` (exclusive); null when there are none. */
export function extent(values: ArrayLike<number>, floor = -Infinity): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v > floor && Number.isFinite(v)) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return min <= max ? { min, max } : null;
}

/**
 * Mean of a sparse rows×cols matrix over blocks of rowFactor×colFactor cells (edge blocks average over the cells
 * they have), so a heatmap keeps at most maxBins cells per axis. Entries k with row[k] < rows and col[k] < cols count.
 */
export function binMatrix(
  rows: number,
  cols: number,
  row: ArrayLike<number>,
  col: ArrayLike<number>,
  value: (k: number) => number,
  maxBins: number,
): { rowFactor: number; colFactor: number; rowBins: number; colBins: number; mean: Float64Array } {
  const rowFactor = Math.max(1, Math.ceil(rows / maxBins));
  const colFactor = Math.max(1, Math.ceil(cols / maxBins));
  const rowBins = Math.ceil(rows / rowFactor);
  const colBins = Math.ceil(cols / colFactor);
  const mean = new Float64Array(rowBins * colBins);
  for (let k = 0; k < row.length; k++) {
    const r = row[k];
    const c = col[k];
    if (r < rows && c < cols) mean[Math.floor(r / rowFactor) * colBins + Math.floor(c / colFactor)] += value(k);
  }
  for (let br = 0; br < rowBins; br++) {
    const h = Math.min(rowFactor, rows - br * rowFactor);
    for (let bc = 0; bc < colBins; bc++) mean[br * colBins + bc] /= h * Math.min(colFactor, cols - bc * colFactor);
  }
  return { rowFactor, colFactor, rowBins, colBins, mean };
}

/**
 * Indices of at most ~maxPoints samples of a trace that keep its shape: all indices when short, otherwise the
 * first, minimum and maximum of each bucket in time order, so spikes and resets survive the reduction.
 */
export function decimate(trace: ArrayLike<number>, maxPoints: number): number[] {
  const n = trace.length;
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  const buckets = Math.max(1, Math.floor(maxPoints / 3));
  const out: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * n) / buckets);
    const to = Math.floor(((b + 1) * n) / buckets);
    let lo = from;
    let hi = from;
    for (let i = from + 1; i < to; i++) {
      if (trace[i] < trace[lo]) lo = i;
      if (trace[i] > trace[hi]) hi = i;
    }
    for (const i of [...new Set([from, lo, hi])].sort((x, y) => x - y)) out.push(i);
  }
  return out;
}

/** Up to `count` indices spread evenly over 0..n−1 (all of them when count ≥ n). */
export function evenSample(n: number, count: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.floor(((i + 0.5) * n) / count));
}
