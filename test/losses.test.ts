/**
 * Loss terms (src/model/losses.ts, MODEL.md section 4) and per-cell-type statistics (src/model/statistics.ts)
 * on inputs small enough to compute by hand; gradient coefficients against numeric derivatives.
 */
import { describe, expect, it } from "vitest";
import { cvLoss, firingRateLoss, IsiAccumulator, membraneVarianceLoss, silentPenaltyLoss, totalLoss } from "../src/model/losses.js";
import { cellTypeStats, nanMeanRows, pooledStats } from "../src/model/statistics.js";

const f64 = (...xs: number[]) => Float64Array.from(xs);

describe("firingRateLoss", () => {
  // 3 neurons, T_s = 2 s: counts 2, 0, 5 → rates r = 1, 0, 2.5 Hz; targets r* = 0.5, 2, 2 Hz.
  // diff = 0.5, −2, 0.5; terms diff²/(r*+1e−6) = 0.25/0.500001, 4/2.000001, 0.25/2.000001 ≈ 0.5, 2, 0.125.
  // L = (0.5 + 2 + 0.125)/3 = 0.875 (up to the 1e−6).
  const counts = f64(2, 0, 5);
  const target = f64(0.5, 2, 2);

  it("value", () => {
    const L = firingRateLoss(counts, 2, target, null);
    expect(L).toBeCloseTo((0.25 / 0.500001 + 4 / 2.000001 + 0.25 / 2.000001) / 3, 14);
    expect(L).toBeCloseTo(0.875, 5);
  });

  it("spikeGrad: dL/dS = 2·diff / ((r*+1e−6)·N·T_s), added to what is there, scaled by the weight", () => {
    // j=0: 2·0.5/(0.500001·3·2) ≈ 1/3; j=1: 2·(−2)/(2.000001·6) ≈ −1/3; j=2: 2·0.5/(2.000001·6) ≈ 1/12.
    const g = f64(10, 20, 30);
    firingRateLoss(counts, 2, target, g, 1);
    expect(g[0] - 10).toBeCloseTo(1 / 3, 5);
    expect(g[1] - 20).toBeCloseTo(-1 / 3, 5);
    expect(g[2] - 30).toBeCloseTo(1 / 12, 5);
    const g2 = f64(0, 0, 0);
    firingRateLoss(counts, 2, target, g2, 0.5);
    expect(g2[0]).toBeCloseTo(1 / 6, 5);
    expect(g2[1]).toBeCloseTo(-1 / 6, 5);
  });

  it("spikeGrad equals the numeric derivative with respect to one spike (count)", () => {
    const g = f64(0, 0, 0);
    firingRateLoss(counts, 2, target, g);
    for (let j = 0; j < 3; j++) {
      const h = 1e-3;
      const up = Float64Array.from(counts);
      const down = Float64Array.from(counts);
      up[j] += h;
      down[j] -= h;
      const numeric = (firingRateLoss(up, 2, target, null) - firingRateLoss(down, 2, target, null)) / (2 * h);
      expect(g[j]).toBeCloseTo(numeric, 8);
    }
  });
});

describe("silentPenaltyLoss", () => {
  // T_s = 2 s: counts 0, 1, 4 → r = 0, 0.5, 2 Hz; α = 10, 2, 2 s.
  // exp(−α r) = exp(0), exp(−1), exp(−4) = 1, 0.3678794, 0.0183156 → L = 1.3861951/3 = 0.4620650.
  const counts = f64(0, 1, 4);
  const alpha = f64(10, 2, 2);

  it("value", () => {
    expect(silentPenaltyLoss(counts, 2, alpha, null)).toBeCloseTo(0.462065, 6);
  });

  it("gradient: −α·exp(−α r)/(N·T_s), added to spikeGrad", () => {
    // j=0: −10·1/6 = −1.6666667; j=1: −2·0.3678794/6 = −0.1226265; j=2: −2·0.0183156/6 = −0.0061052.
    const g = f64(1, 1, 1);
    silentPenaltyLoss(counts, 2, alpha, g);
    expect(g[0] - 1).toBeCloseTo(-1.6666667, 6);
    expect(g[1] - 1).toBeCloseTo(-0.1226265, 6);
    expect(g[2] - 1).toBeCloseTo(-0.0061052, 6);
    const gw = f64(0, 0, 0);
    silentPenaltyLoss(counts, 2, alpha, gw, 2);
    expect(gw[0]).toBeCloseTo(-3.3333333, 6);
  });
});

describe("membraneVarianceLoss", () => {
  // B = 1 trial, N = 2 neurons, T = 4 steps. θ = −50, −45 mV; ρ* = 0.25, 0.45.
  // Neuron 0: V = −60, −58, −62, −60: mean −60, deviations 0, 2, −2, 0, SS = 8, var = 8/3, σ = 1.6329932;
  //   d = θ − mean = 10 → ratio = 0.16329932, diff = −0.08670068, diff² = 0.00751701.
  // Neuron 1: V = −55, −51, −55, −51: mean −53, SS = 16, var = 16/3, σ = 2.3094011;
  //   d = −45 + 53 = 8 → ratio = 0.28867513, diff = −0.16132487, diff² = 0.02602572.
  // L = (0.00751701 + 0.02602572)/2 = 0.01677137.
  const T = 4;
  const theta = f64(-50, -45);
  const ratio = f64(0.25, 0.45);

  /** V[b][t][j] flattened as (b·T + t)·N + j; returns mean and unbiased std indexed b·N + j. */
  function summarise(V: Float64Array, B: number, N: number): { mean: Float64Array; std: Float64Array } {
    const mean = new Float64Array(B * N);
    const std = new Float64Array(B * N);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += V[(b * T + t) * N + j];
        const m = s / T;
        let ss = 0;
        for (let t = 0; t < T; t++) ss += (V[(b * T + t) * N + j] - m) ** 2;
        mean[b * N + j] = m;
        std[b * N + j] = Math.sqrt(ss / (T - 1));
      }
    }
    return { mean, std };
  }

  it("value on the hand example", () => {
    // Columns: neuron 0, neuron 1, per step.
    const V = f64(-60, -55, -58, -51, -62, -55, -60, -51);
    const { mean, std } = summarise(V, 1, 2);
    expect(Array.from(mean)).toEqual([-60, -53]);
    expect(std[0]).toBeCloseTo(1.6329932, 7);
    expect(std[1]).toBeCloseTo(2.3094011, 7);
    expect(membraneVarianceLoss(mean, std, T, theta, ratio, null)).toBeCloseTo(0.01677137, 7);
  });

  it("devCoef·(V − mean) + meanCoef equals the numeric derivative with respect to each voltage sample", () => {
    // Two trials so that the (b, j) indexing and the 1/(B·N) average are exercised.
    const B = 2;
    const N = 2;
    const V = f64(-60, -55, -58, -51, -62, -55, -60, -51, /* trial 1 */ -58, -47, -52, -49, -56, -44, -55, -46);
    const loss = (v: Float64Array, w = 1.7) => {
      const { mean, std } = summarise(v, B, N);
      return membraneVarianceLoss(mean, std, T, theta, ratio, null, w);
    };
    const { mean, std } = summarise(V, B, N);
    const coefs = { devCoef: new Float64Array(B * N), meanCoef: new Float64Array(B * N) };
    const L = membraneVarianceLoss(mean, std, T, theta, ratio, coefs, 1.7);
    expect(L).toBeCloseTo(loss(V, 1), 14); // the weight scales only the gradient, not the value
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < N; j++) {
          const idx = (b * T + t) * N + j;
          const h = 1e-5;
          const up = Float64Array.from(V);
          const down = Float64Array.from(V);
          up[idx] += h;
          down[idx] -= h;
          const numeric = (1.7 * (loss(up) - loss(down))) / (2 * h);
          const k = b * N + j;
          const analytic = coefs.devCoef[k] * (V[idx] - mean[k]) + coefs.meanCoef[k];
          expect(Math.abs(analytic - numeric), `b=${b} t=${t} j=${j}: ${analytic} vs ${numeric}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(numeric));
        }
      }
    }
    // The gradient is not trivially zero.
    expect(Math.max(...coefs.devCoef.map(Math.abs))).toBeGreaterThan(1e-4);
  });

  it("a constant voltage (zero std) gets zero gradient instead of NaN", () => {
    const mean = f64(-60, -53);
    const std = f64(0, 2.3094011);
    const coefs = { devCoef: new Float64Array(2), meanCoef: new Float64Array(2) };
    const L = membraneVarianceLoss(mean, std, T, theta, ratio, coefs);
    // ratio 0 for neuron 0: (0 − 0.25)² = 0.0625; neuron 1 as above 0.02602572 → L = 0.04426286.
    expect(L).toBeCloseTo(0.04426286, 7);
    expect(Math.abs(coefs.devCoef[0])).toBe(0);
    expect(Math.abs(coefs.meanCoef[0])).toBe(0); // ±0
    expect(Number.isFinite(coefs.devCoef[1]) && coefs.devCoef[1] !== 0).toBe(true);
  });
});

describe("IsiAccumulator (CV of one spike train)", () => {
  it("spikes at 0, 2, 6 → ISIs 2, 4 → CV = std([2, 4], ddof=1)/mean = 1.4142/3", () => {
    const acc = new IsiAccumulator();
    for (const p of [0, 2, 6]) acc.add(p);
    expect(acc.count).toBe(3);
    expect(acc.cv()).toBeCloseTo(Math.SQRT2 / 3, 12);
  });

  it("regular train → CV 0; spikes 1, 2, 4, 8 → ISIs 1, 2, 4: std 1.5275 / mean 2.3333", () => {
    const regular = new IsiAccumulator();
    for (const p of [3, 8, 13, 18, 23]) regular.add(p);
    expect(regular.cv()).toBe(0);
    const acc = new IsiAccumulator();
    for (const p of [1, 2, 4, 8]) acc.add(p);
    // mean 7/3; deviations −4/3, −1/3, 5/3; SS = (16 + 1 + 25)/9 = 42/9; var = 21/9; std = 1.5275252.
    expect(acc.cv()).toBeCloseTo(Math.sqrt(21 / 9) / (7 / 3), 12);
  });

  it("NaN with fewer than 3 spikes", () => {
    const acc = new IsiAccumulator();
    expect(acc.cv()).toBeNaN();
    acc.add(5);
    expect(acc.cv()).toBeNaN();
    acc.add(9);
    expect(acc.cv()).toBeNaN();
    acc.add(10);
    expect(Number.isFinite(acc.cv())).toBe(true);
  });

  it("reset starts a new train", () => {
    const acc = new IsiAccumulator();
    for (const p of [0, 100, 101, 300]) acc.add(p);
    acc.reset();
    expect(acc.count).toBe(0);
    expect(acc.cv()).toBeNaN();
    for (const p of [0, 2, 6]) acc.add(p);
    expect(acc.cv()).toBeCloseTo(Math.SQRT2 / 3, 12);
  });
});

describe("cvLoss and totalLoss", () => {
  it("cvLoss ignores NaN neurons: CVs NaN, 0.5, 1.5 with target 1 → (0.25 + 0.25)/2 = 0.25", () => {
    expect(cvLoss(f64(NaN, 0.5, 1.5), f64(1, 1, 1))).toBeCloseTo(0.25, 14);
    // target taken from the argument: (0.5 − 0.5)² and (1.5 − 0.5)² → 0.5.
    expect(cvLoss(f64(NaN, 0.5, 1.5), f64(0.5, 0.5, 0.5))).toBeCloseTo(0.5, 14);
  });

  it("cvLoss takes one target per neuron: (0.5 − 0.5)² and (1.5 − 1)² → 0.125", () => {
    expect(cvLoss(f64(NaN, 0.5, 1.5), f64(3, 0.5, 1))).toBeCloseTo(0.125, 14);
  });

  it("cvLoss is NaN when no neuron has a CV", () => {
    expect(cvLoss(f64(NaN, NaN), f64(1, 1))).toBeNaN();
    expect(cvLoss(f64(), f64())).toBeNaN();
  });

  const weights = { firing_rate: 1, cv: 0.5, silent_penalty: 1, membrane_variance: 10, van_rossum: 4 };

  it("totalLoss = Σ weight·term: 1·2 + 0.5·0.4 + 1·0.5 + 10·0.1 + 4·0.25 = 4.7", () => {
    expect(totalLoss({ firing_rate: 2, cv: 0.4, silent_penalty: 0.5, membrane_variance: 0.1, van_rossum: 0.25 }, weights)).toBeCloseTo(4.7, 14);
  });

  it("totalLoss counts a NaN CV as 0: 2 + 0 + 0.5 + 1 + 0 = 3.5", () => {
    expect(totalLoss({ firing_rate: 2, cv: NaN, silent_penalty: 0.5, membrane_variance: 0.1, van_rossum: 0 }, weights)).toBeCloseTo(3.5, 14);
  });
});

describe("cellTypeStats", () => {
  // Neurons 0-2 excitatory with rates 0, 2, 4 Hz and CVs NaN, 1, 0.5; neurons 3-4 inhibitory with rates 10, 0 Hz and
  // CVs 0.8, NaN.
  // E: rate mean 2, std (ddof 0) √((4 + 0 + 4)/3) = √(8/3) = 1.6329932 (ddof 1 would be 2); CVs over the two defined:
  //    mean 0.75, std 0.25; active 2/3.
  // I: rate mean 5, std 5; CV mean 0.8, std 0; active 1/2.
  const rates = f64(0, 2, 4, 10, 0);
  const cvs = f64(NaN, 1, 0.5, 0.8, NaN);
  // Membrane ratios: E 0.1, 0.2, 0.6 → mean 0.3; I 0.5, 0.25 → 0.375.
  const ratios = f64(0.1, 0.2, 0.6, 0.5, 0.25);
  const types = Int32Array.from([0, 0, 0, 1, 1]);

  it("mean, ddof-0 std, CV stats over defined CVs, active fraction", () => {
    const [e, i] = cellTypeStats(rates, cvs, ratios, types, ["excitatory", "inhibitory"]);
    expect(e.ratioMean).toBeCloseTo(0.3, 14);
    expect(i.ratioMean).toBe(0.375);
    expect(e.cellType).toBe("excitatory");
    expect(e.rateMean).toBeCloseTo(2, 14);
    expect(e.rateStd).toBeCloseTo(Math.sqrt(8 / 3), 14);
    expect(e.cvMean).toBeCloseTo(0.75, 14);
    expect(e.cvStd).toBeCloseTo(0.25, 14);
    expect(e.activeFraction).toBeCloseTo(2 / 3, 14);
    expect(i.cellType).toBe("inhibitory");
    expect(i.rateMean).toBeCloseTo(5, 14);
    expect(i.rateStd).toBeCloseTo(5, 14);
    expect(i.cvMean).toBeCloseTo(0.8, 14);
    expect(i.cvStd).toBe(0);
    expect(i.activeFraction).toBe(0.5);
  });

  it("a type with no neurons, or no defined CV, gives NaN rather than 0", () => {
    const [, , x] = cellTypeStats(rates, cvs, ratios, types, ["excitatory", "inhibitory", "extra"]);
    expect(x.ratioMean).toBeNaN();
    expect(x.rateMean).toBeNaN();
    expect(x.cvMean).toBeNaN();
    expect(x.activeFraction).toBeNaN();
    const [e] = cellTypeStats(f64(0, 0), f64(NaN, NaN), f64(0, 0), Int32Array.from([0, 0]), ["excitatory"]);
    expect(e.rateMean).toBe(0);
    expect(e.activeFraction).toBe(0);
    expect(e.cvMean).toBeNaN();
    expect(e.cvStd).toBeNaN();
  });

  it("nanMeanRows averages per-trial CVs per neuron, skipping NaN trials", () => {
    // 2 trials × 3 neurons: neuron 0: 1, 3 → 2; neuron 1: NaN, 0.5 → 0.5; neuron 2: NaN, NaN → NaN.
    const out = nanMeanRows(f64(1, NaN, NaN, 3, 0.5, NaN), 2, 3);
    expect(out[0]).toBe(2);
    expect(out[1]).toBe(0.5);
    expect(out[2]).toBeNaN();
  });

  it("pooledStats takes the epochs together: rate over all of them, active if a neuron spiked in any", () => {
    // Two epochs × 3 neurons of one type: rates (0, 2, 0) and (4, 0, 0) → pooled (2, 1, 0), active 2 of 3; CVs
    // averaged per neuron over the epochs that have one: (NaN, 1, NaN) and (3, NaN, NaN) → (3, 1, NaN).
    const [p] = pooledStats(
      [
        { rates: f64(0, 2, 0), cvs: f64(NaN, 1, NaN), ratios: f64(0.1, 0.2, 0.3) },
        { rates: f64(4, 0, 0), cvs: f64(3, NaN, NaN), ratios: f64(0.3, 0.2, 0.1) },
      ],
      Int32Array.from([0, 0, 0]),
      ["excitatory"],
    );
    expect(p.cellType).toBe("excitatory");
    expect(p.rateMean).toBe(1);
    expect(p.rateStd).toBeCloseTo(Math.sqrt(2 / 3), 12);
    expect(p.activeFraction).toBeCloseTo(2 / 3, 12); // per epoch it would be 1/3 each
    expect(p.cvMean).toBe(2);
    expect(p.cvStd).toBe(1);
    expect(p.ratioMean).toBeCloseTo(0.2, 14);
  });
});
