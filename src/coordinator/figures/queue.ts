/**
 * Figure rendering off the training path: sets are rendered in a worker thread while the next intervals train.
 * `settled()` lets the trainer's report of an update wait for the previous set before it logs to W&B, so that each
 * set's images join their own step; the report runs beside training, which waits for it only when rendering a set
 * takes longer than two intervals.
 */
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { FigureData } from "../../shared/figure-data.js";

export function figureDir(outputDir: string, epoch: number): string {
  return join(outputDir, "figures", `epoch_${String(epoch).padStart(4, "0")}`);
}

export class FigureQueue {
  private readonly worker: Worker;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (paths: string[]) => void; reject: (e: Error) => void }>();
  private inFlight: Promise<unknown>[] = [];

  constructor(private readonly onRendered: (epoch: number, dir: string, paths: string[]) => void, private readonly onError: (epoch: number, message: string) => void) {
    this.worker = new Worker(new URL("./thread.js", import.meta.url));
    this.worker.on("message", (m: { id: number; paths?: string[]; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.paths) w?.resolve(m.paths);
      else w?.reject(new Error(m.error));
    });
  }

  /** Queues a set for rendering. */
  submit(data: FigureData, dir: string): void {
    const id = this.nextId++;
    const done = new Promise<string[]>((resolve, reject) => this.waiting.set(id, { resolve, reject })).then(
      (paths) => this.onRendered(data.epoch, dir, paths),
      (e: Error) => this.onError(data.epoch, e.message),
    );
    const tracked = done.finally(() => (this.inFlight = this.inFlight.filter((p) => p !== tracked)));
    this.inFlight.push(tracked);
    this.worker.postMessage({ id, data, dir });
  }

  /** Resolves when every queued set is rendered (or failed). */
  async settled(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Waits for every queued set, then stops the thread. */
  async close(): Promise<void> {
    await this.settled();
    await this.worker.terminate();
  }
}
