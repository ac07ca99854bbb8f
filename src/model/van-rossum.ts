/**
 * Van Rossum distance between the student's and the teacher's spike trains of one epoch (same Poisson input, same
 * initial stream state). Each 0/1 train s_t is filtered causally,
 *   f_t = f_{t−1}·e^{−dt/τ} + s_t,   f_{−1} = 0 at the start of the epoch,
 * and
 *   L_VR = 1/(B·N) · Σ_{b,j} Σ_{t<T} (f^student_{b,t,j} − f^teacher_{b,t,j})² · dt/τ,
 * the discretised van Rossum (2001) D² = (1/τ)∫(f − g)² dt with a unit-height exponential kernel, averaged over
 * (trial, neuron): an isolated spike that the other train lacks adds (dt/τ)/(1 − e^{−2dt/τ}) ≈ 1/2 (for dt ≪ τ) to
 * its (trial, neuron) pair. Its gradient with respect to a student spike is
 *   dL/ds_t = Σ_{t'≥t} 2(f^s_{t'} − f^r_{t'})·(dt/τ)·e^{−(t'−t)dt/τ} / (B·N),
 * which a reverse recursion gives in one pass. It spans the whole epoch: like the other terms, the loss is an epoch
 * loss, and only the neuron state is cut at chunk boundaries.
 */

/** Where spike (trial b, step t, neuron j) sits: b·sb + t·st + j·sj (engines keep different layouts). */
export interface SpikeTrainLayout {
  trials: number;
  steps: number;
  neurons: number;
  sb: number;
  st: number;
  sj: number;
}

/**
 * L_VR of `student` against `teacher` (both in `layout`); with `grad`, writes weight·dL/dS into it at the same
 * indices.
 */
export function vanRossumLoss(
  layout: SpikeTrainLayout,
  student: ArrayLike<number>,
  teacher: ArrayLike<number>,
  dt: number,
  tau: number,
  grad: Float64Array | null,
  weight = 1,
): number {
  const { trials: B, steps: T, neurons: N, sb, st, sj } = layout;
  const decay = Math.exp(-dt / tau);
  const scale = dt / tau;
  const gradScale = (2 * scale * weight) / (B * N);
  const diff = new Float64Array(T);
  let sum = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < N; j++) {
      const base = b * sb + j * sj;
      let fs = 0;
      let ft = 0;
      for (let t = 0; t < T; t++) {
        fs = fs * decay + student[base + t * st];
        ft = ft * decay + teacher[base + t * st];
        const d = fs - ft;
        diff[t] = d;
        sum += d * d;
      }
      if (!grad) continue;
      let u = 0;
      for (let t = T - 1; t >= 0; t--) {
        u = u * decay + gradScale * diff[t];
        grad[base + t * st] = u;
      }
    }
  }
  return (sum * scale) / (B * N);
}

/** The filter as a [T, T] matrix, f = K·s over steps: K[t][t'] = e^{−(t−t')dt/τ} for t' ≤ t, else 0. */
export function vanRossumFilterMatrix(steps: number, dt: number, tau: number): Float32Array {
  const k = new Float32Array(steps * steps);
  for (let t = 0; t < steps; t++) for (let u = 0; u <= t; u++) k[t * steps + u] = Math.exp((-(t - u) * dt) / tau);
  return k;
}
