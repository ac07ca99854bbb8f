/**
 * Gradient averaging, global-norm clipping and Adam, as pure functions over typed arrays (MODEL.md 5.2 step 7).
 * The trainable vector is the concatenation of recurrent and feedforward edge weights; the parts are kept as
 * separate arrays but treated as one vector for the norm.
 *
 * optimizerStep does the clip, Adam, and the projection or e^θ in one pass for speed; clipGlobalNorm, adamStep and
 * projectNonNegative are those steps one by one, as their definitions: test/optimizer.test.ts checks that
 * optimizerStep equals their composition bit for bit, and each against hand-computed (torch) values. The coordinator
 * takes Adam's part of that pass with a SIMD kernel (adam-kernel.ts), bit-identical to it.
 */
import { type AdamCoefficients, AdamKernel } from "./adam-kernel.js";
import { allFinite32 } from "../platform/finite.js";

export interface AdamState {
  /** Optimizer steps taken so far. */
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export interface AdamHyperparameters {
  learningRate: number;
  betas: [number, number];
  eps: number;
}

export function newAdamState(sizes: number[]): AdamState {
  return { step: 0, m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)) };
}

/**
 * Sums per-epoch gradients into float64 accumulators in the order given (epoch order), then divides by the count:
 * the result does not depend on which worker computed what or when results arrived.
 */
export function averageGradients(perEpoch: Float32Array[][]): Float64Array[] {
  const reducer = new GradientReducer();
  reducer.start(perEpoch.length);
  perEpoch.forEach((grads, k) => reducer.add(k, grads));
  return reducer.mean();
}

/** Epochs added per pass over the sums (fold1 … fold4). */
const FOLD_WIDTH = 4;

/**
 * averageGradients fed one epoch at a time, in whatever order results arrive: `add` keeps an epoch, and `foldReady`
 * adds kept epochs that continue the epoch order to the float64 sums, four per pass over the sums
 * (((s + g₀) + g₁) + g₂) + g₃ — the same additions in the same order as one at a time, so the mean is bit-identical to
 * averageGradients over the epochs in order. The caller folds while the interval's last results are still on their
 * way, a pass per four epochs (the reduce is memory-bound: one pass over the sums for four epochs, not four); the
 * epochs that end the interval are folded as soon as they are all in, and that pass also divides by the count. The
 * sums are reused from interval to interval (the mean is valid until the next start()). A worker that computes an
 * interval's first epochs folds them with a reducer of its own (prefixSums), and the coordinator's continues from those
 * sums (resumeFrom): the same additions in the same order.
 */
export class GradientReducer {
  private sums: Float64Array[] = [];
  private readonly waiting = new Map<number, Float32Array[]>();
  private next = 0;
  private count = 0;
  /** Σg² of the sums, where they came whole from resumeFrom with it; null once anything is folded into them. */
  private sumsSquares: number | null = null;

  /** A new interval of `count` epochs. */
  start(count: number): void {
    this.count = count;
    this.next = 0;
    this.waiting.clear();
    this.sumsSquares = null;
  }

  /** Keeps the gradients of the interval's `index`-th epoch (in epoch order); an epoch already added is left as it is. */
  add(index: number, grads: Float32Array[]): void {
    if (index < this.next || this.waiting.has(index)) return;
    this.waiting.set(index, grads);
  }

  /**
   * Folds the kept epochs that continue the epoch order into the sums, in whole passes of four, or all of them where
   * they end the interval.
   */
  foldReady(): void {
    this.fold(false);
  }

  /** Folds the kept epochs that continue the epoch order: in whole passes of four unless `all` or they end the interval. */
  private fold(all: boolean): void {
    const run: Float32Array[][] = [];
    for (let k = this.next; this.waiting.has(k); k++) run.push(this.waiting.get(k)!);
    if (!all && this.next + run.length < this.count) run.length -= run.length % FOLD_WIDTH;
    if (run.length === 0) return;
    if (this.next === 0) {
      if (this.sums.length !== run[0].length || this.sums.some((acc, p) => acc.length !== run[0][p].length)) this.sums = run[0].map((g) => new Float64Array(g.length));
      else for (const acc of this.sums) acc.fill(0);
    }
    for (let k = 0; k < run.length; k++) this.waiting.delete(this.next + k);
    this.sumsSquares = null;
    const last = this.next + run.length === this.count;
    this.sums.forEach((acc, p) => foldParts(acc, run.map((grads) => grads[p]), last ? this.count : 1));
    this.next += run.length;
  }

  /**
   * Continues from the sums of the interval's first `count` epochs, folded by another reducer (a worker that computed
   * them all: prefixSums), which this one takes as its own: the mean where they are all the interval's epochs. Epochs
   * kept meanwhile continue them. `sumSquares` is their Σg² (sumOfSquares), where the caller has it: meanSumSquares()
   * returns it while nothing else is folded into the sums.
   */
  resumeFrom(count: number, sums: Float64Array[], sumSquares: number | null = null): void {
    if (this.next !== 0 || count < 1 || count > this.count) throw new Error(`gradient reduce: cannot continue from ${count} of ${this.count} epochs after ${this.next}`);
    for (let k = 0; k < count; k++) this.waiting.delete(k);
    this.sums = sums;
    this.next = count;
    this.sumsSquares = sumSquares;
    this.foldReady();
  }

  /**
   * Folds every kept epoch, which must be the interval's first ones, and returns the sums, which belong to the caller
   * from then on: the sum of those epochs' gradients, for another reducer to continue (resumeFrom) exactly as this one
   * would have, or the mean where they are all the interval's epochs.
   */
  prefixSums(): Float64Array[] {
    const kept = this.waiting.size;
    this.fold(true);
    if (kept === 0 || this.next !== kept) throw new Error(`gradient reduce: the ${kept} kept epochs are not the interval's first ones`);
    const sums = this.sums;
    this.sums = [];
    return sums;
  }

  /** The mean over all `count` epochs: once per interval. Throws when some epochs are missing. */
  mean(): Float64Array[] {
    this.foldReady();
    if (this.next !== this.count) throw new Error(`gradient reduce: ${this.next + this.waiting.size} of ${this.count} epochs added`);
    return this.sums;
  }

  /**
   * The mean's Σg² (sumOfSquares, bit for bit) where it is known without a pass over the mean: the mean came whole
   * from resumeFrom with its Σg² (a reduce group of the whole interval, which the pool checked by that sum); else null.
   */
  meanSumSquares(): number | null {
    return this.next === this.count ? this.sumsSquares : null;
  }
}

/**
 * acc ← ((acc + g₀) + g₁ …)/divisor, element-wise, up to four gradients per pass (each element of the sums is read
 * and written once per pass: the reduce is memory-bound); only the last pass divides (x/1 is x exactly). The sums
 * start from zeros, so that the first epoch's sum is 0 + g₀ as averageGradients defines it.
 */
function foldParts(acc: Float64Array, gs: Float32Array[], divisor: number): void {
  for (let k = 0; k < gs.length; k += FOLD_WIDTH) {
    const d = k + FOLD_WIDTH >= gs.length ? divisor : 1;
    const [a, b, c, e] = gs.slice(k, k + FOLD_WIDTH);
    if (e) fold4(acc, a, b, c, e, d);
    else if (c) fold3(acc, a, b, c, d);
    else if (b) fold2(acc, a, b, d);
    else fold1(acc, a, d);
  }
}

// One function per group size, each one loop with no branch: the JIT compiles each once, with all the feedback it needs.
function fold1(acc: Float64Array, a: Float32Array, d: number): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] + a[i]) / d;
}

function fold2(acc: Float64Array, a: Float32Array, b: Float32Array, d: number): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] + a[i] + b[i]) / d;
}

function fold3(acc: Float64Array, a: Float32Array, b: Float32Array, c: Float32Array, d: number): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] + a[i] + b[i] + c[i]) / d;
}

function fold4(acc: Float64Array, a: Float32Array, b: Float32Array, c: Float32Array, e: Float32Array, d: number): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] + a[i] + b[i] + c[i] + e[i]) / d;
}

/** Global L2 norm over all parts. */
export function globalNorm(parts: Float64Array[]): number {
  return Math.sqrt(sumOfSquares(parts));
}

/** torch.nn.utils.clip_grad_norm_'s factor: max_norm / (norm + 1e−6) when that is below 1, else 1. */
function clipCoefficient(norm: number, maxNorm: number): number {
  const coef = maxNorm / (norm + 1e-6);
  return coef < 1 ? coef : 1;
}

/** torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e−6) when that is below 1. Returns the pre-clip norm. */
export function clipGlobalNorm(parts: Float64Array[], maxNorm: number): number {
  const norm = globalNorm(parts);
  const coef = clipCoefficient(norm, maxNorm);
  if (coef < 1) for (const p of parts) for (let i = 0; i < p.length; i++) p[i] *= coef;
  return norm;
}

/**
 * One Adam step in place (torch's formulation: bias-corrected, eps added to sqrt(v̂)). Moments and weights are
 * float32 as in the original; each element is computed in float64 and rounded once.
 */
export function adamStep(weights: Float32Array[], grads: Float64Array[], state: AdamState, h: AdamHyperparameters): void {
  state.step += 1;
  const c = adamCoefficients(h, state.step);
  weights.forEach((w, p) => adamPart(c, 1, grads[p], w, state.m[p], state.v[p], { params: w, m: state.m[p], v: state.v[p], weights: null, project: false }));
}

function adamCoefficients(h: AdamHyperparameters, step: number): AdamCoefficients {
  const [b1, b2] = h.betas;
  return { b1, b2, eps: h.eps, stepSize: h.learningRate / (1 - Math.pow(b1, step)), sqrtBc2: Math.sqrt(1 - Math.pow(b2, step)) };
}

/**
 * Where one part's step goes: the new parameters and moments (the inputs themselves for a step in place), and what
 * else the same pass does: w = e^θ into `weights` (log parameterisation), or the projection onto w ≥ 0 (`project`).
 */
interface AdamOutput {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  weights: Float32Array | null;
  project: boolean;
}

/**
 * Adam over one part with the gradient g·scale (the clip coefficient; g·1 is g exactly), in one pass: m ← β₁m +
 * (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − (lr/(1 − β₁ᵗ))·m / (√v/√(1 − β₂ᵗ) + eps), then e^θ or the projection.
 * Returns the weights the projection moved, or −1 when a new weight is not finite (checked before the projection).
 */
function adamPart(c: AdamCoefficients, scale: number, g: Float64Array, params: Float32Array, m: Float32Array, v: Float32Array, out: AdamOutput): number {
  const { b1, b2, eps, stepSize, sqrtBc2 } = c;
  const { params: p2, m: m2, v: v2, weights, project } = out;
  // w − w is 0 for a finite w and NaN otherwise, so `finite` stays 0 exactly while every new weight is finite.
  let finite = 0;
  let moved = 0;
  // The same step in two loops rather than a branch per element (the loop is bound by its divisions and square root;
  // an Adam step written as a function of its own, even inlined, costs a tenth more).
  if (weights) {
    for (let i = 0; i < params.length; i++) {
      const gi = g[i] * scale;
      const mi = (m2[i] = b1 * m[i] + (1 - b1) * gi);
      const vi = (v2[i] = b2 * v[i] + (1 - b2) * gi * gi);
      const theta = Math.fround((p2[i] = params[i] - (stepSize * Math.fround(mi)) / (Math.sqrt(Math.fround(vi)) / sqrtBc2 + eps)));
      const w = Math.fround((weights[i] = Math.exp(theta)));
      finite += w - w;
    }
    return finite === 0 ? 0 : -1;
  }
  for (let i = 0; i < params.length; i++) {
    const gi = g[i] * scale;
    const mi = (m2[i] = b1 * m[i] + (1 - b1) * gi);
    const vi = (v2[i] = b2 * v[i] + (1 - b2) * gi * gi);
    const w = Math.fround((p2[i] = params[i] - (stepSize * Math.fround(mi)) / (Math.sqrt(Math.fround(vi)) / sqrtBc2 + eps)));
    finite += w - w;
    if (project && w < 0) {
      p2[i] = 0;
      moved++;
    }
  }
  return finite === 0 ? moved : -1;
}

/**
 * What Adam optimises ([hyperparameters] parameterisation): the conductance weights w themselves, projected back onto
 * w ≥ 0 after every step ("linear"), or θ = ln w, so that w = e^θ > 0 always ("log", the original's newer default).
 */
export type Parameterisation = "linear" | "log";

/** θ = ln w per synapse; a zero weight (only reachable by projection) maps to ln 1e−8, a practically dead synapse. */
export function logWeights(w: Float32Array): Float32Array {
  const theta = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) theta[i] = Math.log(Math.max(w[i], 1e-8));
  return theta;
}

/** w = e^θ per synapse (a plain loop: Float32Array.from with a map function is ~15× slower at this size). */
export function expWeights(theta: Float32Array): Float32Array {
  const w = new Float32Array(theta.length);
  for (let i = 0; i < theta.length; i++) w[i] = Math.exp(theta[i]);
  return w;
}

/** Chain rule into log space, in place: ∂L/∂θ = w·∂L/∂w. */
export function logSpaceGradient(grad: Float64Array, w: Float32Array): void {
  for (let i = 0; i < grad.length; i++) grad[i] *= w[i];
}

/** Projection onto w ≥ 0, in place; returns how many weights it moved. */
export function projectNonNegative(w: Float32Array): number {
  let moved = 0;
  for (let i = 0; i < w.length; i++) {
    if (w[i] < 0) {
      w[i] = 0;
      moved++;
    }
  }
  return moved;
}

/** Index of the first non-finite value, or −1. */
export function firstNonFinite(x: ArrayLike<number>): number {
  // The coordinator checks every result's megabytes of float32 gradients and state with a kernel of their own (an
  // element load that sees several array kinds is several times slower); float64 values here are few (a mixture
  // state) or rare (the mean gradient, only once its norm is not finite).
  return x instanceof Float32Array && allFinite32(x) ? -1 : firstNonFiniteScan(x);
}

function firstNonFiniteScan(x: ArrayLike<number>): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

/** Learning-rate schedule ([hyperparameters] lr_schedule and its keys), over the run's updates. */
export interface LearningRateSchedule {
  kind: "constant" | "cosine" | "step";
  /** Peak learning rate. */
  learningRate: number;
  /** Updates of linear warm-up from learningRate/warmupUpdates to learningRate (0 = none). */
  warmupUpdates: number;
  /** cosine: the rate reached at the last update. */
  minLearningRate: number;
  /** step: the rate is multiplied by stepFactor every stepUpdates updates after warm-up. */
  stepUpdates: number;
  stepFactor: number;
}

/**
 * The learning rate of update u (0-based) of a run of `totalUpdates`: linear warm-up over the first warmupUpdates
 * (u + 1)/warmup·lr, then constant; cosine lr_min + (lr − lr_min)·(1 + cos(π·k/K))/2 with k = u − warmup of
 * K = totalUpdates − warmup − 1; or step lr·factor^⌊k/stepUpdates⌋.
 */
export function learningRateAt(s: LearningRateSchedule, u: number, totalUpdates: number): number {
  if (u < s.warmupUpdates) return (s.learningRate * (u + 1)) / s.warmupUpdates;
  const k = u - s.warmupUpdates;
  switch (s.kind) {
    case "constant":
      return s.learningRate;
    case "cosine": {
      const K = Math.max(1, totalUpdates - s.warmupUpdates - 1);
      return s.minLearningRate + ((s.learningRate - s.minLearningRate) * (1 + Math.cos((Math.PI * Math.min(k, K)) / K))) / 2;
    }
    case "step":
      return s.learningRate * Math.pow(s.stepFactor, Math.floor(k / s.stepUpdates));
  }
}

/** What the optimiser holds between updates: the weights, their logarithms under "log", the Adam state. */
export interface OptimizedParameters {
  /** Per part (recurrent, feedforward): the conductance weights. */
  weights: Float32Array[];
  /** Per part: θ = ln w, what Adam optimises under parameterisation = "log"; null under "linear". */
  logWeights: Float32Array[] | null;
  adam: AdamState;
}

export type UpdateStep =
  | { applied: true; gradNorm: number; next: OptimizedParameters }
  | { applied: false; gradNorm: number; problem: string };

/**
 * One update from the interval's mean gradient ∂L/∂w (float64, one array per part, consumed): into the optimised
 * parameters (∂L/∂θ = w·∂L/∂w under "log"; `gradientOf` = "log-parameters" when the gradient is already ∂L/∂θ, as
 * scaling factors' is), global-norm clip, Adam, then the weights (projected onto w ≥ 0, or e^θ).
 * Returns new parameters, so that a non-finite gradient, or a step that would make a weight non-finite, leaves
 * `current` untouched and is reported instead (`partNames` name the parts in that message). `sumSquares` is the
 * gradient's Σg² where the caller has it already (sumOfSquares of `grads` as given; GradientReducer.meanSumSquares):
 * under "log" it is summed anew, over ∂L/∂θ. Working memory
 * (`memory`): `spare`, parameters that nothing refers to any more (those from before `current`), whose moments and θ
 * may be written over instead of new arrays allocated (a default-size step then touches no fresh memory but the new
 * weights); `kernel`, the SIMD kernel that takes Adam's step, e^θ following it in JavaScript under "log" (its results
 * are bit-identical; it keeps two generations of parameters itself, so the moments and θ of the parameters before
 * `current` are written over too).
 */
export function optimizerStep(
  current: OptimizedParameters,
  grads: Float64Array[],
  h: AdamHyperparameters & { maxGradNorm: number },
  partNames: string[],
  gradientOf: "weights" | "log-parameters" = "weights",
  memory: { spare?: OptimizedParameters | null; kernel?: AdamKernel | null } = {},
  sumSquares: number | null = null,
): UpdateStep {
  const { weights, logWeights } = current;
  const inLogSpace = logWeights !== null && gradientOf === "weights";
  if (inLogSpace) grads.forEach((g, p) => logSpaceGradient(g, weights[p]));
  const known = inLogSpace ? null : sumSquares;
  const kernel = memory.kernel ?? null;
  const squares = known ?? sumOfSquares(grads);
  if (!Number.isFinite(squares)) {
    // Σg² of float64 means of float32 values cannot overflow: it is non-finite only where some g is.
    const bad = grads.findIndex((g) => firstNonFinite(g) >= 0);
    return { applied: false, gradNorm: NaN, problem: `${partNames[bad]} gradient is not finite` };
  }
  const gradNorm = Math.sqrt(squares);
  const scale = clipCoefficient(gradNorm, h.maxGradNorm);
  const step = current.adam.step + 1;
  const c = adamCoefficients(h, step);
  const nonFinite = { applied: false, gradNorm, problem: `the step would make a weight non-finite (learning rate ${h.learningRate})` } as const;
  if (kernel) {
    // The kernel's step reads the gradient from its own memory.
    kernel.loadGradient(grads);
    const { moved, params } = kernel.compute(c, scale, logWeights ?? weights, current.adam.m, current.adam.v, !logWeights);
    // Under "log", what must be finite is e^θ, as in adamPart (θ = −∞ gives w = 0).
    const nextWeights = logWeights ? params.map(expWeights) : null;
    if (nextWeights ? nextWeights.some((w) => firstNonFinite(w) >= 0) : moved < 0) return nonFinite;
    const next = kernel.commit();
    return { applied: true, gradNorm, next: { weights: nextWeights ?? next.params, logWeights: nextWeights && next.params, adam: { step, m: next.m, v: next.v } } };
  }
  const spare = memory.spare;
  // Into other arrays than the current ones, which stay as they are: the spare's moments and θ, or new ones. The
  // weights are always new: weights that were sent to workers are never written again. The clip, Adam, and e^θ or
  // the projection are one pass over each part.
  const sized = (parts: Float32Array[] | null | undefined): Float32Array[] | null => (parts && parts.every((a, k) => a.length === grads[k].length) ? parts : null);
  const fresh = (): Float32Array[] => grads.map((g) => new Float32Array(g.length));
  const adam: AdamState = { step, m: sized(spare?.adam.m) ?? fresh(), v: sized(spare?.adam.v) ?? fresh() };
  const params = logWeights ? (sized(spare?.logWeights) ?? fresh()) : fresh();
  const nextWeights = logWeights ? fresh() : params;
  const finite = params.every((p, k) => {
    const out = { params: p, m: adam.m[k], v: adam.v[k], weights: logWeights ? nextWeights[k] : null, project: !logWeights };
    return adamPart(c, scale, grads[k], (logWeights ?? weights)[k], current.adam.m[k], current.adam.v[k], out) >= 0;
  });
  if (!finite) return nonFinite;
  return { applied: true, gradNorm, next: { weights: nextWeights, logWeights: logWeights ? params : null, adam } };
}

/**
 * Σg² over all parts (the global norm's square), in four interleaved sums: element i of every part goes to sum i mod 4,
 * the parts in order, and the four are added as (s₀ + s₁) + (s₂ + s₃). Four independent chains of additions run about
 * twice as fast as one (which waits on every addition's latency), and the order is fixed, so the value is the same
 * bit for bit wherever it is summed: a sum computed elsewhere (the pool's check of a reduce group's sums)
 * is the one optimizerStep would compute, and can be handed to it instead.
 */
export function sumOfSquares(parts: Float64Array[]): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k];
    const n4 = p.length & ~3;
    for (let i = 0; i < n4; i += 4) {
      s0 += p[i] * p[i];
      s1 += p[i + 1] * p[i + 1];
      s2 += p[i + 2] * p[i + 2];
      s3 += p[i + 3] * p[i + 3];
    }
    // The last one to three elements: sums 0, 1, 2 in turn, as if the loop went on.
    if (n4 < p.length) s0 += p[n4] * p[n4];
    if (n4 + 1 < p.length) s1 += p[n4 + 1] * p[n4 + 1];
    if (n4 + 2 < p.length) s2 += p[n4 + 2] * p[n4 + 2];
  }
  return s0 + s1 + (s2 + s3);
}

/**
 * V8 compiles a long loop while it runs (on-stack replacement), before the code after the loop has run even once;
 * that code then has no type feedback, and V8 drops the compiled loop at its exit, call after call, running the
 * coordinator's kernels unoptimised (and allocating a number per operation) for dozens of updates. Running every
 * kernel once on a few values when this module loads gives each of their paths its feedback first.
 */
function primeKernels(): void {
  const g = (): Float32Array[] => [Float32Array.of(0.25, -0.5, 0.125, 1, -2)];
  const reducer = new GradientReducer();
  for (const count of [9, 3, 2]) {
    // Passes of four, four and one epochs; then of three; then of two.
    reducer.start(count);
    for (let k = 0; k < count; k++) reducer.add(k, g());
    reducer.mean();
  }
  firstNonFinite(g()[0]);
  for (const log of [false, true]) {
    const w = [Float32Array.of(0.5, 0.01, 1, 2, 0.25)];
    const current: OptimizedParameters = { weights: w, logWeights: log ? w.map(logWeights) : null, adam: newAdamState([5]) };
    const hp = { learningRate: 0.1, betas: [0.9, 0.999] as [number, number], eps: 1e-8, maxGradNorm: 1 };
    optimizerStep(current, [Float64Array.of(0.5, 3, -1, 0, 2)], hp, ["prime"]);
    optimizerStep(current, [Float64Array.of(0.5, 3, -1, 0, 2)], hp, ["prime"], "weights", { kernel: AdamKernel.create([5]) });
  }
}

primeKernels();
