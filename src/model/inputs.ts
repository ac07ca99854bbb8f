/**
 * Poisson input spikes (MODEL.md 2.6): each input fires with probability rate·dt per step, at most once per step.
 * Trial b of epoch e is drawn from a stream keyed by (seed, e, b) only, so any worker reproduces it exactly.
 */
import { Rng, RngPurpose } from "./rng.js";

/** Input spikes of one epoch: data[(b·steps + t)·numInputs + i] ∈ {0, 1}. */
export interface InputSpikes {
  trials: number;
  steps: number;
  numInputs: number;
  data: Uint8Array;
}

/** Per-input spike probability per step from per-input-type rates (Hz) and dt (ms). */
export function spikeProbabilities(inputType: Int32Array, ratesHz: number[], dt: number): Float64Array {
  const p = new Float64Array(inputType.length);
  for (let i = 0; i < p.length; i++) p[i] = Math.min(1, ratesHz[inputType[i]] * dt * 1e-3);
  return p;
}

export function poissonInputs(seed: number, epoch: number, trials: number, steps: number, prob: Float64Array, out?: InputSpikes): InputSpikes {
  const M = prob.length;
  const inputs = out ?? { trials, steps, numInputs: M, data: new Uint8Array(trials * steps * M) };
  // Compare 32-bit draws against integer thresholds: exact Bernoulli(p) up to 2^-32, one draw per input-step.
  const threshold = new Float64Array(M);
  for (let i = 0; i < M; i++) threshold[i] = Math.floor(prob[i] * 0x100000000);
  for (let b = 0; b < trials; b++) {
    const rng = Rng.keyed(seed, RngPurpose.poissonInput, epoch, b);
    const base = b * steps * M;
    for (let t = 0; t < steps; t++) {
      const row = base + t * M;
      for (let i = 0; i < M; i++) inputs.data[row + i] = rng.nextU32() < threshold[i] ? 1 : 0;
    }
  }
  return inputs;
}
