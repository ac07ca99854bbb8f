/**
 * One exported function of a WebAssembly kernel run on several threads at once, over one shared memory: a job is a
 * list of calls (an element-wise kernel's ranges, which give the same results whichever thread runs them), which
 * this thread and helper threads take one at a time from a shared counter until none is left. A helper that is slow
 * to wake, or busy elsewhere, takes fewer or none, so a job never waits on a helper that has not started one of its
 * calls, and with no helper free it takes as long as on one thread. It is synchronous, like the kernel it runs: the
 * helpers wait on a shared control block (Atomics), not on messages, so a job costs microseconds more than its calls,
 * and the caller blocks (Atomics.wait) only for calls still running when none is left to take.
 *
 * Control block (a SharedArrayBuffer): BigInt64 [0] the next call to take, as job number × 2³² + index; Int32 [2] the
 * job's number (−1: stop), [3] calls done, [4] calls in the job; then per call its arguments and result, as float64
 * (i32 arguments and results are exact in a float64). A call is taken by compare-and-exchange on the counter only
 * while it still names the job the taker woke for, so a helper that wakes late takes nothing from the next job.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/** Int32 fields of the control block. */
const JOB = 2;
const DONE = 3;
const COUNT = 4;
const HEADER_BYTES = 24;
const STOP = -1;
/** How long the caller waits for calls that helpers took (a helper that died cannot finish them). */
const HELPER_TIMEOUT_MS = 30_000;

/** A kernel's function, the control block's views, and how many arguments a call has. */
interface Runner {
  kernel: (...args: number[]) => number;
  next: BigInt64Array;
  control: Int32Array;
  calls: Float64Array;
  argCount: number;
}

/**
 * The control block's views for `kernel`. Like takeCalls, it runs on the helpers as source text, so it names the
 * header's size by number (HEADER_BYTES = 24).
 */
function runnerOver(kernel: Runner["kernel"], control: SharedArrayBuffer, argCount: number, maxCalls: number): Runner {
  return {
    kernel,
    next: new BigInt64Array(control, 0, 1),
    control: new Int32Array(control, 0, 6),
    calls: new Float64Array(control, 24, maxCalls * (argCount + 1)),
    argCount,
  };
}

/**
 * Takes calls of job `job` until none is left: runs each, stores its result, counts it done. The one loop of this
 * thread and of the helpers, which run its source text: so it refers to nothing outside itself, and names the fields
 * by number (DONE = 3, COUNT = 4).
 */
function takeCalls(r: Runner, job: number): void {
  const n = r.argCount + 1;
  for (;;) {
    const next = Atomics.load(r.next, 0);
    const c = Number(next & 0xffffffffn);
    if (Number(next >> 32n) !== job || c >= Atomics.load(r.control, 4)) return;
    if (Atomics.compareExchange(r.next, 0, next, next + 1n) !== next) continue;
    r.calls[c * n + r.argCount] = r.kernel(...r.calls.subarray(c * n, c * n + r.argCount));
    Atomics.add(r.control, 3, 1);
    Atomics.notify(r.control, 3);
  }
}

/** What each helper thread is started with. */
interface HelperData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  exportName: string;
  argCount: number;
  maxCalls: number;
}

/**
 * A helper thread's whole program: it waits for a job, takes calls until none is left, and waits again, until told
 * to stop. It runs as source text (new Worker(…, { eval: true })), with runnerOver's and takeCalls's, so it too names
 * the job's field by number (JOB = 2).
 */
function helperProgram(d: HelperData, over: typeof runnerOver, take: typeof takeCalls): void {
  const kernel = new WebAssembly.Instance(d.module, { env: { memory: d.memory } }).exports[d.exportName] as Runner["kernel"];
  const r = over(kernel, d.control, d.argCount, d.maxCalls);
  let seen = 0;
  for (;;) {
    let job;
    while ((job = Atomics.load(r.control, 2)) === seen) Atomics.wait(r.control, 2, seen);
    if (job < 0) return;
    seen = job;
    take(r, job);
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
  private readonly runner: Runner;
  private job = 0;
  /** Helpers running: none once closed. */
  private running: number;

  /** How many helper threads run beside the calling thread (none once closed). */
  get helpers(): number {
    return this.running;
  }

  /**
   * `helpers` threads (0: every call runs here) running `exportName` of `module` over `memory`, which must be
   * shared; a job has at most `maxCalls` calls of `argCount` arguments.
   */
  constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, exportName: string, helpers: number, argCount: number, private readonly maxCalls: number) {
    const control = new SharedArrayBuffer(HEADER_BYTES + maxCalls * (argCount + 1) * 8);
    const kernel = new WebAssembly.Instance(module, { env: { memory } }).exports[exportName] as Runner["kernel"];
    this.runner = runnerOver(kernel, control, argCount, maxCalls);
    const source = `(${helperProgram.toString()})(require("node:worker_threads").workerData, ${runnerOver.toString()}, ${takeCalls.toString()})`;
    for (let h = 0; h < helpers; h++) {
      const data: HelperData = { module, memory, control, exportName, argCount, maxCalls };
      // Idle helpers wait on the control block; they must not keep the process alive.
      new Worker(source, { eval: true, workerData: data }).unref();
    }
    if (helpers > 0) orphans.register(this, this.runner.control, this);
    this.running = helpers;
  }

  /** Runs every call (an argument list each, at most `maxCalls`) on whichever thread takes it; returns their results in order. */
  run(calls: number[][]): number[] {
    if (calls.length > this.maxCalls) throw new Error(`kernel threads: a job of ${calls.length} calls, at most ${this.maxCalls}`);
    const { control, next, calls: slots, argCount } = this.runner;
    const n = argCount + 1;
    // The counter names the new job first: a helper still in the last one takes nothing more (its calls are all done).
    // Then the calls; then the helpers are told.
    const job = ++this.job;
    Atomics.store(next, 0, BigInt(job) << 32n);
    calls.forEach((args, c) => slots.set(args, c * n));
    Atomics.store(control, COUNT, calls.length);
    Atomics.store(control, DONE, 0);
    if (this.running > 0) {
      Atomics.store(control, JOB, job);
      Atomics.notify(control, JOB);
    }
    takeCalls(this.runner, job);
    const deadline = Date.now() + HELPER_TIMEOUT_MS;
    let done;
    while ((done = Atomics.load(control, DONE)) < calls.length) {
      if (Date.now() > deadline) throw new Error(`kernel threads: ${calls.length - done} calls that helper threads took did not finish in ${HELPER_TIMEOUT_MS / 1000} s`);
      Atomics.wait(control, DONE, done, 100);
    }
    return calls.map((_, c) => slots[c * n + argCount]);
  }

  /** Ends the helper threads; jobs after it run on this thread alone. */
  close(): void {
    orphans.unregister(this);
    if (this.running > 0) stopHelpers(this.runner.control);
    this.running = 0;
  }
}
