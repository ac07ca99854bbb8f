/**
 * Gradient averaging, global-norm clipping and Adam, as pure functions over typed arrays (MODEL.md 5.2 step 7).
 * The trainable vector is the concatenation of recurrent and feedforward edge weights; the parts are kept as
 * separate arrays but treated as one vector for the norm.
 */

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

/**
 * averageGradients fed one epoch at a time, in whatever order results arrive: an epoch is added to the float64 sums
 * as soon as every earlier one has been, so the mean is bit-identical to averageGradients over the epochs in order,
 * and most of the reduce is done while the interval's last results are still on their way. The sums are reused from
 * interval to interval (the mean is valid until the next start()).
 */
export class GradientReducer {
  private sums: Float64Array[] = [];
  private readonly waiting = new Map<number, Float32Array[]>();
  private next = 0;
  private count = 0;

  /** A new interval of `count` epochs. */
  start(count: number): void {
    this.count = count;
    this.next = 0;
    this.waiting.clear();
  }

  /** The gradients of the interval's `index`-th epoch (in epoch order); an epoch already added is left as it is. */
  add(index: number, grads: Float32Array[]): void {
    if (index < this.next || this.waiting.has(index)) return;
    this.waiting.set(index, grads);
    for (let g = this.waiting.get(this.next); g !== undefined; g = this.waiting.get(this.next)) {
      this.waiting.delete(this.next);
      this.fold(g, this.next === 0);
      this.next++;
    }
  }

  /** The mean over all `count` epochs, divided in place: once per interval. Throws when some epochs are missing. */
  mean(): Float64Array[] {
    if (this.next !== this.count) throw new Error(`gradient reduce: ${this.next} of ${this.count} epochs added`);
    for (const acc of this.sums) for (let i = 0; i < acc.length; i++) acc[i] /= this.count;
    return this.sums;
  }

  // Adds one epoch's parts to the sums; the first epoch sets them (0 + g, exactly what adding to zeros gives).
  private fold(grads: Float32Array[], first: boolean): void {
    if (first && (this.sums.length !== grads.length || this.sums.some((acc, p) => acc.length !== grads[p].length))) {
      this.sums = grads.map((g) => new Float64Array(g.length));
    }
    grads.forEach((g, p) => {
      const acc = this.sums[p];
      if (first) for (let i = 0; i < acc.length; i++) acc[i] = 0 + g[i];
      else for (let i = 0; i < acc.length; i++) acc[i] += g[i];
    });
  }
}

/** Global L2 norm over all parts. */
export function globalNorm(parts: Float64Array[]): number {
  let s = 0;
  for (const p of parts) for (let i = 0; i < p.length; i++) s += p[i] * p[i];
  return Math.sqrt(s);
}

/** torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e−6) when that is below 1. Returns the pre-clip norm. */
export function clipGlobalNorm(parts: Float64Array[], maxNorm: number): number {
  const norm = globalNorm(parts);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const p of parts) for (let i = 0; i < p.length; i++) p[i] *= coef;
  return norm;
}

/**
 * One Adam step in place (torch's formulation: bias-corrected, eps added to sqrt(v̂)). Moments and weights are
 * float32 as in the original; each element is computed in float64 and rounded once.
 */
export function adamStep(weights: Float32Array[], grads: Float64Array[], state: AdamState, h: AdamHyperparameters): void {
  state.step += 1;
  const [b1, b2] = h.betas;
  const bc1 = 1 - Math.pow(b1, state.step);
  const sqrtBc2 = Math.sqrt(1 - Math.pow(b2, state.step));
  const stepSize = h.learningRate / bc1;
  for (let p = 0; p < weights.length; p++) {
    const w = weights[p];
    const g = grads[p];
    const m = state.m[p];
    const v = state.v[p];
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      const mi = (m[i] = b1 * m[i] + (1 - b1) * gi);
      const vi = (v[i] = b2 * v[i] + (1 - b2) * gi * gi);
      w[i] -= (stepSize * Math.fround(mi)) / (Math.sqrt(Math.fround(vi)) / sqrtBc2 + h.eps);
    }
  }
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
  // One loop per array kind, so that each stays monomorphic (a megamorphic element load is several times slower, and
  // the coordinator checks every result's megabytes of gradients and state).
  if (x instanceof Float32Array) return firstNonFiniteF32(new Int32Array(x.buffer, x.byteOffset, x.length));
  if (x instanceof Float64Array) return firstNonFiniteF64(x);
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

/** float32 bit patterns: the exponent all ones is ±Infinity or NaN. */
function firstNonFiniteF32(bits: Int32Array): number {
  for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

function firstNonFiniteF64(x: Float64Array): number {
  // v − v is 0 for every finite v and NaN for ±Infinity and NaN.
  for (let i = 0; i < x.length; i++) if (x[i] - x[i] !== 0) return i;
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
 * Works on copies and returns them, so that a non-finite gradient, or a step that would make a weight non-finite,
 * leaves `current` untouched and is reported instead (`partNames` name the parts in that message).
 */
export function optimizerStep(
  current: OptimizedParameters,
  grads: Float64Array[],
  h: AdamHyperparameters & { maxGradNorm: number },
  partNames: string[],
  gradientOf: "weights" | "log-parameters" = "weights",
): UpdateStep {
  const { weights, logWeights } = current;
  if (logWeights && gradientOf === "weights") grads.forEach((g, p) => logSpaceGradient(g, weights[p]));
  const bad = grads.findIndex((g) => firstNonFinite(g) >= 0);
  if (bad >= 0) return { applied: false, gradNorm: NaN, problem: `${partNames[bad]} gradient is not finite` };
  const gradNorm = clipGlobalNorm(grads, h.maxGradNorm);
  const params = (logWeights ?? weights).map((p) => p.slice());
  const adam: AdamState = { step: current.adam.step, m: current.adam.m.map((m) => m.slice()), v: current.adam.v.map((v) => v.slice()) };
  adamStep(params, grads, adam, h);
  const nextWeights = logWeights ? params.map(expWeights) : params;
  if (nextWeights.some((w) => firstNonFinite(w) >= 0)) return { applied: false, gradNorm, problem: `the step would make a weight non-finite (learning rate ${h.learningRate})` };
  if (!logWeights) nextWeights.forEach(projectNonNegative);
  return { applied: true, gradNorm, next: { weights: nextWeights, logWeights: logWeights ? params : null, adam } };
}
