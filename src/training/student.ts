/**
 * A fresh run's initial weights ([student] in the parameters): the connectome's generated weights or a teacher's,
 * optionally with mean-preserving lognormal noise and a common scale, so that a teacher-student experiment starts a
 * known distance from the answer. The noise is keyed by (seed, purpose, population) only, like every random stream.
 */
import { Config } from "../model/config.js";
import { Connectome } from "../model/connectome.js";
import { Rng, RngPurpose } from "../model/rng.js";
import { readTeacherWeights } from "../io/targets-file.js";

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

/** `teacher`: teacherWeights(config, connectome), needed when init = "teacher". */
export function studentInitialWeights(config: Config, connectome: Connectome, teacher: Weights | null): Weights {
  const s = config.student;
  const base = s.init === "teacher" ? teacher! : connectome;
  const init = (w: Float32Array, population: number) => {
    const noisy = s.perturbation === "lognormal" ? perturbLognormal(w, s.perturbation_sigma, Rng.keyed(config.simulation.seed, RngPurpose.studentPerturbation, population)) : w.slice();
    return noisy.map((x) => x * s.scale);
  };
  return { recWeight: init(base.recWeight, 0), ffWeight: init(base.ffWeight, 1) };
}
