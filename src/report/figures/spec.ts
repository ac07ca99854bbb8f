/** Building blocks shared by the figure specs: titles, the population palette, histogram and heatmap panels. */
import type { Config, TopLevelSpec } from "vega-lite";
import type { Field } from "vega-lite/types_unstable/channeldef.js";
import type { LayerSpec, NonNormalizedSpec, UnitSpec } from "vega-lite/types_unstable/spec/index.js";
import type { FigureData, NetworkView } from "../figure-data.js";
import { encodePngSync } from "./png.js";

export type Panel = NonNormalizedSpec;
/** What a layer spec may contain. */
export type Layer = LayerSpec<Field> | UnitSpec<Field>;
export type Datum = Record<string, number | string>;

export const FONT = "DejaVu Sans";

export const CONFIG: Config = {
  font: FONT,
  background: "white",
  padding: 12,
  // Panel titles; the figure title is set larger in figure().
  title: { fontSize: 13, subtitleFontSize: 12, subtitleColor: "#444", anchor: "start", offset: 8 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", gridColor: "#eee" },
  // Fewer ticks than vega's one per 40 px, whose labels crowd on second-scale time axes.
  axisX: { tickCount: 8 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal" },
  concat: { spacing: 24 },
  view: { stroke: "#bbb" },
};

/** Wraps a body into a standalone figure titled "<name> — epoch e/E". */
export function figure(data: FigureData, name: string, body: Panel, subtitle?: string | string[]): TopLevelSpec {
  const text = `${name} — epoch ${data.epoch}/${data.totalEpochs}`;
  // vega-lite's TopLevelSpec spells its facet variant with a narrower unit type than NonNormalizedSpec, though
  // the compiler accepts both.
  return { ...body, title: { text, subtitle, fontSize: 17, offset: 12 }, config: CONFIG } as TopLevelSpec;
}

const PALETTE = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

/**
 * One colour per population (recurrent types, then input types), the same in every figure; `only` restricts the
 * scale (and so its legend) to the populations a figure draws.
 */
export function populationScale(net: NetworkView, only?: string[]): { domain: string[]; range: string[] } {
  const all = [...net.cellTypeNames, ...net.inputTypeNames];
  const domain = only ? all.filter((p) => only.includes(p)) : all;
  return { domain, range: domain.map((p) => PALETTE[all.indexOf(p) % PALETTE.length]) };
}

/** Neuron indices grouped by type. */
export function membersByType(types: Int32Array, numTypes: number): number[][] {
  const out: number[][] = Array.from({ length: numTypes }, () => []);
  for (let j = 0; j < types.length; j++) out[types[j]].push(j);
  return out;
}

/** values[j] for each j of members. */
export const pick = (values: ArrayLike<number>, members: number[]): Float64Array => Float64Array.from(members, (j) => values[j]);

/** Compact number for titles and labels. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-2 || a >= 1e4) ? x.toExponential(2) : String(Number(x.toPrecision(3)));
}

/** Centred grey note, for views with nothing to draw. */
export function noteLayer(text: string): UnitSpec<Field> {
  return { data: { values: [{ text }] }, mark: { type: "text", fontSize: 14, color: "#666" }, encoding: { text: { field: "text" } } };
}

export function notePanel(text: string, width: number, height: number): Panel {
  return { width, height, ...noteLayer(text) };
}

export interface UnityScatterOptions {
  /** One point per datum at (x.field, y.field), coloured by its `pop` on `colors`. */
  values: Datum[];
  x: { field: string; title: string };
  y: { field: string; title: string };
  colors: { domain: string[]; range: string[] };
  title?: string;
  /** Width and height (default 480). */
  size?: number;
}

/** A square scatter of non-negative values (rates) on one scale from 0 for both axes, with the dashed line y = x. */
export function unityScatterPanel(o: UnityScatterOptions): Panel {
  let top = 1;
  for (const v of o.values) top = Math.max(top, v[o.x.field] as number, v[o.y.field] as number);
  const scale = { domain: [0, top * 1.05], nice: false };
  const size = o.size ?? 480;
  return {
    ...(o.title === undefined ? {} : { title: o.title }),
    width: size,
    height: size,
    layer: [
      {
        data: { values: [{ r: 0 }, { r: top * 1.05 }] },
        mark: { type: "line", strokeDash: [6, 3], color: "#666" },
        encoding: { x: { field: "r", type: "quantitative", scale }, y: { field: "r", type: "quantitative", scale } },
      },
      {
        data: { values: o.values },
        mark: { type: "point", filled: true, opacity: 0.6, size: 24 },
        encoding: {
          x: { field: o.x.field, type: "quantitative", scale, title: o.x.title },
          y: { field: o.y.field, type: "quantitative", scale, title: o.y.title },
          color: { field: "pop", type: "nominal", scale: o.colors, legend: { title: null } },
        },
      },
    ],
  };
}

export interface HistogramSeries {
  name: string;
  counts: Float64Array;
}

export interface Marker {
  x: number;
  label: string;
}

export interface HistogramPanelOptions {
  title: string;
  edges: Float64Array;
  /** Stacked in order; colour by series name on `colors`. */
  series: HistogramSeries[];
  colors: { domain: string[]; range: string[] };
  xTitle: string;
  yTitle: string;
  logX?: boolean;
  /** Vertical dashed lines (targets, means), labelled at the top. */
  markers?: Marker[];
  legend?: boolean;
  width?: number;
  height?: number;
}

/**
 * A histogram from precomputed edges and counts, stacked in TS: bars span [lo, hi] × [y0, y1], so log and integer
 * bins need no vega binning and series stack without vega's stack transform.
 */
export function histogramPanel(o: HistogramPanelOptions): Panel {
  const bars: Datum[] = [];
  const base = new Float64Array(o.edges.length - 1);
  for (const s of o.series) {
    for (let i = 0; i < s.counts.length; i++) {
      const c = s.counts[i];
      if (c > 0) bars.push({ lo: o.edges[i], hi: o.edges[i + 1], y0: base[i], y1: base[i] + c, count: c, series: s.name });
      base[i] += c;
    }
  }
  const domain = [o.edges[0], o.edges[o.edges.length - 1]];
  const xScale = o.logX ? { type: "log" as const, domain, nice: false } : { domain, nice: false, zero: false };
  const markers = (o.markers ?? []).filter((m) => Number.isFinite(m.x) && m.x >= domain[0] && m.x <= domain[1]);
  const layer: Layer[] = [
    {
      data: { values: bars },
      mark: { type: "rect", stroke: "white", strokeWidth: 0.3 },
      encoding: {
        x: { field: "lo", type: "quantitative", scale: xScale, title: o.xTitle, axis: { tickCount: 6 } },
        x2: { field: "hi" },
        // An empty histogram still gets a sensible count axis.
        y: { field: "y1", type: "quantitative", scale: bars.length > 0 ? { domainMin: 0 } : { domain: [0, 1] }, title: o.yTitle },
        y2: { field: "y0" },
        color: { field: "series", type: "nominal", scale: o.colors, legend: o.legend ? { title: null } : null },
      },
    },
  ];
  if (markers.length > 0) {
    layer.push(
      { data: { values: markers }, mark: { type: "rule", strokeDash: [6, 3], color: "black" }, encoding: { x: { field: "x", type: "quantitative" } } },
      {
        data: { values: markers },
        mark: { type: "text", align: "left", baseline: "top", dx: 3, y: 2, fontSize: 11 },
        encoding: { x: { field: "x", type: "quantitative" }, text: { field: "label" } },
      },
    );
  }
  if (bars.length === 0) layer.push(noteLayer("no data"));
  return { title: o.title, width: o.width ?? 300, height: o.height ?? 200, layer };
}

export interface HeatmapPanelOptions {
  /** Block means from stats.binMatrix. */
  bins: { rowBins: number; colBins: number; mean: Float64Array };
  rows: number;
  cols: number;
  xTitle: string;
  yTitle: string;
  colorTitle: string;
  /** Row/column positions of dashed guide lines (e.g. assembly boundaries). */
  guides?: number[];
  width: number;
  height: number;
}

/** matplotlib "bwr" on [−1, 1]: blue through white to red, linear in RGB, clamped. */
function bwr(v: number): [number, number, number] {
  const x = Math.max(-1, Math.min(1, v));
  const fade = Math.round(255 * (1 - Math.abs(x)));
  return x < 0 ? [fade, fade, 255] : [255, fade, fade];
}

const BWR_SCALE = { domain: [-1, 0, 1], range: ["#0000ff", "#ffffff", "#ff0000"], interpolate: "rgb" as const };

/**
 * Matrix heatmap, rows top to bottom as in imshow. The cells go to vega as one embedded PNG image rather than one
 * rect per cell: a 500×500 matrix stays at full resolution and the SVG stays small. A transparent two-point layer
 * carries the colour legend.
 */
export function heatmapPanel(o: HeatmapPanelOptions): Panel {
  const { rowBins, colBins, mean } = o.bins;
  const rgba = new Uint8Array(rowBins * colBins * 4);
  for (let i = 0; i < mean.length; i++) {
    rgba.set(bwr(mean[i]), 4 * i);
    rgba[4 * i + 3] = 255;
  }
  const url = `data:image/png;base64,${encodePngSync(colBins, rowBins, rgba).toString("base64")}`;
  const x = { type: "quantitative" as const, scale: { domain: [0, o.cols], nice: false, zero: false }, title: o.xTitle };
  const y = { type: "quantitative" as const, scale: { domain: [0, o.rows], nice: false, zero: false, reverse: true }, title: o.yTitle };
  const layer: Layer[] = [
    {
      data: { values: [{ url, c0: 0, c1: o.cols, r0: 0, r1: o.rows }] },
      mark: { type: "image", aspect: false },
      encoding: { url: { field: "url" }, x: { ...x, field: "c0" }, x2: { field: "c1" }, y: { ...y, field: "r0" }, y2: { field: "r1" } },
    },
    {
      data: { values: [{ w: -1 }, { w: 1 }] },
      mark: { type: "point", opacity: 0 },
      encoding: { color: { field: "w", type: "quantitative", scale: BWR_SCALE, legend: { title: o.colorTitle, gradientLength: Math.min(300, o.height) } } },
    },
  ];
  const guides = (o.guides ?? []).map((g) => ({ g }));
  if (guides.length > 0) {
    const rule = { type: "rule" as const, strokeDash: [4, 4], color: "#555", strokeWidth: 0.8 };
    layer.push(
      { data: { values: guides }, mark: rule, encoding: { x: { field: "g", type: "quantitative" } } },
      { data: { values: guides }, mark: rule, encoding: { y: { field: "g", type: "quantitative" } } },
    );
  }
  return { width: o.width, height: o.height, layer };
}
