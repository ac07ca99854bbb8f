/**
 * Figures of a fit to a recorded teacher (issue #16): spike_comparison.png and firing_rate_correlogram.png, drawn when
 * FigureData.teacher is there, and the teacher's figure data read from a recording (report/teacher-figure-data.ts).
 */
import { existsSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { epochSteps } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { recordTeacher } from "../src/io/teacher-recording.js";
import { pearson } from "../src/model/statistics.js";
import type { FigureData, TeacherFigureData } from "../src/report/figure-data.js";
import { comparisonNeurons, correlogramR, correlogramSpec, spikeComparisonSpec } from "../src/report/figures/fit-figures.js";
import { FIGURES, renderFigureSet, specToSvg } from "../src/report/figures/render.js";
import { recordedTeacherFigureData } from "../src/report/teacher-figure-data.js";
import { expectFigurePng } from "./helpers/png.js";
import { recordedEpoch, replayRun } from "./helpers/replay.js";
import { ensureBuilt, SIM, start, tempDir } from "./helpers/runs.js";
import { smallNetwork, smallNetworkToml } from "./helpers/small-network.js";
import { syntheticFigureData } from "./helpers/synthetic-figures.js";

const FIT = ["spike_comparison.png", "firing_rate_correlogram.png"];

/** A teacher near the student: every third spike dropped, the others two steps later (within the trial). */
function nearbyTeacher(d: FigureData, trials = 8): TeacherFigureData {
  const a = d.activity;
  const N = a.spikePtr.length - 1;
  const spikePtr = new Int32Array(N + 1);
  const steps: number[] = [];
  for (let j = 0; j < N; j++) {
    for (let k = a.spikePtr[j]; k < a.spikePtr[j + 1]; k++) if ((k - a.spikePtr[j]) % 3 !== 2 && a.spikeSteps[k] + 2 < a.steps) steps.push(a.spikeSteps[k] + 2);
    spikePtr[j + 1] = steps.length;
  }
  const rates = Float32Array.from(d.rates, (r, j) => r * (1 + 0.3 * Math.sin(j)));
  const split = Math.floor(trials / 2);
  const halves = trials < 2 ? null : { trials, split, first: Float32Array.from(rates, (r, j) => r * (1 + 0.2 * Math.cos(j))), second: Float32Array.from(rates, (r, j) => r * (1 - 0.2 * Math.cos(j))) };
  return { spikePtr, spikeSteps: Int32Array.from(steps), rates, halves };
}

const small = (): FigureData => syntheticFigureData({ neurons: 200, inputs: 60, steps: 200, assemblies: 4, seed: 7 });
const withTeacher = (trials = 8): FigureData => {
  const d = small();
  return { ...d, teacher: nearbyTeacher(d, trials) };
};

type RasterSpec = { layer: { data: { values: { pop: string; row: number }[] } }[] };
type ConcatSpec = { hconcat: { title: string; layer: { data?: { values: Record<string, number | string>[] } }[] }[] };

describe("fit figures", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "fit-figures-test-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("join the set as readable, non-blank PNGs with a recorded teacher", async () => {
    const out = (await renderFigureSet(withTeacher(), path.join(dir, "fit"))).map((f) => path.basename(f));
    expect(out.slice(-2)).toEqual(FIT);
    const html = await readFile(path.join(dir, "fit", "index.html"), "utf8");
    for (const name of FIT) {
      expect(html).toContain(`src="${name}"`);
      expectFigurePng(await readFile(path.join(dir, "fit", name)), name);
    }
  });

  it("are absent without a teacher", () => {
    const drawn = (d: FigureData) => FIGURES.filter((f) => f.when?.(d) ?? true).map((f) => f.file);
    for (const name of FIT) {
      expect(drawn(small())).not.toContain(name);
      expect(drawn(withTeacher())).toContain(name);
    }
  });

  it("the raster alternates target and trained rows and draws exactly their spikes", () => {
    const d = withTeacher();
    const t = d.teacher!;
    const a = d.activity;
    const perType = comparisonNeurons(d);
    // The first 6 of each of the two cell types.
    perType.forEach((ids, type) => {
      expect(ids).toHaveLength(6);
      expect(ids).toEqual(Array.from(d.network.cellType.keys()).filter((j) => d.network.cellType[j] === type).slice(0, 6));
    });
    const shown = perType.flat();
    const count = (ptr: Int32Array, rows: number[]): number => rows.reduce((n, j) => n + ptr[j + 1] - ptr[j], 0);
    const points = (spikeComparisonSpec(d) as unknown as RasterSpec).layer[0].data.values;
    const targets = points.filter((p) => p.pop === "Target");
    const trained = points.filter((p) => p.pop === "Trained");
    expect(targets.length).toBeGreaterThan(0);
    expect(targets.length).toBe(count(t.spikePtr, shown));
    expect(trained.length).toBe(count(a.spikePtr, shown));
    expect(points.length).toBe(targets.length + trained.length);
    // Row 2i is neuron i's target, row 2i + 1 its trained train.
    shown.forEach((j, i) => {
      expect(targets.filter((p) => p.row === 2 * i).length).toBe(count(t.spikePtr, [j]));
      expect(trained.filter((p) => p.row === 2 * i + 1).length).toBe(count(a.spikePtr, [j]));
    });
    expect(targets.every((p) => p.row % 2 === 0) && trained.every((p) => p.row % 2 === 1)).toBe(true);
  });

  it("the correlogram's r is Pearson's, by hand on five neurons", async () => {
    const d = syntheticFigureData({ neurons: 5, inputs: 4, steps: 50, assemblies: 1, seed: 3 });
    d.rates = Float32Array.of(1, 2, 3, 4, 5);
    // Teacher against student: dx = [-1,-2,1,0,2], dy = [-2,-1,0,1,2]: cov 8, var 10 and 10, r = 0.8.
    // Half against half: dx = [-2,-1,0,1,2], dy = [-2.4,-0.4,-0.4,1.6,1.6]: cov 10, var 10 and 11.2, r = 10/√112.
    d.teacher = {
      spikePtr: new Int32Array(6),
      spikeSteps: new Int32Array(0),
      rates: Float32Array.of(2, 1, 4, 3, 5),
      halves: { trials: 2, split: 1, first: Float32Array.of(0, 1, 2, 3, 4), second: Float32Array.of(0, 2, 2, 4, 4) },
    };
    expect(pearson([2, 1, 4, 3, 5], [1, 2, 3, 4, 5])).toBeCloseTo(0.8, 12);
    const r = correlogramR(d);
    expect(r.learning).toBeCloseTo(0.8, 12);
    expect(r.poisson).toBeCloseTo(10 / Math.sqrt(112), 12);
    const spec = correlogramSpec(d) as unknown as ConcatSpec;
    expect(spec.hconcat.map((p) => p.title)).toEqual(["Poisson variability: r = 0.945", "Learning variability: r = 0.800"]);
    // One point per neuron in each panel (layer 0 is the unity line).
    expect(spec.hconcat[0].layer[1].data!.values.map((v) => [v.x, v.y])).toEqual([[0, 0], [1, 2], [2, 2], [3, 4], [4, 4]]);
    expect(spec.hconcat[1].layer[1].data!.values.map((v) => [v.x, v.y])).toEqual([[2, 1], [1, 2], [4, 3], [3, 4], [5, 5]]);
    expect(await specToSvg(correlogramSpec(d))).toContain("trained rate (Hz)");
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNaN();
  });

  it("with one trial per epoch the Poisson panel is a note", async () => {
    const d = withTeacher(1);
    expect(correlogramR(d).poisson).toBeNull();
    const svg = await specToSvg(correlogramSpec(d));
    expect(svg).toContain("one trial per epoch");
    expect(svg).toContain("Learning variability: r = ");
    const out = await renderFigureSet(d, path.join(dir, "one-trial"));
    expect(existsSync(path.join(dir, "one-trial", "firing_rate_correlogram.png"))).toBe(true);
    expect(out.map((f) => path.basename(f))).toContain("firing_rate_correlogram.png");
  });
});

describe("the recorded teacher's figure data", () => {
  // The small network (3 trials, plotted trial 1), 2 streams × 2 recorded epochs, replayed with the teacher's weights:
  // the student then is the teacher, spike for spike.
  const A = 2;
  const net = smallNetwork({ accumulationInterval: A, epochs: 8 });
  const weights = { recWeight: net.connectome.recWeight, ffWeight: net.connectome.ffWeight };
  const { recording } = recordTeacher(new SparseCpuEngine(net.spec), net.spec, weights, A, 2);
  const spec = { ...net.spec, lossWeights: { firing_rate: 0, cv: 0, silent_penalty: 0, membrane_variance: 0, van_rossum: 1 }, teacherRecording: recording };
  const B = spec.batchSize;
  const T = epochSteps(spec);
  const N = spec.constants.numNeurons;

  it("is undefined without a recording", () => {
    expect(recordedTeacherFigureData(net.spec, 0)).toBeUndefined();
  });

  it("is the replayed epoch's plotted trial and rates: a student with the teacher's weights matches it exactly", async () => {
    expect(spec.plotTrial).toBe(1);
    const engine = new SparseCpuEngine(spec);
    await replayRun((e, s) => engine.runEpochSync({ epoch: e, initialState: s, ...weights, computeGradient: false, recordActivity: true }), spec, A, 2 * A * 2, (e, r) => {
      const t = recordedTeacherFigureData(spec, e)!;
      expect(Array.from(t.spikePtr), `epoch ${e}`).toEqual(Array.from(r.activity!.spikePtr));
      expect(Array.from(t.spikeSteps), `epoch ${e}`).toEqual(Array.from(r.activity!.spikeSteps));
      expect(Array.from(t.rates), `epoch ${e}`).toEqual(Array.from(r.rates));
      // Halves: trial 0 against trials 1–2, from the recording's spikes of the epoch ([b][t][j]).
      const { teacherSpikes } = recordedEpoch(recording, e, A, B, T);
      const rate = (from: number, to: number) =>
        Array.from({ length: N }, (_, j) => {
          let c = 0;
          for (let b = from; b < to; b++) for (let s = 0; s < T; s++) c += teacherSpikes[(b * T + s) * N + j];
          return Math.fround(c / (((to - from) * T * spec.constants.dt) / 1000));
        });
      expect(t.halves).not.toBeNull();
      expect([t.halves!.trials, t.halves!.split]).toEqual([3, 1]);
      expect(Array.from(t.halves!.first)).toEqual(rate(0, 1));
      expect(Array.from(t.halves!.second)).toEqual(rate(1, 3));
    });
    expect(recordedTeacherFigureData(spec, 0)!.spikeSteps.length).toBeGreaterThan(0);
  });
});

describe("through snn-sim", () => {
  beforeAll(() => ensureBuilt());

  it("--figures of a student replaying a recording draws both fit figures", async () => {
    const dir = tempDir();
    const toml = smallNetworkToml({ accumulationInterval: 2, hyperparameterLines: "loss_weight.van_rossum = 1.0" }).replace("[targets]", '[targets]\nteacher_spikes = "teacher-spikes.safetensors"');
    const p = path.join(dir, "params.toml");
    writeFileSync(p, toml);
    const sim = async (args: string[]) => {
      const proc = start(SIM, args);
      const code = await proc.exit;
      expect(code, proc.output()).toBe(0);
    };
    await sim([p, "--teacher", "--export-teacher", path.join(dir, "teacher-spikes.safetensors"), "--epochs", "2"]);
    await sim([p, "--epochs", "2", "--figures", path.join(dir, "figures")]);
    for (const name of FIT) expect(existsSync(path.join(dir, "figures", name)), name).toBe(true);
    await rm(dir, { recursive: true, force: true });
  }, 20_000);
});
