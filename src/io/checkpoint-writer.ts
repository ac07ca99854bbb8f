/**
 * Checkpoints written off the training path. Encoding a default-size checkpoint (shuffle + deflate of the stream
 * states, checksum, fsync) takes about half a second, and a "best" one may be due after every update; so the state is
 * snapshotted (structured clone) when it is submitted — the trainer submits an update's checkpoints once the next
 * interval's epochs are out, so that the copy overlaps the workers' compute — and a worker thread encodes and writes
 * it, in submission order, while the interval trains. Each file is still replaced atomically, so a crash at any moment leaves the
 * previous checkpoint or the new one. A failed write, or a writer thread that died, is reported by the next submit or
 * by `flush()`.
 */
import { ThreadRpc, withOwnBuffers } from "../platform/thread-rpc.js";
import { CheckpointError, CheckpointIdentity, TrainingState } from "./checkpoint.js";

/** latest: every checkpoint_interval and at the end; best: the lowest total loss so far. */
export type CheckpointKind = "latest" | "best";

/** One checkpoint file due: where, and which kind (for the metrics). */
export interface CheckpointTarget {
  path: string;
  kind: CheckpointKind;
}

/** One request to the writer thread: the state, encoded once and written to every path in order. */
export interface CheckpointRequest {
  paths: string[];
  state: TrainingState;
  identity: CheckpointIdentity;
}

/** Seconds from the start of encoding until each written path was on disk; an error concerns the first one not written. */
export interface CheckpointWritten {
  seconds: number[];
  error?: string;
}

export class CheckpointWriter {
  readonly thread = new ThreadRpc<CheckpointRequest, CheckpointWritten>(new URL("./checkpoint-thread.js", import.meta.url), "checkpoint writer");
  private failure: CheckpointError | null = null;
  private drained: Promise<void> = Promise.resolve();

  constructor(
    private readonly identity: CheckpointIdentity,
    private readonly onWritten: (seconds: number, kind: CheckpointKind) => void,
  ) {}

  /** Queues `state` as it is now for writing, encoded once, to every target; throws the error of an earlier failed write. */
  submit(targets: CheckpointTarget[], state: TrainingState): void {
    this.throwIfFailed();
    if (targets.length === 0) return;
    // The request is structured-cloned when posted: later changes to `state` do not reach it. Adam's moments are
    // views of its kernel's memory: copied alone, and those copies transferred rather than copied again.
    const copies: ArrayBuffer[] = [];
    const request = { paths: targets.map((t) => t.path), state: withOwnBuffers(state, copies), identity: this.identity };
    const written = this.thread.call(request, copies).then(
      (w) => {
        w.seconds.forEach((s, k) => this.onWritten(s, targets[k].kind));
        if (w.error !== undefined) this.failure ??= new CheckpointError(`${targets[w.seconds.length].path}: cannot write checkpoint: ${w.error}`);
      },
      (e: Error) => {
        this.failure ??= new CheckpointError(`${targets[0].path}: not written (${e.message})`);
      },
    );
    this.drained = this.drained.then(() => written);
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
      await this.thread.close();
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
