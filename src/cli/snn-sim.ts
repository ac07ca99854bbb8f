#!/usr/bin/env node
/**
 * snn-sim PARAMS [--epochs K] [--checkpoint FILE] [--teacher] [--export FILE] [--export-targets FILE] [--figures DIR]:
 * simulates the network a run would start from (or a checkpoint's) as one stream of epochs from rest, prints
 * per-cell-type statistics, and can export one epoch with its gradients for cross-checking in Python, per-neuron
 * targets and weights for teacher-student fitting, and the figure set. `--teacher --export-teacher FILE` records the
 * teacher's input and output spike trains of every stream instead (io/teacher-recording.ts).
 */
import { simCli } from "./sim-options.js";
import { hideBin } from "yargs/helpers";
import { FileWriteError, writeSafetensorsFile } from "../platform/atomic-file.js";
import { Config, ConfigError } from "../model/config.js";
import { loadConfig } from "../io/parameters-file.js";
import { Connectome } from "../model/connectome.js";
import { loadConnectome, writeConnectomeFiles } from "../io/connectome-file.js";
import { FigureData } from "../report/figure-data.js";
import { epochInputs, NetworkSpec } from "../model/network.js";
import { loadNetworkSpec } from "../io/network-files.js";
import { Tensor } from "../platform/safetensors.js";
import { pooledStats } from "../model/statistics.js";
import { writeTargetsFile } from "../io/targets-file.js";
import { recordTeacher, recordingSettings, writeTeacherRecording } from "../io/teacher-recording.js";
import { replayStartsFromRest } from "../model/teacher-replay.js";
import { CheckpointError, initialTrainingState, readCheckpoint } from "../io/checkpoint.js";
import { figureTargets, networkView } from "../report/figures/network-view.js";
import { recordedTeacherFigureData } from "../report/teacher-figure-data.js";
import { checkpointIdentity } from "../io/identity.js";
import { freshStart, teacherWeights } from "../training/student.js";
import { simulatedConfig, simulatedConnectome } from "../model/teacher-forcing.js";
import { Engine, EpochResult, epochSteps, StreamState } from "../engine/engine.js";
import { GpuUnavailableError } from "../engine/webgpu/gpu-device.js";
import { SparseCpuEngine } from "../engine/sparse-cpu/sparse-cpu.js";
import { StreamStatistics } from "../engine/stream-statistics.js";

class UsageError extends Error {}

/**
 * The teacher is the parameters' own network: its targets file, teacher recording, student table and van Rossum loss
 * describe a student (and may name the very file being exported), so they are set aside and one parameters file
 * serves both roles.
 */
function teacherConfig(config: Config): Config {
  return {
    ...config,
    targets: { ...config.targets, file: undefined, teacher_spikes: undefined },
    hyperparameters: { ...config.hyperparameters, loss_weight: { ...config.hyperparameters.loss_weight, van_rossum: 0 } },
    student: { init: "generated", perturbation: "none", perturbation_sigma: 0, scale: 1, noise_frac: 0, noise_rescale: "global", weight_perturbation_variance: 0, mode: "recurrent" },
  };
}

/** The weights a fresh training run starts with (the student's, with its scaling factors applied). */
function freshWeights(config: Config, connectome: Connectome, spec: NetworkSpec): { recWeight: Float32Array; ffWeight: Float32Array } {
  const start = freshStart(config, connectome, spec, teacherWeights(config, connectome));
  return initialTrainingState(start.weights, 1, config.hyperparameters.parameterisation, "", start.factors);
}

async function main(): Promise<number> {
  const args = await simCli(hideBin(process.argv))
    .fail((message, error) => {
      throw new UsageError(message ?? error.message);
    })
    .parseAsync();

  const loaded = loadConfig(String(args.params)).config;
  const config = args.teacher ? teacherConfig(loaded) : loaded;
  const connectome = loadConnectome(config);
  if (args["export-connectome"]) {
    const files = writeConnectomeFiles(args["export-connectome"], connectome, config);
    console.log(`wrote the connectome (${connectome.numNeurons} neurons, ${connectome.rec.pre.length} + ${connectome.ff.pre.length} synapses, network hash ${connectome.hash.slice(0, 12)}…) to ${files.join(", ")}`);
    return 0;
  }
  const spec = loadNetworkSpec(config, connectome);
  let { recWeight, ffWeight } = args.teacher ? connectome : freshWeights(config, connectome, spec);
  // The weights a training run starts from, for the weight distributions (a teacher has none).
  const initialWeights = args.teacher ? null : { rec: recWeight, ff: ffWeight };
  if (args.checkpoint) {
    const ck = readCheckpoint(args.checkpoint, checkpointIdentity(config, spec), null);
    recWeight = ck.state.recWeight;
    ffWeight = ck.state.ffWeight;
    console.log(`weights from ${args.checkpoint} (epoch ${ck.state.epoch})`);
  }
  const T = epochSteps(spec);
  if (args["export-teacher"]) return exportTeacher(args["export-teacher"], config, connectome, spec, new SparseCpuEngine(spec), { recWeight, ffWeight }, args.epochs);
  const engine: SimEngine =
    args.engine === "webgpu" ? await (await import("../engine/webgpu/webgpu-engine.js")).WebGpuEngine.create(spec, { gpu: args.gpu, epochsPerPass: 1, keepActivity: true }) : new SparseCpuEngine(spec);
  // A student replaying a recorded teacher simulates the recording's stream 0 as training does: epochs 0, A, 2A, …,
  // from rest at the start of every pass over the recording.
  const recording = spec.teacherRecording;
  const globalEpoch = (e: number) => (recording ? e * (recording.trials / spec.batchSize) : e);
  const targetsFile = args["export-targets"];
  const streamStats = targetsFile ? new StreamStatistics(spec.batchSize, T, spec.constants.theta, spec.constants.dt) : null;
  let state: StreamState | null = null;
  let last: EpochResult | null = null;
  const stats = [];
  for (let e = 0; e < args.epochs; e++) {
    const isLast = e === args.epochs - 1;
    const epoch = globalEpoch(e);
    const initial = recording && replayStartsFromRest(recording, epoch, spec.batchSize, T) ? null : state;
    const task = { epoch, initialState: initial, recWeight, ffWeight, computeGradient: isLast && Boolean(args.export), recordActivity: isLast && Boolean(args.figures) };
    last = await engine.runEpoch(task);
    stats.push(last);
    state = last.finalState;
    if (streamStats && e > 0) {
      const { spikes, voltages } = engine.recordedActivity();
      const N = spec.constants.numNeurons;
      streamStats.add({ trials: spec.batchSize, steps: T, neurons: N, sb: T * N, st: N, sj: 1, spikes, voltages, voltageOffset: 0 });
    }
    if (isLast && args.export) {
      exportEpoch(args.export, spec, connectome.assemblyId, epoch, initial, recWeight, ffWeight, engine, last);
      console.log(`exported epoch ${e} to ${args.export}`);
    }
  }
  const seconds = (args.epochs * spec.batchSize * T * spec.constants.dt) / 1000;
  console.log(`simulated ${args.epochs} epochs × ${spec.batchSize} trials × ${T} steps (${seconds.toFixed(1)} s of network time per trial summed)`);
  printStats(stats, spec);
  if (targetsFile && streamStats) {
    writeTargetsFile(targetsFile, { ...streamStats.result(), recWeight, ffWeight, networkHash: connectome.hash, epochs: args.epochs, seed: config.simulation.seed });
    console.log(`wrote per-neuron targets of ${spec.constants.numNeurons} neurons (epochs 1–${args.epochs - 1}, ${spec.batchSize} trials) and the weights to ${targetsFile}`);
  }
  engine.dispose();
  if (args.figures && last?.activity) await renderLastEpoch(args.figures, config, connectome, spec, stats, args.epochs, { recWeight, ffWeight }, initialWeights);
  return 0;
}

/** An engine whose last epoch's spikes and voltages can be read back (the exports). */
type SimEngine = Engine & { recordedActivity(): { spikes: Uint8Array; voltages: Float32Array } };

/** The figure set of the simulation's last epoch, into `dir`. */
async function renderLastEpoch(
  dir: string,
  config: Config,
  connectome: Connectome,
  spec: NetworkSpec,
  results: EpochResult[],
  epochs: number,
  weights: { recWeight: Float32Array; ffWeight: Float32Array },
  initialWeights: { rec: Float32Array; ff: Float32Array } | null,
): Promise<void> {
  const last = results[results.length - 1];
  // The statistics figures pool the epochs (the same weights throughout); the first starts from rest and is left out
  // when there are enough others.
  const pooled = results.length >= 3 ? results.slice(1) : results;
  // Loaded only here: the figure pipeline (vega, resvg) is heavy and most runs do not draw.
  const { renderFigureSet } = await import("../report/figures/render.js");
  const data: FigureData = {
    epoch: epochs,
    totalEpochs: epochs,
    network: { ...networkView(simulatedConfig(config), simulatedConnectome(config, connectome), spec.odours), recWeight: weights.recWeight, ffWeight: weights.ffWeight },
    activity: last.activity!,
    rates: last.rates,
    cvs: last.cvs,
    interval: { trials: spec.batchSize, epochs: pooled.map((r) => r.epoch), rates: pooled.map((r) => r.rates), cvs: pooled.map((r) => r.cvs) },
    initialWeights,
    targets: figureTargets(config, spec),
    history: [],
    rasterNeurons: config.plotting.raster_neurons,
    teacher: recordedTeacherFigureData(spec, last.activity!.epoch),
  };
  const files = await renderFigureSet(data, dir);
  console.log(`wrote ${files.length} figures of the last epoch to ${dir}`);
}

/** `snn-sim --teacher --export-teacher FILE`: the teacher's spike trains of accumulation_interval streams × `epochs` epochs. */
function exportTeacher(
  file: string,
  config: Config,
  connectome: Connectome,
  spec: NetworkSpec,
  engine: SparseCpuEngine,
  weights: { recWeight: Float32Array; ffWeight: Float32Array },
  epochs: number,
): number {
  const streams = config.simulation.accumulation_interval;
  const { recording, results } = recordTeacher(engine, spec, weights, streams, epochs);
  printStats(results, spec);
  writeTeacherRecording(file, { ...recordingSettings(config, connectome), recording, seed: config.simulation.seed });
  const mb = (recording.inputs.byteLength + recording.outputs.byteLength) / 1e6;
  console.log(
    `wrote the teacher's spike trains (${streams} streams × ${spec.batchSize} trials × ${recording.steps} steps of ${recording.numInputs} inputs and ` +
      `${recording.numNeurons} neurons, ${mb.toFixed(1)} MB bit-packed) to ${file}`,
  );
  return 0;
}

function printStats(stats: EpochResult[], spec: NetworkSpec): void {
  for (const s of pooledStats(stats, spec.constants.cellType, spec.cellTypeNames)) {
    console.log(
      `${s.cellType}: rate ${s.rateMean.toFixed(3)} ± ${s.rateStd.toFixed(3)} Hz, CV ${s.cvMean.toFixed(2)} ± ${s.cvStd.toFixed(2)}, active ${(100 * s.activeFraction).toFixed(1)}%, membrane ratio ${s.ratioMean.toFixed(3)}`,
    );
  }
}

function exportEpoch(
  file: string,
  spec: NetworkSpec,
  assemblyId: Int32Array,
  epoch: number,
  initial: StreamState | null,
  recWeight: Float32Array,
  ffWeight: Float32Array,
  engine: SimEngine,
  r: EpochResult,
): void {
  const c = spec.constants;
  const B = spec.batchSize;
  const T = epochSteps(spec);
  const N = c.numNeurons;
  const M = c.numInputs;
  const S = c.numSlots;
  const rec = engine.recordedActivity();
  const inputSpikes = new Uint8Array(B * T * M);
  epochInputs(spec, { epoch, initialState: initial, recordActivity: false }, { trials: B, steps: T, numInputs: M, data: inputSpikes });
  const init = initial ?? { v: Float32Array.from({ length: B * N }, (_, k) => c.uReset[k % N]), g: new Float32Array(B * N * 2 * S) };
  const slotsRec = c.sourceSlotStart[c.numRecTypes];
  const gRec = new Float32Array(B * N * 2 * slotsRec);
  const gFf = new Float32Array(B * N * 2 * (S - slotsRec));
  for (let bj = 0; bj < B * N; bj++)
    for (let cc = 0; cc < 2; cc++)
      for (let l = 0; l < S; l++) {
        // The state is slot-major ([c·S + l][b·N + j]); the export keeps its [b][j][c][l] tensors.
        const x = init.g[(cc * S + l) * B * N + bj];
        if (l < slotsRec) gRec[(bj * 2 + cc) * slotsRec + l] = x;
        else gFf[(bj * 2 + cc) * (S - slotsRec) + (l - slotsRec)] = x;
      }
  const f32 = (data: Float32Array, shape: number[]): Tensor => ({ dtype: "F32", shape, data });
  const i32 = (data: Int32Array, shape: number[]): Tensor => ({ dtype: "I32", shape, data });
  const tensors: Record<string, Tensor> = {
    rec_pre: i32(spec.rec.pre, [spec.rec.pre.length]),
    rec_post: i32(spec.rec.post, [spec.rec.post.length]),
    rec_weight: f32(recWeight, [recWeight.length]),
    ff_pre: i32(spec.ff.pre, [spec.ff.pre.length]),
    ff_post: i32(spec.ff.post, [spec.ff.post.length]),
    ff_weight: f32(ffWeight, [ffWeight.length]),
    cell_type: i32(c.cellType, [N]),
    assembly_id: i32(assemblyId, [N]),
    theta: f32(c.theta, [N]),
    u_reset: f32(c.uReset, [N]),
    e_l: f32(c.eL, [N]),
    c_m: f32(c.cM, [N]),
    beta: f32(c.beta, [N]),
    alpha: f32(Float32Array.from([...c.alphaRise, ...c.alphaDecay]), [2, S]),
    g_scale: f32(Float32Array.from([...Array.from(c.gScale, (x) => -x), ...c.gScale]), [2, S]),
    e_syn: f32(c.eSyn, [S]),
    target_rate: f32(Float32Array.from(spec.targets.rate), [N]),
    target_alpha: f32(Float32Array.from(spec.targets.alpha), [N]),
    target_ratio: f32(Float32Array.from(spec.targets.ratio), [N]),
    input_spikes: { dtype: "U8", shape: [B, T, M], data: inputSpikes },
    initial_v: f32(init.v, [B, N]),
    initial_g: f32(gRec, [B, N, 2, slotsRec]),
    initial_g_ff: f32(gFf, [B, N, 2, S - slotsRec]),
    spikes: { dtype: "U8", shape: [B, T, N], data: rec.spikes },
    voltages: f32(rec.voltages, [B, T, N]),
    rec_grad: f32(r.recGrad!, [r.recGrad!.length]),
    ff_grad: f32(r.ffGrad!, [r.ffGrad!.length]),
  };
  writeSafetensorsFile(file, tensors, {
    dt: String(c.dt),
    chunk_steps: String(spec.chunkSteps),
    surrgrad_scale: String(c.surrgradScale),
    detach_reset: String(c.detachReset),
    loss_weights: JSON.stringify(spec.lossWeights),
    losses: JSON.stringify(r.losses),
  });
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const expected = e instanceof ConfigError || e instanceof CheckpointError || e instanceof FileWriteError || e instanceof UsageError || e instanceof GpuUnavailableError;
    console.error(`snn-sim: ${expected ? (e as Error).message : ((e as Error).stack ?? String(e))}`);
    process.exit(expected ? 2 : 1);
  },
);
