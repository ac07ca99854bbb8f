#!/usr/bin/env node
/**
 * snn-study PARAMS --grid KEY=V1,V2,... [--grid ...] --output DIR [--parallel P] [--workers W] [--epochs K] [--set K=V ...]
 * One snn-coord run per grid point (DIR/<point>), P at once, resumable; then DIR/study.csv, study.md and study.png.
 * Exit code 0 when every point completed, 1 when one did not, 2 for bad input (nothing written), 130 on interrupt.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { hideBin } from "yargs/helpers";
import { studyCli } from "./study-options.js";
import { ConfigError } from "../model/config.js";
import { parseGridOption, parseSettings } from "../model/overrides.js";
import { checkGrid, checkStudyDir, expandGrid, finalMetrics, pointState, StudyError, studyIdentity, validatePoints, writeStudyFile } from "../training/study.js";
import { runStudy } from "../training/study-runner.js";
import { writeStudyReport } from "../report/study-report.js";
import { FileWriteError } from "../platform/atomic-file.js";

class UsageError extends Error {}

async function main(): Promise<number> {
  const args = await studyCli(hideBin(process.argv))
    .fail((message, error) => {
      throw new UsageError(message ?? error.message);
    })
    .parseAsync();
  const log = (s: string) => console.log(`[snn-study] ${s}`);
  const params = String(args.params);
  const set = args.set ?? [];
  // Everything is checked, every point's parameters included, before the study's directory is touched.
  const axes = args.grid.map(parseGridOption);
  checkGrid(axes, parseSettings(set));
  const points = expandGrid(axes);
  validatePoints(params, set, args.epochs, points);
  const id = studyIdentity(params, axes, parseSettings(set), args.epochs);
  const dir = args.output;
  const study = checkStudyDir(dir, id) ?? { format: "snn-study" as const, ...id, command: process.argv.slice(1).join(" "), points: {} };
  writeStudyFile(dir, study);
  log(`${points.length} grid point(s) in ${dir}, ${args.parallel} at once with ${args.workers} worker(s) each`);

  const coordinator = fileURLToPath(new URL("./snn-coord.js", import.meta.url));
  const o = { coordinator, params, set, epochs: args.epochs, workers: args.workers, parallel: args.parallel, figures: args.figures, retryFailed: args["retry-failed"], log };
  const { interrupted } = await runStudy(dir, study, points, o);
  if (interrupted) {
    log(`interrupted; rerun the same command to resume the study`);
    return 130;
  }
  const rows = points.map((p) => {
    const runDir = join(dir, p.name);
    const state = pointState(runDir);
    const status = state.kind === "new" ? (study.points[p.name]?.status ?? "not run") : state.kind === "unfinished" ? state.status : state.kind;
    return { values: p.values, status, wallTimeS: study.points[p.name]?.wall_time_s ?? null, metrics: finalMetrics(runDir) };
  });
  await writeStudyReport(dir, axes.map((a) => a.key), rows, `Study of ${params}: ${axes.map((a) => a.key).join(" × ")}`);
  const done = rows.filter((r) => r.status === "completed").length;
  log(`${done}/${rows.length} point(s) completed; ${join(dir, "study.csv")}, study.md, study.png`);
  return done === rows.length ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const expected = e instanceof ConfigError || e instanceof StudyError || e instanceof UsageError || e instanceof FileWriteError;
    console.error(`snn-study: ${expected ? (e as Error).message : ((e as Error).stack ?? String(e))}`);
    process.exit(expected ? 2 : 1);
  },
);
