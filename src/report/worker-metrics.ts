/**
 * A worker's own Prometheus metrics: the work it computed, on its own port, so a hung or slow machine is visible
 * per instance even while the coordinator only sees the epochs it gets back.
 */
import { Counter, Gauge, Histogram } from "prom-client";
import { type BuildInfo, EPOCH_DURATION_BUCKETS, MetricsServer } from "../platform/metrics-server.js";

export interface WorkerIdentity extends BuildInfo {
  /** The id this worker announces in its hello message. */
  workerId: string;
}

export interface ComputedEpoch {
  /** Wall time to simulate the epoch forward and backward. */
  durationSeconds: number;
  /** Trials x time steps simulated (batch_size x chunks_per_epoch x chunk_steps). */
  trialSteps: number;
}

export class WorkerMetrics extends MetricsServer {
  private readonly epochsComputed: Counter;
  private readonly trialSteps: Counter;
  private readonly epochDuration: Histogram;

  constructor(identity: WorkerIdentity) {
    super(identity);
    const registers = [this.registry];
    new Gauge({
      name: "snn_worker_info",
      help: "Constant 1, labelled with the worker id and the engine it simulates with.",
      labelNames: ["engine", "worker_id"] as const,
      registers,
    }).set({ engine: identity.engine, worker_id: identity.workerId }, 1);
    this.epochsComputed = new Counter({
      name: "snn_worker_epochs_computed_total",
      help: "Epochs this worker simulated and returned.",
      registers,
    });
    this.trialSteps = new Counter({
      name: "snn_worker_trial_steps_total",
      help: "Trial time steps this worker simulated (each trial counts separately).",
      registers,
    });
    this.epochDuration = new Histogram({
      name: "snn_worker_epoch_duration_seconds",
      help: "Wall time this worker spent computing one epoch, forward and backward.",
      buckets: EPOCH_DURATION_BUCKETS,
      registers,
    });
  }

  epochComputed(epoch: ComputedEpoch): void {
    this.epochsComputed.inc();
    this.trialSteps.inc(epoch.trialSteps);
    this.epochDuration.observe(epoch.durationSeconds);
  }
}
