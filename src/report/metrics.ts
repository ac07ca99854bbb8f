/**
 * The coordinator's Prometheus metrics. The training loop reports events through the typed methods below; names
 * follow Prometheus conventions (snn_ prefix, base units, _total counters) and every label has a bounded value set
 * (loss term, cell type, failure reason, update phase, checkpoint kind).
 */
import type { CellTypeStats } from "../model/statistics.js";
import { Counter, exponentialBuckets, Gauge, Histogram } from "prom-client";
import type { CheckpointKind } from "../io/checkpoint-writer.js";
import { type BuildInfo, EPOCH_DURATION_BUCKETS, MetricsServer } from "../platform/metrics-server.js";
import { PEER_REFUSALS, type PeerRefusal } from "../distributed/worker-pool.js";

export type WorkerFailureReason = "timeout" | "disconnect" | "crash" | "protocol";
export type UpdatePhase = "reduce" | "adam" | "broadcast";


export interface CellTypeTarget {
  cellType: string;
  /** Target firing rate, Hz. */
  rate: number;
  /** Target CV, where the loss has one. */
  cv?: number;
  /** Target membrane ratio std(V)/(θ − mean(V)) (targets.threshold_ratio). */
  ratio?: number;
}

export interface UpdateRecord {
  /** Epochs completed so far, counted across resumes. */
  epoch: number;
  /** Global optimizer step, counted across resumes. */
  step: number;
  /** Loss terms of this update by name (firing_rate, cv, ..., total). */
  losses: Record<string, number>;
  stats: readonly CellTypeStats[];
  targets: readonly CellTypeTarget[];
  /** Learned weights against a teacher's, when the run has one. */
  teacher?: Record<TeacherPopulation, { correlation: number; relativeError: number }>;
  /** What the update did: an Adam step, a step skipped for a non-finite value, or a burn-in interval (no step). */
  outcome: "step" | "skipped" | "burn-in";
  /** The learning rate of the step (0 in burn-in). */
  learningRate: number;
  /** Scaling factors after the step, with their targets, when the run trains them. */
  scalingFactors?: readonly { pre: string; post: string; value: number; target: number }[];
}

export type TeacherPopulation = "recurrent" | "feedforward";

const WORKER_FAILURE_REASONS: readonly WorkerFailureReason[] = ["timeout", "disconnect", "crash", "protocol"];
const UPDATE_PHASES: readonly UpdatePhase[] = ["reduce", "adam", "broadcast"];
const CHECKPOINT_KINDS: readonly CheckpointKind[] = ["latest", "best"];

export class CoordinatorMetrics extends MetricsServer {
  private readonly epoch: Gauge;
  private readonly optimizerStep: Gauge;
  private readonly scalingFactor: Gauge<"pre" | "post">;
  private readonly scalingFactorRatio: Gauge<"pre" | "post">;
  private readonly epochsCompleted: Counter;
  private readonly optimizerSteps: Counter;
  private readonly skippedUpdates: Counter;
  private readonly learningRate: Gauge;
  private readonly loss: Gauge<"term">;
  private readonly firingRate: Gauge<"cell_type">;
  private readonly firingRateStd: Gauge<"cell_type">;
  private readonly targetFiringRate: Gauge<"cell_type">;
  private readonly cv: Gauge<"cell_type">;
  private readonly cvStd: Gauge<"cell_type">;
  private readonly targetCv: Gauge<"cell_type">;
  private readonly activeRatio: Gauge<"cell_type">;
  private readonly membraneRatio: Gauge<"cell_type">;
  private readonly targetMembraneRatio: Gauge<"cell_type">;
  private readonly teacherCorrelation: Gauge<"population">;
  private readonly teacherRelativeError: Gauge<"population">;
  private readonly workersConnected: Gauge;
  private readonly epochsInFlight: Gauge;
  private readonly workerFailures: Counter<"reason">;
  private readonly peersRefused: Counter<"reason">;
  private readonly epochDuration: Histogram;
  private readonly phaseDuration: Histogram<"phase">;
  private readonly simulatedSeconds: Counter;
  private readonly sentBytes: Counter;
  private readonly receivedBytes: Counter;
  private readonly checkpointDuration: Histogram<"kind">;
  private readonly checkpointLastSuccess: Gauge<"kind">;

  constructor(build: BuildInfo) {
    super(build);
    const registers = [this.registry];
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Gauge<L>({ name, help, labelNames, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers });

    this.epoch = gauge("snn_epoch", "Epochs completed so far, counted across resumes.");
    this.optimizerStep = gauge("snn_optimizer_step", "Global optimizer step, counted across resumes.");
    this.epochsCompleted = counter("snn_epochs_completed_total", "Epoch results accepted by this coordinator process.");
    this.optimizerSteps = counter("snn_optimizer_steps_total", "Adam steps applied by this coordinator process.");
    this.skippedUpdates = counter(
      "snn_optimizer_skipped_updates_total",
      "Updates skipped by this coordinator process because a loss term, gradient or weight was not finite.",
    );
    this.learningRate = gauge("snn_learning_rate", "Learning rate of the latest update (lr_schedule).");
    this.loss = gauge("snn_loss", "Loss term of the latest update (term=total is the optimized sum).", ["term"]);
    this.firingRate = gauge("snn_firing_rate_hertz", "Mean firing rate per cell type in the latest update.", [
      "cell_type",
    ]);
    this.firingRateStd = gauge(
      "snn_firing_rate_stddev_hertz",
      "Standard deviation across neurons of the firing rate per cell type in the latest update.",
      ["cell_type"],
    );
    this.targetFiringRate = gauge("snn_target_firing_rate_hertz", "Target firing rate per cell type.", ["cell_type"]);
    this.cv = gauge("snn_cv", "Mean inter-spike-interval coefficient of variation per cell type.", ["cell_type"]);
    this.cvStd = gauge("snn_cv_stddev", "Standard deviation across neurons of the ISI CV per cell type.", [
      "cell_type",
    ]);
    this.targetCv = gauge("snn_target_cv", "Target ISI coefficient of variation per cell type.", ["cell_type"]);
    this.activeRatio = gauge(
      "snn_active_ratio",
      "Fraction of neurons per cell type that spiked in the latest update.",
      ["cell_type"],
    );
    this.membraneRatio = gauge("snn_membrane_ratio", "Mean membrane ratio std(V)/(theta - mean(V)) per cell type in the latest update.", ["cell_type"]);
    this.targetMembraneRatio = gauge("snn_target_membrane_ratio", "Target membrane ratio per cell type.", ["cell_type"]);
    this.teacherCorrelation = gauge(
      "snn_teacher_weight_correlation",
      "Pearson correlation over synapses between the learned weights and the teacher's (teacher-student runs).",
      ["population"],
    );
    this.teacherRelativeError = gauge(
      "snn_teacher_weight_relative_error",
      "||w - w_teacher|| / ||w_teacher|| over synapses (teacher-student runs).",
      ["population"],
    );
    this.scalingFactor = gauge("snn_scaling_factor", "Scaling factor of the weights from cell type pre onto post (optimise = scaling_factors*).", ["pre", "post"]);
    this.scalingFactorRatio = gauge("snn_scaling_factor_ratio", "Scaling factor divided by its target (1 = recovered).", ["pre", "post"]);
    this.workersConnected = gauge("snn_workers_connected", "Workers currently connected to the coordinator.");
    this.epochsInFlight = gauge("snn_epochs_in_flight", "Epochs assigned to workers and not yet returned.");
    this.workerFailures = counter("snn_worker_failures_total", "Workers dropped, by reason.", ["reason"]);
    this.peersRefused = counter(
      "snn_peers_refused_total",
      "Peers refused: not_allowed (CURVE key not in the allow-list), handshake (no CURVE or another coordinator key), message (invalid or unexpected message).",
      ["reason"],
    );
    this.epochDuration = new Histogram({
      name: "snn_epoch_duration_seconds",
      help: "Wall time from assigning an epoch to accepting its result.",
      buckets: EPOCH_DURATION_BUCKETS,
      registers,
    });
    this.phaseDuration = new Histogram<"phase">({
      name: "snn_update_phase_duration_seconds",
      help: "Wall time of the coordinator's phases of one update: gradient reduce, Adam step, weights broadcast.",
      labelNames: ["phase"],
      buckets: exponentialBuckets(0.0005, 2, 16),
      registers,
    });
    this.simulatedSeconds = counter(
      "snn_simulated_seconds_total",
      "Biological time simulated (trials x steps x dt), seconds.",
    );
    this.sentBytes = counter("snn_network_sent_bytes_total", "Bytes the coordinator sent to workers.");
    this.receivedBytes = counter("snn_network_received_bytes_total", "Bytes the coordinator received from workers.");
    this.checkpointDuration = new Histogram<"kind">({
      name: "snn_checkpoint_duration_seconds",
      help: "Wall time to write a checkpoint atomically.",
      labelNames: ["kind"],
      buckets: exponentialBuckets(0.005, 2, 14),
      registers,
    });
    this.checkpointLastSuccess = gauge(
      "snn_checkpoint_last_success_timestamp_seconds",
      "Unix time of the last checkpoint written successfully.",
      ["kind"],
    );

    // Series that only appear on their first event would make rate() and increase() blind to that first event.
    for (const reason of WORKER_FAILURE_REASONS) this.workerFailures.inc({ reason }, 0);
    for (const reason of PEER_REFUSALS) this.peersRefused.inc({ reason }, 0);
    for (const phase of UPDATE_PHASES) this.phaseDuration.zero({ phase });
    for (const kind of CHECKPOINT_KINDS) this.checkpointDuration.zero({ kind });
  }

  recordUpdate(update: UpdateRecord): void {
    this.epoch.set(update.epoch);
    this.optimizerStep.set(update.step);
    if (update.outcome === "step") this.optimizerSteps.inc();
    if (update.outcome === "skipped") this.skippedUpdates.inc();
    this.learningRate.set(update.learningRate);
    for (const [term, value] of Object.entries(update.losses)) this.loss.set({ term }, value);
    for (const s of update.stats) {
      const labels = { cell_type: s.cellType };
      this.firingRate.set(labels, s.rateMean);
      this.firingRateStd.set(labels, s.rateStd);
      this.cv.set(labels, s.cvMean);
      this.cvStd.set(labels, s.cvStd);
      this.activeRatio.set(labels, s.activeFraction);
      this.membraneRatio.set(labels, s.ratioMean);
    }
    for (const t of update.targets) {
      const labels = { cell_type: t.cellType };
      this.targetFiringRate.set(labels, t.rate);
      if (t.cv !== undefined) this.targetCv.set(labels, t.cv);
      if (t.ratio !== undefined) this.targetMembraneRatio.set(labels, t.ratio);
    }
    for (const { pre, post, value, target } of update.scalingFactors ?? []) {
      this.scalingFactor.set({ pre, post }, value);
      this.scalingFactorRatio.set({ pre, post }, value / target);
    }
    for (const [population, a] of Object.entries(update.teacher ?? {})) {
      this.teacherCorrelation.set({ population }, a.correlation);
      this.teacherRelativeError.set({ population }, a.relativeError);
    }
  }

  /** One epoch result accepted: its assign-to-result wall time and the biological time it simulated. */
  epochCompleted(durationSeconds: number, simulatedSeconds: number): void {
    this.epochsCompleted.inc();
    this.epochDuration.observe(durationSeconds);
    this.simulatedSeconds.inc(simulatedSeconds);
  }

  setEpochsInFlight(n: number): void {
    this.epochsInFlight.set(n);
  }

  setWorkersConnected(n: number): void {
    this.workersConnected.set(n);
  }

  workerFailure(reason: WorkerFailureReason): void {
    this.workerFailures.inc({ reason });
  }

  peerRefused(reason: PeerRefusal): void {
    this.peersRefused.inc({ reason });
  }

  observeReduce(seconds: number): void {
    this.phaseDuration.observe({ phase: "reduce" }, seconds);
  }

  observeAdam(seconds: number): void {
    this.phaseDuration.observe({ phase: "adam" }, seconds);
  }

  observeBroadcast(seconds: number): void {
    this.phaseDuration.observe({ phase: "broadcast" }, seconds);
  }

  /** Bytes of one message each way (either may be 0). */
  bytesTransferred(sent: number, received: number): void {
    if (sent) this.sentBytes.inc(sent);
    if (received) this.receivedBytes.inc(received);
  }

  /** A checkpoint was written successfully; stamps its completion with the wall clock. */
  checkpointWritten(durationSeconds: number, kind: CheckpointKind): void {
    this.checkpointDuration.observe({ kind }, durationSeconds);
    this.checkpointLastSuccess.set({ kind }, Date.now() / 1000);
  }
}
