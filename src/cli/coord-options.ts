/** Command line of snn-coord; kept apart from the program so that tests and deploy checks can read the flags. */
import yargs from "yargs";
import { DEFAULT_EPOCHS_PER_PASS } from "../engine/webgpu/gpu-device.js";

export const coordinatorCli = (argv: string[]) =>
  yargs(argv)
    .scriptName("snn-coord")
    .usage("$0 PARAMS.toml [options]\n$0 --inspect CHECKPOINT\n$0 --print-config PARAMS.toml [--epochs K] [--set KEY=VALUE ...]")
    .command("$0 [params]", "train a network", (y) => y.positional("params", { type: "string", describe: "parameters TOML file" }))
    .option("workers", { type: "number", default: 1, describe: "local worker processes to start (the embedded default)" })
    .option("engine", {
      choices: ["sparse-cpu", "webgpu"] as const,
      default: "sparse-cpu" as const,
      describe: `engine of the local workers: sparse-cpu, or webgpu on GPU adapter 0 (each worker then computes up to ${DEFAULT_EPOCHS_PER_PASS} epochs per pass)`,
    })
    .option("external", { type: "boolean", default: false, describe: "wait for snn-worker processes started elsewhere instead of starting local ones" })
    .option("bind", { type: "string", describe: "ZeroMQ endpoint to bind (default: ipc socket for local workers, tcp://*:5555 with --external)" })
    .option("min-workers", { type: "number", default: 1, describe: "with --external: start training once this many workers joined" })
    .option("output", { type: "string", describe: "output directory (default runs/<params name>-<timestamp>)" })
    .option("epochs", { type: "number", describe: "override simulation.epochs (the same as --set simulation.epochs=K)" })
    .option("set", {
      type: "string",
      describe: "override a parameter: a dotted key of the parameters file and a TOML value (--set hyperparameters.learning_rate=0.01); repeatable",
      coerce: (v: string | string[]) => (Array.isArray(v) ? v : [v]).map(String),
    })
    .option("resume", { type: "string", describe: "continue a run: 'auto' (latest checkpoint in --output) or a checkpoint path" })
    .option("fallback", { type: "boolean", default: false, describe: "with --resume auto: use checkpoint_best if checkpoint_latest is corrupt" })
    .option("force", { type: "boolean", default: false, describe: "start over in a directory that holds an earlier run (removes only what a run writes)" })
    .option("metrics-port", { type: "number", describe: "Prometheus /metrics port (0 = off; default 9464, or the next free port when another run holds it)" })
    .option("metrics-host", { type: "string", describe: "address the /metrics endpoints listen on (default 127.0.0.1 with local workers, 0.0.0.0 with --external)" })
    .option("worker-metrics-port", { type: "number", describe: "local workers serve /metrics on this port + index, or the next free one (0 = off; default 9465, off with --metrics-port 0)" })
    .option("wandb", { type: "boolean", describe: "log to Weights & Biases (overrides [wandb] enabled)" })
    .option("figures", { type: "boolean", default: true, describe: "render figures every accumulation interval (--no-figures to skip)" })
    .option("keys", { type: "string", describe: "with --external: CURVE with the key pair DIR/coordinator.key_secret, admitting the worker public keys in DIR/workers/*.key" })
    .option("insecure", { type: "boolean", default: false, describe: "with --external: accept unauthenticated, unencrypted workers (anyone who reaches the port can join)" })
    .option("keygen", { type: "string", describe: "write a coordinator key pair and --worker-keys worker key pairs (czmq zcert files) into DIR, then exit" })
    .option("worker-keys", { type: "number", default: 1, describe: "with --keygen: how many worker key pairs" })
    .option("inspect", { type: "string", describe: "print a checkpoint's epoch, losses and sizes, then exit" })
    .option("print-config", { type: "boolean", default: false, describe: "print the parameters with every default (and --epochs, --set) filled in, as TOML, then exit" })
    .check((a) => {
      if (!a.inspect && !a.keygen && !a.params) throw new Error("missing PARAMS (the parameters TOML file)");
      if (!Number.isInteger(a["worker-keys"]) || a["worker-keys"] < 0) throw new Error(`--worker-keys: expected a non-negative integer, got ${a["worker-keys"]}`);
      if ((a.keys !== undefined || a.insecure) && !a.external) throw new Error("--keys and --insecure apply to --external (local workers talk over a private socket)");
      if (a.keys !== undefined && a.insecure) throw new Error("--keys and --insecure contradict each other");
      if (a.external && a.keys === undefined && !a.insecure)
        throw new Error("--external needs --keys DIR (CURVE: snn-coord --keygen DIR writes them), or --insecure to accept any process that reaches the port");
      if (!Number.isInteger(a.workers) || a.workers < 1) throw new Error(`--workers: expected a positive integer, got ${a.workers}`);
      if (!Number.isInteger(a["min-workers"]) || a["min-workers"] < 1) throw new Error(`--min-workers: expected a positive integer, got ${a["min-workers"]}`);
      if (a.epochs !== undefined && (!Number.isInteger(a.epochs) || a.epochs < 1)) throw new Error(`--epochs: expected a positive integer, got ${a.epochs}`);
      // Local workers take the worker port + index: the last one must be a port too.
      for (const [flag, last] of [["metrics-port", 0], ["worker-metrics-port", a.workers - 1]] as const) {
        const port = a[flag];
        if (port !== undefined && (!Number.isInteger(port) || port < 0 || (port > 0 && port + last > 65535)))
          throw new Error(`--${flag}: expected a port, 0-${65535 - last} (0 = off), got ${port}`);
      }
      if (a.resume !== undefined && a.force) throw new Error("--resume and --force contradict each other");
      if (a.resume !== undefined && !a.output && a.resume === "auto") throw new Error("--resume auto needs --output DIR (the run to continue)");
      return true;
    })
    .strict()
    .help();
