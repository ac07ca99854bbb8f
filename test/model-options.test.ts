/**
 * The original's newer model options (MODEL-HEAD.md 3), each a key whose default is MODEL.md's behaviour: against
 * hand-computed values, and in both engines against each other.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildModelConstants, kernelNormaliser, kernelPeak } from "../src/model/constants.js";
import { EpochResult } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { expectGradientsAgree, expectSameEpoch, task } from "./helpers/engine-checks.js";
import { smallNetwork } from "./helpers/small-network.js";


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
