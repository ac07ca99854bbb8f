/**
 * The reference step and adjoint (src/engine/reference-step.ts) against values computed by hand for one neuron with
 * one synapse slot; the engines are tested against them elsewhere (sparse-kernel.test.ts: WebAssembly bit-identical
 * to the fallbacks that call them; engines.test.ts: against tfjs autodiff).
 */
import { describe, expect, it } from "vitest";
import { cobaLifAdjointStep, cobaLifStep, flushTiny, surrogateGradient } from "../src/engine/reference-step.js";

const neuron = { theta: -50, uReset: -60, eL: -60, beta: 0.9, dtOverC: 0.01 };
const slots = [{ gScale: 2, alphaRise: 0.5, alphaDecay: 0.8, eSyn: 0 }];
const exact = (x: number) => x;

describe("reference step", () => {
  it("injects, sums the current, integrates the membrane, resets and decays (MODEL.md 2.4)", () => {
    // g_rise 1 − 2·0.25 = 0.5, g_decay 3 + 0.5 = 3.5, G = 4; I = 4·(−55 − 0) = −220;
    // ṽ = −60 + 5·0.9 + 220·0.01 = −53.3; no spike (v = −55 < θ): v' = ṽ; decay: 0.25, 2.8.
    const state = { v: -55, gRise: Float64Array.of(1), gDecay: Float64Array.of(3) };
    const out = { spike: 0, vNext: 0, vTilde: 0, gSum: 0, G: new Float64Array(1) };
    cobaLifStep(neuron, slots, state, [0.25], exact, out);
    expect(out.G[0]).toBe(4);
    expect(out.gSum).toBe(4);
    expect(out.vTilde).toBeCloseTo(-53.3, 12);
    expect(out.spike).toBe(0);
    expect(out.vNext).toBe(out.vTilde);
    expect(state.gRise[0]).toBe(0.25);
    expect(state.gDecay[0]).toBeCloseTo(2.8, 12);
    // Above threshold the neuron spikes (strict >) and v' is U_reset whatever ṽ is.
    const above = { v: -49, gRise: Float64Array.of(0), gDecay: Float64Array.of(0) };
    cobaLifStep(neuron, slots, above, [0], exact, out);
    expect(out.spike).toBe(1);
    expect(out.vNext).toBe(-60);
    expect(out.vTilde).toBeCloseTo(-60 + 11 * 0.9, 12);
    const at = { v: -50, gRise: Float64Array.of(0), gDecay: Float64Array.of(0) };
    cobaLifStep(neuron, slots, at, [0], exact, out);
    expect(out.spike).toBe(0);
  });

  it("the surrogate is dy/(λ|x| + 1)²; tiny conductances are flushed to 0, NaN kept", () => {
    expect(surrogateGradient(3, 0, 100)).toBe(3);
    expect(surrogateGradient(1, -0.5, 2)).toBe(0.25);
    expect(flushTiny(1e-31)).toBe(0);
    expect(flushTiny(-1e-31)).toBe(0);
    expect(flushTiny(1e-29)).toBe(1e-29);
    expect(flushTiny(NaN)).toBeNaN();
  });

  it("the adjoint: surrogate path, reset gate (or not), membrane and conductance adjoints, δ", () => {
    // Forward record of a spiking step from v = −49: ṽ = −50.1, ΣG = 4, v' = −60.
    const fwd = { spike: 1, vNext: -60, vTilde: -50.1, gSum: 4 };
    const loss = { spikeGrad: 0.5, devCoef: 0.1, meanCoef: 0.2, meanV: -58 };
    const adj = { av: 1, agRise: Float64Array.of(2), agDecay: Float64Array.of(5), ds: 4 };
    const delta = new Float64Array(1);
    cobaLifAdjointStep(neuron, slots, -49, fwd, loss, { surrgradScale: 1, detachReset: false, chunkEnd: false }, adj, exact, delta);
    // a = 1 + 4/(1·10 + 1)² + 0.1·(−60 + 58) + 0.2 = 1 + 4/121; the neuron spiked: dṽ = 0.
    const a = 1 + 4 / 121 - 0.2 + 0.2;
    expect(adj.ds).toBeCloseTo(50.1 * a + 0.5, 12);
    expect(adj.av).toBe(0);
    expect(delta[0]).toBe(2 * (5 - 2));
    expect(adj.agRise[0]).toBe(1);
    expect(adj.agDecay[0]).toBe(4);
    // Detached gate: ds keeps only ∂L/∂s. A chunk end cuts the surrogate path: a = loss terms only.
    const detached = { av: 1, agRise: Float64Array.of(2), agDecay: Float64Array.of(5), ds: 4 };
    cobaLifAdjointStep(neuron, slots, -49, fwd, loss, { surrgradScale: 1, detachReset: true, chunkEnd: false }, detached, exact, delta);
    expect(detached.ds).toBe(0.5);
    // A silent step: dṽ = a flows into a_v (β − dt/C·ΣG) and into the conductances: dG = −a·dt/C·(v − E).
    const silent = { spike: 0, vNext: -53, vTilde: -53, gSum: 4 };
    const adj2 = { av: 0, agRise: Float64Array.of(0), agDecay: Float64Array.of(0), ds: 7 };
    cobaLifAdjointStep(neuron, slots, -55, silent, { spikeGrad: 0, devCoef: 0, meanCoef: 1, meanV: 0 }, { surrgradScale: 1, detachReset: false, chunkEnd: true }, adj2, exact, delta);
    expect(adj2.av).toBeCloseTo(0.9 - 0.04, 12);
    expect(adj2.agRise[0]).toBeCloseTo(-0.01 * -55, 12);
    expect(adj2.ds).toBe(53);
  });
});
