/**
 * What the coordinator shows of each update, in one place: the console block in the original's format (with a line
 * for a skipped update), the metrics sinks (Prometheus, W&B) and the figure sets, whose history it keeps. The trainer
 * hands it one UpdateReport per update; it runs beside training.
 */
import type { Config } from "../model/config.js";
import { hasSpikeTrainTeacher, type NetworkSpec } from "../model/network.js";
import { metricsRow, UpdateRecord } from "../io/run-dir.js";
import type { UpdateReport } from "../training/trainer.js";
import { Progress, RunSummary, runSummary, updateBlock } from "./console.js";
import type { HistoryRow, NetworkView } from "./figure-data.js";
import { figureTargets } from "./figures/network-view.js";
import { recordedTeacherFigureData } from "./teacher-figure-data.js";
import { figureDir, FigureQueue, MAX_QUEUED_SETS } from "./figures/queue.js";

export interface UpdateReporterOptions {
  config: Config;
  spec: NetworkSpec;
  totalEpochs: number;
  outputDir: string;
  progress: Progress;
  /** Metrics sinks of each update (Prometheus, W&B scalars). */
  onUpdate: (record: UpdateRecord) => void;
  /** Figure sets, when they are drawn: the queue and the network's structure. */
  figures: { queue: FigureQueue; network: NetworkView } | null;
  /**
   * The sets' images go to W&B, whose steps only increase: each update's scalars then wait for the previous set.
   * Otherwise training waits for a set only when MAX_QUEUED_SETS are queued or rendering.
   */
  imagesFollowSteps?: boolean;
}

export class UpdateReporter {
  private readonly history: HistoryRow[] = [];
  private last: UpdateRecord | null = null;
  private lastFigures: string | null = null;
  /** The epoch_0000 set's weights, drawn beside the current ones; unknown on a resumed run (no epoch_0000 set then). */
  private initialWeights: { rec: Float32Array; ff: Float32Array } | null = null;

  constructor(private readonly o: UpdateReporterOptions) {}

  /** Rows of metrics.csv written before a resume, so that history figures show the whole run. */
  loadHistory(rows: Record<string, number>[]): void {
    for (const r of rows) this.history.push({ ...r, epoch: r.epoch });
  }

  /**
   * One update's report: with W&B images, its scalars reach W&B only after the images of the previous figure set
   * (W&B steps only increase), which may still be rendering; then this update's figure sets are queued (without W&B,
   * once there is room for two: an update may queue the initial set and its own).
   */
  async report(r: UpdateReport): Promise<void> {
    const { record } = r;
    this.last = record;
    this.history.push(metricsRow(record) as HistoryRow);
    if (this.o.imagesFollowSteps) await this.o.figures?.queue.settled();
    else if (r.figures) await this.o.figures?.queue.fewerThan(MAX_QUEUED_SETS - 1);
    this.o.onUpdate(record);
    const block = updateBlock(record.epoch, this.o.totalEpochs, record.losses, record.stats, { ...record, vanRossum: hasSpikeTrainTeacher(this.o.spec) });
    this.o.progress.print(block);
    if (r.problem) this.o.progress.print(`  Skipped update (${r.problem}): weights and optimizer unchanged (${r.skippedInARow} in a row, at most ${r.maxSkipped})`);
    if (!r.figures) return;
    if (r.figures.initial) {
      this.initialWeights = r.figures.initial;
      this.plot(r, 0, r.figures.initial);
    }
    if (r.figures.current) this.plot(r, record.epoch, r.figures.current);
  }

  /**
   * The end-of-run block. The best loss is the trainer's (applied updates only, carried through checkpoints); its
   * epoch is that of the history row with that total loss.
   */
  summary(
    status: RunSummary["status"],
    s: { epoch: number; bestLoss: number; skippedUpdates: number },
    session: { epochs: number; seconds: number },
    targets: RunSummary["targets"],
  ): string {
    const bestRow = Number.isFinite(s.bestLoss) ? this.history.find((row) => row.total_loss === s.bestLoss) : undefined;
    return runSummary({
      status,
      epoch: s.epoch,
      totalEpochs: this.o.totalEpochs,
      sessionEpochs: session.epochs,
      sessionSeconds: session.seconds,
      best: bestRow ? { loss: s.bestLoss, epoch: bestRow.epoch } : null,
      last: this.last ? { loss: this.last.losses.total, stats: this.last.stats, scalingFactors: this.last.scalingFactors, teacherRates: this.last.teacherRates } : null,
      targets,
      skippedUpdates: s.skippedUpdates,
      outputDir: this.o.outputDir,
      figures: this.lastFigures,
    });
  }

  private plot(r: UpdateReport, epoch: number, weights: { rec: Float32Array; ff: Float32Array }): void {
    const last = r.figures!.last;
    const figures = this.o.figures;
    if (!last.activity || !figures) return;
    this.o.progress.print("  Generating plots...");
    this.lastFigures = figureDir(this.o.outputDir, epoch);
    figures.queue.submit(
      {
        epoch,
        totalEpochs: this.o.totalEpochs,
        network: { ...figures.network, recWeight: weights.rec, ffWeight: weights.ff },
        activity: last.activity,
        rates: last.rates,
        cvs: last.cvs,
        interval: {
          trials: this.o.spec.batchSize,
          epochs: r.figures!.interval.map((e) => e.epoch),
          rates: r.figures!.interval.map((e) => e.rates),
          cvs: r.figures!.interval.map((e) => e.cvs),
        },
        initialWeights: this.initialWeights,
        targets: figureTargets(this.o.config, this.o.spec),
        history: this.history.filter((row) => row.epoch <= epoch),
        rasterNeurons: this.o.config.plotting.raster_neurons,
        teacher: recordedTeacherFigureData(this.o.spec, last.activity.epoch),
      },
      figureDir(this.o.outputDir, epoch),
    );
  }
}
