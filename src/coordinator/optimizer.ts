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
  const parts = perEpoch[0].length;
  const out = Array.from({ length: parts }, (_, p) => new Float64Array(perEpoch[0][p].length));
  for (const grads of perEpoch) {
    for (let p = 0; p < parts; p++) {
      const acc = out[p];
      const g = grads[p];
      for (let i = 0; i < acc.length; i++) acc[i] += g[i];
    }
  }
  const n = perEpoch.length;
  for (const acc of out) for (let i = 0; i < acc.length; i++) acc[i] /= n;
  return out;
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
