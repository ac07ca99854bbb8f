/**
 * snn-study's study.png: the final metrics of every grid point against the first grid key, one panel per group of
 * metrics (losses; mean firing rate per cell type; every `.../ratio` column, with a dashed line at 1). Columns are
 * found by name, so metrics a run gains later join their group without a change here.
 */
import type { TopLevelSpec } from "vega-lite";
import { CONFIG, type Datum, type Layer, type Panel, notePanel } from "./spec.js";

const WIDTH = 560;
const HEIGHT = 220;

interface Group {
  title: string;
  columns: (header: string[]) => string[];
  label: (column: string) => string;
  log?: boolean;
  /** A dashed line at this value. */
  rule?: number;
}

const GROUPS: Group[] = [
  { title: "Final loss terms (log scale; zero and negative values left out)", columns: (h) => h.filter((c) => c.endsWith("_loss")), label: (c) => c.replace(/_loss$/, "").replace(/_/g, " "), log: true },
  {
    // With a recorded teacher, its rates over the same epochs beside the student's.
    title: "Final mean firing rate per cell type (Hz)",
    columns: (h) => h.filter((c) => /^(teacher\/)?firing_rate\/[^/]+\/mean$/.test(c)),
    label: (c) => (c.startsWith("teacher/") ? `teacher ${c.split("/")[2]}` : c.split("/")[1]),
  },
  { title: "Final ratios (dashed: 1)", columns: (h) => h.filter((c) => c.endsWith("/ratio")), label: (c) => c.replace(/\/ratio$/, ""), rule: 1 },
];

/**
 * `table` is study.csv's: a header whose first `keys.length` columns are the grid keys, and one row per point.
 * With more than one grid key, the other keys' values tell the lines of a panel apart (dashes).
 */
export function studyFigureSpec(keys: string[], table: { header: string[]; rows: string[][] }, subtitle?: string): TopLevelSpec {
  const { header, rows } = table;
  const xs = rows.map((r) => r[0]);
  const numeric = xs.every((x) => x.trim() !== "" && Number.isFinite(Number(x)));
  const x = numeric
    ? { field: "x", type: "quantitative" as const, title: keys[0], scale: { zero: false } }
    : { field: "x", type: "ordinal" as const, title: keys[0], sort: [...new Set(xs)] };
  const rest = (r: string[]) =>
    keys
      .slice(1)
      .map((k, i) => `${k}=${r[i + 1]}`)
      .join(", ");
  const panels: Panel[] = [];
  for (const g of GROUPS) {
    const values: Datum[] = [];
    for (const column of g.columns(header)) {
      const c = header.indexOf(column);
      for (const r of rows) {
        const v = Number(r[c]);
        if (r[c] === "" || !Number.isFinite(v) || (g.log && v <= 0)) continue;
        values.push({ x: numeric ? Number(r[0]) : r[0], value: v, series: g.label(column), rest: rest(r) });
      }
    }
    if (values.length === 0) continue;
    const line: Layer = {
      data: { values },
      mark: { type: "line", point: true, strokeWidth: 1.6 },
      encoding: {
        x,
        y: { field: "value", type: "quantitative", title: null, scale: g.log ? { type: "log" } : { zero: false } },
        color: { field: "series", type: "nominal", sort: null, legend: { title: null } },
        ...(keys.length > 1 ? { strokeDash: { field: "rest", type: "nominal" as const, sort: null, legend: { title: keys.slice(1).join(", "), symbolType: "stroke" } } } : {}),
      },
    };
    const layer: Layer[] = [line];
    if (g.rule !== undefined)
      layer.unshift({ data: { values: [{ y: g.rule }] }, mark: { type: "rule", strokeDash: [6, 3], strokeWidth: 1.2, color: "#555" }, encoding: { y: { field: "y", type: "quantitative" } } });
    panels.push({ title: g.title, width: WIDTH, height: HEIGHT, layer });
  }
  const body: Panel = panels.length > 0 ? { vconcat: panels, resolve: { scale: { color: "independent", strokeDash: "independent" } } } : notePanel("no final metrics to show (no grid point has a metrics.csv row)", WIDTH, HEIGHT);
  return { ...body, title: { text: `Study: final metrics against ${keys[0]}`, subtitle, fontSize: 17, offset: 12 }, config: CONFIG } as TopLevelSpec;
}
