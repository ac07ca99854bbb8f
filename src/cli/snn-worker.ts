#!/usr/bin/env node
/**
 * snn-worker --connect tcp://HOST:5555 [--gpu 0 | --cpu]: joins a coordinator and computes epochs until told to stop.
 */
import { hideBin } from "yargs/helpers";
import { workerCli } from "./worker-options.js";
import { ThreadedEngine } from "../engine/threaded-engine.js";
import { WorkerProcess } from "../distributed/worker.js";
import { WorkerMetrics } from "../report/worker-metrics.js";
import { packageVersion } from "../io/run-dir.js";
import { MetricsPortError } from "../platform/metrics-server.js";
import { KeyFileError, readKeyPair, readPublicKey } from "../distributed/curve-auth.js";

async function main(): Promise<number> {
  const args = await workerCli(hideBin(process.argv))
    .fail((message, error) => {
      throw new UsageError(message ?? error.message);
    })
    .parseAsync();
  const gpu = args.gpu;
  // tfjs is loaded only for GPU workers (CPU workers start faster without it), and before joining, so that a missing
  // GPU package is one clear error at start-up.
  const tfjs = gpu !== undefined ? await import("../engine/tfjs/tfjs-engine.js") : null;
  if (tfjs && gpu !== undefined) await tfjs.loadGpuBackend(gpu);
  const engineName = gpu !== undefined ? "tfjs-gpu" : "sparse-cpu";
  const curve = args.key ? { serverKey: readPublicKey(args["server-key"]!, "--server-key"), keyPair: readKeyPair(args.key, "--key") } : undefined;
  const worker = new WorkerProcess({
    endpoint: args.connect,
    engineName,
    threads: args.threads,
    coordinatorTimeout: args.timeout,
    heartbeatInterval: args.heartbeat,
    createEngine: async (spec) => (tfjs && gpu !== undefined ? tfjs.createTfjsEngine(spec, { gpu }) : new ThreadedEngine(spec, args.threads)),
    onEpoch: (durationSeconds, trialSteps) => metrics?.epochComputed({ durationSeconds, trialSteps }),
    curve,
  });
  const metrics = args["metrics-port"] ? new WorkerMetrics({ version: packageVersion(), engine: engineName, workerId: worker.id }) : null;
  const host = args["metrics-host"];
  if (metrics) worker.metricsPort = args["metrics-port-search"] ? await metrics.serveFirstFree(args["metrics-port"], 100, host) : await metrics.serve(args["metrics-port"], host);
  const stop = () => worker.close();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // A local worker (spawned by snn-coord with an IPC channel) ends with its coordinator, however that ended.
  if (process.send) process.on("disconnect", stop);
  try {
    return await worker.run();
  } finally {
    await metrics?.close();
  }
}

/** A bad command line: one line naming the problem, exit code 2. */
class UsageError extends Error {}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`snn-worker: ${(e as Error).message}`);
    process.exit(e instanceof UsageError || e instanceof MetricsPortError || e instanceof KeyFileError ? 2 : 1);
  },
);
