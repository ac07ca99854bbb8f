/**
 * Van Rossum distance between the student's and the teacher's spike trains of one epoch (same Poisson input, same
 * initial stream state), in one of two forms chosen by the rise time τr (`[hyperparameters] van_rossum_tau_rise`,
 * `van_rossum_tau_decay` = τd).
 *
 * τr = 0, single exponential. Each 0/1 train s_t is filtered causally,
 *   f_t = f_{t−1}·e^{−dt/τd} + s_t,   f_{−1} = 0 at the start of the epoch,
 * and
 *   L_VR = 1/(B·N) · Σ_{b,j} Σ_{t<T} (f^student_{b,t,j} − f^teacher_{b,t,j})² · dt/τd,
 * the discretised van Rossum (2001) D² = (1/τ)∫(f − g)² dt with a unit-height exponential kernel, averaged over
 * (trial, neuron): an isolated spike that the other train lacks adds (dt/τ)/(1 − e^{−2dt/τ}) ≈ 1/2 (for dt ≪ τ) to
 * its (trial, neuron) pair. Its gradient with respect to a student spike is
 *   dL/ds_t = Σ_{t'≥t} 2(f^s_{t'} − f^r_{t'})·(dt/τ)·e^{−(t'−t)dt/τ} / (B·N),
 * which a reverse recursion gives in one pass.
 *
 * 0 < τr < τd, double exponential: the original's kernel (MODEL-HEAD §2, VanRossumLoss). With b = e^{−dt/τr} and
 * a = e^{−dt/τd},
 *   r_t = b·r_{t−1} + s_t,   y_t = a·y_{t−1} + r_t,   r_{−1} = y_{−1} = 0 at the start of the epoch,
 * whose impulse response is h[n] = (a^{n+1} − b^{n+1})/(a − b), unnormalised (10/100 ms, dt = 1: peak 8.18 at
 * n = 25, Σh = 1056; 5/20 ms: peak 3.57 at n = 8), and
 *   L_VR = 1/(B·T·N) · Σ_{b,t,j} (y^student_{b,t,j} − y^teacher_{b,t,j})²,
 * the original's normalisation (a mean over trial, step and neuron), so that its values compare with the original's.
 * With g_t = 2(y^s_t − y^r_t)/(B·T·N), the gradient is two reverse recursions in one pass:
 *   p_t = a·p_{t+1} + g_t (= dL/dr_t),   dL/ds_t = q_t = b·q_{t+1} + p_t.
 *
 * Both forms span the whole epoch: like the other terms, the loss is an epoch loss, and only the neuron state is cut
 * at chunk boundaries. The filter state therefore carries across chunks exactly, gradient included. The original
 * filters per chunk and carries the previous chunk's last r̂, ŷ (detached) into step t of the next as r̂·b^t, ŷ·a^t:
 * one step under-decayed (the exact recursion gives r̂·b^{t+1}, ŷ·a^{t+1}), and without gradient through the carry.
 * Ours decays correctly and keeps the gradient through the filter across chunks, so its values differ from the
 * original's by the under-decay, slightly for τ ≫ dt (test/van-rossum.test.ts gives the size). The state is reset
 * at every epoch start, as the original resets at every data-epoch start.
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

/** The filter's time constants (ms): tauRise = 0 is the single exponential, else 0 < tauRise < tauDecay. */
export interface VanRossumKernel {
  tauRise: number;
  tauDecay: number;
}

/**
 * The factor c of L_VR = c·Σ_{b,t,j} (y^s − y^t)² times `weight`, as the tfjs engine applies it to its filtered
 * trains: weight·dt/(τd·B·N) for the single exponential, weight/(B·T·N) for the double.
 */
export function vanRossumScale(trials: number, steps: number, neurons: number, dt: number, kernel: VanRossumKernel, weight = 1): number {
  return kernel.tauRise === 0 ? (weight * dt) / (kernel.tauDecay * trials * neurons) : weight / (trials * steps * neurons);
}

/**
 * L_VR of `student` against `teacher` (both in `layout`); with `grad`, writes weight·dL/dS into it at the same
 * indices. The single exponential is the double one with an instantaneous rise (b = 0, so r_t = s_t), with its own
 * normalisation (vanRossumScale).
 */
export function vanRossumLoss(
  layout: SpikeTrainLayout,
  student: ArrayLike<number>,
  teacher: ArrayLike<number>,
  dt: number,
  kernel: VanRossumKernel,
  grad: Float64Array | null,
  weight = 1,
): number {
  const { trials: B, steps: T, neurons: N, sb, st, sj } = layout;
  const rise = kernel.tauRise === 0 ? 0 : Math.exp(-dt / kernel.tauRise);
  const decay = Math.exp(-dt / kernel.tauDecay);
  const scale = vanRossumScale(B, T, N, dt, kernel);
  const gradScale = 2 * scale * weight;
  const diff = new Float64Array(T);
  let sum = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < N; j++) {
      // Per (trial, neuron): both trains through the filter, then the gradient by the two reverse recursions.
      const base = b * sb + j * sj;
      let rs = 0;
      let ys = 0;
      let rt = 0;
      let yt = 0;
      for (let t = 0; t < T; t++) {
        rs = rs * rise + student[base + t * st];
        ys = ys * decay + rs;
        rt = rt * rise + teacher[base + t * st];
        yt = yt * decay + rt;
        const d = ys - yt;
        diff[t] = d;
        sum += d * d;
      }
      if (!grad) continue;
      let p = 0;
      let q = 0;
      for (let t = T - 1; t >= 0; t--) {
        p = p * decay + gradScale * diff[t];
        q = q * rise + p;
        grad[base + t * st] = q;
      }
    }
  }
  return sum * scale;
}

/**
 * The impulse response h[0..steps−1] of the filter: e^{−n·dt/τd} for the single exponential, for the double the
 * recursion above driven by one spike at n = 0, h[n] = (a^{n+1} − b^{n+1})/(a − b).
 */
export function vanRossumImpulseResponse(steps: number, dt: number, kernel: VanRossumKernel): Float64Array {
  const h = new Float64Array(steps);
  if (kernel.tauRise === 0) {
    for (let n = 0; n < steps; n++) h[n] = Math.exp((-n * dt) / kernel.tauDecay);
    return h;
  }
  const rise = Math.exp(-dt / kernel.tauRise);
  const decay = Math.exp(-dt / kernel.tauDecay);
  let r = 0;
  let y = 0;
  for (let n = 0; n < steps; n++) {
    r = r * rise + (n === 0 ? 1 : 0);
    y = y * decay + r;
    h[n] = y;
  }
  return h;
}

/**
 * The filter as a [T, T] matrix, y = K·s over steps: K[t][t'] = h[t − t'] for t' ≤ t, else 0. For the single
 * exponential K[t][t'] = e^{−(t−t')dt/τd}; for the double it is the product K_a·K_b of the two single-exponential
 * matrices (decay a = e^{−dt/τd} after rise b = e^{−dt/τr}), whose entries Σ_{t'≤k≤t} a^{t−k}·b^{k−t'} are h[t − t'].
 * The normalisation is vanRossumScale's.
 */
export function vanRossumFilterMatrix(steps: number, dt: number, kernel: VanRossumKernel): Float32Array {
  const h = vanRossumImpulseResponse(steps, dt, kernel);
  const k = new Float32Array(steps * steps);
  for (let t = 0; t < steps; t++) for (let u = 0; u <= t; u++) k[t * steps + u] = h[t - u];
  return k;
}
