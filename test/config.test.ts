/**
 * The configuration schema (src/model/config.ts): both shipped parameter files parse to the documented values,
 * targets accept a scalar or a per-cell-type table, and every invalid input is one ConfigError naming its key.
 * The coordinator CLI turns such an error into exit code 2, one stderr line, and no output directory.
 */
import { spawnSync, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig, roundHalfEven, typeCounts } from "../src/model/config.js";
import { loadConfig } from "../src/io/parameters-file.js";

const ROOT = join(import.meta.dirname, "..");
const DEFAULT_TEXT = readFileSync(join(ROOT, "parameters/fitting-activity-original.toml"), "utf8");
const QUICK_TEXT = readFileSync(join(ROOT, "parameters/quickstart.toml"), "utf8");

/** Replaces exactly one occurrence of `from` (fails loudly if the parameter file changed under the test). */
function edit(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`test setup: "${from}" must occur exactly once`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** The ConfigError thrown by parsing `text` (fails the test if parsing succeeds or throws something else). */
function configError(text: string, source = "bad.toml"): ConfigError {
  try {
    parseConfig(text, source);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError, but the parameters parsed");
}

describe("shipped parameter files", () => {
  it("fitting-activity-original.toml parses to the original's defaults (MODEL.md section 7)", () => {
    const c = parseConfig(DEFAULT_TEXT);
    expect(c.simulation).toEqual({
      seed: 42,
      dt: 1.0,
      chunk_steps: 50,
      chunks_per_epoch: 2,
      batch_size: 10,
      epochs: 500,
      accumulation_interval: 5,
      checkpoint_interval: 50,
      burn_in_epochs: 0,
      kernel_normalisation: "original",
      conductance_clamp: false,
    });
    expect(c.targets).toEqual({ firing_rates: [0.5, 2.0], cvs: 1.0, alpha: [10.0, 2.0], threshold_ratio: [0.25, 0.45] });
    expect(c.hyperparameters.learning_rate).toBe(5e-4);
    expect(c.hyperparameters.surrgrad_scale).toBe(100);
    // The original at ba6444d: gradient through the reset gate, Adam on the raw weights, constant learning rate.
    expect(c.hyperparameters.detach_reset).toBe(false);
    expect(c.hyperparameters.lr_schedule).toBe("constant");
    expect(c.hyperparameters.warmup_updates).toBe(0);
    expect(c.hyperparameters.max_grad_norm).toBe(1);
    expect(c.hyperparameters.betas).toEqual([0.9, 0.999]);
    expect(c.hyperparameters.eps).toBe(1e-8);
    expect(c.hyperparameters.loss_weight).toEqual({ firing_rate: 1.0, cv: 0.5, silent_penalty: 1.0, membrane_variance: 10.0, van_rossum: 0 });
    expect(c.hyperparameters.van_rossum_tau_decay).toBe(20);
    expect(c.hyperparameters.van_rossum_tau_rise).toBe(0);
    expect(c.student).toEqual({ init: "generated", perturbation: "none", perturbation_sigma: 0, scale: 1, noise_frac: 0, noise_rescale: "global", weight_perturbation_variance: 0, mode: "recurrent" });
    expect(c.recurrent.names).toEqual(["excitatory", "inhibitory"]);
    expect(c.recurrent.proportion).toEqual([0.8, 0.2]);
    expect(c.recurrent.num_neurons).toBe(5000);
    expect(c.recurrent.num_assemblies).toBe(20);
    expect(c.recurrent.topology.conn_within).toEqual([
      [0.2, 0.2],
      [0.4, 0.2],
    ]);
    expect(c.recurrent.topology.conn_between).toEqual([
      [0.02, 0.02],
      [0.02, 0.02],
    ]);
    expect(c.recurrent.weights.w_mu).toEqual([
      [0.4, 0.4],
      [0.6, 0.3],
    ]);
    expect(c.recurrent.weights.w_sigma).toEqual([
      [0.2, 0.2],
      [0.3, 0.1],
    ]);
    expect(c.recurrent.physiology).toEqual([
      { tau_mem: 85.0, theta: -38.0, U_reset: -60.0, E_L: -60.0, g_L: 1.35, tau_ref: 8.0 },
      { tau_mem: 50.0, theta: -45.0, U_reset: -60.0, E_L: -60.0, g_L: 0.9, tau_ref: 8.0 },
    ]);
    expect(c.recurrent.synapses).toEqual([
      { names: ["AMPA", "NMDA"], tau_rise: [0.1, 10.0], tau_decay: [5.0, 70.0], E_syn: [0.0, 0.0], g_bar: [0.7, 0.1] },
      { names: ["GABA_A"], tau_rise: [1.0], tau_decay: [6.0], E_syn: [-70.0], g_bar: [1.5] },
    ]);
    expect(c.feedforward.names).toEqual(["mitral"]);
    expect(c.feedforward.num_neurons).toBe(1500);
    // A scalar rate is spread over the (single) input type.
    expect(c.feedforward.firing_rate).toEqual([6.0]);
    expect(c.feedforward.topology.conn_inputs).toEqual([[0.02, 0.02]]);
    expect(c.feedforward.synapses[0].g_bar).toEqual([0.7, 0.1]);
    expect(c.distributed).toEqual({ heartbeat_interval: 2.0, worker_timeout: 60.0, no_worker_timeout: 300.0 });
    expect(c.plotting).toEqual({ enabled: true, interval: 50, trial: 0, raster_neurons: 40 });
    expect(c.wandb.enabled).toBe(false);
    expect(c.wandb.mode).toBe("offline");
  });

  it("quickstart.toml parses to a small network", () => {
    const c = parseConfig(QUICK_TEXT);
    expect(c.recurrent.num_neurons).toBe(500);
    expect(c.recurrent.num_assemblies).toBe(5);
    expect(c.feedforward.num_neurons).toBe(150);
    expect(c.simulation.epochs).toBe(800);
    expect(c.simulation.checkpoint_interval).toBe(50);
    expect(c.recurrent.topology.conn_within).toEqual([
      [0.5, 0.5],
      [0.8, 0.5],
    ]);
  });

  it("quickstart.toml and fitting-activity.toml train with the settings measured to fit (README, Training that fits)", () => {
    const quick = parseConfig(QUICK_TEXT);
    const full = parseConfig(readFileSync(join(ROOT, "parameters/fitting-activity.toml"), "utf8"));
    for (const c of [quick, full]) {
      expect(c.simulation.burn_in_epochs).toBe(50);
      expect(c.hyperparameters).toMatchObject({
        learning_rate: 2e-2,
        lr_schedule: "cosine",
        warmup_updates: 5,
        lr_min: 1e-3,
        surrgrad_scale: 15,
        detach_reset: true,
        parameterisation: "linear",
        max_skipped_updates: 5,
        patience: 0,
      });
    }
    expect(full.simulation.epochs).toBe(1550);
    // The network, model and targets are the original's: only [simulation] epochs/burn-in, [hyperparameters] and
    // [plotting] interval differ from fitting-activity-original.toml.
    const original = parseConfig(DEFAULT_TEXT);
    const { simulation: s1, hyperparameters: h1, plotting: p1, ...rest1 } = full;
    const { simulation: s2, hyperparameters: h2, plotting: p2, ...rest2 } = original;
    expect(rest1).toEqual(rest2);
    expect({ ...s1, epochs: 0, burn_in_epochs: 0 }).toEqual({ ...s2, epochs: 0 });
    expect(h1.loss_weight).toEqual(h2.loss_weight);
  });

  it("loadConfig returns the parsed config and the exact text", () => {
    const { config, text } = loadConfig(join(ROOT, "parameters/quickstart.toml"));
    expect(text).toBe(QUICK_TEXT);
    expect(config.recurrent.num_neurons).toBe(500);
  });

  it("loadConfig of a missing file is a ConfigError naming the file", () => {
    const file = join(tmpdir(), "snn-train-no-such-parameters.toml");
    expect(() => loadConfig(file)).toThrow(ConfigError);
    expect(() => loadConfig(file)).toThrow(file);
  });

  it("optional tables take their defaults when absent", () => {
    // Drop [distributed], [plotting] and [wandb] entirely and the betas/eps keys were never there.
    const text = DEFAULT_TEXT.slice(0, DEFAULT_TEXT.indexOf("[distributed]"));
    const c = parseConfig(text);
    expect(c.distributed).toEqual({ heartbeat_interval: 2.0, worker_timeout: 60.0, no_worker_timeout: 300.0 });
    // Figures every accumulation interval unless plotting.interval says otherwise.
    expect(c.plotting).toEqual({ enabled: true, interval: c.simulation.accumulation_interval, trial: 0, raster_neurons: 40 });
    expect(c.wandb).toEqual({ enabled: false, project: "connectome-snns-fitting-activity", entity: "", mode: "offline", name: "", tags: [], group: "", notes: "", job_type: "train" });
  });
});

describe("per-cell-type targets", () => {
  it("a table gives one value per cell type, in recurrent.names order (not table order)", () => {
    const text = edit(DEFAULT_TEXT, "firing_rates = { excitatory = 0.5, inhibitory = 2.0 }", "firing_rates = { inhibitory = 7.0, excitatory = 3.0 }");
    expect(parseConfig(text).targets.firing_rates).toEqual([3.0, 7.0]);
  });

  it("a scalar applies to every cell type", () => {
    let text = edit(DEFAULT_TEXT, "firing_rates = { excitatory = 0.5, inhibitory = 2.0 }", "firing_rates = 1.5");
    text = edit(text, "alpha = { excitatory = 10.0, inhibitory = 2.0 }", "alpha = 4.0");
    text = edit(text, "threshold_ratio = { excitatory = 0.25, inhibitory = 0.45 }", "threshold_ratio = 0.3");
    const t = parseConfig(text).targets;
    expect(t.firing_rates).toEqual([1.5, 1.5]);
    expect(t.alpha).toEqual([4.0, 4.0]);
    expect(t.threshold_ratio).toEqual([0.3, 0.3]);
  });

  it("a table missing one cell type names the missing key", () => {
    const text = edit(DEFAULT_TEXT, "alpha = { excitatory = 10.0, inhibitory = 2.0 }", "alpha = { excitatory = 10.0 }");
    expect(configError(text).message).toContain("targets.alpha.inhibitory");
  });
});

describe("invalid parameters: one ConfigError naming the key", () => {
  it("malformed TOML names the file", () => {
    const text = edit(DEFAULT_TEXT, "seed = 42", "seed = = 42");
    const msg = configError(text, "bad.toml").message;
    expect(msg).toContain("bad.toml");
    expect(msg).toContain("malformed TOML");
  });

  it("malformed TOML says on which line the error is", () => {
    // "seed = 42" is on line 6 of fitting-activity-original.toml; smol-toml reports the position in TomlError.line/column,
    // and the message (whose only other text is the file name and the reason) must carry that line number.
    const line = DEFAULT_TEXT.split("\n").findIndex((l) => l.startsWith("seed = 42")) + 1;
    expect(line).toBe(6);
    const text = edit(DEFAULT_TEXT, "seed = 42", "seed = = 42");
    const msg = configError(text, "bad.toml").message;
    expect(msg).toMatch(new RegExp(`\\b${line}\\b`));
  });

  it("unknown top-level key", () => {
    const msg = configError(`frobnicate = 1\n${DEFAULT_TEXT}`).message;
    expect(msg).toMatch(/^frobnicate: unknown key/);
  });

  it("unknown top-level table", () => {
    const msg = configError(`${DEFAULT_TEXT}\n[optimiser]\nlr = 1\n`).message;
    expect(msg).toMatch(/^optimiser: unknown key/);
  });

  it("unknown nested key (simulation.epoch, a typo of epochs)", () => {
    const msg = configError(edit(DEFAULT_TEXT, "epochs = 500", "epochs = 500\nepoch = 500")).message;
    expect(msg).toMatch(/^simulation\.epoch: unknown key/);
  });

  it("unknown key deep inside a cell type table", () => {
    const msg = configError(edit(DEFAULT_TEXT, "tau_mem = 50.0", "tau_mem = 50.0\ntau_syn = 3.0")).message;
    expect(msg).toMatch(/^recurrent\.physiology\.inhibitory\.tau_syn: unknown key/);
  });

  it("wrong type: a string where a number is expected", () => {
    const msg = configError(edit(DEFAULT_TEXT, "dt = 1.0 ", 'dt = "1.0" ')).message;
    expect(msg).toMatch(/^simulation\.dt: expected a finite number/);
    expect(msg).toContain('"1.0"');
  });

  it("wrong type: a float where an integer is expected", () => {
    const msg = configError(edit(DEFAULT_TEXT, "batch_size = 10", "batch_size = 10.5")).message;
    expect(msg).toMatch(/^simulation\.batch_size: expected an integer/);
  });

  it("wrong type inside a matrix names the element", () => {
    const msg = configError(edit(DEFAULT_TEXT, "conn_within = [[0.2, 0.2], [0.4, 0.2]]", 'conn_within = [[0.2, 0.2], [0.4, "x"]]')).message;
    expect(msg).toMatch(/^recurrent\.topology\.conn_within\[1\]\[1\]: expected a finite number/);
  });

  it("negative firing rate target (table entry)", () => {
    const msg = configError(
      edit(DEFAULT_TEXT, "firing_rates = { excitatory = 0.5, inhibitory = 2.0 }", "firing_rates = { excitatory = -0.5, inhibitory = 2.0 }"),
    ).message;
    expect(msg).toMatch(/^targets\.firing_rates\.excitatory: must be ≥ 0/);
    expect(msg).toContain("-0.5");
  });

  it("negative firing rate target (scalar)", () => {
    const msg = configError(edit(DEFAULT_TEXT, "firing_rates = { excitatory = 0.5, inhibitory = 2.0 }", "firing_rates = -1")).message;
    expect(msg).toMatch(/^targets\.firing_rates: must be ≥ 0/);
  });

  it("negative input firing rate", () => {
    const msg = configError(edit(DEFAULT_TEXT, "firing_rate = 6.0 ", "firing_rate = -6.0 ")).message;
    expect(msg).toMatch(/^feedforward\.firing_rate: must be ≥ 0/);
  });

  it("epochs not a multiple of accumulation_interval", () => {
    const msg = configError(edit(DEFAULT_TEXT, "epochs = 500", "epochs = 502")).message;
    expect(msg).toMatch(/^simulation\.epochs: /);
    expect(msg).toContain("accumulation_interval");
    expect(msg).toContain("502");
  });

  it("a typo of a required key is named as the unknown key, with the key it probably meant", () => {
    expect(configError(edit(DEFAULT_TEXT, "tau_mem = 85.0", "tau_m = 85.0")).message).toBe(
      "recurrent.physiology.excitatory.tau_m: unknown key; did you mean tau_mem?",
    );
    // A typo of an optional key: the default applies, and the typo is still refused, with the suggestion.
    expect(configError(edit(DEFAULT_TEXT, "learning_rate = 5e-4", "lerning_rate = 5e-4")).message).toBe(
      "hyperparameters.lerning_rate: unknown key; did you mean learning_rate?",
    );
  });

  it("nan and inf are named as such, not as null", () => {
    expect(configError(edit(DEFAULT_TEXT, "learning_rate = 5e-4", "learning_rate = nan")).message).toBe("hyperparameters.learning_rate: expected a finite number, got NaN");
    expect(configError(edit(DEFAULT_TEXT, "dt = 1.0", "dt = inf")).message).toBe("simulation.dt: expected a finite number, got Infinity");
    expect(configError(edit(DEFAULT_TEXT, "w_mu = [[0.4, 0.4], [0.6, 0.3]]", "w_mu = [[0.4, -inf], [0.6, 0.3]]")).message).toBe(
      "recurrent.weights.w_mu[0][1]: expected a finite number, got -Infinity",
    );
  });

  it("names are letters, digits, _ and -, starting with a letter (they become columns and labels)", () => {
    const msg = configError(edit(DEFAULT_TEXT, 'names = ["excitatory", "inhibitory"]', 'names = ["exc,itatory", "inhibitory"]')).message;
    expect(msg).toBe('recurrent.names[0]: "exc,itatory" is not a valid name (a letter, then letters, digits, _ or -: names become metrics.csv columns and labels)');
    expect(configError(edit(DEFAULT_TEXT, 'names = ["mitral"]', 'names = ["mi\\ntral"]')).message).toMatch(/^feedforward\.names\[0\]: [\s\S]* is not a valid name/);
  });

  it("timing keys: heartbeat at least 10 ms, timeouts at least two heartbeats", () => {
    expect(configError(edit(DEFAULT_TEXT, "heartbeat_interval = 2.0", "heartbeat_interval = 1e-6")).message).toBe("distributed.heartbeat_interval: must be ≥ 0.01, got 0.000001");
    expect(configError(edit(DEFAULT_TEXT, "worker_timeout = 60.0", "worker_timeout = 3.0")).message).toBe(
      "distributed.worker_timeout: must be at least 2 × distributed.heartbeat_interval (4 s), got 3",
    );
    expect(configError(edit(DEFAULT_TEXT, "no_worker_timeout = 300.0", "no_worker_timeout = 1e-9")).message).toMatch(/^distributed\.no_worker_timeout: must be at least 2 ×/);
  });

  it("checkpoint_interval not a multiple of accumulation_interval", () => {
    const msg = configError(edit(DEFAULT_TEXT, "checkpoint_interval = 50", "checkpoint_interval = 52")).message;
    expect(msg).toMatch(/^simulation\.checkpoint_interval: /);
    expect(msg).toContain("accumulation_interval");
  });

  it("plotting.interval not a multiple of accumulation_interval, or not a positive integer", () => {
    const msg = configError(edit(DEFAULT_TEXT, "\ninterval = 50 ", "\ninterval = 12 ")).message;
    expect(msg).toMatch(/^plotting\.interval: /);
    expect(msg).toContain("accumulation_interval (5)");
    expect(msg).toContain("12");
    expect(configError(edit(DEFAULT_TEXT, "\ninterval = 50 ", "\ninterval = 0 ")).message).toMatch(/^plotting\.interval: /);
    expect(configError(edit(DEFAULT_TEXT, "\ninterval = 50 ", "\ninterval = 2.5 ")).message).toMatch(/^plotting\.interval: /);
  });

  it("unknown cell type name in a targets table", () => {
    const msg = configError(
      edit(DEFAULT_TEXT, "threshold_ratio = { excitatory = 0.25, inhibitory = 0.45 }", "threshold_ratio = { excitatory = 0.25, inhibitory = 0.45, pyramidal = 0.3 }"),
    ).message;
    expect(msg).toMatch(/^targets\.threshold_ratio\.pyramidal: unknown key/);
    // The hint lists the valid names.
    expect(msg).toContain("excitatory");
    expect(msg).toContain("inhibitory");
  });

  it("missing physiology table for a cell type", () => {
    const start = DEFAULT_TEXT.indexOf("[recurrent.physiology.inhibitory]");
    const end = DEFAULT_TEXT.indexOf("[recurrent.synapses.excitatory]");
    const text = DEFAULT_TEXT.slice(0, start) + DEFAULT_TEXT.slice(end);
    const msg = configError(text).message;
    expect(msg).toMatch(/^recurrent\.physiology\.inhibitory: missing/);
  });

  it("physiology table for a cell type that does not exist", () => {
    const msg = configError(`${DEFAULT_TEXT}\n[recurrent.physiology.chandelier]\ntau_mem = 10.0\n`).message;
    expect(msg).toMatch(/^recurrent\.physiology\.chandelier: unknown key/);
  });

  it("proportions not summing to 1", () => {
    const msg = configError(edit(DEFAULT_TEXT, "proportion = [0.8, 0.2]", "proportion = [0.8, 0.3]")).message;
    expect(msg).toMatch(/^recurrent\.proportion: /);
    expect(msg).toContain("sum to 1");
  });

  it("dt too large for the explicit Euler step (dt = 3 in the default network)", () => {
    const msg = configError(edit(DEFAULT_TEXT, "dt = 1.0 ", "dt = 3 ")).message;
    expect(msg).toMatch(/^simulation\.dt: /);
    expect(msg).toContain("Euler");
  });

  it("the default dt = 1 ms is accepted (the stability bound is not over-strict)", () => {
    expect(() => parseConfig(DEFAULT_TEXT)).not.toThrow();
  });

  it("num_assemblies not dividing num_neurons", () => {
    const msg = configError(edit(DEFAULT_TEXT, "num_assemblies = 20", "num_assemblies = 3")).message;
    expect(msg).toMatch(/^recurrent\.num_assemblies: /);
    expect(msg).toContain("5000");
  });

  it("matrix with the wrong number of rows", () => {
    const msg = configError(edit(DEFAULT_TEXT, "w_mu = [[0.4, 0.4], [0.6, 0.3]]", "w_mu = [[0.4, 0.4]]")).message;
    expect(msg).toMatch(/^recurrent\.weights\.w_mu: expected 2 rows/);
  });

  it("a required table is missing", () => {
    const start = DEFAULT_TEXT.indexOf("[targets]");
    const end = DEFAULT_TEXT.indexOf("[hyperparameters]");
    const msg = configError(DEFAULT_TEXT.slice(0, start) + DEFAULT_TEXT.slice(end)).message;
    expect(msg).toMatch(/^targets: missing \(expected a table\)/);
  });
});

describe("teacher-student keys", () => {
  const withStudent = (student: string, extra = "") =>
    edit(DEFAULT_TEXT, "[hyperparameters]", `${extra}[student]\n${student}\n\n[hyperparameters]`);

  it("[student] and [targets] file: paths are resolved against the parameters file's directory", () => {
    const text = edit(
      withStudent('init = "teacher"\nteacher_file = "teacher.safetensors"\nperturbation = "lognormal"\nperturbation_sigma = 0.5\nscale = 0.9'),
      "[targets]",
      '[targets]\nfile = "data/targets.csv"',
    );
    const c = parseConfig(text, "p.toml", "/runs/exp");
    expect(c.student).toEqual({
      init: "teacher",
      teacher_file: "/runs/exp/teacher.safetensors",
      perturbation: "lognormal",
      perturbation_sigma: 0.5,
      scale: 0.9,
      noise_frac: 0,
      noise_rescale: "global",
      weight_perturbation_variance: 0,
      mode: "recurrent",
    });
    expect(c.targets.file).toBe("/runs/exp/data/targets.csv");
  });

  it("loadConfig anchors paths at the file, not the working directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "snn-config-paths-"));
    const file = join(dir, "p.toml");
    writeFileSync(file, edit(DEFAULT_TEXT, "[targets]", '[targets]\nfile = "../t.csv"'));
    expect(loadConfig(file).config.targets.file).toBe(join(dirname(dir), "t.csv"));
    rmSync(dir, { recursive: true, force: true });
  });

  it("van Rossum keys", () => {
    const text = edit(edit(withStudent('teacher_file = "t.safetensors"'), "learning_rate = 5e-4", "learning_rate = 5e-4\nvan_rossum_tau_decay = 8.0"), "loss_weight.membrane_variance = 10.0", "loss_weight.membrane_variance = 10.0\nloss_weight.van_rossum = 2.0");
    const h = parseConfig(text).hyperparameters;
    expect(h.van_rossum_tau_decay).toBe(8);
    expect(h.van_rossum_tau_rise).toBe(0);
    expect(h.loss_weight.van_rossum).toBe(2);
    const double = parseConfig(edit(text, "van_rossum_tau_decay = 8.0", "van_rossum_tau_decay = 100.0\nvan_rossum_tau_rise = 10.0")).hyperparameters;
    expect([double.van_rossum_tau_rise, double.van_rossum_tau_decay]).toEqual([10, 100]);
  });

  const bad: [string, string, RegExp][] = [
    ["the van Rossum loss without a teacher", edit(DEFAULT_TEXT, "loss_weight.membrane_variance = 10.0", "loss_weight.membrane_variance = 10.0\nloss_weight.van_rossum = 1.0"), /^hyperparameters\.loss_weight\.van_rossum: .*set student\.teacher_file/],
    ["a non-positive van Rossum time constant", edit(DEFAULT_TEXT, "learning_rate = 5e-4", "learning_rate = 5e-4\nvan_rossum_tau_decay = 0"), /^hyperparameters\.van_rossum_tau_decay: must be > 0/],
    ["the renamed van_rossum_tau", edit(DEFAULT_TEXT, "learning_rate = 5e-4", "learning_rate = 5e-4\nvan_rossum_tau = 8.0"), /^hyperparameters\.van_rossum_tau: renamed to van_rossum_tau_decay/],
    ["a negative van Rossum rise time", edit(DEFAULT_TEXT, "learning_rate = 5e-4", "learning_rate = 5e-4\nvan_rossum_tau_rise = -1"), /^hyperparameters\.van_rossum_tau_rise: must be ≥ 0/],
    ["a van Rossum rise time equal to the decay time", edit(DEFAULT_TEXT, "learning_rate = 5e-4", "learning_rate = 5e-4\nvan_rossum_tau_rise = 20.0"), /^hyperparameters\.van_rossum_tau_rise: must be 0 \(single exponential\) or < van_rossum_tau_decay \(20 ms\), got 20 \(equal time constants are a degenerate/],
    ["a van Rossum rise time above the decay time", edit(DEFAULT_TEXT, "learning_rate = 5e-4", "learning_rate = 5e-4\nvan_rossum_tau_rise = 30.0\nvan_rossum_tau_decay = 10.0"), /^hyperparameters\.van_rossum_tau_rise: must be 0 \(single exponential\) or < van_rossum_tau_decay \(10 ms\), got 30$/],
    ["init = teacher without a teacher file", withStudent('init = "teacher"'), /^student\.init: "teacher" takes the weights of student\.teacher_file, which is not set/],
    ["an unknown init", withStudent('init = "random"'), /^student\.init: must be one of generated, teacher/],
    ["an unknown perturbation", withStudent('perturbation = "gaussian"'), /^student\.perturbation: must be one of none, lognormal/],
    ["lognormal without its sigma", withStudent('perturbation = "lognormal"'), /^student\.perturbation_sigma: missing/],
    ["a sigma without the lognormal perturbation", withStudent("perturbation_sigma = 0.5"), /^student\.perturbation_sigma: only used with perturbation = "lognormal"/],
    ["a negative sigma", withStudent('perturbation = "lognormal"\nperturbation_sigma = -0.1'), /^student\.perturbation_sigma: must be ≥ 0/],
    ["a zero scale", withStudent("scale = 0"), /^student\.scale: must be > 0/],
    ["an unknown student key", withStudent("sigma = 0.5"), /^student\.sigma: unknown key/],
    ["an empty targets file path", edit(DEFAULT_TEXT, "[targets]", '[targets]\nfile = ""'), /^targets\.file: expected a file path/],
    ["a targets file that is not a string", edit(DEFAULT_TEXT, "[targets]", "[targets]\nfile = 3"), /^targets\.file: expected a string/],
  ];
  it.each(bad)("%s is a ConfigError naming the key", (_name, text, message) => {
    expect(configError(text).message).toMatch(message);
  });
});

describe("helpers", () => {
  it("roundHalfEven rounds halves to the even neighbour, as numpy", () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, -0, -2, 2, 3]);
  });

  it("typeCounts gives round(n·p) to all but the last type, the remainder to the last", () => {
    expect(typeCounts(5000, [0.8, 0.2])).toEqual([4000, 1000]);
    // 5·0.5 = 2.5 rounds to 2 (half to even), the last type takes 3.
    expect(typeCounts(5, [0.5, 0.5])).toEqual([2, 3]);
    expect(typeCounts(10, [0.25, 0.25, 0.5])).toEqual([2, 2, 6]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// CLI: exit code 2, one stderr line naming the key, nothing written.

/**
 * Whether dist/ lacks, or has an older build of, any module the coordinator CLI loads (its relative imports,
 * followed from src/cli/snn-coord.ts).
 */
function staleDist(): boolean {
  const seen = new Set<string>();
  const queue = [join(ROOT, "src/cli/snn-coord.ts")];
  while (queue.length) {
    const ts = queue.pop()!;
    if (seen.has(ts) || !existsSync(ts)) continue;
    seen.add(ts);
    const source = readFileSync(ts, "utf8");
    for (const m of source.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)\.js"/g)) queue.push(join(dirname(ts), `${m[1]}.ts`));
  }
  return [...seen].some((ts) => {
    const js = join(ROOT, "dist", relative(join(ROOT, "src"), ts)).replace(/\.ts$/, ".js");
    return !existsSync(js) || statSync(js).mtimeMs < statSync(ts).mtimeMs;
  });
}

describe("snn-coord with invalid parameters", () => {
  let dir: string;
  const cli = join(ROOT, "dist/cli/snn-coord.js");

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "snn-config-test-"));
    if (staleDist()) {
      try {
        // --noCheck: the same JavaScript as a full build in a fraction of the time (type checking is the build's job).
        execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.json"), "--noCheck"], {
          cwd: ROOT,
          stdio: "pipe",
        });
      } catch {
        // Type errors in files being edited elsewhere: tsc still emits JavaScript.
      }
    }
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: [string, string, RegExp][] = [
    ["dt too large", edit(DEFAULT_TEXT, "dt = 1.0 ", "dt = 3 "), /simulation\.dt/],
    ["unknown nested key", edit(DEFAULT_TEXT, "epochs = 500", "epochs = 500\nepoch = 500"), /simulation\.epoch: unknown key/],
    ["epochs not a multiple", edit(DEFAULT_TEXT, "epochs = 500", "epochs = 502"), /simulation\.epochs/],
  ];

  it.each(cases)("%s: exit code 2, one line on stderr, no output directory", (name, text, key) => {
    const params = join(dir, `${name.replace(/\W+/g, "-")}.toml`);
    writeFileSync(params, text);
    const out = join(dir, `out-${name.replace(/\W+/g, "-")}`);
    const r = spawnSync(process.execPath, [cli, params, "--output", out, "--metrics-port", "0"], { cwd: dir, encoding: "utf8", timeout: 30_000 });
    expect(r.status).toBe(2);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(key);
    expect(lines[0]).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
    expect(existsSync(out)).toBe(false);
    // Nothing else was written next to the parameters either (e.g. a default runs/ directory).
    expect(existsSync(join(dir, "runs"))).toBe(false);
  });

  it("a missing parameters file: exit code 2, one line naming the file", () => {
    const params = join(dir, "does-not-exist.toml");
    const out = join(dir, "out-missing");
    const r = spawnSync(process.execPath, [cli, params, "--output", out, "--metrics-port", "0"], { cwd: dir, encoding: "utf8", timeout: 30_000 });
    expect(r.status).toBe(2);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("does-not-exist.toml");
    expect(existsSync(out)).toBe(false);
  });
});
