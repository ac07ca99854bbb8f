/**
 * Figures a scientist trusts (issue #18): statistics over the accumulation interval's epochs with the amount of data
 * stated, target lines inside their axes, the Fano factor across trials, a PSTH without edge artefacts, population
 * separators on rasters, weight distributions per connection type against the initial weights, and the navigation
 * between figure sets.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inputRasterSpec, psthSpec, rasterSeparators, rasterSpec } from "../src/report/figures/activity.js";
import { renderFigure, renderFigureSet } from "../src/report/figures/render.js";
import { cvSpec, fanoSpec, firingRateSpec, pooledActivity } from "../src/report/figures/statistics-figures.js";
import { countLogBinEdges, fanoAcrossRepeats, populationCounts, psth } from "../src/report/figures/stats.js";
import { fmt } from "../src/report/figures/spec.js";
import { connectionTypes, weightDistributionSpec } from "../src/report/figures/weights.js";
import type { FigureData } from "../src/report/figure-data.js";
import { expectFigurePng } from "./helpers/png.js";
import { syntheticFigureData } from "./helpers/synthetic-figures.js";

const small = (): FigureData => syntheticFigureData({ neurons: 200, inputs: 60, steps: 200, assemblies: 4, seed: 11 });

/** Loose views of the specs, enough to find their layers. */
interface LayerView {
  mark: { type: string } | string;
  data?: { values: Record<string, number | string>[] };
  encoding?: { x?: { scale?: { domain?: number[]; type?: string } }; y?: { scale?: { domain?: number[] } } };
}
interface PanelView {
  title?: unknown;
  layer: LayerView[];
}
const markType = (l: LayerView): string => (typeof l.mark === "string" ? l.mark : l.mark.type);
const panelsOf = (spec: unknown): PanelView[] => (spec as { hconcat: PanelView[] }).hconcat;
const subtitleOf = (spec: unknown): string => ([] as string[]).concat((spec as { title: { subtitle: string | string[] } }).title.subtitle).join(" ");

/** The x positions of a panel's dashed marker rules (targets, Poisson line). */
const markerXs = (p: PanelView): number[] => p.layer.filter((l) => markType(l) === "rule").flatMap((l) => l.data!.values.map((v) => v.x as number));

describe("statistics figures over the interval's epochs", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "figures-trust-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("pools the interval's epochs: counts come back exactly and the subtitle says how much data", () => {
    const d = small();
    const p = pooledActivity(d);
    const T = d.activity.steps;
    expect(p.epochs).toBe(5);
    expect(p.seconds).toBeCloseTo((5 * 10 * T) / 1000, 12);
    for (let j = 0; j < 20; j++) {
      const expected = d.interval.rates.reduce((n, r) => n + r[j] * ((10 * T) / 1000), 0);
      expect(p.counts[j]).toBeCloseTo(expected, 3);
      expect(Number.isInteger(p.counts[j])).toBe(true);
    }
    for (const spec of [firingRateSpec(d), cvSpec(d)]) expect(subtitleOf(spec)).toContain(`5 × 10 trials × ${T} ms = ${(5 * 10 * T) / 1000} s per neuron`);
  });

  it("draws the target rate inside the rate axis, even below every rate and below one spike", () => {
    const d = small();
    // Targets below the rate of one spike over the whole interval (1 / 10 s = 0.1 Hz) and above every rate.
    d.targets.firingRate = [0.02, 500];
    const panels = panelsOf(firingRateSpec(d));
    expect(panels).toHaveLength(2);
    panels.forEach((p, t) => {
      const bars = p.layer[0];
      const domain = bars.encoding!.x!.scale!.domain!;
      expect(bars.encoding!.x!.scale!.type).toBe("log");
      expect(domain[0]).toBeLessThanOrEqual(d.targets.firingRate[t]);
      expect(domain[1]).toBeGreaterThanOrEqual(d.targets.firingRate[t]);
      expect(markerXs(p)).toEqual([d.targets.firingRate[t]]);
    });
  });

  it("bins rates in whole spike counts", () => {
    const q = 0.1;
    const edges = countLogBinEdges(0.05, 80, 30, q);
    expect(edges[0]).toBe(0.05);
    expect(edges[edges.length - 1]).toBe(80);
    for (let i = 1; i < edges.length - 1; i++) {
      const k = edges[i] / q - 0.5;
      expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-9);
      expect(edges[i]).toBeGreaterThan(edges[i - 1]);
    }
  });

  it("draws the target CV inside the CV axis", () => {
    const d = small();
    for (const cv of d.interval.cvs) cv.fill(0.3);
    d.targets.cv = 1.2;
    for (const p of panelsOf(cvSpec(d))) {
      const domain = p.layer[0].encoding!.x!.scale!.domain!;
      expect(domain[0]).toBeLessThanOrEqual(1.2);
      expect(domain[1]).toBeGreaterThanOrEqual(1.2);
      expect(markerXs(p)).toEqual([1.2]);
    }
  });

  it("counts the Fano factor across trials as var (ddof 1) / mean, by hand", () => {
    // Neuron 0: counts 2, 4, 0 → mean 2, var (0 + 4 + 4) / 2 = 4 → F = 2. Neuron 1: silent → NaN.
    // Neuron 2: counts 1, 1, 4 → mean 2, var (1 + 1 + 4) / 2 = 3 → F = 1.5.
    const f = fanoAcrossRepeats([[2, 0, 1], [4, 0, 1], [0, 0, 4]], 3);
    expect(f[0]).toBeCloseTo(2, 12);
    expect(f[1]).toBeNaN();
    expect(f[2]).toBeCloseTo(1.5, 12);
    expect(fanoAcrossRepeats([[3, 1]], 2).every(Number.isNaN)).toBe(true);

    // The same counts through the figure data: 3 trials of the figure epoch, the other neurons silent; the figure
    // says what it counts, and its population title pools ⟨var⟩/⟨mean⟩ over the type's neurons.
    const d = small();
    const N = d.network.cellType.length;
    const counts = [[2, 0, 1], [4, 0, 1], [0, 0, 4]];
    d.activity.trialSpikeCounts = new Int32Array(3 * N);
    counts.forEach((c, b) => d.activity.trialSpikeCounts.set(c, b * N));
    const spec = JSON.stringify(fanoSpec(d));
    expect(spec).toContain(`each neuron's spike count in each of the 3 trials of epoch ${d.activity.epoch}`);
    const [variance, mean] = [[4, 0, 3], [2, 0, 2]];
    const ofType = [0, 1, 2].filter((j) => d.network.cellType[j] === d.network.cellType[0]);
    const pooled = ofType.reduce((x, j) => x + variance[j], 0) / ofType.reduce((x, j) => x + mean[j], 0);
    expect(spec).toContain(`${d.network.cellTypeNames[d.network.cellType[0]]}: ⟨var⟩/⟨mean⟩ ${fmt(pooled)}`);
    // A single trial per epoch says why there is no Fano factor.
    d.activity.trialSpikeCounts = new Int32Array(N);
    expect(JSON.stringify(fanoSpec(d))).toContain("batch_size ≥ 2");
  });

  it("renders the rate, CV and Fano figures non-blank", async () => {
    const d = small();
    for (const [name, spec] of [["rate", firingRateSpec(d)], ["cv", cvSpec(d)], ["fano", fanoSpec(d)]] as const) {
      const file = path.join(dir, `${name}.png`);
      await renderFigure(spec, file);
      expectFigurePng(await readFile(file), name);
    }
  });
});

describe("PSTH", () => {
  it("is flat up to both edges for a constant-rate population", () => {
    // Neuron j spikes on every step ≡ j (mod 10): one spike per step in all, 100 Hz per neuron at every step.
    const N = 10;
    const steps = 97;
    const trains = Array.from({ length: N }, (_, j) => Array.from({ length: steps }, (_, s) => s).filter((s) => s % N === j));
    const ptr = new Int32Array(N + 1);
    trains.forEach((t, j) => (ptr[j + 1] = ptr[j] + t.length));
    const spikes = Int32Array.from(trains.flat());
    const members = Array.from({ length: N }, (_, j) => j);
    for (const windowMs of [20, 25, 50]) {
      const rate = psth(populationCounts(ptr, spikes, members, steps), members.length, 1, windowMs);
      for (let s = 0; s < steps; s++) expect(rate[s], `window ${windowMs} ms, step ${s}`).toBeCloseTo(100, 9);
    }
  });

  it("draws each population's target and renders non-blank", async () => {
    const d = small();
    const spec = psthSpec(d) as unknown as { vconcat: PanelView[] };
    expect(spec.vconcat).toHaveLength(3); // two cell types, one input type
    spec.vconcat.slice(0, 2).forEach((p, t) => {
      const target = p.layer.find((l) => markType(l) === "rule")!.data!.values[0].target as number;
      expect(target).toBe(d.targets.firingRate[t]);
      expect(p.layer[0].encoding!.y!.scale!.domain![1]).toBeGreaterThanOrEqual(target);
    });
    expect(spec.vconcat[2].layer.some((l) => markType(l) === "rule")).toBe(false); // inputs have no target
    const dir = await mkdtemp(path.join(tmpdir(), "psth-"));
    await renderFigure(psthSpec(d), path.join(dir, "psth.png"));
    expectFigurePng(await readFile(path.join(dir, "psth.png")), "psth");
    await rm(dir, { recursive: true, force: true });
  });
});

describe("rasters", () => {
  it("separate the populations (populations − 1 rules) and label each on the y axis", () => {
    const d = small();
    const spec = rasterSpec(d) as unknown as PanelView & { layer: { encoding: { y: { axis: { values: number[]; labelExpr: string } } } }[] };
    const populations = d.network.cellTypeNames.length + d.network.inputTypeNames.length;
    expect(rasterSeparators(spec as never)).toHaveLength(populations - 1);
    const axis = spec.layer[0].encoding.y.axis;
    expect(axis.values).toHaveLength(populations);
    for (const name of [...d.network.cellTypeNames, ...d.network.inputTypeNames]) expect(axis.labelExpr).toContain(name);
    // One input population: nothing to separate.
    expect(rasterSeparators(inputRasterSpec(d) as never)).toHaveLength(0);
  });

  it("put the separators between the populations' rows", () => {
    const d = small();
    const spec = rasterSpec(d) as unknown as { layer: { data: { values: { row: number; pop: string }[] } }[] };
    const cuts = rasterSeparators(spec as never);
    for (const cut of cuts) {
      const above = spec.layer[0].data.values.filter((v) => v.row < cut).map((v) => v.pop);
      const below = spec.layer[0].data.values.filter((v) => v.row > cut).map((v) => v.pop);
      for (const p of above) expect(below).not.toContain(p);
    }
  });
});

describe("weight distributions", () => {
  it("draw one panel per connection type, current against initial", async () => {
    const d = small();
    const types = connectionTypes(d);
    // 2 cell types → 2 cell types, and 1 input type → 2 cell types.
    expect(types.map((c) => `${c.pre}>${c.post}`)).toEqual([
      "excitatory>excitatory",
      "excitatory>inhibitory",
      "inhibitory>excitatory",
      "inhibitory>inhibitory",
      "mitral>excitatory",
      "mitral>inhibitory",
    ]);
    expect(types.reduce((n, c) => n + c.current.length, 0)).toBe(d.network.recWeight.length + d.network.ffWeight.length);
    const spec = weightDistributionSpec(d) as unknown as { vconcat: { hconcat: PanelView[] }[] };
    const panels = spec.vconcat.flatMap((r) => r.hconcat);
    expect(panels).toHaveLength(6);
    for (const p of panels) {
      expect(p.layer.map(markType)).toEqual(["rect", "line"]); // current bars, initial outline
      expect(p.layer[0].encoding!.x!.scale!.type).toBe("log");
    }
    const dir = await mkdtemp(path.join(tmpdir(), "weights-"));
    await renderFigure(weightDistributionSpec(d), path.join(dir, "w.png"));
    expectFigurePng(await readFile(path.join(dir, "w.png")), "weights");
    await rm(dir, { recursive: true, force: true });
  });

  it("say so when the initial weights are not known", () => {
    const d = small();
    d.initialWeights = null;
    const spec = weightDistributionSpec(d) as unknown as { vconcat: { hconcat: PanelView[] }[] };
    for (const p of spec.vconcat.flatMap((r) => r.hconcat)) expect(p.layer.map(markType)).toEqual(["rect"]);
    expect(subtitleOf(spec)).toContain("initial weights not known");
  });
});

describe("figure set navigation", () => {
  it("links each set of RUN_DIR/figures to the previous and next set and to the run report", async () => {
    const run = await mkdtemp(path.join(tmpdir(), "nav-"));
    const sets = ["epoch_0000", "epoch_0005", "epoch_0010"];
    const d = small();
    // A lighter set is enough: the navigation does not depend on the figures.
    for (const name of sets) await renderFigureSet({ ...d, epoch: Number(name.slice(6)) }, path.join(run, "figures", name));
    const nav = async (name: string) => (await readFile(path.join(run, "figures", name, "index.html"), "utf8")).match(/<nav[^>]*>.*<\/nav>/)![0];
    expect(await nav("epoch_0000")).toContain('<span class="off">← previous set</span>');
    expect(await nav("epoch_0010")).toContain('<span class="off">next set →</span>');
    expect(await nav("epoch_0000")).toContain('href="../epoch_0005/index.html"');
    expect(await nav("epoch_0005")).toContain('href="../epoch_0000/index.html"');
    expect(await nav("epoch_0005")).toContain('href="../epoch_0010/index.html"');
    expect(await nav("epoch_0010")).toContain('href="../epoch_0005/index.html"');
    for (const name of sets) expect(await nav(name)).toContain('href="../../report.html"');
    // A set outside a run directory (snn-sim --figures DIR) links nowhere.
    const loose = path.join(run, "loose");
    await mkdir(loose);
    await writeFile(path.join(loose, "keep"), "");
    await renderFigureSet(d, path.join(loose, "set"));
    expect(await readFile(path.join(loose, "set", "index.html"), "utf8")).not.toContain("<a href");
    await rm(run, { recursive: true, force: true });
  }, 60_000);
});
