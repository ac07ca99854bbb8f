/**
 * snn-report RUN_DIR: one self-contained HTML page (RUN_DIR/report.html) with the whole run's curves from metrics.csv
 * (loss terms, per-type rates, CVs and membrane ratios against their targets, gradient norm and learning rate) as
 * inline SVG, the run's metadata, and links to every figure set (figures/epoch_NNNN/index.html), whose own pages link
 * back to it. Exit codes: 0 written, 2 bad usage (not a run directory).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { MetricsCsv, type Metadata } from "../io/run-dir.js";
import { writeFileAtomic } from "../platform/atomic-file.js";
import { FIGURE_SET_DIR, specToSvg } from "./figures/render.js";
import { CONFIG, type Datum, type Layer, fmt } from "./figures/spec.js";

export const REPORT_FILE = "report.html";

/** The directory given is not (yet) a run's output directory. */
export class NotARunError extends Error {}

const WIDTH = 620;
const HEIGHT = 220;
const epochAxis = { field: "epoch", type: "quantitative" as const, title: "epoch", axis: { tickMinStep: 1, format: "d" } };

const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A run directory has metrics.csv (written when the run starts); anything else is refused with one line. */
function checkRunDir(dir: string): void {
  if (!existsSync(dir)) throw new NotARunError(`${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new NotARunError(`${dir} is not a directory`);
  if (!existsSync(join(dir, "metrics.csv")))
    throw new NotARunError(`${dir} is not a run directory: it has no metrics.csv (give the --output directory of an snn-coord run)`);
}

function readMetadata(dir: string): Partial<Metadata> {
  try {
    return JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8")) as Partial<Metadata>;
  } catch {
    return {};
  }
}

/** Per cell type: its target rate, CV and membrane ratio from the effective parameters (where they say). */
interface Targets {
  rate: (t: string) => number;
  cv: number;
  ratio: (t: string) => number;
  /** Per-neuron targets from a file: the per-type rate targets are then means the report cannot know. */
  file: string | null;
}

function targetsOf(meta: Partial<Metadata>): Targets {
  const targets = ((meta.effective_parameters ?? {}) as { targets?: Record<string, unknown> }).targets ?? {};
  const byType = (v: unknown) => (t: string) => {
    const x = v && typeof v === "object" ? (v as Record<string, unknown>)[t] : undefined;
    return typeof x === "number" ? x : NaN;
  };
  const file = typeof targets.file === "string" && targets.file !== "" ? targets.file : null;
  return {
    rate: file ? () => NaN : byType(targets.firing_rates),
    cv: typeof targets.cvs === "number" ? targets.cvs : NaN,
    ratio: byType(targets.threshold_ratio),
    file,
  };
}

const chart = (title: string, subtitle: string, body: object): TopLevelSpec =>
  ({ ...body, title: { text: title, subtitle, fontSize: 15 }, config: CONFIG }) as TopLevelSpec;

function lossSpec(rows: Record<string, number>[]): TopLevelSpec | null {
  const terms = Object.keys(rows[0] ?? {}).filter((k) => k.endsWith("_loss"));
  const values: Datum[] = [];
  for (const row of rows)
    for (const term of terms) if (Number.isFinite(row[term]) && row[term] > 0) values.push({ epoch: row.epoch, value: row[term], term: term.replace(/_loss$/, "").replace(/_/g, " ") });
  if (values.length === 0) return null;
  return chart("Loss terms", "log scale; zero and non-finite values left out", {
    width: WIDTH,
    height: HEIGHT + 60,
    data: { values },
    mark: { type: "line", strokeWidth: 1.5 },
    encoding: { x: epochAxis, y: { field: "value", type: "quantitative", scale: { type: "log" }, title: "loss" }, color: { field: "term", type: "nominal", sort: null, legend: { title: null } } },
  });
}

/** One panel per cell type of a per-type column (`column(t)`), with its dashed target; the y axis holds both. */
function perTypeSpec(rows: Record<string, number>[], types: string[], column: (t: string) => string, target: (t: string) => number, o: { title: string; subtitle: string; yTitle: string }): TopLevelSpec | null {
  const panels = types.flatMap((t) => {
    const values: Datum[] = rows.filter((r) => Number.isFinite(r[column(t)])).map((r) => ({ epoch: r.epoch, y: r[column(t)] }));
    if (values.length === 0) return [];
    const goal = target(t);
    const top = Math.max(...values.map((v) => v.y as number), Number.isFinite(goal) ? goal : 0) * 1.1 || 1;
    const layer: Layer[] = [
      {
        data: { values },
        mark: { type: "line", strokeWidth: 1.5, color: "#1f77b4" },
        encoding: { x: epochAxis, y: { field: "y", type: "quantitative", title: o.yTitle, scale: { domain: [0, top], nice: false } } },
      },
    ];
    if (Number.isFinite(goal)) {
      layer.push(
        { data: { values: [{ y: goal }] }, mark: { type: "rule", strokeDash: [6, 3], color: "black" }, encoding: { y: { field: "y", type: "quantitative" } } },
        {
          data: { values: [{ y: goal }] },
          // At the left, where a run usually starts far from its target.
          mark: { type: "text", align: "left", dy: -6, fontSize: 11 },
          encoding: { x: { value: 4 }, y: { field: "y", type: "quantitative" }, text: { value: `target ${fmt(goal)}` } },
        },
      );
    }
    const last = values[values.length - 1].y as number;
    return [{ title: `${t}: last ${fmt(last)}${Number.isFinite(goal) ? ` (target ${fmt(goal)})` : ""}`, width: 300, height: HEIGHT, layer }];
  });
  return panels.length === 0 ? null : chart(o.title, o.subtitle, { hconcat: panels });
}

function optimizerSpec(rows: Record<string, number>[]): TopLevelSpec | null {
  const grad = rows.filter((r) => Number.isFinite(r.grad_norm) && r.grad_norm > 0).map((r) => ({ epoch: r.epoch, y: r.grad_norm }));
  const lr = rows.filter((r) => Number.isFinite(r.learning_rate)).map((r) => ({ epoch: r.epoch, y: r.learning_rate }));
  if (grad.length === 0 && lr.length === 0) return null;
  const panel = (values: Datum[], title: string, yTitle: string, log: boolean) => ({
    title,
    width: 300,
    height: HEIGHT,
    data: { values },
    mark: { type: "line", strokeWidth: 1.5, color: "#555" },
    encoding: { x: epochAxis, y: { field: "y", type: "quantitative", title: yTitle, scale: log ? { type: "log" } : { zero: true } } },
  });
  return chart("Optimizer", "gradient norm: global L2 norm of the interval's mean gradient before clipping (burn-in has none)", {
    hconcat: [panel(grad, "gradient norm", "‖g‖ (log)", true), panel(lr, "learning rate", "learning rate", false)],
  });
}

/** Figure sets of the run, by epoch: folder name and PNG count. */
function figureSets(dir: string): { name: string; epoch: number; figures: number }[] {
  const figures = join(dir, "figures");
  if (!existsSync(figures)) return [];
  return readdirSync(figures)
    .filter((n) => FIGURE_SET_DIR.test(n) && existsSync(join(figures, n, "index.html")))
    .map((name) => ({ name, epoch: Number(FIGURE_SET_DIR.exec(name)![1]), figures: readdirSync(join(figures, name)).filter((f) => f.endsWith(".png")).length }))
    .sort((a, b) => a.epoch - b.epoch);
}

/** Writes RUN_DIR/report.html; returns its path. Throws NotARunError for a directory that is not a run's. */
export async function writeRunReport(runDir: string): Promise<string> {
  const dir = resolve(runDir);
  checkRunDir(dir);
  const rows = MetricsCsv.read(join(dir, "metrics.csv"));
  const meta = readMetadata(dir);
  const targets = targetsOf(meta);
  const types = [...new Set(Object.keys(rows[0] ?? {}).flatMap((k) => /^firing_rate\/(.+)\/mean$/.exec(k)?.[1] ?? []))];
  const charts = [
    lossSpec(rows),
    perTypeSpec(rows, types, (t) => `firing_rate/${t}/mean`, targets.rate, {
      title: "Mean firing rate per cell type",
      subtitle: targets.file ? `mean over the type's neurons and the interval's epochs; per-neuron targets from ${targets.file} (no per-type line)` : "mean over the type's neurons and the interval's epochs; dashed: target",
      yTitle: "rate (Hz)",
    }),
    perTypeSpec(rows, types, (t) => `cv/${t}/mean`, () => targets.cv, { title: "Mean ISI CV per cell type", subtitle: "mean over the type's neurons with a CV; dashed: target", yTitle: "CV" }),
    perTypeSpec(rows, types, (t) => `membrane_ratio/${t}/mean`, targets.ratio, {
      title: "Membrane ratio per cell type",
      subtitle: "std(V) / (θ − mean(V)), mean over the type's neurons; dashed: target (threshold_ratio)",
      yTitle: "ratio",
    }),
    optimizerSpec(rows),
  ].filter((c): c is TopLevelSpec => c !== null);
  const svgs = [];
  for (const c of charts) svgs.push(await specToSvg(c));

  const sets = figureSets(dir);
  const last = rows[rows.length - 1];
  const totalEpochs = (meta.effective_parameters as { simulation?: { epochs?: number } } | undefined)?.simulation?.epochs;
  const finite = rows.filter((r) => Number.isFinite(r.total_loss));
  const best = finite.length > 0 ? finite.reduce((a, b) => (b.total_loss < a.total_loss ? b : a)) : null;
  const facts: [string, string][] = [
    ["status", meta.status ?? "unknown (no metadata.json)"],
    ["epochs", last ? `${last.epoch}${totalEpochs ? ` of ${totalEpochs}` : ""} (${rows.length} updates logged)` : "no update logged yet"],
    ["best total loss", best ? `${fmt(best.total_loss)} at epoch ${best.epoch}` : "—"],
    ["last total loss", last ? fmt(last.total_loss) : "—"],
    ["started", meta.start_time ?? "—"],
    ["ended", meta.end_time ? `${meta.end_time}${meta.duration_seconds !== undefined ? ` (${fmt(meta.duration_seconds)} s)` : ""}` : "—"],
    ["command", meta.command ?? "—"],
    ["engine", meta.engine ?? "—"],
  ];
  const setLinks =
    sets.length === 0
      ? "<p>No figure sets (plotting off or --no-figures).</p>"
      : `<ul class="sets">\n${sets.map((s) => `<li><a href="figures/${s.name}/index.html">epoch ${s.epoch}</a> <span class="n">${s.figures} figures</span></li>`).join("\n")}\n</ul>`;
  const name = basename(dir);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Run report — ${escapeHtml(name)}</title>
<style>
body { font-family: "DejaVu Sans", sans-serif; margin: 2em; max-width: 1400px; }
table { border-collapse: collapse; } td { padding: 2px 12px 2px 0; vertical-align: top; } td:first-child { color: #555; }
.chart { margin: 1.5em 0; } .chart svg { max-width: 100%; height: auto; }
ul.sets { columns: 4; } ul.sets .n { color: #888; font-size: 0.85em; }
</style>
</head>
<body>
<h1>Run report — ${escapeHtml(name)}</h1>
<table>
${facts.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`).join("\n")}
</table>
<h2>Training curves</h2>
${svgs.length === 0 ? "<p>metrics.csv has no rows yet.</p>" : svgs.map((s) => `<div class="chart">${s}</div>`).join("\n")}
<h2>Figure sets</h2>
${setLinks}
<p class="n">Written by snn-report from ${escapeHtml(join(name, "metrics.csv"))} and metadata.json; run it again to bring it up to date.</p>
</body>
</html>
`;
  const out = join(dir, REPORT_FILE);
  writeFileAtomic(out, html);
  return out;
}

const USAGE = "usage: snn-report RUN_DIR  (writes RUN_DIR/report.html: the run's curves and links to its figure sets)";

/** Runs the command with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
    console.log(USAGE);
    return 0;
  }
  if (argv.length !== 1 || argv[0].startsWith("-")) {
    console.error(`snn-report: ${argv.length === 0 ? "give the run directory" : `expected one run directory, got ${argv.map((a) => JSON.stringify(a)).join(" ")}`}; ${USAGE}`);
    return 2;
  }
  try {
    const out = await writeRunReport(argv[0]);
    console.log(`wrote ${out}`);
    return 0;
  } catch (e) {
    if (e instanceof NotARunError) {
      console.error(`snn-report: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
