/**
 * Connectome generation (src/model/connectome.ts, MODEL.md section 1): determinism, edge-list invariants, the
 * original's quirks, and, at the default size, the realised statistics measured on the original (MODEL.md 1.2-1.4).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { Config, parseConfig } from "../src/model/config.js";
import { Connectome, EdgeList, generateConnectome, lognormalParameters, makeEdgeList } from "../src/model/connectome.js";
import { DEFAULT_TEXT, QUICK_TEXT, replaceOnce, smallConnectomeText } from "./helpers/parameter-text.js";

/** Quickstart wiring at 120 neurons in 4 assemblies of 30, 40 inputs. */
function smallConfig(seed = 42): Config {
  return parseConfig(smallConnectomeText(seed), "small");
}

/** Checks the documented EdgeList invariants; returns nothing, fails the test on the first violation. */
function expectValidEdgeList(el: EdgeList): void {
  const E = el.pre.length;
  expect(el.post.length).toBe(E);
  expect(el.rowPtr.length).toBe(el.numPre + 1);
  expect(el.rowPtr[0]).toBe(0);
  expect(el.rowPtr[el.numPre]).toBe(E);
  for (let i = 0; i < el.numPre; i++) {
    if (el.rowPtr[i + 1] < el.rowPtr[i]) throw new Error(`rowPtr decreases at ${i}`);
    for (let e = el.rowPtr[i]; e < el.rowPtr[i + 1]; e++) if (el.pre[e] !== i) throw new Error(`edge ${e} has pre ${el.pre[e]}, row ${i}`);
  }
  for (let e = 0; e < E; e++) {
    if (el.post[e] < 0 || el.post[e] >= el.numPost) throw new Error(`edge ${e}: post ${el.post[e]} out of range`);
    // Strictly increasing (pre, post): sorted and no duplicate edges.
    if (e > 0 && (el.pre[e] < el.pre[e - 1] || (el.pre[e] === el.pre[e - 1] && el.post[e] <= el.post[e - 1])))
      throw new Error(`edges ${e - 1}, ${e} not in strictly increasing (pre, post) order`);
  }
}

describe("small network (quickstart wiring, 120 neurons)", () => {
  let a: Connectome;
  let b: Connectome;
  let c: Connectome;

  beforeAll(() => {
    a = generateConnectome(smallConfig(42));
    b = generateConnectome(smallConfig(42));
    c = generateConnectome(smallConfig(43));
  });

  it("same seed gives identical arrays and hash", () => {
    expect(b.cellType).toEqual(a.cellType);
    expect(b.inputType).toEqual(a.inputType);
    expect(b.rec.pre).toEqual(a.rec.pre);
    expect(b.rec.post).toEqual(a.rec.post);
    expect(b.rec.rowPtr).toEqual(a.rec.rowPtr);
    expect(b.ff.pre).toEqual(a.ff.pre);
    expect(b.ff.post).toEqual(a.ff.post);
    expect(b.recWeight).toEqual(a.recWeight);
    expect(b.ffWeight).toEqual(a.ffWeight);
    expect(b.hash).toBe(a.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("a different seed gives a different network (types, edges, weights and hash)", () => {
    expect(c.cellType).not.toEqual(a.cellType);
    const sameEdges = c.rec.pre.length === a.rec.pre.length && c.rec.post.every((x, e) => x === a.rec.post[e] && c.rec.pre[e] === a.rec.pre[e]);
    expect(sameEdges).toBe(false);
    expect(c.ff.post).not.toEqual(a.ff.post);
    expect(c.recWeight.slice(0, 20)).not.toEqual(a.recWeight.slice(0, 20));
    expect(c.hash).not.toBe(a.hash);
  });

  it("has the configured sizes and cell type counts (round(n·p), remainder to the last type)", () => {
    expect(a.numNeurons).toBe(120);
    expect(a.numInputs).toBe(40);
    expect(a.numAssemblies).toBe(4);
    expect(a.assemblySize).toBe(30);
    expect(a.cellType.length).toBe(120);
    expect(a.cellType.filter((t) => t === 0).length).toBe(96);
    expect(a.cellType.filter((t) => t === 1).length).toBe(24);
    // Types are shuffled, not sorted: the inhibitory cells are not all at the end.
    expect(Array.from(a.cellType.subarray(96)).every((t) => t === 1)).toBe(false);
    expect(Array.from(a.inputType).every((t) => t === 0)).toBe(true);
  });

  it("edge lists are sorted by (pre, post), duplicate-free, with consistent CSR row pointers", () => {
    expect(a.rec.numPre).toBe(120);
    expect(a.rec.numPost).toBe(120);
    expect(a.ff.numPre).toBe(40);
    expect(a.ff.numPost).toBe(120);
    expectValidEdgeList(a.rec);
    expectValidEdgeList(a.ff);
    expect(a.rec.pre.length).toBeGreaterThan(1000);
    expect(a.ff.pre.length).toBeGreaterThan(500);
  });

  it("has no recurrent self loops", () => {
    for (let e = 0; e < a.rec.pre.length; e++) expect(a.rec.pre[e] === a.rec.post[e]).toBe(false);
  });

  it("quirk kept: no edge from the i-th neuron of assembly a to the i-th neuron of another assembly b", () => {
    const size = a.assemblySize;
    let sameLocalIndex = 0;
    let between = 0;
    for (let e = 0; e < a.rec.pre.length; e++) {
      const i = a.rec.pre[e];
      const j = a.rec.post[e];
      if (Math.floor(i / size) === Math.floor(j / size)) continue;
      between++;
      if (i % size === j % size) sameLocalIndex++;
    }
    // Without the quirk about 4·3·30 pairs × 0.1 ≈ 36 such edges would exist.
    expect(between).toBeGreaterThan(200);
    expect(sameLocalIndex).toBe(0);
  });

  it("weights: one positive finite float32 per edge", () => {
    expect(a.recWeight).toBeInstanceOf(Float32Array);
    expect(a.ffWeight).toBeInstanceOf(Float32Array);
    expect(a.recWeight.length).toBe(a.rec.pre.length);
    expect(a.ffWeight.length).toBe(a.ff.pre.length);
    for (const w of [...a.recWeight, ...a.ffWeight]) {
      expect(Number.isFinite(w) && w > 0).toBe(true);
    }
  });

  it("the structure hash covers types and edges, not weights", () => {
    const twin = generateConnectome(smallConfig(42));
    twin.recWeight[0] += 1;
    expect(twin.hash).toBe(a.hash);
    let t = replaceOnce(QUICK_TEXT, "num_neurons = 500", "num_neurons = 120");
    t = replaceOnce(t, "num_assemblies = 5", "num_assemblies = 4");
    t = replaceOnce(t, "num_neurons = 150", "num_neurons = 40");
    // Different weight distribution, same structure: identical hash, different weights.
    t = replaceOnce(t, "w_mu = [[0.4, 0.4], [0.6, 0.3]]", "w_mu = [[0.2, 0.2], [0.3, 0.15]]");
    const reweighted = generateConnectome(parseConfig(t));
    expect(reweighted.rec.post).toEqual(a.rec.post);
    expect(reweighted.recWeight).not.toEqual(a.recWeight);
    expect(reweighted.hash).toBe(a.hash);
  });
});

describe("makeEdgeList", () => {
  it("builds CSR row pointers, including empty rows", () => {
    // Edges 0→1, 0→2, 2→0 over 3 presynaptic neurons: row 0 has 2 edges, row 1 none, row 2 one.
    const el = makeEdgeList(3, 3, Int32Array.from([0, 0, 2]), Int32Array.from([1, 2, 0]));
    expect(Array.from(el.rowPtr)).toEqual([0, 2, 2, 3]);
    expect(el.numPre).toBe(3);
    expect(el.numPost).toBe(3);
  });
});

describe("lognormalParameters (w_sigma is the variance)", () => {
  it("m = 0.4, v = 0.2 gives σ = 0.9005, μ = −1.3218", () => {
    // σ² = ln(1 + 0.2/0.16) = ln 2.25 = 0.81093; σ = 0.90052; μ = ln 0.4 − σ²/2 = −0.91629 − 0.40547 = −1.32176.
    const p = lognormalParameters(0.4, 0.2);
    expect(p.sigma).toBeCloseTo(0.9005, 4);
    expect(p.mu).toBeCloseTo(-1.3218, 4);
  });

  it("I→E (0.6, 0.3) and I→I (0.3, 0.1) match MODEL.md 1.4", () => {
    expect(lognormalParameters(0.6, 0.3).sigma).toBeCloseTo(0.7785, 4);
    expect(lognormalParameters(0.6, 0.3).mu).toBeCloseTo(-0.8139, 4);
    expect(lognormalParameters(0.3, 0.1).sigma).toBeCloseTo(0.8644, 4);
    expect(lognormalParameters(0.3, 0.1).mu).toBeCloseTo(-1.5776, 4);
  });

  it("the resulting lognormal has exactly the requested mean and variance", () => {
    const { mu, sigma } = lognormalParameters(0.6, 0.3);
    const mean = Math.exp(mu + (sigma * sigma) / 2);
    const variance = (Math.exp(sigma * sigma) - 1) * mean * mean;
    expect(mean).toBeCloseTo(0.6, 12);
    expect(variance).toBeCloseTo(0.3, 12);
  });
});

describe("default network (fitting-activity.toml, seed 42): realised statistics near the original's", () => {
  let k: Connectome;
  const E = 0;
  const I = 1;
  /** Edge counts and possible pairs per (pre type, post type), within and between assemblies. */
  const within = [
    [0, 0],
    [0, 0],
  ];
  const withinPairs = [
    [0, 0],
    [0, 0],
  ];
  const between = [
    [0, 0],
    [0, 0],
  ];
  const betweenPairs = [
    [0, 0],
    [0, 0],
  ];
  const wSum = [
    [0, 0],
    [0, 0],
  ];
  const wSq = [
    [0, 0],
    [0, 0],
  ];
  const typeCount = [0, 0];
  let sameLocalIndex = 0;

  beforeAll(() => {
    k = generateConnectome(parseConfig(DEFAULT_TEXT));
    const size = k.assemblySize;
    const ct = k.cellType;
    for (const t of ct) typeCount[t]++;
    const perAssembly = Array.from({ length: k.numAssemblies }, () => [0, 0]);
    for (let j = 0; j < k.numNeurons; j++) perAssembly[Math.floor(j / size)][ct[j]]++;
    for (let s = 0; s < 2; s++) {
      for (let t = 0; t < 2; t++) {
        // Ordered pairs of distinct neurons inside the same assembly, and across assemblies.
        for (const n of perAssembly) withinPairs[s][t] += n[s] * n[t] - (s === t ? n[s] : 0);
        betweenPairs[s][t] = typeCount[s] * typeCount[t] - (s === t ? typeCount[s] : 0) - withinPairs[s][t];
      }
    }
    for (let e = 0; e < k.rec.pre.length; e++) {
      const i = k.rec.pre[e];
      const j = k.rec.post[e];
      const s = ct[i];
      const t = ct[j];
      if (Math.floor(i / size) === Math.floor(j / size)) within[s][t]++;
      else {
        between[s][t]++;
        if (i % size === j % size) sameLocalIndex++;
      }
      const w = k.recWeight[e];
      wSum[s][t] += w;
      wSq[s][t] += w * w;
    }
  });

  const rel = (x: number, ref: number) => Math.abs(x - ref) / Math.abs(ref);

  it("cell type counts 4000 / 1000, 20 assemblies of 250", () => {
    expect(typeCount).toEqual([4000, 1000]);
    expect(k.numAssemblies).toBe(20);
    expect(k.assemblySize).toBe(250);
  });

  it("recurrent edges within 1% of 715,703; feedforward within 1% of 148,585", () => {
    expect(rel(k.rec.pre.length, 715_703)).toBeLessThan(0.01);
    expect(rel(k.ff.pre.length, 148_585)).toBeLessThan(0.01);
    // Multi-edges collapse: fewer edges than stub pairs (M→E 1500·80 = 4000·30 = 120,000; M→I 1500·20 = 1000·30 =
    // 30,000; 150,000 in all).
    expect(k.ff.pre.length).toBeLessThan(150_000);
  });

  it("within-assembly densities E→E ≈ 0.181, I→E ≈ 0.331 (collapsed from nominal 0.4), E→I ≈ 0.181, I→I ≈ 0.182", () => {
    const d = (s: number, t: number) => within[s][t] / withinPairs[s][t];
    expect(Math.abs(d(E, E) - 0.181)).toBeLessThan(0.01);
    expect(Math.abs(d(I, E) - 0.331)).toBeLessThan(0.01);
    expect(Math.abs(d(E, I) - 0.181)).toBeLessThan(0.01);
    expect(Math.abs(d(I, I) - 0.182)).toBeLessThan(0.01);
  });

  it("between-assembly densities ≈ 0.019 for every type pair", () => {
    for (let s = 0; s < 2; s++) for (let t = 0; t < 2; t++) expect(Math.abs(between[s][t] / betweenPairs[s][t] - 0.019)).toBeLessThan(0.002);
  });

  it("mean in-degrees E←E ≈ 110.4 and E←I ≈ 34.6 (±2%)", () => {
    const inDeg = (s: number, t: number) => (within[s][t] + between[s][t]) / typeCount[t];
    expect(rel(inDeg(E, E), 110.4)).toBeLessThan(0.02);
    expect(rel(inDeg(I, E), 34.6)).toBeLessThan(0.02);
    // And the other two, for completeness (MODEL.md: I←E 108.6, I←I 27.0).
    expect(rel(inDeg(E, I), 108.6)).toBeLessThan(0.02);
    expect(rel(inDeg(I, I), 27.0)).toBeLessThan(0.02);
  });

  it("feedforward mean in-degree ≈ 29.7 and some input i → neuron i edges (self loops allowed there)", () => {
    expect(rel(k.ff.pre.length / k.numNeurons, 29.7)).toBeLessThan(0.02);
    let diagonal = 0;
    for (let e = 0; e < k.ff.pre.length; e++) if (k.ff.pre[e] === k.ff.post[e]) diagonal++;
    // About 1500 × 0.02 = 30 expected.
    expect(diagonal).toBeGreaterThan(5);
  });

  it("no recurrent self loops and the between-block local-diagonal quirk (≈1800 such pairs otherwise)", () => {
    for (let e = 0; e < k.rec.pre.length; e++) if (k.rec.pre[e] === k.rec.post[e]) throw new Error(`self loop at ${k.rec.pre[e]}`);
    expect(sameLocalIndex).toBe(0);
  });

  it("weight means per (pre, post) type within 2% of 0.4 / 0.4 / 0.6 / 0.3, stds within 5% of 0.447 / 0.447 / 0.548 / 0.316", () => {
    const refs: [number, number, number, number][] = [
      [E, E, 0.4, 0.447],
      [E, I, 0.4, 0.447],
      [I, E, 0.6, 0.548],
      [I, I, 0.3, 0.316],
    ];
    for (const [s, t, mean, std] of refs) {
      const n = within[s][t] + between[s][t];
      const m = wSum[s][t] / n;
      const sd = Math.sqrt(wSq[s][t] / n - m * m);
      expect(rel(m, mean), `mean ${s}→${t} = ${m}`).toBeLessThan(0.02);
      expect(rel(sd, std), `std ${s}→${t} = ${sd}`).toBeLessThan(0.05);
    }
  });

  it("feedforward weights: mean ≈ 0.4, std ≈ 0.447", () => {
    let s = 0;
    let s2 = 0;
    for (const w of k.ffWeight) {
      s += w;
      s2 += w * w;
    }
    const m = s / k.ffWeight.length;
    expect(rel(m, 0.4)).toBeLessThan(0.02);
    expect(rel(Math.sqrt(s2 / k.ffWeight.length - m * m), 0.447)).toBeLessThan(0.05);
  });
});
