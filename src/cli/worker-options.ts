/** Command line of snn-worker; kept apart from the program so that tests and deploy checks can read the flags. */
import yargs from "yargs";
import { DEFAULT_EPOCHS_PER_PASS } from "../engine/webgpu/gpu-device.js";

export const workerCli = (argv: string[]) =>
  yargs(argv)
    .scriptName("snn-worker")
    .usage("$0 --connect tcp://HOST:5555 [--gpu N | --cpu] [--engine sparse-cpu|webgpu|tfjs]\n$0 --list-gpus")
    .option("connect", { type: "string", describe: "coordinator endpoint (tcp://host:port or ipc://path)" })
    .option("engine", {
      choices: ["sparse-cpu", "webgpu", "tfjs"] as const,
      describe: "engine: sparse-cpu (default), webgpu (the default with --gpu) or tfjs (dense; with --gpu needs @tensorflow/tfjs-node-gpu and CUDA 11)",
    })
    .option("gpu", { type: "number", describe: "GPU adapter index (see --list-gpus): runs the webgpu engine there, or with --engine tfjs the tfjs engine" })
    .option("cpu", { type: "boolean", describe: "run the sparse-cpu engine (the default)" })
    .option("list-gpus", { type: "boolean", default: false, describe: "print the WebGPU adapters (index, backend, name) and exit" })
    .option("threads", {
      type: "number",
      describe: `epochs computed at once: sparse-cpu one per thread (default 1; use one per core), webgpu epochs per GPU pass (default ${DEFAULT_EPOCHS_PER_PASS})`,
    })
    .option("timeout", { type: "number", default: 120, describe: "seconds without word from the coordinator before exiting" })
    .option("metrics-port", { type: "number", default: 9465, describe: "Prometheus /metrics port of this worker (0 = off)" })
    .option("metrics-host", { type: "string", default: "0.0.0.0", describe: "address this worker's /metrics listens on (snn-coord's local workers: 127.0.0.1)" })
    .option("metrics-port-search", { type: "boolean", default: false, describe: "when --metrics-port is taken, serve on the next free port (snn-coord's local workers)" })
    .option("heartbeat", { type: "number", default: 2, describe: "seconds between heartbeats" })
    .option("server-key", { type: "string", describe: "CURVE: the coordinator's public key file (DIR/coordinator.key of snn-coord --keygen DIR)" })
    .option("key", { type: "string", describe: "CURVE: this worker's secret key file (DIR/workers/worker-<i>.key_secret)" })
    .conflicts("gpu", "cpu")
    .check((a) => {
      if (a["list-gpus"]) return true;
      if (a.connect === undefined) throw new Error("--connect is required (or --list-gpus)");
      if (!/^(tcp|ipc):\/\/.+/.test(a.connect)) throw new Error(`--connect: expected tcp://HOST:PORT or ipc://PATH, got "${a.connect}"`);
      if (a.cpu && a.engine !== undefined && a.engine !== "sparse-cpu") throw new Error(`--cpu runs sparse-cpu; it contradicts --engine ${a.engine}`);
      if (a.engine === "sparse-cpu" && a.gpu !== undefined) throw new Error("--gpu selects a GPU for the webgpu or tfjs engine, not sparse-cpu");
      if (a.gpu !== undefined && (!Number.isInteger(a.gpu) || a.gpu < 0)) throw new Error(`--gpu: expected a GPU index (0, 1, …), got ${a.gpu}`);
      if (!Number.isInteger(a["metrics-port"]) || a["metrics-port"] < 0 || a["metrics-port"] > 65535) throw new Error(`--metrics-port: expected 0-65535, got ${a["metrics-port"]}`);
      if (a.threads !== undefined && (!Number.isInteger(a.threads) || a.threads < 1)) throw new Error(`--threads: expected a positive integer, got ${a.threads}`);
      if (a.engine === "tfjs" && a.threads !== undefined && a.threads !== 1) throw new Error("--threads: the tfjs engine computes one epoch at a time");
      if (!(a.timeout > 0) || !(a.heartbeat > 0)) throw new Error("--timeout and --heartbeat must be positive");
      if ((a["server-key"] === undefined) !== (a.key === undefined)) throw new Error("--server-key and --key go together (CURVE needs the coordinator's public key and this worker's secret key)");
      return true;
    })
    .strict()
    .help();

/** The engine a parsed command line selects: --engine, else webgpu with --gpu, else sparse-cpu. */
export function workerEngine(a: { engine?: "sparse-cpu" | "webgpu" | "tfjs"; gpu?: number }): "sparse-cpu" | "webgpu" | "tfjs" {
  return a.engine ?? (a.gpu !== undefined ? "webgpu" : "sparse-cpu");
}
