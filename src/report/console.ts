/**
 * Console output in the original tool's format ("Epoch 5/500:" blocks), plus a progress line with epochs/s and ETA
 * when stdout is a terminal (plain lines otherwise, so logs stay clean).
 */
import { LossTerms } from "../model/losses.js";
import { CellTypeStats } from "../model/statistics.js";
import { factorName } from "../model/scaling-factors.js";
import { UpdateRecord } from "../io/run-dir.js";

const fmt = (x: number, digits = 6) => (Number.isNaN(x) ? "nan" : x.toFixed(digits));

/** The teacher-student lines appear only in runs that have a teacher, per-neuron targets or the van Rossum loss. */
export function updateBlock(
  epoch: number,
  totalEpochs: number,
  losses: LossTerms,
  stats: CellTypeStats[],
  extras: Partial<Pick<UpdateRecord, "teacher" | "rateRmse" | "outcome" | "scalingFactors" | "teacherRates">> & { vanRossum?: boolean } = {},
): string {
  const perType = (f: (s: CellTypeStats) => string) => stats.map((s) => `${s.cellType} ${f(s)}`).join(", ");
  // A teacher-forced student has no recurrent synapses: only populations with synapses are compared.
  const populations = extras.teacher ? (["recurrent", "feedforward"] as const).filter((p) => !Number.isNaN(extras.teacher![p].relativeError)) : [];
  const t = extras.teacher;
  return [
    extras.outcome === "burn-in" ? `Epoch ${epoch}/${totalEpochs} (burn-in, no update):` : `Epoch ${epoch}/${totalEpochs}:`,
    `  CV Loss: ${fmt(losses.cv)}`,
    `  FR Loss: ${fmt(losses.firing_rate)}`,
    `  Silent Penalty: ${fmt(losses.silent_penalty)}`,
    `  Membrane Variance Loss: ${fmt(losses.membrane_variance)}`,
    ...(extras.vanRossum ? [`  Van Rossum Loss: ${fmt(losses.van_rossum)}`] : []),
    `  Total Loss: ${fmt(losses.total)}`,
    `  Mean FR: ${perType((s) => `${fmt(s.rateMean, 2)} Hz`)}`,
    `  Mean CV: ${perType((s) => fmt(s.cvMean, 2))}`,
    `  Active fraction: ${perType((s) => fmt(s.activeFraction, 2))}`,
    `  Membrane ratio: ${perType((s) => fmt(s.ratioMean, 2))}`,
    ...(extras.rateRmse !== undefined ? [`  Rate RMS error to per-neuron targets: ${fmt(extras.rateRmse, 3)} Hz`] : []),
    ...(t
      ? [
          `  Teacher weights: correlation ${populations.map((p) => `${p} ${fmt(t[p].correlation, 3)}`).join(", ")}; ` +
            `relative error ${populations.map((p) => `${p} ${fmt(t[p].relativeError, 3)}`).join(", ")}`,
        ]
      : []),
    ...teacherLines(extras),
  ].join("\n");
}

/** The lines of a recorded teacher's rates and of trained scaling factors, where a run has them. */
function teacherLines(r: Pick<UpdateRecord, "scalingFactors" | "teacherRates">): string[] {
  return [
    ...(r.teacherRates ? [`  Teacher FR: ${r.teacherRates.map((t) => `${t.cellType} ${fmt(t.rate, 2)} Hz`).join(", ")}`] : []),
    ...(r.scalingFactors ? [`  Scaling factor / target: ${r.scalingFactors.map((f) => `${factorName(f)} ${fmt(f.value / f.target, 3)}`).join(", ")}`] : []),
  ];
}

export interface RunSummary {
  status: "completed" | "interrupted";
  epoch: number;
  totalEpochs: number;
  /** Epochs and seconds of this session (since the start or the resume). */
  sessionEpochs: number;
  sessionSeconds: number;
  /** The lowest total loss of an applied update, and its epoch (null before any). */
  best: { loss: number; epoch: number } | null;
  /** The last update's statistics, with the targets per cell type. */
  last: ({ loss: number; stats: CellTypeStats[] } & Pick<UpdateRecord, "scalingFactors" | "teacherRates">) | null;
  targets: { rate: number; cv: number }[];
  skippedUpdates: number;
  outputDir: string;
  /** The latest figure set's directory, if any was drawn. */
  figures: string | null;
}

/** The block printed when a run ends: how it went against its targets, and where its results are. */
export function runSummary(r: RunSummary): string {
  const rate = r.sessionSeconds > 0 ? r.sessionEpochs / r.sessionSeconds : NaN;
  const perType = (f: (s: CellTypeStats, k: number) => string) => r.last!.stats.map((s, k) => `${s.cellType} ${f(s, k)}`).join(", ");
  return [
    `Run ${r.status} at epoch ${r.epoch}/${r.totalEpochs}: ${r.sessionEpochs} epochs in ${r.sessionSeconds.toFixed(1)} s (${fmt(rate, 2)} epochs/s)`,
    r.best ? `  Best total loss: ${fmt(r.best.loss)} at epoch ${r.best.epoch}` : "  Best total loss: none yet (no update applied)",
    ...(r.last
      ? [
          `  Last total loss: ${fmt(r.last.loss)}`,
          `  Mean FR vs target: ${perType((s, k) => `${fmt(s.rateMean, 2)} / ${r.targets[k].rate} Hz`)}`,
          `  Mean CV vs target: ${perType((s, k) => `${fmt(s.cvMean, 2)} / ${r.targets[k].cv}`)}`,
          `  Active fraction: ${perType((s) => fmt(s.activeFraction, 2))}`,
          ...teacherLines(r.last),
        ]
      : []),
    `  Skipped updates: ${r.skippedUpdates}`,
    `  Checkpoints: ${r.outputDir}/checkpoints (checkpoint_latest, checkpoint_best)`,
    `  Metrics: ${r.outputDir}/metrics.csv`,
    ...(r.figures ? [`  Figures: ${r.figures}/index.html`] : []),
  ].join("\n");
}

export function startBanner(startEpoch: number, targets: { names: string[]; rates: number[]; cv: number }): string {
  return [
    `Starting training from epoch ${startEpoch}...`,
    `Target firing rate: ${targets.names.map((n, k) => `${n} ${targets.rates[k]} Hz`).join(", ")}`,
    `Target CV: ${targets.cv}`,
  ].join("\n");
}

export class Progress {
  private readonly tty = Boolean(process.stdout.isTTY);
  private readonly started = Date.now();
  private drawn = false;

  constructor(
    private readonly startEpoch: number,
    private readonly totalEpochs: number,
  ) {}

  /** Prints a line above the progress bar. */
  print(text: string): void {
    if (this.drawn) process.stdout.write("\r\x1b[2K");
    process.stdout.write(`${text}\n`);
    this.drawn = false;
  }

  update(epoch: number): void {
    if (!this.tty) return;
    const elapsed = (Date.now() - this.started) / 1000;
    const done = epoch - this.startEpoch;
    const rate = done > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (this.totalEpochs - epoch) / rate : NaN;
    const width = 30;
    const filled = Math.round((epoch / this.totalEpochs) * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    process.stdout.write(`\r\x1b[2K[${bar}] ${epoch}/${this.totalEpochs} epochs  ${rate.toFixed(2)} epochs/s  ETA ${formatDuration(eta)}`);
    this.drawn = true;
  }

  end(): void {
    if (this.drawn) process.stdout.write("\n");
    this.drawn = false;
  }
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "--:--";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}:${String(sec).padStart(2, "0")}`;
}
