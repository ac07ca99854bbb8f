/**
 * The sparse-cpu engine's buffers, laid out once per engine either as plain typed arrays (JavaScript kernels) or as
 * views into one WebAssembly memory shared with the compiled kernels (neurons.wat: elementwise passes; adjoint.wat:
 * the adjoint's sparse product; synapses.wat: event-driven injection and weight gradient). The memory never grows,
 * so the views stay valid. Both kinds of kernel perform the same floating-point operations in the same order and give
 * bit-identical results.
 */
import { alignedBytes, wasmModule } from "../../../platform/wasm.js";

export type KernelKind = "wasm" | "js";

type ArrayCtor = Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;
export type BufferLayout = Record<string, readonly [ArrayCtor, number]>;
export type Buffers<L extends BufferLayout> = { [K in keyof L]: InstanceType<L[K][0]> };

export interface WasmKernels {
  forwardNeurons(...args: number[]): void;
  backwardNeurons(...args: number[]): void;
  packDelta(...args: number[]): void;
  rowDots(...args: number[]): void;
  synapsePass(...args: number[]): void;
  voltageMoments(...args: number[]): void;
  spikeTrains(...args: number[]): void;
}

const MODULES = ["neurons", "adjoint", "synapses"] as const;

/** The compiled kernels, or null where this runtime lacks WebAssembly SIMD or the binaries were not built. */
function wasmModules(): WebAssembly.Module[] | null {
  const mods = MODULES.map((name) => wasmModule(new URL(`./${name}.wasm`, import.meta.url)));
  return mods.every((m) => m !== null) ? (mods as WebAssembly.Module[]) : null;
}

/** The most a WebAssembly memory can hold (65536 pages of 64 KiB): the sparse-cpu engine's limit per epoch. */
export const WASM_MEMORY_LIMIT_BYTES = 2 ** 32;

/** Bytes a layout takes in one WebAssembly memory (each buffer 16-byte aligned, as Workspace places them). */
export function layoutBytes(layout: BufferLayout): number {
  let top = 16;
  for (const [Ctor, n] of Object.values(layout)) top += alignedBytes(n, Ctor.BYTES_PER_ELEMENT);
  return top;
}

export class Workspace<L extends BufferLayout> {
  readonly kind: KernelKind;
  readonly buffers: Buffers<L>;
  /** Byte offset of each buffer in the WebAssembly memory (wasm kind only). */
  readonly ptr: { [K in keyof L]: number };
  readonly kernels: WasmKernels | null;

  constructor(layout: L, prefer: KernelKind) {
    const mods = prefer === "wasm" ? wasmModules() : null;
    const buffers = {} as Record<string, unknown>;
    const ptr = {} as Record<string, number>;
    if (!mods) {
      this.kind = "js";
      for (const [name, [Ctor, n]] of Object.entries(layout)) buffers[name] = new Ctor(n);
      this.kernels = null;
    } else {
      this.kind = "wasm";
      let top = 16;
      for (const [name, [Ctor, n]] of Object.entries(layout)) {
        ptr[name] = top;
        top += alignedBytes(n, Ctor.BYTES_PER_ELEMENT);
      }
      if (top > WASM_MEMORY_LIMIT_BYTES) throw new Error(`an epoch needs ${(top / 2 ** 30).toFixed(1)} GiB of engine memory, above the 4 GiB WebAssembly can address`);
      const memory = new WebAssembly.Memory({ initial: Math.ceil(top / 65536) + 1 });
      for (const [name, [Ctor, n]] of Object.entries(layout)) buffers[name] = new Ctor(memory.buffer, ptr[name], n);
      // Every module's exports over the one memory; the kernel names are distinct across modules.
      this.kernels = Object.assign({}, ...mods.map((m) => new WebAssembly.Instance(m, { env: { memory } }).exports)) as WasmKernels;
    }
    this.buffers = buffers as Buffers<L>;
    this.ptr = ptr as { [K in keyof L]: number };
  }
}
