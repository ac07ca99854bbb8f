/**
 * Figures of a fit to a recorded teacher (FigureData.teacher; MODEL-HEAD 7): the teacher's and the student's spikes
 * of the plotted trial row by row (spike_comparison.png), and their per-neuron rates against each other, beside the
 * teacher's against itself on other inputs (firing_rate_correlogram.png).
 */
import type { TopLevelSpec } from "vega-lite";
import { pearson } from "../../model/statistics.js";
import type { FigureData, TeacherFigureData } from "../figure-data.js";
import { type RasterGroup, rasterPanel } from "./activity.js";
import { type Datum, type Panel, figure, membersByType, notePanel, populationScale, unityScatterPanel } from "./spec.js";

/** Neurons of each cell type in the spike comparison: the first ones by index, as the original shows neurons 0–9. */
export const COMPARISON_NEURONS_PER_TYPE = 6;
const ROW_HEIGHT = 16;
const PANEL = 380;
const TARGET = "Target";
const TRAINED = "Trained";
const COMPARISON_COLORS = { domain: [TARGET, TRAINED], range: ["#1f77b4", "#ff7f0e"] };

const teacherOf = (data: FigureData): TeacherFigureData => {
  if (!data.teacher) throw new Error("fit figures need a recorded teacher (FigureData.teacher)");
  return data.teacher;
};

/** The neurons of spike_comparison.png, per cell type in type order: its first COMPARISON_NEURONS_PER_TYPE neurons. */
export function comparisonNeurons(data: FigureData): number[][] {
  const net = data.network;
  return membersByType(net.cellType, net.cellTypeNames.length).map((members) => members.slice(0, COMPARISON_NEURONS_PER_TYPE));
}

export function spikeComparisonSpec(data: FigureData): TopLevelSpec {
  const teacher = teacherOf(data);
  const a = data.activity;
  const perType = comparisonNeurons(data);
  const groups: RasterGroup[] = [];
  const labels: string[] = [];
  for (const j of perType.flat()) {
    groups.push(
      { ptr: teacher.spikePtr, spikeSteps: teacher.spikeSteps, neurons: [j], population: () => TARGET },
      { ptr: a.spikePtr, spikeSteps: a.spikeSteps, neurons: [j], population: () => TRAINED },
    );
    labels.push(`#${j} target`, `#${j} trained`);
  }
  const body = rasterPanel(data, groups, Math.max(160, ROW_HEIGHT * labels.length), { colors: COMPARISON_COLORS, rowLabels: labels, ms: true });
  const shown = perType
    .map((ids, t) => (ids.length > 0 ? `${data.network.cellTypeNames[t]} ${ids.map((j) => `#${j}`).join(", ")}` : ""))
    .filter((s) => s !== "")
    .join("; ");
  return figure(data, "Spike comparison: target vs trained", body, [
    "the plotted trial: the recorded teacher (Target) and the student (Trained) on the same recorded inputs, rows alternating",
    `the first ${COMPARISON_NEURONS_PER_TYPE} neurons of each cell type: ${shown}`,
  ]);
}

/** Pearson r for a panel title. */
const rText = (r: number): string => (Number.isFinite(r) ? `r = ${r.toFixed(3)}` : "r undefined (constant rates)");

/** One square panel of per-neuron rates, y against x, coloured by cell type, r in the title. */
function ratePanel(data: FigureData, name: string, x: ArrayLike<number>, y: ArrayLike<number>, xTitle: string, yTitle: string): Panel {
  const net = data.network;
  const values: Datum[] = Array.from(net.cellType, (t, j) => ({ x: x[j], y: y[j], pop: net.cellTypeNames[t] }));
  return unityScatterPanel({
    values,
    x: { field: "x", title: xTitle },
    y: { field: "y", title: yTitle },
    colors: populationScale(net, net.cellTypeNames),
    title: `${name}: ${rText(pearson(x, y))}`,
    size: PANEL,
  });
}

/** The correlogram's two Pearson r: teacher half against half (null with one trial), teacher against student. */
export function correlogramR(data: FigureData): { poisson: number | null; learning: number } {
  const teacher = teacherOf(data);
  return { poisson: teacher.halves ? pearson(teacher.halves.first, teacher.halves.second) : null, learning: pearson(teacher.rates, data.rates) };
}

export function correlogramSpec(data: FigureData): TopLevelSpec {
  const teacher = teacherOf(data);
  const h = teacher.halves;
  const trials = (from: number, to: number): string => (to - from === 1 ? `trial ${from}` : `trials ${from}–${to - 1}`);
  const poisson = h
    ? ratePanel(data, "Poisson variability", h.first, h.second, `teacher, ${trials(0, h.split)} (Hz)`, `teacher, ${trials(h.split, h.trials)} (Hz)`)
    : { title: "Poisson variability", ...notePanel("one trial per epoch: no halves to compare", PANEL, PANEL) };
  const learning = ratePanel(data, "Learning variability", teacher.rates, data.rates, "teacher rate (Hz)", "trained rate (Hz)");
  return figure(data, "Firing-rate correlogram", { hconcat: [poisson, learning] }, [
    "one point per neuron, coloured by cell type: its firing rate over trials of the epoch; dashed: y = x; r: Pearson over neurons",
    "left: the teacher on one half of the trials against the other (independent Poisson inputs): the floor any fit can reach",
    "right: the recorded teacher against the trained student over all trials (the same inputs)",
  ]);
}
