/**
 * The original's newer model options (MODEL-HEAD.md 3), each a key whose default is MODEL.md's behaviour: against
 * hand-computed values, and in both engines against each other.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildModelConstants } from "../src/model/constants.js";
import { kernelNormaliser, kernelPeak } from "../src/model/synaptic-kernel.js";
import { EpochResult, StreamState } from "../src/engine/engine.js";
import { CLAMPED_DECAY, CLAMPED_RISE, cobaLifAdjointStep, cobaLifStep } from "../src/engine/reference-step.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { decodeMessage, encodeMessage, NetworkMessage } from "../src/distributed/protocol.js";
import { parseConfig } from "../src/model/config.js";
import { Rng } from "../src/model/rng.js";
import { expectFiniteDifferences, expectGradientsAgree, expectSameEpoch, maxRelError, task } from "./helpers/engine-checks.js";
import { clampNetwork, smallNetwork } from "./helpers/small-network.js";


describe('simulation.kernel_normalisation = "peak"', () => {
  it("normalises by the kernel's true peak: the original's values at the default time constants", () => {
    // MODEL-HEAD 3: N = 0.904801 AMPA (0.1/5 ms), 0.619731 NMDA (10/70), 0.582356 GABA_A (1/6). By hand for AMPA:
    // t* = 0.1·5·ln 50/4.9 = 0.39919 ms, e^{−t*/5} − e^{−t*/0.1} = 0.923259 − 0.018458 = 0.904801.
    expect(kernelPeak(0.1, 5)).toBeCloseTo(0.904801, 6);
    expect(kernelPeak(10, 70)).toBeCloseTo(0.619731, 6);
    expect(kernelPeak(1, 6)).toBeCloseTo(0.582356, 6);
    // The original's normaliser for comparison: (τd/τr)^(τr/(τd−τr)) = 50^(0.1/4.9) = e^{0.079837} = 1.08311 for AMPA.
    expect(kernelNormaliser(0.1, 5)).toBeCloseTo(1.08311, 5);
  });

  it("sets each slot's injection to g_bar/N, so that a unit-weight spike's conductance peaks at g_bar", () => {
    const original = smallNetwork();
    const peak = smallNetwork({ simulationLines: 'kernel_normalisation = "peak"' });
    expect(peak.config.simulation.kernel_normalisation).toBe("peak");
    const c = buildModelConstants(peak.config, peak.connectome);
    const groups = [...peak.config.recurrent.synapses, ...peak.config.feedforward.synapses];
    const expected = groups.flatMap((g) => g.g_bar.map((gBar, i) => Math.fround(gBar / kernelPeak(g.tau_rise[i], g.tau_decay[i]))));
    expect(Array.from(c.gScale)).toEqual(expected);
    expect(Array.from(original.spec.constants.gScale)).not.toEqual(expected);
    expect(peak.spec.hash).not.toBe(original.spec.hash);
    // Simulated in continuous time, the decay and rise components of one unit-weight spike: the peak is g_bar.
    const [tr, td, gBar] = [groups[0].tau_rise[0], groups[0].tau_decay[0], groups[0].g_bar[0]];
    let best = 0;
    for (let t = 0; t < 50; t += 1e-3) best = Math.max(best, (gBar / kernelPeak(tr, td)) * (Math.exp(-t / td) - Math.exp(-t / tr)));
    expect(best).toBeCloseTo(gBar, 6);
  });

  describe("both engines agree", () => {
    const net = smallNetwork({ simulationLines: 'kernel_normalisation = "peak"' });
    const tfjs = new TfjsEngine(net.spec);
    let sparse: EpochResult;
    let viaTfjs: EpochResult;
    beforeAll(async () => {
      sparse = new SparseCpuEngine(net.spec, "float64").runEpochSync(task(net, 0, null));
      viaTfjs = await tfjs.runEpoch(task(net, 0, null));
    });
    afterAll(() => tfjs.dispose());

    it("spikes, voltages, losses and per-edge gradients as at the original normalisation (λ = 100 tolerances)", () => {
      expect(sparse.stats.some((s) => s.rateMean > 1)).toBe(true);
      expectSameEpoch(viaTfjs, sparse);
      expectGradientsAgree(viaTfjs, sparse, { maxNorm: 5e-3, above1e2: 1e-2, above1e3: 3e-2 });
    });
  });
});

/** The clamp mask of the engine's last forward (sparse-cpu.ts clampHist): bound (element, step) counts per slot. */
function clampCounts(engine: SparseCpuEngine, net: ReturnType<typeof clampNetwork>): { rise: number[]; decay: number[]; fraction: number } {
  const mask = (engine as unknown as { buf: { clampHist: Uint8Array } }).buf.clampHist;
  const S = net.spec.constants.numSlots;
  const W = Math.ceil(S / 4);
  const NB = net.spec.constants.numNeurons * net.spec.batchSize;
  const P = NB + (NB & 1);
  const T = net.spec.chunkSteps * net.spec.chunksPerEpoch;
  expect(mask.length).toBe(T * W * P);
  const rise = new Array<number>(S).fill(0);
  const decay = new Array<number>(S).fill(0);
  for (let t = 0; t < T; t++)
    for (let l = 0; l < S; l++)
      for (let p = 0; p < NB; p++) {
        const bits = mask[(t * W + (l >> 2)) * P + p] >> (2 * (l & 3));
        if (bits & CLAMPED_RISE) rise[l]++;
        if (bits & CLAMPED_DECAY) decay[l]++;
      }
  const bound = [...rise, ...decay].reduce((a, b) => a + b, 0);
  return { rise: rise.map((n) => n / (T * NB)), decay: decay.map((n) => n / (T * NB)), fraction: bound / (T * NB * 2 * S) };
}

describe("simulation.conductance_clamp = true", () => {
  const neuron = { theta: -50, uReset: -60, eL: -60, beta: 0.9, dtOverC: 0.01 };
  const slots = [{ gScale: 2, alphaRise: 0.5, alphaDecay: 0.8, eSyn: 0 }];
  const exact = (x: number) => x;
  const record = () => ({ spike: 0, vNext: 0, vTilde: 0, gSum: 0, G: new Float64Array(1), clamped: new Uint8Array(1) });

  it("clips each component to one unit-weight spike's amplitude after the injection (reference step, by hand)", () => {
    // Bound B = gScale = 2. State g_rise −0.5, g_decay 1.5, injection z = 0.5 → ±1: rise −1.5 (inside [−2, 0]),
    // decay 2.5 → 2 (clamped). G = 0.5, I = 0.5·(−55 − 0) = −27.5, ṽ = −60 + 5·0.9 + 27.5·0.01 = −55.225; then the
    // decay: rise −0.75, decay 2·0.8 = 1.6. Without the clamp: G = 1, ṽ = −54.95, decay 2.
    const out = record();
    const state = { v: -55, gRise: Float64Array.of(-0.5), gDecay: Float64Array.of(1.5) };
    cobaLifStep(neuron, slots, state, [0.5], exact, out, true);
    expect(out.clamped[0]).toBe(CLAMPED_DECAY);
    expect(out.G[0]).toBe(0.5);
    expect(out.vTilde).toBeCloseTo(-55.225, 12);
    expect(state.gRise[0]).toBe(-0.75);
    expect(state.gDecay[0]).toBeCloseTo(1.6, 12);
    const off = { v: -55, gRise: Float64Array.of(-0.5), gDecay: Float64Array.of(1.5) };
    cobaLifStep(neuron, slots, off, [0.5], exact, out);
    expect(out.G[0]).toBe(1);
    expect(out.vTilde).toBeCloseTo(-54.95, 12);
    expect(off.gDecay[0]).toBeCloseTo(2, 12);
    // Exactly at the bound: kept, and not marked (derivative 1 there, as tf.clipByValue). Beyond it: clipped, marked.
    const at = { v: -55, gRise: Float64Array.of(-1), gDecay: Float64Array.of(0) };
    cobaLifStep(neuron, slots, at, [0.5], exact, out, true);
    expect(out.clamped[0]).toBe(0);
    expect(out.G[0]).toBe(-1);
    expect(at.gRise[0]).toBe(-1);
    const below = { v: -55, gRise: Float64Array.of(-1.5), gDecay: Float64Array.of(0) };
    cobaLifStep(neuron, slots, below, [0.5], exact, out, true);
    expect(out.clamped[0]).toBe(CLAMPED_RISE);
    expect(below.gRise[0]).toBe(-1);
    expect(out.G[0]).toBe(-1);
  });

  it("has zero gradient through the clamped component (reference adjoint, by hand and by differences)", () => {
    // L = ṽ + 2·g_rise' + 5·g_decay' after the step above (a silent step: v' = ṽ). Adjoint with a = 1 (chunk end:
    // only the loss term meanCoef = 1), incoming a_g = (2, 5): dṽ = 1, a_v = 0.9 − 0.01·0.5 = 0.895,
    // dG = −0.01·(−55 − 0) = 0.55, a_rise = 2·0.5 + 0.55 = 1.55, a_decay = 0 (clamped; 5·0.8 + 0.55 = 4.55 without).
    const L = (gRise: number, gDecay: number) => {
      const out = record();
      const state = { v: -55, gRise: Float64Array.of(gRise), gDecay: Float64Array.of(gDecay) };
      cobaLifStep(neuron, slots, state, [0.5], exact, out, true);
      return { loss: out.vNext + 2 * state.gRise[0] + 5 * state.gDecay[0], out };
    };
    const { out } = L(-0.5, 1.5);
    const loss = { spikeGrad: 0, devCoef: 0, meanCoef: 1, meanV: 0 };
    const adjoint = (clamp: boolean) => {
      const adj = { av: 0, agRise: Float64Array.of(2), agDecay: Float64Array.of(5), ds: 0 };
      const delta = new Float64Array(1);
      cobaLifAdjointStep(neuron, slots, -55, out, loss, { surrgradScale: 1, detachReset: false, chunkEnd: true, conductanceClamp: clamp }, adj, exact, delta);
      return { adj, delta };
    };
    const { adj, delta } = adjoint(true);
    expect(adj.av).toBeCloseTo(0.895, 12);
    expect(adj.agRise[0]).toBeCloseTo(1.55, 12);
    expect(adj.agDecay[0]).toBe(0);
    // δ (the previous step's injection) reads the incoming adjoint: gs·(5 − 2).
    expect(delta[0]).toBe(6);
    expect(adjoint(false).adj.agDecay[0]).toBeCloseTo(4.55, 12);
    // Central differences of L in the state (= in the pre-clamp conductances, which differ from it by the injection).
    const h = 1e-6;
    expect((L(-0.5 + h, 1.5).loss - L(-0.5 - h, 1.5).loss) / (2 * h)).toBeCloseTo(1.55, 6);
    expect((L(-0.5, 1.5 + h).loss - L(-0.5, 1.5 - h).loss) / (2 * h)).toBe(0);
  });

  it("is in the network's constants (and hash) only when on, and travels to workers", () => {
    const plain = smallNetwork();
    const explicitOff = smallNetwork({ simulationLines: "conductance_clamp = false" });
    expect(plain.config.simulation.conductance_clamp).toBe(false);
    expect("conductanceClamp" in plain.spec.constants).toBe(false);
    expect(explicitOff.spec.hash).toBe(plain.spec.hash);
    const on = smallNetwork({ simulationLines: "conductance_clamp = true" });
    expect(on.spec.constants.conductanceClamp).toBe(true);
    expect(on.spec.hash).not.toBe(plain.spec.hash);
    const decoded = decodeMessage(encodeMessage({ type: "network", spec: on.spec })) as NetworkMessage;
    expect(decoded.spec.constants.conductanceClamp).toBe(true);
    expect("conductanceClamp" in (decodeMessage(encodeMessage({ type: "network", spec: plain.spec })) as NetworkMessage).spec.constants).toBe(false);
    const bad = { type: "network", spec: { ...on.spec, constants: { ...on.spec.constants, conductanceClamp: 1 } } } as unknown as NetworkMessage;
    expect(() => decodeMessage(encodeMessage(bad))).toThrow(/conductanceClamp: expected true or absent/);
  });

  it("bounds each slot's conductance by B in the dt stability check (default size, peak normalisation)", () => {
    // Unclamped, "peak" drives inhibitory cells to dt·G/C = 1.33 with all inputs coincident (refused at dt = 1 ms);
    // clamped, G ≤ Σ_l B_l = 4.45 nS per cell, dt·G/C ≤ 0.10.
    const text = readFileSync(new URL("../parameters/fitting-activity.toml", import.meta.url), "utf8");
    const withLines = (lines: string) => text.replace("[simulation]\n", `[simulation]\nkernel_normalisation = "peak"\n${lines}`);
    expect(() => parseConfig(withLines(""))).toThrow(/simulation\.dt: 1 ms is too large .* with all inputs coincident, /);
    expect(parseConfig(withLines("conductance_clamp = true\n")).simulation.conductance_clamp).toBe(true);
    expect(() => parseConfig(withLines("conductance_clamp = true\n").replace(/^dt = 1\.0/m, "dt = 12.0"))).toThrow(/with all inputs coincident and clamped/);
  });

  describe("on a network where it binds", () => {
    // Epoch 1 from the state epoch 0 leaves (rest at epoch 0: the clamp keeps the excitatory cells nearly silent).
    const net = clampNetwork();
    const sparse = new SparseCpuEngine(net.spec, "float64");
    let state: StreamState;
    let sparse1: EpochResult;
    let counts: ReturnType<typeof clampCounts>;
    const tfjs = new TfjsEngine(net.spec);
    let viaTfjs: EpochResult;
    beforeAll(async () => {
      state = sparse.runEpochSync(task(net, 0, null, false, false)).finalState;
      sparse1 = sparse.runEpochSync(task(net, 1, state));
      counts = clampCounts(sparse, net);
      viaTfjs = await tfjs.runEpoch(task(net, 1, state));
    });
    afterAll(() => tfjs.dispose());

    it("binds for a measurable fraction of (neuron, step, slot) on every slot, and changes the activity", () => {
      // Measured (seed 7): 7.4% of all (trial, neuron, step, component, slot); decay components bound per slot
      // (rec AMPA, NMDA, GABA_A, FF AMPA, NMDA): 0.5%, 2.1%, 4.8%, 3.7%, 44%; rise 0.3%, 0.7%, 4.4%, 0.1%, 13%.
      expect(counts.fraction).toBeGreaterThan(0.03);
      for (const f of counts.decay) expect(f).toBeGreaterThan(1e-3);
      expect(counts.rise.filter((f) => f > 0).length).toBe(5);
      // Both cell types fire (E 13 Hz, I 29 Hz), below the unclamped network's rates from the same state.
      const [exc, inh] = sparse1.stats;
      expect(exc.rateMean).toBeGreaterThan(3);
      expect(inh.rateMean).toBeGreaterThan(3);
      expect(exc.activeFraction).toBeGreaterThan(0.5);
      const off = clampNetwork({ clamp: false });
      const unclamped = new SparseCpuEngine(off.spec, "float64").runEpochSync(task(off, 1, state, false, false));
      expect(unclamped.stats[0].rateMean).toBeGreaterThan(1.5 * exc.rateMean);
      // The final state is within the bounds: rise in [−B, 0], decay in [0, B] per slot.
      const { gScale, numSlots: S } = net.spec.constants;
      const BN = net.spec.batchSize * net.spec.constants.numNeurons;
      for (let l = 0; l < S; l++)
        for (let i = 0; i < BN; i++) {
          expect(-sparse1.finalState.g[l * BN + i]).toBeLessThanOrEqual(gScale[l]);
          expect(sparse1.finalState.g[(S + l) * BN + i]).toBeLessThanOrEqual(gScale[l]);
        }
    });

    it("both engines: identical spikes, voltages, losses, final state and per-edge gradients (λ = 100 tolerances)", () => {
      expectSameEpoch(viaTfjs, sparse1);
      expect(viaTfjs.activity!.sampleConductance.some((g) => g > 0)).toBe(true);
      expectGradientsAgree(viaTfjs, sparse1, { maxNorm: 5e-3, above1e2: 1e-2, above1e3: 3e-2 });
    });
  });

  describe("with the surrogate switched off (λ = 1e8)", () => {
    const net = clampNetwork({ surrgradScale: 1e8 });
    const sparse = new SparseCpuEngine(net.spec, "float64");
    const oneChunk = new SparseCpuEngine({ ...net.spec, chunkSteps: 60, chunksPerEpoch: 1 }, "float64");
    const tfjs = new TfjsEngine(net.spec);
    let state: StreamState;
    let sparse1: EpochResult;
    let full: EpochResult;
    let viaTfjs: EpochResult;
    beforeAll(async () => {
      state = sparse.runEpochSync(task(net, 0, null, false, false)).finalState;
      sparse1 = sparse.runEpochSync(task(net, 1, state));
      full = oneChunk.runEpochSync(task(net, 1, state));
      expect(clampCounts(oneChunk, net).fraction).toBeGreaterThan(0.03);
      viaTfjs = await tfjs.runEpoch(task(net, 1, state));
    });
    afterAll(() => tfjs.dispose());

    it("both engines give the same per-edge gradients to 1e-4, also in float32 (WebAssembly kernels)", () => {
      expectSameEpoch(viaTfjs, sparse1);
      expectGradientsAgree(viaTfjs, sparse1, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
      const engine = new SparseCpuEngine(net.spec);
      expect(engine.kernel).toBe("wasm");
      const sparse32 = engine.runEpochSync(task(net, 1, state));
      expectSameEpoch(viaTfjs, sparse32);
      expectGradientsAgree(viaTfjs, sparse32, { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 });
      expect(maxRelError(sparse32.recGrad!, sparse1.recGrad!)).toBeLessThan(1e-5);
      expect(maxRelError(sparse32.ffGrad!, sparse1.ffGrad!)).toBeLessThan(1e-5);
    });

    it("matches central finite differences of the loss (sparse-cpu float64 adjoint, one uncut chunk)", () => {
      // As engines.test.ts: with the surrogate off the loss is piecewise smooth in the weights; the clamp adds kinks
      // where a pre-clamp conductance crosses its bound, which a 1e-4 relative step crossing one would show.
      expectFiniteDifferences((t) => oneChunk.runEpochSync(t), task(net, 1, state, false, false), full, new Rng(2025));
    });
  });

  // As sparse-kernel.test.ts, with the clamp on: 3 and 10 trials, and 63 neurons × 3 trials (odd, padded).
  for (const [batch, neurons] of [[3, 60], [10, 60], [3, 63]]) {
    it(`sparse-cpu: wasm is bit-identical to the JavaScript loops, masks included (${batch} trials, ${neurons} neurons)`, () => {
      const net = clampNetwork({ batch, neurons });
      const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      const [wasm, js] = (["wasm", "js"] as const).map((kernel) => {
        const engine = new SparseCpuEngine(net.spec, "float32", kernel);
        expect(engine.kernel).toBe(kernel);
        const run = (epoch: number, initialState: StreamState | null) =>
          engine.runEpochSync({ epoch, initialState, recWeight: net.connectome.recWeight, ffWeight: net.connectome.ffWeight, computeGradient: true, recordActivity: true });
        const result = run(1, run(0, null).finalState);
        return { result, mask: Uint8Array.from((engine as unknown as { buf: { clampHist: Uint8Array } }).buf.clampHist), counts: clampCounts(engine, net) };
      });
      expect(wasm.counts.fraction).toBeGreaterThan(0.03);
      expect(bytes(wasm.mask).equals(bytes(js.mask))).toBe(true);
      const [a, b] = [wasm.result, js.result];
      expect(a.recGrad!.some((g) => g !== 0) && a.ffGrad!.some((g) => g !== 0)).toBe(true);
      for (const [x, y] of [[a.recGrad!, b.recGrad!], [a.ffGrad!, b.ffGrad!], [a.finalState.v, b.finalState.v], [a.finalState.g, b.finalState.g], [a.rates, b.rates], [a.ratios, b.ratios], [a.activity!.sampleConductance, b.activity!.sampleConductance]] as const)
        expect(bytes(x).equals(bytes(y))).toBe(true);
      expect(a.losses).toEqual(b.losses);
    });
  }
});
