/**
 * npm run bench:fit [-- [--tolerance 0.2] RUN_DIR ...] — how well training reaches its targets (printed, never asserted).
 *
 * Without arguments it trains each shipped parameters file as the README says (`snn-coord FILE --workers 2`, figures
 * on) and reports the run; with run directories it reports those. Per cell type: target, start (the untrained
 * network in steady state: the intervals of epochs 26–50, which are burn-in where the file has one) and end (the
 * last 10% of updates) of the mean rate, the active fraction (neurons that spiked in an interval's 5 × 10 trials),
 * the CV and the membrane ratio; then the wall time until both mean rates are within the tolerance of their targets
 * (trailing mean of 5 updates), skipped updates, the smallest weight, and the pre-clip gradient norm's spread.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readCheckpoint } from "../io/checkpoint.js";
import { MetricsCsv } from "../io/run-dir.js";
import { parseConfig } from "../model/config.js";

const SHIPPED: [string, number][] = [
  ["parameters/quickstart.toml", 0.25],
  ["parameters/fitting-activity.toml", 0.2],
];

/** Mean over the finite values (a CV is NaN in an interval where no cell of the type spiked 3 times in a trial). */
function mean(xs: number[]): number {
  const ok = xs.filter(Number.isFinite);
  return ok.reduce((a, b) => a + b, 0) / ok.length;
}

function quantile(xs: number[], q: number): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function report(dir: string, tolerance: number, wallSeconds: number | null): void {
  const config = parseConfig(readFileSync(join(dir, "parameters.toml"), "utf8"), join(dir, "parameters.toml"), dir);
  const rows = MetricsCsv.read(join(dir, "metrics.csv"));
  const training = rows.filter((r) => r.step > 0);
  const start = rows.filter((r) => r.epoch > 25 && r.epoch <= 50);
  const end = training.slice(-Math.max(1, Math.round(training.length / 10)));
  const names = config.recurrent.names;
  console.log(`\n${dir} (${rows.length} intervals, ${training.length} updates)`);
  console.log("| cell type | quantity | target | start | end |");
  console.log("|---|---|---|---|---|");
  const f = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : "–");
  names.forEach((t, k) => {
    const col = (key: string, d: number) => [f(mean(start.map((r) => r[key])), d), f(mean(end.map((r) => r[key])), d)];
    console.log(`| ${t} | mean rate (Hz) | ${config.targets.firing_rates[k]} | ${col(`firing_rate/${t}/mean`, 3).join(" | ")} |`);
    console.log(`| ${t} | active fraction | ≥ 0.8 | ${col(`fraction_active/${t}`, 3).join(" | ")} |`);
    console.log(`| ${t} | CV | ${config.targets.cvs} | ${col(`cv/${t}/mean`, 2).join(" | ")} |`);
    console.log(`| ${t} | membrane ratio | ${config.targets.threshold_ratio[k]} | ${col(`membrane_ratio/${t}/mean`, 3).join(" | ")} |`);
  });
  console.log(`| all | total loss | | ${f(mean(start.map((r) => r.total_loss)), 3)} | ${f(mean(end.map((r) => r.total_loss)), 3)} |`);
  const within = (r: Record<string, number>[]) =>
    names.every((t, k) => Math.abs(mean(r.map((x) => x[`firing_rate/${t}/mean`])) - config.targets.firing_rates[k]) <= tolerance * config.targets.firing_rates[k]);
  const reached = training.findIndex((_, i) => i >= 4 && within(training.slice(i - 4, i + 1)));
  const latest = readCheckpoint(join(dir, "checkpoints/checkpoint_latest.safetensors"), null, null).state;
  const minWeight = Math.min(latest.recWeight.reduce((m, w) => Math.min(m, w), Infinity), latest.ffWeight.reduce((m, w) => Math.min(m, w), Infinity));
  const g = training.map((r) => r.grad_norm);
  const lastRow = rows[rows.length - 1];
  console.log(
    `time to target (both mean rates within ${100 * tolerance}%, trailing mean of 5 updates): ` +
      (reached >= 0 ? `${training[reached].wall_time_s.toFixed(0)} s (epoch ${training[reached].epoch})` : "not reached"),
  );
  console.log(`skipped updates ${lastRow.skipped_updates}; smallest weight ${minWeight}; run wall time ${(wallSeconds ?? lastRow.wall_time_s).toFixed(0)} s`);
  console.log(`pre-clip gradient norm: median ${quantile(g, 0.5).toPrecision(3)} [p10 ${quantile(g, 0.1).toPrecision(3)}, p90 ${quantile(g, 0.9).toPrecision(3)}], max ${quantile(g, 1).toPrecision(3)}`);
}

function main(): void {
  const args = process.argv.slice(2);
  const t = args.indexOf("--tolerance");
  const tolerance = t >= 0 ? Number(args.splice(t, 2)[1]) : 0.2;
  if (args.length > 0) {
    for (const d of args) {
      if (!existsSync(join(d, "metrics.csv"))) throw new Error(`${d}: not a run directory (no metrics.csv)`);
      report(d, tolerance, null);
    }
    return;
  }
  const cli = fileURLToPath(new URL("../cli/snn-coord.js", import.meta.url));
  for (const [file, tolerance] of SHIPPED) {
    const out = join(mkdtempSync(join(tmpdir(), "snn-fit-")), "run");
    const started = performance.now();
    execFileSync(process.execPath, [cli, file, "--workers", "2", "--output", out, "--metrics-port", "0"], { stdio: "ignore" });
    report(out, tolerance, (performance.now() - started) / 1000);
  }
}

main();
