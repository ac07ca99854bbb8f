/**
 * The output directory of a run: parameters.toml, metadata.json, metrics.csv (one row per update). Existing results
 * are never overwritten unless the user resumes or forces.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { appendWhole, FileWriteError, writeFileAtomic, writeStatusFile } from "../platform/atomic-file.js";
import { LossTerms } from "../model/losses.js";
import { CellTypeStats, WeightAgreement } from "../model/statistics.js";
import { factorName, FactorPair } from "../model/scaling-factors.js";

export class RunDirError extends Error {}

/** The run's Prometheus discovery file (report/prometheus-targets.ts). */
export const PROMETHEUS_TARGETS_FILE = "prometheus-targets.json";
/** What a run writes into its directory: --force removes these and nothing else. */
export const RUN_DIRECTORY_ENTRIES = ["parameters.toml", "metadata.json", "metrics.csv", "checkpoints", "figures", "wandb", PROMETHEUS_TARGETS_FILE, "report.html"] as const;

/** The output directory must be (or become) a directory of its own on a real file system. */
function checkOutputPath(dir: string): void {
  const full = resolve(dir);
  if (/^\/(proc|sys|dev)(\/|$)/.test(full)) throw new RunDirError(`${dir}: not a place for a run's files (a kernel file system); choose another --output`);
  // The nearest existing ancestor (or the path itself) must be a directory.
  for (let p = full; ; p = dirname(p)) {
    if (existsSync(p)) {
      if (!statSync(p).isDirectory()) throw new RunDirError(`${dir}: ${p === full ? "exists and is not a directory" : `${p} is a file, not a directory`}`);
      return;
    }
    if (dirname(p) === p) return;
  }
}

export function prepareOutputDir(dir: string, mode: "new" | "resume" | "force"): void {
  checkOutputPath(dir);
  const entries = existsSync(dir) ? readdirSync(dir) : [];
  if (mode === "new" && entries.length > 0)
    throw new RunDirError(`${dir}: output directory exists and is not empty; pass --resume to continue that run or --force to start over in it`);
  if (mode === "resume" && entries.length === 0) throw new RunDirError(`${dir}: nothing to resume (the directory is empty or missing)`);
  if (mode === "force" && entries.length > 0) {
    const full = resolve(dir);
    if (full === resolve(process.cwd()) || full === resolve(homedir()) || full === resolve("/"))
      throw new RunDirError(`${dir}: --force will not start a run over in the current, home or root directory; use a directory of its own`);
    // An entry of the run, or a temporary file its atomic write left behind.
    const foreign = entries.filter((e) => !(RUN_DIRECTORY_ENTRIES as readonly string[]).includes(e.replace(TEMPORARY_FILE, "$1")));
    if (foreign.length > 0)
      throw new RunDirError(
        `${dir}: --force removes only what a run writes (${RUN_DIRECTORY_ENTRIES.join(", ")}), and this directory also holds ${foreign.slice(0, 5).join(", ")}${foreign.length > 5 ? ", ..." : ""}; nothing was removed`,
      );
    removeRunEntries(dir);
  }
  try {
    mkdirSync(join(dir, "checkpoints"), { recursive: true });
  } catch (e) {
    throw new FileWriteError(join(dir, "checkpoints"), "create the directory", e as NodeJS.ErrnoException);
  }
  sweepTemporaryFiles(dir);
}

/** What a run writes, and the temporary files of its atomic writes; nothing else in `dir` is touched. */
function removeRunEntries(dir: string): void {
  for (const e of readdirSync(dir))
    if ((RUN_DIRECTORY_ENTRIES as readonly string[]).includes(e.replace(TEMPORARY_FILE, "$1"))) rmSync(join(dir, e), { recursive: true, force: true });
}

/**
 * A new run that could not get started (its first files did not fit on the disk) takes back what it wrote, so that
 * the same command works again once the problem is fixed; the directory goes too when the run created it.
 */
export function discardNewRun(dir: string, created: boolean): void {
  if (!existsSync(dir)) return;
  removeRunEntries(dir);
  if (created && readdirSync(dir).length === 0) rmdirSync(dir);
}

/** Temporary files of atomic writes that a crash interrupted (`.<name>.tmp-<pid>-<random>`): never read, so removed. */
function sweepTemporaryFiles(dir: string): void {
  for (const d of [dir, join(dir, "checkpoints")])
    for (const e of readdirSync(d)) if (TEMPORARY_FILE.test(e)) rmSync(join(d, e), { force: true });
}

/** The name platform/atomic-file.ts gives a file while it writes it; $1 is the target's name. */
const TEMPORARY_FILE = /^\.(.+)\.tmp-\d+-[0-9a-f]+$/;

export interface Metadata {
  command: string;
  version: string;
  git_commit: string | null;
  host: string;
  /** The engine of the run's workers (the first worker's; workers with another are refused); null until one joined. */
  engine: string | null;
  workers: number | string;
  /** Every worker that joined: id, engine, host, threads. */
  workers_joined?: { id: string; engine: string; hostname: string; threads: number; metrics_port: number }[];
  parameters_file: string;
  output_dir: string;
  start_time: string;
  end_time?: string;
  duration_seconds?: number;
  status: "running" | "completed" | "failed" | "interrupted";
  error?: string;
  note?: string;
  resumed_from_epoch?: number;
  /** The coordinator's Prometheus port (0 = off); the workers' are in workers_joined, all in prometheus-targets.json. */
  metrics_port: number;
  /** Command-line values that replace the parameters file's (dotted key → value): --epochs, --set. */
  overrides: Record<string, unknown>;
  /** The parameters as this run uses them: every key, defaults filled in and overrides applied (as --print-config). */
  effective_parameters: Record<string, unknown>;
}

/** The overrides an earlier session of the run in `dir` was started with ({} without a readable metadata.json). */
export function recordedOverrides(dir: string): Record<string, unknown> {
  try {
    const o = (JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8")) as Partial<Metadata>).overrides;
    return o && typeof o === "object" && !Array.isArray(o) ? Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null)) : {};
  } catch {
    return {};
  }
}

/** `git ARGS` in the working directory, trimmed; null outside a repository or without git. */
function git(...args: string[]): string | null {
  try {
    return execFileSync("git", args, { stdio: ["ignore", "pipe", "ignore"], timeout: 5000 }).toString().trim() || null;
  } catch {
    return null;
  }
}

function gitCommit(): string | null {
  return git("rev-parse", "HEAD");
}

/** The commit and the origin remote of the working directory's repository, as far as they exist. */
export function gitRepository(): { commit: string | null; remote: string | null } {
  return { commit: gitCommit(), remote: git("remote", "get-url", "origin") };
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export class MetadataFile {
  private data: Metadata;
  private readonly path: string;

  constructor(dir: string, init: Omit<Metadata, "version" | "git_commit" | "host" | "start_time" | "status">) {
    this.path = join(dir, "metadata.json");
    this.data = { ...init, version: packageVersion(), git_commit: gitCommit(), host: hostname(), start_time: new Date().toISOString(), status: "running" };
    this.write();
  }

  /** Records what joined the run (the engine, and each worker), as it happens. */
  workerJoined(worker: { id: string; engine: string; hostname: string; threads: number; metricsPort: number }, runEngine: string): void {
    const { metricsPort, ...rest } = worker;
    const joined = [...(this.data.workers_joined ?? []), { ...rest, metrics_port: metricsPort }];
    this.data = { ...this.data, engine: runEngine, workers_joined: joined };
    this.write();
  }

  /** `error` says why a run failed; `note` how a completed one ended, when not at its last epoch (early stopping). */
  finish(status: Metadata["status"], error?: string, note?: string): void {
    const end = new Date();
    this.data = {
      ...this.data,
      status,
      end_time: end.toISOString(),
      duration_seconds: (end.getTime() - Date.parse(this.data.start_time)) / 1000,
      ...(error ? { error } : {}),
      ...(note ? { note } : {}),
    };
    this.write();
  }

  private write(): void {
    // The status must reach the file even when a full disk is why the run stops.
    writeStatusFile(this.path, `${JSON.stringify(this.data, null, 2)}\n`);
  }
}

/** The optional parts of a run; each adds columns only when configured, so other runs keep their columns. */
export interface MetricsOptions {
  /** The van Rossum loss is on. */
  vanRossum: boolean;
  /** A teacher's weights are known ([student] teacher_file). */
  teacher: boolean;
  /** Per-neuron targets ([targets] file). */
  perNeuronTargets: boolean;
  /** Names `{pre}_{post}` of the scaling factors a run trains (value and value/target columns); absent otherwise. */
  scalingFactors?: string[];
  /** The teacher is a recording: its per-type mean rates over the interval's epochs are logged beside the student's. */
  teacherRates?: boolean;
}

export const TEACHER_COLUMNS = [
  "teacher/weight_correlation/recurrent",
  "teacher/weight_correlation/feedforward",
  "teacher/weight_relative_error/recurrent",
  "teacher/weight_relative_error/feedforward",
] as const;
export const RATE_RMSE_COLUMN = "targets/rate_rmse";

/** Columns of metrics.csv: fixed by the cell type names and options so that every row has the same shape. */
export function metricsColumns(cellTypes: string[], o: MetricsOptions = { vanRossum: false, teacher: false, perNeuronTargets: false }): string[] {
  const cols = ["epoch", "step", "total_loss", "firing_rate_loss", "cv_loss", "silent_penalty_loss", "membrane_variance_loss"];
  if (o.vanRossum) cols.push("van_rossum_loss");
  cols.push("grad_norm", "learning_rate", "skipped_updates");
  for (const t of cellTypes)
    cols.push(`firing_rate/${t}/mean`, `firing_rate/${t}/std`, `cv/${t}/mean`, `cv/${t}/std`, `fraction_active/${t}`, `membrane_ratio/${t}/mean`);
  if (o.teacher) cols.push(...TEACHER_COLUMNS);
  if (o.perNeuronTargets) cols.push(RATE_RMSE_COLUMN);
  if (o.teacherRates) for (const t of cellTypes) cols.push(`teacher/firing_rate/${t}/mean`);
  for (const n of o.scalingFactors ?? []) cols.push(`scaling_factor/${n}`, `scaling_factor/${n}/ratio`);
  cols.push("wall_time_s", "epochs_per_s");
  return cols;
}

export interface UpdateRecord {
  epoch: number;
  step: number;
  losses: LossTerms;
  /** Global L2 norm of the interval's mean gradient before clipping (NaN in burn-in). */
  gradNorm: number;
  outcome: "step" | "skipped" | "burn-in";
  learningRate: number;
  /** Updates skipped so far in the run. */
  skippedUpdates: number;
  stats: CellTypeStats[];
  /** Learned weights against the teacher's, after this update's step (when a teacher is configured). */
  teacher?: { recurrent: WeightAgreement; feedforward: WeightAgreement };
  /** RMS difference (Hz) between the interval's per-neuron rates and per-neuron targets (with a targets file). */
  rateRmse?: number;
  /** Scaling factors after this update's step, with their targets (optimise = "scaling_factors*"). */
  scalingFactors?: (FactorPair & { value: number; target: number })[];
  /** A recorded teacher's mean rate per cell type (Hz) over the same epochs as `stats`. */
  teacherRates?: { cellType: string; rate: number }[];
  wallTimeS: number;
  epochsPerS: number;
}

export function metricsRow(r: UpdateRecord): Record<string, number> {
  const row: Record<string, number> = {
    epoch: r.epoch,
    step: r.step,
    total_loss: r.losses.total,
    firing_rate_loss: r.losses.firing_rate,
    cv_loss: r.losses.cv,
    silent_penalty_loss: r.losses.silent_penalty,
    membrane_variance_loss: r.losses.membrane_variance,
    van_rossum_loss: r.losses.van_rossum,
    grad_norm: r.gradNorm,
    learning_rate: r.learningRate,
    skipped_updates: r.skippedUpdates,
  };
  for (const s of r.stats) {
    row[`firing_rate/${s.cellType}/mean`] = s.rateMean;
    row[`firing_rate/${s.cellType}/std`] = s.rateStd;
    row[`cv/${s.cellType}/mean`] = s.cvMean;
    row[`cv/${s.cellType}/std`] = s.cvStd;
    row[`fraction_active/${s.cellType}`] = s.activeFraction;
    row[`membrane_ratio/${s.cellType}/mean`] = s.ratioMean;
  }
  if (r.teacher) {
    const [corrRec, corrFf, errRec, errFf] = TEACHER_COLUMNS;
    row[corrRec] = r.teacher.recurrent.correlation;
    row[corrFf] = r.teacher.feedforward.correlation;
    row[errRec] = r.teacher.recurrent.relativeError;
    row[errFf] = r.teacher.feedforward.relativeError;
  }
  if (r.rateRmse !== undefined) row[RATE_RMSE_COLUMN] = r.rateRmse;
  for (const t of r.teacherRates ?? []) row[`teacher/firing_rate/${t.cellType}/mean`] = t.rate;
  for (const f of r.scalingFactors ?? []) {
    row[`scaling_factor/${factorName(f)}`] = f.value;
    row[`scaling_factor/${factorName(f)}/ratio`] = f.value / f.target;
  }
  row.wall_time_s = r.wallTimeS;
  row.epochs_per_s = r.epochsPerS;
  return row;
}

/** metrics.csv, appended one row per update. Numbers are written with full precision (shortest round-trip form). */
export class MetricsCsv {
  readonly path: string;

  constructor(
    dir: string,
    private readonly columns: string[],
  ) {
    this.path = join(dir, "metrics.csv");
  }

  /** Starts the file, or on resume keeps only the rows up to the resumed epoch so no row is repeated or missing. */
  open(resumeEpoch: number | null): void {
    const header = this.columns.join(",");
    if (resumeEpoch === null || !existsSync(this.path)) {
      writeFileAtomic(this.path, `${header}\n`);
      return;
    }
    const lines = readFileSync(this.path, "utf8").split("\n").filter((l) => l.length > 0);
    if (lines[0] !== header) throw new RunDirError(`${this.path}: its columns differ from this run's; cannot resume into it`);
    // A row cut short (the process killed mid-append) is dropped with the rows after the resumed epoch.
    const kept = lines.filter((l, i) => i === 0 || (l.split(",").length === this.columns.length && Number(l.split(",")[0]) <= resumeEpoch));
    writeFileAtomic(this.path, `${kept.join("\n")}\n`);
  }

  append(row: Record<string, number>): void {
    appendWhole(this.path, `${this.columns.map((c) => formatNumber(row[c])).join(",")}\n`);
  }

  static read(path: string): Record<string, number>[] {
    const [header, ...rows] = readFileSync(path, "utf8").trim().split("\n");
    const cols = header.split(",");
    return rows.map((r) => Object.fromEntries(r.split(",").map((v, i) => [cols[i], Number(v)])));
  }
}

function formatNumber(x: number | undefined): string {
  if (x === undefined) return "";
  return Number.isNaN(x) ? "nan" : String(x);
}

/** The exact parameters text, written atomically: a failed write (a full disk) leaves no partial file behind. */
export function writeParameters(dir: string, text: string): void {
  writeFileAtomic(join(dir, "parameters.toml"), text);
}

/** Where a run that trains scaling factors records their targets (io/run-dir.ts writeFactorTargets). */
export const FACTOR_TARGETS_FILE = "target_scaling_factors.json";

/**
 * The scaling factors' targets ([student] weight_perturbation_variance: 1/p per type pair, else ones), as
 * {"recurrent": {"E_E": 1.02, ...}, "feedforward": {...}}: what a learned factor is compared with (value/target).
 */
export function writeFactorTargets(dir: string, names: { rec: string[]; ff: string[] }, targets: { recurrent: Float64Array; feedforward: Float64Array }): void {
  const named = (n: string[], t: Float64Array) => Object.fromEntries(n.map((name, i) => [name, t[i]]));
  writeFileAtomic(join(dir, FACTOR_TARGETS_FILE), JSON.stringify({ recurrent: named(names.rec, targets.recurrent), feedforward: named(names.ff, targets.feedforward) }, null, 2) + "\n");
}
