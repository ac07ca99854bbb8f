/**
 * npm run bench: engine speed at default size (sparse-cpu forward+backward per epoch, tfjs cpu on the same epoch
 * and their ratio), worker memory, the untrained network's statistics next to the original's, and figure rendering.
 */
import { loadConfig } from "../shared/config.js";
import { generateConnectome } from "../shared/connectome.js";
import { buildNetworkSpec } from "../shared/network.js";
import { SparseCpuEngine } from "../worker/sparse-cpu.js";
import { averageStats } from "../shared/statistics.js";

async function main(): Promise<void> {
  const { config } = loadConfig(process.argv[2] ?? "parameters/fitting-activity.toml");
  config.simulation.chunks_per_epoch = 2;
  config.simulation.chunk_steps = 50;
  const t0 = performance.now();
  const connectome = generateConnectome(config);
  console.log(`connectome: ${connectome.rec.pre.length} recurrent + ${connectome.ff.pre.length} feedforward synapses in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  const spec = buildNetworkSpec(config, connectome);
  const engine = new SparseCpuEngine(spec);
  const task = (epoch: number, state: ReturnType<SparseCpuEngine["runEpochSync"]>["finalState"] | null, computeGradient: boolean) => ({
    epoch,
    initialState: state,
    recWeight: connectome.recWeight,
    ffWeight: connectome.ffWeight,
    computeGradient,
    recordActivity: false,
  });
  let state = null;
  const stats = [];
  // 10 s of network time from rest (100 epochs × 10 trials × 100 ms would be 100 s: use 10 epochs of 1 s per trial-sum).
  for (let e = 0; e < 10; e++) {
    const r = engine.runEpochSync(task(e, state, false));
    state = r.finalState;
    stats.push(r.stats);
  }
  for (const s of averageStats(stats))
    console.log(`untrained ${s.cellType}: ${s.rateMean.toFixed(3)} Hz, active ${(100 * s.activeFraction).toFixed(1)}%, CV ${s.cvMean.toFixed(2)}`);
  console.log("original (MODEL.md section 10): excitatory 0.018 Hz (4.5% active over 10 s), inhibitory 11.7 Hz");

  const time = (f: () => void, n: number) => {
    f();
    const t = performance.now();
    for (let i = 0; i < n; i++) f();
    return (performance.now() - t) / 1000 / n;
  };
  const fwd = time(() => engine.runEpochSync(task(11, state, false)), 3);
  const fwdBwd = time(() => engine.runEpochSync(task(11, state, true)), 3);
  console.log(`sparse-cpu, 10 trials × 100 steps, one core: forward ${fwd.toFixed(3)} s, forward+backward ${fwdBwd.toFixed(3)} s per epoch (goal 0.5 s)`);
  console.log(`worker peak RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (goal < 1024)`);

  // tfjs builds dense N×N matrices; compare the engines on the quickstart network, where that is affordable.
  const { TfjsEngine } = await import("../worker/tfjs-engine.js");
  const q = loadConfig("parameters/quickstart.toml").config;
  const qc = generateConnectome(q);
  const qs = buildNetworkSpec(q, qc);
  const qTask = { epoch: 1, initialState: null, recWeight: qc.recWeight, ffWeight: qc.ffWeight, computeGradient: true, recordActivity: false };
  const qSparse = new SparseCpuEngine(qs);
  const sparseQ = time(() => qSparse.runEpochSync(qTask), 3);
  const tf = new TfjsEngine(qs);
  await tf.runEpoch(qTask);
  const t1 = performance.now();
  await tf.runEpoch(qTask);
  const tfSeconds = (performance.now() - t1) / 1000;
  tf.dispose();
  console.log(`quickstart network (500 neurons), forward+backward per epoch: sparse-cpu ${sparseQ.toFixed(3)} s, tfjs (cpu backend) ${tfSeconds.toFixed(2)} s; ratio ${(tfSeconds / sparseQ).toFixed(1)}×`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
