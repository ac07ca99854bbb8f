/**
 * Worker-thread entry: encodes checkpoints off the coordinator's event loop, in arrival order, and replaces each of
 * the message's files atomically with the same bytes (best and latest are often due in the same update).
 */
import { parentPort } from "node:worker_threads";
import { writeFileAtomic } from "../shared/atomic-file.js";
import { CheckpointIdentity, encodeCheckpoint, TrainingState } from "./checkpoint.js";

parentPort!.on("message", (m: { id: number; paths: string[]; state: TrainingState; identity: CheckpointIdentity }) => {
  const started = performance.now();
  const seconds: number[] = [];
  try {
    const bytes = encodeCheckpoint(m.state, m.identity);
    for (const path of m.paths) {
      writeFileAtomic(path, bytes);
      seconds.push((performance.now() - started) / 1000);
    }
    parentPort!.postMessage({ id: m.id, seconds });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, seconds, error: (e as Error).message });
  }
});
