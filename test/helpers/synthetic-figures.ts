/**
 * A plausible, deterministic FigureData without running a simulation, for the figure tests:
 * assembly-structured sparse weights, Poisson spikes, an OU-like voltage with resets, decaying conductances.
 */
import type { TrialActivity } from "../../src/engine/engine.js";
import type { FigureData, HistoryRow, NetworkView } from "../../src/report/figure-data.js";

export interface SyntheticOptions {
  neurons: number;
  inputs: number;
  steps: number;
  assemblies: number;
  seed: number;
  /** Epoch of the set and length of its history (default 40 of 500). */
  epoch?: number;
  totalEpochs?: number;
}

/** mulberry32: tiny, fast, good enough for test data, and the same in every run and on every machine. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;

const normal = (rng: Rng): number => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());

/** Gap to the next success of a Bernoulli(p) sequence, ≥ 1: visits only the hits, so sparse sampling is O(hits). */
const geometricGap = (rng: Rng, p: number): number => (p >= 1 ? 1 : 1 + Math.floor(Math.log(1 - rng()) / Math.log(1 - p)));

/** Lognormal with the given mean and variance, parameterised as the original's "linear" mode. */
function lognormal(rng: Rng, mean: number, variance: number): number {
  const s2 = Math.log(1 + variance / (mean * mean));
  return Math.exp(Math.log(mean) - s2 / 2 + Math.sqrt(s2) * normal(rng));
}

const CELL_TYPES = ["excitatory", "inhibitory"];
const INPUT_TYPES = ["mitral"];
/** Recurrent connection probability within an assembly per presynaptic type, and between assemblies. */
const P_WITHIN = [0.2, 0.3];
const P_BETWEEN = 0.02;
const P_FEEDFORWARD = 0.02;
const WEIGHT = [
  { mean: 0.4, variance: 0.2 },
  { mean: 0.5, variance: 0.2 },
];
const SLOTS: NetworkView["slots"] = [
  { name: "AMPA", source: "excitatory", excitatory: true, gBar: 0.7 },
  { name: "NMDA", source: "excitatory", excitatory: true, gBar: 0.1 },
  { name: "GABA_A", source: "inhibitory", excitatory: false, gBar: 1.5 },
  { name: "AMPA", source: "mitral", excitatory: true, gBar: 0.7 },
  { name: "NMDA", source: "mitral", excitatory: true, gBar: 0.1 },
];
const SLOT_TAU_MS = [5, 70, 6, 5, 70];
/** Presynaptic events per second arriving in each slot of the sample neuron. */
const SLOT_EVENT_HZ = [120, 120, 60, 180, 180];
const E_SYN = (excitatory: boolean): number => (excitatory ? 0 : -70);
const THETA = [-38, -45];
const REST = [-60, -60];
const TARGET_RATE = [0.5, 2];
const TRACES_PER_TYPE = 3;

function network(o: SyntheticOptions, rng: Rng): NetworkView {
  const N = o.neurons;
  const cellType = new Int32Array(N);
  for (let j = Math.round(0.8 * N); j < N; j++) cellType[j] = 1;
  for (let j = N - 1; j > 0; j--) {
    const k = Math.floor(rng() * (j + 1));
    [cellType[j], cellType[k]] = [cellType[k], cellType[j]];
  }
  const assemblySize = Math.floor(N / o.assemblies);
  const assemblyOf = (j: number): number => (j < assemblySize * o.assemblies ? Math.floor(j / assemblySize) : -1);
  const recPre: number[] = [];
  const recPost: number[] = [];
  const recWeight: number[] = [];
  for (let pre = 0; pre < N; pre++) {
    const t = cellType[pre];
    const a = assemblyOf(pre);
    // Walk the row in runs of constant probability (before, inside and after the own assembly).
    const from = a >= 0 ? a * assemblySize : 0;
    const to = a >= 0 ? from + assemblySize : 0;
    const runs: [number, number, number][] = [
      [0, from, P_BETWEEN],
      [from, to, P_WITHIN[t]],
      [to, N, P_BETWEEN],
    ];
    for (const [lo, hi, p] of runs) {
      for (let post = lo - 1 + geometricGap(rng, p); post < hi; post += geometricGap(rng, p)) {
        if (post === pre) continue;
        recPre.push(pre);
        recPost.push(post);
        recWeight.push(lognormal(rng, WEIGHT[t].mean, WEIGHT[t].variance));
      }
    }
  }
  const ffPre: number[] = [];
  const ffPost: number[] = [];
  const ffWeight: number[] = [];
  for (let pre = 0; pre < o.inputs; pre++) {
    for (let post = geometricGap(rng, P_FEEDFORWARD) - 1; post < N; post += geometricGap(rng, P_FEEDFORWARD)) {
      ffPre.push(pre);
      ffPost.push(post);
      ffWeight.push(lognormal(rng, 0.4, 0.2));
    }
  }
  return {
    cellTypeNames: CELL_TYPES,
    inputTypeNames: INPUT_TYPES,
    cellType,
    inputType: new Int32Array(o.inputs),
    assemblySize,
    numAssemblies: o.assemblies,
    recPre: Int32Array.from(recPre),
    recPost: Int32Array.from(recPost),
    recWeight: Float32Array.from(recWeight),
    ffPre: Int32Array.from(ffPre),
    ffPost: Int32Array.from(ffPost),
    ffWeight: Float32Array.from(ffWeight),
    theta: THETA,
    restingPotential: REST,
    slots: SLOTS,
  };
}

/** Poisson spike trains as CSR over `steps` steps of `dt` ms. */
function poissonTrains(rates: ArrayLike<number>, steps: number, dt: number, rng: Rng): { ptr: Int32Array; spikeSteps: Int32Array } {
  const ptr = new Int32Array(rates.length + 1);
  const out: number[] = [];
  for (let j = 0; j < rates.length; j++) {
    const p = Math.min(0.5, (rates[j] * dt) / 1000);
    if (p > 0) for (let s = geometricGap(rng, p) - 1; s < steps; s += geometricGap(rng, p)) out.push(s);
    ptr[j + 1] = out.length;
  }
  return { ptr, spikeSteps: Int32Array.from(out) };
}

/** Fluctuating subthreshold voltage that resets at the given spike steps. */
function voltageTrace(spikes: ArrayLike<number>, steps: number, type: number, rng: Rng): Float32Array {
  const v = new Float32Array(steps);
  const mean = REST[type] + 0.45 * (THETA[type] - REST[type]);
  let x = mean;
  let k = 0;
  for (let s = 0; s < steps; s++) {
    x += (mean - x) / 20 + 1.2 * normal(rng);
    if (k < spikes.length && spikes[k] === s) {
      x = REST[type];
      k++;
    }
    v[s] = x;
  }
  return v;
}

function activity(o: SyntheticOptions, epoch: number, net: NetworkView, rates: Float64Array, rng: Rng): TrialActivity {
  const dt = 1;
  const steps = o.steps;
  const rec = poissonTrains(rates, steps, dt, rng);
  const inp = poissonTrains(new Float64Array(o.inputs).fill(6), steps, dt, rng);
  const spiked = (j: number): boolean => rec.ptr[j + 1] > rec.ptr[j];
  const firstOf = (t: number): number => {
    const j = net.cellType.findIndex((c, i) => c === t && spiked(i));
    return j >= 0 ? j : Math.max(0, net.cellType.indexOf(t));
  };
  const sampleNeuron = firstOf(0);
  const traceNeurons: number[] = [];
  for (let t = 0; t < CELL_TYPES.length; t++) {
    const ofType = Array.from(net.cellType.keys()).filter((j) => net.cellType[j] === t);
    traceNeurons.push(...[...ofType.filter(spiked), ...ofType.filter((j) => !spiked(j))].slice(0, TRACES_PER_TYPE));
  }
  const trace = (j: number): Float32Array => voltageTrace(rec.spikeSteps.subarray(rec.ptr[j], rec.ptr[j + 1]), steps, net.cellType[j], rng);
  const sampleVoltage = trace(sampleNeuron);
  const traceVoltages = new Float32Array(traceNeurons.length * steps);
  traceNeurons.forEach((j, i) => traceVoltages.set(trace(j), i * steps));
  const S = SLOTS.length;
  const sampleConductance = new Float32Array(steps * S);
  const sampleCurrent = new Float32Array(steps * S);
  const g = new Float64Array(S);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < S; i++) {
      g[i] *= Math.exp(-dt / SLOT_TAU_MS[i]);
      if (rng() < (SLOT_EVENT_HZ[i] * dt) / 1000) g[i] += SLOTS[i].gBar * lognormal(rng, 0.4, 0.2);
      sampleConductance[s * S + i] = g[i];
      sampleCurrent[s * S + i] = g[i] * (sampleVoltage[s] - E_SYN(SLOTS[i].excitatory));
    }
  }
  // 10 trials: the designated one's counts, and Poisson counts of the same mean in the others (Knuth's method).
  const N = rec.ptr.length - 1;
  const trialSpikeCounts = new Int32Array(10 * N);
  const poisson = (mean: number) => {
    const limit = Math.exp(-mean);
    let k = 0;
    for (let p = rng(); p > limit; p *= rng()) k++;
    return k;
  };
  for (let j = 0; j < N; j++) {
    const n = rec.ptr[j + 1] - rec.ptr[j];
    for (let b = 0; b < 10; b++) trialSpikeCounts[b * N + j] = b === 0 ? n : poisson(n);
  }
  // Spikes per (step, population), over the 10 trials: the designated trial's trains, as if every trial were it.
  const P = CELL_TYPES.length + INPUT_TYPES.length;
  const populationSpikes = new Int32Array(steps * P);
  const addTrains = (ptr: Int32Array, spikeSteps: Int32Array, type: ArrayLike<number>, offset: number) => {
    for (let j = 0; j + 1 < ptr.length; j++) for (let k = ptr[j]; k < ptr[j + 1]; k++) populationSpikes[spikeSteps[k] * P + offset + type[j]] += 10;
  };
  addTrains(rec.ptr, rec.spikeSteps, net.cellType, 0);
  addTrains(inp.ptr, inp.spikeSteps, new Int32Array(inp.ptr.length - 1), CELL_TYPES.length);
  // Intervals by cell type and length, over the 10 trials: again the designated trial's, ten times.
  const isiSteps = new Int32Array(CELL_TYPES.length * steps);
  for (let j = 0; j + 1 < rec.ptr.length; j++) for (let k = rec.ptr[j] + 1; k < rec.ptr[j + 1]; k++) isiSteps[net.cellType[j] * steps + rec.spikeSteps[k] - rec.spikeSteps[k - 1]] += 10;
  return {
    isiSteps,
    epoch,
    steps,
    dt,
    trialSpikeCounts,
    populationSpikes,
    spikePtr: rec.ptr,
    spikeSteps: rec.spikeSteps,
    inputSpikePtr: inp.ptr,
    inputSpikeSteps: inp.spikeSteps,
    sampleNeuron,
    sampleVoltage,
    sampleConductance,
    sampleCurrent,
    traceNeurons: Int32Array.from(traceNeurons),
    traceVoltages,
  };
}

/** Losses decaying towards a floor and rates relaxing from their initial values to the targets, epoch 0 logged as inf. */
function history(epochs: number, rng: Rng): HistoryRow[] {
  const terms = ["total_loss", "firing_rate_loss", "cv_loss", "silent_penalty_loss", "membrane_variance_loss"];
  const rows: HistoryRow[] = [{ epoch: 0, ...Object.fromEntries(terms.map((t) => [t, Infinity])) }];
  for (let e = 1; e <= epochs; e++) {
    const decay = Math.exp(-e / 15);
    const jitter = (): number => Math.exp(0.15 * normal(rng));
    const losses = {
      firing_rate_loss: (0.05 + 2 * decay) * jitter(),
      cv_loss: (0.1 + 0.3 * decay) * jitter(),
      silent_penalty_loss: (0.01 + 0.5 * decay) * jitter(),
      membrane_variance_loss: (0.02 + 0.1 * decay) * jitter(),
    };
    rows.push({
      epoch: e,
      total_loss: Object.values(losses).reduce((a, b) => a + b, 0),
      ...losses,
      "firing_rate/excitatory/mean": TARGET_RATE[0] + (0.02 - TARGET_RATE[0]) * decay * jitter(),
      "firing_rate/inhibitory/mean": TARGET_RATE[1] + (11.7 - TARGET_RATE[1]) * decay * jitter(),
    });
  }
  return rows;
}

/** Poisson(λ) sample: Knuth's product method for small λ, a rounded normal beyond. */
function poisson(rng: Rng, lambda: number): number {
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal(rng)));
  const limit = Math.exp(-lambda);
  let k = 0;
  for (let p = rng(); p > limit; p *= rng()) k++;
  return k;
}

/** Trials per epoch and epochs per interval of the synthetic data. */
const TRIALS = 10;
const INTERVAL_EPOCHS = 5;

/** The interval's epochs: Poisson spike counts of each neuron over TRIALS trials, as rates; CVs scattered around 1. */
function interval(o: SyntheticOptions, epoch: number, rates: Float64Array, rng: Rng): FigureData["interval"] {
  const seconds = (TRIALS * o.steps) / 1000;
  const epochs = Array.from({ length: INTERVAL_EPOCHS }, (_, k) => epoch - INTERVAL_EPOCHS + 1 + k);
  return {
    trials: TRIALS,
    epochs,
    rates: epochs.map(() => Float32Array.from(rates, (r) => poisson(rng, r * seconds) / seconds)),
    cvs: epochs.map(() => Float32Array.from(rates, (r) => (r * o.steps < 3000 ? NaN : Math.max(0.05, 1 + 0.3 * normal(rng))))),
  };
}

/** The initial weights: the current ones scattered by ±20 % (lognormal), as if training had moved them. */
const initialWeights = (net: NetworkView, rng: Rng): FigureData["initialWeights"] => ({
  rec: Float32Array.from(net.recWeight, (w) => w * Math.exp(0.2 * normal(rng))),
  ff: Float32Array.from(net.ffWeight, (w) => w * Math.exp(0.2 * normal(rng))),
});

export function syntheticFigureData(o: SyntheticOptions): FigureData {
  const rng = mulberry32(o.seed);
  const extra = mulberry32(o.seed ^ 0x5eed);
  const net = network(o, rng);
  // Silent cells in both types, and lognormal rates around the targets for the rest.
  const rates = Float64Array.from(net.cellType, (t) => (rng() < (t === 0 ? 0.2 : 0.05) ? 0 : lognormal(rng, t === 0 ? 2 : 10, t === 0 ? 4 : 50)));
  const epoch = o.epoch ?? 40;
  return {
    epoch,
    totalEpochs: o.totalEpochs ?? 500,
    network: net,
    activity: activity(o, epoch, net, rates, rng),
    rates: Float32Array.from(rates, (r) => r * (0.8 + 0.4 * rng())),
    cvs: Float32Array.from(rates, (r) => (r < 0.5 ? NaN : Math.max(0.05, 1 + 0.3 * normal(rng)))),
    // A stream of their own, so that the other fields stay as they were before these existed.
    interval: interval(o, epoch, rates, extra),
    initialWeights: initialWeights(net, extra),
    targets: { firingRate: TARGET_RATE, cv: 1 },
    rasterNeurons: 80,
    history: history(epoch, rng),
  };
}
