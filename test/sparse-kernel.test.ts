/** The WebAssembly kernels of the sparse-cpu engine and their JavaScript fallbacks are interchangeable to the bit. */
import { describe, expect, it } from "vitest";
import { SparseCpuEngine } from "../src/worker/sparse-cpu.js";
import { parseConfig } from "../src/shared/config.js";
import { generateConnectome } from "../src/shared/connectome.js";
import { buildNetworkSpec } from "../src/shared/network.js";
import { smallNetworkToml } from "./helpers/small-network.js";

/** The small test network with another trial count (the kernel handles trials in blocks of 8, pairs, and one odd). */
function network(batch: number) {
  const config = parseConfig(smallNetworkToml().replace(/^batch_size = \d+/m, `batch_size = ${batch}`));
  expect(config.simulation.batch_size).toBe(batch);
  const connectome = generateConnectome(config);
  return { spec: buildNetworkSpec(config, connectome), connectome };
}

describe("sparse-cpu adjoint kernels", () => {
  it("wasm is available here and gives bit-identical states, losses and gradients to the JavaScript loops, for odd and even trial counts", () => {
    for (const batch of [3, 10, 11]) {
      const { spec, connectome } = network(batch);
      const results = (["wasm", "js"] as const).map((kernel) => {
        const engine = new SparseCpuEngine(spec, "float32", kernel);
        expect(engine.kernel).toBe(kernel);
        const first = engine.runEpochSync({ epoch: 0, initialState: null, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: true, recordActivity: false });
        return engine.runEpochSync({ epoch: 1, initialState: first.finalState, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: true, recordActivity: false });
      });
      const [wasm, js] = results;
      expect(wasm.recGrad!.some((g) => g !== 0)).toBe(true);
      expect(Buffer.from(wasm.recGrad!.buffer).equals(Buffer.from(js.recGrad!.buffer))).toBe(true);
      expect(Buffer.from(wasm.ffGrad!.buffer).equals(Buffer.from(js.ffGrad!.buffer))).toBe(true);
      expect(Buffer.from(wasm.finalState.v.buffer).equals(Buffer.from(js.finalState.v.buffer))).toBe(true);
      expect(Buffer.from(wasm.finalState.g.buffer).equals(Buffer.from(js.finalState.g.buffer))).toBe(true);
      expect(wasm.losses).toEqual(js.losses);
    }
  });
});
