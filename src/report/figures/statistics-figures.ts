/** Firing-statistics figures: rate, CV and ISI histograms per cell type, Fano factor vs counting window. */
import type { TopLevelSpec } from "vega-lite";
import type { FigureData } from "../figure-data.js";
import { meanStd } from "../../model/statistics.js";
import { extent, fanoFactors, fanoWindows, histogram, interSpikeIntervals, linearBinEdges, logBinEdges, percentile } from "./stats.js";
import {
  type Datum,
  type HistogramPanelOptions,
  type Panel,
  figure,
  fmt,
  histogramPanel,
  membersByType,
  notePanel,
  pick,
  populationScale,
  unityScatterPanel,
} from "./spec.js";

/** One histogram panel per cell type, side by side, on shared edges. */
function perTypeHistograms(
  data: FigureData,
  values: (members: number[]) => Float64Array,
  panel: (t: number, members: number[], v: Float64Array) => Pick<HistogramPanelOptions, "title" | "edges" | "markers">,
  axes: Pick<HistogramPanelOptions, "xTitle" | "yTitle" | "logX">,
): Panel {
  const net = data.network;
  const colors = populationScale(net);
  const panels = membersByType(net.cellType, net.cellTypeNames.length).map((members, t) => {
    const v = values(members);
    const p = panel(t, members, v);
    return histogramPanel({ ...axes, ...p, colors, series: [{ name: net.cellTypeNames[t], counts: histogram(v, p.edges) }] });
  });
  return { hconcat: panels };
}

export function firingRateSpec(data: FigureData): TopLevelSpec {
  // 30 log bins between the smallest and largest non-zero rate of any type, as the original; when no two rates
  // differ, a range around them or (all silent) around the targets, so the panels still draw an axis.
  const range = extent(data.rates, 0) ?? extent(data.targets.firingRate, 0) ?? { min: 1, max: 1 };
  const edges = range.max > range.min ? logBinEdges(range.min, range.max, 30) : logBinEdges(range.min / 10, range.max * 10, 30);
  const body = perTypeHistograms(
    data,
    (members) => pick(data.rates, members),
    (t, members, v) => {
      const silent = members.length - v.filter((r) => r > 0).length;
      const target = data.targets.firingRate[t];
      return {
        title: `${data.network.cellTypeNames[t]}: mean ${fmt(meanStd(v, 1).mean)} Hz, ${silent} of ${members.length} silent`,
        edges,
        markers: [{ x: target, label: `target ${fmt(target)} Hz` }],
      };
    },
    { xTitle: "firing rate (Hz)", yTitle: "neurons", logX: true },
  );
  return figure(data, "Firing-rate distribution", body, "rate of each neuron over all trials of the epoch; silent neurons are counted in the panel title, not drawn");
}

export function cvSpec(data: FigureData): TopLevelSpec {
  const range = extent(data.cvs);
  const pad = range ? Math.max(0.05 * (range.max - range.min), 0.05) : 0.05;
  const edges = range ? linearBinEdges(Math.max(0, range.min - pad), range.max + pad, 50) : linearBinEdges(0, 2, 50);
  const body = perTypeHistograms(
    data,
    (members) => pick(data.cvs, members),
    (t, _members, v) => {
      const s = meanStd(v, 1);
      return {
        title: `${data.network.cellTypeNames[t]}: mean ${fmt(s.mean)}, ${s.n} neurons with ≥ 3 spikes`,
        edges,
        markers: [{ x: data.targets.cv, label: `target ${fmt(data.targets.cv)}` }],
      };
    },
    { xTitle: "CV of inter-spike intervals", yTitle: "neurons" },
  );
  return figure(data, "Coefficient of variation", body, "per neuron over all trials of the epoch; 50 shared bins");
}

export function isiSpec(data: FigureData): TopLevelSpec {
  const a = data.activity;
  const body = perTypeHistograms(
    data,
    (members) => interSpikeIntervals(a.spikePtr, a.spikeSteps, members, a.dt),
    (t, _members, v) => {
      const mean = meanStd(v, 1).mean;
      // 99.5th percentile as the upper edge keeps a few long gaps from squashing the bulk, as the original.
      const hi = Math.max(percentile(v, 99.5) || 0, (2 * a.dt) / 1000);
      return {
        title: `${data.network.cellTypeNames[t]}: ${v.length} ISIs, mean ${fmt(mean)} s`,
        edges: linearBinEdges(0, hi, 50),
        markers: [{ x: mean, label: `mean ${fmt(mean)} s` }],
      };
    },
    { xTitle: "inter-spike interval (s)", yTitle: "intervals" },
  );
  return figure(data, "Inter-spike intervals", body, `designated trial (${a.steps} steps of ${a.dt} ms); bins up to the 99.5th percentile`);
}

export function fanoSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const a = data.activity;
  const windows = fanoWindows(a.steps);
  const values: Datum[] = [];
  membersByType(net.cellType, net.cellTypeNames.length).forEach((members, t) => {
    for (const w of windows) {
      const s = meanStd(fanoFactors(a.spikePtr, a.spikeSteps, members, a.steps, w), 1);
      if (s.n > 0) values.push({ w: (w * a.dt) / 1000, mean: s.mean, lo: s.mean - (s.std || 0), hi: s.mean + (s.std || 0), pop: net.cellTypeNames[t] });
    }
  });
  const subtitle = "non-overlapping windows of the designated trial; var (ddof 1) / mean of the counts; mean ± s.d. over neurons with spikes";
  if (values.length === 0) return figure(data, "Fano factor", notePanel("no neuron spiked in two or more counting windows", 600, 300), subtitle);
  const x = { field: "w", type: "quantitative" as const, scale: { type: "log" as const }, title: "counting window (s)" };
  const color = { field: "pop", type: "nominal" as const, scale: populationScale(net, net.cellTypeNames), legend: { title: null } };
  const body: Panel = {
    width: 640,
    height: 360,
    data: { values },
    layer: [
      { data: { values: [{}] }, mark: { type: "rule", strokeDash: [6, 3], color: "#666" }, encoding: { y: { datum: 1 } } },
      { mark: { type: "rule", strokeWidth: 1.2 }, encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color } },
      { mark: { type: "line", point: true, strokeWidth: 1.6 }, encoding: { x, y: { field: "mean", type: "quantitative", title: "Fano factor" }, color } },
    ],
  };
  return figure(data, "Fano factor", body, subtitle + "; dashed: Poisson (1)");
}

/** Per-neuron rate against its own target (a targets file), one point per neuron, coloured by cell type. */
export function rateScatterSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const target = data.targets.perNeuronRate!;
  const values: Datum[] = [];
  const titles = membersByType(net.cellType, net.cellTypeNames.length).map((members, t) => {
    let se = 0;
    for (const j of members) {
      values.push({ target: target[j], rate: data.rates[j], pop: net.cellTypeNames[t] });
      se += (data.rates[j] - target[j]) ** 2;
    }
    return `${net.cellTypeNames[t]} RMS error ${fmt(Math.sqrt(se / Math.max(members.length, 1)))} Hz`;
  });
  const body = unityScatterPanel({
    values,
    x: { field: "target", title: "target rate (Hz)" },
    y: { field: "rate", title: "firing rate (Hz)" },
    colors: populationScale(net, net.cellTypeNames),
  });
  return figure(data, "Firing rate against per-neuron target", body, `each neuron over all trials of the epoch; dashed: rate = target; ${titles.join(", ")}`);
}
