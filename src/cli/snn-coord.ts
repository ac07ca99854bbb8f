#!/usr/bin/env node
/**
 * snn-coord PARAMS [--workers N | --external --bind tcp://*:5555 [--min-workers M]] [--output DIR] [--resume [auto|PATH]]
 * The coordinator: owns the training state, spreads epochs over workers, reduces, steps Adam, logs and checkpoints.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { hideBin } from "yargs/helpers";
import { coordinatorCli } from "./coord-options.js";
import { ConfigError } from "../model/config.js";
import { CheckpointError, checkpointSummary } from "../io/checkpoint.js";
import { CheckpointWriter } from "../io/checkpoint-writer.js";
import { RunDirError } from "../io/run-dir.js";
import { EpochFailedError, InterruptedError, NoWorkersError, WorkerPool } from "../distributed/worker-pool.js";
import { openRunDirectory, setUpRun } from "../training/run-setup.js";
import { Trainer, TrainingDivergedError } from "../training/trainer.js";
import { startBanner } from "../report/console.js";
import { startCoordinatorReports } from "../report/coordinator-reports.js";
import { figureTargets } from "../report/figures/network-view.js";

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

  // Everything that can be refused (parameters, files, checkpoint) is checked before the run directory is touched.
  const run = setUpRun({ params: String(args.params), epochs: args.epochs, output: args.output, resume: args.resume, fallback: args.fallback }, log);
  const { config, spec, state, outputDir } = run;
  const external = args.external;
  const { csv, metadata } = openRunDirectory(run, { force: args.force, workers: external ? `external (min ${args["min-workers"]})` : args.workers });
  const reports = await startCoordinatorReports(run, { wandb: args.wandb ?? config.wandb.enabled, figures: args.figures, metricsPort: args["metrics-port"], csvPath: csv.path, log });
  const { metrics, progress } = reports;
  const runId = `${basename(outputDir)}-${state.wandbRunId}`;
  const pool = new WorkerPool(spec, runId, {
    heartbeatInterval: config.distributed.heartbeat_interval,
    workerTimeout: config.distributed.worker_timeout,
    noWorkerTimeout: config.distributed.no_worker_timeout,
    events: reports.poolEvents((worker, engine) => metadata.workerJoined(worker, engine)),
  });
  const checkpoints = new CheckpointWriter(run.identity, (seconds, kind) => metrics.checkpointWritten(seconds, kind));
  const trainer = new Trainer({ config, spec, checkpoints, outputDir, pool, runId, totalEpochs: run.totalEpochs, observers: reports.observers, teacherWeights: run.teacher }, state);
  const signals = handleSignals(log, () => trainer.requestStop(), (why) => pool.interrupt(why));

  try {
    const endpoint = args.bind ?? (external ? "tcp://*:5555" : `ipc://${join(ipcDir(), "coordinator.ipc")}`);
    const bound = await pool.bind(endpoint);
    if (external) log(`listening on ${bound}; waiting for ${args["min-workers"]} worker(s)`);
    else pool.spawnLocal(args.workers, args["worker-metrics-port"]);
    await pool.waitForWorkers(external ? args["min-workers"] : args.workers, config.distributed.no_worker_timeout);
    signals.trainingStarted();
    progress.print(startBanner(state.epoch, { names: config.recurrent.names, rates: figureTargets(config, spec).firingRate, cv: config.targets.cvs }));
    const outcome = await trainer.run(csv);
    await checkpoints.close();
    const interrupted = outcome.kind === "interrupted";
    await pool.close(interrupted ? "training interrupted" : "training completed");
    await reports.close(interrupted ? 130 : 0);
    metadata.finish(interrupted ? "interrupted" : "completed", undefined, outcome.kind === "stopped-early" ? outcome.message : undefined);
    if (outcome.kind === "stopped-early") log(outcome.message);
    log(interrupted ? `interrupted at epoch ${state.epoch}; resume with --output ${outputDir} --resume auto` : `done: ${outputDir}`);
    return interrupted ? 130 : 0;
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
    if (interrupted) {
      metadata.finish("interrupted", undefined, (e as Error).message);
      await pool.close("training interrupted");
      await reports.close(130);
      log(`interrupted at epoch ${state.epoch}; resume with --output ${outputDir} --resume auto`);
      return 130;
    }
    // A full disk may fail this write too: the original error is the one to report.
    try {
      metadata.finish("failed", (e as Error).message);
    } catch (w) {
      log((w as Error).message);
    }
    await pool.close("coordinator failed");
    await reports.close(1);
    throw e;
  }
}

/** A private directory (mode 0700) for the local workers' socket, removed when the coordinator exits. */
function ipcDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "snn-coord-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Seconds the current update may still take after a stop signal before it is abandoned. */
const STOP_GRACE_SECONDS = 8;

/**
 * SIGINT/SIGTERM: the first stops after the current update (with checkpoint_latest), or abandons it if it has not
 * finished within STOP_GRACE_SECONDS (at once while waiting for workers: there is no update to finish); a second
 * exits at once. The caller says when training has started.
 */
function handleSignals(log: (line: string) => void, stop: () => void, abandon: (why: string) => void): { trainingStarted(): void } {
  let signals = 0;
  let training = false;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      log(`${sig} again: exiting now (the last checkpoint is intact)`);
      process.exit(130);
    }
    log(`${sig}: stopping after the current update and writing checkpoint_latest`);
    stop();
    if (!training) abandon(`${sig} while waiting for workers`);
    setTimeout(() => abandon(`${sig}: the current update did not finish within ${STOP_GRACE_SECONDS} s; abandoned`), STOP_GRACE_SECONDS * 1000).unref();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  return { trainingStarted: () => (training = true) };
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const expected = e instanceof ConfigError || e instanceof CheckpointError || e instanceof RunDirError || e instanceof UsageError;
    const diverged = e instanceof TrainingDivergedError;
    const known = expected || diverged || e instanceof NoWorkersError || e instanceof EpochFailedError;
    console.error(`snn-coord: ${known ? (e as Error).message : ((e as Error).stack ?? String(e))}`);
    process.exit(expected ? 2 : diverged ? 3 : e instanceof NoWorkersError ? 4 : e instanceof EpochFailedError ? 5 : 1);
  },
);
