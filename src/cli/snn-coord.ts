#!/usr/bin/env node
/**
 * snn-coord PARAMS [--workers N | --external --bind tcp://*:5555 [--min-workers M]] [--output DIR] [--resume [auto|PATH]] [--set KEY=VALUE ...]
 * The coordinator: owns the training state, spreads epochs over workers, reduces, steps Adam, logs and checkpoints.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { hideBin } from "yargs/helpers";
import { coordinatorCli } from "./coord-options.js";
import { ConfigError, parametersToml } from "../model/config.js";
import { CheckpointError, checkpointSummary } from "../io/checkpoint.js";
import { CheckpointWriter } from "../io/checkpoint-writer.js";
import { MetadataFile, RunDirError } from "../io/run-dir.js";
import { FileWriteError } from "../platform/atomic-file.js";
import { MetricsPortError } from "../platform/metrics-server.js";
import { BindError, EpochFailedError, InterruptedError, NoWorkersError, WorkerPool } from "../distributed/worker-pool.js";
import { openRunDirectory, runParameters, setUpRun } from "../training/run-setup.js";
import { Trainer, TrainingDivergedError } from "../training/trainer.js";
import { startBanner } from "../report/console.js";
import { CoordinatorReports, localWorkerMetricsPorts, serveCoordinatorMetrics, startCoordinatorReports } from "../report/coordinator-reports.js";
import { figureTargets } from "../report/figures/network-view.js";
import { AllowList, generateKeys, KeyFileError, KeyPair, readKeyPair } from "../distributed/curve-auth.js";

class UsageError extends Error {}

async function main(): Promise<number> {
  const args = await coordinatorCli(hideBin(process.argv))
    .fail((message, error) => {
      throw new UsageError(message ?? error.message);
    })
    .parseAsync();
  const log = (s: string) => console.error(`[snn-coord] ${s}`);
  if (args.inspect) {
    console.log(JSON.stringify(checkpointSummary(args.inspect), null, 2));
    return 0;
  }
  if (args.keygen) return keygen(args.keygen, args["worker-keys"], log);
  const curve = coordinatorCurve(args.keys, args.insecure, log);
  if (args["print-config"]) {
    process.stdout.write(parametersToml(runParameters({ params: String(args.params), set: args.set, epochs: args.epochs }).effectiveConfig));
    return 0;
  }

  const signals = handleSignals(log);
  // Everything that can be refused (parameters, files, checkpoint, the metrics port) is checked before the run
  // directory is touched.
  const run = setUpRun({ params: String(args.params), epochs: args.epochs, set: args.set, output: args.output, resume: args.resume, fallback: args.fallback }, log);
  const { config, spec, state, outputDir } = run;
  const external = args.external;
  // Local runs answer scrapes on this machine only; a cluster's Prometheus scrapes an --external coordinator from elsewhere.
  const metricsHost = args["metrics-host"] ?? (external ? "0.0.0.0" : "127.0.0.1");
  const metrics = await serveCoordinatorMetrics(args["metrics-port"], metricsHost, log);
  if (signals.received) {
    log("interrupted before the run started; nothing was written");
    return 130;
  }
  const { csv, metadata } = openRunDirectory(run, { force: args.force, workers: external ? `external (min ${args["min-workers"]})` : args.workers, metricsPort: metrics.port });
  const reports = await startCoordinatorReports(run, { wandb: args.wandb ?? config.wandb.enabled, figures: args.figures, metrics, csvPath: csv.path, log }).catch((e) => {
    metadata.finish("failed", (e as Error).message);
    throw e;
  });
  const { progress } = reports;
  const runId = `${basename(outputDir)}-${state.wandbRunId}`;
  // Local workers talk over a socket in a private directory, authenticated and encrypted with keys made for this run.
  const local = external ? null : localWorkerKeys(args.workers);
  const pool = new WorkerPool(spec, runId, {
    heartbeatInterval: config.distributed.heartbeat_interval,
    workerTimeout: config.distributed.worker_timeout,
    noWorkerTimeout: config.distributed.no_worker_timeout,
    events: reports.poolEvents((worker, engine) => metadata.workerJoined(worker, engine)),
    ...(curve ? { curve } : local ? { curve: local.curve } : {}),
  });
  const checkpoints = new CheckpointWriter(run.identity, (seconds, kind) => metrics.checkpointWritten(seconds, kind));
  const trainer = new Trainer({ config, spec, checkpoints, outputDir, pool, runId, totalEpochs: run.totalEpochs, observers: reports.observers, teacherWeights: run.teacher, factorTargets: run.factorTargets }, state);
  signals.attach(() => trainer.requestStop(), (why) => pool.interrupt(why), (why) => metadata.finish("interrupted", undefined, why));
  const ending = { pool, reports, metadata, outputDir, epoch: () => state.epoch, log };

  try {
    const endpoint = args.bind ?? (local ? `ipc://${join(local.dir, "coordinator.ipc")}` : "tcp://*:5555");
    const bound = await pool.bind(endpoint);
    if (!local) log(`listening on ${bound}; waiting for ${args["min-workers"]} worker(s)`);
    else pool.spawnLocal(localWorkerMetricsPorts(args.workers, args["worker-metrics-port"], metrics), metricsHost, ["--engine", args.engine], local.workerArgs);
    await pool.waitForWorkers(external ? args["min-workers"] : args.workers, config.distributed.no_worker_timeout);
    signals.trainingStarted();
    progress.print(startBanner(state.epoch, { names: config.recurrent.names, rates: figureTargets(config, spec).firingRate, cv: config.targets.cvs }));
    const outcome = await trainer.run(csv);
    await checkpoints.close();
    if (outcome.kind === "stopped-early") log(outcome.message);
    return await endRun(ending, outcome.kind === "interrupted" ? { status: "interrupted" } : { status: "completed", note: outcome.kind === "stopped-early" ? outcome.message : undefined });
  } catch (e) {
    // Whatever failed, the checkpoints already queued (and, without workers or after an interrupt, the state of the
    // last completed update) reach the disk.
    const interrupted = e instanceof InterruptedError;
    try {
      if (e instanceof NoWorkersError || interrupted) {
        log(`${e.message}; writing checkpoint_latest and stopping`);
        trainer.saveLatest();
      }
      await checkpoints.close();
    } catch (w) {
      if (w !== e) log((w as Error).message);
    }
    if (interrupted) return await endRun(ending, { status: "interrupted", note: e.message });
    await endRun(ending, { status: "failed", error: (e as Error).message });
    throw e;
  }
}

/**
 * The end of a run however it ended: workers told, reports closed, metadata.json saying how; returns the exit code
 * of a run that did not fail. A failed run's own error is the one to report, even if a full disk fails this too.
 */
async function endRun(
  r: { pool: WorkerPool; reports: CoordinatorReports; metadata: MetadataFile; outputDir: string; epoch: () => number; log: (line: string) => void },
  end: { status: "completed" | "interrupted" | "failed"; error?: string; note?: string },
): Promise<number> {
  const code = { completed: 0, interrupted: 130, failed: 1 }[end.status];
  try {
    r.metadata.finish(end.status, end.error, end.note);
  } catch (w) {
    if (end.status !== "failed") throw w;
    r.log((w as Error).message);
  }
  await r.pool.close({ completed: "training completed", interrupted: "training interrupted", failed: "coordinator failed" }[end.status]);
  // A failed run's last line is its error; the summary is for runs that ended as asked.
  if (end.status !== "failed") r.reports.summary(end.status);
  await r.reports.close(code);
  if (end.status === "interrupted") r.log(`interrupted at epoch ${r.epoch()}; resume with --output ${r.outputDir} --resume auto`);
  if (end.status === "completed") r.log(`done: ${r.outputDir}`);
  return code;
}

/** snn-coord --keygen DIR --worker-keys K: writes the key files and says what goes where. */
function keygen(dir: string, workers: number, log: (line: string) => void): number {
  const files = generateKeys(dir, workers);
  log(`wrote ${files.length} key files in ${dir}: coordinator.key (give it to the workers), coordinator.key_secret (keep it here), workers/worker-<i>.key (the allow-list) and workers/worker-<i>.key_secret (one per worker machine)`);
  log(`run: snn-coord PARAMS --external --keys ${dir}   and on each worker: snn-worker --connect tcp://HOST:5555 --server-key ${dir}/coordinator.key --key ${dir}/workers/worker-<i>.key_secret`);
  return 0;
}

/** The coordinator's CURVE settings of --keys DIR (checked before anything is written), or none with a warning under --insecure. */
function coordinatorCurve(keys: string | undefined, insecure: boolean, log: (line: string) => void): { keyPair: KeyPair; allow: AllowList } | undefined {
  if (insecure) log("WARNING: --insecure: any process that reaches the port can join as a worker, read the network and the weights, and send gradients");
  if (keys === undefined) return undefined;
  const curve = { keyPair: readKeyPair(join(keys, "coordinator.key_secret"), "--keys"), allow: new AllowList(join(keys, "workers")) };
  log(`CURVE: ${curve.allow.size} worker key(s) allowed (${join(keys, "workers")}; add a .key file there to admit another)`);
  return curve;
}

/**
 * A private directory (mode 0700, removed when the coordinator exits) for the local workers' socket and for CURVE keys
 * made for this run: the coordinator's pair and one pair per local worker, which only these workers are given (as
 * file paths, never the keys themselves), so that no other process on the machine can join or read the traffic.
 */
function localWorkerKeys(workers: number): { dir: string; curve: { keyPair: KeyPair; allow: AllowList }; workerArgs: (i: number) => string[] } {
  const dir = mkdtempSync(join(tmpdir(), "snn-coord-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const keys = join(dir, "keys");
  generateKeys(keys, workers);
  return {
    dir,
    curve: { keyPair: readKeyPair(join(keys, "coordinator.key_secret"), "local keys"), allow: new AllowList(join(keys, "workers")) },
    workerArgs: (i) => ["--server-key", join(keys, "coordinator.key"), "--key", join(keys, "workers", `worker-${i}.key_secret`)],
  };
}

/** Seconds the current update may still take after a stop signal before it is abandoned. */
const STOP_GRACE_SECONDS = 8;

/**
 * SIGINT/SIGTERM: the first stops after the current update (with checkpoint_latest), or abandons it if it has not
 * finished within STOP_GRACE_SECONDS (at once while waiting for workers: there is no update to finish); a second
 * exits at once. Installed first thing, so that no signal finds Node's default (an exit that leaves metadata.json
 * "running"); one that comes before the run is attached is acted on when it is. The caller says when training has
 * started.
 */
function handleSignals(log: (line: string) => void): {
  readonly received: boolean;
  attach(stop: () => void, abandon: (why: string) => void, markInterrupted: (why: string) => void): void;
  trainingStarted(): void;
} {
  let signals = 0;
  let first: string | null = null;
  let training = false;
  let run: { stop: () => void; abandon: (why: string) => void; markInterrupted: (why: string) => void } | null = null;
  const act = (sig: string) => {
    log(`${sig}: stopping after the current update and writing checkpoint_latest`);
    run!.stop();
    if (!training) run!.abandon(`${sig} while waiting for workers`);
    setTimeout(() => run!.abandon(`${sig}: the current update did not finish within ${STOP_GRACE_SECONDS} s; abandoned`), STOP_GRACE_SECONDS * 1000).unref();
  };
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      log(`${sig} again: exiting now (the last checkpoint is intact)`);
      try {
        run?.markInterrupted(`${sig} again: exited at once`);
      } catch (e) {
        log((e as Error).message);
      }
      process.exit(130);
    }
    first = sig;
    if (run) act(sig);
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  return {
    get received() {
      return first !== null;
    },
    attach(stop, abandon, markInterrupted) {
      run = { stop, abandon, markInterrupted };
      if (first) act(first);
    },
    trainingStarted: () => (training = true),
  };
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const expected = e instanceof ConfigError || e instanceof CheckpointError || e instanceof RunDirError || e instanceof FileWriteError || e instanceof MetricsPortError || e instanceof BindError || e instanceof UsageError || e instanceof KeyFileError;
    const diverged = e instanceof TrainingDivergedError;
    const known = expected || diverged || e instanceof NoWorkersError || e instanceof EpochFailedError;
    console.error(`snn-coord: ${known ? (e as Error).message : ((e as Error).stack ?? String(e))}`);
    process.exit(expected ? 2 : diverged ? 3 : e instanceof NoWorkersError ? 4 : e instanceof EpochFailedError ? 5 : 1);
  },
);
