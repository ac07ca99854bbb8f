/** Training-history figures from the metrics rows: loss terms and per-type mean rates against their targets. */
import type { TopLevelSpec } from "vega-lite";
import type { FigureData } from "../figure-data.js";
import { type Datum, type Layer, type Panel, figure, noteLayer, notePanel, populationScale } from "./spec.js";

const WIDTH = 720;
const HEIGHT = 360;
const epochAxis = { field: "epoch", type: "quantitative" as const, title: "epoch", axis: { tickMinStep: 1, format: "d" } };
/** A point per update only on short histories: on long ones the points merge into the line and only cost rendering. */
const withPoints = (data: FigureData): boolean => data.history.length <= 60;

export function trainingHistorySpec(data: FigureData): TopLevelSpec {
  const terms = [...new Set(data.history.flatMap((row) => Object.keys(row).filter((k) => k.endsWith("loss"))))].sort((a, b) =>
    a === "total_loss" ? -1 : b === "total_loss" ? 1 : a.localeCompare(b),
  );
  const values: Datum[] = [];
  for (const row of data.history) {
    for (const term of terms) {
      const v = row[term];
      if (Number.isFinite(v) && v > 0) values.push({ epoch: row.epoch, value: v, term: term.replace(/_loss$/, "").replace(/_/g, " ") });
    }
  }
  const subtitle = "log scale: zero, negative and non-finite values (e.g. the first epoch's inf) are left out";
  if (values.length === 0) return figure(data, "Training history", notePanel("no positive loss values logged yet", WIDTH, HEIGHT), subtitle);
  const body: Panel = {
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: "line", point: withPoints(data), strokeWidth: 1.6 },
    encoding: {
      x: epochAxis,
      y: { field: "value", type: "quantitative", scale: { type: "log" }, title: "loss" },
      color: { field: "term", type: "nominal", sort: null, legend: { title: null } },
    },
  };
  return figure(data, "Training history", body, subtitle);
}

export function ratesVsTargetsSpec(data: FigureData): TopLevelSpec {
  const names = data.network.cellTypeNames;
  const values: Datum[] = [];
  for (const row of data.history) {
    for (const pop of names) {
      const v = row[`firing_rate/${pop}/mean`];
      if (Number.isFinite(v)) values.push({ epoch: row.epoch, rate: v, pop });
    }
  }
  const color = { field: "pop", type: "nominal" as const, scale: populationScale(data.network, names), legend: { title: null } };
  const targets = names.map((pop, t) => ({ pop, target: data.targets.firingRate[t] }));
  const layer: Layer[] = [
    {
      data: { values: targets },
      mark: { type: "rule", strokeDash: [6, 3], strokeWidth: 1.4 },
      encoding: { y: { field: "target", type: "quantitative", title: "mean firing rate (Hz)" }, color },
    },
  ];
  if (values.length > 0) {
    const line = { type: "line" as const, point: withPoints(data), strokeWidth: 1.6 };
    layer.push({ data: { values }, mark: line, encoding: { x: epochAxis, y: { field: "rate", type: "quantitative" }, color } });
  } else {
    layer.push(noteLayer("no rates logged yet"));
  }
  return figure(data, "Mean firing rate per cell type", { width: WIDTH, height: HEIGHT, layer }, "solid: mean rate over the neurons of a type; dashed: target");
}

/** The scaling-factor columns of the metrics rows (`scaling_factor/{pre}_{post}/ratio`), in column order. */
const factorRatioColumns = (data: FigureData) => [...new Set(data.history.flatMap((row) => Object.keys(row).filter((k) => /^scaling_factor\/.+\/ratio$/.test(k))))];

/** Runs that train scaling factors: each learned factor over its target through training; 1 = recovered. */
export function scalingFactorsSpec(data: FigureData): TopLevelSpec {
  const values: Datum[] = [];
  for (const column of factorRatioColumns(data)) {
    const pair = column.slice("scaling_factor/".length, -"/ratio".length);
    for (const row of data.history) if (Number.isFinite(row[column])) values.push({ epoch: row.epoch, ratio: row[column], pair });
  }
  const layer: Layer[] = [
    { data: { values: [{ one: 1 }] }, mark: { type: "rule", strokeDash: [6, 3], strokeWidth: 1.4, color: "#555" }, encoding: { y: { field: "one", type: "quantitative", title: "learned factor / target" } } },
    {
      data: { values },
      mark: { type: "line", point: true, strokeWidth: 1.6 },
      encoding: { x: epochAxis, y: { field: "ratio", type: "quantitative", scale: { zero: false } }, color: { field: "pair", type: "nominal", sort: null, legend: { title: "pre_post" } } },
    },
  ];
  return figure(data, "Scaling factors against their targets", { width: WIDTH, height: HEIGHT, layer }, "one line per (pre type, post type) factor; dashed: target (ratio 1)");
}

/** scaling_factors.png is drawn for runs whose metrics hold factors. */
export const hasScalingFactors = (data: FigureData) => factorRatioColumns(data).length > 0;
