/** Worker-thread entry of ThreadedEngine: one sparse-cpu engine per thread, one epoch at a time. */
import { NetworkSpec } from "../model/network.js";
import { serveRpc } from "../platform/thread-rpc.js";
import { EpochResult, EpochTask } from "./engine.js";
import { SparseCpuEngine } from "./sparse-cpu/sparse-cpu.js";

let engine: SparseCpuEngine | null = null;

serveRpc<NetworkSpec, EpochTask, EpochResult>(
  (task, spec) => (engine ??= new SparseCpuEngine(spec)).runEpochSync(task),
  // The result's arrays are the engine's fresh copies: move them instead of copying them again.
  (r) => [r.recGrad, r.ffGrad, r.finalState.v, r.finalState.g, r.rates, r.cvs, r.ratios].filter((a) => a !== null).map((a) => a!.buffer as ArrayBuffer),
);
