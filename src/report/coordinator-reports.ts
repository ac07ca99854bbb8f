/**
 * Everything a coordinator run reports to, started together and closed together: the console (progress and the
 * per-update block), Prometheus, W&B and the figure sets, wired to the trainer as its observers.
 */
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { checkpointPaths } from "../io/checkpoint.js";
import { LOSS_TERM_NAMES, LossTerms } from "../model/losses.js";
import { hasSpikeTrainTeacher } from "../model/network.js";
import { metricsRow, MetricsCsv, packageVersion, UpdateRecord } from "../io/run-dir.js";
import type { RunSetup } from "../training/run-setup.js";
import type { TrainingObservers } from "../training/trainer.js";
import type { PoolEvents } from "../distributed/worker-pool.js";
import type { WorkerResources } from "../distributed/protocol.js";
import { Progress, RunSummary } from "./console.js";
import { FigureQueue } from "./figures/queue.js";
import { figureTargets, networkView } from "./figures/network-view.js";
import { CoordinatorMetrics } from "./metrics.js";
import { PrometheusTargets } from "./prometheus-targets.js";
import { UpdateReporter } from "./update-report.js";
import { type WandbArtifact, WandbLogger } from "./wandb.js";
import { simulatedConfig } from "../model/teacher-forcing.js";

/** The loss terms a run reports: the van Rossum term only where it is on, so that other runs' series stay as they were. */
function reportedLosses(losses: LossTerms, vanRossum: boolean): Record<string, number> {
  return Object.fromEntries(LOSS_TERM_NAMES.filter((k) => vanRossum || k !== "van_rossum").map((k) => [k, losses[k]]));
}

/** The scalars of one update under the original's W&B keys; the statistics as in metrics.csv. */
export function wandbScalars(r: UpdateRecord, vanRossum: boolean): Record<string, number> {
  const out: Record<string, number> = {
    "optimizer/step": r.step,
    "optimizer/grad_norm": r.gradNorm,
    "optimizer/learning_rate": r.learningRate,
    "optimizer/skipped_updates": r.skippedUpdates,
  };
  for (const [k, v] of Object.entries(reportedLosses(r.losses, vanRossum))) out[`loss/${k}`] = v;
  // The statistics are the metrics.csv columns with a "/" (firing_rate/E/mean, teacher/..., targets/...).
  for (const [key, v] of Object.entries(metricsRow(r))) if (key.includes("/")) out[key] = v;
  return out;
}

/**
 * The workers' memory and CPU share from their heartbeats, as W&B system metrics: worker.<id>.memory.rssMB and
 * worker.<id>.cpu (percent of one core between its last two heartbeats).
 */
export class WorkerStats {
  private readonly latest = new Map<string, { resources: WorkerResources; at: number; cpu?: number }>();

  update(workerId: string, resources: WorkerResources, at = performance.now()): void {
    const before = this.latest.get(workerId);
    const cpu = before !== undefined && at > before.at ? (100 * (resources.cpuSeconds - before.resources.cpuSeconds) * 1000) / (at - before.at) : undefined;
    this.latest.set(workerId, { resources, at, cpu });
  }

  values(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, { resources, cpu }] of this.latest) {
      out[`worker.${id}.memory.rssMB`] = resources.rssBytes / 2 ** 20;
      if (cpu !== undefined) out[`worker.${id}.cpu`] = cpu;
    }
    return out;
  }
}

/** The run's checkpoints as versions of one W&B model artifact: latest (with its epoch) and best. */
export function checkpointArtifacts(outputDir: string, runId: string | undefined, epoch: number): WandbArtifact[] {
  const paths = checkpointPaths(outputDir);
  const name = `checkpoint-${runId ?? basename(outputDir)}`;
  const artifacts: WandbArtifact[] = [];
  if (existsSync(paths.latest)) artifacts.push({ name, type: "model", aliases: ["latest", `epoch-${epoch}`], paths: [paths.latest] });
  if (existsSync(paths.best)) artifacts.push({ name, type: "model", aliases: ["best"], paths: [paths.best] });
  return artifacts;
}

export interface CoordinatorReports {
  progress: Progress;
  metrics: CoordinatorMetrics;
  observers: TrainingObservers;
  /** The worker pool's events into the metrics and the log; `joined` also records each worker (metadata.json). */
  poolEvents(joined: NonNullable<PoolEvents["workerJoined"]>): PoolEvents;
  /** Prints the end-of-run block: results against targets, and where they are. */
  summary(status: RunSummary["status"]): void;
  /** Closes every sink, after the figures still rendering; `exitCode` goes to W&B. */
  close(exitCode: number): Promise<void>;
}

/** The coordinator's default Prometheus port; when it is taken (another run), the next free one of this many. */
export const DEFAULT_METRICS_PORT = 9464;
/** Local workers' first default port: they take the next free ones from here. */
export const DEFAULT_WORKER_METRICS_PORT = 9465;
const DEFAULT_METRICS_PORT_TRIES = 100;

/**
 * The coordinator's Prometheus endpoint, bound before the run directory is made so that a port in use leaves no
 * half-made run. An explicit `port` must be free (0 = off); without one the default moves to the next free port.
 */
export async function serveCoordinatorMetrics(port: number | undefined, host: string, log: (line: string) => void): Promise<CoordinatorMetrics> {
  // The engine label says "none" until the first worker joins and sets the run's engine.
  const metrics = new CoordinatorMetrics({ version: packageVersion(), engine: "none" });
  const bound = port === undefined ? await metrics.serveFirstFree(DEFAULT_METRICS_PORT, DEFAULT_METRICS_PORT_TRIES, host) : await metrics.serve(port, host);
  if (port === undefined && bound !== DEFAULT_METRICS_PORT) log(`metrics port ${DEFAULT_METRICS_PORT} is in use (another run?); serving on ${bound} instead`);
  if (bound) log(`Prometheus metrics on http://${host}:${bound}/metrics`);
  return metrics;
}

/**
 * The metrics ports that n local workers start from (each takes the next free one when its port is taken; 0 = off):
 * `explicit` + index when given (0 turns them off), else DEFAULT_WORKER_METRICS_PORT + index — unless the
 * coordinator's own metrics are off, which turns theirs off too.
 */
export function localWorkerMetricsPorts(n: number, explicit: number | undefined, coordinator: CoordinatorMetrics): number[] {
  const base = explicit ?? (coordinator.port === 0 ? 0 : DEFAULT_WORKER_METRICS_PORT);
  return Array.from({ length: n }, (_, i) => (base ? base + i : 0));
}

export async function startCoordinatorReports(
  run: RunSetup,
  o: { wandb: boolean; figures: boolean; metrics: CoordinatorMetrics; csvPath: string; log: (line: string) => void },
): Promise<CoordinatorReports> {
  const { config, spec, state, outputDir, totalEpochs } = run;
  const { metrics } = o;
  // Published once there is something to scrape: the coordinator, or the first worker with a metrics port.
  let scrapeTargets = metrics.port > 0 ? new PrometheusTargets(outputDir, metrics.port) : null;
  const vanRossum = hasSpikeTrainTeacher(spec);
  const workerStats = new WorkerStats();
  const progress = new Progress(state.epoch, totalEpochs);
  const session = { epoch: state.epoch, started: performance.now() };
  const typeTargetRates = figureTargets(config, spec).firingRate;
  const targets = config.recurrent.names.map((cellType, k) => ({ cellType, rate: typeTargetRates[k], cv: config.targets.cvs, ratio: config.targets.threshold_ratio[k] }));
  const wandb = o.wandb
    ? await WandbLogger.start({
        outputDir,
        project: config.wandb.project,
        entity: config.wandb.entity || undefined,
        name: config.wandb.name || basename(outputDir),
        // Online only with an API key: without one the offline copy is the run (upload it later with snn-wandb-sync).
        mode: config.wandb.mode === "online" && !process.env.WANDB_API_KEY ? "offline" : config.wandb.mode,
        config: { ...run.effective, overrides: run.overrides },
        runId: state.wandbRunId,
        resumeStep: run.resuming ? state.epoch + 1 : undefined,
        tags: config.wandb.tags,
        group: config.wandb.group,
        notes: config.wandb.notes,
        jobType: config.wandb.job_type,
        minimise: "loss/total",
        captureConsole: true,
        extraStats: () => workerStats.values(),
      })
    : null;
  const figures =
    config.plotting.enabled && o.figures
      ? new FigureQueue(
          (epoch, dir, paths) => {
            progress.print(`  Saved plots to ${dir}`);
            // epoch_0000 is rendered after step 5 is logged, and W&B steps only go forward: it stays on disk only.
            if (epoch > 0) wandb?.logImages(epoch, paths.map((path) => ({ key: `plots/${basename(path, ".png")}`, path })));
          },
          (epoch, message) => o.log(`figures of epoch ${epoch} failed: ${message}`),
        )
      : null;
  const reporter = new UpdateReporter({
    config,
    spec,
    totalEpochs,
    outputDir,
    progress,
    figures: figures ? { queue: figures, network: networkView(simulatedConfig(config), run.connectome, spec.odours) } : null,
    imagesFollowSteps: wandb !== null,
    onUpdate: (r) => {
      const { epoch, step, stats, teacher, outcome, learningRate, scalingFactors } = r;
      metrics.recordUpdate({ epoch, step, losses: reportedLosses(r.losses, vanRossum), stats, targets, teacher, outcome, learningRate, scalingFactors });
      wandb?.log(r.epoch, wandbScalars(r, vanRossum));
    },
  });
  if (run.resuming) reporter.loadHistory(MetricsCsv.read(o.csvPath));
  const observers: TrainingObservers = {
    report: (r) => reporter.report(r),
    figures: figures !== null,
    progress: (epoch) => progress.update(epoch),
    epochCompleted: (seconds, simulated) => metrics.epochCompleted(seconds, simulated),
    phase: (phase, seconds) => (phase === "reduce" ? metrics.observeReduce(seconds) : metrics.observeAdam(seconds)),
  };
  return {
    progress,
    metrics,
    observers,
    poolEvents: (joined) => ({
      log: o.log,
      workersChanged: (n) => metrics.setWorkersConnected(n),
      workerJoined: (worker, engine) => {
        joined(worker, engine);
        metrics.setEngine(engine);
        if (worker.metricsPort > 0) (scrapeTargets ??= new PrometheusTargets(outputDir, metrics.port)).addWorker(worker.hostname, worker.metricsPort);
      },
      workerFailed: (reason) => metrics.workerFailure(reason),
      peerRefused: (reason) => metrics.peerRefused(reason),
      workerResources: (workerId, resources) => workerStats.update(workerId, resources),
      bytes: (sent, received) => metrics.bytesTransferred(sent, received),
      epochsInFlight: (n) => metrics.setEpochsInFlight(n),
      broadcast: (seconds) => metrics.observeBroadcast(seconds),
    }),
    summary: (status) =>
      progress.print(
        reporter.summary(
          status,
          { epoch: state.epoch, bestLoss: state.bestLoss, skippedUpdates: state.counters.skippedUpdates },
          { epochs: state.epoch - session.epoch, seconds: (performance.now() - session.started) / 1000 },
          targets,
        ),
      ),
    close: async (exitCode) => {
      progress.end();
      // With figure sets, the run's report.html (snn-report) that their pages link to, written on the figure thread.
      if (figures) {
        try {
          o.log(`Run report: ${await figures.writeReport(outputDir)}`);
        } catch (e) {
          o.log(`run report not written: ${(e as Error).message}`);
        }
      }
      await figures?.close();
      await wandb?.finish(exitCode, checkpointArtifacts(outputDir, wandb.runId, state.epoch));
      await metrics.close();
    },
  };
}
