/**
 * Noisy-student initial weights (issue #16): multiplicative weight noise with a moment-matching rescale
 * (MODEL-HEAD.md §5), and per-connection-type factor perturbations with the scaling factors that undo them (§1a).
 * Pure functions over typed arrays; the normals are arguments, so that every formula can be checked by hand, and the
 * keyed draws (`drawWeightNoise`, `drawFactorPerturbation`) are thin wrappers.
 *
 * Weight noise. On the pooled weights of all existing synapses, feedforward and recurrent together
 * (the original's W_cat = [W_FF; W]), with mask M = {w ≠ 0}:
 *   m₀, s₀ = mean and population std of w over M
 *   w′ = w · max(1 + f·ξ, 0),   ξ ~ N(0, 1) per synapse, f = noise_frac
 *   m₁, s₁ = mean and population std of w′ over M (entries clipped to 0 included)
 *   if s₀ > 0 and s₁ > 0:  w′[M] ← m₀ + (w′[M] − m₁)·s₀/s₁;  entries off M stay 0.
 * Our weights are edge lists, so ξ is drawn for each existing synapse only; the original draws one for every dense
 * entry of W_cat, and those off the mask multiply zeros, so the distribution of w′ is the same, the numbers are not.
 * The affine map sets the pooled mean and std back to m₀, s₀. Entries clipped to 0 map to m₀ − m₁·s₀/s₁, positive
 * when the noise raises the coefficient of variation (the usual case), negative otherwise (the log parameterisation
 * clamps such weights at 1e−8, as any non-positive weight).
 *
 * Rescale "global" is the original. Because one affine map serves every type, each type's mean is pulled toward the
 * pooled mean by s₀/s₁ < 1: a weak type gains mean, a strong one loses it, so the scaling factors a student then
 * learns are biased away from the perturbation they should undo. "per_type" applies the same three steps separately
 * to the synapses of each connection type (pre type, post type): every type keeps its own mean and std.
 *
 * Factor perturbation, σ = √variance: p[k,m] ~ LogNormal(−σ²/2, σ), so E p = 1, one per connection-type pair
 * (recurrent K×K drawn first, then feedforward K_in×K); every synapse from type k onto type m is multiplied by
 * p[k,m], and the scaling factor that undoes it, the target a learned factor is compared with, is 1/p[k,m].
 */
import { Rng, RngPurpose } from "./rng.js";

/** How the noisy weights are rescaled: one map for all synapses (the original) or one per connection type. */
export type NoiseRescale = "global" | "per_type";

/** Per-pair values: recurrent K×K row-major [pre type][post type], feedforward K_in×K [input type][post type]. */
export interface FactorMatrices {
  recurrent: Float64Array;
  feedforward: Float64Array;
}

/** Indices of the non-zero entries of w with group[i] = g (every non-zero entry when `group` is null): the mask M. */
export function maskIndices(w: ArrayLike<number>, group: ArrayLike<number> | null = null, g = 0): Int32Array {
  const idx: number[] = [];
  for (let i = 0; i < w.length; i++) if (w[i] !== 0 && (group === null || group[i] === g)) idx.push(i);
  return Int32Array.from(idx);
}

/** Mean and population std of v over the entries `idx` (0, 0 when there are none). */
export function meanStdAt(v: ArrayLike<number>, idx: Int32Array): { mean: number; std: number } {
  if (idx.length === 0) return { mean: 0, std: 0 };
  let sum = 0;
  for (const i of idx) sum += v[i];
  const mean = sum / idx.length;
  // Two passes, not E[v²] − E[v]²: with a spread much smaller than the mean the latter cancels catastrophically.
  let ss = 0;
  for (const i of idx) ss += (v[i] - mean) ** 2;
  return { mean, std: Math.sqrt(ss / idx.length) };
}

/**
 * The noisy weights w′ (module comment), in float64. `xi`: one standard normal per entry of `w`. `group`: null for
 * the global rescale, or a group id in [0, numGroups) per entry, each group rescaled on its own (per_type).
 * The mask is taken from `w` (before the noise), so that a weight clipped to 0 still counts in m₁, s₁ and is moved by
 * the affine map, as in the original.
 */
export function noisyWeights(w: ArrayLike<number>, xi: ArrayLike<number>, noiseFrac: number, group: ArrayLike<number> | null = null, numGroups = 1): Float64Array {
  if (xi.length !== w.length) throw new RangeError(`noisyWeights: ${xi.length} normals for ${w.length} weights`);
  if (group !== null && group.length !== w.length) throw new RangeError(`noisyWeights: ${group.length} group ids for ${w.length} weights`);
  const out = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i] === 0 ? 0 : w[i] * Math.max(1 + noiseFrac * xi[i], 0);
  for (let g = 0; g < (group === null ? 1 : numGroups); g++) {
    const M = maskIndices(w, group, g);
    const { mean: m0, std: s0 } = meanStdAt(w, M);
    const { mean: m1, std: s1 } = meanStdAt(out, M);
    // A single synapse, or equal weights, have no spread to match (the original's guard): left as drawn.
    if (!(s0 > 0 && s1 > 0)) continue;
    const k = s0 / s1;
    for (const i of M) out[i] = m0 + (out[i] - m1) * k;
  }
  return out;
}

/**
 * Connection-type pair of every synapse: recurrent edge i → j has id τ(i)·K + τ(j), feedforward edge p → j has id
 * K·K + τ_in(p)·K + τ(j) (so ids index [recurrent K×K; feedforward K_in×K], the layout of FactorMatrices).
 */
export function connectionTypeIds(
  edges: { rec: { pre: Int32Array; post: Int32Array }; ff: { pre: Int32Array; post: Int32Array }; cellType: Int32Array; inputType: Int32Array },
  K: number,
): { rec: Int32Array; ff: Int32Array } {
  const rec = new Int32Array(edges.rec.pre.length);
  for (let e = 0; e < rec.length; e++) rec[e] = edges.cellType[edges.rec.pre[e]] * K + edges.cellType[edges.rec.post[e]];
  const ff = new Int32Array(edges.ff.pre.length);
  for (let e = 0; e < ff.length; e++) ff[e] = K * K + edges.inputType[edges.ff.pre[e]] * K + edges.cellType[edges.ff.post[e]];
  return { rec, ff };
}

/**
 * Weight noise on a network's recurrent and feedforward weights, pooled as W_cat = [W_FF; W]. `xi`: the normals per
 * synapse of each part; `ids`: connectionTypeIds (used by "per_type" only). Returns float32 weights, as stored.
 */
export function noisyNetworkWeights(
  weights: { recWeight: ArrayLike<number>; ffWeight: ArrayLike<number> },
  xi: { rec: ArrayLike<number>; ff: ArrayLike<number> },
  noiseFrac: number,
  rescale: NoiseRescale,
  ids: { rec: Int32Array; ff: Int32Array },
  K: number,
  Kin: number,
): { recWeight: Float32Array; ffWeight: Float32Array } {
  const nFF = weights.ffWeight.length;
  const cat = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    const out = new Float64Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  };
  const group = rescale === "per_type" ? Int32Array.from(cat(ids.ff, ids.rec)) : null;
  const out = noisyWeights(cat(weights.ffWeight, weights.recWeight), cat(xi.ff, xi.rec), noiseFrac, group, K * K + Kin * K);
  return { recWeight: Float32Array.from(out.subarray(nFF)), ffWeight: Float32Array.from(out.subarray(0, nFF)) };
}

/** ξ for noisyNetworkWeights, keyed by (seed, weightNoise, part): part 0 recurrent, 1 feedforward, in synapse order. */
export function drawWeightNoise(seed: number, numRec: number, numFF: number): { rec: Float64Array; ff: Float64Array } {
  const draw = (n: number, part: number) => {
    const rng = Rng.keyed(seed, RngPurpose.weightNoise, part);
    return Float64Array.from({ length: n }, () => rng.normal());
  };
  return { rec: draw(numRec, 0), ff: draw(numFF, 1) };
}

/** p = exp(σn − σ²/2) per standard normal n, σ = √variance: LogNormal(−σ²/2, σ), E p = 1; variance 0 gives p ≡ 1. */
export function lognormalFactors(variance: number, normals: ArrayLike<number>): Float64Array {
  const sigma = Math.sqrt(variance);
  return Float64Array.from(normals, (n) => Math.exp(sigma * n - variance / 2));
}

/**
 * The factor perturbation p for K types and K_in input types, keyed by (seed, factorPerturbation): one stream, the
 * recurrent K×K pairs drawn first, then the feedforward K_in×K, as the original.
 */
export function drawFactorPerturbation(seed: number, variance: number, K: number, Kin: number): FactorMatrices {
  const rng = Rng.keyed(seed, RngPurpose.factorPerturbation, 0);
  const normals = Float64Array.from({ length: K * K + Kin * K }, () => rng.normal());
  const p = lognormalFactors(variance, normals);
  return { recurrent: p.slice(0, K * K), feedforward: p.slice(K * K) };
}

/** The scaling factors that undo p: 1/p per pair. */
export function factorTargets(p: FactorMatrices): FactorMatrices {
  return { recurrent: p.recurrent.map((x) => 1 / x), feedforward: p.feedforward.map((x) => 1 / x) };
}

/** Every synapse multiplied by p of its pair: w[e]·p[ids[e]] with p laid out as [recurrent; feedforward]. */
export function applyFactorPerturbation(
  weights: { recWeight: Float32Array; ffWeight: Float32Array },
  p: FactorMatrices,
  ids: { rec: Int32Array; ff: Int32Array },
): { recWeight: Float32Array; ffWeight: Float32Array } {
  const KK = p.recurrent.length;
  return {
    recWeight: weights.recWeight.map((w, e) => w * p.recurrent[ids.rec[e]]),
    ffWeight: weights.ffWeight.map((w, e) => w * p.feedforward[ids.ff[e] - KK]),
  };
}
