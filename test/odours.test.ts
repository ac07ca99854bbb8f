/**
 * Odour inputs (`[inputs] process = "odours"`, model/odours.ts, MODEL-HEAD.md 4): patterns and the mixture's
 * Ornstein–Uhlenbeck process against hand-computed values, every draw keyed, the mixture state carried in the stream
 * state through engines, messages and checkpoints, and real runs bit-identical across worker counts and resume.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/model/config.js";
import { makeEdgeList } from "../src/model/connectome.js";
import { OdourInputs, odourPatterns, restMixture } from "../src/model/odours.js";
import { Rng, RngPurpose } from "../src/model/rng.js";
import { epochInputs } from "../src/model/network.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { decodeMessage, encodeMessage } from "../src/distributed/protocol.js";
import { readCheckpoint } from "../src/io/checkpoint.js";
import { expectSameEpoch, task } from "./helpers/engine-checks.js";
import { smallNetwork, smallNetworkToml } from "./helpers/small-network.js";
import { loadNetworkSpec } from "../src/io/network-files.js";
import { coord, ensureBuilt, expectSameResult, runResult, SIM, smallParams, start, tempDir } from "./helpers/runs.js";
import { expectFigurePng } from "./helpers/png.js";

const ODOURS = `
[inputs]
process = "odours"

[odours]
tau = 2000.0
sigma = 2.0
temperature = 0.5

[odours.mitral]
baseline_rate = 20.0
modulation_rate = 60.0
modulation_fraction = 0.25
`;

describe("odour patterns", () => {
  // 4 neurons in 2 assemblies (neuron 1 inhibitory), 4 inputs of one type; edges (pre → post, weight) sorted by pre.
  const edges: [number, number, number][] = [
    [0, 0, 1.0],
    [0, 2, 0.1],
    [1, 0, 0.5],
    [1, 1, 5.0],
    [2, 2, 2.0],
    [3, 0, 0.5],
    [3, 3, 0.7],
  ];
  const ff = makeEdgeList(4, 4, Int32Array.from(edges, (e) => e[0]), Int32Array.from(edges, (e) => e[1]));
  const w = Float32Array.from(edges, (e) => e[2]);
  const patterns = (fraction: number, baseline = 10, modulation = 6) =>
    odourPatterns(Int32Array.of(0, 0, 1, 1), Int32Array.of(0, 1, 0, 0), Int32Array.of(0, 0, 0, 0), ff, w, ["mitral"], [
      { baseline_rate: baseline, modulation_rate: modulation, modulation_fraction: fraction },
    ]);

  it("ranks each type's inputs by their weight onto the assembly's excitatory cells, modulated up by fraction, mean kept", () => {
    // u_0 (neuron 0 only; neuron 1 is inhibitory): inputs 1.0, 0.5, 0, 0.5 → top 2 are input 0, then input 1 (the tie
    // with input 3 goes to the lower index). u_1 (neurons 2, 3): 0.1, 0, 2.0, 0.7 → inputs 2 and 3.
    // High = 10 + 6 = 16 Hz; the others (4·10 − 2·16)/2 = 4 Hz, so each pattern's mean is the baseline, 10 Hz.
    const p = patterns(0.5);
    expect(p.numPatterns).toBe(2);
    expect(Array.from(p.patterns)).toEqual([16, 16, 4, 4, 4, 4, 16, 16]);
    // ⌊4 · 0.3⌋ = 1 input up: 16 Hz, the other three (40 − 16)/3 = 8 Hz.
    expect(Array.from(patterns(0.3).patterns)).toEqual([16, 8, 8, 8, 8, 8, 16, 8]);
    // No modulation: the baseline everywhere.
    expect(Array.from(patterns(0).patterns)).toEqual(new Array(8).fill(10));
  });

  it("refuses a connectome without assemblies: there would be no odour", () => {
    expect(() => odourPatterns(Int32Array.of(-1, -1, -1, -1), Int32Array.of(0, 1, 0, 0), Int32Array.of(0, 0, 0, 0), ff, w, ["mitral"], [{ baseline_rate: 10, modulation_rate: 6, modulation_fraction: 0.5 }])).toThrow(
      /inputs\.process: "odours" makes one odour pattern per assembly, but no neuron of the connectome is in an assembly/,
    );
  });

  it("refuses a modulation that would need negative rates to keep the mean, naming the key", () => {
    // 3 of 4 up at 16 Hz leave (40 − 48)/1 = −8 Hz for the last.
    expect(() => patterns(0.75)).toThrow(ConfigError);
    expect(() => patterns(0.75)).toThrow(/odours\.mitral\.modulation_rate: .*−8|odours\.mitral\.modulation_rate: .*-8/);
  });
});

describe("the odour mixture's Ornstein–Uhlenbeck process", () => {
  // Input 0 silent under both odours, input 1 at 1000 Hz (p = 1 at dt = 1 ms) under both: spikes known for any mixture.
  const proc = { numPatterns: 2, patterns: Float64Array.of(0, 1000, 500, 0, 1000, 0), tau: 10, sigma: 0.5, temperature: 0.5 };
  const M = 3;

  it("emits softmax(a/temperature), then steps a by −a·dt/τ + σ√(2dt/τ)·ξ with ξ keyed by (seed, epoch, trial)", () => {
    const gen = new OdourInputs(proc);
    const a = restMixture(2);
    const out = { trials: 2, steps: 3, numInputs: M, data: new Uint8Array(2 * 3 * M) };
    const weights = new Float32Array(3 * 2);
    gen.draw(11, 5, 1, a, out, { trial: 1, weights });
    // By hand: trial 0 starts from the uniform mix (w = ½, ½); every step a_k ← 0.9·a_k + 0.5·√0.2·ξ, ξ drawn per
    // trial from its keyed stream in step, then pattern order; trial 1 continues from where trial 0 ended.
    const expected = [1, 1];
    const expectedW: number[] = [];
    for (let b = 0; b < 2; b++) {
      const xi = Rng.keyed(11, RngPurpose.odourProcess, 5, b);
      for (let t = 0; t < 3; t++) {
        const w0 = 1 / (1 + Math.exp((expected[1] - expected[0]) / 0.5));
        if (b === 1) expectedW.push(w0, 1 - w0);
        for (let k = 0; k < 2; k++) expected[k] = expected[k] - expected[k] * 0.1 + 0.5 * Math.sqrt(0.2) * xi.normal();
      }
    }
    expect(Array.from(a)).toEqual(expected.map((x) => expect.closeTo(x, 14)));
    Array.from(weights).forEach((x, i) => expect(x).toBeCloseTo(expectedW[i], 6));
    // Input 0 never fires, input 1 fires every step.
    for (let bt = 0; bt < 6; bt++) {
      expect(out.data[bt * M]).toBe(0);
      expect(out.data[bt * M + 1]).toBe(1);
    }
  });

  it("fires each input at its mixture rate: Σ_a w_a·pattern_a", () => {
    // a = (0, 0) with a 10 s time constant and no noise to speak of: w stays (½, ½), so input 2 fires at 250 Hz (p = ¼).
    const still = new OdourInputs({ ...proc, tau: 1e7, sigma: 1e-9 });
    const out = { trials: 40, steps: 500, numInputs: M, data: new Uint8Array(40 * 500 * M) };
    still.draw(3, 0, 1, new Float64Array(2), out);
    let n = 0;
    for (let bt = 0; bt < 40 * 500; bt++) n += out.data[bt * M + 2];
    // 20 000 Bernoulli(¼) draws: sd 61 spikes.
    expect(Math.abs(n - 5000)).toBeLessThan(300);
  });
});

describe("odour inputs in a network", () => {
  // The small network with odour inputs: the same connectome (odours do not change it), another network spec.
  const net = smallNetwork();
  const spec = loadNetworkSpec(parseConfig(smallNetworkToml() + ODOURS, "small-odours"), net.connectome);

  it("puts the patterns into the network (and its hash), one per assembly, each keeping the baseline mean", () => {
    const o = spec.odours!;
    expect(o.numPatterns).toBe(3);
    const M = spec.constants.numInputs;
    for (let a = 0; a < 3; a++) {
      const row = Array.from(o.patterns.subarray(a * M, (a + 1) * M));
      expect(row.reduce((s, x) => s + x, 0) / M).toBeCloseTo(20, 10);
      // ⌊20 · 0.25⌋ = 5 inputs at 80 Hz, 15 at (400 − 400)/15 = 0 Hz.
      expect(row.filter((x) => x === 80).length).toBe(5);
    }
    expect(spec.hash).not.toBe(net.spec.hash);
    // The network message carries them.
    const back = decodeMessage(encodeMessage({ type: "network", spec }));
    expect(back.type === "network" && Array.from(back.spec.odours!.patterns)).toEqual(Array.from(o.patterns));
  });

  it("draws an epoch's inputs from the stream's mixture state only: same state, same spikes; the state moves on", () => {
    const out = () => ({ trials: spec.batchSize, steps: 60, numInputs: spec.constants.numInputs, data: new Uint8Array(spec.batchSize * 60 * spec.constants.numInputs) });
    const [x, y, z] = [out(), out(), out()];
    const first = epochInputs(spec, { epoch: 4, initialState: null, recordActivity: true }, x);
    const again = epochInputs(spec, { epoch: 4, initialState: null, recordActivity: false }, y);
    expect(Buffer.from(x.data).equals(Buffer.from(y.data))).toBe(true);
    expect(Array.from(first.ou!)).toEqual(Array.from(again.ou!));
    expect(first.odourMixture!.length).toBe(60 * 3);
    expect(again.odourMixture).toBeUndefined();
    // From the carried state the next epoch of the stream differs, and the state is not the rest state any more.
    const next = epochInputs(spec, { epoch: 7, initialState: { ou: first.ou }, recordActivity: false }, z);
    expect(Array.from(first.ou!)).not.toEqual([1, 1, 1]);
    expect(Array.from(next.ou!)).not.toEqual(Array.from(first.ou!));
  });

  it("sparse-cpu and tfjs agree and both return the mixture state and the plot trial's mixture", async () => {
    const t = task({ ...net, spec }, 2, null);
    const cpu = await new SparseCpuEngine(spec).runEpoch(t);
    const tfjs = await new TfjsEngine(spec).runEpoch(t);
    expectSameEpoch(cpu, tfjs);
    const inputs = { trials: spec.batchSize, steps: 60, numInputs: spec.constants.numInputs, data: new Uint8Array(spec.batchSize * 60 * spec.constants.numInputs) };
    const drive = epochInputs(spec, t, inputs);
    for (const r of [cpu, tfjs]) {
      expect(Array.from(r.finalState.ou!)).toEqual(Array.from(drive.ou!));
      expect(Array.from(r.activity!.odourMixture!)).toEqual(Array.from(drive.odourMixture!));
    }
    // The result message carries the state.
    const { epoch, losses, stats, rates, cvs, ratios, finalState, activity } = cpu;
    const back = decodeMessage(
      encodeMessage({ type: "result", runId: "r", epoch, weightsVersion: 0, losses, stats, rates, cvs, ratios, recGrad: cpu.recGrad!, ffGrad: cpu.ffGrad!, finalState, activity, computeSeconds: 0 }),
    );
    expect(back.type === "result" && Array.from(back.finalState.ou!)).toEqual(Array.from(drive.ou!));
  });
});

describe("odour parameters", () => {
  const parse = (extra: string, base = smallNetworkToml()) => () => parseConfig(base + extra, "p.toml");

  it("reads the original's keys, a type's baseline defaulting to its feedforward rate", () => {
    const c = parseConfig(smallNetworkToml() + '\n[inputs]\nprocess = "odours"\n', "p.toml");
    expect(c.odours).toEqual({ tau: 700_000, sigma: 5, temperature: 0.2, types: [{ baseline_rate: 80, modulation_rate: 30, modulation_fraction: 0.1 }] });
    expect(parseConfig(smallNetworkToml(), "p.toml").odours).toBeUndefined();
  });

  it.each([
    ['\n[inputs]\nprocess = "smell"\n', /inputs\.process: must be one of poisson, odours, got "smell"/],
    [ODOURS.replace("tau = 2000.0", "tau = 0.0"), /odours\.tau: .*> 0|odours\.tau: must be/],
    [ODOURS.replace("sigma = 2.0", "sigma = -1.0"), /odours\.sigma/],
    [ODOURS.replace("temperature = 0.5", "temperature = 0"), /odours\.temperature/],
    [ODOURS.replace("modulation_fraction = 0.25", "modulation_fraction = 1.5"), /odours\.mitral\.modulation_fraction/],
    [ODOURS.replace("[odours.mitral]", "[odours.granule]"), /odours: unknown key granule|odours\.granule/],
    ["\n[odours]\ntau = 5.0\n", /odours: only used with inputs\.process = "odours"/],
  ])("refuses bad input with one error naming the key (%#)", (extra, message) => {
    expect(parse(extra)).toThrow(ConfigError);
    expect(parse(extra)).toThrow(message);
  });

  it("refuses odours with a recorded teacher, whose recording holds its own inputs", () => {
    const base = smallNetworkToml({ hyperparameterLines: "loss_weight.van_rossum = 1.0" }).replace("[targets]\n", '[targets]\nteacher_spikes = "teacher.safetensors"\n');
    expect(parse(ODOURS, base)).toThrow(/inputs\.process: "odours" draws new inputs, but targets\.teacher_spikes/);
  });
});

describe("runs with odour inputs", () => {
  let params: string;
  let reference: ReturnType<typeof runResult>;
  beforeAll(async () => {
    ensureBuilt();
    params = smallParams(tempDir(), { epochs: 24, accumulation: 3 });
    appendFileSync(params, ODOURS);
    const dir = join(tempDir(), "ref");
    const r = await coord([params, "--workers", "1", "--output", dir]);
    expect(r.code, r.output).toBe(0);
    reference = runResult(dir);
  });

  it("store each stream's mixture state in checkpoints", () => {
    const dir = join(tempDir(), "one");
    return coord([params, "--workers", "1", "--output", dir]).then((r) => {
      expect(r.code, r.output).toBe(0);
      const { state } = readCheckpoint(join(dir, "checkpoints/checkpoint_latest.safetensors"), null, null);
      expect(state.streams.every((s) => s !== null && s.ou!.length === 5)).toBe(true);
      // Streams differ from one another and from the uniform mix: each carries its own process.
      expect(new Set(state.streams.map((s) => s!.ou!.join(","))).size).toBe(3);
      expectSameResult(dir, reference);
    });
  });

  it("are bit-identical with 2 workers", async () => {
    const dir = join(tempDir(), "two");
    const r = await coord([params, "--workers", "2", "--output", dir]);
    expect(r.code, r.output).toBe(0);
    expectSameResult(dir, reference);
  });

  it("resume exactly: 12 epochs, then --resume auto to 24, equals 24 straight", async () => {
    const dir = join(tempDir(), "resumed");
    expect((await coord([params, "--workers", "1", "--output", dir, "--epochs", "12"])).code).toBe(0);
    const r = await coord([params, "--workers", "2", "--output", dir, "--epochs", "24", "--resume", "auto"]);
    expect(r.code, r.output).toBe(0);
    expectSameResult(dir, reference);
  });

  it("draw the input rates over time in the figures (input_rates.png), which a Poisson-driven run does not have", async () => {
    const dir = tempDir();
    const withOdours = start(SIM, [params, "--epochs", "2", "--figures", join(dir, "odours")]);
    const poisson = start(SIM, [smallParams(dir, {}), "--epochs", "2", "--figures", join(dir, "poisson")]);
    expect(await withOdours.exit, withOdours.output()).toBe(0);
    expect(await poisson.exit, poisson.output()).toBe(0);
    expectFigurePng(readFileSync(join(dir, "odours/input_rates.png")), "input_rates.png");
    expect(readFileSync(join(dir, "odours/index.html"), "utf8")).toContain("input_rates.png");
    expect(existsSync(join(dir, "poisson/input_rates.png"))).toBe(false);
    expect(existsSync(join(dir, "poisson/spike_raster.png"))).toBe(true);
  });

  it("refuse a bad [odours] table with one line and exit code 2, writing nothing", async () => {
    const dir = tempDir();
    const bad = smallParams(dir, {});
    appendFileSync(bad, ODOURS.replace("sigma = 2.0", "sigma = 0.0"));
    const out = join(dir, "out");
    const r = await coord([bad, "--workers", "1", "--output", out]);
    expect(r.code).toBe(2);
    expect(r.output.trim().split("\n")).toHaveLength(1);
    expect(r.output).toMatch(/odours\.sigma/);
    expect(r.output).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(bad, "utf8")).toContain("sigma = 0.0");
  });
});
