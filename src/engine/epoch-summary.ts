/**
 * From an epoch's recorded spikes and voltages to its loss terms, the gradient coefficients of MODEL.md section 4,
 * statistics and figure data. Engines record activity in different layouts, described by strides (ActivityLayout);
 * the per-(trial, neuron) summaries of that activity cross into this module in one layout, b·N + j (TrialSummaries),
 * whoever computes them.
 */
import type { EpochResult, EpochStatistics, StreamState, TrialActivity } from "./engine.js";
import {
  cvLoss,
  firingRateLoss,
  isiCv,
  membraneVarianceLoss,
  silentPenaltyLoss,
  thresholdRatio,
  totalLoss,
} from "../model/losses.js";
import { EpochDrive, NetworkSpec } from "../model/network.js";
import { cellTypeStats, nanMeanRows } from "../model/statistics.js";
import { SpikeTrainLayout, vanRossumLoss } from "../model/van-rossum.js";

/** Index of (trial b, step t, neuron j) = b·sb + t·st + j·sj; voltages[v(b,t,j)] is V after step t. */
export interface ActivityLayout extends SpikeTrainLayout {
  spikes: ArrayLike<number>;
  voltages: ArrayLike<number>;
  /** Offset added to the spike index to find V after that step (1 step ahead where v_t is stored from t = 0). */
  voltageOffset: number;
}

/**
 * What the epoch's statistics and losses need of each (trial b, neuron j), every array indexed b·N + j: the spike
 * train's count, first and last spike step (0 without spikes) and the sum and sum of squares of its ISIs; the mean
 * and unbiased std of V over the epoch's steps. trialSummaries computes them from any layout; an engine may compute
 * them with kernels of its own (sparse-cpu), with the same sums in the same order.
 */
export interface TrialSummaries {
  count: Int32Array;
  first: Int32Array;
  last: Int32Array;
  sum: Float64Array;
  sumSq: Float64Array;
  meanV: Float64Array;
  stdV: Float64Array;
}

/** The epoch's statistics and the loss's gradient coefficients, for the engine's backward. */
export interface EpochSummary extends EpochStatistics {
  /** Gradient coefficients (see losses.ts); present when requested. */
  spikeGrad: Float64Array | null;
  devCoef: Float64Array | null;
  meanCoef: Float64Array | null;
  /** Per (b·N + j): mean of V over the epoch (used with devCoef). */
  meanV: Float64Array;
}

/**
 * The epoch's losses, statistics and gradient coefficients from its activity `a` and that activity's summaries.
 * With a teacher (spec.teacherRecWeight, or a recording: spec.teacherRecording), `teacherSpikes` holds its spikes of the epoch in the same layout as the
 * student's, and `spikeStepGrad` (same indices) receives the van Rossum term's dL/dS when the gradient is requested.
 */
export function summarizeEpoch(
  spec: NetworkSpec,
  a: ActivityLayout,
  summaries: TrialSummaries,
  withGradient: boolean,
  teacherSpikes: ArrayLike<number> | null = null,
  spikeStepGrad: Float64Array | null = null,
): EpochSummary {
  const { trials: B, steps: T, neurons: N } = a;
  const { meanV, stdV } = summaries;
  const counts = new Float64Array(N);
  const glued = new Float64Array(N);
  const perTrialCv = new Float64Array(B * N);

  // Per neuron: spike counts, per-trial CVs (statistics) and the CV of the batch-glued train (the loss, as the
  // original: trial b's steps are positions b·T + t, so consecutive trials add one ISI across their boundary).
  // ISIs are integers, so these sums are exact whatever their order.
  for (let j = 0; j < N; j++) {
    let count = 0;
    let sum = 0;
    let sumSq = 0;
    let lastPos = -1;
    for (let b = 0; b < B; b++) {
      const k = b * N + j;
      const n = summaries.count[k];
      perTrialCv[k] = isiCv(n, summaries.sum[k], summaries.sumSq[k]);
      counts[j] += n;
      if (n === 0) continue;
      if (lastPos >= 0) {
        const isi = b * T + summaries.first[k] - lastPos;
        sum += isi;
        sumSq += isi * isi;
      }
      sum += summaries.sum[k];
      sumSq += summaries.sumSq[k];
      count += n;
      lastPos = b * T + summaries.last[k];
    }
    glued[j] = isiCv(count, sum, sumSq);
  }

  const durationS = (B * T * spec.constants.dt) / 1000;
  const w = spec.lossWeights;
  const spikeGrad = withGradient ? new Float64Array(N) : null;
  const coefs = withGradient ? { devCoef: new Float64Array(B * N), meanCoef: new Float64Array(B * N) } : null;
  const terms = {
    firing_rate: firingRateLoss(counts, durationS, spec.targets.rate, spikeGrad, w.firing_rate),
    cv: cvLoss(glued, spec.targets.cv),
    silent_penalty: silentPenaltyLoss(counts, durationS, spec.targets.alpha, spikeGrad, w.silent_penalty),
    membrane_variance: membraneVarianceLoss(meanV, stdV, T, spec.targets.theta, spec.targets.ratio, coefs, w.membrane_variance),
    van_rossum: teacherSpikes
      ? vanRossumLoss(a, a.spikes, teacherSpikes, spec.constants.dt, spec.vanRossum, withGradient ? spikeStepGrad : null, w.van_rossum)
      : 0,
  };
  const rates = Float32Array.from(counts, (c) => c / durationS);
  const cvs = Float32Array.from(nanMeanRows(perTrialCv, B, N));
  const ratios = new Float32Array(N);
  for (let k = 0; k < B * N; k++) ratios[k % N] += thresholdRatio(meanV[k], stdV[k], spec.targets.theta[k % N]) / B;
  return {
    losses: { ...terms, total: totalLoss(terms, w) },
    stats: cellTypeStats(rates, cvs, ratios, spec.constants.cellType, spec.cellTypeNames),
    rates,
    cvs,
    ratios,
    spikeGrad,
    devCoef: coefs?.devCoef ?? null,
    meanCoef: coefs?.meanCoef ?? null,
    meanV,
  };
}

/** Two-pass mean and unbiased std over the epoch's steps of V per (trial, neuron), into mean[b·N + j], std[b·N + j]. */
export function voltageMoments(a: ActivityLayout, mean: Float64Array, std: Float64Array, order = memoryOrder(a)): void {
  const { steps: T } = a;
  const n = order.k.length;
  const { voltages } = a;
  const { offset } = order;
  // Steps outermost and (trial, neuron) in memory order, accumulating in memory order too: every pass streams
  // through the recorded voltages once. Each (trial, neuron) still sums over steps in increasing order.
  const sum = new Float64Array(n);
  const m = new Float64Array(n);
  for (let t = 0; t < T; t++) {
    const base = t * a.st + a.voltageOffset;
    for (let i = 0; i < n; i++) sum[i] += voltages[base + offset[i]];
  }
  for (let i = 0; i < n; i++) m[i] = sum[i] / T;
  sum.fill(0);
  for (let t = 0; t < T; t++) {
    const base = t * a.st + a.voltageOffset;
    for (let i = 0; i < n; i++) {
      const d = voltages[base + offset[i]] - m[i];
      sum[i] += d * d;
    }
  }
  for (let i = 0; i < n; i++) {
    mean[order.k[i]] = m[i];
    std[order.k[i]] = Math.sqrt(sum[i] / (T - 1));
  }
}

/**
 * Every (trial, neuron) of a step in the layout's memory order: k[n] = b·N + j and offset[n] = b·sb + j·sj, so that
 * loops over a step read the recorded arrays sequentially.
 */
interface MemoryOrder {
  k: Int32Array;
  offset: Int32Array;
}

function memoryOrder(a: ActivityLayout): MemoryOrder {
  const { trials: B, neurons: N } = a;
  const k = new Int32Array(B * N);
  const offset = new Int32Array(B * N);
  let n = 0;
  const visit = (b: number, j: number) => {
    k[n] = b * N + j;
    offset[n++] = b * a.sb + j * a.sj;
  };
  if (a.sb <= a.sj) for (let j = 0; j < N; j++) for (let b = 0; b < B; b++) visit(b, j);
  else for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) visit(b, j);
  return { k, offset };
}

/** The summaries of activity recorded in any layout, each pass over the recording in its memory order. */
export function trialSummaries(a: ActivityLayout): TrialSummaries {
  const order = memoryOrder(a);
  const n = a.trials * a.neurons;
  const count = new Int32Array(n);
  const first = new Int32Array(n);
  const last = new Int32Array(n);
  const sum = new Float64Array(n);
  const sumSq = new Float64Array(n);
  const meanV = new Float64Array(n);
  const stdV = new Float64Array(n);
  for (let t = 0; t < a.steps; t++) {
    const base = t * a.st;
    for (let m = 0; m < n; m++) {
      if (!a.spikes[base + order.offset[m]]) continue;
      const k = order.k[m];
      if (count[k] === 0) first[k] = t;
      else {
        const isi = t - last[k];
        sum[k] += isi;
        sumSq[k] += isi * isi;
      }
      last[k] = t;
      count[k]++;
    }
  }
  voltageMoments(a, meanV, stdV, order);
  return { count, first, last, sum, sumSq, meanV, stdV };
}

/** Conductance (rise + decay) of slot l for (trial, step, neuron), in whatever layout the engine keeps. */
export type ConductanceAt = (b: number, t: number, j: number, l: number) => number;

/** Pre-step membrane potential v_t for (trial, step, neuron). */
export type VoltageAt = (b: number, t: number, j: number) => number;

const TRACE_NEURONS_PER_TYPE = 3;

/**
 * The designated trial's activity for figures. The sample neuron is, as in the original, the first excitatory
 * neuron that spiked and received both excitatory and inhibitory recurrent conductance, else the first excitatory one.
 */
export function extractTrialActivity(
  spec: NetworkSpec,
  epoch: number,
  a: ActivityLayout,
  /** Every trial's spike counts, b·N + j (TrialSummaries.count, copied). */
  trialCounts: Int32Array,
  inputs: { data: Uint8Array; numInputs: number },
  preStepV: VoltageAt,
  conductance: ConductanceAt,
): TrialActivity {
  const c = spec.constants;
  const { steps: T, neurons: N } = a;
  const b = spec.plotTrial;
  const S = c.numSlots;
  const spikeAt = (t: number, j: number) => a.spikes[b * a.sb + t * a.st + j * a.sj] !== 0;

  // Spikes per (step, population) over all trials (figure epochs only: B·T·(N + inputs) reads).
  const B = a.trials;
  const P = c.numSources;
  const trialSpikeCounts = trialCounts.slice();
  const populationSpikes = new Int32Array(T * P);
  // The same pass counts each neuron's intervals between consecutive spikes of a trial, by cell type and length.
  const isiSteps = new Int32Array(c.numRecTypes * T);
  const lastSpike = new Int32Array(N);
  for (let tr = 0; tr < B; tr++) {
    lastSpike.fill(-1);
    for (let t = 0; t < T; t++)
      for (let j = 0; j < N; j++) {
        if (a.spikes[tr * a.sb + t * a.st + j * a.sj] === 0) continue;
        populationSpikes[t * P + c.cellType[j]]++;
        if (lastSpike[j] >= 0) isiSteps[c.cellType[j] * T + t - lastSpike[j]]++;
        lastSpike[j] = t;
      }
  }
  for (let tr = 0; tr < B; tr++)
    for (let t = 0; t < T; t++) {
      const row = (tr * T + t) * inputs.numInputs;
      for (let i = 0; i < inputs.numInputs; i++) if (inputs.data[row + i]) populationSpikes[t * P + c.inputSource[i]]++;
    }

  const spikePtr = new Int32Array(N + 1);
  const steps: number[] = [];
  for (let j = 0; j < N; j++) {
    for (let t = 0; t < T; t++) if (spikeAt(t, j)) steps.push(t);
    spikePtr[j + 1] = steps.length;
  }
  const M = inputs.numInputs;
  const inputSpikePtr = new Int32Array(M + 1);
  const inputSteps: number[] = [];
  for (let i = 0; i < M; i++) {
    for (let t = 0; t < T; t++) if (inputs.data[(b * T + t) * M + i]) inputSteps.push(t);
    inputSpikePtr[i + 1] = inputSteps.length;
  }

  const excitatorySlots: number[] = [];
  const inhibitorySlots: number[] = [];
  for (let l = 0; l < S; l++) {
    if (c.slotSource[l] >= c.numRecTypes) continue;
    (c.slotSource[l] === 0 ? excitatorySlots : inhibitorySlots).push(l);
  }
  const receives = (j: number, slots: number[]) => {
    for (let t = 0; t < T; t++) for (const l of slots) if (conductance(b, t, j, l) > 0) return true;
    return false;
  };
  let sample = -1;
  let firstExc = -1;
  for (let j = 0; j < N && sample < 0; j++) {
    if (c.cellType[j] !== 0) continue;
    if (firstExc < 0) firstExc = j;
    if (spikePtr[j + 1] > spikePtr[j] && receives(j, excitatorySlots) && receives(j, inhibitorySlots)) sample = j;
  }
  if (sample < 0) sample = Math.max(firstExc, 0);

  const sampleVoltage = new Float32Array(T);
  const sampleConductance = new Float32Array(T * S);
  const sampleCurrent = new Float32Array(T * S);
  for (let t = 0; t < T; t++) {
    sampleVoltage[t] = a.voltages[b * a.sb + t * a.st + sample * a.sj + a.voltageOffset];
    const v = preStepV(b, t, sample);
    for (let l = 0; l < S; l++) {
      const g = conductance(b, t, sample, l);
      sampleConductance[t * S + l] = g;
      sampleCurrent[t * S + l] = g * (v - c.eSyn[l]);
    }
  }

  // A few neurons per cell type, preferring ones that spiked, for the voltage-trace figure.
  const traces: number[] = [];
  for (let k = 0; k < c.numRecTypes; k++) {
    const ofType = [];
    for (let j = 0; j < N; j++) if (c.cellType[j] === k) ofType.push(j);
    ofType.sort((x, y) => spikePtr[y + 1] - spikePtr[y] - (spikePtr[x + 1] - spikePtr[x]) || x - y);
    traces.push(...ofType.slice(0, TRACE_NEURONS_PER_TYPE));
  }
  const traceVoltages = new Float32Array(traces.length * T);
  traces.forEach((j, n) => {
    for (let t = 0; t < T; t++) traceVoltages[n * T + t] = a.voltages[b * a.sb + t * a.st + j * a.sj + a.voltageOffset];
  });

  return {
    epoch,
    steps: T,
    dt: c.dt,
    spikePtr,
    spikeSteps: Int32Array.from(steps),
    inputSpikePtr,
    inputSpikeSteps: Int32Array.from(inputSteps),
    sampleNeuron: sample,
    sampleVoltage,
    sampleConductance,
    sampleCurrent,
    trialSpikeCounts,
    populationSpikes,
    isiSteps,
    traceNeurons: Int32Array.from(traces),
    traceVoltages,
  };
}

/** The engine-independent part of an epoch's result. */
export function epochResult(
  epoch: number,
  summary: EpochSummary,
  grads: { recGrad: Float32Array | null; ffGrad: Float32Array | null },
  finalState: StreamState,
  activity: TrialActivity | null,
  drive: EpochDrive,
): EpochResult {
  // The input's part of the stream state and of the figures' activity (odour inputs only).
  if (drive.ou) finalState.ou = drive.ou;
  if (activity && drive.odourMixture) activity.odourMixture = drive.odourMixture;
  return { epoch, losses: summary.losses, stats: summary.stats, rates: summary.rates, cvs: summary.cvs, ratios: summary.ratios, ...grads, finalState, activity };
}
