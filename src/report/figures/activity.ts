/** Activity figures of the designated trial: rasters, PSTH, membrane voltage, conductances and currents. */
import type { TopLevelSpec } from "vega-lite";
import type { TrialActivity } from "../../engine/engine.js";
import type { FigureData } from "../figure-data.js";
import { decimate, evenSample, extent, psth } from "./stats.js";
import { type Datum, type Layer, type Panel, figure, fmt, membersByType, noteLayer, populationScale } from "./spec.js";

/** Raster marks at most (rows are dropped, never spikes, so the figure stays faithful to the rows it shows). */
const MAX_RASTER_POINTS = 50_000;
/** Line points per trace at most. */
const MAX_TRACE_POINTS = 1500;
const WIDTH = 760;

const seconds = (step: number, dt: number): number => (step * dt) / 1000;

/**
 * Evenly spread neurons from each group, about `rows` in all in proportion to group size (at least one per non-empty
 * group), halving the rows until their spikes fit MAX_RASTER_POINTS.
 */
function sampleRows(ptr: Int32Array, groups: number[][], rows: number): number[][] {
  const total = groups.reduce((n, g) => n + g.length, 0);
  for (let budget = rows; ; budget = Math.max(1, Math.floor(budget / 2))) {
    const picked = groups.map((g) => evenSample(g.length, g.length === 0 ? 0 : Math.max(1, Math.round((budget * g.length) / total))).map((i) => g[i]));
    const spikes = picked.flat().reduce((n, j) => n + ptr[j + 1] - ptr[j], 0);
    if (spikes <= MAX_RASTER_POINTS || budget === 1) return picked;
  }
}

export interface RasterSample {
  /** Input neurons shown, top rows first. */
  inputs: number[];
  /** Recurrent neurons shown, grouped by cell type. */
  neurons: number[];
}

/**
 * The rows of the spike raster: about data.rasterNeurons recurrent neurons and a quarter as many inputs, spread over
 * the populations in proportion to their sizes (fewer where that many rows would draw too many spikes).
 */
export function rasterSample(data: FigureData): RasterSample {
  const net = data.network;
  const a = data.activity;
  return {
    inputs: sampleRows(a.inputSpikePtr, membersByType(net.inputType, net.inputTypeNames.length), Math.max(1, Math.round(data.rasterNeurons / 4))).flat(),
    neurons: sampleRows(a.spikePtr, membersByType(net.cellType, net.cellTypeNames.length), data.rasterNeurons).flat(),
  };
}

export interface RasterGroup {
  ptr: Int32Array;
  spikeSteps: Int32Array;
  neurons: number[];
  /** The colour's label per neuron id: its population name, unless the style's colours say otherwise. */
  population: (j: number) => string;
}

/** How a raster colours and labels its rows; by default by population, rows unlabelled, time in s. */
export interface RasterStyle {
  /** Colour per label of RasterGroup.population (default: the population palette). */
  colors?: { domain: string[]; range: string[] };
  /** One y-axis label per row, top to bottom. */
  rowLabels?: string[];
  /** Time axis in ms rather than s. */
  ms?: boolean;
}

const inputRows = (data: FigureData, neurons: number[]): RasterGroup => ({
  ptr: data.activity.inputSpikePtr,
  spikeSteps: data.activity.inputSpikeSteps,
  neurons,
  population: (j) => data.network.inputTypeNames[data.network.inputType[j]],
});

const recurrentRows = (data: FigureData, neurons: number[]): RasterGroup => ({
  ptr: data.activity.spikePtr,
  spikeSteps: data.activity.spikeSteps,
  neurons,
  population: (j) => data.network.cellTypeNames[data.network.cellType[j]],
});

/** Consecutive rows of one population: its first row and how many. */
export interface PopulationRun {
  pop: string;
  from: number;
  rows: number;
}

/**
 * One tick per spike, rows in order of the groups, top to bottom. Without row labels, the rows of each population
 * (runs of one RasterGroup.population) are labelled on the y axis with its name and row count, and a rule separates
 * neighbouring populations.
 */
export function rasterPanel(data: FigureData, groups: RasterGroup[], height: number, style: RasterStyle = {}): Panel {
  const dt = data.activity.dt;
  const time = (step: number): number => (style.ms ? step * dt : seconds(step, dt));
  const labels = style.rowLabels;
  const points: Datum[] = [];
  const shown = new Set<string>();
  const runs: PopulationRun[] = [];
  let row = 0;
  for (const g of groups) {
    for (const j of g.neurons) {
      const pop = g.population(j);
      shown.add(pop);
      if (runs.length > 0 && runs[runs.length - 1].pop === pop) runs[runs.length - 1].rows++;
      else runs.push({ pop, from: row, rows: 1 });
      for (let k = g.ptr[j]; k < g.ptr[j + 1]; k++) points.push({ t: time(g.spikeSteps[k]), row, pop });
      row++;
    }
  }
  const centres = runs.map((r) => r.from + (r.rows - 1) / 2);
  const populationLabels = Object.fromEntries(runs.map((r, i) => [String(centres[i]), `${r.pop} (${r.rows})`]));
  const ticks: Layer = {
    data: { values: points },
    mark: { type: "tick", orient: "vertical", opacity: 1, thickness: 2, size: Math.max(2, Math.min(10, height / Math.max(1, row))) },
    encoding: {
      x: { field: "t", type: "quantitative", scale: { domain: [0, time(data.activity.steps)], nice: false }, title: `time (${style.ms ? "ms" : "s"})` },
      y: {
        field: "row",
        type: "quantitative",
        scale: { domain: [-0.5, row - 0.5], reverse: true, nice: false, zero: false },
        axis: labels
          ? { values: labels.map((_, i) => i), labelExpr: `${JSON.stringify(labels)}[datum.value]`, ticks: false, grid: false }
          : { values: centres, labelExpr: `${JSON.stringify(populationLabels)}[datum.value + '']`, ticks: false, grid: false, labelFontSize: 11 },
        title: labels ? null : `sampled neurons per population (${row} in all)`,
      },
      color: { field: "pop", type: "nominal", scale: style.colors ?? populationScale(data.network, [...shown]), legend: { title: null } },
    },
  };
  const layer: Layer[] = [ticks];
  if (!labels && runs.length > 1) {
    layer.push({
      data: { values: runs.slice(1).map((r) => ({ y: r.from - 0.5 })) },
      mark: { type: "rule", color: "#333", strokeWidth: 1 },
      encoding: { y: { field: "y", type: "quantitative" } },
    });
  }
  if (points.length === 0) layer.push(noteLayer("no spikes"));
  return { width: WIDTH, height, layer };
}

/** The populations of a raster panel's rows, top to bottom, as rasterPanel separates them. */
export function rasterSeparators(panel: Panel): number[] {
  const layers = (panel as { layer: { mark: { type: string }; data?: { values: { y: number }[] } }[] }).layer;
  return layers.filter((l) => l.mark.type === "rule").flatMap((l) => l.data!.values.map((v) => v.y));
}

export function rasterSpec(data: FigureData): TopLevelSpec {
  const sample = rasterSample(data);
  const body = rasterPanel(data, [inputRows(data, sample.inputs), recurrentRows(data, sample.neurons)], 520);
  const trial = `the designated trial only (1 of ${data.interval.trials} trials of epoch ${data.activity.epoch}, ${fmt(data.activity.steps * data.activity.dt)} ms)`;
  return figure(data, "Spike raster", body, `${trial}: ${sample.inputs.length} input and ${sample.neurons.length} recurrent neurons, evenly spread over each population`);
}

export function inputRasterSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const a = data.activity;
  const inputs = sampleRows(a.inputSpikePtr, membersByType(net.inputType, net.inputTypeNames.length), 100).flat();
  const body = rasterPanel(data, [inputRows(data, inputs)], 420);
  return figure(data, "Input spikes", body, `${inputs.length} of ${net.inputType.length} input neurons`);
}

/** The PSTH's smoothing window: 50 ms, or a fifth of a shorter trial, so that the trial still shows a time course. */
export const psthWindowMs = (steps: number, dt: number): number => Math.max(dt, Math.min(50, Math.round((steps * dt) / 5 / dt) * dt));

export function psthSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const a = data.activity;
  const windowMs = psthWindowMs(a.steps, a.dt);
  // Every trial of the epoch: spikes per step of each population (P columns), as the engines count them.
  const K = net.cellTypeNames.length;
  const P = K + net.inputTypeNames.length;
  const trials = a.trialSpikeCounts.length / Math.max(1, net.cellType.length);
  const groups = [
    ...membersByType(net.cellType, net.cellTypeNames.length).map((members, t) => ({ population: t, size: members.length, pop: net.cellTypeNames[t], target: data.targets.firingRate[t] })),
    ...membersByType(net.inputType, net.inputTypeNames.length).map((members, t) => ({ population: K + t, size: members.length, pop: net.inputTypeNames[t], target: NaN })),
  ];
  // The window already smooths, so keeping every stride-th sample loses nothing visible.
  const stride = Math.max(1, Math.ceil(a.steps / 2000));
  const colors = populationScale(net);
  const panels: Panel[] = groups.map((g, i) => {
    const counts = Float64Array.from({ length: a.steps }, (_, s) => a.populationSpikes[s * P + g.population]);
    const rate = psth(counts, g.size * trials, a.dt, windowMs);
    const values: Datum[] = [];
    for (let s = 0; s < a.steps; s += stride) values.push({ t: seconds(s, a.dt), rate: rate[s], pop: g.pop });
    if ((a.steps - 1) % stride !== 0) values.push({ t: seconds(a.steps - 1, a.dt), rate: rate[a.steps - 1], pop: g.pop });
    const spikes = counts.reduce((n, c) => n + c, 0);
    const hasTarget = Number.isFinite(g.target);
    const top = Math.max(extent(rate)?.max ?? 0, hasTarget ? g.target : 0) * 1.15 || 1;
    const last = i === groups.length - 1;
    const layer: Layer[] = [
      {
        data: { values },
        mark: { type: "line", strokeWidth: 1.3 },
        encoding: {
          x: { field: "t", type: "quantitative", scale: { domain: [0, seconds(a.steps - 1, a.dt)], nice: false }, title: last ? "time (s)" : null, axis: last ? {} : { labels: false } },
          y: { field: "rate", type: "quantitative", title: "rate (Hz)", scale: { domain: [0, top], nice: false } },
          color: { field: "pop", type: "nominal", scale: colors, legend: null },
        },
      },
    ];
    if (hasTarget) {
      layer.push(
        { data: { values: [{ target: g.target }] }, mark: { type: "rule", strokeDash: [6, 3], color: "black" }, encoding: { y: { field: "target", type: "quantitative" } } },
        {
          data: { values: [{ target: g.target }] },
          mark: { type: "text", align: "right", dy: -6, fontSize: 11 },
          encoding: { x: { value: WIDTH - 4 }, y: { field: "target", type: "quantitative" }, text: { value: `target ${fmt(g.target)} Hz` } },
        },
      );
    }
    return { title: `${g.pop}: ${g.size} neurons × ${trials} trials, ${spikes} spikes`, width: WIDTH, height: 100, layer };
  });
  return figure(data, "Population rate (PSTH)", { vconcat: panels, spacing: 10 } as Panel, [
    `all ${trials} trials of epoch ${a.epoch}: spikes per step summed over the population and the trials, per neuron`,
    `centred ${fmt(windowMs)} ms boxcar, divided by the steps it covers (no dip at the trial's edges); dashed: target rate`,
  ]);
}

interface Trace {
  label: string;
  values: ArrayLike<number>;
  spikes: ArrayLike<number>;
}

/** Voltage traces with threshold and rest lines; spikes drawn as the original does, from threshold to 0 mV. */
function voltagePanel(title: string, traces: Trace[], theta: number, rest: number, dt: number): Panel {
  const lines: Datum[] = [];
  const spikes: Datum[] = [];
  for (const tr of traces) {
    for (const s of decimate(tr.values, MAX_TRACE_POINTS)) lines.push({ t: seconds(s, dt), v: tr.values[s], id: tr.label });
    for (let k = 0; k < tr.spikes.length; k++) spikes.push({ t: seconds(tr.spikes[k], dt), id: tr.label });
  }
  const color = { field: "id", type: "nominal" as const, legend: { title: null } };
  const level = (v: number, stroke: string, text: string): Layer[] => [
    { data: { values: [{}] }, mark: { type: "rule", strokeDash: [6, 3], color: stroke }, encoding: { y: { datum: v } } },
    {
      data: { values: [{}] },
      mark: { type: "text", align: "right", dy: -7, fontSize: 11, color: stroke },
      encoding: { x: { value: WIDTH - 4 }, y: { datum: v }, text: { value: text } },
    },
  ];
  return {
    title,
    width: WIDTH,
    height: 150,
    layer: [
      ...level(theta, "#b22222", `threshold ${fmt(theta)} mV`),
      ...level(rest, "#666", `rest ${fmt(rest)} mV`),
      {
        data: { values: lines },
        mark: { type: "line", strokeWidth: 1 },
        encoding: {
          x: { field: "t", type: "quantitative", scale: { nice: false }, title: "time (s)" },
          y: { field: "v", type: "quantitative", scale: { zero: false }, title: "V (mV)" },
          color,
        },
      },
      {
        data: { values: spikes },
        mark: { type: "rule", strokeWidth: 1 },
        encoding: { x: { field: "t", type: "quantitative" }, y: { datum: theta }, y2: { datum: 0 }, color },
      },
    ],
  };
}

/** Panels one above the other, each with its own colours and legend (series differ from panel to panel). */
const stacked = (panels: Panel[]): Panel => ({ vconcat: panels, resolve: { scale: { color: "independent" }, legend: { color: "independent" } } });

const spikesOf = (a: TrialActivity, j: number): Int32Array => a.spikeSteps.subarray(a.spikePtr[j], a.spikePtr[j + 1]);

export function membraneVoltageSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const a = data.activity;
  const typeOf = (j: number): number => net.cellType[j];
  const panels: Panel[] = [
    voltagePanel(
      `sample neuron ${a.sampleNeuron} (${net.cellTypeNames[typeOf(a.sampleNeuron)]})`,
      [{ label: `#${a.sampleNeuron}`, values: a.sampleVoltage, spikes: spikesOf(a, a.sampleNeuron) }],
      net.theta[typeOf(a.sampleNeuron)],
      net.restingPotential[typeOf(a.sampleNeuron)],
      a.dt,
    ),
  ];
  net.cellTypeNames.forEach((name, t) => {
    const traces: Trace[] = [];
    a.traceNeurons.forEach((j, i) => {
      if (typeOf(j) === t) traces.push({ label: `#${j}`, values: a.traceVoltages.subarray(i * a.steps, (i + 1) * a.steps), spikes: spikesOf(a, j) });
    });
    if (traces.length > 0) panels.push(voltagePanel(`${name} neurons`, traces, net.theta[t], net.restingPotential[t], a.dt));
  });
  return figure(data, "Membrane voltage", stacked(panels));
}

/** Last 10% of the trial, as the original, but at least 50 steps so short trials still show a shape. */
function traceWindow(steps: number): number {
  return Math.min(steps, Math.max(50, Math.ceil(0.1 * steps)));
}

function linePanel(title: string, values: Datum[], yTitle: string): Panel {
  return {
    title,
    width: WIDTH,
    height: 120,
    data: { values },
    mark: { type: "line", strokeWidth: 1.2 },
    encoding: {
      x: { field: "t", type: "quantitative", scale: { nice: false }, title: "time (s)" },
      y: { field: "y", type: "quantitative", title: yTitle },
      color: { field: "series", type: "nominal", legend: { title: null } },
    },
  };
}

export function conductancesSpec(data: FigureData): TopLevelSpec {
  const net = data.network;
  const a = data.activity;
  const S = net.slots.length;
  const from = a.steps - traceWindow(a.steps);
  const stride = Math.max(1, Math.ceil((a.steps - from) / MAX_TRACE_POINTS));
  const sources = [...new Set(net.slots.map((s) => s.source))];
  const panels: Panel[] = sources.map((source) => {
    const values: Datum[] = [];
    net.slots.forEach((slot, i) => {
      if (slot.source !== source) return;
      for (let s = from; s < a.steps; s += stride) values.push({ t: seconds(s, a.dt), y: a.sampleConductance[s * S + i], series: slot.name });
    });
    return linePanel(`conductances from ${source}`, values, "g (nS)");
  });
  const currents: Datum[] = [];
  for (let s = from; s < a.steps; s += stride) {
    let exc = 0;
    let inh = 0;
    net.slots.forEach((slot, i) => {
      if (slot.excitatory) exc -= a.sampleCurrent[s * S + i];
      else inh -= a.sampleCurrent[s * S + i];
    });
    currents.push({ t: seconds(s, a.dt), y: exc, series: "excitatory" }, { t: seconds(s, a.dt), y: inh, series: "inhibitory" });
  }
  panels.push(linePanel("synaptic currents, summed by synapse kind", currents, "I (pA, depolarising > 0)"));
  const sample = `sample neuron ${a.sampleNeuron} (${net.cellTypeNames[net.cellType[a.sampleNeuron]]})`;
  return figure(data, "Conductances and currents", stacked(panels), `${sample}, last ${traceWindow(a.steps)} steps of the trial`);
}
