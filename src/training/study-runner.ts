/**
 * Runs a study's grid points (training/study.ts), each as its own snn-coord process with local workers, P at once.
 * A point's output goes to its run directory's console.log; the study's console gets one line as each point starts
 * and ends. A point that completed earlier is skipped, an interrupted one resumed (--resume auto), a failed one only
 * rerun (--force) when asked. SIGINT/SIGTERM go to the running coordinators (which stop after their current update
 * and checkpoint) and no further point starts.
 */
import { ChildProcess, spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { formatValue } from "../model/overrides.js";
import { finalMetrics, GridPoint, pointState, StudyFile, writeStudyFile } from "./study.js";

export interface StudyRunOptions {
  /** The coordinator's script (dist/cli/snn-coord.js). */
  coordinator: string;
  params: string;
  /** The --set options, as given, for every point. */
  set: readonly string[];
  epochs?: number;
  workers: number;
  parallel: number;
  figures: boolean;
  retryFailed: boolean;
  log: (line: string) => void;
}

type Start = "new" | "resume" | "force";

export const CONSOLE_LOG = "console.log";

/**
 * A point's console.log. A new or restarted run must find its directory empty of anything but a run's files, so
 * the log is held back until the run has written its metadata.json (and earlier output, a restarted run's previous
 * log, is written then); a resumed run's log grows at once.
 */
class ConsoleLog {
  private pending: string[] = [];
  private ready: boolean;
  private readonly file: string;

  constructor(
    private readonly runDir: string,
    start: Start,
    carried: string,
    private readonly since: number,
  ) {
    this.file = join(runDir, CONSOLE_LOG);
    this.ready = start === "resume";
    if (carried) this.pending.push(carried);
  }

  write(text: string): void {
    this.pending.push(text);
    if (!this.ready) {
      const meta = join(this.runDir, "metadata.json");
      this.ready = existsSync(meta) && statSync(meta).mtimeMs >= this.since - 5;
    }
    if (this.ready) this.flush();
  }

  /** At the run's end: whatever it wrote reaches the file (into a directory of its own, if the run made none). */
  close(): void {
    try {
      mkdirSync(this.runDir, { recursive: true });
    } catch {
      // reported with the point's end
    }
    this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    try {
      appendFileSync(this.file, this.pending.join(""));
    } catch {
      // A run that never created its directory: the log is kept in memory only, and its last line reported.
      return;
    }
    this.pending = [];
  }
}

/** How a point's run starts (null: it does not run), and what to say about it. */
function plan(runDir: string, retryFailed: boolean): { start: Start | null; note?: string } {
  const s = pointState(runDir);
  if (s.kind === "completed") return { start: null, note: "completed earlier; skipped" };
  if (s.kind === "failed") return retryFailed ? { start: "force", note: "failed earlier; rerunning it (--retry-failed)" } : { start: null, note: `failed earlier (${s.error}); not rerun (--retry-failed reruns it)` };
  if (s.kind === "unfinished") return s.resumable ? { start: "resume", note: `${s.status}; resuming` } : { start: "force", note: `${s.status} before its first checkpoint; starting it again` };
  return { start: "new" };
}

/**
 * The previous log of a run that starts over, taken out of its directory (a new or forced run refuses a directory
 * holding files that are not a run's), to be written back once the run has started.
 */
function takeOldLog(runDir: string): string {
  const file = join(runDir, CONSOLE_LOG);
  if (!existsSync(file)) return "";
  const text = readFileSync(file, "utf8");
  rmSync(file, { force: true });
  if (readdirSync(runDir).length === 0) rmdirSync(runDir);
  return text;
}

function childArgs(o: StudyRunOptions, point: GridPoint, runDir: string, start: Start): string[] {
  return [
    o.coordinator,
    o.params,
    ...o.set.flatMap((s) => ["--set", s]),
    ...point.overrides.flatMap((p) => ["--set", `${p.key}=${formatValue(p.value)}`]),
    "--output",
    runDir,
    "--workers",
    String(o.workers),
    "--metrics-port",
    "0",
    ...(o.epochs !== undefined ? ["--epochs", String(o.epochs)] : []),
    ...(o.figures ? [] : ["--no-figures"]),
    ...(start === "resume" ? ["--resume", "auto"] : start === "force" ? ["--force"] : []),
  ];
}

const seconds = (ms: number) => Math.round(ms) / 1000;

/**
 * Runs every point that needs it, at most `parallel` at once, recording each one's wall time and status in
 * study.json as it ends. Resolves when all have ended, or, after a signal, when the running ones have stopped.
 */
export async function runStudy(dir: string, study: StudyFile, points: GridPoint[], o: StudyRunOptions): Promise<{ interrupted: boolean }> {
  const queue: { point: GridPoint; start: Start }[] = [];
  for (const point of points) {
    const { start, note } = plan(join(dir, point.name), o.retryFailed);
    if (note) o.log(`${point.name}: ${note}`);
    if (start) queue.push({ point, start });
  }
  const running = new Set<ChildProcess>();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    o.log(
      signals === 1
        ? `${sig}: stopping the ${running.size} running point(s) after their current update; rerun the same command to resume`
        : `${sig} again: the running point(s) exit at once`,
    );
    for (const c of running) c.kill(sig);
  };
  const onExit = () => {
    for (const c of running) c.kill("SIGTERM");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", onExit);
  const total = points.length;
  const runOne = (point: GridPoint, start: Start): Promise<void> =>
    new Promise((done) => {
      const runDir = join(dir, point.name);
      const carried = start === "resume" ? "" : takeOldLog(runDir);
      const t0 = Date.now();
      const log = new ConsoleLog(runDir, start, carried, t0);
      const args = childArgs(o, point, runDir, start);
      log.write(`[snn-study] ${new Date(t0).toISOString()}: node ${args.join(" ")}\n`);
      o.log(`${point.name}: ${start === "resume" ? "resuming" : "starting"} (${points.indexOf(point) + 1}/${total})`);
      // A process group of its own: a terminal's Ctrl-C reaches the study, which passes it on once.
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
      running.add(child);
      let tail = "";
      const take = (d: Buffer) => {
        const s = d.toString();
        tail = (tail + s).slice(-2000);
        log.write(s);
      };
      child.stdout!.on("data", take);
      child.stderr!.on("data", take);
      let ended = false;
      const end = (code: number | null, why: string | null) => {
        if (ended) return;
        ended = true;
        running.delete(child);
        log.close();
        const elapsed = seconds(Date.now() - t0);
        const state = pointState(runDir);
        const status = state.kind === "new" ? "failed" : state.kind === "unfinished" ? (code === 130 ? state.status : "failed") : state.kind;
        const before = start === "force" || start === "new" ? 0 : (study.points[point.name]?.wall_time_s ?? 0);
        study.points[point.name] = { status, wall_time_s: seconds((before + elapsed) * 1000) };
        try {
          writeStudyFile(dir, study);
        } catch (e) {
          o.log(`warning: ${(e as Error).message}`);
        }
        const final = finalMetrics(runDir);
        const finalLoss = final ? final.values[final.columns.indexOf("total_loss")] : undefined;
        const lastLine = tail.trim().split("\n").pop() ?? "";
        const detail =
          status === "completed"
            ? `total loss ${finalLoss ?? "?"}`
            : status === "interrupted"
              ? "resumes when the study is run again"
              : `exit ${why ?? code}${lastLine ? `: ${lastLine}` : ""}`;
        o.log(`${point.name}: ${status} in ${elapsed.toFixed(1)} s, ${detail}`);
        done();
      };
      child.on("error", (e) => {
        tail += `\n${e.message}`;
        end(null, e.message);
      });
      child.on("close", (code, signal) => end(code, signal));
    });

  try {
    let next = 0;
    const lane = async () => {
      while (signals === 0 && next < queue.length) {
        const { point, start } = queue[next++];
        await runOne(point, start);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.parallel, queue.length)) }, lane));
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", onExit);
  }
  return { interrupted: signals > 0 };
}
