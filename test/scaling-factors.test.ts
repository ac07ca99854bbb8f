/**
 * Scaling-factor training (optimise = "scaling_factors*"): the pure functions by hand, the reduced gradient against
 * finite differences of the loss and across engines, and real training runs (targets, metrics, checkpoints, resume,
 * worker counts, one part only).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/model/config.js";
import { allFactors, effectiveWeights, factorCounts, factorLogGradient, factorNames, networkTypePairs, typePairIndex } from "../src/model/scaling-factors.js";
import { EpochResult } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { readCheckpoint } from "../src/io/checkpoint.js";
import { loadConfig } from "../src/io/parameters-file.js";
import { generateConnectome } from "../src/model/connectome.js";
import { maxRelError, task } from "./helpers/engine-checks.js";
import { smallNetwork, smallNetworkToml } from "./helpers/small-network.js";
import { coord, COORD, ensureBuilt, finalWeights, freePort, metricRows, smallParams, start, tempDir, WORKER } from "./helpers/runs.js";

describe("scaling-factor maths", () => {
  it("indexes each edge by its (pre type, post type) pair, row-major", () => {
    // Types: neurons 0, 1 are type 0; neuron 2 is type 1 (K = 2).
    const type = [0, 0, 1];
    const pairs = typePairIndex({ pre: Int32Array.from([0, 2, 1, 2]), post: Int32Array.from([2, 0, 1, 2]) }, type, type, 2);
    expect(Array.from(pairs)).toEqual([1, 2, 0, 3]);
  });

  it("scales every edge by its pair's factor and reduces Σ w·∂L/∂w per pair in edge order", () => {
    const pairs = Int32Array.from([1, 2, 0, 3, 1]);
    const w = effectiveWeights(Float32Array.from([0.5, 2, 1, 4, 0.25]), Float32Array.from([10, 2, 3, 0.5]), pairs);
    expect(Array.from(w)).toEqual([1, 6, 10, 2, 0.5]);
    const g = factorLogGradient([{ grad: Float32Array.from([1, -1, 0.5, 2, 4]), weight: w, pair: pairs }], { rec: 3, ff: 1 });
    // pair 0: 10·0.5; pair 1: 1·1 + 0.5·4; pair 2: 6·(−1); pair 3: 2·2 — split 3 + 1.
    expect(Array.from(g.rec)).toEqual([5, 3, -6]);
    expect(Array.from(g.ff)).toEqual([4]);
  });

  it("indexes [S_rec | S_ff] by population, teacher-forced inputs taking their type's recurrent factor", () => {
    // K = 2 cell types, populations 0, 1 recurrent, 2 = mitral, 3 and 4 = teacher inputs of types 0 and 1.
    const c = { cellType: [0, 1], inputSource: [2, 3, 4], numRecTypes: 2, numSources: 5 };
    const rec = { pre: [0, 1], post: [1, 0] };
    const ff = { pre: [0, 1, 2, 2], post: [0, 1, 0, 1] };
    expect(factorCounts(c, 1)).toEqual({ rec: 4, ff: 2 });
    const pairs = networkTypePairs(rec, ff, c, 1);
    expect(Array.from(pairs.rec)).toEqual([1, 2]);
    // mitral → type 0, 1: rows after the recurrent ones (4, 5); teacher type 0 → 1: E_I (1); teacher type 1 → 0: I_E (2).
    expect(Array.from(pairs.ff)).toEqual([4, 1, 2, 3]);
    // Without teacher forcing every input type is a real one: 3 feedforward rows.
    expect(factorCounts(c)).toEqual({ rec: 4, ff: 6 });
    expect(Array.from(networkTypePairs(rec, ff, c).ff)).toEqual([4, 7, 8, 9]);
  });

  it("names factors {pre}_{post}, recurrent then feedforward", () => {
    expect(factorNames(["E", "I"], ["mitral"])).toEqual({ rec: ["E_E", "E_I", "I_E", "I_I"], ff: ["mitral_E", "mitral_I"] });
  });

  it("reads [scaling_factors] and optimise, and refuses what cannot work", () => {
    const base = smallNetworkToml();
    const c = parseConfig(`${base}\n[scaling_factors]\nrecurrent = [[1, 2], [0.5, 1]]\n`.replace("[hyperparameters]", '[hyperparameters]\noptimise = "scaling_factors"'));
    expect(c.hyperparameters.optimise).toBe("scaling_factors");
    expect(c.scaling_factors).toEqual({ recurrent: [[1, 2], [0.5, 1]], feedforward: [[1, 1]] });
    expect(() => parseConfig(`${base}\n[scaling_factors]\nrecurrent = [[1, 0], [1, 1]]\n`)).toThrow(/scaling_factors\.recurrent/);
    expect(() => parseConfig(base.replace("[hyperparameters]", '[hyperparameters]\noptimise = "factors"'))).toThrow(/hyperparameters\.optimise/);
    expect(() => parseConfig(base.replace("[hyperparameters]", '[hyperparameters]\noptimise = "scaling_factors"\nparameterisation = "log"'))).toThrow(
      /hyperparameters\.parameterisation: only used with optimise = "weights"/,
    );
    // Only the CV term (which has no gradient) left: nothing to train the factors on.
    let cvOnly = base.replace("[hyperparameters]", '[hyperparameters]\noptimise = "scaling_factors_recurrent"');
    for (const k of ["firing_rate", "silent_penalty", "membrane_variance"]) cvOnly = cvOnly.replace(new RegExp(`^loss_weight\\.${k} = .*$`, "m"), `loss_weight.${k} = 0.0`);
    expect(() => parseConfig(cvOnly)).toThrow(/hyperparameters\.optimise: "scaling_factors_recurrent" needs a loss term with a gradient/);
  });
});

describe("the reduced factor gradient (surrogate off, λ = 1e8)", () => {
  const net = smallNetwork({ surrgradScale: 1e8 });
  // One chunk: the finite differences see every path, so they are compared with the uncut epoch's adjoint.
  const spec = { ...net.spec, chunkSteps: 60, chunksPerEpoch: 1 };
  const sparse = new SparseCpuEngine(spec, "float64");
  const pairs = networkTypePairs(spec.rec, spec.ff, spec.constants);
  let full: EpochResult;
  beforeAll(() => {
    full = sparse.runEpochSync(task(net, 0, null));
  });

  const reduce = (r: EpochResult) =>
    factorLogGradient(
      [
        { grad: r.recGrad!, weight: net.connectome.recWeight, pair: pairs.rec },
        { grad: r.ffGrad!, weight: net.connectome.ffWeight, pair: pairs.ff },
      ],
      factorCounts(spec.constants),
    );

  it("matches central finite differences of the loss in ln S, for every recurrent and feedforward pair", () => {
    // Measured: worst relative error 2e-5 over the 6 pairs.
    const counts = factorCounts(spec.constants);
    const grad = allFactors(reduce(full));
    for (let p = 0; p < counts.rec + counts.ff; p++) {
      const lossAt = (h: number) => {
        const S = new Float32Array(counts.rec + counts.ff).fill(1);
        S[p] = Math.exp(h);
        const t = { ...task(net, 0, null, false, false), recWeight: effectiveWeights(net.connectome.recWeight, S, pairs.rec), ffWeight: effectiveWeights(net.connectome.ffWeight, S, pairs.ff) };
        const r = sparse.runEpochSync(t);
        expect(Array.from(r.rates)).toEqual(Array.from(full.rates));
        return r.losses.total;
      };
      const h = 1e-4;
      const fd = (lossAt(h) - lossAt(-h)) / (2 * h);
      expect(Math.abs(fd - grad[p]) / Math.abs(grad[p]), `factor ${p}: fd ${fd}, reduced ${grad[p]}`).toBeLessThan(1e-3);
    }
  });

  it("is the same from either engine's per-edge gradients", async () => {
    const tfjs = new TfjsEngine(net.spec);
    const sparse32 = new SparseCpuEngine(net.spec);
    try {
      const a = await tfjs.runEpoch(task(net, 0, null));
      const b = sparse32.runEpochSync(task(net, 0, null));
      // Measured: 1e-6 relative.
      expect(maxRelError(allFactors(reduce(a)), allFactors(reduce(b)))).toBeLessThan(1e-4);
    } finally {
      tfjs.dispose();
    }
  });
});

describe("scaling-factor training runs", () => {
  const dir = tempDir();
  /**
   * The small CLI network training factors: `mode`, lognormal factor perturbation (variance 0.3), 12 epochs; the
   * feedforward factors start at 4 (`factors`), which makes the network fire (it is silent at 1).
   */
  const params = (mode: string, factors = "[[4, 4]]") => {
    const file = smallParams(dir);
    let text = readFileSync(file, "utf8").replace(/^parameterisation = .*\n/m, "");
    text = text.replace("[hyperparameters]", `[hyperparameters]\noptimise = "${mode}"`);
    text += `\n[student]\nweight_perturbation_variance = 0.3\n\n[scaling_factors]\nfeedforward = ${factors}\n`;
    const out = join(dir, `${mode}.toml`);
    writeFileSync(out, text);
    return out;
  };
  beforeAll(() => ensureBuilt());

  it("trains the factors: targets file, metrics columns, checkpoint tensors, W·S simulated", async () => {
    const out = join(dir, "sf");
    const file = params("scaling_factors");
    const r = await coord([file, "--workers", "1", "--output", out]);
    expect(r.code, r.output).toBe(0);
    const targets = JSON.parse(readFileSync(join(out, "target_scaling_factors.json"), "utf8")) as Record<string, Record<string, number>>;
    expect(Object.keys(targets.recurrent)).toEqual(["excitatory_excitatory", "excitatory_inhibitory", "inhibitory_excitatory", "inhibitory_inhibitory"]);
    expect(Object.keys(targets.feedforward)).toEqual(["mitral_excitatory", "mitral_inhibitory"]);
    // The perturbation is lognormal per pair: targets 1/p differ from 1 and from each other.
    const values = [...Object.values(targets.recurrent), ...Object.values(targets.feedforward)];
    expect(new Set(values).size).toBe(6);
    expect(values.every((t) => t > 0.2 && t < 5 && t !== 1)).toBe(true);

    const rows = metricRows(out);
    const header = rows[0].split(",");
    for (const n of ["excitatory_excitatory", "mitral_inhibitory"]) expect(header).toEqual(expect.arrayContaining([`scaling_factor/${n}`, `scaling_factor/${n}/ratio`]));
    const last = Object.fromEntries(header.map((h, i) => [h, Number(rows[rows.length - 1].split(",")[i])]));
    const first = Object.fromEntries(header.map((h, i) => [h, Number(rows[1].split(",")[i])]));
    // Factors moved from 1, and value/target is what the row says.
    expect(last["scaling_factor/excitatory_excitatory"]).not.toBe(1);
    expect(last["scaling_factor/mitral_excitatory/ratio"]).toBeCloseTo(last["scaling_factor/mitral_excitatory"] / targets.feedforward.mitral_excitatory, 12);
    expect(first["scaling_factor/inhibitory_inhibitory"]).not.toBe(last["scaling_factor/inhibitory_inhibitory"]);

    const ck = readCheckpoint(join(out, "checkpoints/checkpoint_latest.safetensors"), null, null);
    expect(ck.metadata.optimise).toBe("scaling_factors");
    const f = ck.state.factors!;
    expect(f.value.rec.length).toBe(4);
    expect(f.value.ff.length).toBe(2);
    expect(ck.state.adam.m[0].length).toBe(4);
    expect(Array.from(f.value.rec)).toEqual(Array.from(f.log.rec, (x) => Math.fround(Math.exp(x))));
    expect(last["scaling_factor/inhibitory_excitatory"]).toBe(f.value.rec[2]);
    // The weights simulated are exactly W·S.
    const { config } = loadConfig(file);
    const c = generateConnectome(config);
    const K = config.recurrent.names.length;
    expect(Array.from(ck.state.recWeight)).toEqual(Array.from(effectiveWeights(f.base.rec, f.value.rec, typePairIndex(c.rec, c.cellType, c.cellType, K))));
    expect(Array.from(ck.state.ffWeight)).toEqual(Array.from(effectiveWeights(f.base.ff, f.value.ff, typePairIndex(c.ff, c.inputType, c.cellType, K))));
  }, 120_000);

  it("is bit-identical with 1 and 2 workers and across a resume", async () => {
    const file = params("scaling_factors");
    const one = join(dir, "one");
    const two = join(dir, "two");
    const resumed = join(dir, "resumed");
    expect((await coord([file, "--workers", "1", "--output", one])).code).toBe(0);
    expect((await coord([file, "--workers", "2", "--output", two])).code).toBe(0);
    expect((await coord([file, "--workers", "1", "--output", resumed, "--epochs", "6"])).code).toBe(0);
    const r = await coord([file, "--workers", "2", "--output", resumed, "--resume", "auto", "--epochs", "12"]);
    expect(r.code, r.output).toBe(0);
    expect(finalWeights(two)).toEqual(finalWeights(one));
    expect(finalWeights(resumed)).toEqual(finalWeights(one));
    const factors = (d: string) => readCheckpoint(join(d, "checkpoints/checkpoint_latest.safetensors"), null, null).state.factors!;
    expect(factors(resumed)).toEqual(factors(one));
    const strip = (rows: string[]) => rows.map((row) => row.split(",").slice(0, -2).join(","));
    expect(strip(metricRows(resumed))).toEqual(strip(metricRows(one)));
    // One external worker taking whole intervals: it sums the factor gradients itself (reduce groups).
    const grouped = join(dir, "grouped");
    const port = freePort();
    const c = start(COORD, [file, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--output", grouped, "--metrics-port", "0"]);
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0", "--threads", "3"]);
    expect(await c.exit, c.output()).toBe(0);
    expect(await w.exit).toBe(0);
    expect(c.output()).toMatch(/computed \d+ epochs \(\d+ of them in reduce groups/);
    expect(factors(grouped)).toEqual(factors(one));
    expect(finalWeights(grouped)).toEqual(finalWeights(one));
  }, 180_000);

  it("trains one part only: the other part's factors stay at their initial values", async () => {
    for (const [mode, fixed] of [
      ["scaling_factors_recurrent", "ff"],
      ["scaling_factors_feedforward", "rec"],
    ] as const) {
      const out = join(dir, mode);
      const r = await coord([params(mode, "[[4, 3.5]]"), "--workers", "1", "--output", out, "--epochs", "6"]);
      expect(r.code, r.output).toBe(0);
      const f = readCheckpoint(join(out, "checkpoints/checkpoint_latest.safetensors"), null, null).state.factors!;
      const initial = fixed === "ff" ? [4, 3.5] : [1, 1, 1, 1];
      // Factors are e^θ from the start (θ = ln S in float32).
      const viaLog = (x: number) => Math.fround(Math.exp(Math.fround(Math.log(x))));
      expect(Array.from(f.value[fixed])).toEqual(initial.map(viaLog));
      const trained = fixed === "ff" ? f.value.rec : f.value.ff;
      expect(Array.from(trained).some((s, i) => s !== (fixed === "ff" ? 1 : viaLog([4, 3.5][i])))).toBe(true);
    }
  }, 120_000);

  it("refuses to resume a run with another optimise mode", async () => {
    const out = join(dir, "sf-mode");
    expect((await coord([params("scaling_factors"), "--workers", "1", "--output", out, "--epochs", "3"])).code).toBe(0);
    const r = await coord([params("scaling_factors_recurrent"), "--workers", "1", "--output", out, "--resume", "auto"]);
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/optimise = "scaling_factors", these parameters say "scaling_factors_recurrent"/);
    expect(existsSync(join(out, "checkpoints/checkpoint_latest.safetensors"))).toBe(true);
  }, 60_000);
});
