/**
 * The van Rossum spike-train loss (src/model/van-rossum.ts): its value on a train small enough to compute by hand,
 * its gradient against numeric derivatives, and the engines against each other with a teacher in the network, in the
 * three surrogate regimes of engines.test.ts (see its header for the tolerance reasoning).
 */
import { describe, expect, it } from "vitest";
import { perturbLognormal } from "../src/training/student.js";
import { NetworkSpec } from "../src/model/network.js";
import { Rng } from "../src/model/rng.js";
import { SpikeTrainLayout, vanRossumFilterMatrix, vanRossumImpulseResponse, VanRossumKernel, vanRossumLoss } from "../src/model/van-rossum.js";
import { EpochResult } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { expectGradientsAgree, expectSameEpoch, maxRelError, task } from "./helpers/engine-checks.js";
import { smallNetwork, SmallNetworkOptions } from "./helpers/small-network.js";

const f64 = (...xs: number[]) => Float64Array.from(xs);
/** [b][t][j] storage. */
const layout = (trials: number, steps: number, neurons: number): SpikeTrainLayout => ({ trials, steps, neurons, sb: steps * neurons, st: neurons, sj: 1 });
/** The single-exponential filter of time constant τ (van_rossum_tau_rise = 0). */
const single = (tau: number): VanRossumKernel => ({ tauRise: 0, tauDecay: tau });

describe("vanRossumLoss", () => {
  // τ = dt/ln 2 makes the per-step decay exactly 1/2. Student spikes at step 0, teacher at step 1, T = 3:
  // f_student = 1, 0.5, 0.25; f_teacher = 0, 1, 0.5; diff = 1, −0.5, −0.25; Σ diff² = 1.3125;
  // L = 1.3125 · dt/τ = 1.3125 · ln 2 = 0.909756...
  const tau = 1 / Math.LN2;

  it("value of a hand-computed example", () => {
    const L = vanRossumLoss(layout(1, 3, 1), f64(1, 0, 0), f64(0, 1, 0), 1, single(tau), null);
    expect(L).toBeCloseTo(1.3125 * Math.LN2, 14);
    expect(L).toBeCloseTo(0.909756, 6);
  });

  it("gradient of the hand-computed example by the reverse recursion", () => {
    // c = 2·dt/τ/(B·N) = 2 ln 2; u_2 = −0.25c; u_1 = −0.5c + u_2/2 = −0.625c; u_0 = c + u_1/2 = 0.6875c; ×weight 3.
    const grad = new Float64Array(3);
    vanRossumLoss(layout(1, 3, 1), f64(1, 0, 0), f64(0, 1, 0), 1, single(tau), grad, 3);
    const c = 2 * Math.LN2 * 3;
    expect(grad[0]).toBeCloseTo(0.6875 * c, 13);
    expect(grad[1]).toBeCloseTo(-0.625 * c, 13);
    expect(grad[2]).toBeCloseTo(-0.25 * c, 13);
  });

  it("is zero for identical trains and symmetric in its arguments", () => {
    const s = f64(0, 1, 1, 0, 0, 1);
    const grad = new Float64Array(6).fill(7);
    expect(vanRossumLoss(layout(1, 6, 1), s, s, 1, single(10), grad)).toBe(0);
    expect(Array.from(grad)).toEqual([0, 0, 0, 0, 0, 0]);
    const r = f64(1, 0, 0, 0, 1, 0);
    expect(vanRossumLoss(layout(1, 6, 1), s, r, 1, single(10), null)).toBe(vanRossumLoss(layout(1, 6, 1), r, s, 1, single(10), null));
  });

  it("an unmatched isolated spike costs about 1/2 (the continuous van Rossum distance) when dt ≪ τ", () => {
    const T = 3000;
    const s = new Float64Array(T);
    s[10] = 1;
    // Exactly (dt/τ)/(1 − e^{−2dt/τ}) ≈ 1/2 + dt/(2τ) summed to convergence: 0.01/(1 − e^{−0.02}) = 0.50500.
    const L = vanRossumLoss(layout(1, T, 1), s, new Float64Array(T), 0.01, single(1), null);
    expect(L).toBeCloseTo(0.01 / (1 - Math.exp(-0.02)), 10);
    expect(Math.abs(L - 0.5)).toBeLessThan(0.006);
  });

  it("averages over (trial, neuron) and reads any layout", () => {
    // 2 trials × 3 neurons: only (b=1, j=2) differs, by the example above, so L = 0.909758/6.
    const B = 2;
    const T = 3;
    const N = 3;
    const student = new Float64Array(B * T * N);
    const teacher = new Float64Array(B * T * N);
    // Neuron-major [j][t][b] storage: index b + t·B + j·T·B.
    const l: SpikeTrainLayout = { trials: B, steps: T, neurons: N, sb: 1, st: B, sj: T * B };
    student[1 + 0 * B + 2 * T * B] = 1;
    teacher[1 + 1 * B + 2 * T * B] = 1;
    // The other pairs carry identical trains.
    for (const k of [0, 5, 9]) student[k] = teacher[k] = 1;
    const grad = new Float64Array(B * T * N);
    expect(vanRossumLoss(l, student, teacher, 1, single(tau), grad)).toBeCloseTo((1.3125 * Math.LN2) / 6, 14);
    expect(grad[1 + 0 * B + 2 * T * B]).toBeCloseTo((0.6875 * 2 * Math.LN2) / 6, 13);
    expect(grad.filter((g, k) => g !== 0 && ![1, 3, 5].map((t) => 1 + (t >> 1) * B + 2 * T * B).includes(k)).length).toBe(0);
  });

  it("gradient equals the numeric derivative with respect to each (fractional) spike", () => {
    const rng = new Rng(5);
    const l = layout(2, 30, 3);
    const n = 2 * 30 * 3;
    const s = Float64Array.from({ length: n }, () => (rng.uniform() < 0.2 ? 1 : 0));
    const r = Float64Array.from({ length: n }, () => (rng.uniform() < 0.2 ? 1 : 0));
    const grad = new Float64Array(n);
    vanRossumLoss(l, s, r, 0.5, single(4), grad, 2);
    for (let k = 0; k < n; k += 7) {
      const h = 1e-4;
      const up = Float64Array.from(s);
      const down = Float64Array.from(s);
      up[k] += h;
      down[k] -= h;
      const numeric = (vanRossumLoss(l, up, r, 0.5, single(4), null, 2) - vanRossumLoss(l, down, r, 0.5, single(4), null, 2)) / (2 * h) * 2;
      expect(grad[k]).toBeCloseTo(numeric, 8);
    }
  });

  it("the filter matrix of the tfjs engine is the same recursion", () => {
    const T = 7;
    const K = vanRossumFilterMatrix(T, 1, single(3));
    const s = [1, 0, 1, 1, 0, 0, 1];
    let f = 0;
    for (let t = 0; t < T; t++) {
      f = f * Math.exp(-1 / 3) + s[t];
      const viaK = s.reduce((acc, x, u) => acc + K[t * T + u] * x, 0);
      expect(viaK).toBeCloseTo(f, 6);
    }
  });
});

const randomTrain = (rng: Rng, n: number, p: number) => Float64Array.from({ length: n }, () => (rng.uniform() < p ? 1 : 0));

/**
 * The original's chunked filter (MODEL-HEAD §2) written as its window sums with W = chunk length: in chunk step t,
 * r[t] = Σ_{k≤t} b^k x[t−k] + r̂·b^{t+shift}, y[t] = Σ_{k≤t} a^k r[t−k] + ŷ·a^{t+shift}, with r̂, ŷ the previous chunk's
 * last values. shift = 0 is the original (one step under-decayed), shift = 1 the exact carry.
 */
function chunkedFilter(x: Float64Array, chunk: number, dt: number, k: VanRossumKernel, shift: 0 | 1): Float64Array {
  const b = Math.exp(-dt / k.tauRise);
  const a = Math.exp(-dt / k.tauDecay);
  const y = new Float64Array(x.length);
  const r = new Float64Array(chunk);
  let rHat = 0;
  let yHat = 0;
  for (let c0 = 0; c0 < x.length; c0 += chunk) {
    for (let t = 0; t < chunk; t++) {
      let sum = 0;
      for (let m = 0; m <= t; m++) sum += b ** m * x[c0 + t - m];
      r[t] = sum + rHat * b ** (t + shift);
    }
    for (let t = 0; t < chunk; t++) {
      let sum = 0;
      for (let m = 0; m <= t; m++) sum += a ** m * r[t - m];
      y[c0 + t] = sum + yHat * a ** (t + shift);
    }
    rHat = r[chunk - 1];
    yHat = y[c0 + chunk - 1];
  }
  return y;
}

const meanSquaredDiff = (u: Float64Array, v: Float64Array) => u.reduce((acc, x, i) => acc + (x - v[i]) ** 2, 0) / u.length;

describe("vanRossumLoss, double exponential (van_rossum_tau_rise > 0)", () => {
  /** h[n] = (a^{n+1} − b^{n+1})/(a − b), the closed form of the impulse response. */
  const closedForm = (n: number, dt: number, k: VanRossumKernel) => {
    const a = Math.exp(-dt / k.tauDecay);
    const b = Math.exp(-dt / k.tauRise);
    return (a ** (n + 1) - b ** (n + 1)) / (a - b);
  };
  const argmax = (h: Float64Array) => h.reduce((m, x, n) => (x > h[m] ? n : m), 0);

  it("impulse response, 10/100 ms at dt = 1: peak 8.18 at n = 25, Σh = 1/((1 − a)(1 − b)) = 1056.1", () => {
    const k = { tauRise: 10, tauDecay: 100 };
    const h = vanRossumImpulseResponse(5000, 1, k);
    expect(argmax(h)).toBe(25);
    expect(h[25]).toBeCloseTo(8.18, 2);
    expect(h[25]).toBeCloseTo(closedForm(25, 1, k), 12);
    for (const n of [0, 1, 7, 100, 999]) expect(h[n]).toBeCloseTo(closedForm(n, 1, k), 11);
    const sum = h.reduce((acc, x) => acc + x, 0);
    expect(sum).toBeCloseTo(1 / ((1 - Math.exp(-0.01)) * (1 - Math.exp(-0.1))), 8);
    expect(Math.round(sum)).toBe(1056);
  });

  it("impulse response, 5/20 ms at dt = 1: peak 3.57 at n = 8", () => {
    const h = vanRossumImpulseResponse(500, 1, { tauRise: 5, tauDecay: 20 });
    expect(argmax(h)).toBe(8);
    expect(h[8]).toBeCloseTo(3.565, 3);
  });

  // dt = 1, b = e^{−1/τr} = 1/2, a = e^{−1/τd} = 3/4. Student spikes at step 0, teacher at step 1, T = 3:
  // r_student = 1, 1/2, 1/4; y_student = 1, 3/4 + 1/2 = 5/4, 15/16 + 1/4 = 19/16;
  // r_teacher = 0, 1, 1/2;   y_teacher = 0, 1, 3/4 + 1/2 = 5/4;
  // diff = 1, 1/4, −1/16, Σ diff² = 1 + 1/16 + 1/256 = 273/256, L = (273/256)/3 = 0.35546875.
  const half = { tauRise: 1 / Math.LN2, tauDecay: 1 / Math.log(4 / 3) };

  it("value of a hand-computed two-spike example", () => {
    expect(vanRossumLoss(layout(1, 3, 1), f64(1, 0, 0), f64(0, 1, 0), 1, half, null)).toBeCloseTo(273 / 768, 14);
  });

  it("gradient of the two-spike example by the two-stage reverse recursion", () => {
    // g = 2·diff/3 = 2/3, 1/6, −1/24. p_2 = −1/24, q_2 = −1/24; p_1 = (3/4)p_2 + 1/6 = 13/96, q_1 = q_2/2 + p_1 = 11/96;
    // p_0 = (3/4)p_1 + 2/3 = 295/384, q_0 = q_1/2 + p_0 = 317/384 (= Σ_t g_t·h[t] = 2/3 + (5/4)/6 − (19/16)/24). ×weight 3.
    const grad = new Float64Array(3);
    vanRossumLoss(layout(1, 3, 1), f64(1, 0, 0), f64(0, 1, 0), 1, half, grad, 3);
    expect(grad[0]).toBeCloseTo((3 * 317) / 384, 13);
    expect(grad[1]).toBeCloseTo((3 * 11) / 96, 13);
    expect(grad[2]).toBeCloseTo(-3 / 24, 13);
  });

  it("a single spike the other train lacks costs Σh²/(B·T·N), the original's mean with an unnormalised kernel", () => {
    // 10/100 ms, dt = 1, spike at step 10 of T = 4000 (the kernel is e^{−39.9} at the end): Σ_n h[n]² in closed form,
    // (a²/(1 − a²) − 2ab/(1 − ab) + b²/(1 − b²))/(a − b)² = 5070.57. 2 trials × 3 neurons, one pair differs.
    const k = { tauRise: 10, tauDecay: 100 };
    const a = Math.exp(-0.01);
    const b = Math.exp(-0.1);
    const sumSq = (a ** 2 / (1 - a ** 2) - (2 * a * b) / (1 - a * b) + b ** 2 / (1 - b ** 2)) / (a - b) ** 2;
    expect(sumSq).toBeCloseTo(5070.57, 2);
    const T = 4000;
    const l = layout(2, T, 3);
    const s = new Float64Array(2 * T * 3);
    s[1 * T * 3 + 10 * 3 + 2] = 1;
    expect(vanRossumLoss(l, s, new Float64Array(s.length), 1, k, null)).toBeCloseTo(sumSq / (2 * T * 3), 10);
  });

  it("is zero for identical trains and symmetric in its arguments", () => {
    const rng = new Rng(2);
    const k = { tauRise: 2, tauDecay: 7 };
    const s = randomTrain(rng, 40, 0.3);
    const r = randomTrain(rng, 40, 0.3);
    const grad = new Float64Array(40).fill(7);
    expect(vanRossumLoss(layout(2, 10, 2), s, s, 1, k, grad)).toBe(0);
    expect(grad.every((g) => g === 0)).toBe(true);
    expect(vanRossumLoss(layout(2, 10, 2), s, r, 1, k, null)).toBe(vanRossumLoss(layout(2, 10, 2), r, s, 1, k, null));
  });

  it("carries the filter across chunks exactly (b^{t+1}, a^{t+1}), which the original's under-decayed carry misses by ~2%", () => {
    // One trial, one neuron, T = 500 in 10 chunks of 50 steps, 5% spike probability, 10/100 ms at dt = 1. Measured:
    // L = 185.49 over the epoch; the original's carry (r̂·b^t, ŷ·a^t) gives 189.52, 2.2% more (5/20 ms: 2.1% more).
    const rng = new Rng(3);
    const T = 500;
    const s = randomTrain(rng, T, 0.05);
    const r = randomTrain(rng, T, 0.05);
    for (const k of [{ tauRise: 10, tauDecay: 100 }, { tauRise: 5, tauDecay: 20 }]) {
      const L = vanRossumLoss(layout(1, T, 1), s, r, 1, k, null);
      const exact = meanSquaredDiff(chunkedFilter(s, 50, 1, k, 1), chunkedFilter(r, 50, 1, k, 1));
      const original = meanSquaredDiff(chunkedFilter(s, 50, 1, k, 0), chunkedFilter(r, 50, 1, k, 0));
      expect(Math.abs(L / exact - 1)).toBeLessThan(1e-12);
      expect(original / L - 1).toBeGreaterThan(0.015);
      expect(original / L - 1).toBeLessThan(0.03);
    }
  });

  it("gradient equals the numeric derivative with respect to each (fractional) spike", () => {
    const rng = new Rng(5);
    const l = layout(2, 40, 3);
    const n = 2 * 40 * 3;
    const k = { tauRise: 1.5, tauDecay: 6 };
    const s = randomTrain(rng, n, 0.2);
    const r = randomTrain(rng, n, 0.2);
    const grad = new Float64Array(n);
    vanRossumLoss(l, s, r, 0.5, k, grad, 2);
    let checked = 0;
    for (let i = 0; i < n; i += 5) {
      const h = 1e-4;
      const up = Float64Array.from(s);
      const down = Float64Array.from(s);
      up[i] += h;
      down[i] -= h;
      // The loss is returned unweighted, its gradient weighted (×2).
      const numeric = ((vanRossumLoss(l, up, r, 0.5, k, null, 2) - vanRossumLoss(l, down, r, 0.5, k, null, 2)) / (2 * h)) * 2;
      expect(grad[i]).toBeCloseTo(numeric, 8);
      if (Math.abs(grad[i]) > 1e-3) checked++;
    }
    expect(checked).toBeGreaterThan(20);
  });

  it("the tfjs engine's filter matrix is the product K_a·K_b of the two single-exponential matrices", () => {
    const T = 12;
    const k = { tauRise: 2, tauDecay: 5 };
    const K = vanRossumFilterMatrix(T, 1, k);
    const Ka = vanRossumFilterMatrix(T, 1, single(5));
    const Kb = vanRossumFilterMatrix(T, 1, single(2));
    for (let t = 0; t < T; t++)
      for (let u = 0; u < T; u++) {
        let p = 0;
        for (let m = 0; m < T; m++) p += Ka[t * T + m] * Kb[m * T + u];
        expect(K[t * T + u]).toBeCloseTo(p, 5);
        if (u > t) expect(K[t * T + u]).toBe(0);
      }
    // And it filters as the loss's recursion does.
    const s = [1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0];
    const viaK = Float64Array.from({ length: T }, (_, t) => s.reduce((acc, x, u) => acc + K[t * T + u] * x, 0));
    const zeros = new Float64Array(T);
    expect(meanSquaredDiff(viaK, zeros)).toBeCloseTo(vanRossumLoss(layout(1, T, 1), f64(...s), zeros, 1, k, null), 4);
  });
});

describe("vanRossumLoss, rise = 0: the single-exponential loss as before", () => {
  it("the filter matrix is bit-identical to the old one", () => {
    const T = 40;
    const K = vanRossumFilterMatrix(T, 0.5, single(3));
    const old = new Float32Array(T * T);
    for (let t = 0; t < T; t++) for (let u = 0; u <= t; u++) old[t * T + u] = Math.exp((-(t - u) * 0.5) / 3);
    expect(Array.from(K)).toEqual(Array.from(old));
  });
});

/** The small network whose teacher has the same synapses with lognormally perturbed weights (σ = 0.5). */
function withTeacher(o: SmallNetworkOptions, weights: Partial<NetworkSpec["lossWeights"]>, kernel: VanRossumKernel = single(10)) {
  const net = smallNetwork(o);
  const spec: NetworkSpec = {
    ...net.spec,
    lossWeights: { ...net.spec.lossWeights, ...weights },
    vanRossum: kernel,
    teacherRecWeight: perturbLognormal(net.connectome.recWeight, 0.5, new Rng(11)),
    teacherFfWeight: perturbLognormal(net.connectome.ffWeight, 0.5, new Rng(12)),
  };
  return { ...net, spec };
}

const VR_ONLY = { firing_rate: 0, cv: 0, silent_penalty: 0, membrane_variance: 0, van_rossum: 1 };

async function bothEngines(net: ReturnType<typeof withTeacher>): Promise<{ sparse: EpochResult; tfjs: EpochResult }> {
  const sparse = new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null));
  const engine = new TfjsEngine(net.spec);
  const tfjs = await engine.runEpoch(task(net, 0, null));
  engine.dispose();
  return { sparse, tfjs };
}

describe("van Rossum loss in the engines (tfjs autodiff as the oracle)", () => {
  it("a teacher with the student's own weights gives zero distance and leaves the gradient unchanged", () => {
    const net = withTeacher({}, { van_rossum: 5 });
    const same = { ...net.spec, teacherRecWeight: net.connectome.recWeight, teacherFfWeight: net.connectome.ffWeight };
    const r = new SparseCpuEngine(same, "float64").runEpochSync(task(net, 0, null));
    const plain = new SparseCpuEngine({ ...net.spec, teacherRecWeight: undefined, teacherFfWeight: undefined }, "float64").runEpochSync(task(net, 0, null));
    expect(r.losses.van_rossum).toBe(0);
    expect(Array.from(r.recGrad!)).toEqual(Array.from(plain.recGrad!));
    expect(Array.from(r.ffGrad!)).toEqual(Array.from(plain.ffGrad!));
  });

  it("λ = 100: the van Rossum gradient alone and with every term agrees within float32 conditioning", async () => {
    // Measured (seed 7, τ = 10 ms): L_VR 0.293; max-norm 2.1e-3 / 5.2e-4 (rec / ff) for the term alone, 2.0e-3 / 2.0e-3
    // with every term; per edge 2.1e-3 above 1e-3·max.
    for (const weights of [VR_ONLY, { van_rossum: 1 }]) {
      const { sparse, tfjs } = await bothEngines(withTeacher({}, weights));
      expectSameEpoch(tfjs, sparse);
      expect(sparse.losses.van_rossum).toBeGreaterThan(0.1);
      expectGradientsAgree(tfjs, sparse, { maxNorm: 5e-3, above1e2: 1e-2, above1e3: 3e-2 });
    }
  });

  it("λ = 1e8 (surrogate off): the same value, and the same gradients of the whole loss to 1e-4", async () => {
    // The term's own gradient vanishes with the surrogate (spike trains are locally constant); this checks that the
    // teacher simulation leaves the rest of the epoch alone. Measured: max-norm 2.7e-6 / 2.5e-6.
    const { sparse, tfjs } = await bothEngines(withTeacher({ surrgradScale: 1e8 }, { van_rossum: 1 }));
    expectSameEpoch(tfjs, sparse);
    expect(sparse.losses.van_rossum).toBeGreaterThan(0.1);
    expectGradientsAgree(tfjs, sparse, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
  });

  it("λ = 0.3 over 5-step chunks: the van Rossum gradient, which spans chunk boundaries, agrees to 1e-4", async () => {
    // Measured: max-norm 6.5e-6 / 3.1e-6 for the term alone, 2.9e-6 / 1.3e-5 with every term.
    const o = { surrgradScale: 0.3, chunkSteps: 5, chunksPerEpoch: 12 };
    for (const weights of [VR_ONLY, { van_rossum: 1 }]) {
      const { sparse, tfjs } = await bothEngines(withTeacher(o, weights));
      expectSameEpoch(tfjs, sparse);
      expectGradientsAgree(tfjs, sparse, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
    }
    // The float32 engine (WebAssembly kernels, what workers run) adds the term too. Measured: 2.8e-6 / 3.8e-6.
    const net = withTeacher(o, VR_ONLY);
    const wasm = new SparseCpuEngine(net.spec, "float32").runEpochSync(task(net, 0, null));
    expectGradientsAgree(wasm, new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null)), { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
    // The term is not negligible: it moves the gradient of the other terms (measured: by 2.8e-3 in max-norm) by far
    // more than the tolerance above.
    const without = new SparseCpuEngine(smallNetwork(o).spec, "float64").runEpochSync(task(smallNetwork(o), 0, null));
    const { sparse } = await bothEngines(withTeacher(o, { van_rossum: 1 }));
    expect(maxRelError(sparse.recGrad!, without.recGrad!)).toBeGreaterThan(1e-3);
  });
});

describe("double-exponential van Rossum loss in the engines (tfjs autodiff as the oracle)", () => {
  // The same regimes and tolerances as the single exponential above; the tfjs engine's filter matrix is K_a·K_b.
  // Measured (seed 7): L_VR 0.740 (5/20 ms), 2.635 (10/100 ms), identical in both engines (both value the loss on the
  // host from identical spikes).
  const kernel = { tauRise: 5, tauDecay: 20 };

  it("λ = 100: the van Rossum gradient alone and with every term agrees within float32 conditioning", async () => {
    // Measured: max-norm 6.5e-4 / 2.4e-4 (rec / ff) for the term alone, 2.0e-3 / 2.0e-3 with every term; per edge
    // 2.2e-3 above 1e-3·max.
    for (const weights of [VR_ONLY, { van_rossum: 1 }]) {
      const { sparse, tfjs } = await bothEngines(withTeacher({}, weights, kernel));
      expectSameEpoch(tfjs, sparse);
      expect(sparse.losses.van_rossum).toBeGreaterThan(0.5);
      expectGradientsAgree(tfjs, sparse, { maxNorm: 5e-3, above1e2: 1e-2, above1e3: 3e-2 });
    }
  });

  it("λ = 1e8 (surrogate off): the same value, and the same gradients of the whole loss to 1e-4", async () => {
    // Measured: max-norm 2.7e-6 / 2.5e-6.
    const { sparse, tfjs } = await bothEngines(withTeacher({ surrgradScale: 1e8 }, { van_rossum: 1 }, kernel));
    expectSameEpoch(tfjs, sparse);
    expect(sparse.losses.van_rossum).toBeGreaterThan(0.5);
    expectGradientsAgree(tfjs, sparse, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
  });

  it("λ = 0.3 over 5-step chunks: the gradient through the filter carried across chunks agrees to 1e-4 (5/20 and 10/100 ms)", async () => {
    // Measured: max-norm 6.2e-6 / 5.0e-6 for the term alone, 2.9e-6 / 1.3e-5 with every term (10/100 ms: 8.8e-6 /
    // 5.5e-6 and 3.0e-6 / 1.2e-5); float32 engine 2.6e-6 / 4.2e-6.
    const o = { surrgradScale: 0.3, chunkSteps: 5, chunksPerEpoch: 12 };
    for (const k of [kernel, { tauRise: 10, tauDecay: 100 }])
      for (const weights of [VR_ONLY, { van_rossum: 1 }]) {
        const { sparse, tfjs } = await bothEngines(withTeacher(o, weights, k));
        expectSameEpoch(tfjs, sparse);
        expectGradientsAgree(tfjs, sparse, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
      }
    const net = withTeacher(o, VR_ONLY, kernel);
    const wasm = new SparseCpuEngine(net.spec, "float32").runEpochSync(task(net, 0, null));
    expectGradientsAgree(wasm, new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null)), { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
    // The rise time matters: the single exponential of the same decay points the gradient elsewhere (compared as unit
    // vectors, the two forms being normalised differently).
    const unit = (g: Float32Array) => {
      const norm = Math.hypot(...g);
      return Float64Array.from(g, (x) => x / norm);
    };
    const double = new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null));
    const singleNet = withTeacher(o, VR_ONLY, single(kernel.tauDecay));
    const singleExp = new SparseCpuEngine(singleNet.spec, "float64").runEpochSync(task(singleNet, 0, null));
    expect(maxRelError(unit(double.recGrad!), unit(singleExp.recGrad!))).toBeGreaterThan(1e-2);
  });
});
