/**
 * The van Rossum spike-train loss (src/model/van-rossum.ts): its value on a train small enough to compute by hand,
 * its gradient against numeric derivatives, and the engines against each other with a teacher in the network, in the
 * three surrogate regimes of engines.test.ts (see its header for the tolerance reasoning).
 */
import { describe, expect, it } from "vitest";
import { perturbLognormal } from "../src/training/student.js";
import { NetworkSpec } from "../src/model/network.js";
import { Rng } from "../src/model/rng.js";
import { SpikeTrainLayout, vanRossumFilterMatrix, vanRossumLoss } from "../src/model/van-rossum.js";
import { EpochResult } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { expectGradientsAgree, expectSameEpoch, maxRelError, task } from "./helpers/engine-checks.js";
import { smallNetwork, SmallNetworkOptions } from "./helpers/small-network.js";

const f64 = (...xs: number[]) => Float64Array.from(xs);
/** [b][t][j] storage. */
const layout = (trials: number, steps: number, neurons: number): SpikeTrainLayout => ({ trials, steps, neurons, sb: steps * neurons, st: neurons, sj: 1 });

describe("vanRossumLoss", () => {
  // τ = dt/ln 2 makes the per-step decay exactly 1/2. Student spikes at step 0, teacher at step 1, T = 3:
  // f_student = 1, 0.5, 0.25; f_teacher = 0, 1, 0.5; diff = 1, −0.5, −0.25; Σ diff² = 1.3125;
  // L = 1.3125 · dt/τ = 1.3125 · ln 2 = 0.909756...
  const tau = 1 / Math.LN2;

  it("value of a hand-computed example", () => {
    const L = vanRossumLoss(layout(1, 3, 1), f64(1, 0, 0), f64(0, 1, 0), 1, tau, null);
    expect(L).toBeCloseTo(1.3125 * Math.LN2, 14);
    expect(L).toBeCloseTo(0.909756, 6);
  });

  it("gradient of the hand-computed example by the reverse recursion", () => {
    // c = 2·dt/τ/(B·N) = 2 ln 2; u_2 = −0.25c; u_1 = −0.5c + u_2/2 = −0.625c; u_0 = c + u_1/2 = 0.6875c; ×weight 3.
    const grad = new Float64Array(3);
    vanRossumLoss(layout(1, 3, 1), f64(1, 0, 0), f64(0, 1, 0), 1, tau, grad, 3);
    const c = 2 * Math.LN2 * 3;
    expect(grad[0]).toBeCloseTo(0.6875 * c, 13);
    expect(grad[1]).toBeCloseTo(-0.625 * c, 13);
    expect(grad[2]).toBeCloseTo(-0.25 * c, 13);
  });

  it("is zero for identical trains and symmetric in its arguments", () => {
    const s = f64(0, 1, 1, 0, 0, 1);
    const grad = new Float64Array(6).fill(7);
    expect(vanRossumLoss(layout(1, 6, 1), s, s, 1, 10, grad)).toBe(0);
    expect(Array.from(grad)).toEqual([0, 0, 0, 0, 0, 0]);
    const r = f64(1, 0, 0, 0, 1, 0);
    expect(vanRossumLoss(layout(1, 6, 1), s, r, 1, 10, null)).toBe(vanRossumLoss(layout(1, 6, 1), r, s, 1, 10, null));
  });

  it("an unmatched isolated spike costs about 1/2 (the continuous van Rossum distance) when dt ≪ τ", () => {
    const T = 3000;
    const s = new Float64Array(T);
    s[10] = 1;
    // Exactly (dt/τ)/(1 − e^{−2dt/τ}) ≈ 1/2 + dt/(2τ) summed to convergence: 0.01/(1 − e^{−0.02}) = 0.50500.
    const L = vanRossumLoss(layout(1, T, 1), s, new Float64Array(T), 0.01, 1, null);
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
    expect(vanRossumLoss(l, student, teacher, 1, tau, grad)).toBeCloseTo((1.3125 * Math.LN2) / 6, 14);
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
    vanRossumLoss(l, s, r, 0.5, 4, grad, 2);
    for (let k = 0; k < n; k += 7) {
      const h = 1e-4;
      const up = Float64Array.from(s);
      const down = Float64Array.from(s);
      up[k] += h;
      down[k] -= h;
      const numeric = (vanRossumLoss(l, up, r, 0.5, 4, null, 2) - vanRossumLoss(l, down, r, 0.5, 4, null, 2)) / (2 * h) * 2;
      expect(grad[k]).toBeCloseTo(numeric, 8);
    }
  });

  it("the filter matrix of the tfjs engine is the same recursion", () => {
    const T = 7;
    const K = vanRossumFilterMatrix(T, 1, 3);
    const s = [1, 0, 1, 1, 0, 0, 1];
    let f = 0;
    for (let t = 0; t < T; t++) {
      f = f * Math.exp(-1 / 3) + s[t];
      const viaK = s.reduce((acc, x, u) => acc + K[t * T + u] * x, 0);
      expect(viaK).toBeCloseTo(f, 6);
    }
  });
});

/** The small network whose teacher has the same synapses with lognormally perturbed weights (σ = 0.5). */
function withTeacher(o: SmallNetworkOptions, weights: Partial<NetworkSpec["lossWeights"]>, tau = 10) {
  const net = smallNetwork(o);
  const spec: NetworkSpec = {
    ...net.spec,
    lossWeights: { ...net.spec.lossWeights, ...weights },
    vanRossumTau: tau,
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
