/**
 * sparse-cpu on T threads: each thread holds its own engine and computes whole epochs, so a worker process with
 * --threads T works on T epochs of an interval at once. Running the engine off the main thread also keeps the
 * worker's heartbeats flowing while it computes. A thread that dies fails its epoch (the worker reports it, and the
 * coordinator reassigns it) and is replaced by a fresh one for the next epoch.
 */
import { NetworkSpec } from "../model/network.js";
import { ThreadRpc } from "../platform/thread-rpc.js";
import { Engine, EpochResult, EpochTask } from "./engine.js";

export class ThreadedEngine implements Engine {
  readonly kind = "sparse-cpu" as const;
  readonly threads: ThreadRpc<EpochTask, EpochResult>[];
  private readonly queue: { task: EpochTask; resolve: (r: EpochResult) => void; reject: (e: Error) => void }[] = [];

  constructor(spec: NetworkSpec, threads: number) {
    this.threads = Array.from({ length: threads }, () => new ThreadRpc<EpochTask, EpochResult>(new URL("./engine-thread.js", import.meta.url), "engine", spec));
  }

  runEpoch(task: EpochTask): Promise<EpochResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.next();
    });
  }

  dispose(): void {
    for (const t of this.threads) void t.close();
  }

  /** Hands queued epochs to idle threads, one epoch per thread at a time. */
  private next(): void {
    for (const thread of this.threads) {
      if (thread.busy > 0 || this.queue.length === 0) continue;
      const { task, resolve, reject } = this.queue.shift()!;
      thread
        .call(task)
        .then(resolve, reject)
        .finally(() => this.next());
    }
  }
}
