/**
 * A fresh run's initial weights ([student] in the parameters): the connectome's generated weights or a teacher's,
 * optionally made noisy (noise_frac, with its moment-matching rescale), multiplied by per-type-pair factors
 * (weight_perturbation_variance), given mean-preserving lognormal noise and a common scale, so that a teacher-student
 * experiment starts a known distance from the answer. Every draw is keyed by (seed, purpose, part) only, like every
 * random stream.
 */
import { Config } from "../model/config.js";
import { Connectome } from "../model/connectome.js";
import { Rng, RngPurpose } from "../model/rng.js";
import {
  applyFactorPerturbation,
  connectionTypeIds,
  drawFactorPerturbation,
  drawWeightNoise,
  FactorMatrices,
  factorTargets,
  noisyNetworkWeights,
} from "../model/weight-noise.js";
import { readTeacherWeights } from "../io/targets-file.js";
import { FactorTraining } from "../io/checkpoint.js";
import { NetworkSpec } from "../model/network.js";
import { allFactors, effectiveWeights, specTypePairs } from "../model/scaling-factors.js";
import { teacherForcedWeights } from "../model/teacher-forcing.js";

/** w·exp(σn − σ²/2) per synapse, n standard normal from `rng` in synapse order: E[w'] = w. */
export function perturbLognormal(w: Float32Array, sigma: number, rng: Rng): Float32Array {
  const shift = (sigma * sigma) / 2;
  return w.map((x) => x * Math.exp(sigma * rng.normal() - shift));
}

type Weights = { recWeight: Float32Array; ffWeight: Float32Array };

/** The teacher's weights when `[student] teacher_file` is set. */
export function teacherWeights(config: Config, connectome: Connectome): Weights | null {
  const file = config.student.teacher_file;
  return file ? readTeacherWeights("student.teacher_file", file, connectome) : null;
}

/**
 * `teacher`: teacherWeights(config, connectome), needed when init = "teacher". In order: base (generated or teacher)
 * → weight noise (noise_frac) → factor perturbation p (weight_perturbation_variance) → lognormal perturbation → scale.
 * factorTargets = 1/p, the scaling factors that undo the factor perturbation (ones when it is off): recurrent K×K
 * [pre type][post type], feedforward K_in×K [input type][post type].
 */
export function studentInitialWeights(
  config: Config,
  connectome: Connectome,
  teacher: Weights | null,
): Weights & { factorTargets: FactorMatrices } {
  const s = config.student;
  const seed = config.simulation.seed;
  const K = config.recurrent.names.length;
  const Kin = config.feedforward.names.length;
  const base = s.init === "teacher" ? teacher! : connectome;
  const ids = s.noise_frac > 0 || s.weight_perturbation_variance > 0 ? connectionTypeIds(connectome, K) : null;
  let w: Weights = { recWeight: base.recWeight, ffWeight: base.ffWeight };
  if (s.noise_frac > 0) w = noisyNetworkWeights(w, drawWeightNoise(seed, w.recWeight.length, w.ffWeight.length), s.noise_frac, s.noise_rescale, ids!, K, Kin);
  // Off, p ≡ 1 is not applied at all: the weights stay bit-identical to a run without the key.
  const p = s.weight_perturbation_variance > 0 ? drawFactorPerturbation(seed, s.weight_perturbation_variance, K, Kin) : null;
  if (p) w = applyFactorPerturbation(w, p, ids!);
  const init = (x: Float32Array, population: number) => {
    const noisy = s.perturbation === "lognormal" ? perturbLognormal(x, s.perturbation_sigma, Rng.keyed(seed, RngPurpose.studentPerturbation, population)) : x.slice();
    return noisy.map((v) => v * s.scale);
  };
  return {
    recWeight: init(w.recWeight, 0),
    ffWeight: init(w.ffWeight, 1),
    factorTargets: p ? factorTargets(p) : { recurrent: new Float64Array(K * K).fill(1), feedforward: new Float64Array(Kin * K).fill(1) },
  };
}

/**
 * What a fresh run starts from, for the network it simulates (`spec`): the student's initial weights (of the
 * teacher-forced network under [student] mode = "feedforward"), the scaling factors it trains from [scaling_factors]
 * (optimise ≠ "weights"; else the factors are folded into the weights once), and the factors' targets.
 */
export interface FreshStart {
  /** The weights W that the factors scale (the simulated weights themselves when no factors are trained). */
  weights: Weights;
  factors: FactorTraining | null;
  factorTargets: FactorMatrices;
}

export function freshStart(config: Config, connectome: Connectome, spec: NetworkSpec, teacher: Weights | null): FreshStart {
  const student = studentInitialWeights(config, connectome, teacher);
  const w = config.student.mode === "feedforward" ? teacherForcedWeights(student) : student;
  const initial = { rec: Float32Array.from(config.scaling_factors.recurrent.flat()), ff: Float32Array.from(config.scaling_factors.feedforward.flat()) };
  const pairs = specTypePairs(spec);
  if (config.hyperparameters.optimise !== "weights")
    return { weights: w, factors: { initial, pairs, recTypes: config.recurrent.names.length, inputTypes: config.feedforward.names.length }, factorTargets: student.factorTargets };
  const S = allFactors(initial);
  return { weights: { recWeight: effectiveWeights(w.recWeight, S, pairs.rec), ffWeight: effectiveWeights(w.ffWeight, S, pairs.ff) }, factors: null, factorTargets: student.factorTargets };
}
