/**
 * Figure rendering off the training path: sets are rendered in a worker thread while the next intervals train.
 * `settled()` lets the trainer's report of an update wait for the previous set before it logs to W&B, so that each
 * set's images join their own step (with W&B; the report runs beside training, which then waits for it when rendering
 * a set takes longer than two intervals). Without W&B, sets queue up to MAX_QUEUED_SETS while the thread, at low
 * priority, renders them in the time training leaves idle. A crashed thread costs its set (reported through onError)
 * and is replaced.
 */
import { join } from "node:path";
import { FigureData } from "../figure-data.js";
import { ThreadRpc } from "../../platform/thread-rpc.js";

export function figureDir(outputDir: string, epoch: number): string {
  return join(outputDir, "figures", `epoch_${String(epoch).padStart(4, "0")}`);
}

/** What the figure thread does: render a set into `dir`, or write a run directory's report. */
export type FigureRequest = { data: FigureData; dir: string } | { report: string };

/** Sets queued or rendering at most before training waits for one (each holds its weights and activity). */
export const MAX_QUEUED_SETS = 4;

export class FigureQueue {
  readonly thread = new ThreadRpc<FigureRequest, string[]>(new URL("./thread.js", import.meta.url), "figure");
  private inFlight: Promise<unknown>[] = [];

  /** A set that fails (its thread crashed, or rendering threw) costs that set only: `onError` says so, the run goes on. */
  constructor(
    private readonly onRendered: (epoch: number, dir: string, paths: string[]) => void,
    private readonly onError: (epoch: number, message: string) => void,
  ) {}

  /** Queues a set for rendering. */
  submit(data: FigureData, dir: string): void {
    const done = this.thread.call({ data, dir }).then(
      (paths) => this.onRendered(data.epoch, dir, paths),
      (e: Error) => this.onError(data.epoch, e.message),
    );
    const tracked = done.finally(() => (this.inFlight = this.inFlight.filter((p) => p !== tracked)));
    this.inFlight.push(tracked);
  }

  /** Resolves once fewer than `n` sets are queued or rendering. */
  async fewerThan(n: number): Promise<void> {
    while (this.inFlight.length >= n) await Promise.race(this.inFlight);
  }

  /**
   * After the queued sets, writes the run's report.html (run-report.ts) on the figure thread, where the renderer is
   * loaded already; resolves with its path.
   */
  async writeReport(runDir: string): Promise<string> {
    await this.settled();
    return (await this.thread.call({ report: runDir }))[0];
  }

  /** Resolves when every queued set is rendered (or failed). */
  async settled(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Waits for every queued set, then stops the thread. */
  async close(): Promise<void> {
    await this.settled();
    await this.thread.close();
  }
}
