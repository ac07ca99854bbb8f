/**
 * npm run bench — prints figures and ratios (never asserted):
 *  1. the untrained default network over 10 s from rest, next to the original's numbers (MODEL.md section 10);
 *  2. sparse-cpu speed at default size (one epoch = 10 trials × 100 steps, one core), WebAssembly vs JS kernel,
 *     and worker memory;
 *  3. tfjs (cpu backend) vs sparse-cpu on the quickstart network, where dense matrices are affordable;
 *  4. the coordinator's own work per update (reduce + clip + Adam, message encoding) and bytes per update;
 *  5. throughput of real runs with 1 and 2 local workers at default size;
 *  6. one figure set at default size, and how much it would slow an interval;
 *  7. a checkpoint at default size: bytes, write and read time.
 *  8–9. training: gradient norms per loss term and chunk before and after the fix of the explosion, and the cost of
 *     burn-in and of each parameterisation (bench/training.ts).
 *  10. the webgpu engine against sparse-cpu, where a WebGPU adapter exists (bench/webgpu.ts).
 *  11. a real coordinator fed by replay workers at GPU speed: its own work per update (bench/coordinator-load.ts).
 * `npm run bench -- --quick` skips 5 and 11 (the slowest parts); `--webgpu-only` (the GPU check, scripts/gpu-check.sh)
 * runs 10 at 1×, 4× and 10× the default size, then 11 on this host and 11b: a real coordinator with one local webgpu
 * worker that takes each interval's epochs in one pass.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { initialTrainingState, readCheckpoint, TrainingState, writeCheckpoint } from "../io/checkpoint.js";
import { checkpointIdentity } from "../io/identity.js";
import { AdamKernel } from "../model/adam-kernel.js";
import { withOwnBuffers } from "../platform/thread-rpc.js";
import { averageGradients, newAdamState, OptimizedParameters, optimizerStep, sumOfSquares } from "../model/optimizer.js";
import { MetricsCsv } from "../io/run-dir.js";
import { benchFigureSet } from "./figures.js";
import { Config } from "../model/config.js";
import { loadConfig } from "../io/parameters-file.js";
import { generateConnectome } from "../model/connectome.js";
import { loadNetworkSpec } from "../io/network-files.js";
import { AssignMessage, encodeMessage, messageBytes } from "../distributed/protocol.js";
import { cellTypeStats } from "../model/statistics.js";
import { EpochTask, StreamState } from "../engine/engine.js";
import { SparseCpuEngine } from "../engine/sparse-cpu/sparse-cpu.js";
import { trainingCosts, trainingGradients } from "./training.js";
import { isSoftwareAdapter, webgpuBench } from "./webgpu.js";
import { listAdapters } from "../engine/webgpu/gpu-device.js";
import { coordinatorLoad, coordinatorWithGpuWorker } from "./coordinator-load.js";
import { allFactors, effectiveWeights, factorCounts, factorLogGradient, specTypePairs } from "../model/scaling-factors.js";

const DEFAULT = "parameters/fitting-activity.toml";
const QUICKSTART = "parameters/quickstart.toml";
const ORIGINAL = "parameters/fitting-activity-original.toml";

function seconds<T>(f: () => T, repeats: number): number {
  f();
  const t = performance.now();
  for (let i = 0; i < repeats; i++) f();
  return (performance.now() - t) / 1000 / repeats;
}

/**
 * Median and minimum seconds of `repeats` calls after `warmup` calls. A worker runs hundreds of epochs, so the
 * steady state after V8 has optimised the JavaScript and tiered up the WebAssembly is what counts; the median
 * and the minimum bound the noise of a shared virtual machine (often ±20%).
 */
function steadySeconds<T>(f: () => T, warmup: number, repeats: number): { median: number; min: number } {
  for (let i = 0; i < warmup; i++) f();
  const times = Array.from({ length: repeats }, () => {
    const t = performance.now();
    f();
    return (performance.now() - t) / 1000;
  }).sort((a, b) => a - b);
  return { median: times[Math.floor(repeats / 2)], min: times[0] };
}

function withBatch(config: Config, batch: number): Config {
  return { ...config, simulation: { ...config.simulation, batch_size: batch } };
}

function untrainedStatistics(config: Config): void {
  // One trial for 10 s from rest, as the original's measurement: 100 epochs of 100 ms carried as one stream.
  const one = withBatch(config, 1);
  const connectome = generateConnectome(one);
  const engine = new SparseCpuEngine(loadNetworkSpec(one, connectome));
  let state: StreamState | null = null;
  const epochs = 100;
  const rates = new Float64Array(connectome.cellType.length);
  for (let e = 0; e < epochs; e++) {
    const r = engine.runEpochSync({ epoch: e, initialState: state, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: false, recordActivity: false });
    state = r.finalState;
    r.rates.forEach((x, j) => (rates[j] += x / epochs));
  }
  console.log("\n1. untrained default network, 1 trial, 10 s from rest (original, MODEL.md 10: E 0.018 Hz, 4.5% active; I 11.7 Hz, 99.6% active)");
  const none = new Float64Array(rates.length).fill(NaN);
  for (const s of cellTypeStats(rates, none, none, connectome.cellType, config.recurrent.names))
    console.log(`   ${s.cellType.padEnd(11)} ${s.rateMean.toFixed(3)} Hz (SD ${s.rateStd.toFixed(2)}), active ${(100 * s.activeFraction).toFixed(1)}% over the 10 s`);
}

function engineSpeed(config: Config): { epochSeconds: number; state: StreamState } {
  const connectome = generateConnectome(config);
  const spec = loadNetworkSpec(config, connectome);
  console.log(`\n2. sparse-cpu at default size: ${connectome.rec.pre.length} recurrent + ${connectome.ff.pre.length} feedforward synapses, epoch = ${spec.batchSize} trials × ${spec.chunkSteps * spec.chunksPerEpoch} steps, one core`);
  const results: Record<string, number> = {};
  let state: StreamState | null = null;
  for (const kernel of ["wasm", "js"] as const) {
    const engine = new SparseCpuEngine(spec, "float32", kernel);
    const task = (computeGradient: boolean): EpochTask => ({ epoch: 3, initialState: state, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient, recordActivity: false });
    if (!state) for (let e = 0; e < 3; e++) state = engine.runEpochSync({ ...task(false), epoch: e }).finalState;
    const [warmup, repeats] = kernel === "wasm" ? [5, 9] : [1, 3];
    const fwd = steadySeconds(() => engine.runEpochSync(task(false)), warmup, repeats);
    const both = steadySeconds(() => engine.runEpochSync(task(true)), warmup, repeats);
    results[kernel] = both.median;
    console.log(
      `   ${engine.kernel.padEnd(4)} kernels: forward ${fwd.median.toFixed(3)} s (min ${fwd.min.toFixed(3)}), forward + backward ${both.median.toFixed(3)} s ` +
        `(min ${both.min.toFixed(3)}) per epoch, median of ${repeats} after ${warmup} warm-up epochs (goal 0.5 s)`,
    );
  }
  console.log(`   WebAssembly SIMD kernels' speed-up over the JavaScript loops: ${(results.js / results.wasm).toFixed(2)}×`);
  console.log(`   process peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB (goal for a worker < 1024 MiB)`);
  return { epochSeconds: results.wasm, state: state! };
}

async function tfjsRatio(): Promise<void> {
  const { TfjsEngine } = await import("../engine/tfjs/tfjs-engine.js");
  const config = loadConfig(QUICKSTART).config;
  const connectome = generateConnectome(config);
  const spec = loadNetworkSpec(config, connectome);
  const task: EpochTask = { epoch: 1, initialState: null, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: true, recordActivity: false };
  const sparse = seconds(() => new SparseCpuEngine(spec).runEpochSync(task), 2);
  const tf = new TfjsEngine(spec);
  await tf.runEpoch(task);
  const t = performance.now();
  await tf.runEpoch(task);
  const tfSeconds = (performance.now() - t) / 1000;
  tf.dispose();
  console.log(`\n3. quickstart network (500 neurons), forward + backward per epoch: sparse-cpu ${sparse.toFixed(3)} s, tfjs cpu backend ${tfSeconds.toFixed(2)} s → sparse-cpu ${(tfSeconds / sparse).toFixed(1)}× faster`);
}

function coordinatorWork(config: Config, state: StreamState): void {
  const connectome = generateConnectome(config);
  const A = config.simulation.accumulation_interval;
  const E = connectome.recWeight.length;
  const F = connectome.ffWeight.length;
  const grads = Array.from({ length: A }, (_, k) => [Float32Array.from({ length: E }, (_, i) => Math.sin(i + k)), Float32Array.from({ length: F }, (_, i) => Math.cos(i + k))]);
  let current: OptimizedParameters = { weights: [connectome.recWeight.slice(), connectome.ffWeight.slice()], logWeights: null, adam: newAdamState([E, F]) };
  const hp = { learningRate: 5e-4, betas: [0.9, 0.999] as [number, number], eps: 1e-8, maxGradNorm: 1 };
  // As the trainer: reduce in epoch order, then the optimiser's step (clip, Adam into the other generation,
  // projection onto w ≥ 0) with the SIMD kernel; and with Adam as the JavaScript loop, for comparison. Twenty updates
  // each: a few milliseconds apart, the three vary by more than that from one run of five to the next.
  const timeUpdate = (memory: { kernel: AdamKernel | null }) =>
    seconds(() => {
      const step = optimizerStep(current, averageGradients(grads), hp, ["recurrent", "feedforward"], "weights", memory);
      if (step.applied) current = step.next;
    }, 20);
  const updateJs = timeUpdate({ kernel: null });
  // The kernel on one thread, then as the trainer makes it: split over helper threads, one per other core up to three
  // (made after the other timings, so that their start-up does not run beside them).
  const oneThread = AdamKernel.create([E, F], 0);
  const updateOneThread = timeUpdate({ kernel: oneThread });
  const kernel = AdamKernel.create([E, F]);
  const helpers = kernel?.helpers ?? 0;
  const update = timeUpdate({ kernel });
  // With a reduce group the worker has reduced: the coordinator checks the sums (Σg², as the pool does) and steps
  // with that Σg².
  const mean = averageGradients(grads);
  const timeFromSums = (k: AdamKernel | null) =>
    seconds(() => {
      const sumSquares = sumOfSquares(mean);
      if (!Number.isFinite(sumSquares)) throw new Error("non-finite sums");
      const step = optimizerStep(current, mean, hp, ["recurrent", "feedforward"], "weights", { kernel: k }, sumSquares);
      if (step.applied) current = step.next;
    }, 20);
  const fromSums = timeFromSums(kernel);
  const fromSumsOneThread = timeFromSums(oneThread);
  kernel?.close();
  const w = current.weights;
  const message: AssignMessage = { type: "assign", runId: "bench", update: 0, epoch: 0, stream: 0, weightsVersion: 1, weights: { rec: w[0], ff: w[1] }, initialState: state, computeGradient: true, recordActivity: false, reduceGroup: null };
  const assign = encodeMessage(message);
  const encode = seconds(() => encodeMessage(message), 5);
  const stateBytes = (state.v.byteLength + state.g.byteLength);
  const weightBytes = (E + F) * 4;
  const resultBytes = weightBytes + stateBytes; // gradient per edge + final state (+ small statistics)
  const threads = `the SIMD kernel on this thread and ${helpers} helper thread${helpers === 1 ? "" : "s"}`;
  console.log(`\n4. coordinator per update at default size (${A} epochs): reduce + clip + Adam + projection ${(update * 1000).toFixed(1)} ms${kernel ? ` with Adam as ${threads} (${(updateOneThread * 1000).toFixed(1)} ms with the kernel on one thread, ${(updateJs * 1000).toFixed(1)} ms with Adam as a JavaScript loop)` : " (no SIMD kernel here)"} (from a reduce group's sums: check + clip + Adam + projection ${(fromSums * 1000).toFixed(1)} ms, ${(fromSumsOneThread * 1000).toFixed(1)} ms with the kernel on one thread), encoding one assignment with weights ${(encode * 1000).toFixed(1)} ms (${(messageBytes(assign) / 2 ** 20).toFixed(1)} MiB); goal < 50 ms`);
  console.log(`   bytes per update with W workers: weights ${(weightBytes / 2 ** 20).toFixed(1)} MiB × W, states in ${(stateBytes / 2 ** 20).toFixed(1)} MiB × ${A}, results ${(resultBytes / 2 ** 20).toFixed(1)} MiB × ${A} → ${((2 * weightBytes + A * (stateBytes + resultBytes)) / 2 ** 20).toFixed(1)} MiB with 2 workers`);
  // A reduce group: the results carry the states, and one float64 sum (8 bytes per synapse) replaces A float32 gradients.
  const groupIn = A * stateBytes + 2 * weightBytes;
  console.log(`   one worker taking the ${A} epochs at once (a reduce group, as a GPU worker does): weights ${(weightBytes / 2 ** 20).toFixed(1)} MiB, states in ${((A * stateBytes) / 2 ** 20).toFixed(1)} MiB, results ${(groupIn / 2 ** 20).toFixed(1)} MiB (their gradients summed by the worker: ${((2 * weightBytes) / 2 ** 20).toFixed(1)} MiB of float64 instead of ${((A * weightBytes) / 2 ** 20).toFixed(1)} MiB of float32) → ${((weightBytes + A * stateBytes + groupIn) / 2 ** 20).toFixed(1)} MiB`);
}

/**
 * optimise = "scaling_factors" at default size: the engines' epoch is the same as weight training's; the worker adds
 * the reduction of per-edge gradients to K×K + K_in×K factor gradients, the coordinator's update is Adam over those
 * few factors plus W·S for every edge, and a result carries the factor gradients instead of one value per edge.
 */
function scalingFactorCosts(config: Config, state: StreamState, epochSeconds: number): void {
  const spec = loadNetworkSpec(config, generateConnectome(config));
  const E = spec.rec.pre.length;
  const F = spec.ff.pre.length;
  const pairs = specTypePairs(spec);
  const counts = factorCounts(spec.constants);
  const grad = { rec: Float32Array.from({ length: E }, (_, i) => Math.sin(i)), ff: Float32Array.from({ length: F }, (_, i) => Math.cos(i)) };
  const w = { rec: Float32Array.from({ length: E }, (_, i) => 0.1 + (i % 7) / 70), ff: Float32Array.from({ length: F }, (_, i) => 0.1 + (i % 5) / 50) };
  const reduce = seconds(() => factorLogGradient([{ grad: grad.rec, weight: w.rec, pair: pairs.rec }, { grad: grad.ff, weight: w.ff, pair: pairs.ff }], counts), 9);
  const factors = { rec: new Float32Array(counts.rec).fill(1), ff: new Float32Array(counts.ff).fill(1) };
  let current: OptimizedParameters = { weights: [factors.rec, factors.ff], logWeights: [new Float32Array(counts.rec), new Float32Array(counts.ff)], adam: newAdamState([counts.rec, counts.ff]) };
  const g = factorLogGradient([{ grad: grad.rec, weight: w.rec, pair: pairs.rec }, { grad: grad.ff, weight: w.ff, pair: pairs.ff }], counts);
  const A = config.simulation.accumulation_interval;
  const update = seconds(() => {
    const step = optimizerStep(current, averageGradients(Array.from({ length: A }, () => [g.rec, g.ff])), { learningRate: 5e-2, betas: [0.6, 0.999], eps: 1e-8, maxGradNorm: 1e6 }, ["rec", "ff"], "log-parameters");
    if (step.applied) current = step.next;
    const all = allFactors({ rec: current.weights[0], ff: current.weights[1] });
    effectiveWeights(w.rec, all, pairs.rec);
    effectiveWeights(w.ff, all, pairs.ff);
  }, 9);
  const result = (recGrad: Float32Array, ffGrad: Float32Array) =>
    messageBytes(
      encodeMessage({ type: "result", runId: "bench", weightsVersion: 1, epoch: 0, recGrad, ffGrad, finalState: state, activity: null, computeSeconds: 0, losses: { firing_rate: 0, cv: 0, silent_penalty: 0, membrane_variance: 0, van_rossum: 0, total: 0 }, stats: [], rates: new Float32Array(0), cvs: new Float32Array(0), ratios: new Float32Array(0) }),
    );
  const perEdge = result(grad.rec, grad.ff);
  const perFactor = result(g.rec, g.ff);
  const stateOnly = result(new Float32Array(0), new Float32Array(0));
  console.log(`
4b. optimise = "scaling_factors" at default size (${counts.rec} + ${counts.ff} factors): worker reduction ${(reduce * 1000).toFixed(1)} ms per epoch (${((100 * reduce) / epochSeconds).toFixed(1)}% of an epoch's ${epochSeconds.toFixed(2)} s, which is the same as weight training's)`);
  console.log(`    coordinator per update: Adam on the factors + W·S for every synapse ${(update * 1000).toFixed(1)} ms`);
  console.log(`    gradient bytes per result: ${perFactor - stateOnly} B (per-synapse gradients under optimise = "weights": ${((perEdge - stateOnly) / 2 ** 20).toFixed(1)} MiB); the final stream state (${(stateOnly / 2 ** 20).toFixed(1)} MiB) travels either way`);
}

/**
 * Epochs/s of real runs with 1 and 2 local workers. An update's A epochs are spread over W workers in ceil(A/W)
 * rounds, so the speed-up is bounded by A / ceil(A/W): 1.67× for the default A = 5 on 2 workers, 2× for A = 6.
 */
const UPDATES = 8;
const WARMUP_UPDATES = 2;

function throughput(): void {
  const cli = fileURLToPath(new URL("../cli/snn-coord.js", import.meta.url));
  // V8 tiers the kernels up over a worker's first few epochs; with 2 workers each has done half of them by then.
  console.log(`\n5. real runs at default size, ${UPDATES} updates, --no-figures, checkpoint_best at every improving update, checkpoint_latest at the end`);
  console.log(`   (the first ${WARMUP_UPDATES} updates, JIT warm-up, not counted):`);
  for (const A of [5, 6]) {
    const dir = mkdtempSync(join(tmpdir(), "snn-bench-"));
    try {
      const params = join(dir, "params.toml");
      writeFileSync(
        params,
        // The original's settings: every epoch trains (no burn-in), which is what throughput means here.
        readFileSync(ORIGINAL, "utf8")
          .replace(/^accumulation_interval = \d+/m, `accumulation_interval = ${A}`)
          .replace(/^checkpoint_interval = \d+/m, `checkpoint_interval = ${UPDATES * A}`)
          .replace(/^interval = \d+/m, `interval = ${UPDATES * A}`)
          .replace(/^epochs = \d+/m, `epochs = ${UPDATES * A}`),
      );
      const rates = [1, 2].map((workers) => {
        execFileSync(process.execPath, [cli, params, "--workers", String(workers), "--output", join(dir, `run${workers}`), "--metrics-port", "0", "--no-figures"], { stdio: "ignore" });
        const rows = MetricsCsv.read(join(dir, `run${workers}`, "metrics.csv")).slice(WARMUP_UPDATES);
        return rows.reduce((a, r) => a + r.epochs_per_s, 0) / rows.length;
      });
      const bound = A / Math.ceil(A / 2);
      console.log(`   accumulation_interval ${A}: 1 worker ${rates[0].toFixed(3)} epochs/s, 2 workers ${rates[1].toFixed(3)} epochs/s → ${(rates[1] / rates[0]).toFixed(2)}× (bound ${bound.toFixed(2)}×; goal ≥ 1.8× on 2 cores)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

async function figures(epochSeconds: number, config: Config): Promise<void> {
  const { seconds: s } = await benchFigureSet(config);
  const A = config.simulation.accumulation_interval;
  const every = config.plotting.interval;
  const interval = A * epochSeconds;
  console.log(`\n6. one figure set at default size: ${s.toFixed(2)} s (goal < 3 s), rendered on its own thread while training goes on`);
  console.log(
    `   training waits only when a set takes longer than two intervals (2 × ${A} epochs ≈ ${(2 * interval).toFixed(1)} s on one worker): ` +
      `${Math.max(0, s - 2 * interval).toFixed(2)} s (goal < 5% of an interval)`,
  );
  console.log(
    `   with a set every ${every} epochs (parameters/fitting-activity.toml) rendering takes ${((100 * s) / (every * epochSeconds)).toFixed(1)}% ` +
      `of one worker's compute time, on a core the workers share on a 2-core machine`,
  );
}

/** Size and write/read time of a checkpoint with A realistic, distinct stream states (each a few epochs from rest). */
function checkpointSize(config: Config): void {
  const connectome = generateConnectome(config);
  const spec = loadNetworkSpec(config, connectome);
  const engine = new SparseCpuEngine(spec);
  const A = config.simulation.accumulation_interval;
  const streams = Array.from({ length: A }, (_, k) => {
    let st: StreamState | null = null;
    for (let e = 0; e < 4; e++) st = engine.runEpochSync({ epoch: 100 * k + e, initialState: st, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: false, recordActivity: false }).finalState;
    return st;
  });
  const E = connectome.recWeight.length;
  const F = connectome.ffWeight.length;
  const state: TrainingState = { ...initialTrainingState(connectome, A, "linear", "bench"), epoch: A, streams, bestLoss: 10 };
  const dir = mkdtempSync(join(tmpdir(), "snn-bench-ckpt-"));
  try {
    const path = join(dir, "checkpoint_latest.safetensors");
    const id = checkpointIdentity(config, spec);
    const write = seconds(() => writeCheckpoint(path, state, id), 2);
    // What the coordinator itself spends on a checkpoint: the snapshot posted to the writer thread (a structured clone
    // of what CheckpointWriter.submit posts).
    const snapshot = seconds(() => {
      const copies: ArrayBuffer[] = [];
      structuredClone(withOwnBuffers(state, copies), { transfer: copies });
    }, 5);
    const read = seconds(() => readCheckpoint(path, id, A), 2);
    const info = readCheckpoint(path, id, A);
    const mb = (x: number) => (x / 1e6).toFixed(1);
    console.log(`\n7. checkpoint at default size (${A} streams, 4 epochs from rest each): ${mb(info.fileBytes)} MB (goal < 20 MB; the original's dense .pt ≈ 400 MB)`);
    console.log(`   stream states ${mb(info.streamStateBytes.stored)} MB stored for ${mb(info.streamStateBytes.decoded)} MB of float32 (${info.streamStateBytes.codec}); weights + Adam ${mb((E + F) * 12)} MB`);
    console.log(`   write ${write.toFixed(2)} s (on the writer thread, off the training path), read ${read.toFixed(2)} s; the coordinator's snapshot ${(snapshot * 1000).toFixed(1)} ms (taken while the next interval computes)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const config = loadConfig(DEFAULT).config;
  if (process.argv.includes("--webgpu-only")) {
    await webgpuBench(config, { scales: [1, 4, 10], sparseCpu: true, small: loadConfig(QUICKSTART).config });
    return gpuCoordinator();
  }
  untrainedStatistics(config);
  const { epochSeconds, state } = engineSpeed(config);
  await tfjsRatio();
  coordinatorWork(config, state);
  scalingFactorCosts(config, state, epochSeconds);
  if (!quick) throughput();
  await figures(epochSeconds, config);
  checkpointSize(config);
  trainingGradients(QUICKSTART, config);
  trainingCosts(DEFAULT);
  await webgpuBench(config, { scales: [1], sparseCpu: true, small: loadConfig(QUICKSTART).config });
  if (!quick) await coordinatorLoad(ORIGINAL, loadConfig(ORIGINAL).config.simulation.accumulation_interval);
}

/**
 * The GPU check's coordinator measurements: bench 11 on this host's CPU, and a real run with one local webgpu worker
 * (11b). On a CPU Vulkan driver the webgpu run uses the quickstart network for a few updates (its epochs take seconds).
 */
async function gpuCoordinator(): Promise<void> {
  const adapters = await listAdapters().catch(() => []);
  if (adapters.length === 0) return;
  const A = loadConfig(ORIGINAL).config.simulation.accumulation_interval;
  if (isSoftwareAdapter(adapters[0].name)) return coordinatorWithGpuWorker(QUICKSTART, loadConfig(QUICKSTART).config.simulation.accumulation_interval, 6);
  await coordinatorLoad(ORIGINAL, A);
  await coordinatorWithGpuWorker(ORIGINAL, A, 40);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
