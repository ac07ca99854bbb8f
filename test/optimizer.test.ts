/**
 * Gradient averaging, global-norm clipping and Adam (src/model/optimizer.ts, MODEL.md 5.2 step 7) against
 * values computed by hand with torch's formulas.
 */
import { describe, expect, it } from "vitest";
import { adamStep, averageGradients, clipGlobalNorm, expWeights, firstNonFinite, globalNorm, GradientReducer, logSpaceGradient, logWeights, newAdamState, OptimizedParameters, optimizerStep, projectNonNegative, sumOfSquares } from "../src/model/optimizer.js";
import { Rng } from "../src/model/rng.js";
import { AdamKernel } from "../src/model/adam-kernel.js";

const f32 = (...xs: number[]) => Float32Array.from(xs);
const f64 = (...xs: number[]) => Float64Array.from(xs);

describe("averageGradients", () => {
  it("sums in float64, in the order given: 1e8 + 1 − 1e8 + 2 = 3 → 3/4 (float32 summation would give 0.5)", () => {
    // 1e8 is exact in float32, whose spacing there is 8: in float32, 1e8 + 1 = 1e8, so a float32 accumulator ends
    // at (0 + 2)/4 = 0.5; float64 keeps the 1.
    const epochs = [[f32(1e8)], [f32(1)], [f32(-1e8)], [f32(2)]];
    const [avg] = averageGradients(epochs);
    expect(avg).toBeInstanceOf(Float64Array);
    expect(avg[0]).toBe(0.75);
  });

  it("the order is the given one, not sorted or pairwise: big + 1 − big + 3 → 3/4 in float64 with big = 2^60", () => {
    // With big = 2^60, even float64 loses the 1 in big + 1 (spacing 256 there), so left to right gives
    // ((big + 1) − big + 3)/4 = (0 + 3)/4 = 0.75, whereas (big − big) + 1 + 3 would give 1.
    const big = 2 ** 60;
    expect(Math.fround(big)).toBe(big);
    const [avg] = averageGradients([[f32(big)], [f32(1)], [f32(-big)], [f32(3)]]);
    expect(avg[0]).toBe(0.75);
    const [reordered] = averageGradients([[f32(big)], [f32(-big)], [f32(1)], [f32(3)]]);
    expect(reordered[0]).toBe(1);
  });

  it("equals the float64 left-to-right sum divided by the count, exactly (non-power-of-two count)", () => {
    // 2 + 2 + 1 = 5; 5/3 = 1.6666666666666667 in float64. Multiplying by a rounded reciprocal instead,
    // 5·(1/3) = 1.6666666666666665, is one ulp off: the documented contract is "sum, then divide by the count".
    const epochs = [[f32(2, 0.1)], [f32(2, 0.2)], [f32(1, 0.7)]];
    const [avg] = averageGradients(epochs);
    const sum1 = Math.fround(0.1) + Math.fround(0.2) + Math.fround(0.7);
    expect(avg[0]).toBe(5 / 3);
    expect(avg[1]).toBe(sum1 / 3);
  });

  it("keeps parts separate and element-wise, and does not modify its inputs", () => {
    const e0 = [f32(1, 2, 3), f32(10)];
    const e1 = [f32(3, 4, 5), f32(30)];
    const [rec, ff] = averageGradients([e0, e1]);
    expect(Array.from(rec)).toEqual([2, 3, 4]);
    expect(Array.from(ff)).toEqual([20]);
    expect(Array.from(e0[0])).toEqual([1, 2, 3]);
  });
});

describe("GradientReducer", () => {
  it("fed in any arrival order, gives averageGradients over the epoch order, bit for bit, interval after interval", () => {
    const big = 2 ** 60;
    const epochs = [[f32(big, -0)], [f32(1, -0)], [f32(-big, 0)], [f32(3, -0)]];
    const reducer = new GradientReducer();
    for (const order of [[3, 1, 0, 2], [0, 1, 2, 3], [2, 3, 1, 0]]) {
      reducer.start(4);
      for (const k of order) reducer.add(k, epochs[k]);
      const [mean] = reducer.mean();
      // Left to right in epoch order: ((big + 1) − big + 3)/4 = 0.75, whatever the arrival order; −0 + 0 sums to +0.
      expect(Array.from(mean)).toEqual(Array.from(averageGradients(epochs)[0]));
      expect(mean[0]).toBe(0.75);
      expect(Object.is(mean[1], 0)).toBe(true);
    }
    // A smaller network (other sizes) gets new sums.
    reducer.start(2);
    reducer.add(1, [f32(4), f32(1, 1)]);
    reducer.add(0, [f32(2), f32(3, 5)]);
    // An epoch handed over again (as it arrived, then with the interval's results) counts once.
    reducer.add(1, [f32(1000), f32(0, 0)]);
    expect(reducer.mean().map((a) => Array.from(a))).toEqual([[3], [2, 3]]);
  });

  it("folds the epochs that continue the order in groups of up to four, bit-identical to one at a time", () => {
    // Values of very different magnitudes, so that any change of the order of additions changes the sums' bits.
    const rng = Rng.keyed(7, 3);
    const epochs = Array.from({ length: 11 }, () => [Float32Array.from({ length: 37 }, () => (rng.uniform() - 0.5) * 10 ** (rng.below(16) - 8))]);
    const expected = Array.from(averageGradients(epochs)[0]);
    const reducer = new GradientReducer();
    // Arrival orders with bursts of every size: fold after each arrival, after some, or only at the end.
    for (const [order, foldEvery] of [
      [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1],
      [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 100],
      [[10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0], 1],
      [[2, 1, 0, 5, 4, 3, 9, 8, 7, 6, 10], 3],
      [[1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10], 2],
    ] as const) {
      reducer.start(epochs.length);
      order.forEach((k, n) => {
        reducer.add(k, epochs[k]);
        if ((n + 1) % foldEvery === 0) reducer.foldReady();
      });
      expect(Array.from(reducer.mean()[0])).toEqual(expected);
    }
  });

  it("a reduce group's sums (prefixSums on a worker) continued by the coordinator's reducer (resumeFrom): bit-identical, for every group size and arrival order", () => {
    const rng = Rng.keyed(11, 2);
    const epochs = Array.from({ length: 7 }, () => [Float32Array.from({ length: 23 }, () => (rng.uniform() - 0.5) * 10 ** (rng.below(16) - 8)), Float32Array.of(rng.uniform())]);
    const expected = averageGradients(epochs).map((a) => Array.from(a));
    const coordinator = new GradientReducer();
    for (let n = 1; n <= epochs.length; n++) {
      const worker = new GradientReducer();
      worker.start(epochs.length);
      // The worker keeps its group's results as they finish, in any order.
      for (let k = n - 1; k >= 0; k--) worker.add(k, epochs[k]);
      const sums = worker.prefixSums();
      if (n === epochs.length) expect(sums.map((a) => Array.from(a)), "a whole interval's group sends the mean").toEqual(expected);
      for (const othersFirst of [true, false]) {
        coordinator.start(epochs.length);
        const rest = () => {
          for (let k = epochs.length - 1; k >= n; k--) {
            coordinator.add(k, epochs[k]);
            coordinator.foldReady();
          }
        };
        if (othersFirst) rest();
        // Σg² as the pool sums it to check the group's sums: a mark that is not the true sum shows where it is kept.
        const mark = sumOfSquares(sums) + 1;
        coordinator.resumeFrom(n, sums.map((a) => a.slice()), mark);
        // The group's own results, which carry no gradients, are below the sums' epoch: skipped.
        for (let k = 0; k < n; k++) coordinator.add(k, [new Float32Array(0), new Float32Array(0)]);
        if (!othersFirst) rest();
        const mean = coordinator.mean();
        expect(mean.map((a) => Array.from(a)), `group of ${n}, others ${othersFirst ? "before" : "after"}`).toEqual(expected);
        // Only sums that are the whole mean keep their Σg²: epochs folded into them make it unknown.
        expect(coordinator.meanSumSquares(), `group of ${n}`).toBe(n === epochs.length ? mark : null);
      }
    }
    // A reducer fed epoch by epoch does not know its mean's Σg²; nor does a new interval after one that did.
    const alone = new GradientReducer();
    alone.start(2);
    alone.add(0, [f32(1)]);
    alone.add(1, [f32(2)]);
    alone.mean();
    expect(alone.meanSumSquares()).toBeNull();
    alone.start(1);
    alone.resumeFrom(1, [f64(3)], 9);
    expect(alone.meanSumSquares()).toBe(9);
    alone.start(1);
    expect(alone.meanSumSquares()).toBeNull();
    // The sums a worker returns are its caller's: the next group gets new ones.
    const worker = new GradientReducer();
    worker.start(2);
    worker.add(0, [f32(1)]);
    worker.add(1, [f32(2)]);
    const first = worker.prefixSums();
    worker.start(2);
    worker.add(0, [f32(5)]);
    worker.add(1, [f32(7)]);
    expect(worker.prefixSums()[0]).not.toBe(first[0]);
    expect(Array.from(first[0])).toEqual([1.5]);
  });

  it("refuses a group that is not the interval's first epochs, and continuing twice", () => {
    const worker = new GradientReducer();
    worker.start(4);
    worker.add(1, [f32(1)]);
    worker.add(2, [f32(1)]);
    expect(() => worker.prefixSums()).toThrow(/the 2 kept epochs are not the interval's first ones/);
    const coordinator = new GradientReducer();
    coordinator.start(4);
    coordinator.resumeFrom(2, [f64(1)]);
    expect(() => coordinator.resumeFrom(2, [f64(1)])).toThrow(/cannot continue from 2 of 4 epochs after 2/);
    coordinator.start(4);
    expect(() => coordinator.resumeFrom(5, [f64(1)])).toThrow(/cannot continue from 5 of 4/);
  });

  it("refuses a mean before every epoch is in", () => {
    const reducer = new GradientReducer();
    reducer.start(3);
    reducer.add(0, [f32(1)]);
    reducer.add(2, [f32(1)]);
    expect(() => reducer.mean()).toThrow(/2 of 3 epochs added/);
  });
});

describe("firstNonFinite", () => {
  it("finds NaN and ±Infinity in float32, float64 and plain arrays, and nothing in finite values", () => {
    const finite = [0, -0, 1, -3.5, 1e-45, 3.4e38, -3.4e38];
    for (const make of [(xs: number[]) => Float32Array.from(xs), (xs: number[]) => Float64Array.from(xs), (xs: number[]) => xs]) {
      expect(firstNonFinite(make(finite))).toBe(-1);
      for (const bad of [Number.NaN, Infinity, -Infinity]) expect(firstNonFinite(make([...finite, bad, 1]))).toBe(finite.length);
    }
    // A float32 view at an offset inside a larger buffer.
    const buffer = new Float32Array([Number.NaN, 1, 2, Infinity]);
    expect(firstNonFinite(buffer.subarray(1, 3))).toBe(-1);
    expect(firstNonFinite(buffer.subarray(1))).toBe(2);
    expect(firstNonFinite(Float64Array.of(1.7976931348623157e308))).toBe(-1);
    // Long arrays (the unrolled loop and its tail): the first of several, wherever it is.
    for (const n of [4096, 4099]) {
      for (const make of [(k: number) => new Float32Array(k), (k: number) => new Float64Array(k)]) {
        const x = make(n).fill(1);
        expect(firstNonFinite(x)).toBe(-1);
        for (const at of [n - 1, n - 3, 1, 0]) {
          x[at] = at % 2 ? Infinity : NaN;
          expect(firstNonFinite(x)).toBe(at);
        }
      }
    }
  });
});

describe("clipGlobalNorm (torch.nn.utils.clip_grad_norm_)", () => {
  it("global norm over all parts: ‖(3, 0 | 4)‖ = 5", () => {
    expect(globalNorm([f64(3, 0), f64(4)])).toBe(5);
  });

  it("Σg² in four interleaved sums, element i of each part into sum i mod 4, added as (s₀ + s₁) + (s₂ + s₃)", () => {
    // Squares 1e16, 1, 1, 1, 1 | 1, 1. Near 1e16 the spacing of float64 is 2, so 1e16 + 1 rounds back to 1e16 (a tie,
    // to the even one), and 1e16 + 2 is exact. One sum left to right stays at 1e16. Here s₀ = (1e16 + 1) + 1 = 1e16
    // (element 4, then the second part's element 0), s₁ = 1 + 1 = 2, s₂ = s₃ = 1: (1e16 + 2) + 2 = 1e16 + 4.
    expect(sumOfSquares([f64(1e8, 1, 1, 1, 1), f64(1, 1)])).toBe(1e16 + 4);
    let sequential = 0;
    for (const x of [1e8, 1, 1, 1, 1, 1, 1]) sequential += x * x;
    expect(sequential).toBe(1e16);
    // Tails of one to three elements fill sums 0, 1, 2; s₃ gets 2² once the part has four.
    expect(sumOfSquares([f64(2)])).toBe(4);
    expect(sumOfSquares([f64(1, 2, 3)])).toBe(14);
    expect(sumOfSquares([f64(1, 2, 3, 4, 5, 6, 7)])).toBe(140);
    expect(sumOfSquares([])).toBe(0);
  });

  it("norm 5, max 1: coef = 1/(5 + 1e−6), applied to every part; returns the pre-clip norm", () => {
    const parts = [f64(3, 0), f64(4)];
    const norm = clipGlobalNorm(parts, 1);
    expect(norm).toBe(5);
    const coef = 1 / (5 + 1e-6); // 0.19999996
    expect(parts[0][0]).toBeCloseTo(3 * coef, 15); // 0.59999988
    expect(parts[0][1]).toBe(0);
    expect(parts[1][0]).toBeCloseTo(4 * coef, 15); // 0.79999984
    expect(globalNorm(parts)).toBeLessThan(1);
    expect(globalNorm(parts)).toBeGreaterThan(0.9999998);
  });

  it("norm equal to max still scales by max/(norm + 1e−6) < 1, as torch does", () => {
    const parts = [f64(3, 0), f64(4)];
    clipGlobalNorm(parts, 5);
    expect(parts[0][0]).toBeCloseTo((3 * 5) / 5.000001, 15); // 2.9999994
    expect(parts[0][0]).toBeLessThan(3);
  });

  it("norm below max: untouched", () => {
    const parts = [f64(3, 0), f64(4)];
    expect(clipGlobalNorm(parts, 10)).toBe(5);
    expect(Array.from(parts[0])).toEqual([3, 0]);
    expect(Array.from(parts[1])).toEqual([4]);
  });
});

describe("adamStep (torch.optim.Adam, lr 0.1, betas 0.9/0.999, eps 1e−8)", () => {
  const h = { learningRate: 0.1, betas: [0.9, 0.999] as [number, number], eps: 1e-8 };

  /**
   * torch's single-tensor Adam on float32 tensors, every operation rounded to float32:
   *   m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  step_size = lr/(1 − β1^t);
   *   denom = √v / √(1 − β2^t) + eps;  w ← w − step_size · m/denom.
   */
  function torchAdam(w: number[], m: number[], v: number[], g: number[], t: number): void {
    const r = Math.fround;
    const [b1, b2] = h.betas;
    const stepSize = h.learningRate / (1 - b1 ** t);
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    for (let i = 0; i < w.length; i++) {
      m[i] = r(r(b1 * m[i]) + r((1 - b1) * g[i]));
      v[i] = r(r(b2 * v[i]) + r(r((1 - b2) * g[i]) * g[i]));
      const denom = r(r(r(Math.sqrt(v[i])) / bc2Sqrt) + h.eps);
      w[i] = r(w[i] - r(stepSize * r(m[i] / denom)));
    }
  }

  it("two steps on a 3-element vector match torch's formula", () => {
    const w0 = [1, -0.5, 2];
    const g1 = [0.1, -0.2, 0];
    const g2 = [0.3, 0.1, 0.5];

    const weights = [f32(...w0)];
    const state = newAdamState([3]);
    expect(state.step).toBe(0);

    // Step 1: m = 0.1 g = (0.01, −0.02, 0); v = 0.001 g² = (1e−5, 4e−5, 0); step_size = 0.1/0.1 = 1;
    // denom = √v/√0.001 + 1e−8 = (0.1, 0.2, 0) + 1e−8 → w = (1 − 0.1, −0.5 + 0.1, 2 − 0) = (0.9, −0.4, 2):
    // the first Adam step moves every weight with a non-zero gradient by lr against the gradient's sign.
    adamStep(weights, [f64(...g1)], state, h);
    expect(state.step).toBe(1);
    expect(weights[0][0]).toBeCloseTo(0.9, 6);
    expect(weights[0][1]).toBeCloseTo(-0.4, 6);
    expect(weights[0][2]).toBe(2); // zero gradient: exactly unchanged (0/(0 + eps))
    expect(state.m[0][0]).toBeCloseTo(0.01, 8);
    expect(state.v[0][1]).toBeCloseTo(4e-5, 10);

    // Step 2: m = 0.9 m + 0.1 g2 = (0.039, −0.008, 0.05); v = 0.999 v + 0.001 g2² = (9.999e−5, 4.996e−5, 2.5e−4);
    // step_size = 0.1/0.19 = 0.5263158; √(1 − 0.999²) = √0.001999 = 0.0447102;
    // denom = (0.223652, 0.158089, 0.353642); update = (0.0917781, −0.0266338, 0.0744133);
    // w = (0.8082219, −0.3733662, 1.9255867).
    adamStep(weights, [f64(...g2)], state, h);
    expect(state.step).toBe(2);
    expect(weights[0][0]).toBeCloseTo(0.8082219, 6);
    expect(weights[0][1]).toBeCloseTo(-0.3733662, 6);
    expect(weights[0][2]).toBeCloseTo(1.9255867, 6);
    expect(state.m[0][0]).toBeCloseTo(0.039, 8);
    expect(state.m[0][1]).toBeCloseTo(-0.008, 8);
    expect(state.v[0][0]).toBeCloseTo(9.999e-5, 10);
    expect(state.v[0][2]).toBeCloseTo(2.5e-4, 10);

    // Against the float32 emulation of torch: equal to a few float32 ulps.
    const w = [...w0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    torchAdam(w, m, v, g1, 1);
    torchAdam(w, m, v, g2, 2);
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(weights[0][i] - w[i])).toBeLessThanOrEqual(4 * 2 ** -23 * Math.abs(w[i]));
      expect(Math.abs(state.m[0][i] - m[i])).toBeLessThanOrEqual(4 * 2 ** -23 * Math.abs(m[i]));
      expect(Math.abs(state.v[0][i] - v[i])).toBeLessThanOrEqual(4 * 2 ** -23 * Math.abs(v[i]));
    }
  });

  it("moments are stored as float32 and every part of the vector is updated", () => {
    const weights = [f32(1, 1), f32(1)];
    const state = newAdamState([2, 1]);
    expect(state.m[0]).toBeInstanceOf(Float32Array);
    expect(state.v[1]).toBeInstanceOf(Float32Array);
    adamStep(weights, [f64(0.1, 0), f64(-0.3)], state, h);
    expect(state.m[0]).toBeInstanceOf(Float32Array);
    // 0.1·0.1 = 0.01 is not a float32 value: the stored moment is its float32 rounding.
    expect(state.m[0][0]).toBe(Math.fround(0.01));
    expect(state.m[0][0]).not.toBe(0.01);
    expect(weights[1][0]).toBeCloseTo(1.1, 6);
    expect(weights[0][1]).toBe(1);
  });
});

describe("optimizerStep: clip, Adam, projection or e^θ in one pass", () => {
  const h = { learningRate: 0.05, betas: [0.9, 0.999] as [number, number], eps: 1e-8, maxGradNorm: 0.5 };
  const rng = Rng.keyed(11, 5);
  const vector = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
  const grads = () => [Float64Array.from({ length: 50 }, () => rng.uniform() - 0.5), Float64Array.from({ length: 7 }, () => rng.uniform() - 0.5)];

  /** The step as its parts define it: ∂L/∂θ, the norm and clip, Adam in place on copies, then e^θ or the projection. */
  function reference(cur: OptimizedParameters, g: Float64Array[], log: boolean): { weights: Float32Array[]; logWeights: Float32Array[] | null; m: Float32Array[]; v: Float32Array[]; norm: number } {
    const gs = g.map((x) => x.slice());
    if (log) gs.forEach((x, p) => logSpaceGradient(x, cur.weights[p]));
    const norm = clipGlobalNorm(gs, h.maxGradNorm);
    const params = (cur.logWeights ?? cur.weights).map((p) => p.slice());
    const adam = { step: cur.adam.step, m: cur.adam.m.map((m) => m.slice()), v: cur.adam.v.map((v) => v.slice()) };
    adamStep(params, gs, adam, h);
    const weights = log ? params.map(expWeights) : params;
    if (!log) weights.forEach(projectNonNegative);
    return { weights, logWeights: log ? params : null, m: adam.m, v: adam.v, norm };
  }

  for (const log of [false, true]) {
    it(`${log ? "log" : "linear"}: bit-identical to the reference over several steps, with and without a spare to write over`, () => {
      // Small weights, so that the projection binds under "linear".
      const w0 = [vector(50, () => 0.05 * rng.uniform()), vector(7, () => 0.05 * rng.uniform())];
      let plain: OptimizedParameters = { weights: w0, logWeights: log ? w0.map(logWeights) : null, adam: newAdamState([50, 7]) };
      let reused = plain;
      let spare: OptimizedParameters | null = null;
      for (let t = 0; t < 4; t++) {
        const g = grads();
        const want = reference(plain, g, log);
        const a = optimizerStep(plain, g.map((x) => x.slice()), h, ["rec", "ff"]);
        const b = optimizerStep(reused, g.map((x) => x.slice()), h, ["rec", "ff"], "weights", { spare });
        if (!a.applied || !b.applied) throw new Error("step not applied");
        for (const step of [a, b]) {
          expect(step.gradNorm).toBe(want.norm);
          expect(step.next.weights.map((x) => Array.from(x))).toEqual(want.weights.map((x) => Array.from(x)));
          expect(step.next.logWeights?.map((x) => Array.from(x)) ?? null).toEqual(want.logWeights?.map((x) => Array.from(x)) ?? null);
          expect(step.next.adam.m.map((x) => Array.from(x))).toEqual(want.m.map((x) => Array.from(x)));
          expect(step.next.adam.v.map((x) => Array.from(x))).toEqual(want.v.map((x) => Array.from(x)));
          expect(step.next.adam.step).toBe(t + 1);
        }
        // The spare's moments (and θ) were written over; the weights are always new arrays, never the current ones.
        if (spare) expect(b.next.adam.m[0]).toBe(spare.adam.m[0]);
        expect(b.next.weights[0]).not.toBe(reused.weights[0]);
        if (!log) expect(Array.from(b.next.weights[0]).some((x) => x === 0)).toBe(true);
        spare = reused;
        reused = b.next;
        plain = a.next;
      }
    });
  }

  it("takes a Σg² handed in (the pool's check of a reduce group's sums) instead of summing it, with the kernel and without; not under \"log\"", () => {
    const w0 = [vector(50, () => 0.05 + rng.uniform()), vector(7, () => 0.05 + rng.uniform())];
    for (const kernel of [null, AdamKernel.create([50, 7])]) {
      for (const log of [false, true]) {
        const cur: OptimizedParameters = { weights: w0, logWeights: log ? w0.map(logWeights) : null, adam: newAdamState([50, 7]) };
        const g = grads();
        // Copied out at once: the kernel's moments are views of its memory, which the next steps write over.
        const step = (sumSquares: number | null) => {
          const s = optimizerStep(cur, g.map((x) => x.slice()), h, ["rec", "ff"], "weights", { kernel }, sumSquares);
          if (!s.applied) throw new Error("step not applied");
          const { weights, logWeights, adam } = s.next;
          const copy = (parts: Float32Array[] | null) => parts?.map((x) => Array.from(x)) ?? null;
          return { gradNorm: s.gradNorm, weights: copy(weights), logWeights: copy(logWeights), m: copy(adam.m)!, v: copy(adam.v) };
        };
        const summed = step(null);
        // The pool's sum is sumOfSquares over the same arrays: the step is the same, bit for bit.
        expect(step(sumOfSquares(g))).toEqual(summed);
        // Four times Σg² doubles the norm and halves the clip's factor: under "linear" the value handed in is the one
        // used; under "log" the gradient is ∂L/∂θ, whose Σg² is summed anew.
        const quadrupled = step(4 * sumOfSquares(g));
        if (log) expect(quadrupled).toEqual(summed);
        else {
          expect(quadrupled.gradNorm).toBe(Math.sqrt(4 * sumOfSquares(g)));
          expect(quadrupled.m[0][0]).not.toBe(summed.m[0][0]);
        }
        // A non-finite sum handed in (the pool passes it on when it was the model's): the part is named as before.
        const bad = g.map((x) => x.slice());
        bad[1][3] = NaN;
        expect(optimizerStep(cur, bad, h, ["rec", "ff"], "weights", { kernel }, sumOfSquares(bad))).toEqual({ applied: false, gradNorm: NaN, problem: "ff gradient is not finite" });
      }
    }
  });

  it("a clip coefficient of exactly 1 is not applied (a norm below max_grad_norm leaves g as it is)", () => {
    const cur: OptimizedParameters = { weights: [f32(1, 1)], logWeights: null, adam: newAdamState([2]) };
    const step = optimizerStep(cur, [f64(0.03, -0.04)], { ...h, maxGradNorm: 1 }, ["rec"]);
    if (!step.applied) throw new Error("step not applied");
    expect(step.gradNorm).toBe(0.05);
    expect(step.next.adam.m[0][0]).toBe(Math.fround(0.1 * 0.03));
  });

  it("a NaN anywhere in a large gradient or a step to a non-finite weight leaves the current parameters as they were", () => {
    const n = 10_003;
    const cur: OptimizedParameters = { weights: [vector(n, () => 1)], logWeights: null, adam: newAdamState([n]) };
    for (const at of [0, 5, n - 1]) {
      const g = [Float64Array.from({ length: n }, () => 0.1)];
      g[0][at] = at === 5 ? -Infinity : NaN;
      expect(optimizerStep(cur, g, h, ["recurrent"])).toEqual({ applied: false, gradNorm: NaN, problem: "recurrent gradient is not finite" });
    }
    const spare: OptimizedParameters = { weights: [vector(n, () => 2)], logWeights: null, adam: newAdamState([n]) };
    const huge = optimizerStep(cur, [Float64Array.from({ length: n }, () => 1)], { ...h, learningRate: 1e39 }, ["recurrent"], "weights", { spare });
    expect(huge).toMatchObject({ applied: false, problem: "the step would make a weight non-finite (learning rate 1e+39)" });
    expect(Array.from(cur.weights[0]).every((x) => x === 1)).toBe(true);
    expect(cur.adam.m[0].every((x) => x === 0)).toBe(true);
  });
});
