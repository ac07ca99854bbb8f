/**
 * Teacher-forced feedforward students ([student] mode = "feedforward", model/teacher-forcing.ts): the network
 * transform by hand, exact reproduction of the teacher by its own weights in both engines, the scaling-factor
 * reduction across engines, and real runs that recover perturbed factors.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { epochSteps, EpochResult } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { recordTeacher } from "../src/io/teacher-recording.js";
import { parseConfig } from "../src/model/config.js";
import { Connectome, generateConnectome, makeEdgeList } from "../src/model/connectome.js";
import { buildNetworkSpec } from "../src/model/network.js";
import { allFactors, factorCounts, factorLogGradient, specTypePairs } from "../src/model/scaling-factors.js";
import { teacherForcedConnectome, teacherForcedWeights } from "../src/model/teacher-forcing.js";
import { perturbLognormal } from "../src/training/student.js";
import { Rng } from "../src/model/rng.js";
import { maxRelError } from "./helpers/engine-checks.js";
import { recordedEpoch, replayRun } from "./helpers/replay.js";
import { coord, ensureBuilt, finalWeights, metricRows, SIM, smallParams, start, tempDir } from "./helpers/runs.js";
import { smallNetworkToml } from "./helpers/small-network.js";

beforeAll(() => ensureBuilt());

describe("the teacher-forced network", () => {
  it("turns the teacher's neurons into inputs after the real ones and its recurrent synapses into feedforward ones", () => {
    // 3 neurons of types [0, 1, 0], 2 inputs of type 0; rec 0→1, 2→0, 2→1; ff 0→0, 1→2.
    const c: Connectome = {
      numNeurons: 3,
      numInputs: 2,
      cellType: Int32Array.from([0, 1, 0]),
      inputType: Int32Array.from([0, 0]),
      numAssemblies: 1,
      assemblySize: 3,
      assemblyId: Int32Array.from([0, 0, 0]),
      rec: makeEdgeList(3, 3, Int32Array.from([0, 2, 2]), Int32Array.from([1, 0, 1])),
      ff: makeEdgeList(2, 3, Int32Array.from([0, 1]), Int32Array.from([0, 2])),
      recWeight: Float32Array.from([0.5, 0.25, 2]),
      ffWeight: Float32Array.from([1, 4]),
      hash: "x",
    };
    const t = teacherForcedConnectome(c, 1);
    expect(t.numInputs).toBe(5);
    // Teacher neuron i is input 2 + i, of input type 1 + its cell type.
    expect(Array.from(t.inputType)).toEqual([0, 0, 1, 2, 1]);
    expect(Array.from(t.ff.pre)).toEqual([0, 1, 2, 4, 4]);
    expect(Array.from(t.ff.post)).toEqual([0, 2, 1, 0, 1]);
    expect(Array.from(t.ff.rowPtr)).toEqual([0, 1, 2, 3, 3, 5]);
    expect(t.rec.pre.length).toBe(0);
    expect(Array.from(t.ffWeight)).toEqual([1, 4, 0.5, 0.25, 2]);
    expect(t.recWeight.length).toBe(0);
    expect(teacherForcedWeights(c)).toEqual({ recWeight: new Float32Array(0), ffWeight: t.ffWeight });
    expect(t.hash).not.toBe(c.hash);
  });
});

describe("a teacher-forced student replaying a recording", () => {
  const A = 2;
  const E = 3;
  // The small network (60 neurons, 20 inputs) driven at 25 Hz, a van Rossum loss only, scaling factors trained.
  let toml = smallNetworkToml({ inputRateHz: 25, accumulationInterval: A, epochs: 12 });
  toml = toml.replace("[targets]", '[targets]\nteacher_spikes = "spikes.safetensors"');
  toml = toml.replace("[hyperparameters]", '[hyperparameters]\noptimise = "scaling_factors"\nvan_rossum_tau_rise = 2.0\nvan_rossum_tau_decay = 10.0');
  for (const k of ["firing_rate", "cv", "silent_penalty", "membrane_variance"]) toml = toml.replace(new RegExp(`^loss_weight\\.${k} = .*$`, "m"), `loss_weight.${k} = 0.0`);
  toml = toml.replace(/^loss_weight\.membrane_variance = .*$/m, "$&\nloss_weight.van_rossum = 1.0");
  const config = parseConfig(`${toml}\n[student]\nmode = "feedforward"\n`, "ff-student");
  const connectome = generateConnectome(config);
  const teacherSpec = buildNetworkSpec({ ...config, student: { ...config.student, mode: "recurrent" }, targets: { ...config.targets, teacher_spikes: undefined }, hyperparameters: { ...config.hyperparameters, loss_weight: { ...config.hyperparameters.loss_weight, van_rossum: 0 } } }, connectome, { targets: null, teacherWeights: null, teacherRecording: null });
  const { recording } = recordTeacher(new SparseCpuEngine(teacherSpec), teacherSpec, connectome, A, E);
  const spec = buildNetworkSpec(config, connectome, { targets: null, teacherWeights: null, teacherRecording: recording });
  const exact = teacherForcedWeights(connectome);
  const task = (epoch: number, initialState: EpochResult["finalState"] | null, w = exact, computeGradient = true) => ({ epoch, initialState, ...w, computeGradient, recordActivity: false });

  it("has the teacher's neurons as inputs and no recurrent synapses", () => {
    expect(spec.constants.numInputs).toBe(connectome.numInputs + connectome.numNeurons);
    expect(spec.rec.pre.length).toBe(0);
    expect(spec.ff.pre.length).toBe(connectome.ff.pre.length + connectome.rec.pre.length);
    expect(spec.teacherForcing).toEqual({ inputTypes: 1 });
  });

  it("reproduces the teacher with the teacher's weights: van Rossum loss 0 and the recorded spikes, in both engines", async () => {
    const sparse = new SparseCpuEngine(spec);
    const B = spec.batchSize;
    const T = epochSteps(spec);
    let spikes = 0;
    await replayRun((e, s) => sparse.runEpochSync(task(e, s)), spec, A, 2 * A * E, (e, r) => {
      expect(r.losses.van_rossum).toBe(0);
      const expected = recordedEpoch(recording, e, A, B, T).teacherSpikes;
      expect(Buffer.from(sparse.recordedActivity().spikes).equals(Buffer.from(expected))).toBe(true);
      spikes += expected.reduce((a, x) => a + x, 0);
    });
    expect(spikes).toBeGreaterThan(100);
    const tfjs = new TfjsEngine(spec);
    try {
      await replayRun((e, s) => tfjs.runEpoch(task(e, s, exact, false)), spec, A, A * E, (_e, r) => expect(r.losses.van_rossum).toBe(0));
    } finally {
      tfjs.dispose();
    }
  });

  it("reduces a perturbed student's gradients to the same factor gradients in both engines; teacher synapses feed the recurrent factors", async () => {
    const rng = new Rng(5);
    const w = { recWeight: new Float32Array(0), ffWeight: perturbLognormal(exact.ffWeight, 0.3, rng) };
    const pairs = specTypePairs(spec);
    const counts = factorCounts(spec.constants, spec.teacherForcing!.inputTypes);
    expect(counts).toEqual({ rec: 4, ff: 2 });
    const reduce = (r: EpochResult) => allFactors(factorLogGradient([{ grad: r.recGrad!, weight: w.recWeight, pair: pairs.rec }, { grad: r.ffGrad!, weight: w.ffWeight, pair: pairs.ff }], counts));
    const a = new SparseCpuEngine(spec).runEpochSync(task(1, null, w));
    const tfjs = new TfjsEngine(spec);
    try {
      const b = await tfjs.runEpoch(task(1, null, w));
      expect(a.losses.van_rossum).toBeGreaterThan(0);
      const ga = reduce(a);
      // The recurrent factors get their gradient through the teacher's synapses (there are no recurrent synapses).
      expect(Array.from(ga.subarray(0, 4)).some((g) => g !== 0), `[${Array.from(ga)}]`).toBe(true);
      // Measured: 2e-3 relative (λ = 100, float32), as the per-edge gradients.
      expect(maxRelError(ga, reduce(b))).toBeLessThan(1e-2);
    } finally {
      tfjs.dispose();
    }
  });
});

describe("teacher-forced students through the CLIs", () => {
  const dir = tempDir();
  /** The CLI test network: its generated weights are the teacher; the student trains factors against a recording. */
  const params = (name: string, extra: string) => {
    let text = readFileSync(smallParams(dir, { epochs: 300, accumulation: 3, plotting: true }), "utf8").replace(/^parameterisation = .*\n/m, "");
    text = text.replace("[targets]", '[targets]\nteacher_spikes = "spikes.safetensors"');
    text = text.replace(/^learning_rate = .*$/m, 'learning_rate = 5e-2\noptimise = "scaling_factors"\nbetas = [0.6, 0.999]\nvan_rossum_tau_rise = 10.0\nvan_rossum_tau_decay = 100.0');
    text = text.replace(/^surrgrad_scale = .*$/m, "surrgrad_scale = 0.5");
    for (const k of ["firing_rate", "cv", "silent_penalty", "membrane_variance"]) text = text.replace(new RegExp(`^loss_weight\\.${k} = .*$`, "m"), `loss_weight.${k} = 0.0`);
    text = text.replace(/^loss_weight\.membrane_variance = .*$/m, "$&\nloss_weight.van_rossum = 10.0");
    // Figures at the end only; stronger mitral input, so that both cell types fire.
    text = text.replace(/^enabled = true$/m, "enabled = true\ninterval = 300").replace(/^w_mu = \[\[0\.4, 0\.4\]\]$/m, "w_mu = [[1.2, 1.2]]");
    text += `\n[student]\nmode = "feedforward"\n${extra}\n`;
    const file = join(dir, `${name}.toml`);
    writeFileSync(file, text);
    return file;
  };

  it("recovers perturbed factors, bit-identical with 1 and 2 workers, with figures and the factors on the console", async () => {
    const p = params("student", "weight_perturbation_variance = 0.3");
    const rec = start(SIM, [p, "--teacher", "--export-teacher", join(dir, "spikes.safetensors"), "--epochs", "8"]);
    expect(await rec.exit, rec.output()).toBe(0);
    const one = await coord([p, "--workers", "1", "--output", join(dir, "one")], 180_000);
    expect(one.code, one.output).toBe(0);
    expect(one.output).toMatch(/Scaling factor \/ target: excitatory_excitatory \d/);
    expect(one.output).toMatch(/Teacher FR: excitatory \d/);
    const two = await coord([p, "--workers", "2", "--output", join(dir, "two"), "--no-figures"], 180_000);
    expect(two.code, two.output).toBe(0);
    expect(finalWeights(join(dir, "two"))).toEqual(finalWeights(join(dir, "one")));
    const rows = metricRows(join(dir, "one"));
    const header = rows[0].split(",");
    const ratios = header.map((h, i) => [h, i] as const).filter(([h]) => h.endsWith("/ratio"));
    expect(ratios).toHaveLength(6);
    const logError = (row: string) => ratios.reduce((a, [, i]) => a + Math.abs(Math.log(Number(row.split(",")[i]))), 0) / ratios.length;
    // Measured: mean |ln(learned / target)| 0.77 after the first update, 0.15 after the last (100 updates).
    expect(logError(rows[rows.length - 1])).toBeLessThan(0.5 * logError(rows[1]));
    const figures = readFileSync(join(dir, "one/figures/epoch_0300/index.html"), "utf8");
    expect(figures).toContain("scaling_factors.png");
  }, 400_000);

  it("refuses mode = \"feedforward\" without a recording", async () => {
    const file = join(dir, "no-recording.toml");
    writeFileSync(file, readFileSync(params("x", ""), "utf8").replace('teacher_spikes = "spikes.safetensors"\n', ""));
    const r = await coord([file, "--workers", "1", "--output", join(dir, "none")]);
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/student\.mode: "feedforward" \(teacher forcing\) takes the teacher's recorded recurrent spikes/);
  });
});
