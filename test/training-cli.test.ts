/**
 * The training guards and options through the real coordinator and worker processes: a run that diverges stops with
 * one message, exit code 3, status "failed" and a usable checkpoint_latest; bad values of the new keys and a
 * checkpoint of another parameterisation are refused before anything is written; burn-in keeps results identical
 * whatever the number of workers.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readCheckpoint } from "../src/io/checkpoint.js";
import { MetricsCsv } from "../src/io/run-dir.js";
import { coord, COORD, ensureBuilt, finalWeights, metricRows, smallParams, start, tempDir, waitFor } from "./helpers/runs.js";

beforeAll(() => ensureBuilt());

/**
 * smallParams with keys set: `simulation` and `hyperparameters` hold "key = value" lines, each replacing that key's
 * line where the file has one and added at the top of its table otherwise.
 */
function params(dir: string, o: { epochs?: number; simulation?: string; hyperparameters?: string } = {}): string {
  const file = smallParams(dir, { epochs: o.epochs ?? 6, accumulation: 3, checkpoint: 6 });
  let text = readFileSync(file, "utf8");
  for (const table of ["simulation", "hyperparameters"] as const) {
    for (const line of (o[table] ?? "").split("\n").filter(Boolean)) {
      const key = line.split("=")[0].trim();
      const existing = new RegExp(`^${key} = .*$`, "m");
      text = existing.test(text) ? text.replace(existing, line) : text.replace(new RegExp(`^\\[${table}\\]$`, "m"), `[${table}]\n${line}`);
    }
  }
  writeFileSync(file, text);
  return file;
}

describe("a run whose updates are all non-finite", () => {
  it("stops after max_skipped_updates with one message, exit code 3, status failed and the last good state", async () => {
    // The original's reset-gate gradient with a broad surrogate (λ = 0.5) overflows float32 within a 50-step chunk
    // (over 25-step chunks it reaches 1e28 but stays finite, and clipping copes).
    const dir = tempDir();
    const out = join(dir, "run");
    const r = await coord([params(dir, { epochs: 30, simulation: "chunk_steps = 50", hyperparameters: "surrgrad_scale = 0.5\ndetach_reset = false\nmax_skipped_updates = 2" }), "--workers", "1", "--output", out]);
    expect(r.code, r.output).toBe(3);
    expect(r.output.match(/Skipped update \((recurrent|feedforward) gradient is not finite \(epochs \d+–\d+\)\): weights and optimizer unchanged/g)).toHaveLength(2);
    const last = r.output.trim().split("\n").pop()!;
    expect(last).toBe(
      "snn-coord: training diverged: 2 consecutive updates skipped (epochs 1–6; last: recurrent gradient is not finite (epochs 4–6)); " +
        "checkpoint_latest holds epoch 0, before the first of them (hyperparameters.max_skipped_updates = 2)",
    );
    expect(r.output).not.toMatch(/\n\s+at /);
    const meta = JSON.parse(readFileSync(join(out, "metadata.json"), "utf8"));
    expect(meta.status).toBe("failed");
    expect(meta.error).toBe(last.replace("snn-coord: ", ""));
    const latest = readCheckpoint(join(out, "checkpoints/checkpoint_latest.safetensors"), null, null).state;
    expect(latest.epoch).toBe(0);
    expect(latest.adam.step).toBe(0);
    expect(latest.recWeight.every(Number.isFinite)).toBe(true);
    expect(existsSync(join(out, "checkpoints/checkpoint_best.safetensors"))).toBe(false);
    expect(MetricsCsv.read(join(out, "metrics.csv")).map((row) => row.skipped_updates)).toEqual([1, 2]);
  });

  it("trains normally with the reset gate detached (detach_reset = true), same surrogate", async () => {
    const dir = tempDir();
    const out = join(dir, "run");
    const r = await coord([params(dir, { simulation: "chunk_steps = 50", hyperparameters: "surrgrad_scale = 0.5\ndetach_reset = true" }), "--workers", "1", "--output", out]);
    expect(r.code, r.output).toBe(0);
    const rows = MetricsCsv.read(join(out, "metrics.csv"));
    expect(rows.map((row) => row.skipped_updates)).toEqual([0, 0]);
    for (const row of rows) expect(Number.isFinite(row.grad_norm)).toBe(true);
  });
});

describe("bad values of the training keys", () => {
  const cases: [string, { simulation?: string; hyperparameters?: string }, RegExp][] = [
    ["max_skipped_updates < 1", { hyperparameters: "max_skipped_updates = 0" }, /^snn-coord: hyperparameters\.max_skipped_updates: must be ≥ 1, got 0$/],
    ["unknown parameterisation", { hyperparameters: 'parameterisation = "exp"' }, /^snn-coord: hyperparameters\.parameterisation: must be one of linear, log, got "exp"$/],
    ["unknown lr_schedule", { hyperparameters: 'lr_schedule = "linear"' }, /^snn-coord: hyperparameters\.lr_schedule: must be one of constant, cosine, step, got "linear"$/],
    ["warm-up as long as the run", { hyperparameters: "warmup_updates = 2" }, /^snn-coord: hyperparameters\.warmup_updates: must be shorter than the run's 2 updates/],
    ["negative burn-in", { simulation: "burn_in_epochs = -3" }, /^snn-coord: simulation\.burn_in_epochs: must be ≥ 0, got -3$/],
    ["burn-in covering every epoch", { simulation: "burn_in_epochs = 6" }, /^snn-coord: simulation\.burn_in_epochs: must be below simulation\.epochs \(6\)/],
    ["a schedule key without its schedule", { hyperparameters: 'lr_schedule = "constant"\nlr_min = 1e-4' }, /^snn-coord: hyperparameters\.lr_min: only used with lr_schedule = "cosine"/],
  ];
  for (const [name, o, message] of cases) {
    it(`${name}: one message, exit code 2, nothing written`, async () => {
      const dir = tempDir();
      const out = join(dir, "run");
      const r = await coord([params(dir, o), "--workers", "1", "--output", out]);
      expect(r.code, r.output).toBe(2);
      expect(r.output.trim()).toMatch(message);
      expect(r.output.trim().split("\n")).toHaveLength(1);
      expect(existsSync(out)).toBe(false);
    });
  }

  it("sizes a worker or the coordinator cannot hold: refused with the computed figure before anything starts", async () => {
    for (const [key, line, message] of [
      ["simulation", "batch_size = 100000", /^snn-coord: simulation\.batch_size: an epoch of 100000 trials × 50 steps of 150 neurons needs [\d.]+ GiB of worker memory .* above the 4 GiB/],
      ["simulation", "chunk_steps = 1000000000", /^snn-coord: simulation\.batch_size: an epoch of 4 trials × 2000000000 steps .* above the 4 GiB/],
      ["simulation", "accumulation_interval = 3000000\ncheckpoint_interval = 3000000", /^snn-coord: simulation\.accumulation_interval: 3000000 streams of 4 trials need [\d.]+ GiB of coordinator memory/],
    ] as const) {
      const dir = tempDir();
      const out = join(dir, "run");
      const file = params(dir, { [key]: line, epochs: 6000000 } as never);
      const r = await coord([file, "--workers", "1", "--output", out]);
      expect(r.code, r.output).toBe(2);
      expect(r.output.trim()).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
  });

  it("--epochs that leaves no update after burn-in is refused the same way", async () => {
    const dir = tempDir();
    const r = await coord([params(dir, { simulation: "burn_in_epochs = 3" }), "--workers", "1", "--output", join(dir, "run"), "--epochs", "3"]);
    expect(r.code, r.output).toBe(2);
    expect(r.output.trim()).toBe("snn-coord: simulation.burn_in_epochs: must be below --epochs (3) so that some epochs train, got 3");
  });

  it("resuming under another parameterisation names the key and changes nothing", async () => {
    const dir = tempDir();
    const out = join(dir, "run");
    expect((await coord([params(dir), "--workers", "1", "--output", out])).code).toBe(0);
    const before = ["metrics.csv", "metadata.json", "checkpoints/checkpoint_latest.safetensors"].map((f) => readFileSync(join(out, f)));
    const r = await coord([params(dir, { hyperparameters: 'parameterisation = "log"' }), "--workers", "1", "--output", out, "--epochs", "12", "--resume", "auto"]);
    expect(r.code, r.output).toBe(2);
    expect(r.output.trim()).toMatch(/^snn-coord: .*checkpoint_latest\.safetensors: the checkpoint was trained with hyperparameters\.parameterisation = "linear", these parameters say "log"/);
    ["metrics.csv", "metadata.json", "checkpoints/checkpoint_latest.safetensors"].forEach((f, k) => expect(readFileSync(join(out, f)).equals(before[k])).toBe(true));
  });
});

describe("burn-in, log parameterisation and a schedule across workers", () => {
  it("give bit-identical weights and metrics with 1 and 2 workers", async () => {
    const dir = tempDir();
    const file = params(dir, {
      epochs: 12,
      simulation: "burn_in_epochs = 3",
      hyperparameters: 'parameterisation = "log"\nlr_schedule = "cosine"\nwarmup_updates = 1\ndetach_reset = true',
    });
    const runs = [join(dir, "one"), join(dir, "two")];
    for (const [k, w] of ["1", "2"].entries()) {
      const r = await coord([file, "--workers", w, "--output", runs[k]]);
      expect(r.code, r.output).toBe(0);
    }
    const [a, b] = runs.map(finalWeights);
    for (const key of ["rec", "ff", "m", "v", "streams"] as const) expect(a[key].equals(b[key]), key).toBe(true);
    expect(metricRows(runs[1])).toEqual(metricRows(runs[0]));
    const rows = MetricsCsv.read(join(runs[0], "metrics.csv"));
    expect(rows.map((row) => row.step)).toEqual([0, 1, 2, 3]);
    expect(rows[0].learning_rate).toBe(0);
    const latest = readCheckpoint(join(runs[0], "checkpoints/checkpoint_latest.safetensors"), null, null);
    expect(latest.metadata.parameterisation).toBe("log");
    expect(latest.state.recWeight.every((w) => w > 0)).toBe(true);
  });

  it("resume under a schedule, burn-in and log parameterisation continues exactly (same --epochs)", async () => {
    const dir = tempDir();
    // Long enough that the SIGINT after the first update lands mid-run on a fast machine.
    const file = params(dir, {
      epochs: 300,
      simulation: "burn_in_epochs = 3",
      hyperparameters: 'parameterisation = "log"\nlr_schedule = "cosine"\nwarmup_updates = 1\ndetach_reset = true',
    });
    const straight = join(dir, "straight");
    expect((await coord([file, "--workers", "1", "--output", straight])).code).toBe(0);
    const resumed = join(dir, "resumed");
    const p = start(COORD, [file, "--workers", "1", "--output", resumed, "--metrics-port", "0"]);
    await waitFor(() => /Epoch 6\//.test(p.output()), 60_000, "the first update after burn-in");
    p.child.kill("SIGINT");
    expect(await p.exit, p.output()).toBe(130);
    const r = await coord([file, "--workers", "1", "--output", resumed, "--resume", "auto"]);
    expect(r.code, r.output).toBe(0);
    const [a, b] = [straight, resumed].map(finalWeights);
    for (const key of ["rec", "ff", "m", "v", "streams"] as const) expect(a[key].equals(b[key]), key).toBe(true);
    expect(metricRows(resumed)).toEqual(metricRows(straight));
  });
});
