/** Network-structure figures: assembly graph, weight heatmaps, in-degree and synaptic-input histograms. */
import type { TopLevelSpec } from "vega-lite";
import type { FigureData, NetworkView } from "../figure-data.js";
import { binMatrix, extent, histogram, linearBinEdges, logBinEdges } from "./stats.js";
import { type Datum, type Panel, figure, fmt, heatmapPanel, histogramPanel, membersByType, pick, populationScale } from "./spec.js";

/** Heatmap cells per axis at most: full resolution at the default size (first two assemblies = 500 neurons). */
const MAX_HEATMAP_BINS = 600;

export function assemblyGraphSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const A = net.numAssemblies;
  const size = net.assemblySize;
  // |w| so that a weight trained below zero still counts as coupling strength.
  const sum = new Float64Array(A * A);
  for (let k = 0; k < net.recPre.length; k++) {
    const a = Math.floor(net.recPre[k] / size);
    const b = Math.floor(net.recPost[k] / size);
    if (a < A && b < A) sum[a * A + b] += Math.abs(net.recWeight[k]);
  }
  const at = (a: number, r: number): { x: number; y: number } => {
    const phi = (2 * Math.PI * a) / A - Math.PI / 2;
    return { x: r * Math.cos(phi), y: r * Math.sin(phi) };
  };
  const nodes: Datum[] = Array.from({ length: A }, (_, a) => {
    const label = at(a, 1.14);
    return { ...at(a, 1), lx: label.x, ly: label.y, name: String(a), within: sum[a * A + a] };
  });
  const edges: { x: number; y: number; x2: number; y2: number; w: number }[] = [];
  for (let a = 0; a < A; a++) {
    for (let b = a + 1; b < A; b++) {
      const w = sum[a * A + b] + sum[b * A + a];
      const p = at(a, 1);
      const q = at(b, 1);
      if (w > 0) edges.push({ x: p.x, y: p.y, x2: q.x, y2: q.y, w });
    }
  }
  edges.sort((p, q) => p.w - q.w); // heaviest drawn last, on top
  const pos = (field: string) => ({ field, type: "quantitative" as const, scale: { domain: [-1.3, 1.3] }, axis: null });
  const body: Panel = {
    width: 560,
    height: 560,
    layer: [
      {
        data: { values: edges },
        mark: { type: "rule", opacity: 0.3, color: "#444" },
        encoding: {
          x: pos("x"),
          y: pos("y"),
          x2: { field: "x2" },
          y2: { field: "y2" },
          strokeWidth: { field: "w", type: "quantitative", scale: { zero: true, range: [0, 4] }, legend: { title: "between-assembly Σ|w|" } },
        },
      },
      {
        data: { values: nodes },
        mark: { type: "circle", opacity: 1, color: "#fd8d3c", stroke: "black", strokeWidth: 0.8 },
        encoding: {
          x: pos("x"),
          y: pos("y"),
          size: {
            field: "within",
            type: "quantitative",
            scale: { zero: true, range: [0, 1000] },
            legend: { title: "within-assembly Σ|w|", symbolFillColor: "#fd8d3c", symbolStrokeColor: "black" },
          },
        },
      },
      {
        data: { values: nodes },
        mark: { type: "text", fontSize: 11 },
        encoding: { x: pos("lx"), y: pos("ly"), text: { field: "name" } },
      },
    ],
  };
  return figure(
    data,
    "Assembly graph",
    body,
    `${A} assemblies of ${size} neurons; edge width ∝ summed |weight| between two assemblies (both directions), node area ∝ within`,
  );
}

const blockNote = (b: { rowFactor: number; colFactor: number }): string =>
  b.rowFactor > 1 || b.colFactor > 1 ? `; each cell the mean over ${b.rowFactor}×${b.colFactor} weights` : "";

const signOf = (net: NetworkView, pre: number): number => (net.cellType[pre] === 0 ? 1 : -1);

export function recurrentConnectivitySpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const n = Math.min(net.cellType.length, net.assemblySize * Math.min(2, net.numAssemblies));
  const bins = binMatrix(n, n, net.recPre, net.recPost, (k) => signOf(net, net.recPre[k]) * net.recWeight[k], MAX_HEATMAP_BINS);
  const body = heatmapPanel({
    bins,
    rows: n,
    cols: n,
    xTitle: "postsynaptic neuron",
    yTitle: "presynaptic neuron",
    colorTitle: "signed weight",
    guides: n > net.assemblySize ? [net.assemblySize] : [],
    width: 560,
    height: 560,
  });
  return figure(data, "Recurrent weights, first two assemblies", body, `weights signed by presynaptic type (excitatory +, inhibitory −)${blockNote(bins)}`);
}

export function feedforwardConnectivitySpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const rows = Math.max(1, Math.floor(0.1 * net.inputType.length));
  const cols = Math.max(1, Math.floor(0.1 * net.cellType.length));
  const bins = binMatrix(rows, cols, net.ffPre, net.ffPost, (k) => net.ffWeight[k], MAX_HEATMAP_BINS);
  const width = 700;
  const body = heatmapPanel({
    bins,
    rows,
    cols,
    xTitle: `postsynaptic neuron (first ${cols})`,
    yTitle: `input neuron (first ${rows})`,
    colorTitle: "weight",
    width,
    height: Math.max(160, Math.min(560, Math.round((width * rows) / cols))),
  });
  return figure(data, "Feedforward weights, first 10% inputs × first 10% neurons", body, `rows: presynaptic input neurons${blockNote(bins)}`);
}

/** Per source population (recurrent types, then input types), each neuron's incoming synapses: count and summed weight. */
function incoming(net: NetworkView): { names: string[]; degree: Int32Array[]; weight: Float64Array[] } {
  const n = net.cellType.length;
  const names = [...net.cellTypeNames, ...net.inputTypeNames];
  const degree = names.map(() => new Int32Array(n));
  const weight = names.map(() => new Float64Array(n));
  const add = (source: number, post: number, w: number): void => {
    if (w === 0) return; // a trained weight at exactly zero is no synapse
    degree[source][post]++;
    weight[source][post] += w;
  };
  for (let k = 0; k < net.recPre.length; k++) add(net.cellType[net.recPre[k]], net.recPost[k], net.recWeight[k]);
  const K = net.cellTypeNames.length;
  for (let k = 0; k < net.ffPre.length; k++) add(K + net.inputType[net.ffPre[k]], net.ffPost[k], net.ffWeight[k]);
  return { names, degree, weight };
}

export function inDegreeSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const { names, degree } = incoming(net);
  const colors = populationScale(net);
  const targets = membersByType(net.cellType, net.cellTypeNames.length);
  const rows = names.map((source, s) => {
    const max = extent(degree[s])?.max ?? 0;
    const edges = linearBinEdges(-0.5, max + 0.5, max + 1);
    return {
      hconcat: targets.map((members, t) =>
        histogramPanel({
          title: `${source} → ${net.cellTypeNames[t]}`,
          edges,
          series: [{ name: source, counts: histogram(pick(degree[s], members), edges) }],
          colors,
          xTitle: `incoming synapses from ${source}`,
          yTitle: "neurons",
          width: 300,
          height: 130,
        }),
      ),
    };
  });
  return figure(data, "In-degree", { vconcat: rows }, "rows: presynaptic population; columns: postsynaptic cell type; integer bins");
}

export function synapticInputSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const { names, weight } = incoming(net);
  const colors = populationScale(net, net.cellTypeNames);
  const targets = membersByType(net.cellType, net.cellTypeNames.length);
  const panels = names.map((source, s) => {
    const gBar = net.slots.filter((slot) => slot.source === source).reduce((acc, slot) => acc + slot.gBar, 0);
    const drive = weight[s].map((w) => w * gBar);
    const range = extent(drive, 0);
    const edges = range ? logBinEdges(range.min, range.max > range.min ? range.max : range.min * 1.01, 21) : Float64Array.of(1, 10);
    const none = drive.length - drive.filter((v) => v > 0).length;
    return histogramPanel({
      title: `from ${source} (Σḡ = ${fmt(gBar)} nS)${none > 0 ? `, ${none} without` : ""}`,
      edges,
      series: targets.map((members, t) => ({ name: net.cellTypeNames[t], counts: histogram(pick(drive, members), edges) })),
      colors,
      xTitle: "Σ incoming weight × Σḡ (nS)",
      yTitle: "neurons",
      logX: true,
      legend: true,
      width: 240,
      height: 200,
    });
  });
  const subtitle = "summed incoming weight from one population × summed peak conductance of its synapses; 21 log bins, stacked by postsynaptic type";
  return figure(data, "Synaptic input per neuron", { hconcat: panels }, subtitle);
}
