import { describe, expect, it } from "vitest";
import { allFinite32, copyCheckingFinite32, isMarkedFinite32, markFinite32 } from "../src/platform/finite.js";

describe("allFinite32 (the coordinator's check of states and gradients)", () => {
  it("finds one NaN or ±Infinity anywhere: in whole blocks, across their edges, in the last part block and the tail", () => {
    const block = 16384;
    for (const n of [0, 1, 15, 16, 17, block - 1, block, block + 1, 3 * block + 15, 3 * block + 16 + 7]) {
      const x = new Float32Array(n).fill(3.4e38);
      for (let i = 1; i < n; i += 3) x[i] = -1e-45;
      expect(allFinite32(x), `length ${n}`).toBe(true);
      const places = [0, 15, 16, block - 1, block, block + 1, 2 * block + 5, (n & ~15) - 1, n & ~15, n - 1].filter((i) => i >= 0 && i < n);
      for (const at of places) {
        for (const bad of [Number.NaN, Infinity, -Infinity]) {
          const saved = x[at];
          x[at] = bad;
          expect(allFinite32(x), `length ${n}, ${bad} at ${at}`).toBe(false);
          x[at] = saved;
        }
      }
    }
  });

  it("checks a view from its own first value, whatever its offset in the buffer", () => {
    const x = new Float32Array(40_000).fill(1);
    x[3] = Number.NaN;
    x[39_990] = Infinity;
    expect(allFinite32(x.subarray(4, 39_990))).toBe(true);
    expect(allFinite32(x.subarray(3, 39_990))).toBe(false);
    expect(allFinite32(x.subarray(4))).toBe(false);
  });

  it("copyCheckingFinite32 copies every byte and says whether every float32 word is finite, into shared memory or not", () => {
    for (const n of [0, 3, 16, 16384 * 2 + 5]) {
      const x = Float32Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * 1.5 ** (i % 200));
      // An unaligned source: a frame's bytes may start anywhere in ZeroMQ's memory.
      const src = new Uint8Array(4 * n + 1).subarray(1);
      src.set(new Uint8Array(x.buffer));
      for (const dst of [new Uint8Array(4 * n), new Uint8Array(new SharedArrayBuffer(4 * n))]) {
        expect(copyCheckingFinite32(src, dst), `${n}`).toBe(true);
        expect(Buffer.compare(dst, src)).toBe(0);
      }
      if (n === 0) continue;
      for (const at of [0, n - 1, n >> 1]) {
        const bad = src.slice();
        new DataView(bad.buffer).setFloat32(4 * at, at % 2 ? Infinity : Number.NaN, true);
        const dst = new Uint8Array(4 * n);
        expect(copyCheckingFinite32(bad, dst), `${n}, at ${at}`).toBe(false);
        expect(Buffer.compare(dst, bad)).toBe(0);
      }
    }
    // Not a whole number of words: copied, not called finite.
    const odd = new Uint8Array(9);
    const dst = new Uint8Array(9).fill(7);
    expect(copyCheckingFinite32(odd, dst)).toBe(false);
    expect(Array.from(dst)).toEqual(Array.from(odd));
  });

  it("a marked buffer is taken as finite without being read; others are read", () => {
    const x = Float32Array.of(1, Number.NaN, 2, 3);
    expect(allFinite32(x)).toBe(false);
    expect(isMarkedFinite32(x.buffer)).toBe(false);
    markFinite32(x.buffer);
    expect(isMarkedFinite32(x.buffer)).toBe(true);
    expect(allFinite32(x.subarray(1))).toBe(true);
    expect(allFinite32(x.slice())).toBe(false);
  });
});
