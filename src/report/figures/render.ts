/**
 * Figure set pipeline: vega-lite spec → vega SVG (headless) → PNG with resvg and the bundled DejaVu fonts, so the
 * output does not depend on fonts installed on the machine.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { Resvg, type ResvgRenderOptions, renderAsync } from "@resvg/resvg-js";
import * as vega from "vega";
import { type TopLevelSpec, compile } from "vega-lite";
import type { FigureData } from "../figure-data.js";
import { conductancesSpec, inputRasterSpec, membraneVoltageSpec, psthSpec, rasterSpec } from "./activity.js";
import { correlogramSpec, spikeComparisonSpec } from "./fit-figures.js";
import { TrueType } from "./fonts.js";
import { hasScalingFactors, ratesVsTargetsSpec, scalingFactorsSpec, trainingHistorySpec } from "./history.js";
import { encodePng, encodePngSync } from "./png.js";
import { FONT } from "./spec.js";
import { cvSpec, fanoSpec, firingRateSpec, isiSpec, rateScatterSpec } from "./statistics-figures.js";
import { assemblyGraphSpec, feedforwardConnectivitySpec, inDegreeSpec, recurrentConnectivitySpec, synapticInputSpec } from "./structure.js";
import { weightDistributionSpec } from "./weights.js";
import { inputRatesSpec } from "./inputs.js";

export interface FigureDef {
  file: string;
  spec: (data: FigureData) => TopLevelSpec;
  /** Drawn only for data that has what it shows. */
  when?: (data: FigureData) => boolean;
}

export const FIGURES: readonly FigureDef[] = [
  { file: "assembly_graph.png", spec: assemblyGraphSpec },
  { file: "recurrent_connectivity.png", spec: recurrentConnectivitySpec },
  { file: "feedforward_connectivity.png", spec: feedforwardConnectivitySpec },
  { file: "in_degree_histograms.png", spec: inDegreeSpec },
  { file: "synaptic_input_histograms.png", spec: synapticInputSpec },
  { file: "weight_distributions.png", spec: weightDistributionSpec },
  { file: "input_raster.png", spec: inputRasterSpec },
  { file: "input_rates.png", spec: inputRatesSpec, when: (data) => data.activity.odourMixture !== undefined && data.network.odours !== undefined },
  { file: "spike_raster.png", spec: rasterSpec },
  { file: "psth.png", spec: psthSpec },
  { file: "membrane_voltage.png", spec: membraneVoltageSpec },
  { file: "conductances_currents.png", spec: conductancesSpec },
  { file: "firing_rate_distribution.png", spec: firingRateSpec },
  { file: "cv_histogram.png", spec: cvSpec },
  { file: "isi_distribution.png", spec: isiSpec },
  { file: "fano_factor.png", spec: fanoSpec },
  { file: "training_history.png", spec: trainingHistorySpec },
  { file: "rates_vs_targets.png", spec: ratesVsTargetsSpec },
  { file: "scaling_factors.png", spec: scalingFactorsSpec, when: hasScalingFactors },
  { file: "rate_scatter.png", spec: rateScatterSpec, when: (data) => data.targets.perNeuronRate !== undefined },
  { file: "spike_comparison.png", spec: spikeComparisonSpec, when: (data) => data.teacher !== undefined },
  { file: "firing_rate_correlogram.png", spec: correlogramSpec, when: (data) => data.teacher !== undefined },
];

const fontDir = path.join(path.dirname(createRequire(import.meta.url).resolve("dejavu-fonts-ttf/package.json")), "ttf");
const REGULAR = new TrueType(path.join(fontDir, "DejaVuSans.ttf"));
const BOLD = new TrueType(path.join(fontDir, "DejaVuSans-Bold.ttf"));

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
}

// vega's documented hook for custom text measurement (vl-convert uses it too): lay out with the widths of the very
// fonts resvg draws with.
(vega as unknown as { textMetrics: { width: (item: TextItem, text: unknown) => number } }).textMetrics.width = (item, text) => {
  const bold = item.fontWeight === "bold" || Number(item.fontWeight) >= 600;
  return (bold ? BOLD : REGULAR).width(text == null ? "" : String(text).trim()) * (item.fontSize ?? 11);
};

const RESVG: ResvgRenderOptions = {
  // Specs are laid out in CSS pixels at vega's default font sizes; zooming keeps that layout and gives ~950–1300 px.
  fitTo: { mode: "zoom", value: 1.3 },
  // Nearest-neighbour for the embedded heatmap images, so matrix cells stay sharp.
  imageRendering: 1,
  background: "white",
};

/** Characters vega may add on its own: number formatting (U+2212 minus, µ for SI prefixes) and label truncation. */
const VEGA_CHARS = "0123456789.,+-e%kMGTmunµ\u2212\u2026";

/** Every character of every string in a spec (titles, labels, names in data values), for the font subsets. */
function collectChars(value: unknown, into: Set<string>): void {
  if (typeof value === "string") for (const ch of value) into.add(ch);
  else if (Array.isArray(value)) for (const v of value) collectChars(v, into);
  else if (typeof value === "object" && value !== null) for (const v of Object.values(value)) collectChars(v, into);
}

export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

let sameThread = false;

/**
 * Rasterise and compress on the calling thread from now on rather than on libuv's thread pool: the figure thread
 * (thread.ts) runs at low priority, which the pool's threads do not share.
 */
export function renderOnThisThread(): void {
  sameThread = true;
}

/** Rasterises and compresses on libuv's thread pool, so the next figure's SVG is built meanwhile (or see renderOnThisThread). */
async function svgToPng(svg: string, options: ResvgRenderOptions): Promise<Buffer> {
  if (sameThread) {
    const image = new Resvg(svg, options).render();
    return encodePngSync(image.width, image.height, image.pixels, 1);
  }
  const image = await renderAsync(svg, options);
  return encodePng(image.width, image.height, image.pixels);
}

const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function titleOf(spec: TopLevelSpec, fallback: string): string {
  const t = spec.title;
  const text = typeof t === "object" && t !== null && !Array.isArray(t) ? t.text : t;
  return typeof text === "string" ? text : Array.isArray(text) ? text.join(" ") : fallback;
}

function indexHtml(data: FigureData, figures: { file: string; title: string }[]): string {
  const heading = `Figures — epoch ${data.epoch}/${data.totalEpochs}`;
  const items = figures.map((f) => `<section>\n<h2>${escapeHtml(f.title)}</h2>\n<img src="${escapeHtml(f.file)}" alt="${escapeHtml(f.title)}">\n</section>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${heading}</title>
<style>body { font-family: "DejaVu Sans", sans-serif; margin: 2em; } img { max-width: 100%; border: 1px solid #ddd; } h2 { font-size: 1.1em; } nav { margin-bottom: 1em; } nav .off { color: #999; }</style>
</head>
<body>
${NAV_START}${NAV_END}
<h1>${heading}</h1>
${items.join("\n")}
</body>
</html>
`;
}

/** Writes each spec as a PNG, with font subsets of the characters they use; returns the paths in order. */
async function renderPngs(figures: { file: string; spec: TopLevelSpec }[]): Promise<string[]> {
  const chars = new Set(VEGA_CHARS);
  collectChars(figures.map((f) => f.spec), chars);
  const fonts = await mkdtemp(path.join(tmpdir(), "snn-figure-fonts-"));
  const pending: Promise<string>[] = [];
  try {
    const fontFiles = [path.join(fonts, "regular.ttf"), path.join(fonts, "bold.ttf")];
    await Promise.all([writeFile(fontFiles[0], REGULAR.subset(chars)), writeFile(fontFiles[1], BOLD.subset(chars))]);
    const options: ResvgRenderOptions = { ...RESVG, font: { fontFiles, loadSystemFonts: false, defaultFontFamily: FONT } };
    for (const f of figures) {
      const svg = await specToSvg(f.spec);
      pending.push(svgToPng(svg, options).then(async (png) => (await writeFile(f.file, png), f.file)));
    }
    return await Promise.all(pending);
  } finally {
    await Promise.allSettled(pending); // resvg may still be reading the fonts when a later figure failed
    await rm(fonts, { recursive: true, force: true });
  }
}

async function renderSet(data: FigureData, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const figures = FIGURES.filter((f) => f.when?.(data) ?? true).map((f) => ({ file: f.file, spec: f.spec(data) }));
  const files = await renderPngs(figures.map((f) => ({ file: path.join(dir, f.file), spec: f.spec })));
  await writeFile(path.join(dir, "index.html"), indexHtml(data, figures.map((f) => ({ file: f.file, title: titleOf(f.spec, f.file) }))));
  await linkFigureSets(dir);
  return files;
}

/** The navigation bar of a set's index.html sits between these markers, rewritten as neighbouring sets appear. */
const NAV_START = '<nav class="figure-sets">';
const NAV_END = "</nav>";
/** A figure set's folder in a run directory: RUN_DIR/figures/epoch_NNNN. */
export const FIGURE_SET_DIR = /^epoch_(\d+)$/;
/** The run report (snn-report), relative to a figure set's folder. */
export const REPORT_FROM_SET = "../../report.html";

function navHtml(prev: string | null, next: string | null): string {
  const link = (href: string | null, text: string): string => (href ? `<a href="${escapeHtml(href)}">${text}</a>` : `<span class="off">${text}</span>`);
  return [link(prev && `../${prev}/index.html`, "← previous set"), link(`${REPORT_FROM_SET}`, "run report"), link(next && `../${next}/index.html`, "next set →")].join(" · ");
}

/**
 * Links a set written into RUN_DIR/figures/epoch_NNNN with its neighbours (the sets before and after it by epoch)
 * and the run report: its own navigation bar and theirs are rewritten. Sets elsewhere (snn-sim --figures DIR) are
 * left without one.
 */
async function linkFigureSets(dir: string): Promise<void> {
  const name = path.basename(dir);
  const parent = path.dirname(dir);
  if (!FIGURE_SET_DIR.test(name) || path.basename(parent) !== "figures") return;
  const sets = (await readdir(parent)).filter((n) => FIGURE_SET_DIR.test(n)).sort((a, b) => Number(FIGURE_SET_DIR.exec(a)![1]) - Number(FIGURE_SET_DIR.exec(b)![1]));
  const at = sets.indexOf(name);
  for (let i = Math.max(0, at - 1); i <= Math.min(sets.length - 1, at + 1); i++) {
    const file = path.join(parent, sets[i], "index.html");
    const html = await readFile(file, "utf8").catch(() => null);
    const from = html?.indexOf(NAV_START) ?? -1;
    const to = from >= 0 ? html!.indexOf(NAV_END, from) : -1;
    if (from < 0 || to < 0) continue;
    const nav = navHtml(sets[i - 1] ?? null, sets[i + 1] ?? null);
    await writeFile(file, html!.slice(0, from + NAV_START.length) + nav + html!.slice(to));
  }
}

/** One figure outside the figure sets (snn-study's study.png), as PNG. */
export async function renderFigure(spec: TopLevelSpec, file: string): Promise<void> {
  await renderPngs([{ file, spec }]);
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Writes one PNG per figure of FIGURES that applies to `data` and an index.html into `dir`; returns the PNG paths in
 * FIGURES order.
 * Calls run one set at a time (a set holds all its SVGs and raster buffers in memory at once).
 */
export function renderFigureSet(data: FigureData, dir: string): Promise<string[]> {
  const run = queue.then(() => renderSet(data, dir));
  queue = run.catch(() => undefined);
  return run;
}
