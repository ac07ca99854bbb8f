import { describe, expect, it } from "vitest";
import { allFinite32 } from "../src/platform/finite.js";

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
});
