/**
 * sparse-cpu on T threads: each thread holds its own engine and computes whole epochs, so a worker process with
 * --threads T works on T epochs of an interval at once. Running the engine off the main thread also keeps the
 * worker's heartbeats flowing while it computes.
 */
import { Worker } from "node:worker_threads";
import { NetworkSpec } from "../shared/network.js";
import { Engine, EpochResult, EpochTask } from "./engine.js";

interface Pending {
  resolve: (r: EpochResult) => void;
  reject: (e: Error) => void;
}

export class ThreadedEngine implements Engine {
  readonly kind = "sparse-cpu" as const;
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: { task: EpochTask; pending: Pending }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(spec: NetworkSpec, threads: number) {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(new URL("./engine-thread.js", import.meta.url));
      w.postMessage({ spec });
      w.on("message", (m: { id: number; result?: EpochResult; error?: string }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.result) p?.resolve(m.result);
        else p?.reject(new Error(m.error));
        this.idle.push(w);
        this.next();
      });
      w.on("error", (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.all.push(w);
      this.idle.push(w);
    }
  }

  runEpoch(task: EpochTask): Promise<EpochResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, pending: { resolve, reject } });
      this.next();
    });
  }

  dispose(): void {
    for (const w of this.all) void w.terminate();
  }

  private next(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const { task, pending } = this.queue.shift()!;
      const id = this.nextId++;
      this.pending.set(id, pending);
      w.postMessage({ id, task });
    }
  }
}
