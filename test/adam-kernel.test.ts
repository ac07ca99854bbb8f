import { describe, expect, it } from "vitest";
import { AdamKernel } from "../src/model/adam-kernel.js";
import { logWeights, newAdamState, OptimizedParameters, optimizerStep, UpdateStep } from "../src/model/optimizer.js";
import { withOwnBuffers } from "../src/platform/thread-rpc.js";
import { Rng } from "../src/model/rng.js";

type Hyper = Parameters<typeof optimizerStep>[2];

/**
 * Parts of these sizes with zero moments and weights in [−0.01, 0.05) (some step onto the projection), or under
 * "log" (`log`) in (0, 0.05) with θ = ln w.
 */
function parameters(sizes: number[], rng: Rng, log = false): OptimizedParameters {
  const weights = sizes.map((n) => Float32Array.from({ length: n }, () => (log ? 1e-4 + rng.uniform() * 0.05 : rng.uniform() * 0.06 - 0.01)));
  return { weights, logWeights: log ? weights.map(logWeights) : null, adam: newAdamState(sizes) };
}

function gradients(sizes: number[], rng: Rng, magnitude: number): Float64Array[] {
  return sizes.map((n) => Float64Array.from({ length: n }, () => (rng.uniform() - 0.5) * magnitude * (rng.uniform() < 0.1 ? 100 : 1)));
}

/** The step's arrays, bit for bit (Object.is tells −0 from 0 and compares NaN with itself). */
function bits(s: UpdateStep): unknown {
  if (!s.applied) return s;
  const arrays = (xs: Float32Array[]) => xs.map((x) => Array.from(x, (v) => (Object.is(v, -0) ? "-0" : v)));
  const { weights, logWeights, adam } = s.next;
  return { gradNorm: s.gradNorm, step: adam.step, weights: arrays(weights), logWeights: logWeights && arrays(logWeights), m: arrays(adam.m), v: arrays(adam.v) };
}

/** The same as bits(a) equal bits(b), comparing the arrays' bytes: fast enough for parts of several ranges. */
function sameBits(a: UpdateStep, b: UpdateStep): boolean {
  if (!a.applied || !b.applied) return JSON.stringify(a) === JSON.stringify(b);
  const arrays = (s: OptimizedParameters) => [...s.weights, ...(s.logWeights ?? []), ...s.adam.m, ...s.adam.v];
  const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  const [x, y] = [arrays(a.next), arrays(b.next)];
  return Object.is(a.gradNorm, b.gradNorm) && a.next.adam.step === b.next.adam.step && x.length === y.length && x.every((p, k) => Buffer.compare(bytes(p), bytes(y[k])) === 0);
}

describe("the SIMD Adam kernel", () => {
  const h: Hyper = { learningRate: 3e-3, betas: [0.9, 0.999], eps: 1e-8, maxGradNorm: 0.5 };

  it("runs here: the coordinator's step takes it; not for more weights than 4 GiB of WebAssembly memory holds", () => {
    expect(AdamKernel.create([3, 5])).not.toBeNull();
    expect(AdamKernel.create([2 ** 27, 1])).toBeNull();
    expect(AdamKernel.create([2 ** 22, 1])).not.toBeNull();
  });

  it.each([["linear", false], ["log", true]])("%s: gives optimizerStep's results bit for bit, step after step, for any part sizes, with and without clipping", (_, log) => {
    const rng = Rng.keyed(11);
    for (const sizes of [[1, 2], [5, 7], [4, 8], [4099, 333], [6, 0], [0, 0]]) {
      const kernel = AdamKernel.create(sizes)!;
      let js = parameters(sizes, rng, log);
      let simd: OptimizedParameters = { ...js, adam: { ...js.adam } };
      for (let t = 0; t < 6; t++) {
        // Small gradients stay under max_grad_norm (no clip); large ones are clipped.
        // (Under "log" the gradient is w·g, with w ≤ 0.05.)
        const g = gradients(sizes, rng, t % 2 === 0 ? 1e-4 : log ? 1000 : 10);
        const a = optimizerStep(js, g.map((x) => x.slice()), h, ["rec", "ff"]);
        const b = optimizerStep(simd, g, h, ["rec", "ff"], "weights", { kernel });
        expect(bits(b)).toEqual(bits(a));
        if (!a.applied || !b.applied) throw new Error("step not applied");
        // Under "linear" some weights were projected onto 0 (so the kernel's projection was taken), and every other
        // step clipped.
        if (sizes[0] > 1000 && !log) expect(a.next.weights[0].filter((w) => w === 0).length).toBeGreaterThan(0);
        expect(a.gradNorm > h.maxGradNorm).toBe(t % 2 === 1 && sizes[0] + sizes[1] > 0);
        js = a.next;
        simd = b.next;
      }
    }
  });

  it.each([0, 1, 2, 3])("shared with %i helper threads: the JavaScript step's results bit for bit, for parts of one or several ranges, a refused step included, and after close() on one thread", (helpers) => {
    for (const log of [false, true]) {
      const rng = Rng.keyed(13, helpers);
      // Ranges are 65 536 elements: parts of one range, of two and a bit, and of one and a bit.
      for (const sizes of [[1, 2], [5, 7], [4099, 333], [2 * 65_536 + 4, 65_541], [6, 0]]) {
        const kernels = [null, AdamKernel.create(sizes, helpers)!];
        const start = parameters(sizes, rng, log);
        let states: OptimizedParameters[] = [start, { ...start, adam: { ...start.adam } }];
        for (let t = 0; t < 4; t++) {
          if (t === 3) kernels[1]!.close();
          const g = gradients(sizes, rng, t % 2 === 0 ? 1e-4 : 10);
          // The third step's learning rate makes every weight non-finite: both refuse it.
          const hp = t === 2 && !log ? { ...h, learningRate: 1e39 } : h;
          const [a, b] = kernels.map((kernel, k) => optimizerStep(states[k], g.map((x) => x.slice()), hp, ["rec", "ff"], "weights", { kernel }));
          expect(sameBits(a, b), `${sizes} step ${t}`).toBe(true);
          if (a.applied && b.applied) states = [a.next, b.next];
          else expect(t === 2 && !log && sizes[0] + sizes[1] > 0).toBe(true);
        }
        kernels[1]!.close();
      }
    }
  });

  it("reads parameters it did not return (a resumed run's) from where they are", () => {
    const rng = Rng.keyed(5);
    const sizes = [9, 6];
    const kernel = AdamKernel.create(sizes)!;
    const cur = parameters(sizes, rng);
    const first = optimizerStep(cur, gradients(sizes, rng, 1e-3), h, ["rec", "ff"], "weights", { kernel });
    if (!first.applied) throw new Error("step not applied");
    // Copies: the same values in arrays the kernel did not hand out.
    const resumed: OptimizedParameters = { weights: first.next.weights.map((w) => w.slice()), logWeights: null, adam: { step: 1, m: first.next.adam.m.map((m) => m.slice()), v: first.next.adam.v.map((v) => v.slice()) } };
    // Different values in the kernel's own arrays, to show they are not what it reads.
    first.next.weights[0].fill(7);
    const g = gradients(sizes, rng, 1e-3);
    expect(bits(optimizerStep(resumed, g.map((x) => x.slice()), h, ["rec", "ff"], "weights", { kernel }))).toEqual(bits(optimizerStep(resumed, g, h, ["rec", "ff"])));
  });

  it("a step that would make a weight non-finite is refused and leaves the current parameters as they were", () => {
    const rng = Rng.keyed(3);
    const sizes = [6, 3];
    const kernel = AdamKernel.create(sizes)!;
    const start = optimizerStep(parameters(sizes, rng), gradients(sizes, rng, 1e-3), h, ["rec", "ff"], "weights", { kernel });
    if (!start.applied) throw new Error("step not applied");
    const cur = start.next;
    const before = bits({ applied: true, gradNorm: 0, next: cur });
    // lr·m̂/(√v̂ + eps) ≈ lr: 1e39 rounds to float32 Infinity.
    const huge = optimizerStep(cur, gradients(sizes, rng, 1e-3), { ...h, learningRate: 1e39 }, ["rec", "ff"], "weights", { kernel });
    expect(huge).toMatchObject({ applied: false, problem: "the step would make a weight non-finite (learning rate 1e+39)" });
    expect(bits({ applied: true, gradNorm: 0, next: cur })).toEqual(before);
    // The next step starts from the current parameters, as the JavaScript step does.
    const g = gradients(sizes, rng, 1e-3);
    const copy: OptimizedParameters = { weights: cur.weights.map((w) => w.slice()), logWeights: null, adam: { step: cur.adam.step, m: cur.adam.m.map((m) => m.slice()), v: cur.adam.v.map((v) => v.slice()) } };
    expect(bits(optimizerStep(cur, g.map((x) => x.slice()), h, ["rec", "ff"], "weights", { kernel }))).toEqual(bits(optimizerStep(copy, g, h, ["rec", "ff"])));
  });

  it("log: a step that makes some θ infinite is taken or refused as the JavaScript step takes it (e^−∞ = 0 is a weight)", () => {
    const sizes = [8, 4];
    for (const sign of [1, -1]) {
      const rng = Rng.keyed(7);
      const kernel = AdamKernel.create(sizes)!;
      const cur = parameters(sizes, rng, true);
      // One sign for every gradient: every θ moves by about ∓1e39, which rounds to ∓Infinity in float32.
      const g = sizes.map((n) => Float64Array.from({ length: n }, () => sign * (0.5 + rng.uniform())));
      const huge = { ...h, learningRate: 1e39 };
      const a = optimizerStep(cur, g.map((x) => x.slice()), huge, ["rec", "ff"]);
      const b = optimizerStep(cur, g, huge, ["rec", "ff"], "weights", { kernel });
      expect(b.applied).toBe(sign > 0);
      expect(bits(b)).toEqual(bits(a));
    }
  });

  it("returns new weights every step (weights sent to workers are never written again), and moments in its memory", () => {
    const sizes = [4, 4];
    const kernel = AdamKernel.create(sizes)!;
    const rng = Rng.keyed(1);
    let cur = parameters(sizes, rng);
    const seen = new Set<Float32Array>();
    for (let t = 0; t < 4; t++) {
      const step = optimizerStep(cur, gradients(sizes, rng, 1e-3), h, ["rec", "ff"], "weights", { kernel });
      if (!step.applied) throw new Error("step not applied");
      for (const w of step.next.weights) {
        expect(seen.has(w)).toBe(false);
        seen.add(w);
      }
      expect(step.next.adam.m[0].buffer).toBe(step.next.adam.v[1].buffer);
      cur = step.next;
    }
  });
});

describe("withOwnBuffers (what a thread is sent)", () => {
  it("copies views of part of a buffer alone, shared or not, and keeps whole buffers, shared ones too, and other values", () => {
    const big = new ArrayBuffer(64);
    const part = new Float32Array(big, 16, 4);
    part.set([1, 2, 3, 4]);
    const whole = new Float32Array(8);
    // Part of shared memory (the Adam kernel's moments, which later steps write over), and a whole shared buffer (a
    // received frame).
    const sharedPart = new Float32Array(new SharedArrayBuffer(64), 16, 4);
    sharedPart.set([5, 6, 7, 8]);
    const shared = new Float32Array(new SharedArrayBuffer(16));
    const value = { a: 1, s: "x", n: null, whole, nested: { list: [part, whole], shared, sharedPart } };
    const copies: ArrayBuffer[] = [];
    const out = withOwnBuffers(value, copies);
    // The copies made, for the caller to transfer.
    expect(copies).toEqual([out.nested.list[0].buffer, out.nested.sharedPart.buffer]);
    expect(out.nested.sharedPart.buffer).toBeInstanceOf(ArrayBuffer);
    expect(Array.from(out.nested.sharedPart)).toEqual([5, 6, 7, 8]);
    expect(out).not.toBe(value);
    expect(out.nested.list[0]).not.toBe(part);
    expect(out.nested.list[0].buffer.byteLength).toBe(16);
    expect(Array.from(out.nested.list[0])).toEqual([1, 2, 3, 4]);
    expect(out.nested.list[1]).toBe(whole);
    expect(out.nested.shared).toBe(shared);
    expect(out.whole).toBe(whole);
    expect({ ...out, nested: null }).toEqual({ ...value, nested: null });
    // Nothing to copy: the value itself.
    const plain = { a: [whole], b: 2 };
    expect(withOwnBuffers(plain)).toBe(plain);
  });
});
