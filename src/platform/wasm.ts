// Compiled WebAssembly kernels (the *.wasm that scripts/build-wasm.mjs writes beside each *.wat): loaded once per
// module, or null where this runtime cannot run them (no WebAssembly SIMD) or the binary was not built, so that the
// caller falls back to its JavaScript loops, which give the same results.
import { readFileSync } from "node:fs";

const compiled = new Map<string, WebAssembly.Module | null>();

/** The module compiled from the binary at `url`, or null where it is missing or does not validate here. */
export function wasmModule(url: URL): WebAssembly.Module | null {
  const key = url.href;
  if (!compiled.has(key)) {
    let module: WebAssembly.Module | null = null;
    try {
      const bytes = readFileSync(url);
      if (WebAssembly.validate(bytes)) module = new WebAssembly.Module(bytes);
    } catch {
      // Not built (a source checkout before `npm run build`): the caller runs its JavaScript loops.
    }
    compiled.set(key, module);
  }
  return compiled.get(key)!;
}

/** Bytes of an array of `n` elements of `bytesPerElement` in a kernel's memory, rounded up to 16 (one SIMD vector). */
export function alignedBytes(n: number, bytesPerElement: number): number {
  return Math.ceil((n * bytesPerElement) / 16) * 16;
}
