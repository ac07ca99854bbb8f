#!/usr/bin/env node
/**
 * snn-coord PARAMS [--workers N | --external --bind tcp://*:5555 [--min-workers M]] [--output DIR] [--resume [auto|PATH]]
 * The coordinator: owns the training state, spreads epochs over workers, reduces, steps Adam, logs and checkpoints.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { hideBin } from "yargs/helpers";
import { coordinatorCli } from "./coord-options.js";
import { checkTrainingLength, ConfigError } from "../model/config.js";
import { loadConfig } from "../io/parameters-file.js";
import { generateConnectome } from "../model/connectome.js";
import { LOSS_TERM_NAMES, LossTerms } from "../model/losses.js";
import { loadNetworkSpec } from "../io/network-files.js";
import { CheckpointError, CheckpointIdentity, checkpointPaths, initialTrainingState, readCheckpoint, TrainingState } from "../io/checkpoint.js";
import { CheckpointWriter } from "../io/checkpoint-writer.js";
import { checkpointIdentity } from "../io/identity.js";
import { Progress, startBanner } from "../report/console.js";
import { CoordinatorMetrics } from "../report/metrics.js";
import { FigureQueue } from "../report/figures/queue.js";
import { UpdateReporter } from "../report/update-report.js";
import { figureTargets, networkView } from "../report/figures/network-view.js";
import { WandbLogger } from "../report/wandb.js";
import { MetadataFile, metricsColumns, MetricsCsv, metricsRow, packageVersion, prepareOutputDir, RunDirError, UpdateRecord, writeParameters } from "../io/run-dir.js";
import { studentInitialWeights, teacherWeights } from "../training/student.js";
import { Trainer, TrainingDivergedError, TrainingObservers } from "../training/trainer.js";
import { NoWorkersError, WorkerPool } from "../distributed/worker-pool.js";



class UsageError extends Error {}

/** The loss terms a run reports: the van Rossum term only where it is on, so that other runs' series stay as they were. */
function reportedLosses(losses: LossTerms, vanRossum: boolean): Record<string, number> {
  return Object.fromEntries(LOSS_TERM_NAMES.filter((k) => vanRossum || k !== "van_rossum").map((k) => [k, losses[k]]));
}

/** The scalars of one update under the original's W&B keys (teacher and per-neuron target ones as in metrics.csv). */
function wandbScalars(r: UpdateRecord, vanRossum: boolean): Record<string, number> {
  const out: Record<string, number> = {
    "optimizer/step": r.step,
    "optimizer/grad_norm": r.gradNorm,
    "optimizer/learning_rate": r.learningRate,
    "optimizer/skipped_updates": r.skippedUpdates,
  };
  for (const [k, v] of Object.entries(reportedLosses(r.losses, vanRossum))) out[`loss/${k}`] = v;
  const row = metricsRow(r);
  for (const key of Object.keys(row)) if (/^(firing_rate|cv|fraction_active|membrane_ratio|teacher|targets)\//.test(key)) out[key] = row[key];
  return out;
}

function resolveResume(resume: string, outputDir: string, fallback: boolean, log: (s: string) => void, id: CheckpointIdentity, A: number) {
  if (resume !== "auto" && resume !== "") return readCheckpoint(resume, id, A);
  const { latest, best } = checkpointPaths(outputDir);
  try {
    return readCheckpoint(latest, id, A);
  } catch (e) {
    if (!(e instanceof CheckpointError) || !fallback || !existsSync(best)) throw e;
    log(`warning: ${(e as Error).message}`);
    log(`falling back to ${best} (--fallback)`);
    return readCheckpoint(best, id, A);
  }
}

async function main(): Promise<number> {
  const args = await coordinatorCli(hideBin(process.argv))
    .fail((message, error) => {
      throw new UsageError(message ?? error.message);
    })
    .parseAsync();
  const log = (s: string) => console.error(`[snn-coord] ${s}`);

  if (args.inspect) {
    const info = readCheckpoint(args.inspect, null, null);
    const s = info.state;
    console.log(
      JSON.stringify(
        {
          file: args.inspect,
          epoch: s.epoch,
          step: s.adam.step,
          best_loss: s.bestLoss,
          losses: s.losses,
          recurrent_synapses: s.recWeight.length,
          feedforward_synapses: s.ffWeight.length,
          streams: s.streams.length,
          streams_started: s.streams.filter(Boolean).length,
          format_version: info.metadata.format_version,
          file_bytes: info.fileBytes,
          // As stored: the stream states count at their compressed size, given decoded alongside.
          tensor_bytes: info.storedTensorBytes,
          stream_state_bytes: info.streamStateBytes,
          network_hash: info.metadata.network_hash,
          created: info.metadata.created,
        },
        null,
        2,
      ),
    );
    return 0;
  }

  const paramsFile = String(args.params);
  const { config, text } = loadConfig(paramsFile);
  const A = config.simulation.accumulation_interval;
  const totalEpochs = args.epochs ?? config.simulation.epochs;
  if (totalEpochs % A !== 0) throw new ConfigError(`--epochs: must be a multiple of simulation.accumulation_interval (${A}), got ${totalEpochs}`);
  if (args.epochs !== undefined) checkTrainingLength(config.simulation, config.hyperparameters, totalEpochs, "--epochs");
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const outputDir = resolve(args.output ?? join("runs", `${basename(paramsFile, ".toml")}-${stamp}`));

  const connectome = generateConnectome(config);
  const spec = loadNetworkSpec(config, connectome);
  const identity = checkpointIdentity(config, spec);
  const teacher = teacherWeights(config, connectome);
  const vanRossum = spec.teacherRecWeight !== undefined;

  let state: TrainingState;
  const resuming = args.resume !== undefined;
  if (resuming) {
    state = resolveResume(args.resume!, outputDir, args.fallback, log, identity, A).state;
    log(`resuming from epoch ${state.epoch} (step ${state.adam.step})`);
    if (state.epoch > totalEpochs) throw new UsageError(`the checkpoint is at epoch ${state.epoch}, beyond the requested ${totalEpochs} epochs`);
  } else {
    const wandbRunId = randomUUID().replace(/-/g, "").slice(0, 8);
    state = initialTrainingState(studentInitialWeights(config, connectome, teacher), A, config.hyperparameters.parameterisation, wandbRunId);
  }

  prepareOutputDir(outputDir, resuming ? "resume" : args.force ? "force" : "new");
  if (!resuming) writeParameters(outputDir, text);
  const csv = new MetricsCsv(outputDir, metricsColumns(config.recurrent.names, { vanRossum, teacher: teacher !== null, perNeuronTargets: config.targets.file !== undefined }));
  csv.open(resuming ? state.epoch : null);
  const external = args.external;
  const metadata = new MetadataFile(outputDir, {
    command: process.argv.slice(1).join(" "),
    engine: null,
    workers: external ? `external (min ${args["min-workers"]})` : args.workers,
    parameters_file: resolve(paramsFile),
    output_dir: outputDir,
    ...(resuming ? { resumed_from_epoch: state.epoch } : {}),
  });

  const runId = `${basename(outputDir)}-${state.wandbRunId}`;
  // The engine label says "none" until the first worker joins and sets the run's engine.
  const metrics = new CoordinatorMetrics({ version: packageVersion(), engine: "none" });
  const metricsPort = await metrics.serve(args["metrics-port"]);
  if (metricsPort) log(`Prometheus metrics on http://0.0.0.0:${metricsPort}/metrics`);
  const pool = new WorkerPool(spec, runId, {
    heartbeatInterval: config.distributed.heartbeat_interval,
    workerTimeout: config.distributed.worker_timeout,
    noWorkerTimeout: config.distributed.no_worker_timeout,
    events: {
      log,
      workersChanged: (n) => metrics.setWorkersConnected(n),
      workerJoined: (worker, engine) => {
        metadata.workerJoined(worker, engine);
        metrics.setEngine(engine);
      },
      workerFailed: (reason) => metrics.workerFailure(reason),
      bytes: (sent, received) => {
        if (sent) metrics.bytesSent(sent);
        if (received) metrics.bytesReceived(received);
      },
      epochsInFlight: (n) => metrics.setEpochsInFlight(n),
      broadcast: (seconds) => metrics.observeBroadcast(seconds),
    },
  });
  const progress = new Progress(state.epoch, totalEpochs);
  const typeTargetRates = figureTargets(config, spec).firingRate;
  const targets = config.recurrent.names.map((cellType, k) => ({ cellType, rate: typeTargetRates[k], cv: config.targets.cvs, ratio: config.targets.threshold_ratio[k] }));
  const wandbEnabled = args.wandb ?? config.wandb.enabled;
  const wandb = wandbEnabled
    ? await WandbLogger.start({
        outputDir,
        project: config.wandb.project,
        entity: config.wandb.entity || undefined,
        name: config.wandb.name || basename(outputDir),
        // Online only with an API key: without one the offline copy is the run (upload it later with snn-wandb-sync).
        mode: config.wandb.mode === "online" && !process.env.WANDB_API_KEY ? "offline" : config.wandb.mode,
        config: parseToml(text) as Record<string, unknown>,
        runId: state.wandbRunId,
        resumeStep: resuming ? state.epoch + 1 : undefined,
      })
    : null;
  const figures =
    config.plotting.enabled && args.figures
      ? new FigureQueue(
          (epoch, dir, paths) => {
            progress.print(`  Saved plots to ${dir}`);
            // epoch_0000 is rendered after step 5 is logged, and W&B steps only go forward: it stays on disk only.
            if (epoch > 0) wandb?.logImages(epoch, paths.map((path) => ({ key: `plots/${basename(path, ".png")}`, path })));
          },
          (epoch, message) => log(`figures of epoch ${epoch} failed: ${message}`),
        )
      : null;
  const reporter = new UpdateReporter({
    config,
    spec,
    totalEpochs,
    outputDir,
    progress,
    figures: figures ? { queue: figures, network: networkView(config, connectome) } : null,
    onUpdate: (r) => {
      metrics.recordUpdate({
        epoch: r.epoch,
        step: r.step,
        losses: reportedLosses(r.losses, vanRossum),
        stats: r.stats,
        targets,
        teacher: r.teacher,
        outcome: r.outcome,
        learningRate: r.learningRate,
      });
      wandb?.log(r.epoch, wandbScalars(r, vanRossum));
    },
  });
  if (resuming) reporter.loadHistory(MetricsCsv.read(csv.path));
  const observers: TrainingObservers = {
    report: (r) => reporter.report(r),
    figures: figures !== null,
    progress: (epoch) => progress.update(epoch),
    epochCompleted: (seconds, simulated) => metrics.epochCompleted(seconds, simulated),
    phase: (phase, seconds) => (phase === "reduce" ? metrics.observeReduce(seconds) : metrics.observeAdam(seconds)),
  };
  const checkpoints = new CheckpointWriter(identity, (seconds, kind) => metrics.checkpointWritten(seconds, kind));
  const trainer = new Trainer(
    {
      config,
      spec,
      checkpoints,
      outputDir,
      pool,
      runId,
      totalEpochs,
      observers,
      teacherWeights: teacher,
    },
    state,
  );

  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      log(`${sig} again: exiting now (the last checkpoint is intact)`);
      process.exit(130);
    }
    log(`${sig}: stopping after the current update and writing checkpoint_latest`);
    trainer.requestStop();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  try {
    const endpoint = args.bind ?? (external ? "tcp://*:5555" : `ipc://${join(tmpdir(), `snn-coord-${process.pid}.ipc`)}`);
    const bound = await pool.bind(endpoint);
    if (external) log(`listening on ${bound}; waiting for ${args["min-workers"]} worker(s)`);
    else pool.spawnLocal(args.workers, args["worker-metrics-port"]);
    await pool.waitForWorkers(external ? args["min-workers"] : args.workers, config.distributed.no_worker_timeout);
    progress.print(startBanner(state.epoch, { names: config.recurrent.names, rates: typeTargetRates, cv: config.targets.cvs }));
    const outcome = await trainer.run(csv);
    await checkpoints.close();
    progress.end();
    const interrupted = outcome.kind === "interrupted";
    await pool.close(interrupted ? "training interrupted" : "training completed");
    await figures?.close();
    await wandb?.finish(interrupted ? 130 : 0);
    await metrics.close();
    metadata.finish(interrupted ? "interrupted" : "completed", undefined, outcome.kind === "stopped-early" ? outcome.message : undefined);
    if (outcome.kind === "stopped-early") log(outcome.message);
    log(interrupted ? `interrupted at epoch ${state.epoch}; resume with --output ${outputDir} --resume auto` : `done: ${outputDir}`);
    return interrupted ? 130 : 0;
  } catch (e) {
    progress.end();
    // Whatever failed, the checkpoints already queued (and, without workers, the current state) reach the disk.
    try {
      if (e instanceof NoWorkersError) {
        log(`${e.message}; writing checkpoint_latest and stopping`);
        trainer.saveLatest();
      }
      await checkpoints.close();
    } catch (w) {
      if (w !== e) log((w as Error).message);
    }
    metadata.finish("failed", (e as Error).message);
    await pool.close("coordinator failed");
    await figures?.close();
    await wandb?.finish(1);
    await metrics.close();
    throw e;
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const expected = e instanceof ConfigError || e instanceof CheckpointError || e instanceof RunDirError || e instanceof UsageError;
    const diverged = e instanceof TrainingDivergedError;
    console.error(`snn-coord: ${expected || diverged ? (e as Error).message : ((e as Error).stack ?? String(e))}`);
    process.exit(expected ? 2 : diverged ? 3 : e instanceof NoWorkersError ? 4 : 1);
  },
);
