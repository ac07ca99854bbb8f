/**
 * Whether every value of a float32 array is finite: the coordinator's check of every result's megabytes of state and
 * gradients, before it carries a stream on or folds a gradient in. The WebAssembly SIMD kernel (kernels/finite.wat)
 * checks four values per instruction; it reads only its own memory, so the array goes through it a block at a time,
 * small enough to stay in the core's cache between the copy and the check (about twice as fast as the JavaScript
 * loop, which runs where the kernel cannot, and on the last values of an array).
 */
import { wasmModule } from "./wasm.js";

/** Values per block: 64 KiB, a WebAssembly page. */
const BLOCK = 16384;

const kernel = ((): { check: (p: number, n: number) => number; block: Float32Array } | null => {
  const module = wasmModule(new URL("./kernels/finite.wasm", import.meta.url));
  if (!module) return null;
  const memory = new WebAssembly.Memory({ initial: 1 });
  const check = new WebAssembly.Instance(module, { env: { memory } }).exports.allFinite32 as (p: number, n: number) => number;
  return { check, block: new Float32Array(memory.buffer, 0, BLOCK) };
})();

/** Whether every value of `x` is finite (no NaN, no ±Infinity). */
export function allFinite32(x: Float32Array): boolean {
  let start = 0;
  if (kernel) {
    // Whole vectors of 16 values, a block at a time; the loop below takes the last few.
    const whole = x.length & ~15;
    for (; start < whole; start += BLOCK) {
      const n = Math.min(BLOCK, whole - start);
      kernel.block.set(x.subarray(start, start + n));
      if (kernel.check(0, n) === 0) return false;
    }
    start = whole;
  }
  return allFinite32Loop(x, start);
}

/**
 * The JavaScript check of x[start…], without a branch per value: v − v is 0 for every finite v and NaN otherwise,
 * and NaN stays in a sum; four sums, so that the additions do not wait on each other.
 */
function allFinite32Loop(x: Float32Array, start: number): boolean {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = x.length;
  const n4 = start + ((n - start) & ~3);
  for (let i = start; i < n4; i += 4) {
    s0 += x[i] - x[i];
    s1 += x[i + 1] - x[i + 1];
    s2 += x[i + 2] - x[i + 2];
    s3 += x[i + 3] - x[i + 3];
  }
  for (let i = n4; i < n; i++) s0 += x[i] - x[i];
  return s0 + s1 + s2 + s3 === 0;
}
