/**
 * Checkpoints written off the training path. Encoding a default-size checkpoint (shuffle + deflate of the stream
 * states, checksum, fsync) takes about half a second, and a "best" one may be due after every update; so the state is
 * snapshotted (structured clone) when a checkpoint is due and a worker thread encodes and writes it, in submission
 * order, while the next interval trains. Each file is still replaced atomically, so a crash at any moment leaves the
 * previous checkpoint or the new one. A failed write is reported by the next submit or by `flush()`.
 */
import { Worker } from "node:worker_threads";
import { CheckpointError, CheckpointIdentity, TrainingState } from "./checkpoint.js";
import { CheckpointKind } from "./metrics.js";

/** One checkpoint file due: where, and which kind (for the metrics). */
export interface CheckpointTarget {
  path: string;
  kind: CheckpointKind;
}

interface Pending {
  targets: CheckpointTarget[];
  resolve: () => void;
}

export class CheckpointWriter {
  private readonly worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private failure: CheckpointError | null = null;
  private drained: Promise<void> = Promise.resolve();

  constructor(
    private readonly identity: CheckpointIdentity,
    private readonly onWritten: (seconds: number, kind: CheckpointKind) => void,
  ) {
    this.worker = new Worker(new URL("./checkpoint-thread.js", import.meta.url));
    // seconds[k]: from the start of encoding until target k was on disk; an error concerns the first target not written.
    this.worker.on("message", (m: { id: number; seconds: number[]; error?: string }) => {
      const p = this.pending.get(m.id)!;
      this.pending.delete(m.id);
      m.seconds.forEach((s, k) => this.onWritten(s, p.targets[k].kind));
      if (m.error !== undefined) this.failure ??= new CheckpointError(`${p.targets[m.seconds.length].path}: cannot write checkpoint (${m.error})`);
      p.resolve();
    });
    this.worker.on("error", (e) => {
      this.failure ??= new CheckpointError(`checkpoint writer failed (${e.message})`);
      for (const p of this.pending.values()) p.resolve();
      this.pending.clear();
    });
  }

  /** Queues `state` as it is now for writing, encoded once, to every target; throws the error of an earlier failed write. */
  submit(targets: CheckpointTarget[], state: TrainingState): void {
    this.throwIfFailed();
    if (targets.length === 0) return;
    const id = this.nextId++;
    const written = new Promise<void>((resolve) => this.pending.set(id, { targets, resolve }));
    this.drained = this.drained.then(() => written);
    this.worker.postMessage({ id, paths: targets.map((t) => t.path), state, identity: this.identity });
  }

  /** Resolves when every queued checkpoint is on disk; rejects with the first write that failed. */
  async flush(): Promise<void> {
    await this.drained;
    this.throwIfFailed();
  }

  /** Writes what is queued, then stops the thread. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.worker.terminate();
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
