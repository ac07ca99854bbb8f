#!/usr/bin/env node
/**
 * snn-worker --connect tcp://HOST:5555 [--gpu N | --cpu] [--engine sparse-cpu|webgpu|tfjs]: joins a coordinator and
 * computes epochs until told to stop. snn-worker --list-gpus prints the WebGPU adapters.
 */
import { hideBin } from "yargs/helpers";
import { workerCli, workerEngine } from "./worker-options.js";
import { ThreadedEngine } from "../engine/threaded-engine.js";
import { WorkerProcess } from "../distributed/worker.js";
import { WorkerMetrics } from "../report/worker-metrics.js";
import { packageVersion } from "../io/run-dir.js";
import { MetricsPortError } from "../platform/metrics-server.js";
import { KeyFileError, readKeyPair, readPublicKey } from "../distributed/curve-auth.js";
import { Engine } from "../engine/engine.js";
import { NetworkSpec } from "../model/network.js";
import { availableAdapters, DEFAULT_EPOCHS_PER_PASS, GpuUnavailableError, openDevice } from "../engine/webgpu/gpu-device.js";

async function main(): Promise<number> {
  const args = await workerCli(hideBin(process.argv))
    .fail((message, error) => {
      throw new UsageError(message ?? error.message);
    })
    .parseAsync();
  if (args["list-gpus"]) {
    const adapters = await availableAdapters();
    for (const a of adapters) console.log(`${a.index}: ${a.name} (${a.backend})`);
    return 0;
  }
  const engineName = workerEngine(args);
  const gpu = args.gpu;
  const threads = args.threads ?? (engineName === "webgpu" ? DEFAULT_EPOCHS_PER_PASS : 1);
  const createEngine = await engineFactory(engineName, gpu, threads);
  const curve = args.key ? { serverKey: readPublicKey(args["server-key"]!, "--server-key"), keyPair: readKeyPair(args.key, "--key") } : undefined;
  const worker = new WorkerProcess({
    endpoint: args.connect!,
    engineName: engineName === "tfjs" && gpu !== undefined ? "tfjs-gpu" : engineName,
    threads,
    coordinatorTimeout: args.timeout,
    heartbeatInterval: args.heartbeat,
    createEngine,
    onEpoch: (durationSeconds, trialSteps) => metrics?.epochComputed({ durationSeconds, trialSteps }),
    curve,
  });
  const metrics = args["metrics-port"] ? new WorkerMetrics({ version: packageVersion(), engine: engineName, workerId: worker.id }) : null;
  const host = args["metrics-host"];
  if (metrics) worker.metricsPort = args["metrics-port-search"] ? await metrics.serveFirstFree(args["metrics-port"], 100, host) : await metrics.serve(args["metrics-port"], host);
  // Told to stop, the worker tells the coordinator, which takes back its epochs at once; a second signal stops it at once.
  const stop = (signal: NodeJS.Signals) => worker.leave(`stopped by ${signal}`);
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // A local worker (spawned by snn-coord with an IPC channel) ends with its coordinator, however that ended.
  if (process.send) process.on("disconnect", () => worker.close());
  try {
    return await worker.run();
  } finally {
    await metrics?.close();
  }
}

/**
 * How this worker builds its engine for each network. The GPU is checked before joining, so that a missing adapter
 * or package is one clear error at start-up; tfjs is loaded only for tfjs workers (others start faster without it).
 */
async function engineFactory(engine: "sparse-cpu" | "webgpu" | "tfjs", gpu: number | undefined, threads: number): Promise<(spec: NetworkSpec) => Promise<Engine>> {
  if (engine === "webgpu") {
    const { WebGpuEngine } = await import("../engine/webgpu/webgpu-engine.js");
    (await openDevice(gpu ?? 0)).device.destroy();
    return (spec) => WebGpuEngine.create(spec, { gpu, epochsPerPass: threads });
  }
  if (engine === "tfjs") {
    const tfjs = await import("../engine/tfjs/tfjs-engine.js");
    if (gpu !== undefined) await tfjs.loadGpuBackend(gpu);
    return (spec) => tfjs.createTfjsEngine(spec, { gpu });
  }
  return async (spec) => new ThreadedEngine(spec, threads);
}

/** A bad command line: one line naming the problem, exit code 2. */
class UsageError extends Error {}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`snn-worker: ${(e as Error).message}`);
    process.exit(e instanceof UsageError || e instanceof MetricsPortError || e instanceof KeyFileError || e instanceof GpuUnavailableError ? 2 : 1);
  },
);
