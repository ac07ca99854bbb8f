/**
 * Weights & Biases logging for the coordinator. Every run, online or not, writes an offline run directory
 * (output_dir/wandb/offline-run-<YYYYMMDD_HHMMSS>-<id>/) as the official SDK does: `run-<id>.wandb`, the SDK's
 * transaction log (config, history, summary with the best loss, console output, system metrics, git and command
 * metadata, checkpoints as artifacts), which the official `wandb sync DIR` uploads; and files/ with the same history
 * as JSON lines, summary, config, metadata and images, which `snn-wandb-sync DIR` uploads where the Python SDK is not
 * installed. In online mode the files/ content is mirrored to W&B in the background; a W&B that is slow, failing or
 * unreachable costs one warning and never blocks or ends training.
 */
import { createHash, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import { appendFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { cpus, freemem, hostname, platform, release, totalmem, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { gitRepository, packageVersion } from "../io/run-dir.js";
import { FileWriteError, writeFileAtomic } from "../platform/atomic-file.js";
import {
  apiBaseUrl,
  DEFAULT_TIMEOUT_MS,
  HISTORY_FILE,
  jsonSafe,
  RunMirror,
  SUMMARY_FILE,
  WandbClient,
} from "./wandb-api.js";
import { type JsonItem, timestampOf, type WandbRecord } from "./wandb-records.js";
import { TransactionLog } from "./wandb-transaction-log.js";

export type WandbMode = "online" | "offline" | "disabled";

export interface WandbStartOptions {
  /** The run's output directory; the W&B run directory goes under its wandb/ folder. */
  outputDir: string;
  project: string;
  entity?: string;
  /** Display name of the run. */
  name: string;
  mode: WandbMode;
  /** Every parameter of the run (the parsed TOML). */
  config: Record<string, unknown>;
  /**
   * First step this process will log when it resumes a run. History rows at or after it are dropped from the
   * offline copy, because the resumed run logs those updates again.
   */
  resumeStep?: number;
  /** Id of the run to continue (as saved in the checkpoint); a new one is generated without it or when empty. */
  runId?: string;
  /** Defaults to $WANDB_API_KEY. */
  apiKey?: string;
  /** Defaults to $WANDB_BASE_URL, then https://api.wandb.ai. */
  baseUrl?: string;
  /** Limit for each request and for the final upload in finish(); default 10 s. */
  timeoutMs?: number;
  /** The run's tags, group, notes and job type ([wandb] tags, group, notes, job_type). */
  tags?: string[];
  group?: string;
  notes?: string;
  jobType?: string;
  /** Scalar whose minimum the summary reports as best/<name>, with best/step, e.g. "loss/total". */
  minimise?: string;
  /** Record what this process writes to stdout and stderr as the run's console output (output.log in W&B). */
  captureConsole?: boolean;
  /** Interval of system-metric samples (CPU, memory), ms; default 10 s, 0 for none. */
  statsIntervalMs?: number;
  /** More system metrics for each sample (the workers' memory and CPU), under W&B's system/ keys. */
  extraStats?: () => Record<string, number>;
}

/** Files logged as one W&B artifact version when the run finishes (a checkpoint, with aliases latest, best, ...). */
export interface WandbArtifact {
  name: string;
  type: string;
  aliases: string[];
  paths: string[];
  description?: string;
}

export interface WandbImage {
  key: string;
  /** A PNG file. */
  path: string;
}

export const WANDB_DIR = "wandb";
export const OFFLINE_RUN_PREFIX = "offline-run-";
export const CONFIG_FILE = "config.json";
export const METADATA_FILE = "wandb-metadata.json";
const MEDIA_DIR = "media/images";
const DEFAULT_STATS_INTERVAL_MS = 10_000;

export interface OfflineRunMetadata {
  runId: string;
  project: string;
  entity?: string;
  name: string;
  host: string;
  startedAt: string;
  /** Set by finish(): a run without it ended without finishing (crash, kill) or is still running. */
  exitCode?: number;
  finishedAt?: string;
}

/** Picks the mode: $WANDB_MODE if set ("dryrun" is W&B's old name for offline), else online exactly when a key is. */
export function resolveWandbMode(env: NodeJS.ProcessEnv = process.env): WandbMode {
  const mode = env.WANDB_MODE;
  if (mode === "online" || mode === "offline" || mode === "disabled") return mode;
  if (mode === "dryrun") return "offline";
  return env.WANDB_API_KEY ? "online" : "offline";
}

// A step's row stays open until a later step is logged or the run finishes, so that scalars and the figures of the
// same update form one history row, as W&B requires (one row per step, steps increasing).
interface OpenRow {
  step: number;
  values: Record<string, unknown>;
  /** Wall time of the first value logged at this step, ms. */
  time: number;
}

const PUSH_INTERVAL_MS = 1000;
const MAX_CONSECUTIVE_FAILURES = 5;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface RunDirectory {
  runDir: string;
  filesDir: string;
  runId: string;
  metadata: OfflineRunMetadata;
  project: string;
  entity?: string;
  log: TransactionLog;
}

/** The lowest value of the scalar the run minimises, and the step it was logged at. */
interface Best {
  key: string;
  value: number;
  step: number;
}

export class WandbLogger {
  private open: OpenRow | undefined;
  /** Steps below this were already logged (or belong to the run this one resumes). */
  private nextStep: number;
  private lineCount: number;
  private readonly summary: Record<string, unknown>;
  private readonly runtimeOffset: number;
  private finished = false;
  private writes: Promise<void> = Promise.resolve();
  private readonly warned = new Set<string>();
  private readonly startTime = Date.now();
  // Online mirroring state.
  private readonly abort = new AbortController();
  private pushing: Promise<void> | undefined;
  private cooldown: NodeJS.Timeout | undefined;
  private failures = 0;
  private mirror: RunMirror | undefined;
  private minimise: string | undefined;
  private best: Best | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private sampleNow: (() => void) | undefined;
  /** Undoes the console capture. */
  private readonly restoreConsole: (() => void)[] = [];
  /** Set while a record is appended, so that a warning about that append is not itself recorded. */
  private appending = false;

  private constructor(
    private readonly dir: RunDirectory | undefined,
    private readonly timeoutMs: number,
    /** What the run this one resumes left: its summary, history length and last _runtime (s). */
    resumed: { summary: Record<string, unknown>; lineCount: number; runtime: number; nextStep: number },
  ) {
    this.summary = resumed.summary;
    this.lineCount = resumed.lineCount;
    this.runtimeOffset = resumed.runtime;
    this.nextStep = resumed.nextStep;
  }

  static async start(opts: WandbStartOptions): Promise<WandbLogger> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (opts.mode === "disabled") {
      return new WandbLogger(undefined, timeoutMs, { summary: {}, lineCount: 0, runtime: 0, nextStep: 0 });
    }

    const runId = opts.runId || newRunId();
    // W&B rejects these in run ids, and a path separator would escape the wandb/ folder.
    if (/[/\\#?%:\s]/.test(runId)) throw new Error(`invalid W&B run id ${JSON.stringify(runId)}`);
    try {
      return await WandbLogger.open(opts, runId, timeoutMs);
    } catch (err) {
      // The offline run cannot be written (a file in the way, permissions, a full disk): one line, not a stack trace.
      const errno = err as NodeJS.ErrnoException;
      if (err instanceof FileWriteError || typeof errno.code !== "string") throw err;
      throw new FileWriteError(errno.path ?? join(opts.outputDir, WANDB_DIR), "write the W&B offline run there", errno);
    }
  }

  private static async open(opts: WandbStartOptions, runId: string, timeoutMs: number): Promise<WandbLogger> {
    const wandbDir = join(opts.outputDir, WANDB_DIR);
    await mkdir(wandbDir, { recursive: true });
    const runDir =
      (await findRunDir(wandbDir, runId)) ?? join(wandbDir, `${OFFLINE_RUN_PREFIX}${timestamp()}-${runId}`);
    const filesDir = join(runDir, "files");
    await mkdir(join(filesDir, MEDIA_DIR), { recursive: true });

    const previous = await readJson<OfflineRunMetadata>(join(filesDir, METADATA_FILE));
    const metadata: OfflineRunMetadata = {
      runId,
      project: opts.project,
      ...(opts.entity !== undefined && { entity: opts.entity }),
      name: opts.name,
      host: hostname(),
      startedAt: previous?.startedAt ?? new Date().toISOString(),
    };
    writeJsonAtomic(join(filesDir, METADATA_FILE), metadata);
    writeJsonAtomic(join(filesDir, CONFIG_FILE), opts.config);
    const kept = await keepHistoryBefore(join(filesDir, HISTORY_FILE), opts.resumeStep);
    const summary: Record<string, unknown> = Object.assign({}, ...kept.rows);
    if (kept.rows.length > 0) writeJsonAtomic(join(filesDir, SUMMARY_FILE), summary);
    const lastRow = kept.rows.at(-1);
    const log = TransactionLog.open(
      join(runDir, `run-${runId}.wandb`),
      openingRecords(opts, runId, Date.parse(metadata.startedAt)),
      opts.resumeStep,
      (message) => console.warn(message),
    );
    const logger = new WandbLogger(
      { runDir, filesDir, runId, metadata, project: opts.project, entity: opts.entity, log },
      timeoutMs,
      {
        summary,
        lineCount: kept.lines.length,
        runtime: typeof lastRow?._runtime === "number" ? lastRow._runtime : 0,
        nextStep: Math.max(opts.resumeStep ?? 0, typeof lastRow?._step === "number" ? lastRow._step + 1 : 0),
      },
    );
    logger.minimise = opts.minimise;
    for (const row of kept.rows) logger.updateBest(row);
    if (opts.captureConsole) logger.captureConsole();
    logger.sampleStats(opts.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS, opts.extraStats);

    // Say where the run goes: an offline run is uploaded by hand later.
    if (opts.mode === "offline") logger.warnOnce("offline", `W&B: logging offline. ${logger.syncHint()}`);
    if (opts.mode === "online") {
      const apiKey = opts.apiKey ?? process.env.WANDB_API_KEY;
      if (!apiKey) {
        logger.warnOnce("offline", `W&B: WANDB_API_KEY is not set, logging offline only. ${logger.syncHint()}`);
        return logger;
      }
      const client = new WandbClient({
        baseUrl: apiBaseUrl(opts.baseUrl),
        apiKey,
        timeoutMs,
        signal: logger.abort.signal,
      });
      const mirror = new RunMirror(
        client,
        { runId, project: opts.project, entity: opts.entity, name: opts.name, config: opts.config },
        filesDir,
      );
      // A resumed run re-sends what it keeps, so the server matches the offline copy even if it missed some of it.
      mirror.addLines(0, kept.lines);
      if (kept.rows.length > 0) mirror.setSummary(JSON.stringify(summary, jsonSafe));
      mirror.addFiles(await listRunFiles(filesDir));
      logger.mirror = mirror;
      logger.kick();
    }
    return logger;
  }

  /** The offline run directory (undefined when disabled). */
  get runDir(): string | undefined {
    return this.dir?.runDir;
  }

  /** The run id to save in checkpoints, so a resumed run continues this one (undefined when disabled). */
  get runId(): string | undefined {
    return this.dir?.runId;
  }

  /**
   * Logs scalars at a global step; returns at once (files are written and uploads happen in the background). As in
   * wandb, a step's row is committed when a later step is logged or the run finishes.
   */
  log(step: number, scalars: Record<string, number>): void {
    this.addToRow(step, scalars);
  }

  /** Logs PNG figures at a global step; they join the step's row as W&B image-file values. */
  logImages(step: number, images: readonly WandbImage[]): void {
    const dir = this.dir;
    if (dir === undefined || !this.acceptsStep(step)) return;
    const values: Record<string, unknown> = {};
    for (const image of images) {
      let png: Buffer;
      try {
        // Synchronous because the row needs the hash and size now; a figure is a few hundred kB at most.
        png = readFileSync(image.path);
      } catch (err) {
        this.warnOnce(`image:${image.key}`, `W&B: cannot read figure ${image.path}: ${String(err)}`);
        continue;
      }
      if (png.length < 24 || !png.subarray(0, 8).equals(PNG_SIGNATURE)) {
        this.warnOnce(`image:${image.key}`, `W&B: ${image.path} is not a PNG file; not logged`);
        continue;
      }
      const sha256 = createHash("sha256").update(png).digest("hex");
      const path = `${MEDIA_DIR}/${image.key.replace(/[^A-Za-z0-9._-]/g, "_")}_${step}_${sha256.slice(0, 20)}.png`;
      // IHDR, the first chunk of every PNG, holds width and height as big-endian uint32 at bytes 16 and 20.
      values[image.key] = {
        _type: "image-file",
        path,
        sha256,
        size: png.length,
        format: "png",
        width: png.readUInt32BE(16),
        height: png.readUInt32BE(20),
      };
      this.write(async () => {
        await writeFile(join(dir.filesDir, path), png);
        this.mirror?.addFiles([path]);
        this.append({ files: { files: [{ path, policy: "NOW", type: "MEDIA" }] } });
      });
    }
    this.addToRow(step, values);
  }

  /**
   * Closes the run: writes the last row and the exit code, then gives the upload at most timeoutMs to finish.
   * Never throws.
   */
  async finish(exitCode: number, artifacts: readonly WandbArtifact[] = []): Promise<void> {
    const dir = this.dir;
    if (dir === undefined || this.finished) return;
    this.closeRow();
    this.finished = true;
    clearTimeout(this.cooldown);
    clearInterval(this.statsTimer);
    this.sampleNow?.();
    const metadata = { ...dir.metadata, exitCode, finishedAt: new Date().toISOString() };
    this.write(async () => writeJsonAtomic(join(dir.filesDir, METADATA_FILE), metadata));
    await this.writes;
    // The transaction log ends as the SDK's does: the final summary, the artifacts, the exit code.
    this.append({ summary: { update: jsonItems(this.finalSummary()) } });
    for (const artifact of artifacts) {
      try {
        this.append({ artifact: artifactRecord(artifact, dir) });
      } catch (err) {
        this.warnOnce(`artifact:${artifact.name}`, `W&B: artifact ${artifact.name} not logged: ${String(err)}`);
      }
    }
    const runtime = this.runtimeOffset + (Date.now() - this.startTime) / 1000;
    this.append({ exit: { exit_code: exitCode, runtime: Math.round(runtime) } });
    for (const restore of this.restoreConsole.splice(0)) restore();
    dir.log.close();
    const mirror = this.mirror;
    if (mirror === undefined || this.failures >= MAX_CONSECUTIVE_FAILURES) return;
    const overdue = new Error(`W&B upload did not finish within ${this.timeoutMs} ms`);
    const deadline = setTimeout(() => this.abort.abort(overdue), this.timeoutMs);
    try {
      await this.pushing;
      mirror.addFiles([METADATA_FILE]);
      await mirror.push(exitCode);
    } catch (err) {
      this.networkFailed(err);
    } finally {
      clearTimeout(deadline);
    }
  }

  private acceptsStep(step: number): boolean {
    if (this.finished) {
      this.warnOnce("finished", "W&B: log after finish() ignored");
      return false;
    }
    if (!Number.isSafeInteger(step) || step < 0) {
      this.warnOnce("step", `W&B: step must be a non-negative integer, got ${step}; row dropped`);
      return false;
    }
    if (step < (this.open?.step ?? this.nextStep)) {
      this.warnOnce("step", `W&B: step ${step} is before steps already logged; row dropped`);
      return false;
    }
    return true;
  }

  private addToRow(step: number, values: Record<string, unknown>): void {
    if (this.dir === undefined || !this.acceptsStep(step)) return;
    if (this.open?.step !== step) {
      this.closeRow();
      this.open = { step, values: {}, time: Date.now() };
    }
    Object.assign(this.open.values, values);
  }

  private closeRow(): void {
    const row = this.open;
    const dir = this.dir;
    if (row === undefined || dir === undefined) return;
    this.open = undefined;
    this.nextStep = row.step + 1;
    const record = {
      ...row.values,
      _step: row.step,
      _runtime: this.runtimeOffset + (row.time - this.startTime) / 1000,
      _timestamp: row.time / 1000,
    };
    Object.assign(this.summary, record);
    this.updateBest(record);
    const items = jsonItems(record);
    this.append({ history: { item: items, step: { num: row.step } } });
    // As the SDK does: the summary follows each row, so that a run that crashes still has one.
    this.append({ summary: { update: items } });
    const line = JSON.stringify(record, jsonSafe);
    const summary = JSON.stringify(this.summary, jsonSafe);
    const offset = this.lineCount++;
    this.write(async () => {
      await appendFile(join(dir.filesDir, HISTORY_FILE), `${line}\n`);
      writeFileAtomic(join(dir.filesDir, SUMMARY_FILE), summary);
    });
    this.mirror?.addLines(offset, [line]);
    this.mirror?.setSummary(summary);
    this.kick();
  }

  /** Queues a file write after the ones before it; a failure is reported, never thrown at the training loop. */
  private write(task: () => Promise<void>): void {
    this.writes = this.writes
      .then(task)
      .catch((err: unknown) => this.warnOnce("disk", `W&B: cannot write ${this.runDir}: ${String(err)}`))
      .then(() => this.kick());
  }

  /** Starts a background upload unless one is running, cooling down, finished or given up. */
  private kick(): void {
    const mirror = this.mirror;
    if (mirror === undefined || !mirror.pending || this.pushing || this.cooldown || this.finished) return;
    if (this.failures >= MAX_CONSECUTIVE_FAILURES) return;
    this.pushing = mirror
      .push()
      .then(
        () => {
          this.failures = 0;
          this.coolDown(PUSH_INTERVAL_MS);
        },
        (err: unknown) => {
          this.networkFailed(err);
          this.coolDown(PUSH_INTERVAL_MS * 2 ** this.failures);
        },
      )
      .finally(() => {
        this.pushing = undefined;
      });
  }

  // Spaces uploads out (W&B rate-limits file_stream) and backs off after failures.
  private coolDown(ms: number): void {
    if (this.finished) return;
    this.cooldown = setTimeout(() => {
      this.cooldown = undefined;
      this.kick();
    }, ms);
    this.cooldown.unref();
  }

  private networkFailed(err: unknown): void {
    this.failures += 1;
    const reason = err instanceof Error ? err.message : String(err);
    this.warnOnce("network", `W&B: upload failed (${reason}); training continues and logs offline. ${this.syncHint()}`);
  }

  private syncHint(): string {
    return `The offline run ${this.runDir} can be uploaded later with: wandb sync ${this.runDir} (or, without the Python SDK: npx snn-wandb-sync ${this.runDir})`;
  }

  private updateBest(row: Record<string, unknown>): void {
    const key = this.minimise;
    const value = key === undefined ? undefined : row[key];
    if (typeof value !== "number" || !Number.isFinite(value) || typeof row._step !== "number") return;
    if (this.best === undefined || value < this.best.value) this.best = { key: key!, value, step: row._step };
  }

  /** The last value of every key, and the best of the minimised one. */
  private finalSummary(): Record<string, unknown> {
    const best = this.best;
    return best === undefined ? this.summary : { ...this.summary, [`best/${best.key}`]: best.value, "best/step": best.step };
  }

  /** Appends to the transaction log; a failure (full disk) is one warning, never thrown at the training loop. */
  private append(record: WandbRecord): void {
    const dir = this.dir;
    if (dir === undefined || this.appending) return;
    this.appending = true;
    try {
      dir.log.append(record);
    } catch (err) {
      this.warnOnce("log", `W&B: cannot write ${dir.log.path}: ${String(err)}`);
    } finally {
      this.appending = false;
    }
  }

  /** Records every write to stdout and stderr as console output until finish(). */
  private captureConsole(): void {
    for (const [stream, type] of [
      [process.stdout, "STDOUT"],
      [process.stderr, "STDERR"],
    ] as const) {
      const original = stream.write;
      const capture = (chunk: unknown, ...rest: unknown[]): boolean => {
        const line = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8");
        this.append({ output_raw: { output_type: type, timestamp: timestampOf(Date.now()), line } });
        return (original as (...args: unknown[]) => boolean).call(stream, chunk, ...rest);
      };
      stream.write = capture as typeof stream.write;
      this.restoreConsole.push(() => {
        stream.write = original;
      });
    }
  }

  /**
   * Samples this process's CPU share and memory (and `extra`) every `intervalMs`, and once more when the run
   * finishes, as system-metrics records under the SDK's keys, so that W&B's system panels show them.
   */
  private sampleStats(intervalMs: number, extra: (() => Record<string, number>) | undefined): void {
    if (intervalMs <= 0 || this.dir === undefined) return;
    let cpu = process.cpuUsage();
    let at = performance.now();
    this.sampleNow = () => {
      const now = performance.now();
      const used = process.cpuUsage(cpu);
      const rss = process.memoryUsage.rss();
      const stats: Record<string, number> = {
        cpu: (100 * (used.user + used.system)) / 1000 / Math.max(now - at, 1),
        "proc.memory.rssMB": rss / 2 ** 20,
        "proc.memory.percent": (100 * rss) / totalmem(),
        "proc.memory.availableMB": freemem() / 2 ** 20,
        memory_percent: (100 * (totalmem() - freemem())) / totalmem(),
        ...extra?.(),
      };
      cpu = process.cpuUsage();
      at = now;
      this.append({ stats: { stats_type: "SYSTEM", timestamp: timestampOf(Date.now()), item: jsonItems(stats) } });
    };
    this.statsTimer = setInterval(() => this.sampleNow?.(), intervalMs);
    this.statsTimer.unref();
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    console.warn(message);
  }
}

export class NotAnOfflineRunError extends Error {
  constructor(runDir: string, why: string) {
    super(`${runDir} is not an snn-train offline W&B run: ${why}`);
    this.name = "NotAnOfflineRunError";
  }
}

export interface OfflineRun {
  runDir: string;
  filesDir: string;
  metadata: Partial<OfflineRunMetadata> & Pick<OfflineRunMetadata, "runId" | "project" | "name">;
  config: Record<string, unknown>;
  historyLines: string[];
  /** The summary file's JSON, if any row was logged. */
  summary: string | undefined;
  /** Files to upload, relative to filesDir. */
  files: string[];
}

/** Reads what snn-wandb-sync uploads; throws NotAnOfflineRunError for anything else. */
export async function readOfflineRun(runDir: string): Promise<OfflineRun> {
  const filesDir = join(runDir, "files");
  const metadata = await readJson<Partial<OfflineRunMetadata>>(join(filesDir, METADATA_FILE));
  if (metadata === undefined) throw new NotAnOfflineRunError(runDir, `no readable files/${METADATA_FILE}`);
  const { runId, project, name } = metadata;
  if (typeof runId !== "string" || typeof project !== "string" || typeof name !== "string") {
    throw new NotAnOfflineRunError(runDir, `files/${METADATA_FILE} lacks runId, project or name`);
  }
  const summary = await readFile(join(filesDir, SUMMARY_FILE), "utf8").catch(() => undefined);
  return {
    runDir,
    filesDir,
    metadata: { ...metadata, runId, project, name },
    config: (await readJson<Record<string, unknown>>(join(filesDir, CONFIG_FILE))) ?? {},
    historyLines: (await readHistory(join(filesDir, HISTORY_FILE))).lines,
    summary: summary?.trim(),
    files: await listRunFiles(filesDir),
  };
}

/** Everything under an offline run's files/ folder that is uploaded as a file (history and summary are streamed). */
export async function listRunFiles(filesDir: string): Promise<string[]> {
  const names = await readdir(filesDir, { recursive: true });
  const files: string[] = [];
  for (const name of names.sort()) {
    const path = name.split("\\").join("/");
    // Dot files are atomic writes in progress or ones a crash interrupted.
    const hidden = path.split("/").some((part) => part.startsWith("."));
    if (path === HISTORY_FILE || path === SUMMARY_FILE || hidden) continue;
    if ((await stat(join(filesDir, name))).isFile()) files.push(path);
  }
  return files;
}

/** What the log starts with: its header, the run (config, tags, git), the environment and the metric definitions. */
function openingRecords(opts: WandbStartOptions, runId: string, startedAt: number): WandbRecord[] {
  const git = gitRepository();
  const repo = { ...(git.remote !== null && { remote_url: git.remote }), ...(git.commit !== null && { commit: git.commit }) };
  const start_time = timestampOf(startedAt);
  return [
    { header: { version_info: { producer: `snn-train ${packageVersion()}` } } },
    {
      run: {
        run_id: runId,
        project: opts.project,
        ...(opts.entity !== undefined && { entity: opts.entity }),
        display_name: opts.name,
        config: { update: jsonItems(opts.config) },
        ...(opts.group && { run_group: opts.group }),
        ...(opts.jobType && { job_type: opts.jobType }),
        ...(opts.notes && { notes: opts.notes }),
        tags: opts.tags ?? [],
        host: hostname(),
        start_time,
        git: repo,
      },
    },
    {
      environment: {
        os: `${platform()}-${release()}`,
        started_at: start_time,
        args: process.argv.slice(2),
        program: process.argv[1] ?? "",
        code_path: process.argv[1] ?? "",
        git: repo,
        root: resolve("."),
        host: hostname(),
        username: safeUsername(),
        executable: process.execPath,
        cpu_count: cpus().length,
        cpu_count_logical: cpus().length,
      },
    },
    ...(opts.minimise === undefined ? [] : [{ metric: { name: opts.minimise, options: { defined: true }, goal: "GOAL_MINIMIZE" as const } }]),
  ];
}

function safeUsername(): string {
  try {
    return userInfo().username;
  } catch {
    return "";
  }
}

/**
 * Top-level keys with their values as JSON, as config, summary, history and stats records hold them. A non-finite
 * number is written as the Python SDK writes it (NaN, Infinity, -Infinity), so that W&B keeps it in the numeric series.
 */
function jsonItems(values: Record<string, unknown>): JsonItem[] {
  return Object.entries(values).map(([key, value]) => ({
    key,
    value_json: typeof value === "number" && !Number.isFinite(value) ? String(value) : (JSON.stringify(value, jsonSafe) ?? "null"),
  }));
}

/**
 * An artifact version as the SDK logs one (storage policy v1, layout V2): each file's digest is the base64 MD5 of
 * its content, the version's digest the MD5 of the manifest's "path:digest" lines; `wandb sync` uploads the files
 * from their local paths.
 */
export function artifactRecord(artifact: WandbArtifact, run: { runId: string; project: string; entity?: string }): NonNullable<WandbRecord["artifact"]> {
  const contents = artifact.paths
    .map((path) => {
      const local = resolve(path);
      const bytes = readFileSync(local);
      return { path: local.split("/").at(-1)!, digest: createHash("md5").update(bytes).digest("base64"), size: bytes.length, local_path: local };
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest = createHash("md5").update("wandb-artifact-manifest-v1\n");
  for (const entry of contents) manifest.update(`${entry.path}:${entry.digest}\n`);
  return {
    run_id: run.runId,
    project: run.project,
    ...(run.entity !== undefined && { entity: run.entity }),
    type: artifact.type,
    name: artifact.name,
    digest: manifest.digest("hex"),
    ...(artifact.description !== undefined && { description: artifact.description }),
    aliases: artifact.aliases,
    manifest: { version: 1, storage_policy: "wandb-storage-policy-v1", storage_policy_config: [{ key: "storageLayout", value_json: '"V2"' }], contents },
    finalize: true,
  };
}

function newRunId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length: 8 }, () => alphabet[randomInt(alphabet.length)]).join("");
}

/** Local time as YYYYMMDD_HHMMSS, as wandb names its run directories. */
function timestamp(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return (
    `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}_` +
    `${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`
  );
}

async function findRunDir(wandbDir: string, runId: string): Promise<string | undefined> {
  const suffix = `-${runId}`;
  const match = (await readdir(wandbDir))
    .filter((name) => name.startsWith(OFFLINE_RUN_PREFIX) && name.endsWith(suffix))
    .filter((name) => /^\d{8}_\d{6}$/.test(name.slice(OFFLINE_RUN_PREFIX.length, -suffix.length)))
    .sort()
    .at(-1);
  return match === undefined ? undefined : join(wandbDir, match);
}

interface History {
  lines: string[];
  rows: Record<string, unknown>[];
}

/** The history file's rows; a line cut short by a crash does not parse and is left out. */
async function readHistory(path: string): Promise<History & { text: string }> {
  const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return "";
    throw err;
  });
  const history = { text, lines: [] as string[], rows: [] as Record<string, unknown>[] };
  for (const line of text.split("\n")) {
    try {
      history.rows.push(JSON.parse(line) as Record<string, unknown>);
      history.lines.push(line);
    } catch {
      // Blank or truncated line.
    }
  }
  return history;
}

/**
 * Keeps the history rows before `resumeStep` (all readable rows without one). The file is rewritten when that drops
 * anything, a truncated last line included, since the next row would otherwise be appended onto it.
 */
async function keepHistoryBefore(path: string, resumeStep: number | undefined): Promise<History> {
  const all = await readHistory(path);
  const keep = all.rows.map(
    (row) => resumeStep === undefined || !(typeof row._step === "number" && row._step >= resumeStep),
  );
  const kept: History = {
    lines: all.lines.filter((_, i) => keep[i]),
    rows: all.rows.filter((_, i) => keep[i]),
  };
  const keptText = kept.lines.map((line) => `${line}\n`).join("");
  if (keptText !== all.text) writeFileAtomic(path, keptText);
  return kept;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

// Readers (snn-wandb-sync, a resumed run) never see a half-written summary, config or metadata file.
function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, jsonSafe, 2)}\n`);
}
