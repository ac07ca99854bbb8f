/** Worker-thread entry of ThreadedEngine: one sparse-cpu engine per thread, one epoch at a time. */
import { parentPort } from "node:worker_threads";
import { NetworkSpec } from "../shared/network.js";
import { EpochTask } from "./engine.js";
import { SparseCpuEngine } from "./sparse-cpu.js";

let engine: SparseCpuEngine | null = null;

parentPort!.on("message", (m: { spec: NetworkSpec } | { id: number; task: EpochTask }) => {
  if ("spec" in m) {
    engine = new SparseCpuEngine(m.spec);
    return;
  }
  try {
    const r = engine!.runEpochSync(m.task);
    const transfer = [r.recGrad, r.ffGrad, r.finalState.v, r.finalState.g, r.rates, r.cvs].filter((a) => a !== null).map((a) => a!.buffer as ArrayBuffer);
    parentPort!.postMessage({ id: m.id, result: r }, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).stack ?? String(e) });
  }
});
