import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rasterSample, rasterSpec } from "../src/report/figures/activity.js";
import { ratesVsTargetsSpec, scalingFactorsSpec, trainingHistorySpec } from "../src/report/figures/history.js";
import { renderFigureSet, specToSvg } from "../src/report/figures/render.js";
import { rateScatterSpec } from "../src/report/figures/statistics-figures.js";
import {
  FANO_WINDOWS,
  binMatrix,
  boxcarSame,
  decimate,
  fanoFactor,
  fanoFactors,
  fanoWindows,
  histogram,
  interSpikeIntervals,
  linearBinEdges,
  logBinEdges,
  percentile,
  populationCounts,
  psth,
} from "../src/report/figures/stats.js";
import { decodePng, expectFigurePng, inkStats } from "./helpers/png.js";
import { syntheticFigureData } from "./helpers/synthetic-figures.js";
import { meanStd } from "../src/model/statistics.js";
import type { FigureData } from "../src/report/figure-data.js";

const EXPECTED = [
  "assembly_graph.png",
  "recurrent_connectivity.png",
  "feedforward_connectivity.png",
  "in_degree_histograms.png",
  "synaptic_input_histograms.png",
  "weight_distributions.png",
  "input_raster.png",
  "spike_raster.png",
  "psth.png",
  "membrane_voltage.png",
  "conductances_currents.png",
  "firing_rate_distribution.png",
  "cv_histogram.png",
  "isi_distribution.png",
  "fano_factor.png",
  "training_history.png",
  "rates_vs_targets.png",
];

const small = (): FigureData => syntheticFigureData({ neurons: 200, inputs: 60, steps: 200, assemblies: 4, seed: 7 });

describe("figure set", () => {
  let dir: string;
  let data: FigureData;
  let files: string[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "figures-test-"));
    data = small();
    files = await renderFigureSet(data, path.join(dir, "set"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes every figure as a readable, non-blank PNG and lists it in index.html", async () => {
    expect(files.map((f) => path.basename(f)).sort()).toEqual([...EXPECTED].sort());
    const html = await readFile(path.join(dir, "set", "index.html"), "utf8");
    expect(html).toContain(`epoch ${data.epoch}/${data.totalEpochs}`);
    for (const name of EXPECTED) {
      const file = path.join(dir, "set", name);
      expect(existsSync(file), name).toBe(true);
      expect(html).toContain(`src="${name}"`);
      expectFigurePng(await readFile(file), name);
    }
  });

  it("shows [plotting] raster_neurons recurrent neurons and a quarter as many inputs", () => {
    for (const rasterNeurons of [8, 40]) {
      const sample = rasterSample({ ...data, rasterNeurons });
      // Rounding per population (2 types, 1 input type) may add or drop a row.
      expect(Math.abs(sample.neurons.length - rasterNeurons)).toBeLessThanOrEqual(1);
      expect(sample.inputs.length).toBe(rasterNeurons / 4);
    }
  });

  it("draws exactly the spikes of the sampled raster rows", () => {
    const a = data.activity;
    const sample = rasterSample(data);
    expect(sample.inputs.length).toBeGreaterThan(0);
    expect(sample.neurons.length).toBeGreaterThan(0);
    const count = (ptr: Int32Array, rows: number[]): number => rows.reduce((n, j) => n + ptr[j + 1] - ptr[j], 0);
    const spec = rasterSpec(data) as { layer: { data: { values: { pop: string }[] } }[] };
    const points = spec.layer[0].data.values;
    expect(points.length).toBe(count(a.inputSpikePtr, sample.inputs) + count(a.spikePtr, sample.neurons));
    const net = data.network;
    for (const [t, name] of net.cellTypeNames.entries()) {
      const ofType = sample.neurons.filter((j) => net.cellType[j] === t);
      expect(points.filter((p) => p.pop === name).length, name).toBe(count(a.spikePtr, ofType));
    }
  });

  it("renders a silent network with an empty history", async () => {
    const silent = small();
    const a = silent.activity;
    a.spikePtr.fill(0);
    a.spikeSteps = new Int32Array(0);
    a.inputSpikePtr.fill(0);
    a.inputSpikeSteps = new Int32Array(0);
    silent.rates.fill(0);
    silent.cvs.fill(NaN);
    silent.history = [];
    const out = await renderFigureSet(silent, path.join(dir, "silent"));
    expect(out).toHaveLength(EXPECTED.length);
  });

  it("adds rate_scatter.png, one point per neuron, when per-neuron targets exist", async () => {
    const d = small();
    d.targets.perNeuronRate = Float32Array.from(d.rates, (r, j) => r * (1 + 0.2 * Math.sin(j)));
    const out = await renderFigureSet(d, path.join(dir, "scatter"));
    expect(out.map((f) => path.basename(f))).toEqual([...EXPECTED, "rate_scatter.png"]);
    const { variance, ink } = inkStats(decodePng(await readFile(path.join(dir, "scatter", "rate_scatter.png"))).rgba);
    expect(variance).toBeGreaterThan(100);
    expect(ink).toBeGreaterThan(0.01);
    const spec = rateScatterSpec(d) as { layer: { data: { values: { target: number; rate: number }[] } }[] };
    expect(spec.layer[1].data.values).toHaveLength(d.rates.length);
  });

  it("adds scaling_factors.png, one line per factor over its target, when the run trains factors", async () => {
    const d = small();
    d.history = d.history.map((row, i) => ({ ...row, "scaling_factor/E_E/ratio": 0.5 + i / (2 * d.history.length), "scaling_factor/mitral_I/ratio": 1.4 - i / 100 }));
    const out = await renderFigureSet(d, path.join(dir, "factors"));
    expect(out.map((f) => path.basename(f))).toEqual([...EXPECTED, "scaling_factors.png"]);
    const { variance, ink } = inkStats(decodePng(await readFile(path.join(dir, "factors", "scaling_factors.png"))).rgba);
    expect(variance).toBeGreaterThan(100);
    expect(ink).toBeGreaterThan(0.01);
    const spec = scalingFactorsSpec(d) as { layer: { data: { values: { pair: string }[] } }[] };
    expect(new Set(spec.layer[1].data.values.map((v) => v.pair))).toEqual(new Set(["E_E", "mitral_I"]));
    expect(spec.layer[1].data.values).toHaveLength(2 * d.history.length);
  });

  it("shows what there is of a short history", async () => {
    const d = small();
    d.history = [];
    expect(await specToSvg(trainingHistorySpec(d))).toContain("no positive loss values");
    d.history = [{ epoch: 1, total_loss: 2, firing_rate_loss: 1.5, "firing_rate/excitatory/mean": 0.3 }];
    for (const svg of [await specToSvg(trainingHistorySpec(d)), await specToSvg(ratesVsTargetsSpec(d))]) {
      expect(svg).toContain("role-mark");
      expect(svg).not.toContain("no rates logged");
    }
  });
});

describe("figure statistics", () => {
  /** CSR of one neuron per list. */
  const csr = (...trains: number[][]): { ptr: Int32Array; steps: Int32Array } => {
    const ptr = new Int32Array(trains.length + 1);
    trains.forEach((t, i) => (ptr[i + 1] = ptr[i] + t.length));
    return { ptr, steps: Int32Array.from(trains.flat()) };
  };

  it("boxcar matches numpy convolve(x, ones(w), 'same')", () => {
    expect([...boxcarSame([1, 2, 3, 4, 5], 4)]).toEqual([3, 6, 10, 14, 12]);
    expect([...boxcarSame([1, 2, 3, 4, 5], 3)]).toEqual([3, 6, 9, 12, 9]);
    expect([...boxcarSame([1, 2, 3], 1)]).toEqual([1, 2, 3]);
  });

  it("PSTH divides the boxcar count by window and population size", () => {
    const { ptr, steps } = csr([2, 3], []);
    const rate = psth(populationCounts(ptr, steps, [0, 1], 6), 2, 10, 30);
    // counts [0,0,1,1,0,0] → boxcar 3 → [0,1,2,2,1,0] spikes per 30 ms per 2 neurons
    [0, 1, 2, 2, 1, 0].forEach((c, i) => expect(rate[i]).toBeCloseTo(c / 0.03 / 2, 10));
  });

  it("Fano factor over non-overlapping windows, var ddof 1 / mean", () => {
    const train = [0, 1, 2, 5, 9];
    const scratch = new Int32Array(16);
    // window 2: counts [2,1,1,0,1], mean 1, var 0.5
    expect(fanoFactor(train, 0, train.length, 10, 2, scratch)).toBeCloseTo(0.5, 12);
    // window 3: counts [3,1,0] (step 9 dropped with the remainder), mean 4/3, var 7/3
    expect(fanoFactor(train, 0, train.length, 10, 3, scratch)).toBeCloseTo(1.75, 12);
    expect([...scratch].every((c) => c === 0)).toBe(true);
    expect(fanoFactor(train, 0, train.length, 10, 6, scratch)).toBeNaN(); // one window
    expect(fanoFactor([], 0, 0, 10, 2, scratch)).toBeNaN(); // no spikes
    const { ptr, steps } = csr(train, [], [1, 3, 5, 7]);
    const ff = fanoFactors(ptr, steps, [0, 1, 2], 10, 2);
    expect(ff[0]).toBeCloseTo(0.5, 12);
    expect(ff[1]).toBeNaN();
    expect(ff[2]).toBeCloseTo(0.25, 12); // counts [1,1,1,1,0]: mean 0.8, var 0.2
  });

  it("uses the original's counting windows", () => {
    expect(FANO_WINDOWS).toEqual([1, 1, 2, 2, 4, 6, 8, 12, 18, 26, 37, 54, 78, 112, 162, 233, 335, 483, 695, 1000]);
    expect(fanoWindows(100)).toEqual([1, 2, 4, 6, 8, 12, 18, 26, 37]);
  });

  it("ISIs in seconds from the counts by length in steps, of one cell type", () => {
    // 2 types × 5 steps: type 0 has two 1-step intervals and one of 3 steps, type 1 one of 4 steps; dt 0.5 ms.
    const isiSteps = Int32Array.from([0, 2, 0, 1, 0, 0, 0, 0, 0, 1]);
    expect([...interSpikeIntervals(isiSteps, 0, 5, 0.5)]).toEqual([0.0005, 0.0005, 0.0015]);
    expect([...interSpikeIntervals(isiSteps, 1, 5, 0.5)]).toEqual([0.002]);
  });

  it("bins like numpy.histogram", () => {
    const log = logBinEdges(1, 100, 2);
    expect(log[0]).toBe(1);
    expect(log[1]).toBeCloseTo(10, 12);
    expect(log[2]).toBe(100);
    expect([...histogram([1, 5, 10, 99, 100, 150, 0.5, NaN], log)]).toEqual([2, 3]);
    expect([...linearBinEdges(0, 1, 4)]).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect([...histogram([0, 0.25, 0.3, 1], linearBinEdges(0, 1, 4))]).toEqual([1, 2, 0, 1]);
  });

  it("summaries: mean/std ddof 1, percentile, block means, decimation", () => {
    expect(meanStd([1, 2, 3, NaN], 1)).toEqual({ mean: 2, std: 1, n: 3 });
    expect(meanStd([1, 2, 3, NaN], 0)).toEqual({ mean: 2, std: Math.sqrt(2 / 3), n: 3 });
    expect(meanStd([5], 1).std).toBeNaN();
    expect(meanStd([5], 0).std).toBe(0);
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 99.5)).toBeCloseTo(3.985, 12);
    // 3×3 matrix in 2×2 blocks; edge blocks average over the cells they have
    const b = binMatrix(3, 3, [0, 1, 2, 2], [0, 1, 2, 0], (k) => [4, 8, 6, 2][k], 2);
    expect(b).toMatchObject({ rowFactor: 2, colFactor: 2, rowBins: 2, colBins: 2 });
    expect([...b.mean]).toEqual([3, 0, 1, 6]);
    const trace = Float32Array.from({ length: 1000 }, (_, i) => (i === 500 ? 100 : i === 700 ? -100 : 0));
    const kept = decimate(trace, 60);
    expect(kept.length).toBeLessThanOrEqual(60);
    expect(kept).toContain(500);
    expect(kept).toContain(700);
  });
});
