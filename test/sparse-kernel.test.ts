/** The WebAssembly kernels of the sparse-cpu engine and their JavaScript fallbacks are interchangeable to the bit. */
import { describe, expect, it } from "vitest";
import { EpochResult } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { parseConfig } from "../src/model/config.js";
import { generateConnectome } from "../src/model/connectome.js";
import { loadNetworkSpec } from "../src/io/network-files.js";
import { smallNetworkToml } from "./helpers/small-network.js";

/** The small test network with another trial count and size. */
function network(batch: number, neurons: number) {
  const toml = smallNetworkToml()
    .replace(/^batch_size = \d+/m, `batch_size = ${batch}`)
    .replace(/^num_neurons = \d+/m, `num_neurons = ${neurons}`);
  const config = parseConfig(toml);
  expect(config.simulation.batch_size).toBe(batch);
  expect(config.recurrent.num_neurons).toBe(neurons);
  const connectome = generateConnectome(config);
  return { spec: loadNetworkSpec(config, connectome), connectome };
}

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function expectIdentical(a: EpochResult, b: EpochResult): void {
  expect(a.recGrad!.some((g) => g !== 0)).toBe(true);
  expect(a.ffGrad!.some((g) => g !== 0)).toBe(true);
  expect(bytes(a.recGrad!).equals(bytes(b.recGrad!))).toBe(true);
  expect(bytes(a.ffGrad!).equals(bytes(b.ffGrad!))).toBe(true);
  expect(bytes(a.finalState.v).equals(bytes(b.finalState.v))).toBe(true);
  expect(bytes(a.finalState.g).equals(bytes(b.finalState.g))).toBe(true);
  expect(a.losses).toEqual(b.losses);
  // The per-neuron statistics, from the per-(trial, neuron) summaries (kernels/neurons.wat or epoch-summary.ts).
  for (const k of ["rates", "cvs", "ratios"] as const) expect(bytes(a[k]).equals(bytes(b[k])), k).toBe(true);
}

describe("sparse-cpu kernels", () => {
  // The sparse product handles trials in blocks of twelve and a last block of up to four (3, 4: one short block; 10: a
  // twelve-block with two unused lanes; 13: twelve + one; 17: twelve + a twelve-block over five that reads past its
  // row); 63 neurons × 3 trials is an odd element count, padded for the two-lane elementwise kernels.
  for (const [batch, neurons] of [[3, 60], [4, 60], [10, 60], [13, 60], [17, 60], [3, 63]]) {
    it(`wasm gives bit-identical states, losses, gradients and figure data to the JavaScript loops (${batch} trials, ${neurons} neurons)`, () => {
      const { spec, connectome } = network(batch, neurons);
      const results = (["wasm", "js"] as const).map((kernel) => {
        const engine = new SparseCpuEngine(spec, "float32", kernel);
        expect(engine.kernel).toBe(kernel);
        const run = (epoch: number, initialState: EpochResult["finalState"] | null) =>
          engine.runEpochSync({ epoch, initialState, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: true, recordActivity: true });
        return run(1, run(0, null).finalState);
      });
      const [wasm, js] = results;
      expectIdentical(wasm, js);
      expect(bytes(wasm.activity!.sampleConductance).equals(bytes(js.activity!.sampleConductance))).toBe(true);
      expect(wasm.activity!.sampleConductance.some((g) => g > 0)).toBe(true);
    });
  }

  it("recording conductances for figures does not change the simulation", () => {
    const { spec, connectome } = network(10, 60);
    const engine = new SparseCpuEngine(spec, "float32", "wasm");
    const run = (recordActivity: boolean) =>
      engine.runEpochSync({ epoch: 0, initialState: null, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: true, recordActivity });
    const recorded = run(true);
    expect(recorded.activity).not.toBeNull();
    expectIdentical(recorded, run(false));
  });
});
