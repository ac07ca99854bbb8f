/** Command line of snn-study; kept apart from the program so that tests and deploy checks can read the flags. */
import yargs from "yargs";

const repeated = (v: string | string[]) => (Array.isArray(v) ? v : [v]).map(String);

export const studyCli = (argv: string[]) =>
  yargs(argv)
    .scriptName("snn-study")
    .usage("$0 PARAMS.toml --grid KEY=V1,V2,... [--grid KEY2=...] --output DIR [--parallel P] [--workers W] [--epochs K] [--set KEY=VALUE ...]")
    .command("$0 <params>", "train one run per point of a grid of parameters and tabulate their final metrics", (y) =>
      y.positional("params", { type: "string", describe: "parameters TOML file", demandOption: true }),
    )
    .option("grid", {
      type: "string",
      demandOption: true,
      describe: "a dotted key of the parameters and its values, each a TOML value (--grid student.noise_frac=0.05,0.1,0.2); repeatable: the grid is the product",
      coerce: repeated,
    })
    .option("output", { type: "string", demandOption: true, describe: "the study's directory: study.json, study.csv, study.md, study.png and one run directory per point" })
    .option("parallel", { type: "number", default: 1, describe: "grid points run at once" })
    .option("workers", { type: "number", default: 1, describe: "local worker processes of each point's run" })
    .option("epochs", { type: "number", describe: "override simulation.epochs in every point" })
    .option("set", { type: "string", describe: "override a parameter in every point (KEY=VALUE, as snn-coord --set); repeatable", coerce: repeated })
    .option("figures", { type: "boolean", default: true, describe: "each run renders its figure sets (--no-figures to skip; study.png is drawn either way)" })
    .option("retry-failed", { type: "boolean", default: false, describe: "rerun points whose run failed (with --force); without it they are reported and left" })
    .check((a) => {
      for (const flag of ["parallel", "workers"] as const)
        if (!Number.isInteger(a[flag]) || a[flag] < 1) throw new Error(`--${flag}: expected a positive integer, got ${a[flag]}`);
      if (a.epochs !== undefined && (!Number.isInteger(a.epochs) || a.epochs < 1)) throw new Error(`--epochs: expected a positive integer, got ${a.epochs}`);
      return true;
    })
    .strict()
    .help();
