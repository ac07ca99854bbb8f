/** Worker-thread entry: encodes and atomically writes checkpoints off the coordinator's event loop, in arrival order. */
import { parentPort } from "node:worker_threads";
import { CheckpointIdentity, TrainingState, writeCheckpoint } from "./checkpoint.js";

parentPort!.on("message", (m: { id: number; path: string; state: TrainingState; identity: CheckpointIdentity }) => {
  const started = performance.now();
  try {
    writeCheckpoint(m.path, m.state, m.identity);
    parentPort!.postMessage({ id: m.id, seconds: (performance.now() - started) / 1000 });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
