/**
 * What a study (snn-study) writes when its points have run: study.csv (one row per grid point: the grid keys, status,
 * wall time, then every column of the point's last metrics.csv row, as written), study.md (the same as a markdown
 * table, numbers to 4 significant digits) and study.png (figures/study-figure.ts).
 */
import { join } from "node:path";
import { formatValue } from "../model/overrides.js";
import { writeFileAtomic } from "../platform/atomic-file.js";
import { studyFigureSpec } from "./figures/study-figure.js";
import { renderFigure } from "./figures/render.js";

export interface StudyRow {
  /** One value per grid key. */
  values: unknown[];
  /** metadata.json's status of the point's run ("not run" without one). */
  status: string;
  /** Wall time of the point's runs, all sessions (empty when unknown). */
  wallTimeS: number | null;
  /** The last row of its metrics.csv, as written; null without one. */
  metrics: { columns: string[]; values: string[] } | null;
}

export interface StudyTable {
  header: string[];
  rows: string[][];
}

/** The grid values as study.csv writes them: strings bare, the rest as in a parameters file. */
const cell = (v: unknown) => (typeof v === "string" ? v : formatValue(v));

/**
 * The table: a metric column appears once, in the order the points' metrics.csv have it (a column only some points
 * have is empty in the others). metrics.csv's own wall_time_s (seconds into the last session) gives way to the
 * study's, the point's whole wall time.
 */
export function studyTable(keys: string[], rows: StudyRow[]): StudyTable {
  const fixed = [...keys, "status", "wall_time_s"];
  const metricColumns: string[] = [];
  for (const r of rows) for (const c of r.metrics?.columns ?? []) if (!fixed.includes(c) && !metricColumns.includes(c)) metricColumns.push(c);
  return {
    header: [...fixed, ...metricColumns],
    rows: rows.map((r) => [
      ...r.values.map(cell),
      r.status,
      r.wallTimeS === null ? "" : String(r.wallTimeS),
      ...metricColumns.map((c) => {
        const i = r.metrics ? r.metrics.columns.indexOf(c) : -1;
        return i < 0 ? "" : r.metrics!.values[i];
      }),
    ]),
  };
}

const csvField = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function studyCsv(t: StudyTable): string {
  return [t.header, ...t.rows].map((r) => r.map(csvField).join(",")).join("\n") + "\n";
}

/** 4 significant digits; other text as it is. */
function significant(s: string): string {
  if (s.trim() === "" || !/^[-+]?(\d|\.\d)/.test(s)) return s;
  const x = Number(s);
  if (!Number.isFinite(x)) return s;
  const r = Number(x.toPrecision(4));
  return r !== 0 && (Math.abs(r) >= 1e6 || Math.abs(r) < 1e-4) ? r.toExponential(3).replace(/\.?0+e/, "e") : String(r);
}

export function studyMarkdown(t: StudyTable, heading: string): string {
  const md = (s: string) => s.replace(/\|/g, "\\|");
  const line = (r: string[]) => `| ${r.map(md).join(" | ")} |`;
  return [`# ${heading}`, "", line(t.header), line(t.header.map(() => "---")), ...t.rows.map((r) => line(r.map(significant))), ""].join("\n");
}

/** study.csv, study.md and study.png in `dir`; `heading` titles the table and the figure. */
export async function writeStudyReport(dir: string, keys: string[], rows: StudyRow[], heading: string): Promise<StudyTable> {
  const table = studyTable(keys, rows);
  writeFileAtomic(join(dir, "study.csv"), studyCsv(table));
  writeFileAtomic(join(dir, "study.md"), studyMarkdown(table, heading));
  const png = join(dir, "study.png");
  await renderFigure(studyFigureSpec(keys, table, heading), png);
  return table;
}
