/**
 * Keyed random numbers (src/model/rng.ts) and Poisson inputs (src/model/inputs.ts): streams depend on their keys
 * only, have the right distributions, and trial b of epoch e is the same whichever call generates it.
 */
import { describe, expect, it } from "vitest";
import { poissonInputs, spikeProbabilities } from "../src/model/inputs.js";
import { Rng, RngPurpose } from "../src/model/rng.js";

const draws = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.nextU32());

describe("Rng.keyed", () => {
  it("same keys → same stream", () => {
    expect(draws(Rng.keyed(42, 2, 7, 3), 100)).toEqual(draws(Rng.keyed(42, 2, 7, 3), 100));
    const a = Rng.keyed(1, 2);
    const b = Rng.keyed(1, 2);
    for (let i = 0; i < 50; i++) {
      expect(a.uniform()).toBe(b.uniform());
      expect(a.normal()).toBe(b.normal());
    }
  });

  it("any change of any key, key order or key count gives a different stream", () => {
    const ref = draws(Rng.keyed(42, 2, 7, 3), 20);
    const variants = [
      [43, 2, 7, 3],
      [42, 3, 7, 3],
      [42, 2, 8, 3],
      [42, 2, 7, 4],
      [42, 7, 2, 3],
      [42, 2, 7],
      [42, 2, 7, 3, 0],
      [42, 2, 7, 3 + 2 ** 32], // keys up to 2^53: the high 32 bits count too
    ];
    for (const keys of variants) expect(draws(Rng.keyed(...keys), 20), `keys ${keys}`).not.toEqual(ref);
  });

  it("streams of neighbouring keys are uncorrelated", () => {
    const n = 20_000;
    const a = Rng.keyed(42, RngPurpose.poissonInput, 0, 0);
    const b = Rng.keyed(42, RngPurpose.poissonInput, 0, 1);
    let sab = 0;
    for (let i = 0; i < n; i++) sab += (a.uniform() - 0.5) * (b.uniform() - 0.5);
    // Correlation of two independent uniforms: mean 0, standard error 1/√n; variance of U − ½ is 1/12.
    const corr = sab / n / (1 / 12);
    expect(Math.abs(corr)).toBeLessThan(5 / Math.sqrt(n));
  });

  it("purposes give different streams for the same seed and indices", () => {
    expect(draws(Rng.keyed(42, RngPurpose.connectome), 10)).not.toEqual(draws(Rng.keyed(42, RngPurpose.poissonInput), 10));
  });
});

describe("distributions (1e5 draws)", () => {
  const n = 100_000;

  it("uniform: in [0, 1), mean 1/2 and variance 1/12 within 5 standard errors", () => {
    const rng = Rng.keyed(1, 100);
    let s = 0;
    let s2 = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      s += u;
      s2 += u * u;
      min = Math.min(min, u);
      max = Math.max(max, u);
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    // SE(mean) = √(1/12/n) = 0.000913; SE(variance) = √((1/80 − 1/144)/n) = 0.000236.
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * 0.000913);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(5 * 0.000236);
    // Uses more than 32 bits: values are not all multiples of 2^-32.
    const r = Rng.keyed(1, 101);
    let fine = 0;
    for (let i = 0; i < 100; i++) if ((r.uniform() * 2 ** 32) % 1 !== 0) fine++;
    expect(fine).toBeGreaterThan(90);
  });

  it("normal: mean ≈ 0, std ≈ 1, 68.27% within one std", () => {
    const rng = Rng.keyed(1, 200);
    let s = 0;
    let s2 = 0;
    let within1 = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal();
      s += x;
      s2 += x * x;
      if (Math.abs(x) < 1) within1++;
    }
    const mean = s / n;
    const std = Math.sqrt(s2 / n - mean * mean);
    // SE(mean) = 1/√n = 0.00316; SE(std) ≈ 1/√(2n) = 0.00224; SE(fraction) = √(0.6827·0.3173/n) = 0.00147.
    expect(Math.abs(mean)).toBeLessThan(5 * 0.00316);
    expect(Math.abs(std - 1)).toBeLessThan(5 * 0.00224);
    expect(Math.abs(within1 / n - 0.6827)).toBeLessThan(5 * 0.00147);
  });

  it("below(n): integers in [0, n), uniform over 10 bins (chi-squared)", () => {
    const rng = Rng.keyed(1, 300);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < n; i++) {
      const k = rng.below(10);
      if (!(Number.isInteger(k) && k >= 0 && k < 10)) throw new Error(`below(10) gave ${k}`);
      bins[k]++;
    }
    const expected = n / 10;
    const chi2 = bins.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
    // 9 degrees of freedom: P(χ² > 33.7) = 1e-4.
    expect(chi2).toBeLessThan(33.7);
  });

  it("below(n) is unbiased for large n (a plain modulo of 32 bits would not be)", () => {
    // n = 3e9: r mod n over 32-bit r hits [0, 2^32 − n) twice as often, mean 1.243e9 instead of 1.5e9.
    const rng = Rng.keyed(1, 400);
    const big = 3e9;
    const m = 10_000;
    let s = 0;
    for (let i = 0; i < m; i++) {
      const k = rng.below(big);
      if (!(Number.isInteger(k) && k >= 0 && k < big)) throw new Error(`below(3e9) gave ${k}`);
      s += k;
    }
    // SE(mean) = 3e9/√12/√m = 8.66e6.
    expect(Math.abs(s / m - 1.5e9)).toBeLessThan(5 * 8.66e6);
  });

  it("below rejects n outside (0, 2^32]; below(1) is always 0", () => {
    const rng = Rng.keyed(5);
    expect(() => rng.below(0)).toThrow(RangeError);
    expect(() => rng.below(2 ** 32 + 1)).toThrow(RangeError);
    for (let i = 0; i < 10; i++) expect(rng.below(1)).toBe(0);
    expect(rng.below(2 ** 32)).toBeLessThan(2 ** 32);
  });

  it("shuffle permutes (same multiset) and depends on the stream", () => {
    const a = Int32Array.from({ length: 50 }, (_, i) => i);
    const b = Int32Array.from(a);
    Rng.keyed(9, 1).shuffle(a);
    Rng.keyed(9, 2).shuffle(b);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(a)).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });
});

describe("poissonInputs", () => {
  const M = 100;
  const steps = 1000;
  const prob = new Float64Array(M).fill(0.006); // 6 Hz at dt = 1 ms

  /** Trial b of an InputSpikes block. */
  const trial = (x: { data: Uint8Array; steps: number; numInputs: number }, b: number) => x.data.subarray(b * x.steps * x.numInputs, (b + 1) * x.steps * x.numInputs);
  /** Byte equality (toEqual on 10^5-element typed arrays is slow). */
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

  it("trial b of epoch e is identical whether generated with 3 or 5 trials", () => {
    const three = poissonInputs(42, 17, 3, steps, prob);
    const five = poissonInputs(42, 17, 5, steps, prob);
    expect(three.data.length).toBe(3 * steps * M);
    expect(five.data.length).toBe(5 * steps * M);
    for (let b = 0; b < 3; b++) expect(same(trial(five, b), trial(three, b)), `trial ${b}`).toBe(true);
    // ...and trials differ from each other, and from the same trial of another epoch or seed.
    expect(same(trial(three, 1), trial(three, 0))).toBe(false);
    expect(same(trial(poissonInputs(42, 18, 3, steps, prob), 1), trial(three, 1))).toBe(false);
    expect(same(trial(poissonInputs(43, 17, 3, steps, prob), 1), trial(three, 1))).toBe(false);
    // Not trivially equal because empty: each trial has ~600 spikes.
    expect(trial(three, 1).reduce((a, x) => a + x, 0)).toBeGreaterThan(400);
  });

  it("writes into a reused output buffer exactly what a fresh call returns", () => {
    const fresh = poissonInputs(42, 3, 2, 50, prob);
    const out = { trials: 2, steps: 50, numInputs: M, data: new Uint8Array(2 * 50 * M).fill(7) };
    const reused = poissonInputs(42, 3, 2, 50, prob, out);
    expect(reused).toBe(out);
    expect(same(out.data, fresh.data)).toBe(true);
  });

  it("spike rate ≈ p within 5 standard errors, and values are 0/1", () => {
    const x = poissonInputs(42, 0, 3, steps, prob);
    let spikes = 0;
    for (const s of x.data) {
      if (s !== 0 && s !== 1) throw new Error(`spike value ${s}`);
      spikes += s;
    }
    const n = x.data.length; // 3e5 Bernoulli(0.006): mean 1800, sd √(n p (1−p)) = 42.3
    expect(Math.abs(spikes - n * 0.006)).toBeLessThan(5 * Math.sqrt(n * 0.006 * 0.994));
  });

  it("per-input probabilities: p = 0 never fires, p = 1 always, p = 0.3 ≈ 30%", () => {
    const p = Float64Array.from([0, 1, 0.3]);
    const x = poissonInputs(1, 0, 2, 2000, p);
    const count = [0, 0, 0];
    for (let r = 0; r < 2 * 2000; r++) for (let i = 0; i < 3; i++) count[i] += x.data[r * 3 + i];
    expect(count[0]).toBe(0);
    expect(count[1]).toBe(4000);
    // 4000 draws: mean 1200, sd 29.
    expect(Math.abs(count[2] - 1200)).toBeLessThan(5 * 29);
  });

  it("spikeProbabilities: rate·dt/1000 per input type, capped at 1", () => {
    const p = spikeProbabilities(Int32Array.from([0, 1, 0, 2]), [6, 50, 3000], 1);
    expect(Array.from(p)).toEqual([0.006, 0.05, 0.006, 1]);
    const half = spikeProbabilities(Int32Array.from([0]), [6], 0.5);
    expect(half[0]).toBeCloseTo(0.003, 15);
  });
});
