/**
 * The input rates over the designated trial with odour inputs (model/odours.ts): the mixture weights of the odours,
 * and the rates they give a few inputs (Σ_a w_a(t)·pattern_a).
 */
import type { TopLevelSpec } from "vega-lite";
import type { FigureData } from "../figure-data.js";
import { evenSample, extent } from "./stats.js";
import { type Datum, type Panel, figure, fmt } from "./spec.js";

const WIDTH = 760;
/** Odours drawn as lines at most (the strongest over the trial), and inputs whose rates are drawn. */
const MAX_ODOURS = 10;
const SAMPLE_INPUTS = 6;
/** Line points per series at most. */
const MAX_POINTS = 1000;

export function inputRatesSpec(data: FigureData): TopLevelSpec {
  const a = data.activity;
  const { numPatterns: P, patterns } = data.network.odours!;
  const w = a.odourMixture!;
  const M = data.network.inputType.length;
  const T = a.steps;
  const steps = evenSample(T, Math.min(T, MAX_POINTS));
  const seconds = (t: number) => (t * a.dt) / 1000;
  // The odours with the largest mean weight over the trial, strongest first.
  const mean = Array.from({ length: P }, (_, k) => steps.reduce((s, t) => s + w[t * P + k], 0) / steps.length);
  const shown = mean.map((m, k) => ({ m, k })).sort((x, y) => y.m - x.m || x.k - y.k).slice(0, MAX_ODOURS);
  const mixture: Datum[] = shown.flatMap(({ k }) => steps.map((t) => ({ t: seconds(t), w: w[t * P + k], odour: `odour ${k}` })));
  // Inputs: the most modulated input of each of the strongest odours (its rate is above the others' in that pattern).
  const inputs = [...new Set(shown.slice(0, SAMPLE_INPUTS).map(({ k }) => argMax(patterns.subarray(k * M, (k + 1) * M))))];
  const rates: Datum[] = inputs.flatMap((i) =>
    steps.map((t) => {
      let r = 0;
      for (let k = 0; k < P; k++) r += w[t * P + k] * patterns[k * M + i];
      return { t: seconds(t), rate: r, input: `input ${i} (${data.network.inputTypeNames[data.network.inputType[i]]})` };
    }),
  );
  const x = { field: "t", type: "quantitative" as const, title: "time (s)", scale: { domain: [0, seconds(T - 1)], nice: false } };
  const panels: Panel[] = [
    {
      title: `mixture weights softmax(a/temperature) of ${shown.length === P ? `all ${P}` : `the ${shown.length} strongest of ${P}`} odours`,
      width: WIDTH,
      height: 160,
      data: { values: mixture },
      mark: { type: "line", strokeWidth: 1.3 },
      encoding: { x, y: { field: "w", type: "quantitative", title: "weight", scale: { domain: [0, 1] } }, color: { field: "odour", type: "nominal", title: null } },
    },
    {
      title: `rates of ${inputs.length} inputs (each the most modulated input of one of those odours)`,
      width: WIDTH,
      height: 160,
      data: { values: rates },
      mark: { type: "line", strokeWidth: 1.3 },
      encoding: { x, y: { field: "rate", type: "quantitative", title: "rate (Hz)" }, color: { field: "input", type: "nominal", title: null } },
    },
  ];
  const spread = extent(patterns)!;
  return figure(data, "Input rates (odours)", { vconcat: panels, spacing: 14, resolve: { scale: { color: "independent" } } } as Panel, [
    `the designated trial of epoch ${a.epoch}: an Ornstein–Uhlenbeck mixture of ${P} odour patterns (pattern rates ${fmt(spread.min)}–${fmt(spread.max)} Hz)`,
  ]);
}

function argMax(x: Float64Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
