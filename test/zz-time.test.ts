import { it } from "vitest";
import { loadConfig } from "../src/shared/config.js";
import { generateConnectome } from "../src/shared/connectome.js";
import { buildNetworkSpec } from "../src/shared/network.js";
import { SparseCpuEngine } from "../src/worker/sparse-cpu.js";
import { TfjsEngine } from "../src/worker/tfjs-engine.js";
import { smallNetwork } from "./helpers/small-network.js";
it("time", async () => {
  const q = loadConfig("parameters/quickstart.toml").config;
  const qc = generateConnectome(q);
  const qs = buildNetworkSpec(q, qc);
  const net = smallNetwork();
  for (const [name, spec, rw, fw] of [["small", net.spec, net.connectome.recWeight, net.connectome.ffWeight], ["quickstart", qs, qc.recWeight, qc.ffWeight]] as const) {
    const task = (g: boolean) => ({ epoch: 1, initialState: null, recWeight: rw, ffWeight: fw, computeGradient: g, recordActivity: false });
    const sp = new SparseCpuEngine(spec);
    const tj = new TfjsEngine(spec);
    for (const g of [false, true]) {
      sp.runEpochSync(task(g)); await tj.runEpoch(task(g));
      let t0 = performance.now(); for (let i = 0; i < 3; i++) sp.runEpochSync(task(g)); const ts = (performance.now() - t0) / 3;
      t0 = performance.now(); for (let i = 0; i < 2; i++) await tj.runEpoch(task(g)); const tt = (performance.now() - t0) / 2;
      console.log("TIME", name, "grad", g, "sparse ms", ts.toFixed(1), "tfjs ms", tt.toFixed(1));
    }
    tj.dispose();
  }
}, 600000);
