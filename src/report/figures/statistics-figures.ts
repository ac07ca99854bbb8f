/**
 * Firing-statistics figures: rate, CV and Fano-factor histograms per cell type over the accumulation interval's epochs
 * (pooledActivity), ISI histograms of every trial of the recorded epoch.
 */
import type { TopLevelSpec } from "vega-lite";
import type { FigureData } from "../figure-data.js";
import { meanStd } from "../../model/statistics.js";
import { countLogBinEdges, extent, fanoAcrossRepeats, histogram, interSpikeIntervals, linearBinEdges, percentile } from "./stats.js";
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
  values: (members: number[], type: number) => Float64Array,
  panel: (t: number, members: number[], v: Float64Array) => Pick<HistogramPanelOptions, "title" | "edges" | "markers">,
  axes: Pick<HistogramPanelOptions, "xTitle" | "yTitle" | "logX">,
): Panel {
  const net = data.network;
  const colors = populationScale(net);
  const panels = membersByType(net.cellType, net.cellTypeNames.length).map((members, t) => {
    const v = values(members, t);
    const p = panel(t, members, v);
    return histogramPanel({ ...axes, ...p, colors, series: [{ name: net.cellTypeNames[t], counts: histogram(v, p.edges) }] });
  });
  return { hconcat: panels };
}

/**
 * What the statistics figures pool: the interval's epochs (FigureData.interval), each `trials` trials of `steps`
 * steps. Rates there are spike counts ÷ (trials · steps · dt), so counts come back exactly.
 */
export interface PooledActivity {
  epochs: number;
  trials: number;
  steps: number;
  dtMs: number;
  /** Seconds of activity per neuron over all pooled epochs, and per epoch. */
  seconds: number;
  epochSeconds: number;
  /** Per neuron: spike count over all pooled epochs, rate (Hz) and mean CV over epochs that have one (NaN if none). */
  counts: Float64Array;
  rates: Float64Array;
  cvs: Float64Array;
  /** The rate one spike adds (Hz): rates come in steps of this. */
  quantum: number;
  /** "E epochs × B trials × T ms", for subtitles. */
  description: string;
}

export function pooledActivity(data: FigureData): PooledActivity {
  const { interval } = data;
  const a = data.activity;
  const N = data.network.cellType.length;
  const epochSeconds = (interval.trials * a.steps * a.dt) / 1000;
  const epochCounts = interval.rates.map((r) => Float64Array.from(r, (rate) => Math.round(rate * epochSeconds)));
  const counts = new Float64Array(N);
  for (const c of epochCounts) for (let j = 0; j < N; j++) counts[j] += c[j];
  const seconds = epochSeconds * epochCounts.length;
  const cvs = new Float64Array(N);
  for (let j = 0; j < N; j++) {
    let sum = 0;
    let n = 0;
    for (const cv of interval.cvs) {
      if (Number.isFinite(cv[j])) {
        sum += cv[j];
        n++;
      }
    }
    cvs[j] = n > 0 ? sum / n : NaN;
  }
  const E = epochCounts.length;
  const epochs = interval.epochs;
  const which = E === 1 ? `epoch ${epochs[0]}` : `epochs ${epochs[0]}–${epochs[E - 1]}`;
  return {
    epochs: E,
    trials: interval.trials,
    steps: a.steps,
    dtMs: a.dt,
    seconds,
    epochSeconds,
    counts,
    rates: Float64Array.from(counts, (c) => c / seconds),
    cvs,
    quantum: 1 / seconds,
    description: `${which}: ${E} × ${interval.trials} trials × ${fmt(a.steps * a.dt)} ms = ${fmt(seconds)} s per neuron`,
  };
}

export function firingRateSpec(data: FigureData): TopLevelSpec {
  const p = pooledActivity(data);
  // Log bins of whole spike counts from half a spike (the lowest non-zero rate is one spike, p.quantum) up past the
  // highest rate, the axis widened to hold every target.
  const targets = data.targets.firingRate.filter((t) => t > 0);
  const top = Math.max(extent(p.rates, 0)?.max ?? 0, ...targets, 2 * p.quantum);
  const lo = Math.min(0.5 * p.quantum, ...targets.map((t) => t / 1.5));
  const hi = top * 1.5;
  const edges = countLogBinEdges(lo, hi, 30, p.quantum);
  const body = perTypeHistograms(
    data,
    (members) => pick(p.rates, members),
    (t, members, v) => {
      const silent = members.length - v.filter((r) => r > 0).length;
      const target = data.targets.firingRate[t];
      return {
        title: `${data.network.cellTypeNames[t]}: mean ${fmt(meanStd(v, 1).mean)} Hz (target ${fmt(target)}), ${silent} of ${members.length} silent`,
        edges,
        markers: [{ x: target, label: `target ${fmt(target)} Hz` }],
      };
    },
    { xTitle: "firing rate (Hz)", yTitle: "neurons", logX: true },
  );
  return figure(data, "Firing-rate distribution", body, [
    `each neuron's spike count over ${p.description}`,
    `rates in steps of ${fmt(p.quantum)} Hz (one spike), bins of whole counts; silent neurons counted in the panel title, not drawn; dashed: target`,
  ]);
}

export function cvSpec(data: FigureData): TopLevelSpec {
  const p = pooledActivity(data);
  const target = data.targets.cv;
  const range = extent(p.cvs);
  // From 0 (a CV is never negative) to past both the largest CV and the target.
  const hi = Math.max(range ? range.max * 1.05 : 0, Number.isFinite(target) ? target * 1.25 : 0, 1.5);
  const edges = linearBinEdges(0, hi, 40);
  const body = perTypeHistograms(
    data,
    (members) => pick(p.cvs, members),
    (t, members, v) => {
      const s = meanStd(v, 1);
      return {
        title: `${data.network.cellTypeNames[t]}: mean ${fmt(s.mean)} (target ${fmt(target)}), ${s.n} of ${members.length} neurons`,
        edges,
        markers: [{ x: target, label: `target ${fmt(target)}` }],
      };
    },
    { xTitle: "CV of inter-spike intervals", yTitle: "neurons" },
  );
  return figure(data, "Coefficient of variation", body, [
    `each neuron's ISI CV within a trial, averaged over the trials where it fired ≥ 3 spikes, over ${p.description}`,
    "neurons without such a trial are not drawn (counted in the title: drawn of all); 40 shared bins; dashed: target",
  ]);
}

export function isiSpec(data: FigureData): TopLevelSpec {
  const a = data.activity;
  const body = perTypeHistograms(
    data,
    (_members, t) => interSpikeIntervals(a.isiSteps, t, a.steps, a.dt),
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
  return figure(data, "Inter-spike intervals", body, `intervals between consecutive spikes of a neuron within a trial, over all ${data.interval.trials} trials of epoch ${a.epoch} (${a.steps} steps of ${a.dt} ms each); bins up to the 99.5th percentile`);
}

/** Fano factors above this are drawn in the last bin (a few near-silent neurons would otherwise squash the rest). */
const FANO_MAX = 5;

export function fanoSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const a = data.activity;
  const N = net.cellType.length;
  // Counts of the same epoch's trials: one window, independent Poisson inputs (the repeats a Fano factor needs).
  const trials = a.trialSpikeCounts.length / N;
  const counts = Array.from({ length: trials }, (_, b) => a.trialSpikeCounts.subarray(b * N, (b + 1) * N));
  const subtitle = [
    `each neuron's spike count in each of the ${trials} trials of epoch ${a.epoch}: variance across trials (ddof 1) / mean`,
    `counting window the whole trial (${fmt((a.steps * a.dt) / 1000)} s); dashed: Poisson (1)`,
  ];
  if (trials < 2) {
    return figure(data, "Fano factor across trials", notePanel("one trial per epoch: a Fano factor across trials needs batch_size ≥ 2", 640, 240), subtitle);
  }
  const fano = fanoAcrossRepeats(counts, N);
  const edges = linearBinEdges(0, FANO_MAX, 40);
  const body = perTypeHistograms(
    data,
    (members) => Float64Array.from(members, (j) => Math.min(fano[j], FANO_MAX)),
    (t, members, v) => {
      const defined = v.filter(Number.isFinite);
      // The population's Fano factor: mean variance over mean count (robust to near-silent neurons).
      let sumVar = 0;
      let sumMean = 0;
      for (const j of members) {
        const c = counts.map((e) => e[j]);
        const m = c.reduce((x, y) => x + y, 0) / c.length;
        sumMean += m;
        sumVar += c.reduce((x, y) => x + (y - m) ** 2, 0) / (c.length - 1);
      }
      const pooled = sumMean > 0 ? sumVar / sumMean : NaN;
      return {
        title: `${net.cellTypeNames[t]}: ⟨var⟩/⟨mean⟩ ${fmt(pooled)}, ${defined.length} of ${members.length} neurons fired`,
        edges,
        markers: [{ x: 1, label: "Poisson" }],
      };
    },
    { xTitle: `Fano factor across trials (values > ${FANO_MAX} in the last bin)`, yTitle: "neurons" },
  );
  return figure(data, "Fano factor across trials", body, subtitle);
}

/** Per-neuron rate against its own target (a targets file), one point per neuron, coloured by cell type. */
export function rateScatterSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const target = data.targets.perNeuronRate!;
  const p = pooledActivity(data);
  const values: Datum[] = [];
  const titles = membersByType(net.cellType, net.cellTypeNames.length).map((members, t) => {
    let se = 0;
    for (const j of members) {
      values.push({ target: target[j], rate: p.rates[j], pop: net.cellTypeNames[t] });
      se += (p.rates[j] - target[j]) ** 2;
    }
    return `${net.cellTypeNames[t]} RMS error ${fmt(Math.sqrt(se / Math.max(members.length, 1)))} Hz`;
  });
  const body = unityScatterPanel({
    values,
    x: { field: "target", title: "target rate (Hz)" },
    y: { field: "rate", title: "firing rate (Hz)" },
    colors: populationScale(net, net.cellTypeNames),
  });
  return figure(data, "Firing rate against per-neuron target", body, [`each neuron's rate over ${p.description}; dashed: rate = target`, titles.join(", ")]);
}
