/** Command-line options of snn-sim. */
import yargs from "yargs";

export function simCli(argv: string[]) {
  return yargs(argv)
    .scriptName("snn-sim")
    .usage("$0 PARAMS.toml [--epochs K] [--checkpoint FILE] [--teacher] [--export FILE] [--export-targets FILE] [--export-teacher FILE] [--figures DIR] [--engine sparse-cpu|webgpu]")
    .command("$0 <params>", "simulate the network", (y) => y.positional("params", { type: "string", demandOption: true }))
    .option("epochs", { type: "number", default: 10, describe: "epochs to simulate, one stream carried from rest" })
    .option("checkpoint", { type: "string", describe: "use the weights of this checkpoint instead of the initial ones" })
    .option("teacher", {
      type: "boolean",
      default: false,
      describe: "simulate the teacher: the generated (or --checkpoint) weights, ignoring [student], [targets] file and the van Rossum loss",
    })
    .option("export", { type: "string", describe: "write the last epoch (inputs, state, spikes, voltages, gradients) as safetensors" })
    .option("export-targets", {
      type: "string",
      describe: "write per-neuron rates, CVs and membrane ratios (first epoch dropped as warm-up) and the weights as a targets file",
    })
    .option("export-teacher", {
      type: "string",
      describe:
        "with --teacher: record the teacher's input and output spike trains of accumulation_interval streams × --epochs epochs (bit-packed safetensors) for [targets] teacher_spikes",
    })
    .option("export-connectome", {
      type: "string",
      describe:
        "write the network (recurrent.csv, feedforward.csv, neurons.csv, inputs.csv, and all in one connectome.safetensors and connectome.npz) into this directory and exit; [recurrent] connectome_file, neurons_file and [feedforward] connectome_file, inputs_file pointed at them load it bit-identically",
    })
    .option("figures", { type: "string", describe: "render the figure set of the last epoch into this directory" })
    .option("engine", {
      choices: ["sparse-cpu", "webgpu"] as const,
      default: "sparse-cpu" as const,
      describe: "engine that simulates (so that one epoch can be exported from each and compared)",
    })
    .option("gpu", { type: "number", default: 0, describe: "with --engine webgpu: the adapter (snn-worker --list-gpus)" })
    .check((a) => {
      if (!Number.isInteger(a.epochs) || a.epochs < 1) throw new Error(`--epochs: expected a positive integer, got ${a.epochs}`);
      if (a["export-targets"] !== undefined && a.epochs < 2)
        throw new Error(`--export-targets: needs --epochs ≥ 2 (the first epoch is dropped as warm-up), got ${a.epochs}`);
      if (a["export-teacher"] !== undefined && a.engine !== "sparse-cpu") throw new Error("--export-teacher: records with the sparse-cpu engine");
      if (!Number.isInteger(a.gpu) || a.gpu < 0) throw new Error(`--gpu: expected an adapter index (0, 1, …), got ${a.gpu}`);
      if (a["export-teacher"] !== undefined && !a.teacher) throw new Error("--export-teacher: records the teacher; add --teacher (with --checkpoint for a trained teacher)");
      if (a["export-teacher"] !== undefined && (a.export !== undefined || a["export-targets"] !== undefined || a.figures !== undefined))
        throw new Error("--export-teacher: simulates one stream per accumulation interval epoch; run --export, --export-targets and --figures separately");
      return true;
    })
    .strict()
    .help();
}
