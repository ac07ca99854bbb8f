/**
 * One figure set at the default network size, from a real epoch: the untrained network's streams after 3 epochs
 * from rest, the 4th epoch's plot trial recorded, and a history of 100 updates (data generation not timed).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadNetworkSpec } from "../io/network-files.js";
import { Config } from "../model/config.js";
import { generateConnectome } from "../model/connectome.js";
import { StreamState } from "../engine/engine.js";
import { SparseCpuEngine } from "../engine/sparse-cpu/sparse-cpu.js";
import { HistoryRow } from "../report/figure-data.js";
import { figureTargets, networkView } from "../report/figures/network-view.js";
import { renderFigureSet } from "../report/figures/render.js";

export async function benchFigureSet(config: Config): Promise<{ seconds: number }> {
  const connectome = generateConnectome(config);
  const spec = loadNetworkSpec(config, connectome);
  const engine = new SparseCpuEngine(spec);
  const task = (epoch: number, initialState: StreamState | null, recordActivity: boolean) => ({
    epoch,
    initialState,
    recWeight: connectome.recWeight,
    ffWeight: connectome.ffWeight,
    computeGradient: false,
    recordActivity,
  });
  let state: StreamState | null = null;
  for (let e = 0; e < 3; e++) state = engine.runEpochSync(task(e, state, false)).finalState;
  const r = engine.runEpochSync(task(3, state, true));
  const history: HistoryRow[] = Array.from({ length: 100 }, (_, k) => {
    const row: HistoryRow = { epoch: 5 * (k + 1) };
    for (const [term, v] of Object.entries(r.losses)) row[`${term}_loss`] = v * (1 + 0.01 * k);
    r.stats.forEach((s) => (row[`firing_rate/${s.cellType}/mean`] = s.rateMean));
    return row;
  });
  const data = {
    epoch: 500,
    totalEpochs: 500,
    network: { ...networkView(config, connectome, spec.odours), recWeight: connectome.recWeight, ffWeight: connectome.ffWeight },
    activity: r.activity!,
    rates: r.rates,
    cvs: r.cvs,
    interval: { trials: spec.batchSize, epochs: [r.epoch], rates: [r.rates], cvs: [r.cvs] },
    initialWeights: { rec: connectome.recWeight, ff: connectome.ffWeight },
    targets: figureTargets(config, spec),
    history,
    rasterNeurons: config.plotting.raster_neurons,
  };
  const dir = await mkdtemp(path.join(tmpdir(), "snn-figures-bench-"));
  try {
    const start = process.hrtime.bigint();
    await renderFigureSet(data, dir);
    return { seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
