/**
 * The dominant cost of the sparse adjoint: ds[i·B + b] += Σ_{e ∈ row i} W[e]·δ_src(i)[post[e]·B + b] for every
 * presynaptic neuron i and trial b (see sparse-cpu.ts). A WebAssembly SIMD kernel (adjoint.wat) computes it about
 * 4× faster than scalar JavaScript; the JavaScript loop below is the fallback where WebAssembly SIMD is missing.
 * Both sum each (i, b) over the row's edges in edge order, so they give bit-identical results.
 */
import { readFileSync } from "node:fs";
import { EdgeList } from "../../shared/connectome.js";

export type KernelKind = "wasm" | "js";

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel, or null where this runtime lacks WebAssembly SIMD or the binary was not built. */
function wasmModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    const bytes = readFileSync(new URL("./adjoint.wasm", import.meta.url));
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    compiled = null;
  }
  return compiled;
}

export class RowDots {
  readonly kind: KernelKind;
  /** δ per source population, [src][j][b]; the engine writes it before each run. */
  readonly delta: Float64Array;
  /** Accumulated products, [i][b]; the engine reads and resets it. */
  readonly ds: Float64Array;
  private readonly weights: Float32Array;
  private readonly run: () => void;

  constructor(rec: EdgeList, cellType: Int32Array, numSources: number, trials: number, prefer: KernelKind = "wasm") {
    const N = rec.numPre;
    const E = rec.pre.length;
    const NB = N * trials;
    const module = prefer === "wasm" ? wasmModule() : null;
    if (!module) {
      this.kind = "js";
      this.delta = new Float64Array(numSources * NB);
      this.ds = new Float64Array(NB);
      this.weights = new Float32Array(E);
      const { rowPtr, post } = rec;
      const { delta, ds, weights: W } = this;
      this.run = () => {
        for (let i = 0; i < N; i++) {
          const dBase = cellType[i] * NB;
          const start = rowPtr[i];
          const end = rowPtr[i + 1];
          for (let b = 0; b < trials; b++) {
            let acc = 0;
            for (let e = start; e < end; e++) acc += W[e] * delta[dBase + post[e] * trials + b];
            ds[i * trials + b] += acc;
          }
        }
      };
      return;
    }
    this.kind = "wasm";
    // One linear memory laid out once (16-byte aligned blocks); it never grows, so the views stay valid.
    let top = 0;
    const block = (bytes: number) => {
      const at = top;
      top += Math.ceil(bytes / 16) * 16;
      return at;
    };
    const pRowPtr = block((N + 1) * 4);
    const pPost = block(E * 4);
    const pCellType = block(N * 4);
    const pW = block(E * 4);
    const pDelta = block(numSources * NB * 8);
    const pDs = block(NB * 8);
    const memory = new WebAssembly.Memory({ initial: Math.ceil(top / 65536) + 1 });
    const buf = memory.buffer;
    new Int32Array(buf, pRowPtr, N + 1).set(rec.rowPtr);
    new Int32Array(buf, pPost, E).set(rec.post);
    new Int32Array(buf, pCellType, N).set(cellType);
    this.weights = new Float32Array(buf, pW, E);
    this.delta = new Float64Array(buf, pDelta, numSources * NB);
    this.ds = new Float64Array(buf, pDs, NB);
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const rowDots = instance.exports.rowDots as (...args: number[]) => void;
    this.run = () => rowDots(pRowPtr, pPost, pW, pDelta, pDs, pCellType, N, trials);
  }

  /** Weights of this epoch (copied once into the kernel's memory). */
  setWeights(W: Float32Array): void {
    this.weights.set(W);
  }

  accumulate(): void {
    this.run();
  }
}
