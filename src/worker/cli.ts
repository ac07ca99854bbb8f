#!/usr/bin/env node
/**
 * snn-worker --connect tcp://HOST:5555 [--gpu 0 | --cpu]: joins a coordinator and computes epochs until told to stop.
 */
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { SparseCpuEngine } from "./sparse-cpu.js";
import { WorkerProcess } from "./worker.js";

export const workerCli = (argv: string[]) =>
  yargs(argv)
    .scriptName("snn-worker")
    .usage("$0 --connect tcp://HOST:5555 [--gpu 0 | --cpu]")
    .option("connect", { type: "string", demandOption: true, describe: "coordinator endpoint (tcp://host:port or ipc://path)" })
    .option("gpu", { type: "number", describe: "run the tfjs engine on this GPU (needs @tensorflow/tfjs-node-gpu)" })
    .option("cpu", { type: "boolean", default: false, describe: "run the sparse-cpu engine (the default)" })
    .option("timeout", { type: "number", default: 120, describe: "seconds without word from the coordinator before exiting" })
    .option("heartbeat", { type: "number", default: 2, describe: "seconds between heartbeats" })
    .conflicts("gpu", "cpu")
    .check((a) => {
      if (!/^(tcp|ipc):\/\/.+/.test(a.connect)) throw new Error(`--connect: expected tcp://HOST:PORT or ipc://PATH, got "${a.connect}"`);
      if (a.gpu !== undefined && (!Number.isInteger(a.gpu) || a.gpu < 0)) throw new Error(`--gpu: expected a GPU index (0, 1, …), got ${a.gpu}`);
      if (!(a.timeout > 0) || !(a.heartbeat > 0)) throw new Error("--timeout and --heartbeat must be positive");
      return true;
    })
    .strict()
    .help();

async function main(): Promise<number> {
  const args = await workerCli(hideBin(process.argv)).parseAsync();
  const gpu = args.gpu;
  if (gpu !== undefined) process.env.CUDA_VISIBLE_DEVICES = String(gpu);
  const worker = new WorkerProcess({
    endpoint: args.connect,
    engineName: gpu !== undefined ? "tfjs-gpu" : "sparse-cpu",
    threads: 1,
    coordinatorTimeout: args.timeout,
    heartbeatInterval: args.heartbeat,
    // tfjs is loaded only for GPU workers: CPU workers start faster without it.
    createEngine: async (spec) => (gpu !== undefined ? (await import("./tfjs-engine.js")).createTfjsEngine(spec, { gpu }) : new SparseCpuEngine(spec)),
  });
  const stop = () => worker.close();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  return worker.run();
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`snn-worker: ${(e as Error).message}`);
    process.exit(1);
  },
);
