/** A worker process's code in the test's own process, over sparse-cpu, to give a run a worker with faults of its own. */
import { WorkerProcess } from "../../src/distributed/worker.js";
import type { EpochResult, EpochTask } from "../../src/engine/engine.js";
import { SparseCpuEngine } from "../../src/engine/sparse-cpu/sparse-cpu.js";

/** A worker connected to `port` on loopback whose epochs `runEpoch` computes (with the real engine, or not), `threads` at once. */
export function inProcessWorker(port: number, runEpoch: (engine: SparseCpuEngine, task: EpochTask) => Promise<EpochResult>, threads = 1): Promise<number> {
  return new WorkerProcess({
    endpoint: `tcp://127.0.0.1:${port}`,
    engineName: "sparse-cpu",
    threads,
    coordinatorTimeout: 30,
    heartbeatInterval: 0.5,
    log: () => {},
    createEngine: async (spec) => {
      const engine = new SparseCpuEngine(spec);
      return { kind: engine.kind, dispose: () => engine.dispose(), runEpoch: (task) => runEpoch(engine, task) };
    },
  }).run();
}
