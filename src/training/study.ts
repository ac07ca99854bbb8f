/**
 * A study (snn-study): one parameters file, a grid of overrides (the cartesian product of --grid lists) and one run
 * directory per grid point under the study's directory. This module owns the grid (expansion, point names), the
 * check of every point's parameters before anything runs, study.json (what the study is, so that a rerun of the same
 * command resumes it and another one is refused) and what a point's run directory says about it.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../model/config.js";
import { formatValue, Override } from "../model/overrides.js";
import { writeFileAtomic } from "../platform/atomic-file.js";
import { Metadata } from "../io/run-dir.js";
import { checkpointPaths } from "../io/checkpoint.js";
import { runParameters } from "./run-setup.js";

/** A study that cannot run as asked (bad grid, a directory that holds something else): exit code 2. */
export class StudyError extends Error {}

export interface GridAxis {
  key: string;
  values: unknown[];
  /** The values as typed (for messages). */
  texts: string[];
}

export interface GridPoint {
  /** The point's run directory under the study's, e.g. `student.noise_frac=0.05`. */
  name: string;
  /** One value per grid axis, in the axes' order. */
  values: unknown[];
  overrides: Override[];
}

/** The value as a point's name shows it: strings bare, everything else as TOML writes it. */
const label = (v: unknown) => (typeof v === "string" ? v : formatValue(v));

/** Characters a point's directory name keeps; the others become "_". */
const UNSAFE = /[^A-Za-z0-9._=+,-]/g;
const MAX_NAME = 120;

const shortHash = (v: unknown) => createHash("sha256").update(JSON.stringify(v)).digest("hex").slice(0, 8);

/**
 * The cartesian product, the first axis varying slowest. Names are `key=value` joined by ",", made filesystem-safe;
 * where making them safe (or shortening them) makes two alike, or a name is long, a hash of the values tells them
 * apart. Names depend only on the grid, so they are the same in every invocation of the same study.
 */
export function expandGrid(axes: GridAxis[]): GridPoint[] {
  let combos: number[][] = [[]];
  for (const a of axes) combos = combos.flatMap((c) => a.values.map((_, i) => [...c, i]));
  const points = combos.map((c) => {
    const values = c.map((i, k) => axes[k].values[i]);
    const overrides = c.map((i, k) => ({ key: axes[k].key, value: axes[k].values[i], source: "--grid", text: axes[k].texts[i] }));
    const name = axes
      .map((a, k) => `${a.key}=${label(values[k])}`)
      .join(",")
      .replace(UNSAFE, "_");
    return { name, values, overrides };
  });
  const count = new Map<string, number>();
  for (const p of points) count.set(p.name, (count.get(p.name) ?? 0) + 1);
  for (const p of points)
    if (count.get(p.name)! > 1 || p.name.length > MAX_NAME || p.name.startsWith(".")) p.name = `${p.name.slice(0, MAX_NAME)}-${shortHash(p.values)}`;
  return points;
}

/** The grid from --grid options (each parsed by model/overrides.ts parseGridOption): a key at most once. */
export function checkGrid(axes: GridAxis[], sets: readonly Override[]): void {
  if (axes.length === 0) throw new ConfigError("--grid: at least one KEY=V1,V2,... is needed");
  axes.forEach((a, i) => {
    if (axes.findIndex((b) => b.key === a.key) !== i) throw new ConfigError(`--grid ${a.key}: given more than once (one --grid per key)`);
    if (sets.some((s) => s.key === a.key)) throw new ConfigError(`--grid ${a.key}: also given by --set; a key is either on the grid or set for every point`);
    const twice = a.values.findIndex((v, j) => a.values.findIndex((w) => JSON.stringify(w) === JSON.stringify(v)) !== j);
    if (twice >= 0) throw new ConfigError(`--grid ${a.key}: the value ${a.texts[twice]} is given twice`);
  });
}

/**
 * Every point's parameters, parsed as its snn-coord will parse them (the --set values, the point's, --epochs):
 * the first error names the key and value concerned, and the point where that alone does not say it.
 */
export function validatePoints(params: string, set: readonly string[], epochs: number | undefined, points: GridPoint[]): void {
  for (const p of points) {
    try {
      runParameters({ params, set, overrides: p.overrides, epochs });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      throw e.message.includes(" (from ") ? e : new ConfigError(`${e.message} (grid point ${p.name})`);
    }
  }
}

/** What a study is: a rerun with other values of these is another study, refused in the same directory. */
export interface StudyIdentity {
  params: string;
  params_sha256: string;
  grid: { key: string; values: unknown[] }[];
  sets: Record<string, unknown>;
  epochs: number | null;
}

export interface StudyFile extends StudyIdentity {
  format: "snn-study";
  command: string;
  /** Per point: the wall time its runs took so far (all sessions), and how its last session ended. */
  points: Record<string, { status: string; wall_time_s: number }>;
}

export const STUDY_FILE = "study.json";

export function studyIdentity(params: string, axes: GridAxis[], sets: readonly Override[], epochs: number | undefined): StudyIdentity {
  const text = readFileSync(params);
  return {
    params: resolve(params),
    params_sha256: createHash("sha256").update(text).digest("hex"),
    grid: axes.map((a) => ({ key: a.key, values: a.values })),
    sets: Object.fromEntries(sets.map((s) => [s.key, s.value] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    epochs: epochs ?? null,
  };
}

/**
 * The study's directory for this study: a new or empty one, or one whose study.json is this study's (a rerun). Any
 * other is refused before anything is written. Returns the study.json to continue (null for a new study).
 */
export function checkStudyDir(dir: string, id: StudyIdentity): StudyFile | null {
  if (!existsSync(dir)) return null;
  if (!statSync(dir).isDirectory()) throw new StudyError(`${dir}: exists and is not a directory`);
  const file = join(dir, STUDY_FILE);
  if (!existsSync(file)) {
    if (readdirSync(dir).length > 0) throw new StudyError(`${dir}: exists, is not empty and holds no ${STUDY_FILE}; choose another --output for a study`);
    return null;
  }
  let old: StudyFile;
  try {
    old = JSON.parse(readFileSync(file, "utf8")) as StudyFile;
  } catch (e) {
    throw new StudyError(`${file}: unreadable (${(e as Error).message}); choose another --output`);
  }
  const differs = (Object.keys(id) as (keyof StudyIdentity)[]).filter((k) => JSON.stringify(old[k] ?? null) !== JSON.stringify(id[k]));
  if (differs.length > 0) {
    const what = differs.map((k) => `${k}: ${JSON.stringify(old[k] ?? null)} there, ${JSON.stringify(id[k])} here`).join("; ");
    throw new StudyError(`${dir}: holds another study (${what}); rerun its own command to resume it, or choose another --output`);
  }
  return { ...old, points: old.points ?? {} };
}

export function writeStudyFile(dir: string, study: StudyFile): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, STUDY_FILE), `${JSON.stringify(study, null, 2)}\n`);
}

/** What a point's run directory says: never started, or its metadata.json status (and whether it can resume). */
export type PointState = { kind: "new" } | { kind: "completed" } | { kind: "failed"; error: string } | { kind: "unfinished"; status: string; resumable: boolean };

export function pointState(runDir: string): PointState {
  let meta: Partial<Metadata>;
  try {
    meta = JSON.parse(readFileSync(join(runDir, "metadata.json"), "utf8")) as Partial<Metadata>;
  } catch {
    return { kind: "new" };
  }
  if (meta.status === "completed") return { kind: "completed" };
  if (meta.status === "failed") return { kind: "failed", error: meta.error ?? "failed" };
  // Interrupted, or "running" when its coordinator was killed: it continues from its checkpoint, if it wrote one.
  return { kind: "unfinished", status: String(meta.status), resumable: existsSync(checkpointPaths(runDir).latest) };
}

/** The last row of a run's metrics.csv, as written (columns and text values); null without rows. */
export function finalMetrics(runDir: string): { columns: string[]; values: string[] } | null {
  let text: string;
  try {
    text = readFileSync(join(runDir, "metrics.csv"), "utf8");
  } catch {
    return null;
  }
  const lines = text.split("\n").filter((l) => l.length > 0);
  if (lines.length < 2) return null;
  const columns = lines[0].split(",");
  const values = lines[lines.length - 1].split(",");
  // A row cut short (its coordinator killed mid-append) is not a final row.
  const last = values.length === columns.length ? values : lines.length > 2 ? lines[lines.length - 2].split(",") : null;
  return last && last.length === columns.length ? { columns, values: last } : null;
}
