/**
 * The two engines against each other and against finite differences, on the small network of helpers/small-network.
 *
 * Float32 limits how closely gradients can agree at the model's surrogate steepness λ = 100: the surrogate's
 * derivative 1/(λ|x|+1)² changes by 2λ/(λ|x|+1) per mV (200/mV at threshold), and a float32 forward pass differs
 * from a float64 one by ~1e−5 mV after tens of steps. One sample 0.005 mV from threshold therefore moves the gradient
 * by ~2e−3 (seed 7: v_49 of neuron 42, trial 2); sparse-cpu in float32 differs from itself in float64 by up to 1e−3
 * (seed 9). So the engines are compared in three regimes:
 * - λ = 100 (the model): to 5e−3 in max-norm and 1e−2 per edge above 1e−2·max. Dropping any adjoint term (the reset
 *   path, the recurrent spike path Σ W δ, the reset gate) or evaluating the surrogate at the wrong step moves edges by
 *   7e−2 to 1, so this still catches every such mistake.
 * - λ = 1e8 (surrogate switched off: its derivative is < 1e−10 wherever a float32 voltage can be): to 1e−4. This
 *   exercises membrane, reset gate, conductances, recurrent and feedforward injection and the chunk truncation, and
 *   makes the loss piecewise smooth in the weights (spike trains are locally constant), so central differences check
 *   the float64 adjoint there, spikes included.
 * - λ = 0.3 with 5-step chunks (a broad surrogate over too few steps to explode): to 1e−4, which checks the surrogate's
 *   formula and the rate and reset paths strictly.
 */
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logSpaceGradient } from "../src/model/optimizer.js";
import { Rng } from "../src/model/rng.js";
import { EpochResult, StreamState } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { createTfjsEngine, TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { expectFiniteDifferences, expectGradientsAgree, expectSameEpoch, maxRelError, task } from "./helpers/engine-checks.js";
import { smallNetwork } from "./helpers/small-network.js";

describe("at the model's surrogate steepness (λ = 100)", () => {
  const net = smallNetwork();
  const tfjs = new TfjsEngine(net.spec);
  let sparse64: EpochResult;
  let sparse32: EpochResult;
  let viaTfjs: EpochResult;

  beforeAll(async () => {
    sparse64 = new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null));
    sparse32 = new SparseCpuEngine(net.spec, "float32").runEpochSync(task(net, 0, null));
    viaTfjs = await tfjs.runEpoch(task(net, 0, null));
  });
  afterAll(() => tfjs.dispose());

  it("the small network fires at moderate rates in both cell types from rest", () => {
    const [exc, inh] = sparse64.stats;
    // Measured: E 10.4 Hz (79% active), I 15.3 Hz (75% active); every loss term is non-trivial.
    for (const s of [exc, inh]) {
      expect(s.rateMean).toBeGreaterThan(3);
      expect(s.rateMean).toBeLessThan(60);
      expect(s.activeFraction).toBeGreaterThan(0.5);
      expect(s.activeFraction).toBeLessThan(1);
    }
    expect(sparse64.losses.silent_penalty).toBeGreaterThan(0.01);
    expect(sparse64.losses.cv).toBeGreaterThan(0);
    expect(sparse64.losses.membrane_variance).toBeGreaterThan(0.01);
  });

  it("records every trial's spike counts with the figure activity: per neuron, and per step and population", () => {
    const a = sparse64.activity!;
    const N = net.spec.constants.numNeurons;
    const B = net.spec.batchSize;
    const T = a.steps;
    const P = net.spec.constants.numSources;
    expect(a.trialSpikeCounts.length).toBe(B * N);
    const seconds = (B * T * net.spec.constants.dt) / 1000;
    for (let j = 0; j < N; j++) {
      let n = 0;
      for (let b = 0; b < B; b++) n += a.trialSpikeCounts[b * N + j];
      expect(n).toBe(Math.round(sparse64.rates[j] * seconds));
    }
    // The plot trial's counts are its raster's; the recurrent populations' per-step sums add up to all trials' counts.
    const b0 = net.spec.plotTrial;
    for (let j = 0; j < N; j++) expect(a.trialSpikeCounts[b0 * N + j]).toBe(a.spikePtr[j + 1] - a.spikePtr[j]);
    const K = net.spec.constants.numRecTypes;
    let recurrent = 0;
    for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) recurrent += a.populationSpikes[t * P + k];
    expect(recurrent).toBe(a.trialSpikeCounts.reduce((x, y) => x + y, 0));
    let inputs = 0;
    for (let t = 0; t < T; t++) for (let k = K; k < P; k++) inputs += a.populationSpikes[t * P + k];
    expect(inputs).toBeGreaterThan(0);
    // Every neuron with n spikes in a trial has n − 1 intervals there: the ISI counts add up to Σ max(n − 1, 0) per type,
    // and the plot trial's own intervals (from its raster) are among them.
    const intervals = new Array<number>(K).fill(0);
    for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) intervals[net.spec.constants.cellType[j]] += Math.max(a.trialSpikeCounts[b * N + j] - 1, 0);
    for (let k = 0; k < K; k++) expect(a.isiSteps.subarray(k * T, (k + 1) * T).reduce((x, y) => x + y, 0)).toBe(intervals[k]);
    const plotTrial = new Int32Array(K * T);
    for (let j = 0; j < N; j++) for (let s = a.spikePtr[j] + 1; s < a.spikePtr[j + 1]; s++) plotTrial[net.spec.constants.cellType[j] * T + a.spikeSteps[s] - a.spikeSteps[s - 1]]++;
    plotTrial.forEach((n, x) => expect(a.isiSteps[x]).toBeGreaterThanOrEqual(n));
    expect(a.isiSteps.reduce((x, y) => x + y, 0)).toBeGreaterThan(plotTrial.reduce((x, y) => x + y, 0));
  });

  it("gives identical spike trains, voltages within 1e-4 mV, the same losses and final state", () => {
    expect(viaTfjs.epoch).toBe(0);
    expectSameEpoch(viaTfjs, sparse64);
    expectSameEpoch(sparse32, sparse64);
  });

  it("gives the same per-edge gradients within float32 conditioning", () => {
    // Measured (seed 7): max-norm 2.0e-3 (rec and ff); per edge 2.0e-3 above 1e-2·max and 1e-3·max.
    expectGradientsAgree(viaTfjs, sparse64, { maxNorm: 5e-3, above1e2: 1e-2, above1e3: 3e-2 });
  });
});

describe("with the surrogate switched off (λ = 1e8)", () => {
  const net = smallNetwork({ surrgradScale: 1e8 });
  const tfjs = new TfjsEngine(net.spec);
  const sparse = new SparseCpuEngine(net.spec, "float64");
  // One 60-step chunk is the same epoch (same inputs, same forward) without the cuts.
  const oneChunk = new SparseCpuEngine({ ...net.spec, chunkSteps: 60, chunksPerEpoch: 1 }, "float64");
  let sparse0: EpochResult;
  let sparseFull: EpochResult;
  let tfjs0: EpochResult;

  beforeAll(async () => {
    sparse0 = sparse.runEpochSync(task(net, 0, null));
    sparseFull = oneChunk.runEpochSync(task(net, 0, null));
    tfjs0 = await tfjs.runEpoch(task(net, 0, null));
  });
  afterAll(() => tfjs.dispose());

  it("gives the same per-edge gradients to 1e-4", () => {
    expectSameEpoch(tfjs0, sparse0);
    // Measured: max-norm 2.7e-6 (rec) / 2.5e-6 (ff); per edge 3.2e-5 / 2.4e-5 above 1e-2·max, 3.2e-5 / 1.7e-4 above
    // 1e-3·max.
    expectGradientsAgree(tfjs0, sparse0, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
  });

  it("gives the same per-edge gradients to 1e-4 in the default float32 mode (WebAssembly kernels)", () => {
    const engine = new SparseCpuEngine(net.spec);
    expect(engine.kernel).toBe("wasm");
    const sparse32 = engine.runEpochSync(task(net, 0, null));
    expectSameEpoch(tfjs0, sparse32);
    // Measured: max-norm 3.8e-6 (rec) / 4.1e-6 (ff) against tfjs, 1.5e-6 / 1.9e-6 against the float64 mode.
    expectGradientsAgree(tfjs0, sparse32, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
    expect(maxRelError(sparse0.recGrad!, sparse32.recGrad!)).toBeLessThan(1e-5);
    expect(maxRelError(sparse0.ffGrad!, sparse32.ffGrad!)).toBeLessThan(1e-5);
  });

  it("truncates back-propagation at chunk boundaries", async () => {
    const untruncated = new TfjsEngine(net.spec, { truncateBptt: false });
    const tfjsFull = await untruncated.runEpoch(task(net, 0, null));
    untruncated.dispose();

    expectSameEpoch(sparseFull, sparse0);
    expectSameEpoch(tfjsFull, tfjs0);
    // Measured: cut vs uncut differ by 1.3 (rec) and 3.9 (ff) relative; uncut engines agree to 2.7e-6 / 3.3e-6.
    expect(maxRelError(tfjs0.recGrad!, tfjsFull.recGrad!)).toBeGreaterThan(0.1);
    expect(maxRelError(tfjs0.ffGrad!, tfjsFull.ffGrad!)).toBeGreaterThan(0.1);
    expectGradientsAgree(tfjsFull, sparseFull, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
  });

  it("matches central finite differences of the loss (sparse-cpu float64 adjoint)", () => {
    // Rec edges only carry gradient from neurons that spiked, so the check needs spikes; with the surrogate off the
    // adjoint is the derivative of the loss for the fixed spike train, and a 1e-4 relative step keeps that train.
    // Differences see every path, so they are compared with the adjoint of the uncut (one-chunk) epoch.
    // Measured: worst relative error 1.3e-6 (rec edge 294), typically 3e-8.
    expectFiniteDifferences((t) => oneChunk.runEpochSync(t), task(net, 0, null, false, false), sparseFull, new Rng(2024));
  });

  it("starts from a given non-rest state identically in both engines", async () => {
    const t = task(net, 1, sparse0.finalState);
    const fromState = sparse.runEpochSync(t);
    const viaTfjs = await tfjs.runEpoch(t);
    expectSameEpoch(viaTfjs, fromState);
    // Rates after the state carried over are far from those of a fresh start (NMDA has built up).
    const fresh = sparse.runEpochSync(task(net, 1, null, false, false));
    expect(fromState.stats[0].rateMean).toBeGreaterThan(2 * fresh.stats[0].rateMean);
    // Measured: max-norm 2.6e-6 / 4.5e-6; per edge 1.7e-5 / 8.1e-6 above 1e-3·max.
    expectGradientsAgree(viaTfjs, fromState, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
  });
});

describe("with a broad surrogate over short chunks (λ = 0.3, 12 chunks of 5 steps)", () => {
  it("gives the same per-edge gradients to 1e-4, in float64 and in the default float32 mode", async () => {
    const net = smallNetwork({ surrgradScale: 0.3, chunkSteps: 5, chunksPerEpoch: 12 });
    const sparse = new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null));
    const sparse32 = new SparseCpuEngine(net.spec).runEpochSync(task(net, 0, null));
    const tfjs = new TfjsEngine(net.spec);
    const viaTfjs = await tfjs.runEpoch(task(net, 0, null));
    tfjs.dispose();
    expectSameEpoch(viaTfjs, sparse);
    // Measured: max-norm 2.9e-6 (rec) / 1.3e-5 (ff); per edge 1.5e-5 / 1.5e-5 above 1e-3·max.
    expectGradientsAgree(viaTfjs, sparse, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
    // The default float32 mode: max-norm 3.6e-6 / 1.4e-5 against tfjs.
    expectSameEpoch(viaTfjs, sparse32);
    expectGradientsAgree(viaTfjs, sparse32, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
  });
});

describe("with the reset gate detached (detach_reset = true)", () => {
  it("both engines drop the reset path alike, at λ = 0.3 over short chunks and at λ = 100", async () => {
    for (const o of [{ surrgradScale: 0.3, chunkSteps: 5, chunksPerEpoch: 12 }, {}]) {
      const net = smallNetwork({ ...o, detachReset: true });
      const gated = new SparseCpuEngine(smallNetwork(o).spec, "float64").runEpochSync(task(net, 0, null));
      const sparse = new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null));
      const sparse32 = new SparseCpuEngine(net.spec).runEpochSync(task(net, 0, null));
      const tfjs = new TfjsEngine(net.spec);
      const viaTfjs = await tfjs.runEpoch(task(net, 0, null));
      tfjs.dispose();
      // The forward is the same; only the gradient loses the −ṽ·∂s term of every spike.
      expectSameEpoch(gated, sparse);
      // Measured max-norm relative change of the recurrent gradient: 10.6 (λ = 0.3), 3.9e-2 (λ = 100, where the
      // surrogate is near zero at almost every spike).
      expect(maxRelError(gated.recGrad!, sparse.recGrad!)).toBeGreaterThan(0.02);
      expectSameEpoch(viaTfjs, sparse);
      expectSameEpoch(viaTfjs, sparse32);
      const tol = o.surrgradScale ? { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 } : { maxNorm: 5e-3, above1e2: 1e-2, above1e3: 3e-2 };
      expectGradientsAgree(viaTfjs, sparse, tol);
      expectGradientsAgree(viaTfjs, sparse32, tol);
    }
  });
});

describe("log parameterisation (θ = ln w)", () => {
  it("tfjs autodiff through w = e^θ gives the coordinator's ∂L/∂θ = w·∂L/∂w of sparse-cpu", async () => {
    const net = smallNetwork({ surrgradScale: 0.3, chunkSteps: 5, chunksPerEpoch: 12, detachReset: true });
    const sparse = new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null));
    const tfjs = new TfjsEngine(net.spec, { logSpaceGradient: true });
    const viaTfjs = await tfjs.runEpoch(task(net, 0, null));
    tfjs.dispose();
    const toTheta = (g: Float32Array, w: Float32Array) => {
      const out = Float64Array.from(g);
      logSpaceGradient(out, w);
      return Float32Array.from(out);
    };
    const chained = { ...sparse, recGrad: toTheta(sparse.recGrad!, net.connectome.recWeight), ffGrad: toTheta(sparse.ffGrad!, net.connectome.ffWeight) };
    expect(maxRelError(chained.recGrad, sparse.recGrad!)).toBeGreaterThan(0.05);
    // Measured: max-norm 2.9e-6 (rec) / 1.3e-5 (ff), as in linear space.
    expectGradientsAgree(viaTfjs, chained, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
  });
});

describe("tfjs engine resources", () => {
  const net = smallNetwork();

  it("leaks no tensors across epochs and frees its constants on dispose", async () => {
    const before = tf.memory().numTensors;
    const engine = new TfjsEngine(net.spec);
    const counts: number[] = [];
    let state: StreamState | null = null;
    for (const [epoch, grad, activity] of [
      [0, true, true],
      [1, false, true],
      [2, true, false],
    ] as const) {
      const r = await engine.runEpoch(task(net, epoch, state, grad, activity));
      state = r.finalState;
      counts.push(tf.memory().numTensors);
    }
    expect(counts[1]).toBe(counts[0]);
    expect(counts[2]).toBe(counts[0]);
    engine.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("reports its kind from the backend", async () => {
    expect((await createTfjsEngine(net.spec)).kind).toBe("tfjs");
    expect(new TfjsEngine(net.spec, { backend: "tensorflow" }).kind).toBe("tfjs-gpu");
  });

  const hasGpuPackage = (() => {
    try {
      createRequire(import.meta.url).resolve("@tensorflow/tfjs-node-gpu");
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(hasGpuPackage)("says what to install when --gpu is asked for without tfjs-node-gpu", async () => {
    const visible = process.env.CUDA_VISIBLE_DEVICES;
    try {
      await expect(createTfjsEngine(net.spec, { gpu: 0 })).rejects.toThrow(
        /needs the optional package @tensorflow\/tfjs-node-gpu \(CUDA 11\.8\/cuDNN 8\.6 on Linux x86-64\).*`npm install @tensorflow\/tfjs-node-gpu` on the worker machine.*--cpu \(or without --gpu\) to use the sparse-cpu engine/,
      );
    } finally {
      if (visible === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
      else process.env.CUDA_VISIBLE_DEVICES = visible;
    }
  });
});
