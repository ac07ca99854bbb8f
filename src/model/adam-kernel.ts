/**
 * optimizerStep's Adam step (on the clipped gradient, then under parameterisation = "linear" the projection onto
 * w ≥ 0, one pass per part; under "log" the step on θ = ln w, whose e^θ optimizerStep takes after it) as a
 * WebAssembly SIMD kernel (kernels/adam.wat): the same operations in the same order as adamPart, two elements at a
 * time, so the results are bit-identical (test/adam-kernel.test.ts) and the step, bound by its two divisions and one
 * square root per element, takes about half the time. It is the coordinator's largest piece of work per update
 * (863 k weights at default size), on the critical path between two intervals.
 *
 * The kernel reads and writes only its own memory, which holds per part the gradient and two generations of
 * parameters and moments, used in turn: a step reads the current generation and writes the other one, which becomes
 * current only when the caller commits it, so that a step that would make a weight non-finite leaves the current
 * parameters as they were. The moments it returns are views of its memory; the parameters are copies (weights sent to
 * workers are never written again), which must not be changed in place: the next step reads its own copy. Parameters
 * it did not return itself (the first step, or a resumed run's) are copied in first.
 */
import { alignedBytes, wasmModule } from "../platform/wasm.js";

/** An Adam step's constants: betas, eps, lr/(1 − β₁ᵗ) and √(1 − β₂ᵗ) (optimizer.ts adamCoefficients). */
export interface AdamCoefficients {
  b1: number;
  b2: number;
  eps: number;
  stepSize: number;
  sqrtBc2: number;
}

interface AdamExports {
  adamLinear(
    n: number,
    g: number,
    w: number,
    m: number,
    v: number,
    w2: number,
    m2: number,
    v2: number,
    scale: number,
    b1: number,
    b2: number,
    eps: number,
    stepSize: number,
    sqrtBc2: number,
    project: number,
  ): number;
}

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
  private readonly exports: AdamExports;
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
  static create(sizes: number[]): AdamKernel | null {
    const module = wasmModule(new URL("./kernels/adam.wasm", import.meta.url));
    // At least the one page the module's memory import asks for (a network without synapses of a kind has a part of 0).
    const pages = Math.max(1, Math.ceil(memoryBytes(sizes) / 65536));
    if (!module || pages > MAX_PAGES) return null;
    try {
      return new AdamKernel(module, sizes, pages);
    } catch (e) {
      // The memory could not be reserved (a RangeError): the JavaScript loop needs less of it at once.
      if (e instanceof RangeError) return null;
      throw e;
    }
  }

  private constructor(module: WebAssembly.Module, readonly sizes: number[], pages: number) {
    this.padded = sizes.map(padded);
    // Zeros in the padding stay zeros: a zero gradient, weight and moment make a zero step (eps > 0).
    const memory = new WebAssembly.Memory({ initial: pages });
    this.exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as AdamExports;
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

  /**
   * Copies the gradient (one array per part) into the kernel's memory for the next step, and returns its Σg² over all
   * parts in order: the global norm's square as optimizer.ts sumOfSquares() sums it, in the same pass as the copy;
   * or `sumSquares`, where the caller has it already (then the copy is all).
   */
  loadGradient(grads: Float64Array[], sumSquares: number | null = null): number {
    if (grads.length !== this.sizes.length || grads.some((g, k) => g.length !== this.sizes[k]))
      throw new Error(`Adam kernel: a gradient of ${grads.map((g) => g.length).join("/")} values for parts of ${this.sizes.join("/")}`);
    if (sumSquares !== null) {
      grads.forEach((g, k) => this.grads[k].view.set(g));
      return sumSquares;
    }
    // A plain loop, not a callback: a sum that a closure updates is a heap number, allocated at every addition.
    let s = 0;
    for (let k = 0; k < grads.length; k++) {
      const g = grads[k];
      const dst = this.grads[k].view;
      for (let i = 0; i < g.length; i++) {
        const x = g[i];
        dst[i] = x;
        s += x * x;
      }
    }
    return s;
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
    let moved = 0;
    for (let k = 0; k < this.sizes.length; k++) {
      const part = this.exports.adamLinear(
        this.padded[k],
        this.grads[k].ptr,
        from.w[k].ptr,
        from.m[k].ptr,
        from.v[k].ptr,
        to.w[k].ptr,
        to.m[k].ptr,
        to.v[k].ptr,
        scale,
        c.b1,
        c.b2,
        c.eps,
        c.stepSize,
        c.sqrtBc2,
        project ? 1 : 0,
      );
      moved = part < 0 || moved < 0 ? -1 : moved + part;
    }
    return { moved, params: to.w.map((w) => w.view) };
  }

  /**
   * Makes the generation the last compute() wrote the current one. Returns its parameters as new arrays (weights sent
   * to workers are never written again; the next step reads its own copy, so they must not be changed in place) and
   * its moments as views, valid until the step after the next one writes over them.
   */
  commit(): KernelStep {
    this.current = 1 - this.current;
    const now = this.generations[this.current];
    this.returned = now.w.map((w) => w.view.slice());
    return { params: this.returned, m: now.m.map((p) => p.view), v: now.v.map((p) => p.view) };
  }
}
