/**
 * The training loop of the coordinator: per accumulation interval it hands the interval's epochs to the worker pool,
 * reduces their gradients in epoch order, clips, applies Adam, carries the stream states, logs, plots and checkpoints.
 * The coordinator owns all mutable state and never simulates.
 */
import { Config } from "../model/config.js";
import { LossTerms, LOSS_TERM_NAMES } from "../model/losses.js";
import { NetworkSpec } from "../model/network.js";
import { addRecordedSpikeCounts, placeOf, replayStartsFromRest } from "../model/teacher-replay.js";
import { ResultMessage } from "../distributed/protocol.js";
import { isFiniteState } from "../engine/engine.js";
import { pooledStats, rateRmse, weightAgreement } from "../model/statistics.js";
import { checkpointPaths, TrainingState } from "../io/checkpoint.js";
import { CheckpointTarget, CheckpointWriter } from "../io/checkpoint-writer.js";
import { AdamKernel } from "../model/adam-kernel.js";
import { GradientReducer, LearningRateSchedule, learningRateAt, OptimizedParameters, optimizerStep } from "../model/optimizer.js";
import { MetricsCsv, metricsRow, UpdateRecord } from "../io/run-dir.js";
import { EpochAssignment, IntervalReceiver, WorkerPool } from "../distributed/worker-pool.js";
import { allFactors, effectiveWeights, factorPairs, specTypePairs, trainedFactorParts } from "../model/scaling-factors.js";

/** One update, as the reports (console, metrics, W&B, figures) need it. */
export interface UpdateReport {
  record: UpdateRecord;
  /** Why the update was skipped; null when it was applied (or was burn-in). */
  problem: string | null;
  /** Updates skipped in a row so far, and the limit (hyperparameters.max_skipped_updates). */
  skippedInARow: number;
  maxSkipped: number;
  /**
   * Where a figure set is due: the interval's last epoch (its activity was recorded), and the weights to draw:
   * `initial` for the untrained network's set (epoch_0000), `current` for this update's; `interval`: every epoch of
   * the interval in epoch order (`last` among them), for statistics pooled over the interval.
   */
  figures: { last: ResultMessage; interval: ResultMessage[]; initial: { rec: Float32Array; ff: Float32Array } | null; current: { rec: Float32Array; ff: Float32Array } | null } | null;
}

/** What the loop reports to; each observer is optional so tests and tools can run the loop bare. */
export interface TrainingObservers {
  /** Reports one update; runs beside training, which waits for the previous report before starting the next. */
  report?(r: UpdateReport): Promise<void>;
  /** Figure sets are drawn: plotting epochs record their activity. */
  figures?: boolean;
  /** Epochs completed so far (progress bar). */
  progress?(epoch: number): void;
  /** One epoch's result arrived: its compute time and the network time it simulated (s). */
  epochCompleted?(computeSeconds: number, simulatedSeconds: number): void;
  phase?(phase: "reduce" | "adam", seconds: number): void;
}

export interface TrainerOptions {
  config: Config;
  spec: NetworkSpec;
  /** Writes the checkpoints this loop submits (latest, best), off the training path. */
  checkpoints: CheckpointWriter;
  outputDir: string;
  pool: WorkerPool;
  runId: string;
  totalEpochs: number;
  observers: TrainingObservers;
  /** The teacher's weights ([student] teacher_file), to report how close the learned ones are; null without. */
  teacherWeights: { recWeight: Float32Array; ffWeight: Float32Array } | null;
  /** What the scaling factors should become ([student] weight_perturbation_variance: 1/p; else ones), row-major per part. */
  factorTargets: { recurrent: Float64Array; feedforward: Float64Array } | null;
}

/** How a run of the loop ended; a diverged run throws TrainingDivergedError instead. */
export type TrainingOutcome = { kind: "completed" } | { kind: "interrupted" } | { kind: "stopped-early"; message: string };

/**
 * max_skipped_updates consecutive updates had a non-finite loss term, gradient or weight. checkpoint_latest then
 * holds the state before the first of them.
 */
export class TrainingDivergedError extends Error {}

export class Trainer {
  private stopRequested = false;
  private readonly started = Date.now();
  /** Epoch and streams before the first update of the current run of skipped updates (the last good state). */
  private lastGood: { epoch: number; streams: TrainingState["streams"] } | null = null;
  private readonly reducer = new GradientReducer();
  /** The optimised parameters from before the current ones, which nothing else refers to: the next step writes over them. */
  private spare: OptimizedParameters | null = null;
  /** The SIMD kernel of Adam's step on the weights or θ, made at the first step (null where it cannot run here). */
  private kernel: AdamKernel | null | undefined;
  /** Per edge, its connection-type pair, when scaling factors are trained. */
  private readonly typePairs: { rec: Int32Array; ff: Int32Array } | null;
  /**
   * The checkpoints the last update made due, not yet submitted: they are submitted once the next interval's epochs
   * are out, so that their snapshot (a copy of the state, about 20 MB at default size, ≈10 ms) overlaps the workers'
   * compute instead of delaying it; and before the run ends, however it ends.
   */
  private dueCheckpoints: CheckpointTarget[] = [];

  constructor(
    private readonly o: TrainerOptions,
    private readonly state: TrainingState,
  ) {
    this.typePairs = state.factors ? specTypePairs(o.spec) : null;
  }

  /** Finish the current update, checkpoint, and stop (SIGINT/SIGTERM). */
  requestStop(): void {
    this.stopRequested = true;
  }

  async run(csv: MetricsCsv): Promise<TrainingOutcome> {
    try {
      return await this.train(csv);
    } catch (e) {
      // Whatever failed, the checkpoints already due reach the disk. An earlier write that failed, which submit throws
      // again, is reported by the writer's close(): the error to throw here is the run's own.
      try {
        this.submitDue();
      } catch {
        // (reported by close())
      }
      throw e;
    } finally {
      // Its helper threads end; the moments stay readable in its memory.
      this.kernel?.close();
      this.kernel = undefined;
    }
  }

  /** Submits the checkpoints the last update made due (dueCheckpoints), of the state as it is now. */
  private submitDue(): void {
    const due = this.dueCheckpoints;
    this.dueCheckpoints = [];
    if (due.length > 0) this.o.checkpoints.submit(due, this.state);
  }

  private async train(csv: MetricsCsv): Promise<TrainingOutcome> {
    const { config, pool, spec } = this.o;
    const h = config.hyperparameters;
    const A = config.simulation.accumulation_interval;
    const burnIn = config.simulation.burn_in_epochs;
    const totalUpdates = (this.o.totalEpochs - burnIn) / A;
    const schedule: LearningRateSchedule = {
      kind: h.lr_schedule,
      learningRate: h.learning_rate,
      warmupUpdates: h.warmup_updates,
      minLearningRate: h.lr_min,
      stepUpdates: h.lr_step_updates,
      stepFactor: h.lr_step_factor,
    };
    const s = this.state;
    const startEpoch = s.epoch;
    // The report of the previous update (W&B, console, figures), which may still wait for a figure set to render.
    let report: Promise<void> = Promise.resolve();
    const finish = async (outcome: TrainingOutcome): Promise<TrainingOutcome> => {
      this.submitDue();
      if (outcome.kind !== "completed" || s.epoch === startEpoch) this.saveLatest();
      await report;
      await this.o.checkpoints.flush();
      return outcome;
    };
    while (s.epoch < this.o.totalEpochs) {
      if (this.stopRequested) return finish({ kind: "interrupted" });
      const update = s.epoch / A;
      const training = s.epoch >= burnIn;
      // Figure sets every plotting.interval epochs and at the end, plus the untrained network's after the first interval.
      const figuresOn = config.plotting.enabled && this.o.observers.figures === true;
      const next = s.epoch + A;
      const plot = figuresOn && (next % config.plotting.interval === 0 || next >= this.o.totalEpochs);
      const plotInitial = figuresOn && s.epoch === 0;
      // A recorded teacher is replayed from rest at the start of every pass over its recording, as it was recorded.
      const recording = spec.teacherRecording;
      const steps = spec.chunkSteps * spec.chunksPerEpoch;
      const tasks: EpochAssignment[] = s.streams.map((st, k) => ({
        epoch: s.epoch + k,
        stream: k,
        initialState: recording && replayStartsFromRest(recording, s.epoch + k, spec.batchSize, steps) ? null : st,
        computeGradient: training,
        recordActivity: (plot || plotInitial) && k === A - 1,
      }));
      const t0 = performance.now();
      // The reduce runs as results arrive (in epoch order, so its sums do not depend on arrival order), four epochs
      // per pass over the sums; a reduce group's sums, which its worker folded in the same order, start them.
      this.reducer.start(tasks.length);
      const finiteStates: boolean[] = [];
      const receiver: IntervalReceiver = {
        result: (k, r, stateIsFinite) => {
          finiteStates[k] = stateIsFinite;
          if (!training) return;
          // A reduce group's results (gradients empty) are below the sums' epoch already: the reducer skips them.
          this.reducer.add(k, [r.recGrad, r.ffGrad]);
          this.reducer.foldReady();
        },
        prefixSums: (count, sums, sumSquares) => this.reducer.resumeFrom(count, sums, sumSquares),
      };
      const interval = pool.runInterval(update, s.adam.step, { rec: s.recWeight, ff: s.ffWeight }, tasks, receiver);
      // The epochs are out; nothing changes the state until their results are in. An earlier checkpoint write that
      // failed (submit throws it) ends the run here, abandoning the interval.
      try {
        this.submitDue();
      } catch (e) {
        interval.catch(() => {});
        throw e;
      }
      const results = await interval;
      // Any the pool did not hand over as they came (the reduce does not depend on it).
      results.forEach((r, k) => finiteStates[k] ?? receiver.result(k, r, isFiniteState(r.finalState)));
      const t1 = performance.now();
      // The untrained network's figures (epoch_0000) show the first interval's activity with the initial weights.
      const initialWeights = plotInitial ? { rec: s.recWeight.slice(), ff: s.ffWeight.slice() } : null;
      const learningRate = training ? learningRateAt(schedule, (s.epoch - burnIn) / A, totalUpdates) : 0;
      const { problem, gradNorm } = training ? this.step(results, learningRate, t1) : { problem: null, gradNorm: NaN };
      const outcome: UpdateRecord["outcome"] = !training ? "burn-in" : problem ? "skipped" : "step";
      if (problem) {
        if (s.counters.skippedInARow === 0) this.lastGood = { epoch: s.epoch, streams: s.streams.slice() };
        s.counters.skippedUpdates++;
        s.counters.skippedInARow++;
      } else if (training) {
        s.counters.skippedInARow = 0;
        this.lastGood = null;
      }
      // A stream whose state went non-finite is not carried on: it keeps the state it started the interval from.
      results.forEach((r, k) => {
        if (finiteStates[k]) s.streams[k] = r.finalState;
      });
      s.epoch += A;

      const losses = meanLosses(results);
      const stats = pooledStats(results, spec.constants.cellType, spec.cellTypeNames);
      s.losses = losses;
      const elapsed = (Date.now() - this.started) / 1000;
      const teacher = this.o.teacherWeights;
      const record: UpdateRecord = {
        epoch: s.epoch,
        step: s.adam.step,
        losses,
        gradNorm,
        outcome,
        learningRate,
        skippedUpdates: s.counters.skippedUpdates,
        stats,
        ...(teacher ? { teacher: { recurrent: weightAgreement(s.recWeight, teacher.recWeight), feedforward: weightAgreement(s.ffWeight, teacher.ffWeight) } } : {}),
        ...(config.targets.file ? { rateRmse: rateRmse(results.map((r) => r.rates), spec.targets.rate) } : {}),
        ...(s.factors ? { scalingFactors: this.scalingFactors() } : {}),
        ...(recording ? { teacherRates: this.teacherRates(results.map((r) => r.epoch)) } : {}),
        wallTimeS: elapsed,
        epochsPerS: A / ((t1 - t0) / 1000),
      };
      // metrics.csv gets its row before the update's checkpoint, so that a resumed run finds every row it continues.
      csv.append(metricsRow(record));
      const simulated = (spec.batchSize * spec.chunkSteps * spec.chunksPerEpoch * spec.constants.dt) / 1000;
      for (const r of results) this.o.observers.epochCompleted?.(r.computeSeconds, simulated);
      // At most one report runs behind training: the next interval trains while the previous figure set renders.
      await report;
      const figures = plot || plotInitial ? { last: results[A - 1], interval: results, initial: initialWeights, current: plot ? { rec: s.recWeight.slice(), ff: s.ffWeight.slice() } : null } : null;
      report = this.o.observers.report?.({ record, problem, skippedInARow: s.counters.skippedInARow, maxSkipped: h.max_skipped_updates, figures }) ?? Promise.resolve();

      if (problem && s.counters.skippedInARow >= h.max_skipped_updates) {
        const good = this.lastGood!;
        this.o.checkpoints.submit([{ path: checkpointPaths(this.o.outputDir).latest, kind: "latest" }], { ...s, epoch: good.epoch, streams: good.streams });
        await report;
        await this.o.checkpoints.flush();
        throw new TrainingDivergedError(
          `training diverged: ${s.counters.skippedInARow} consecutive updates skipped (epochs ${good.epoch + 1}–${s.epoch}; last: ${problem}); ` +
            `checkpoint_latest holds epoch ${good.epoch}, before the first of them (hyperparameters.max_skipped_updates = ${h.max_skipped_updates})`,
        );
      }

      const paths = checkpointPaths(this.o.outputDir);
      const due: CheckpointTarget[] = [];
      if (outcome === "step") {
        if (Number.isFinite(losses.total) && losses.total < s.bestLoss) {
          s.bestLoss = losses.total;
          s.counters.updatesSinceBest = 0;
          due.push({ path: paths.best, kind: "best" });
        } else {
          s.counters.updatesSinceBest++;
        }
      }
      if (s.epoch % config.simulation.checkpoint_interval === 0 || s.epoch >= this.o.totalEpochs) due.push({ path: paths.latest, kind: "latest" });
      this.dueCheckpoints = due;
      this.o.observers.progress?.(s.epoch);
      if (h.patience > 0 && s.counters.updatesSinceBest >= h.patience && s.epoch < this.o.totalEpochs)
        return finish({
          kind: "stopped-early",
          message: `early stopping at epoch ${s.epoch}: no new best total loss in ${h.patience} updates (best ${s.bestLoss.toPrecision(6)}; hyperparameters.patience)`,
        });
    }
    return finish({ kind: "completed" });
  }

  /**
   * The interval's update: reduce the gradients in epoch order and take the optimiser's step (optimizerStep). Returns
   * the pre-clip gradient norm (NaN where it was never computed) and why the update was skipped, if it was, leaving
   * weights and optimizer untouched: a non-finite loss term in some epoch, a
   * non-finite gradient, or a step that would make a weight non-finite.
   */
  private step(results: ResultMessage[], learningRate: number, reduceStart: number): { problem: string | null; gradNorm: number } {
    const { config } = this.o;
    const h = config.hyperparameters;
    const s = this.state;
    for (const r of results) {
      const term = LOSS_TERM_NAMES.find((k) => k !== "cv" && !Number.isFinite(r.losses[k]));
      if (term) return { problem: `${term} loss is ${r.losses[term]} in epoch ${r.epoch + 1}`, gradNorm: NaN };
    }
    const grads = this.reducer.mean();
    const t2 = performance.now();
    const hp = { learningRate, betas: h.betas, eps: h.eps, maxGradNorm: h.max_grad_norm };
    const f = s.factors;
    let step;
    let current: OptimizedParameters;
    if (f) {
      // The results hold ∂L/∂ln S per type pair. A part that is not trained gets a zero gradient: Adam's moments stay
      // 0 and its step is exactly 0, so its factors keep their initial values.
      trainedFactorParts(h.optimise).forEach((trained, p) => trained || grads[p].fill(0));
      current = { weights: [f.value.rec, f.value.ff], logWeights: [f.log.rec, f.log.ff], adam: s.adam };
      step = optimizerStep(current, grads, hp, ["recurrent scaling factor", "feedforward scaling factor"], "log-parameters", { spare: this.spare });
    } else {
      current = { weights: [s.recWeight, s.ffWeight], logWeights: s.logWeights ? [s.logWeights.rec, s.logWeights.ff] : null, adam: s.adam };
      if (this.kernel === undefined) this.kernel = AdamKernel.create([s.recWeight.length, s.ffWeight.length]);
      step = optimizerStep(current, grads, hp, ["recurrent", "feedforward"], "weights", { spare: this.spare, kernel: this.kernel }, this.reducer.meanSumSquares());
    }
    if (!step.applied) return { problem: `${step.problem} (epochs ${results[0].epoch + 1}–${results[results.length - 1].epoch + 1})`, gradNorm: step.gradNorm };
    if (f) {
      const [rec, ff] = step.next.weights;
      const [logRec, logFf] = step.next.logWeights!;
      s.factors = { ...f, value: { rec, ff }, log: { rec: logRec, ff: logFf } };
      const all = allFactors(s.factors.value);
      s.recWeight = effectiveWeights(f.base.rec, all, this.typePairs!.rec);
      s.ffWeight = effectiveWeights(f.base.ff, all, this.typePairs!.ff);
    } else {
      [s.recWeight, s.ffWeight] = step.next.weights;
      s.logWeights = step.next.logWeights ? { rec: step.next.logWeights[0], ff: step.next.logWeights[1] } : null;
    }
    s.adam = step.next.adam;
    // The state holds the new parameters now; checkpoints took copies of the old ones when they were submitted.
    this.spare = current;
    const t3 = performance.now();
    this.o.observers.phase?.("reduce", (t2 - reduceStart) / 1000);
    this.o.observers.phase?.("adam", (t3 - t2) / 1000);
    return { problem: null, gradNorm: step.gradNorm };
  }

  /** A recorded teacher's mean rate per cell type over the given epochs' places in the recording (Hz). */
  private teacherRates(epochs: number[]): UpdateRecord["teacherRates"] {
    const { spec } = this.o;
    const recording = spec.teacherRecording!;
    const T = spec.chunkSteps * spec.chunksPerEpoch;
    const counts = new Float64Array(spec.constants.numNeurons);
    for (const e of epochs) addRecordedSpikeCounts(recording, placeOf(recording, e, spec.batchSize, T), spec.batchSize, T, counts);
    const seconds = (epochs.length * spec.batchSize * T * spec.constants.dt) / 1000;
    return spec.cellTypeNames.map((cellType, k) => {
      let sum = 0;
      let n = 0;
      spec.constants.cellType.forEach((type, j) => {
        if (type !== k) return;
        sum += counts[j];
        n++;
      });
      return { cellType, rate: sum / (n * seconds) };
    });
  }

  /** The factors after the latest step, named {pre}_{post}, with their targets. */
  private scalingFactors(): UpdateRecord["scalingFactors"] {
    const f = this.state.factors!;
    const pairs = factorPairs(this.o.config.recurrent.names, this.o.config.feedforward.names);
    const t = this.o.factorTargets!;
    return [
      ...pairs.rec.map((p, i) => ({ ...p, value: f.value.rec[i], target: t.recurrent[i] })),
      ...pairs.ff.map((p, i) => ({ ...p, value: f.value.ff[i], target: t.feedforward[i] })),
    ];
  }

  /** Queues checkpoint_latest of the current state (the caller flushes the writer before it exits). */
  saveLatest(): void {
    this.o.checkpoints.submit([{ path: checkpointPaths(this.o.outputDir).latest, kind: "latest" }], this.state);
  }
}

/** Mean of each loss term over the interval's epochs; the CV term ignores epochs where it is undefined. */
export function meanLosses(results: { losses: LossTerms }[]): LossTerms {
  const out = {} as LossTerms;
  for (const k of LOSS_TERM_NAMES) {
    const xs = results.map((r) => r.losses[k]).filter((x) => !(k === "cv" && Number.isNaN(x)));
    out[k] = xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
  }
  return out;
}
