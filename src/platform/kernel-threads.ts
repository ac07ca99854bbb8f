/**
 * One exported function of a WebAssembly kernel run on several threads at once, over one shared memory: a call
 * splits its work into ranges (an element-wise kernel gives the same results however it is split), runs the first
 * range's calls on the calling thread and the others on helper threads, and returns when all are done. It is
 * synchronous, like the kernel it splits: the helpers wait on a shared control block (Atomics), not on messages, so a
 * call costs microseconds more than the kernel, and the caller blocks (Atomics.wait) only for the helpers' ranges
 * that are still running when its own is done.
 *
 * Control block (a SharedArrayBuffer): Int32 [0] the job's number (−1: stop), [1] helpers done with it, [2 + h] how
 * many calls helper h has in it; then per helper `maxCalls` × (arguments, result) as float64 (i32 arguments and results
 * are exact in a float64).
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

const JOB = 0;
const DONE = 1;
const STOP = -1;
/** How long the caller waits for helpers before it calls them lost (a helper that died cannot answer). */
const HELPER_TIMEOUT_MS = 30_000;

/** What each helper thread is started with. */
interface HelperData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  exportName: string;
  /** Which helper this is (0-based), and where its calls' arguments and results lie in the control block. */
  index: number;
  argCount: number;
  callsOffset: number;
  maxCalls: number;
}

/**
 * A helper thread's whole program: it waits for a job, runs its calls and counts itself done, until told to stop.
 * It runs as the source text of this function (new Worker(…, { eval: true })), so it refers to nothing outside itself.
 */
function helperProgram(d: HelperData): void {
  const kernel = new WebAssembly.Instance(d.module, { env: { memory: d.memory } }).exports[d.exportName] as (...args: number[]) => number;
  const control = new Int32Array(d.control, 0, 2 + d.index + 1);
  const calls = new Float64Array(d.control, d.callsOffset, d.maxCalls * (d.argCount + 1));
  let seen = 0;
  for (;;) {
    let job;
    while ((job = Atomics.load(control, 0)) === seen) Atomics.wait(control, 0, seen);
    if (job < 0) return;
    seen = job;
    const count = control[2 + d.index];
    for (let c = 0; c < count; c++) {
      const at = c * (d.argCount + 1);
      calls[at + d.argCount] = kernel(...calls.subarray(at, at + d.argCount));
    }
    Atomics.add(control, 1, 1);
    Atomics.notify(control, 1);
  }
}

/** Helper threads worth starting beside this one: one per other core of this machine, at most `max`. */
export function spareCores(max: number): number {
  return Math.max(0, Math.min(availableParallelism() - 1, max));
}

/** Stops the helpers of a KernelThreads that was collected without close(). */
const orphans = new FinalizationRegistry<Int32Array>((control) => stopHelpers(control));

function stopHelpers(control: Int32Array): void {
  Atomics.store(control, JOB, STOP);
  Atomics.notify(control, JOB);
}

export class KernelThreads {
  private readonly kernel: (...args: number[]) => number;
  private readonly control: Int32Array;
  /** Per helper: its calls' arguments and results. */
  private readonly calls: Float64Array[];
  private job = 0;
  /** Helpers running: none once closed, when every call runs here. */
  private running: number;

  /**
   * `helpers` threads (0: every call runs here) running `exportName` of `module` over `memory`, which must be
   * shared; each thread takes at most `maxCalls` calls of `argCount` arguments per job.
   */
  constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, exportName: string, readonly helpers: number, private readonly argCount: number, private readonly maxCalls: number) {
    this.kernel = new WebAssembly.Instance(module, { env: { memory } }).exports[exportName] as (...args: number[]) => number;
    const headerBytes = Math.ceil(((2 + helpers) * 4) / 8) * 8;
    const perHelper = maxCalls * (argCount + 1);
    const control = new SharedArrayBuffer(headerBytes + helpers * perHelper * 8);
    this.control = new Int32Array(control, 0, 2 + helpers);
    this.calls = Array.from({ length: helpers }, (_, h) => new Float64Array(control, headerBytes + h * perHelper * 8, perHelper));
    for (let h = 0; h < helpers; h++) {
      const data: HelperData = { module, memory, control, exportName, index: h, argCount, callsOffset: headerBytes + h * perHelper * 8, maxCalls };
      const thread = new Worker(`(${helperProgram.toString()})(require("node:worker_threads").workerData)`, { eval: true, workerData: data });
      // Idle helpers wait on the control block; they must not keep the process alive.
      thread.unref();
    }
    if (helpers > 0) orphans.register(this, this.control, this);
    this.running = helpers;
  }

  /**
   * Runs `calls[t]` (argument lists) on thread t: 0 this one, 1… the helpers (at most `helpers` + 1 lists, each of at
   * most `maxCalls`); returns each list's results in order.
   */
  run(calls: number[][][]): number[][] {
    if (calls.length > this.helpers + 1 || calls.some((c) => c.length > this.maxCalls)) throw new Error(`kernel threads: ${calls.length} lists of calls for ${this.helpers + 1} threads of ${this.maxCalls} calls`);
    if (this.running === 0) return calls.map((list) => list.map((args) => this.kernel(...args)));
    const n = this.argCount + 1;
    for (let h = 0; h < this.helpers; h++) {
      const list = calls[h + 1] ?? [];
      list.forEach((args, c) => this.calls[h].set(args, c * n));
      this.control[2 + h] = list.length;
    }
    Atomics.store(this.control, DONE, 0);
    this.job++;
    Atomics.store(this.control, JOB, this.job);
    Atomics.notify(this.control, JOB);
    const own = (calls[0] ?? []).map((args) => this.kernel(...args));
    const deadline = Date.now() + HELPER_TIMEOUT_MS;
    let done;
    while ((done = Atomics.load(this.control, DONE)) < this.helpers) {
      if (Date.now() > deadline) throw new Error(`kernel threads: ${this.helpers - done} of ${this.helpers} helper threads did not finish in ${HELPER_TIMEOUT_MS / 1000} s`);
      Atomics.wait(this.control, DONE, done, 100);
    }
    return [own, ...calls.slice(1).map((list, h) => list.map((_, c) => this.calls[h][c * n + this.argCount]))];
  }

  /** Ends the helper threads; calls after it run here. */
  close(): void {
    orphans.unregister(this);
    if (this.running > 0) stopHelpers(this.control);
    this.running = 0;
  }
}
