/**
 * Per-connection-type scaling factors (MODEL-HEAD.md 1), as pure functions over typed arrays. S[k,m] scales every
 * synapse from presynaptic type k onto postsynaptic type m: recurrent factors are K×K, feedforward factors K_in×K
 * (row = input type), both row-major [pre type][post type]. The engines simulate the effective weights
 *   w_e = W_e · S[τ(pre e), τ(post e)]
 * and return per-edge gradients ∂L/∂w_e; with S = e^θ the factor gradient is
 *   ∂L/∂θ[k,m] = S[k,m] · Σ_{e ∈ (k,m)} W_e · ∂L/∂w_e = Σ_{e ∈ (k,m)} w_e · ∂L/∂w_e,
 * which needs only the effective weights a worker already holds. A worker reduces its per-edge gradients to these
 * K×K + K_in×K numbers (so a result stays a few bytes on the wire), summing in float64 in edge order: the reduction
 * is deterministic, whichever worker computes it. Both parts live in one vector [S_rec | S_ff] of (K + K_in)·K
 * factors, so that the synapses of a teacher-forced network's teacher inputs (teacher-forcing.ts), which are
 * feedforward edges, take the recurrent factor of their type.
 */

/** An edge list's endpoints (connectome.ts EdgeList). */
type Edges = { pre: ArrayLike<number>; post: ArrayLike<number> };

/** What Adam trains ([hyperparameters] optimise): the weights, or scaling factors of both parts or one. */
export type Optimise = "weights" | "scaling_factors" | "scaling_factors_recurrent" | "scaling_factors_feedforward";

export const OPTIMISE_MODES: readonly Optimise[] = ["weights", "scaling_factors", "scaling_factors_recurrent", "scaling_factors_feedforward"];

/** Which factor parts a mode trains (recurrent, feedforward); the other part stays at its initial value. */
export function trainedFactorParts(mode: Optimise): [boolean, boolean] {
  return [mode === "scaling_factors" || mode === "scaling_factors_recurrent", mode === "scaling_factors" || mode === "scaling_factors_feedforward"];
}

/** Scaling factors of both parts, row-major [pre type][post type]. */
export interface ScalingFactors {
  rec: Float32Array;
  ff: Float32Array;
}

/** Per edge, the index pre·K + post of its (pre type, post type) pair; the pre type is a recurrent or an input type. */
export function typePairIndex(edges: Edges, preType: ArrayLike<number>, postType: ArrayLike<number>, numPostTypes: number): Int32Array {
  const out = new Int32Array(edges.pre.length);
  for (let e = 0; e < out.length; e++) out[e] = preType[edges.pre[e]] * numPostTypes + postType[edges.post[e]];
  return out;
}

/** What a network spec says about its populations (model/constants.ts ModelConstants). */
type Populations = { cellType: ArrayLike<number>; inputSource: ArrayLike<number>; numRecTypes: number; numSources: number };

/**
 * Factors per part: K×K recurrent, K_in×K feedforward. `teacherInputTypes` = K_in for a teacher-forced network,
 * whose input types beyond K_in are teacher neurons (absent: every input type is a real one).
 */
export function factorCounts(c: Populations, teacherInputTypes?: number): { rec: number; ff: number } {
  const K = c.numRecTypes;
  return { rec: K * K, ff: (teacherInputTypes ?? c.numSources - K) * K };
}

/**
 * Per edge, the index of its factor in [S_rec | S_ff]: (pre type)·K + post type for recurrent edges, K² + (input
 * type)·K + post type for feedforward ones, and for a teacher-forced network's teacher inputs (input type t ≥
 * teacherInputTypes) the recurrent factor of their type t − teacherInputTypes.
 */
export function networkTypePairs(rec: Edges, ff: Edges, c: Populations, teacherInputTypes?: number): { rec: Int32Array; ff: Int32Array } {
  const K = c.numRecTypes;
  const real = teacherInputTypes ?? c.numSources - K;
  // The factor row of each input: K + t for a real input type t (after the K recurrent rows), else its teacher type.
  const row = Int32Array.from(c.inputSource, (source) => (source - K < real ? source : source - K - real));
  return { rec: typePairIndex(rec, c.cellType, c.cellType, K), ff: typePairIndex(ff, row, c.cellType, K) };
}

/** networkTypePairs of a network spec (its edges, populations and teacher forcing). */
export function specTypePairs(spec: { rec: Edges; ff: Edges; constants: Populations; teacherForcing?: { inputTypes: number } }): { rec: Int32Array; ff: Int32Array } {
  return networkTypePairs(spec.rec, spec.ff, spec.constants, spec.teacherForcing?.inputTypes);
}

/** w_e = W_e · S[pair e]: the weights the engines simulate. */
export function effectiveWeights(base: Float32Array, factors: Float32Array, pair: Int32Array): Float32Array {
  const w = new Float32Array(base.length);
  for (let e = 0; e < w.length; e++) w[e] = base[e] * factors[pair[e]];
  return w;
}

/**
 * ∂L/∂θ per factor from per-edge ∂L/∂w: Σ w_e·∂L/∂w_e over each factor's edges, in float64, over the parts in the
 * order given and each in edge order; split back into [recurrent, feedforward] of `counts`.
 */
export function factorLogGradient(parts: { grad: Float32Array; weight: Float32Array; pair: Int32Array }[], counts: { rec: number; ff: number }): { rec: Float32Array; ff: Float32Array } {
  const acc = new Float64Array(counts.rec + counts.ff);
  for (const { grad, weight, pair } of parts) for (let e = 0; e < grad.length; e++) acc[pair[e]] += weight[e] * grad[e];
  return { rec: Float32Array.from(acc.subarray(0, counts.rec)), ff: Float32Array.from(acc.subarray(counts.rec)) };
}

/** The factors of both parts as one vector [S_rec | S_ff], the indices networkTypePairs gives. */
export function allFactors(f: ScalingFactors): Float32Array {
  const out = new Float32Array(f.rec.length + f.ff.length);
  out.set(f.rec);
  out.set(f.ff, f.rec.length);
  return out;
}

/** The factors' (pre type, post type) pairs in row-major order, recurrent and feedforward. */
export function factorPairs(recNames: string[], ffNames: string[]): { rec: FactorPair[]; ff: FactorPair[] } {
  const pairs = (pre: string[]) => pre.flatMap((p) => recNames.map((q) => ({ pre: p, post: q })));
  return { rec: pairs(recNames), ff: pairs(ffNames) };
}

export interface FactorPair {
  pre: string;
  post: string;
}

/** A factor's name in metrics.csv, W&B and the targets file: `{pre}_{post}`. */
export const factorName = (p: FactorPair) => `${p.pre}_${p.post}`;

/** The factors' names, `{pre}_{post}` per pair in row-major order (recurrent, feedforward). */
export function factorNames(recNames: string[], ffNames: string[]): { rec: string[]; ff: string[] } {
  const { rec, ff } = factorPairs(recNames, ffNames);
  return { rec: rec.map(factorName), ff: ff.map(factorName) };
}
