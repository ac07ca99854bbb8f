/**
 * Weight distributions per connection type (presynaptic population → postsynaptic cell type, recurrent and
 * feedforward): the current weights against the run's initial ones (FigureData.initialWeights), on log-x histograms.
 */
import type { TopLevelSpec } from "vega-lite";
import { pearson } from "../../model/statistics.js";
import type { FigureData } from "../figure-data.js";
import { extent, histogram, logBinEdges } from "./stats.js";
import { type Datum, type Layer, type Panel, figure, fmt, noteLayer, populationScale } from "./spec.js";

const BINS = 30;

/** The weights of one connection type: current and (where known) initial, in edge order. */
export interface ConnectionType {
  pre: string;
  post: string;
  current: Float64Array;
  initial: Float64Array | null;
}

/**
 * Every (presynaptic population, postsynaptic cell type) pair with synapses: recurrent types first, then input
 * types, rows in population order.
 */
export function connectionTypes(data: FigureData): ConnectionType[] {
  const net = data.network;
  const K = net.cellTypeNames.length;
  const init = data.initialWeights;
  const out: ConnectionType[] = [];
  const split = (
    preNames: string[],
    preType: (k: number) => number,
    postOf: (k: number) => number,
    weights: Float32Array,
    initial: Float32Array | null,
  ): void => {
    // Counting sort of the edges by (pre type, post type), keeping edge order within each pair.
    const keys = new Int32Array(weights.length);
    const size = new Int32Array(preNames.length * K);
    for (let k = 0; k < weights.length; k++) size[(keys[k] = preType(k) * K + net.cellType[postOf(k)])]++;
    const current = Array.from(size, (n) => new Float64Array(n));
    const start = Array.from(size, (n) => (initial && initial.length === weights.length ? new Float64Array(n) : null));
    const fill = new Int32Array(size.length);
    for (let k = 0; k < weights.length; k++) {
      const key = keys[k];
      const at = fill[key]++;
      current[key][at] = weights[k];
      const init = start[key];
      if (init) init[at] = initial![k];
    }
    size.forEach((n, key) => {
      if (n > 0) out.push({ pre: preNames[Math.floor(key / K)], post: net.cellTypeNames[key % K], current: current[key], initial: start[key] });
    });
  };
  split(net.cellTypeNames, (k) => net.cellType[net.recPre[k]], (k) => net.recPost[k], net.recWeight, init?.rec ?? null);
  split(net.inputTypeNames, (k) => net.inputType[net.ffPre[k]], (k) => net.ffPost[k], net.ffWeight, init?.ff ?? null);
  return out;
}

const mean = (v: Float64Array): number => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
const zeros = (v: Float64Array): number => v.reduce((n, w) => n + (w > 0 ? 0 : 1), 0);

function weightPanel(c: ConnectionType, colors: { domain: string[]; range: string[] }): Panel {
  const a = extent(c.current, 0);
  const b = c.initial ? extent(c.initial, 0) : null;
  const range = a && b ? { min: Math.min(a.min, b.min), max: Math.max(a.max, b.max) } : (a ?? b);
  const lo = range ? range.min / 1.05 : 0.1;
  const hi = range ? Math.max(range.max * 1.05, lo * 1.5) : 1;
  const edges = logBinEdges(lo, hi, BINS);
  const counts = histogram(c.current, edges);
  const bars: Datum[] = [];
  counts.forEach((n, i) => n > 0 && bars.push({ lo: edges[i], hi: edges[i + 1], n, pop: c.pre }));
  const x = { type: "quantitative" as const, scale: { type: "log" as const, domain: [lo, hi], nice: false }, title: "weight", axis: { tickCount: 5 } };
  const y = { type: "quantitative" as const, title: "synapses" };
  const layer: Layer[] = [
    {
      data: { values: bars },
      mark: { type: "rect", opacity: 0.75, stroke: "white", strokeWidth: 0.3 },
      encoding: {
        x: { ...x, field: "lo" },
        x2: { field: "hi" },
        y: { ...y, field: "n", scale: { domainMin: 0 } },
        y2: { datum: 0 },
        color: { field: "pop", type: "nominal", scale: colors, legend: null },
      },
    },
  ];
  const lines = [`${c.pre} → ${c.post}: ${c.current.length} synapses, mean ${fmt(mean(c.current))}`];
  if (c.initial) {
    // The initial histogram as an outline: up at each bin's left edge, across, down after the last.
    const init = histogram(c.initial, edges);
    const step: Datum[] = [{ x: edges[0], n: 0 }];
    init.forEach((n, i) => step.push({ x: edges[i], n }, { x: edges[i + 1], n }));
    step.push({ x: edges[edges.length - 1], n: 0 });
    step.forEach((d, i) => (d.order = i));
    layer.push({
      data: { values: step },
      mark: { type: "line", color: "black", strokeWidth: 1.2 },
      encoding: { x: { ...x, field: "x" }, y: { ...y, field: "n" }, order: { field: "order", type: "quantitative" } },
    });
    const r = pearson(c.current, c.initial);
    lines.push(`initial mean ${fmt(mean(c.initial))}; r(current, initial) ${Number.isFinite(r) ? r.toFixed(3) : "undefined"}`);
  }
  const z = zeros(c.current);
  if (z > 0) lines[lines.length - 1] += `; ${z} at 0 (not drawn)`;
  if (bars.length === 0) layer.push(noteLayer("no positive weights"));
  return { title: { text: lines, fontSize: 12 }, width: 250, height: 150, layer } as Panel;
}

export function weightDistributionSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const types = connectionTypes(data);
  const colors = populationScale(net);
  // One row per presynaptic population, one column per postsynaptic cell type.
  const rows = [...net.cellTypeNames, ...net.inputTypeNames]
    .map((pre) => types.filter((c) => c.pre === pre))
    .filter((r) => r.length > 0)
    .map((r) => ({ hconcat: r.map((c) => weightPanel(c, colors)) }));
  const initial = data.initialWeights
    ? data.epoch === 0
      ? "this is the initial set: current and initial weights are the same"
      : "black outline: the initial weights (the epoch_0000 set), same bins"
    : "initial weights not known (the run was resumed from a checkpoint): current weights only";
  return figure(data, "Weight distributions per connection type", { vconcat: rows }, [
    `bars: weights at epoch ${data.epoch}, 30 log bins per panel over the current and initial weights; ${initial}`,
    "rows: presynaptic population; columns: postsynaptic cell type; r: Pearson correlation synapse by synapse",
  ]);
}
