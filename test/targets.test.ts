/**
 * Per-neuron targets and teacher files (src/io/targets-file.ts), how they enter the network spec and its hash,
 * a student's initial weights (src/training/student.ts) and the weight-agreement metrics.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSafetensorsFile } from "../src/platform/atomic-file.js";
import { Config, ConfigError, parseConfig } from "../src/model/config.js";
import { generateConnectome } from "../src/model/connectome.js";
import { loadNetworkSpec } from "../src/io/network-files.js";
import { Rng, RngPurpose } from "../src/model/rng.js";
import { meanByType, rateRmse, weightAgreement } from "../src/model/statistics.js";
import { readTargetsFile, readTeacherWeights, writeTargetsFile } from "../src/io/targets-file.js";
import { metricsColumns, metricsRow } from "../src/io/run-dir.js";
import { perturbLognormal, studentInitialWeights, teacherWeights } from "../src/training/student.js";
import { smallNetworkToml } from "./helpers/small-network.js";

const dir = mkdtempSync(join(tmpdir(), "snn-targets-test-"));
const baseConfig = parseConfig(smallNetworkToml(), "small");
const connectome = generateConnectome(baseConfig);
const N = connectome.numNeurons;

/** The small network's parameters with extra lines in [targets] and an optional [student] table. */
function config(targets: string, student = ""): Config {
  let text = smallNetworkToml().replace("[targets]", `[targets]\n${targets}`);
  if (student) text += `\n[student]\n${student}\n`;
  return parseConfig(text, "small", dir);
}

function csv(name: string, lines: string[]): string {
  writeFileSync(join(dir, name), `${lines.join("\n")}\n`);
  return name;
}

/** Rows neuron,rate,cv,ratio for every neuron, with rate = j/10 Hz. */
const rows = (f: (j: number) => string = (j) => `${j},${j / 10},${j % 3 === 0 ? "" : 0.8},0.3`) => Array.from({ length: N }, (_, j) => f(j));

function teacherFile(name: string, overrides: Partial<Parameters<typeof writeTargetsFile>[1]> = {}): string {
  writeTargetsFile(join(dir, name), {
    rate: Float64Array.from({ length: N }, (_, j) => j / 5),
    cv: Float64Array.from({ length: N }, (_, j) => (j % 4 === 0 ? NaN : 1.1)),
    ratio: Float64Array.from({ length: N }, () => 0.4),
    recWeight: connectome.recWeight.map((w) => 2 * w),
    ffWeight: connectome.ffWeight.map((w) => 3 * w),
    networkHash: connectome.hash,
    epochs: 5,
    seed: 7,
    ...overrides,
  });
  return name;
}

function problem(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("per-neuron targets from a CSV file", () => {
  it("override the per-type targets for the columns present; an empty CV keeps the scalar", () => {
    const spec = loadNetworkSpec(config(`file = "${csv("ok.csv", ["neuron,rate,cv,ratio", ...rows().reverse()])}"`), connectome);
    expect(Array.from(spec.targets.rate)).toEqual(Array.from({ length: N }, (_, j) => j / 10));
    expect(Array.from(spec.targets.cv)).toEqual(Array.from({ length: N }, (_, j) => (j % 3 === 0 ? 1.0 : 0.8)));
    expect(Array.from(spec.targets.ratio)).toEqual(Array.from({ length: N }, () => 0.3));
    // Alpha is not in the file: still per type (10 s excitatory, 2 s inhibitory).
    expect(Array.from(spec.targets.alpha)).toEqual(Array.from(connectome.cellType, (k) => [10, 2][k]));
  });

  it("accept any column order, only the required columns, spaces and CRLF", () => {
    const name = "crlf.csv";
    writeFileSync(join(dir, name), ["rate , neuron", ...Array.from({ length: N }, (_, j) => ` ${j / 10} , ${j} `)].join("\r\n"));
    const spec = loadNetworkSpec(config(`file = "${name}"`), connectome);
    expect(spec.targets.rate[7]).toBeCloseTo(0.7, 12);
    expect(Array.from(spec.targets.ratio)).toEqual(Array.from(connectome.cellType, (k) => [0.25, 0.45][k]));
  });

  const cases: [string, string[], RegExp][] = [
    ["a missing rate column", ["neuron,cv", ...rows((j) => `${j},1`)], /the header needs the columns neuron and rate/],
    ["an unknown column", ["neuron,rate,fano", ...rows((j) => `${j},1,1`)], /line 1: unknown column "fano"/],
    ["a repeated column", ["neuron,rate,rate", ...rows((j) => `${j},1,1`)], /line 1: column "rate" appears twice/],
    ["too few rows", ["neuron,rate", ...rows((j) => `${j},1`).slice(1)], new RegExp(`${N - 1} rows, but the network has ${N} neurons`)],
    ["a duplicate neuron id", ["neuron,rate", ...rows((j) => `${j === 5 ? 4 : j},1`)], /line 7: neuron 4 appears twice \(also on line 6\)/],
    ["an id out of range", ["neuron,rate", ...rows((j) => `${j === 5 ? N : j},1`)], new RegExp(`line 7: neuron "${N}" is not an id in 0..${N - 1}`)],
    ["a fractional id", ["neuron,rate", ...rows((j) => `${j === 5 ? 4.5 : j},1`)], /line 7: neuron "4.5" is not an id/],
    ["a negative rate", ["neuron,rate", ...rows((j) => `${j},${j === 3 ? -1 : 1}`)], /rate of neuron 3 is -1; targets must be finite and ≥ 0/],
    ["a non-numeric rate", ["neuron,rate", ...rows((j) => `${j},${j === 3 ? "fast" : 1}`)], /line 5: rate "fast" is not a finite number/],
    ["an infinite ratio", ["neuron,rate,ratio", ...rows((j) => `${j},1,${j === 2 ? "Infinity" : 0.3}`)], /line 4: ratio "Infinity" is not a finite number/],
    ["an empty rate", ["neuron,rate", ...rows((j) => `${j},${j === 2 ? "" : 1}`)], /line 4: rate "" is not a finite number/],
    ["a short row", ["neuron,rate,cv", ...rows((j) => (j === 0 ? "0,1" : `${j},1,1`))], /line 2: 2 values, expected 3/],
    ["an empty file", [], /empty file/],
  ];
  it.each(cases)("%s is a ConfigError naming the file and the problem", (name, lines, message) => {
    const file = csv(`${name.replace(/\W+/g, "-")}.csv`, lines);
    const msg = problem(() => loadNetworkSpec(config(`file = "${file}"`), connectome));
    expect(msg).toMatch(/^targets\.file ".*\.csv": /);
    expect(msg).toMatch(message);
  });

  it("a missing file and an unknown extension", () => {
    expect(problem(() => loadNetworkSpec(config('file = "nope.csv"'), connectome))).toMatch(/^targets\.file ".*nope\.csv": file not found$/);
    expect(problem(() => loadNetworkSpec(config('file = "t.json"'), connectome))).toMatch(/unknown file type "\.json"/);
  });
});

describe("targets and teacher weights from snn-sim's safetensors file", () => {
  it("round trip: targets override, NaN CVs keep the scalar, weights come back", () => {
    const name = teacherFile("teacher.safetensors");
    const spec = loadNetworkSpec(config(`file = "${name}"`), connectome);
    expect(Array.from(spec.targets.rate)).toEqual(Array.from({ length: N }, (_, j) => Math.fround(j / 5)));
    expect(Array.from(spec.targets.cv)).toEqual(Array.from({ length: N }, (_, j) => (j % 4 === 0 ? 1.0 : Math.fround(1.1))));
    const w = readTeacherWeights("student.teacher_file", join(dir, name), connectome);
    expect(Array.from(w.recWeight)).toEqual(Array.from(connectome.recWeight, (x) => Math.fround(2 * x)));
    expect(Array.from(w.ffWeight)).toEqual(Array.from(connectome.ffWeight, (x) => Math.fround(3 * x)));
  });

  it("refuses a file from another network, naming both hashes", () => {
    const other = generateConnectome(parseConfig(smallNetworkToml({ seed: 8 }), "other"));
    const name = teacherFile("other.safetensors", { networkHash: other.hash, recWeight: other.recWeight, ffWeight: other.ffWeight });
    const msg = problem(() => loadNetworkSpec(config(`file = "${name}"`), connectome));
    expect(msg).toMatch(/^targets\.file ".*other\.safetensors": exported from a different network \(network hash [0-9a-f]{12}…, these parameters give [0-9a-f]{12}…/);
    expect(problem(() => readTeacherWeights("student.teacher_file", join(dir, name), connectome))).toMatch(/^student\.teacher_file .*different network/);
  });

  it("refuses wrong lengths, negative targets, non-finite weights and other safetensors files", () => {
    const short = teacherFile("short.safetensors", { rate: new Float64Array(N - 1) });
    expect(problem(() => loadNetworkSpec(config(`file = "${short}"`), connectome))).toMatch(new RegExp(`tensor "target_rate" has shape \\[${N - 1}\\], expected \\[${N}\\]`));
    const negative = teacherFile("negative.safetensors", { ratio: Float64Array.from({ length: N }, (_, j) => (j === 9 ? -0.5 : 0.3)) });
    expect(problem(() => loadNetworkSpec(config(`file = "${negative}"`), connectome))).toMatch(/ratio of neuron 9 is -0.5/);
    const nanWeight = teacherFile("nan-weight.safetensors", { recWeight: connectome.recWeight.map((w, e) => (e === 3 ? NaN : w)) });
    expect(problem(() => readTeacherWeights("student.teacher_file", join(dir, nanWeight), connectome))).toMatch(/teacher_rec_weight\[3\] is NaN/);
    writeSafetensorsFile(join(dir, "checkpoint.safetensors"), { rec_weight: { dtype: "F32", shape: [1], data: new Float32Array(1) } }, { format: "snn-train checkpoint" });
    expect(problem(() => loadNetworkSpec(config('file = "checkpoint.safetensors"'), connectome))).toMatch(/not a targets file written by snn-sim --export-targets/);
    writeFileSync(join(dir, "garbage.safetensors"), "not safetensors at all");
    expect(problem(() => loadNetworkSpec(config('file = "garbage.safetensors"'), connectome))).toMatch(/^targets\.file ".*garbage\.safetensors": /);
  });
});

describe("the network hash", () => {
  it("covers the targets file's contents and, with the van Rossum loss, the teacher's weights", () => {
    const a = loadNetworkSpec(config(`file = "${csv("h1.csv", ["neuron,rate", ...rows((j) => `${j},1`)])}"`), connectome);
    const same = loadNetworkSpec(config(`file = "${csv("h2.csv", ["neuron,rate", ...rows((j) => `${j},1`)])}"`), connectome);
    const changed = loadNetworkSpec(config(`file = "${csv("h3.csv", ["neuron,rate", ...rows((j) => `${j},${j === 0 ? 2 : 1}`)])}"`), connectome);
    expect(same.hash).toBe(a.hash);
    expect(changed.hash).not.toBe(a.hash);
    expect(loadNetworkSpec(baseConfig, connectome).hash).not.toBe(a.hash);

    const vr = (file: string) =>
      parseConfig(smallNetworkToml().replace("loss_weight.membrane_variance = 10.0", "loss_weight.membrane_variance = 10.0\nloss_weight.van_rossum = 1.0") + `\n[student]\nteacher_file = "${file}"\n`, "vr", dir);
    const t1 = loadNetworkSpec(vr(teacherFile("w1.safetensors")), connectome);
    const t2 = loadNetworkSpec(vr(teacherFile("w2.safetensors", { recWeight: connectome.recWeight.map((w) => 4 * w) })), connectome);
    expect(t1.teacherRecWeight).toBeInstanceOf(Float32Array);
    expect(t2.hash).not.toBe(t1.hash);
    // Without the loss the workers need no teacher: the spec carries none.
    expect(loadNetworkSpec(config("", `teacher_file = "w1.safetensors"`), connectome).teacherRecWeight).toBeUndefined();
  });
});

describe("a student's initial weights", () => {
  it("lognormal perturbation is mean-preserving with log-std σ, and keyed", () => {
    const w = new Float32Array(200_000).fill(0.4);
    const p = perturbLognormal(w, 0.5, new Rng(3));
    const logs = Array.from(p, (x) => Math.log(x / 0.4));
    const mean = p.reduce((a, b) => a + b, 0) / p.length;
    const logMean = logs.reduce((a, b) => a + b, 0) / logs.length;
    const logStd = Math.sqrt(logs.reduce((a, b) => a + (b - logMean) ** 2, 0) / logs.length);
    // Standard errors: mean 0.4·√(e^{σ²} − 1)/√n ≈ 4.8e-4; log-std ≈ 8e-4.
    expect(Math.abs(mean - 0.4)).toBeLessThan(2.5e-3);
    expect(Math.abs(logMean + 0.125)).toBeLessThan(5e-3);
    expect(Math.abs(logStd - 0.5)).toBeLessThan(5e-3);
  });

  it("generated, perturbed and scaled; the noise depends on (seed, purpose, population) only", () => {
    const c = config("", 'perturbation = "lognormal"\nperturbation_sigma = 0.3\nscale = 2.0');
    const w = studentInitialWeights(c, connectome, null);
    const expected = perturbLognormal(connectome.recWeight, 0.3, Rng.keyed(7, RngPurpose.studentPerturbation, 0)).map((x) => x * 2);
    expect(Array.from(w.recWeight)).toEqual(Array.from(expected));
    expect(Array.from(studentInitialWeights(c, connectome, null).ffWeight)).toEqual(Array.from(w.ffWeight));
    expect(Array.from(studentInitialWeights(baseConfig, connectome, null).recWeight)).toEqual(Array.from(connectome.recWeight));
  });

  it("from the teacher file's weights", () => {
    const c = config("", `init = "teacher"\nteacher_file = "${teacherFile("init.safetensors")}"\nscale = 0.5`);
    const w = studentInitialWeights(c, connectome, teacherWeights(c, connectome));
    expect(Array.from(w.ffWeight)).toEqual(Array.from(connectome.ffWeight, (x) => Math.fround(Math.fround(3 * x) * 0.5)));
  });
});

describe("comparison with the teacher", () => {
  it("weightAgreement: correlation and relative L2 error", () => {
    // w = (1, 2, 3), reference (2, 2, 4): centred (−1, 0, 1) and (−2/3, −2/3, 4/3): r = 2/√(2·8/3) = 0.8660254;
    // ‖w − ref‖ = √(1 + 0 + 1) = √2, ‖ref‖ = √24: relative error 0.2886751.
    const a = weightAgreement(Float32Array.of(1, 2, 3), Float32Array.of(2, 2, 4));
    expect(a.correlation).toBeCloseTo(Math.sqrt(3) / 2, 7);
    expect(a.relativeError).toBeCloseTo(Math.sqrt(2 / 24), 7);
    expect(weightAgreement(Float32Array.of(1, 1), Float32Array.of(1, 2)).correlation).toBeNaN();
  });

  it("metrics.csv gains teacher, van Rossum and per-neuron target columns only when configured", () => {
    const plain = metricsColumns(["E", "I"]);
    expect(plain.filter((c) => /van_rossum|teacher|targets/.test(c))).toEqual([]);
    expect(plain).toHaveLength(24);
    const all = metricsColumns(["E", "I"], { vanRossum: true, teacher: true, perNeuronTargets: true });
    expect(all.filter((c) => !plain.includes(c))).toEqual([
      "van_rossum_loss",
      "teacher/weight_correlation/recurrent",
      "teacher/weight_correlation/feedforward",
      "teacher/weight_relative_error/recurrent",
      "teacher/weight_relative_error/feedforward",
      "targets/rate_rmse",
    ]);
    const agreement = { correlation: 0.9, relativeError: 0.2 };
    const row = metricsRow({
      epoch: 4,
      step: 1,
      losses: { firing_rate: 1, cv: 0, silent_penalty: 0, membrane_variance: 0, van_rossum: 0.5, total: 1.5 },
      gradNorm: 1,
      stats: [],
      teacher: { recurrent: agreement, feedforward: { ...agreement, relativeError: 0.3 } },
      rateRmse: 2.5,
      wallTimeS: 1,
      epochsPerS: 1,
    });
    expect(row).toMatchObject({ van_rossum_loss: 0.5, "teacher/weight_relative_error/feedforward": 0.3, "targets/rate_rmse": 2.5 });
  });

  it("rateRmse over the interval's epochs and meanByType", () => {
    // Neuron rates averaged over two epochs: (1, 3) and (4, 4) → 2 and 4 against targets 2 and 1: √((0 + 9)/2).
    expect(rateRmse([Float32Array.of(1, 4), Float32Array.of(3, 4)], Float64Array.of(2, 1))).toBeCloseTo(Math.sqrt(4.5), 12);
    expect(meanByType(Float64Array.of(1, 2, 3, 5), Int32Array.of(0, 1, 0, 1), 2)).toEqual([2, 3.5]);
  });
});
