/**
 * Noisy-student initial weights (src/model/weight-noise.ts, issue #16): the weight noise with its moment-matching
 * rescale (global, as the original, or per connection type), the factor perturbation and its targets, the keyed
 * draws, the [student] keys, and their composition in studentInitialWeights (src/training/student.ts).
 */
import { describe, expect, it } from "vitest";
import { Config, ConfigError, parseConfig } from "../src/model/config.js";
import { generateConnectome } from "../src/model/connectome.js";
import { Rng, RngPurpose } from "../src/model/rng.js";
import {
  applyFactorPerturbation,
  connectionTypeIds,
  drawFactorPerturbation,
  drawWeightNoise,
  factorTargets,
  lognormalFactors,
  maskIndices,
  meanStdAt,
  noisyNetworkWeights,
  noisyWeights,
} from "../src/model/weight-noise.js";
import { perturbLognormal, studentInitialWeights } from "../src/training/student.js";
import { smallNetworkToml } from "./helpers/small-network.js";

/** Mean and population std of the non-zero entries of w (of group g when `group` is given). */
const stats = (w: ArrayLike<number>, group: ArrayLike<number> | null = null, g = 0) => meanStdAt(w, maskIndices(w, group, g));

const normals = (n: number, ...key: number[]) => {
  const rng = Rng.keyed(...key);
  return Float64Array.from({ length: n }, () => rng.normal());
};

/** n lognormal-ish positive weights of mean ≈ mu and CV ≈ cv, some entries 0 (absent synapses). */
function weights(n: number, mu: number, cv: number, key: number): Float64Array {
  const z = normals(n, 99, key);
  return z.map((x, i) => (i % 7 === 3 ? 0 : mu * Math.exp(cv * x - (cv * cv) / 2)));
}

describe("noisyWeights: hand-computed", () => {
  it("noise, clipping at 0 and the global affine map, on five weights", () => {
    // w = (1, 2, 3, 0, 4), f = 0.5, ξ = (0.5, −1, 0, 2, −3): multipliers 1.25, 0.5, 1, (off the mask), max(−0.5, 0) = 0,
    // so before the rescale w′ = (1.25, 1, 3, 0, 0). Over M = {0, 1, 2, 4}: m₀ = 2.5, s₀² = (2.25+0.25+0.25+2.25)/4 = 1.25;
    // m₁ = 5.25/4 = 1.3125, s₁² = (0.0625² + 0.3125² + 1.6875² + 1.3125²)/4 = 4.671875/4 = 1.16796875.
    // w′[M] = 2.5 + (w′ − 1.3125)·√(1.25/1.16796875); the clipped synapse becomes 2.5 − 1.3125·k > 0; entry 3 stays 0.
    const out = noisyWeights([1, 2, 3, 0, 4], [0.5, -1, 0, 2, -3], 0.5);
    const k = Math.sqrt(1.25 / 1.16796875);
    const expected = [1.25, 1, 3, 0, 0].map((x, i) => (i === 3 ? 0 : 2.5 + (x - 1.3125) * k));
    for (let i = 0; i < 5; i++) expect(out[i]).toBeCloseTo(expected[i], 14);
    expect(out[3]).toBe(0);
    expect(out[4]).toBeCloseTo(1.1421909, 7); // k = 1.0345212
    const s = stats(out);
    expect(s.mean).toBeCloseTo(2.5, 14);
    expect(s.std).toBeCloseTo(Math.sqrt(1.25), 14);
  });

  it("clips at 0, and leaves weights without spread (s₀ = 0 or s₁ = 0) as drawn", () => {
    // Equal weights: s₀ = 0, no map. ξ = −3 at f = 0.5 gives 1 − 1.5 < 0 → 0; ξ = 1 gives 1.5.
    expect(Array.from(noisyWeights([2, 2, 2], [-3, 0, 1], 0.5))).toEqual([0, 2, 3]);
    // (1, 2) made equal by the noise (1·(1 + 0.5·2) = 2·(1 + 0)): s₁ = 0, no map.
    expect(Array.from(noisyWeights([1, 2], [2, 0], 0.5))).toEqual([2, 2]);
  });

  it("noise_frac = 0 is the identity", () => {
    const w = weights(500, 0.3, 0.5, 1);
    const out = noisyWeights(w, normals(500, 5), 0);
    for (let i = 0; i < w.length; i++) expect(out[i]).toBeCloseTo(w[i], 14);
  });

  it("the global rescale keeps the pooled mean and std; zeros off the mask stay 0", () => {
    const w = weights(5000, 0.2, 0.8, 2);
    const out = noisyWeights(w, normals(w.length, 6), 0.4);
    const [a, b] = [stats(w), stats(out)];
    expect(b.mean).toBeCloseTo(a.mean, 12);
    expect(b.std).toBeCloseTo(a.std, 12);
    for (let i = 0; i < w.length; i++) if (w[i] === 0) expect(out[i]).toBe(0);
    // The noise changes the weights: correlation with the originals well below 1.
    let sab = 0;
    for (const i of maskIndices(w)) sab += (w[i] - a.mean) * (out[i] - b.mean);
    const r = sab / maskIndices(w).length / (a.std * b.std);
    expect(r).toBeGreaterThan(0.5);
    expect(r).toBeLessThan(0.99);
  });

  it("per_type keeps every group's mean and std", () => {
    const parts = [weights(1000, 0.05, 0.3, 3), weights(1500, 1.0, 0.2, 4), weights(800, 0.3, 0.6, 5)];
    const w = Float64Array.from(parts.flatMap((p) => Array.from(p)));
    const group = Int32Array.from(parts.flatMap((p, g) => Array.from(p, () => g)));
    const out = noisyWeights(w, normals(w.length, 7), 0.5, group, 3);
    for (let g = 0; g < 3; g++) {
      const [a, b] = [stats(w, group, g), stats(out, group, g)];
      expect(b.mean / a.mean - 1).toBeCloseTo(0, 12);
      expect(b.std / a.std - 1).toBeCloseTo(0, 12);
    }
  });
});

describe("global vs per_type: the global map pulls each type toward the pooled mean", () => {
  // Two connection types of very different mean weight (1.0 and 0.05, both CV 0.2), 2000 synapses each, noise 0.4.
  // Pooled: m₀ ≈ 0.525, s₀² ≈ 0.475² + (0.04 + 0.0001)/2 ≈ 0.246. The noise raises the strong type's variance to
  // ≈ 1.04·1.16 − 1 ≈ 0.206, so s₁² ≈ 0.329 and k = s₀/s₁ ≈ 0.86: the weak type's mean becomes
  // ≈ 0.525 − 0.475·0.86 ≈ 0.11 (more than double), the strong type's ≈ 0.94 (−6%).
  const high = weights(2000, 1.0, 0.2, 10);
  const low = weights(2000, 0.05, 0.2, 11);
  const w = Float64Array.from([...high, ...low]);
  const group = Int32Array.from(w, (_, i) => (i < high.length ? 0 : 1));
  const xi = normals(w.length, 12);

  it("global: the low-mean type's mean rises by > 50%, the high-mean type's falls by > 3%, the low type's CV shrinks", () => {
    const out = noisyWeights(w, xi, 0.4);
    const [hiBefore, loBefore, hiAfter, loAfter] = [stats(w, group, 0), stats(w, group, 1), stats(out, group, 0), stats(out, group, 1)];
    expect(loAfter.mean / loBefore.mean).toBeGreaterThan(1.5);
    expect(hiAfter.mean / hiBefore.mean).toBeLessThan(0.97);
    expect(loAfter.std / loAfter.mean / (loBefore.std / loBefore.mean)).toBeLessThan(0.9);
    // The pooled moments are kept all the same: the bias is invisible in them.
    expect(stats(out).mean).toBeCloseTo(stats(w).mean, 12);
    expect(stats(out).std).toBeCloseTo(stats(w).std, 12);
  });

  it("per_type: each type keeps its mean and std to float precision", () => {
    const out = noisyWeights(w, xi, 0.4, group, 2);
    for (let g = 0; g < 2; g++) {
      const [a, b] = [stats(w, group, g), stats(out, group, g)];
      expect(Math.abs(b.mean / a.mean - 1)).toBeLessThan(1e-12);
      expect(Math.abs(b.std / a.std - 1)).toBeLessThan(1e-12);
    }
  });
});

describe("connection types and the pooled network", () => {
  // Neurons 0, 1 of type 0, neuron 2 of type 1 (K = 2); inputs 0 of type 0, 1 of type 1 (K_in = 2).
  const net = {
    cellType: Int32Array.of(0, 0, 1),
    inputType: Int32Array.of(0, 1),
    rec: { pre: Int32Array.of(0, 0, 1, 2, 2), post: Int32Array.of(1, 2, 0, 0, 1) },
    ff: { pre: Int32Array.of(0, 0, 1), post: Int32Array.of(0, 2, 1) },
  };

  it("ids index [recurrent K×K; feedforward K_in×K], row-major [pre type][post type]", () => {
    const ids = connectionTypeIds(net, 2);
    expect(Array.from(ids.rec)).toEqual([0, 1, 0, 2, 2]);
    expect(Array.from(ids.ff)).toEqual([4, 5, 6]);
  });

  it("noisyNetworkWeights pools W_cat = [W_FF; W] and splits it back, as float32", () => {
    const weights = { recWeight: Float32Array.of(1, 2, 3, 4, 5), ffWeight: Float32Array.of(6, 7, 8) };
    const xi = { rec: Float64Array.of(0.1, -0.2, 0.3, -0.4, 0.5), ff: Float64Array.of(-0.6, 0.7, -0.8) };
    const ids = connectionTypeIds(net, 2);
    const pooled = noisyWeights([6, 7, 8, 1, 2, 3, 4, 5], [-0.6, 0.7, -0.8, 0.1, -0.2, 0.3, -0.4, 0.5], 0.3);
    const out = noisyNetworkWeights(weights, xi, 0.3, "global", ids, 2, 2);
    expect(Array.from(out.ffWeight)).toEqual(Array.from(Float32Array.from(pooled.subarray(0, 3))));
    expect(Array.from(out.recWeight)).toEqual(Array.from(Float32Array.from(pooled.subarray(3))));
    // per_type: pairs with one synapse, or none, have no spread to keep (left as drawn); pair (0,0) has two.
    const perType = noisyNetworkWeights(weights, xi, 0.3, "per_type", ids, 2, 2);
    expect(perType.recWeight[1]).toBe(Math.fround(2 * (1 + 0.3 * -0.2)));
    const p00 = [perType.recWeight[0], perType.recWeight[2]];
    expect((p00[0] + p00[1]) / 2).toBeCloseTo(2, 6);
    expect(Math.abs(p00[1] - p00[0]) / 2).toBeCloseTo(1, 6);
  });
});

describe("factor perturbation", () => {
  it("p = exp(σn − σ²/2): hand values, and variance 0 gives p ≡ 1 exactly", () => {
    // σ² = 0.5: n = 0 → e^−0.25 = 0.7788008; n = 1 → e^{0.7071068 − 0.25} = 1.5794975.
    const p = lognormalFactors(0.5, [0, 1]);
    expect(p[0]).toBeCloseTo(0.7788008, 7);
    expect(p[1]).toBeCloseTo(1.5794975, 7);
    expect(Array.from(lognormalFactors(0, [0.3, -2, 5]))).toEqual([1, 1, 1]);
  });

  it("E p = 1 (statistical): mean of 200,000 draws at σ² = 0.5 within 0.006 of 1, mean ln p within 0.005 of −0.25", () => {
    // Standard errors: √(e^{σ²} − 1)/√n = 0.805/447 = 1.8e−3 for the mean, σ/√n = 1.6e−3 for ln p: tolerances ≈ 3.3 SE.
    const n = 200_000;
    const p = lognormalFactors(0.5, normals(n, 21));
    let sum = 0;
    let logSum = 0;
    for (const x of p) {
      sum += x;
      logSum += Math.log(x);
    }
    expect(Math.abs(sum / n - 1)).toBeLessThan(0.006);
    expect(Math.abs(logSum / n + 0.25)).toBeLessThan(0.005);
  });

  it("keyed draws over 10,000 seeds also average 1 (K = 2, K_in = 1: 60,000 factors, SE 3.3e−3, tolerance 0.012)", () => {
    let sum = 0;
    let count = 0;
    for (let seed = 0; seed < 10_000; seed++) {
      const p = drawFactorPerturbation(seed, 0.5, 2, 1);
      expect(p.recurrent.length).toBe(4);
      expect(p.feedforward.length).toBe(2);
      for (const x of [...p.recurrent, ...p.feedforward]) {
        sum += x;
        count++;
      }
    }
    expect(Math.abs(sum / count - 1)).toBeLessThan(0.012);
  });

  it("recurrent pairs are drawn first, then feedforward, from one stream keyed (seed, factorPerturbation)", () => {
    const p = drawFactorPerturbation(3, 0.5, 2, 1);
    const expected = lognormalFactors(0.5, normals(6, 3, RngPurpose.factorPerturbation, 0));
    expect([...p.recurrent, ...p.feedforward]).toEqual(Array.from(expected));
  });

  it("targets are 1/p: target·p = 1 to double precision", () => {
    const p = drawFactorPerturbation(4, 1.5, 3, 2);
    const t = factorTargets(p);
    for (let i = 0; i < 9; i++) expect(Math.abs(t.recurrent[i] * p.recurrent[i] - 1)).toBeLessThan(1e-15);
    for (let i = 0; i < 6; i++) expect(Math.abs(t.feedforward[i] * p.feedforward[i] - 1)).toBeLessThan(1e-15);
  });

  it("multiplies every synapse by the p of its pair", () => {
    const p = { recurrent: Float64Array.of(2, 3, 5, 7), feedforward: Float64Array.of(11, 13) };
    const out = applyFactorPerturbation({ recWeight: Float32Array.of(1, 1, 2), ffWeight: Float32Array.of(1, 0.5) }, p, { rec: Int32Array.of(0, 3, 2), ff: Int32Array.of(5, 4) });
    expect(Array.from(out.recWeight)).toEqual([2, 7, 10]);
    expect(Array.from(out.ffWeight)).toEqual([13, 5.5]);
  });
});

describe("keyed weight noise", () => {
  it("ξ is keyed by (seed, weightNoise, part): deterministic, parts independent, seeds differ", () => {
    const a = drawWeightNoise(7, 50, 30);
    expect(Array.from(a.rec)).toEqual(Array.from(normals(50, 7, RngPurpose.weightNoise, 0)));
    expect(Array.from(a.ff)).toEqual(Array.from(normals(30, 7, RngPurpose.weightNoise, 1)));
    // A part's draws do not depend on the other part's size.
    expect(Array.from(drawWeightNoise(7, 50, 999).rec)).toEqual(Array.from(a.rec));
    expect(Array.from(drawWeightNoise(8, 50, 30).rec)).not.toEqual(Array.from(a.rec));
  });
});

describe("[student] keys", () => {
  const withStudent = (lines: string, seed = 7): Config => parseConfig(`${smallNetworkToml({ seed })}\n[student]\n${lines}\n`, "small");
  const problem = (lines: string): string => {
    try {
      withStudent(lines);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error("expected a ConfigError");
  };

  it("default off", () => {
    const s = parseConfig(smallNetworkToml(), "small").student;
    expect([s.noise_frac, s.noise_rescale, s.weight_perturbation_variance]).toEqual([0, "global", 0]);
    const on = withStudent('noise_frac = 0.3\nnoise_rescale = "per_type"\nweight_perturbation_variance = 0.5').student;
    expect([on.noise_frac, on.noise_rescale, on.weight_perturbation_variance]).toEqual([0.3, "per_type", 0.5]);
  });

  it("impossible values: a ConfigError naming the key", () => {
    expect(problem('noise_rescale = "per_type"')).toMatch(/^student\.noise_rescale: only used with noise_frac > 0/);
    expect(problem('noise_frac = 0\nnoise_rescale = "global"')).toMatch(/^student\.noise_rescale: only used with noise_frac > 0/);
    expect(problem("noise_frac = -0.1")).toMatch(/^student\.noise_frac: must be ≥ 0/);
    expect(problem("noise_frac = 11")).toMatch(/^student\.noise_frac: must be ≤ 10/);
    expect(problem('noise_frac = 0.2\nnoise_rescale = "per_pair"')).toMatch(/^student\.noise_rescale: must be one of global, per_type/);
    expect(problem("weight_perturbation_variance = -1")).toMatch(/^student\.weight_perturbation_variance: must be ≥ 0/);
    expect(problem("weight_perturbation_variance = 5")).toMatch(/^student\.weight_perturbation_variance: must be ≤ 4/);
  });
});

describe("studentInitialWeights", () => {
  const base = parseConfig(smallNetworkToml(), "small");
  const connectome = generateConnectome(base);
  const cfg = (lines: string, seed = 7) => parseConfig(`${smallNetworkToml({ seed })}\n[student]\n${lines}\n`, "small");

  it("all off: the connectome's weights bit for bit, targets ones", () => {
    const w = studentInitialWeights(base, connectome, null);
    expect(Array.from(w.recWeight)).toEqual(Array.from(connectome.recWeight));
    expect(Array.from(w.ffWeight)).toEqual(Array.from(connectome.ffWeight));
    expect(Array.from(w.factorTargets.recurrent)).toEqual([1, 1, 1, 1]);
    expect(Array.from(w.factorTargets.feedforward)).toEqual([1, 1]);
  });

  it("base → noise → factor perturbation → lognormal perturbation → scale, every draw keyed by the seed", () => {
    const c = cfg('noise_frac = 0.3\nweight_perturbation_variance = 0.5\nperturbation = "lognormal"\nperturbation_sigma = 0.1\nscale = 2.0');
    const w = studentInitialWeights(c, connectome, null);
    const ids = connectionTypeIds(connectome, 2);
    const noisy = noisyNetworkWeights(connectome, drawWeightNoise(7, connectome.recWeight.length, connectome.ffWeight.length), 0.3, "global", ids, 2, 1);
    const p = drawFactorPerturbation(7, 0.5, 2, 1);
    const scaled = applyFactorPerturbation(noisy, p, ids);
    const rec = perturbLognormal(scaled.recWeight, 0.1, Rng.keyed(7, RngPurpose.studentPerturbation, 0)).map((x) => x * 2);
    const ff = perturbLognormal(scaled.ffWeight, 0.1, Rng.keyed(7, RngPurpose.studentPerturbation, 1)).map((x) => x * 2);
    expect(Array.from(w.recWeight)).toEqual(Array.from(rec));
    expect(Array.from(w.ffWeight)).toEqual(Array.from(ff));
    expect(Array.from(w.factorTargets.recurrent)).toEqual(Array.from(p.recurrent, (x) => 1 / x));
    expect(Array.from(w.factorTargets.feedforward)).toEqual(Array.from(p.feedforward, (x) => 1 / x));
    // Deterministic: the same seed gives the same weights; another seed, others.
    expect(Array.from(studentInitialWeights(c, connectome, null).recWeight)).toEqual(Array.from(w.recWeight));
    const other = cfg('noise_frac = 0.3\nweight_perturbation_variance = 0.5', 8);
    expect(Array.from(studentInitialWeights(other, connectome, null).recWeight)).not.toEqual(Array.from(w.recWeight));
  });

  it("per_type with a factor perturbation: each type's mean is p times the generated one, so mean·target is kept", () => {
    const c = cfg('noise_frac = 0.4\nnoise_rescale = "per_type"\nweight_perturbation_variance = 0.5');
    const w = studentInitialWeights(c, connectome, null);
    const ids = connectionTypeIds(connectome, 2);
    const targets = [...w.factorTargets.recurrent, ...w.factorTargets.feedforward];
    expect(targets.some((t) => Math.abs(t - 1) > 0.05)).toBe(true);
    const before = Float64Array.from([...connectome.recWeight, ...connectome.ffWeight]);
    const after = Float64Array.from([...w.recWeight, ...w.ffWeight]);
    const group = Int32Array.from([...ids.rec, ...ids.ff]);
    for (let g = 0; g < 6; g++) {
      const [a, b] = [stats(before, group, g), stats(after, group, g)];
      expect(a.mean).toBeGreaterThan(0);
      expect(Math.abs((b.mean * targets[g]) / a.mean - 1)).toBeLessThan(1e-5);
      expect(Math.abs((b.std * targets[g]) / a.std - 1)).toBeLessThan(1e-5);
    }
    // And the weights did change.
    expect(Array.from(w.recWeight)).not.toEqual(Array.from(connectome.recWeight));
  });
});
