/**
 * Whether every value of a float32 array is finite: the coordinator's check of every result's megabytes of state and
 * gradients, before it carries a stream on or folds a gradient in. The WebAssembly SIMD kernel (kernels/finite.wat)
 * checks four values per instruction; it reads only its own memory, so the array goes through it a block at a time,
 * small enough to stay in the core's cache between the copy and the check (about twice as fast as the JavaScript
 * loop, which runs where the kernel cannot, and on the last values of an array).
 *
 * Received data is copied once anyway (the coordinator's socket thread copies each frame into a buffer of its own):
 * copyCheckingFinite32 checks it in that copy, block by block while the block is in the cache, and the receiver marks
 * the buffers found to hold only finite float32 words (markFinite32); allFinite32 then answers for any float32 view of
 * them without reading it. Such buffers are received frames, which nothing writes.
 */
import { wasmModule } from "./wasm.js";

/** Values per block: 64 KiB, a WebAssembly page. */
const BLOCK = 16384;

const kernel = ((): { check: (p: number, n: number) => number; block: Float32Array; bytes: Uint8Array } | null => {
  const module = wasmModule(new URL("./kernels/finite.wasm", import.meta.url));
  if (!module) return null;
  const memory = new WebAssembly.Memory({ initial: 1 });
  const check = new WebAssembly.Instance(module, { env: { memory } }).exports.allFinite32 as (p: number, n: number) => number;
  return { check, block: new Float32Array(memory.buffer, 0, BLOCK), bytes: new Uint8Array(memory.buffer, 0, 4 * BLOCK) };
})();

/** Buffers that hold only finite float32 words, as received (markFinite32). */
const finiteBuffers = new WeakSet<ArrayBufferLike>();

/** Marks a buffer that copyCheckingFinite32 found to hold only finite float32 words, and that nothing will write. */
export function markFinite32(buffer: ArrayBufferLike): void {
  finiteBuffers.add(buffer);
}

/** Whether `buffer` was marked as holding only finite float32 words. */
export function isMarkedFinite32(buffer: ArrayBufferLike): boolean {
  return finiteBuffers.has(buffer);
}

/**
 * Copies `src` into `dst` (as long) and returns whether every 4-byte word of it, from its first byte, is a finite
 * float32: then so is every value of any float32 view of the copy. False where its length is not a multiple of 4, or
 * where the kernel cannot run here (a plain copy: the receiver checks what it needs).
 */
export function copyCheckingFinite32(src: Uint8Array, dst: Uint8Array): boolean {
  if (!kernel || src.byteLength % 4 !== 0) {
    dst.set(src);
    return false;
  }
  let finite = true;
  for (let start = 0; start < src.byteLength; start += 4 * BLOCK) {
    const bytes = Math.min(4 * BLOCK, src.byteLength - start);
    kernel.bytes.set(src.subarray(start, start + bytes));
    dst.set(kernel.bytes.subarray(0, bytes), start);
    finite &&= blockFinite(bytes / 4);
  }
  return finite;
}

/** Whether every value of `x` is finite (no NaN, no ±Infinity). */
export function allFinite32(x: Float32Array): boolean {
  if (isMarkedFinite32(x.buffer)) return true;
  if (!kernel) return allFinite32Loop(x);
  for (let start = 0; start < x.length; start += BLOCK) {
    const n = Math.min(BLOCK, x.length - start);
    kernel.block.set(x.subarray(start, start + n));
    if (!blockFinite(n)) return false;
  }
  return true;
}

/** Whether the first n values of the kernel's block are finite: whole vectors of 16 in the kernel, the last few in the loop. */
function blockFinite(n: number): boolean {
  const whole = n & ~15;
  return kernel!.check(0, whole) === 1 && allFinite32Loop(kernel!.block.subarray(whole, n));
}

/**
 * The JavaScript check, without a branch per value: v − v is 0 for every finite v and NaN otherwise, and NaN stays
 * in a sum; four sums, so that the additions do not wait on each other.
 */
function allFinite32Loop(x: Float32Array): boolean {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = x.length;
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    s0 += x[i] - x[i];
    s1 += x[i + 1] - x[i + 1];
    s2 += x[i + 2] - x[i + 2];
    s3 += x[i + 3] - x[i + 3];
  }
  for (let i = n4; i < n; i++) s0 += x[i] - x[i];
  return s0 + s1 + s2 + s3 === 0;
}
