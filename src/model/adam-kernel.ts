/**
 * optimizerStep's Adam step (on the clipped gradient, then under parameterisation = "linear" the projection onto
 * w ≥ 0, one pass per part; under "log" the step on θ = ln w, whose e^θ optimizerStep takes after it) as a
 * WebAssembly SIMD kernel (kernels/adam.wat): the same operations in the same order as adamPart, two elements at a
 * time, so the results are bit-identical (test/adam-kernel.test.ts) and the step, bound by its two divisions and one
 * square root per element, takes about half the time. It is the coordinator's largest piece of work per update
 * (863 k weights at default size), on the critical path between two intervals, so from 65 536 weights on it is also
 * shared with helper threads, one per other core up to three (platform/kernel-threads.ts): the parts are cut into
 * ranges, which whichever thread is free steps, element by element as one thread would, so the results are the same
 * bit for bit whoever steps which.
 *
 * The kernel reads and writes only its own memory (shared with its helpers), which holds per part the gradient and
 * two generations of parameters and moments, used in turn: a step reads the current generation and writes the other
 * one, which becomes current only when the caller commits it, so that a step that would make a weight non-finite
 * leaves the current parameters as they were. The moments it returns are views of its memory; the parameters are
 * copies (weights sent to workers are never written again), which must not be changed in place: the next step reads
 * its own copy. Parameters it did not return itself (the first step, or a resumed run's) are copied in first.
 */
import { KernelThreads, spareCores } from "../platform/kernel-threads.js";
import { alignedBytes, wasmModule } from "../platform/wasm.js";

/** An Adam step's constants: betas, eps, lr/(1 − β₁ᵗ) and √(1 − β₂ᵗ) (optimizer.ts adamCoefficients). */
export interface AdamCoefficients {
  b1: number;
  b2: number;
  eps: number;
  stepSize: number;
  sqrtBc2: number;
}

/** The kernel's arguments: n, then the pointers g, w, m, v, w2, m2, v2, then scale, b1, b2, eps, stepSize, sqrtBc2, project. */
const ADAM_ARGS = 15;

/** A float32 array of one part in the kernel's memory: the view (the part's length) and its byte offset. */
interface Placed<T> {
  view: T;
  ptr: number;
}

/** One generation of the optimised parameters (the weights, or θ = ln w) and their moments, per part. */
interface Generation {
  w: Placed<Float32Array>[];
  m: Placed<Float32Array>[];
  v: Placed<Float32Array>[];
}

/** What a step made: the new parameters (new arrays) and moments (views of the kernel's memory), per part. */
export interface KernelStep {
  params: Float32Array[];
  m: Float32Array[];
  v: Float32Array[];
}

/** Elements per call of the kernel (a multiple of four): a default-size step is some fifteen calls for the threads to share. */
const RANGE = 1 << 16;

/** Fewer weights than one range are stepped on one thread: there is nothing to share, and helpers cost a start-up. */
const THREADED_FROM = RANGE;

/** The most pages (64 KiB) a WebAssembly memory holds: 4 GiB. */
const MAX_PAGES = 65536;

/** A part's length padded to a multiple of four (the kernel's loop takes four elements per pass). */
function padded(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** The kernel's memory for parts of these sizes: per part, the float64 gradient and two generations of weights and moments. */
function memoryBytes(sizes: number[]): number {
  return sizes.reduce((sum, n) => sum + alignedBytes(padded(n), 8) + 6 * alignedBytes(padded(n), 4), 0);
}

export class AdamKernel {
  private readonly threads: KernelThreads;
  /** Per part: its length, padded to a multiple of four. */
  private readonly padded: number[];
  private readonly grads: Placed<Float64Array>[];
  private readonly generations: [Generation, Generation];
  /** Which generation holds the current parameters. */
  private current = 0;
  /** The parameters the last commit returned, per part: copies of the current generation's, which the next step reads there. */
  private returned: Float32Array[] = [];

  /**
   * A kernel for parts of these sizes, or null where the compiled kernel cannot run here, or its memory (32 bytes per
   * synapse) would not fit in the 4 GiB a WebAssembly memory addresses (over 130 million synapses) or cannot be had:
   * the caller then runs adamPart.
   */
  static create(sizes: number[], helpers = sizes.reduce((a, b) => a + b, 0) >= THREADED_FROM ? spareCores(3) : 0): AdamKernel | null {
    const module = wasmModule(new URL("./kernels/adam.wasm", import.meta.url));
    // At least the one page the module's memory import asks for (a network without synapses of a kind has a part of 0).
    const pages = Math.max(1, Math.ceil(memoryBytes(sizes) / 65536));
    if (!module || pages > MAX_PAGES) return null;
    try {
      return new AdamKernel(module, sizes, pages, helpers);
    } catch (e) {
      // The memory could not be reserved (a RangeError): the JavaScript loop needs less of it at once.
      if (e instanceof RangeError) return null;
      throw e;
    }
  }

  private constructor(module: WebAssembly.Module, readonly sizes: number[], pages: number, helpers: number) {
    this.padded = sizes.map(padded);
    // Zeros in the padding stay zeros: a zero gradient, weight and moment make a zero step (eps > 0).
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.threads = new KernelThreads(module, memory, "adamLinear", helpers, ADAM_ARGS, this.padded.reduce((calls, n) => calls + Math.ceil(n / RANGE), 0));
    let top = 0;
    const place = <T>(Ctor: new (b: ArrayBuffer, offset: number, length: number) => T, bytesPerElement: number, k: number): Placed<T> => {
      const ptr = top;
      top += alignedBytes(this.padded[k], bytesPerElement);
      return { view: new Ctor(memory.buffer, ptr, sizes[k]), ptr };
    };
    this.grads = sizes.map((_, k) => place(Float64Array, 8, k));
    const generation = (): Generation => ({
      w: sizes.map((_, k) => place(Float32Array, 4, k)),
      m: sizes.map((_, k) => place(Float32Array, 4, k)),
      v: sizes.map((_, k) => place(Float32Array, 4, k)),
    });
    this.generations = [generation(), generation()];
  }

  /** Copies the gradient (one array per part) into the kernel's memory for the next step. */
  loadGradient(grads: Float64Array[]): void {
    if (grads.length !== this.sizes.length || grads.some((g, k) => g.length !== this.sizes[k]))
      throw new Error(`Adam kernel: a gradient of ${grads.map((g) => g.length).join("/")} values for parts of ${this.sizes.join("/")}`);
    grads.forEach((g, k) => this.grads[k].view.set(g));
  }

  /**
   * One step of every part into the other generation, from parameters `params` (the weights, or θ = ln w) and moments
   * `m`, `v`, with the gradient last loaded (loadGradient) times `scale` and coefficients `c`, projecting onto
   * params ≥ 0 when `project`. Returns the new parameters (views of the other generation, valid until the next
   * compute) and the weights the projection moved, or −1 when some new parameter is not finite. Nothing changes
   * which generation is current until commit().
   */
  compute(c: AdamCoefficients, scale: number, params: Float32Array[], m: Float32Array[], v: Float32Array[], project: boolean): { moved: number; params: Float32Array[] } {
    const from = this.generations[this.current];
    const to = this.generations[1 - this.current];
    for (let k = 0; k < this.sizes.length; k++) {
      if (params[k] !== this.returned[k] || m[k] !== from.m[k].view || v[k] !== from.v[k].view) {
        from.w[k].view.set(params[k]);
        from.m[k].view.set(m[k]);
        from.v[k].view.set(v[k]);
      }
    }
    // Each part in ranges of RANGE elements, which whichever thread is free takes.
    const coefficients = [scale, c.b1, c.b2, c.eps, c.stepSize, c.sqrtBc2, project ? 1 : 0];
    const calls = this.padded.flatMap((n, k) =>
      Array.from({ length: Math.ceil(n / RANGE) }, (_, r) => {
        const a = r * RANGE;
        const floats = [from.w[k].ptr, from.m[k].ptr, from.v[k].ptr, to.w[k].ptr, to.m[k].ptr, to.v[k].ptr].map((ptr) => ptr + 4 * a);
        return [Math.min(RANGE, n - a), this.grads[k].ptr + 8 * a, ...floats, ...coefficients];
      }),
    );
    let moved = 0;
    for (const part of this.threads.run(calls)) moved = part < 0 || moved < 0 ? -1 : moved + part;
    return { moved, params: to.w.map((w) => w.view) };
  }

  /**
   * Makes the generation the last compute() wrote the current one. Returns its parameters as new arrays, each in
   * shared memory of its own (weights sent to workers are never written again; the next step reads its own copy, so
   * they must not be changed in place), and its moments as views, valid until the step after the next one writes over
   * them.
   */
  commit(): KernelStep {
    this.current = 1 - this.current;
    const now = this.generations[this.current];
    this.returned = now.w.map((w) => {
      // Shared memory: V8 counts it less towards starting full collections than an ArrayBuffer's (a new one per update
      // was one of the coordinator's triggers), and nothing writes weights once made, so threads may share them.
      const copy = new Float32Array(new SharedArrayBuffer(w.view.byteLength));
      copy.set(w.view);
      return copy;
    });
    return { params: this.returned, m: now.m.map((p) => p.view), v: now.v.map((p) => p.view) };
  }

  /** How many helper threads share its steps with the calling thread. */
  get helpers(): number {
    return this.threads.helpers;
  }

  /** Ends the helper threads (a kernel collected without it ends them then). */
  close(): void {
    this.threads.close();
  }
}
