/**
 * Worker-thread entry: encodes checkpoints off the coordinator's event loop, in arrival order, and replaces each of
 * the request's files atomically with the same bytes (best and latest are often due in the same update).
 */
import { FileWriteError, writeFileAtomic } from "../platform/atomic-file.js";
import { serveRpc } from "../platform/thread-rpc.js";
import { encodeCheckpoint } from "./checkpoint.js";
import type { CheckpointRequest, CheckpointWritten } from "./checkpoint-writer.js";

serveRpc<undefined, CheckpointRequest, CheckpointWritten>((m) => {
  const started = performance.now();
  const seconds: number[] = [];
  try {
    const bytes = encodeCheckpoint(m.state, m.identity);
    for (const path of m.paths) {
      writeFileAtomic(path, bytes);
      seconds.push((performance.now() - started) / 1000);
    }
    return { seconds };
  } catch (e) {
    // The writer names the file; a write error's reason is enough here.
    return { seconds, error: e instanceof FileWriteError ? e.reason : (e as Error).message };
  }
});
