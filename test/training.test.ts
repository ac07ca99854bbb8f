/**
 * The training loop's guards and options with real epochs of the small network (sparse-cpu, in-process) behind a
 * pool that can damage chosen results: non-finite updates skipped and counted, divergence ending the run with the
 * last good state in checkpoint_latest, burn-in, early stopping, the learning-rate schedule, and both
 * parameterisations keeping conductance weights physical. The optimiser's pure functions against hand-computed values.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkpointPaths, initialTrainingState, readCheckpoint, TrainingState } from "../src/io/checkpoint.js";
import { checkpointIdentity } from "../src/io/identity.js";
import {
  learningRateAt,
  LearningRateSchedule,
  logSpaceGradient,
  logWeights,
  newAdamState,
  OptimizedParameters,
  optimizerStep,
  projectNonNegative,
} from "../src/model/optimizer.js";
import { metricsColumns, MetricsCsv, prepareOutputDir, UpdateRecord } from "../src/io/run-dir.js";
import { Progress } from "../src/report/console.js";
import { UpdateReporter } from "../src/report/update-report.js";
import { Trainer, TrainingDivergedError, TrainingOutcome } from "../src/training/trainer.js";
import { EpochAssignment, WorkerPool } from "../src/distributed/worker-pool.js";
import { ResultMessage } from "../src/distributed/protocol.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { ROOT, tempDir } from "./helpers/runs.js";
import { smallNetwork, SmallNetworkOptions } from "./helpers/small-network.js";

const schedule = (o: Partial<LearningRateSchedule>): LearningRateSchedule => ({
  kind: "constant",
  learningRate: 0.1,
  warmupUpdates: 0,
  minLearningRate: 0,
  stepUpdates: 10,
  stepFactor: 0.5,
  ...o,
});

describe("optimiser functions", () => {
  it("learning-rate schedules: warm-up, constant, cosine end points and midpoint, step", () => {
    const warm = schedule({ warmupUpdates: 4 });
    [0.025, 0.05, 0.075, 0.1, 0.1, 0.1].forEach((lr, k) => expect(learningRateAt(warm, [0, 1, 2, 3, 4, 50][k], 100)).toBeCloseTo(lr, 15));
    const cos = schedule({ kind: "cosine", warmupUpdates: 2, minLearningRate: 0.02 });
    // 12 updates: 2 of warm-up, then k = 0..9 over K = 9: lr at k = 0 is the peak, at k = 9 the minimum.
    expect(learningRateAt(cos, 2, 12)).toBeCloseTo(0.1, 15);
    expect(learningRateAt(cos, 11, 12)).toBeCloseTo(0.02, 15);
    expect(learningRateAt(schedule({ kind: "cosine" }), 5, 11)).toBeCloseTo(0.05, 15);
    const step = schedule({ kind: "step", stepUpdates: 3, stepFactor: 0.1 });
    [0.1, 0.1, 0.01, 0.01, 0.001].forEach((lr, k) => expect(learningRateAt(step, [0, 2, 3, 5, 6][k], 100)).toBeCloseTo(lr, 15));
  });

  it("log space: ∂L/∂θ = w·∂L/∂w, θ = ln w (zero weights clamped to ln 1e-8), projection onto w ≥ 0", () => {
    const g = Float64Array.from([2, -3, 0.5]);
    logSpaceGradient(g, Float32Array.from([0.5, 2, 0]));
    expect(Array.from(g)).toEqual([1, -6, 0]);
    const theta = logWeights(Float32Array.from([1, Math.E, 0]));
    expect(theta[0]).toBe(0);
    expect(theta[1]).toBeCloseTo(1, 6);
    expect(theta[2]).toBe(Math.fround(Math.log(1e-8)));
    const w = Float32Array.from([0.5, -0.25, 0, -0, -3]);
    expect(projectNonNegative(w)).toBe(2);
    expect(Array.from(w)).toEqual([0.5, 0, 0, -0, 0]);
  });
});

describe("optimizerStep", () => {
  const h = { learningRate: 0.1, betas: [0.9, 0.999] as [number, number], eps: 1e-8, maxGradNorm: 1 };
  const fresh = (log: boolean): OptimizedParameters => {
    const weights = [Float32Array.from([0.05, 0.5]), Float32Array.from([1])];
    return { weights, logWeights: log ? weights.map(logWeights) : null, adam: newAdamState([2, 1]) };
  };

  it("linear: Adam's first step moves each weight by −lr·sign(g), then projects onto w ≥ 0", () => {
    const cur = fresh(false);
    const step = optimizerStep(cur, [Float64Array.from([1, -2]), Float64Array.from([0.5])], h, ["rec", "ff"]);
    expect(step.applied).toBe(true);
    if (!step.applied) return;
    // Pre-clip norm √(1 + 4 + 0.25); the first bias-corrected Adam step is lr·g/(|g| + eps) ≈ lr·sign(g).
    expect(step.gradNorm).toBeCloseTo(Math.sqrt(5.25), 12);
    expect(step.next.weights[0][0]).toBe(0); // 0.05 − 0.1 < 0 → projected
    expect(step.next.weights[0][1]).toBeCloseTo(0.6, 6);
    expect(step.next.weights[1][0]).toBeCloseTo(0.9, 6);
    expect(step.next.adam.step).toBe(1);
    expect(Array.from(cur.weights[0])).toEqual([Math.fround(0.05), 0.5]); // the input is untouched
    expect(cur.adam.step).toBe(0);
  });

  it("log: the step is taken on θ = ln w, so weights move by a factor e^(∓lr) and stay positive", () => {
    const step = optimizerStep(fresh(true), [Float64Array.from([1, -2]), Float64Array.from([0.5])], h, ["rec", "ff"]);
    expect(step.applied).toBe(true);
    if (!step.applied) return;
    expect(step.next.weights[0][0]).toBeCloseTo(0.05 * Math.exp(-0.1), 6);
    expect(step.next.weights[0][1]).toBeCloseTo(0.5 * Math.exp(0.1), 6);
    expect(Array.from(step.next.logWeights![0], Math.exp).map(Math.fround)).toEqual(Array.from(step.next.weights[0]));
  });

  it("a non-finite gradient or weight is reported, naming the part, and nothing changes", () => {
    const cur = fresh(false);
    const nan = optimizerStep(cur, [Float64Array.from([1, 2]), Float64Array.from([NaN])], h, ["recurrent", "feedforward"]);
    expect(nan).toEqual({ applied: false, gradNorm: NaN, problem: "feedforward gradient is not finite" });
    const huge = optimizerStep(fresh(true), [Float64Array.from([-1, 1]), Float64Array.from([1])], { ...h, learningRate: 200 }, ["recurrent", "feedforward"]);
    expect(huge.applied).toBe(false);
    expect(huge).toMatchObject({ problem: "the step would make a weight non-finite (learning rate 200)" });
    expect(cur.adam.step).toBe(0);
  });
});

interface LoopRun {
  outcome: TrainingOutcome | null;
  error: Error | null;
  records: UpdateRecord[];
  /** The weights after each update, and the tasks each interval was given. */
  weights: Float32Array[];
  tasks: EpochAssignment[][];
  state: TrainingState;
  dir: string;
  output: string;
  /** In order: "interval U" when an interval's epochs go out, "checkpoint E KINDS" when checkpoints of epoch E are submitted. */
  events: string[];
}

/**
 * Runs the Trainer over the small network with `A` epochs per update; `damage(update, results)` may alter the
 * results of an interval before the trainer sees them.
 */
async function runLoop(o: SmallNetworkOptions & { damage?: (update: number, results: ResultMessage[]) => void } = {}): Promise<LoopRun> {
  const net = smallNetwork({ accumulationInterval: 2, epochs: 12, ...o });
  const { config, spec } = net;
  const engine = new SparseCpuEngine(spec);
  const tasks: EpochAssignment[][] = [];
  const events: string[] = [];
  const pool = {
    runInterval: async (update: number, _version: number, weights: { rec: Float32Array; ff: Float32Array }, ts: EpochAssignment[]) => {
      tasks.push(ts);
      events.push(`interval ${update}`);
      // The results come in a later task, as a real pool's do.
      await new Promise((resolve) => setImmediate(resolve));
      const results = ts.map((t) => {
        const r = engine.runEpochSync({ epoch: t.epoch, initialState: t.initialState, recWeight: weights.rec, ffWeight: weights.ff, computeGradient: t.computeGradient, recordActivity: false });
        return { ...r, type: "result", runId: "test", weightsVersion: 0, recGrad: r.recGrad ?? new Float32Array(0), ffGrad: r.ffGrad ?? new Float32Array(0), computeSeconds: 0 } as ResultMessage;
      });
      o.damage?.(update, results);
      return results;
    },
  } as unknown as WorkerPool;
  const dir = tempDir("snn-training-");
  prepareOutputDir(dir, "new");
  const A = config.simulation.accumulation_interval;
  const state = initialTrainingState(net.connectome, A, config.hyperparameters.parameterisation, "test");
  // The compiled writer: its thread loads dist/io/checkpoint-thread.js (npm test builds first).
  const { CheckpointWriter } = (await import(join(ROOT, "dist/io/checkpoint-writer.js"))) as typeof import("../src/io/checkpoint-writer.js");
  const checkpoints = new CheckpointWriter(checkpointIdentity(config, spec), () => {});
  const submit = checkpoints.submit.bind(checkpoints);
  checkpoints.submit = (targets, st) => {
    events.push(`checkpoint ${st.epoch} ${targets.map((t) => t.kind).join("+")}`);
    submit(targets, st);
  };
  const records: UpdateRecord[] = [];
  const weights: Float32Array[] = [];
  let output = "";
  // The coordinator's reporter, printing into `output`, with no metrics sinks and no figures.
  const reporter = new UpdateReporter({
    config,
    spec,
    totalEpochs: config.simulation.epochs,
    outputDir: dir,
    progress: { print: (s: string) => (output += `${s}\n`) } as Progress,
    onUpdate: () => {},
    figures: null,
  });
  const trainer = new Trainer(
    {
      config,
      spec,
      checkpoints,
      outputDir: dir,
      pool,
      runId: "test",
      totalEpochs: config.simulation.epochs,
      observers: {
        report: (r) => {
          records.push(r.record);
          weights.push(state.recWeight.slice());
          return reporter.report(r);
        },
      },
      teacherWeights: null,
    },
    state,
  );
  const csv = new MetricsCsv(dir, metricsColumns(config.recurrent.names));
  csv.open(null);
  let outcome: TrainingOutcome | null = null;
  let error: Error | null = null;
  try {
    outcome = await trainer.run(csv);
  } catch (e) {
    error = e as Error;
  }
  await checkpoints.close();
  return { outcome, error, records, weights, tasks, state, dir, output, events };
}

const nanGradient = (results: ResultMessage[]) => results.forEach((r) => (r.recGrad[3] = NaN));

describe("non-finite guard", () => {
  it("skips an update whose gradient is not finite: weights and Adam untouched, counted, said in one line", async () => {
    const run = await runLoop({ damage: (u, rs) => u === 2 && nanGradient(rs) });
    expect(run.outcome).toEqual({ kind: "completed" });
    expect(run.records.map((r) => r.outcome)).toEqual(["step", "step", "skipped", "step", "step", "step"]);
    expect(run.records.map((r) => r.step)).toEqual([1, 2, 2, 3, 4, 5]);
    expect(run.records.map((r) => r.skippedUpdates)).toEqual([0, 0, 1, 1, 1, 1]);
    expect(Buffer.from(run.weights[2].buffer).equals(Buffer.from(run.weights[1].buffer))).toBe(true);
    expect(Buffer.from(run.weights[3].buffer).equals(Buffer.from(run.weights[2].buffer))).toBe(false);
    expect(run.output.match(/Skipped update/g)).toHaveLength(1);
    expect(run.output).toContain("Skipped update (recurrent gradient is not finite (epochs 5–6)): weights and optimizer unchanged (1 in a row, at most 5)");
    const csv = MetricsCsv.read(join(run.dir, "metrics.csv"));
    expect(csv.map((r) => r.skipped_updates)).toEqual([0, 0, 1, 1, 1, 1]);
    expect(csv[2].grad_norm).toBeNaN();
    expect(run.state.counters).toEqual({ skippedUpdates: 1, skippedInARow: 0, updatesSinceBest: expect.any(Number) });
    for (const w of run.weights) expect(w.every(Number.isFinite)).toBe(true);
  });

  it("skips an update with a non-finite loss term, naming the term and the epoch; best never points at it", async () => {
    const run = await runLoop({
      damage: (u, rs) => {
        if (u !== 0) return;
        rs[1].losses.firing_rate = Infinity;
        rs[1].losses.total = Infinity;
      },
    });
    expect(run.records[0].outcome).toBe("skipped");
    expect(run.output).toContain("Skipped update (firing_rate loss is Infinity in epoch 2)");
    const best = readCheckpoint(checkpointPaths(run.dir).best, null, null).state;
    expect(Number.isFinite(best.bestLoss)).toBe(true);
    expect(best.epoch).toBeGreaterThan(2);
  });

  it("stops after max_skipped_updates in a row: TrainingDivergedError, checkpoint_latest at the last good state", async () => {
    const run = await runLoop({ hyperparameterLines: "max_skipped_updates = 3", damage: (u, rs) => u >= 2 && nanGradient(rs) });
    expect(run.error).toBeInstanceOf(TrainingDivergedError);
    expect(run.error!.message).toBe(
      "training diverged: 3 consecutive updates skipped (epochs 5–10; last: recurrent gradient is not finite (epochs 9–10)); " +
        "checkpoint_latest holds epoch 4, before the first of them (hyperparameters.max_skipped_updates = 3)",
    );
    const latest = readCheckpoint(checkpointPaths(run.dir).latest, null, null).state;
    expect(latest.epoch).toBe(4);
    expect(latest.adam.step).toBe(2);
    expect(Buffer.from(latest.recWeight.buffer).equals(Buffer.from(run.weights[1].buffer))).toBe(true);
    // The streams are those the skipped intervals started from.
    expect(Buffer.from(latest.streams[0]!.v.buffer).equals(Buffer.from(run.tasks[2][0].initialState!.v.buffer))).toBe(true);
    expect(latest.counters).toMatchObject({ skippedUpdates: 3, skippedInARow: 3 });
  });

  it("a stream whose state went non-finite keeps the state it started from", async () => {
    const run = await runLoop({
      damage: (u, rs) => {
        if (u !== 1) return;
        nanGradient(rs);
        rs[0].finalState.v[0] = NaN;
      },
    });
    expect(Buffer.from(run.tasks[2][0].initialState!.v.buffer).equals(Buffer.from(run.tasks[1][0].initialState!.v.buffer))).toBe(true);
    expect(Buffer.from(run.tasks[2][1].initialState!.v.buffer).equals(Buffer.from(run.tasks[1][1].initialState!.v.buffer))).toBe(false);
  });
});

describe("checkpoints", () => {
  it("an update's checkpoints are submitted once the next interval's epochs are out (the snapshot overlaps their compute), the last before the run ends", async () => {
    // checkpoint_latest after every update (checkpoint_interval = accumulation_interval = 2), best ones besides.
    const run = await runLoop();
    expect(run.outcome).toEqual({ kind: "completed" });
    // Every submission follows the next interval's start, except the run's last, which follows its last interval.
    const intervals = run.events.filter((e) => e.startsWith("interval")).length;
    expect(intervals).toBe(6);
    run.events.forEach((e, k) => {
      if (!e.startsWith("checkpoint")) return;
      const epoch = Number(e.split(" ")[1]);
      const before = run.events.slice(0, k).filter((x) => x.startsWith("interval")).length;
      expect(before, `${e} after ${before} intervals`).toBe(Math.min(epoch / 2 + 1, intervals));
    });
    expect(run.events.filter((e) => e.endsWith("latest")).map((e) => Number(e.split(" ")[1]))).toEqual([2, 4, 6, 8, 10, 12]);
    // What was written is the state of the update that made it due, not of a later one.
    const latest = readCheckpoint(checkpointPaths(run.dir).latest, null, null).state;
    expect(latest.epoch).toBe(12);
    expect(Buffer.from(latest.recWeight.buffer).equals(Buffer.from(run.weights[5].buffer))).toBe(true);
  });
});

describe("training options", () => {
  it("burn-in: the first epochs run forward only, without a step, then training starts from their streams", async () => {
    const run = await runLoop({ simulationLines: "burn_in_epochs = 4" });
    expect(run.tasks.map((ts) => ts.every((t) => t.computeGradient))).toEqual([false, false, true, true, true, true]);
    expect(run.records.map((r) => r.outcome)).toEqual(["burn-in", "burn-in", "step", "step", "step", "step"]);
    expect(run.records.map((r) => r.step)).toEqual([0, 0, 1, 2, 3, 4]);
    expect(run.records.map((r) => r.learningRate)).toEqual([0, 0, 5e-4, 5e-4, 5e-4, 5e-4]);
    expect(run.records[0].gradNorm).toBeNaN();
    expect(Buffer.from(run.weights[1].buffer).equals(Buffer.from(run.weights[0].buffer))).toBe(true);
    expect(run.tasks[2][0].initialState).not.toBeNull();
    expect(run.output).toContain("Epoch 2/12 (burn-in, no update):");
  });

  it("the learning-rate schedule reaches the optimiser and the records", async () => {
    const run = await runLoop({ hyperparameterLines: 'learning_rate = 0.01\nlr_schedule = "cosine"\nwarmup_updates = 2\nlr_min = 0.001' });
    const lr = run.records.map((r) => r.learningRate);
    expect(lr[0]).toBeCloseTo(0.005, 12);
    expect(lr[1]).toBeCloseTo(0.01, 12);
    expect(lr[5]).toBeCloseTo(0.001, 12);
    expect(lr[3]).toBeLessThan(lr[2]);
  });

  it("early stopping after `patience` updates without a new best total loss", async () => {
    // Totals that only rise after the first update: the best stays at update 1.
    const run = await runLoop({ hyperparameterLines: "patience = 2", damage: (u, rs) => rs.forEach((r) => (r.losses.total = 10 + u)) });
    expect(run.outcome).toEqual({ kind: "stopped-early", message: "early stopping at epoch 6: no new best total loss in 2 updates (best 10.0000; hyperparameters.patience)" });
    expect(run.records).toHaveLength(3);
    expect(readCheckpoint(checkpointPaths(run.dir).latest, null, null).state.epoch).toBe(6);
  });

  it('"linear" projects weights back onto w ≥ 0; "log" keeps them e^θ > 0 and stores θ', async () => {
    // A learning rate far too large drives many weights negative in one Adam step (each moves by ≈ lr).
    const linear = await runLoop({ epochs: 4, hyperparameterLines: "learning_rate = 5.0" });
    const w = linear.state.recWeight;
    expect(w.every((x) => x >= 0)).toBe(true);
    expect(w.filter((x) => x === 0).length).toBeGreaterThan(w.length / 10);
    const log = await runLoop({ epochs: 4, hyperparameterLines: 'learning_rate = 0.5\nparameterisation = "log"' });
    const s = log.state;
    expect(s.recWeight.every((x) => x > 0)).toBe(true);
    expect(Array.from(s.logWeights!.rec, Math.exp).map(Math.fround)).toEqual(Array.from(s.recWeight));
    const ck = readCheckpoint(checkpointPaths(log.dir).latest, null, null);
    expect(ck.metadata.parameterisation).toBe("log");
    expect(Buffer.from(ck.state.logWeights!.rec.buffer).equals(Buffer.from(s.logWeights!.rec.buffer))).toBe(true);
    expect(readFileSync(join(log.dir, "metrics.csv"), "utf8")).toContain("learning_rate,skipped_updates");
  });
});

describe("training that fits", () => {
  it("the small network reaches its target rates (E 5 Hz, I 10 Hz) within 25%, all weights ≥ 0, no skipped update", async () => {
    // The shipped training settings (fitting-activity.toml) on the 60-neuron network: 200 updates of 4 epochs.
    const run = await runLoop({
      accumulationInterval: 4,
      epochs: 804,
      surrgradScale: 15,
      detachReset: true,
      simulationLines: "burn_in_epochs = 4",
      hyperparameterLines: 'learning_rate = 2e-2\nlr_schedule = "cosine"\nwarmup_updates = 5\nlr_min = 1e-3',
    });
    const tail = run.records.slice(-10);
    const rate = (k: number) => tail.reduce((a, r) => a + r.stats[k].rateMean, 0) / tail.length;
    // Measured: from E 31 Hz, I 46 Hz after burn-in to E 4.6 Hz (−8%), I 7.9 Hz (−21%) over the last 10 updates.
    expect(run.records[1].stats[0].rateMean).toBeGreaterThan(20);
    expect(Math.abs(rate(0) - 5) / 5).toBeLessThan(0.25);
    expect(Math.abs(rate(1) - 10) / 10).toBeLessThan(0.25);
    expect(run.state.counters.skippedUpdates).toBe(0);
    expect(run.state.recWeight.every((w) => w >= 0)).toBe(true);
  });
});
