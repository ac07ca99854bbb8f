/**
 * Parameter overrides and studies through the real processes: `snn-coord --set KEY=VALUE` (applied before the schema
 * validates, recorded in metadata.json, re-applied on resume) and `snn-study` (a grid of snn-coord runs, P at once,
 * resumable, summarised in study.csv, study.md and study.png).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { beforeAll, describe, expect, it } from "vitest";
import { metricsColumns, MetricsCsv } from "../src/io/run-dir.js";
import { formatValue, parseValue, splitValues } from "../src/model/overrides.js";
import { expandGrid } from "../src/training/study.js";
import { studyMarkdown, studyTable } from "../src/report/study-report.js";
import { studyFigureSpec } from "../src/report/figures/study-figure.js";
import { coord, COORD, ensureBuilt, metricRows, ROOT, smallParams, start, tempDir, waitFor } from "./helpers/runs.js";

const STUDY = join(ROOT, "dist/cli/snn-study.js");

beforeAll(() => ensureBuilt());

async function study(args: string[], timeoutMs = 120_000): Promise<{ code: number; output: string }> {
  const p = start(STUDY, args);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
  const code = await p.exit;
  clearTimeout(timer);
  return { code, output: p.output() };
}

const meta = (dir: string) => JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));

/** study.csv as rows of fields (the tests' values hold no quoted commas), without the wall-clock columns. */
function csvRows(dir: string, o: { wallClock?: boolean } = {}): string[][] {
  const [header, ...rows] = readFileSync(join(dir, "study.csv"), "utf8").trim().split("\n").map((l) => l.split(","));
  const keep = header.map((c, i) => (!o.wallClock && (c === "wall_time_s" || c === "epochs_per_s") ? -1 : i)).filter((i) => i >= 0);
  return [header, ...rows].map((r) => keep.map((i) => r[i]));
}

describe("override values and grid points", () => {
  it("parses values as TOML, a bare word as a string; splits lists at top-level commas", () => {
    expect([parseValue("0.1"), parseValue('"log"'), parseValue("log"), parseValue("[0.1, 0.2]"), parseValue("true"), parseValue("5")]).toEqual([0.1, "log", "log", [0.1, 0.2], true, 5]);
    expect(splitValues('0.05,[1, 2], "a,b" ,x')).toEqual(["0.05", "[1, 2]", '"a,b"', "x"]);
    for (const v of [0.1, 1e-7, "log", [0.5, 2], true, { excitatory: 0.5 }]) expect(parseValue(formatValue(v))).toEqual(v);
  });

  it("names points readably and safely, the same for the same grid, distinct where sanitising would merge them", () => {
    const grid = [
      { key: "student.noise_frac", values: [0.05, 0.1], texts: ["0.05", "0.1"] },
      { key: "hyperparameters.parameterisation", values: ["linear", "log"], texts: ["linear", "log"] },
    ];
    const names = expandGrid(grid).map((p) => p.name);
    expect(names).toEqual([
      "student.noise_frac=0.05,hyperparameters.parameterisation=linear",
      "student.noise_frac=0.05,hyperparameters.parameterisation=log",
      "student.noise_frac=0.1,hyperparameters.parameterisation=linear",
      "student.noise_frac=0.1,hyperparameters.parameterisation=log",
    ]);
    expect(expandGrid(grid).map((p) => p.name)).toEqual(names);
    const merged = expandGrid([{ key: "wandb.name", values: ["a b", "a/b", "a_b"], texts: ['"a b"', '"a/b"', "a_b"] }]).map((p) => p.name);
    expect(new Set(merged).size).toBe(3);
    for (const n of merged) expect(n).toMatch(/^[A-Za-z0-9._=+,-]+$/);
  });

  it("tabulates columns some points lack as empty, and writes numbers to 4 significant digits in study.md", () => {
    const t = studyTable(["k"], [
      { values: [1], status: "completed", wallTimeS: 2.5, metrics: { columns: ["epoch", "total_loss", "wall_time_s"], values: ["6", "1.23456789", "9"] } },
      { values: [2], status: "failed", wallTimeS: 1, metrics: { columns: ["epoch", "total_loss", "scaling_factor/E_E/ratio"], values: ["3", "nan", "0.5"] } },
      { values: [3], status: "not run", wallTimeS: null, metrics: null },
    ]);
    expect(t.header).toEqual(["k", "status", "wall_time_s", "epoch", "total_loss", "scaling_factor/E_E/ratio"]);
    expect(t.rows).toEqual([
      ["1", "completed", "2.5", "6", "1.23456789", ""],
      ["2", "failed", "1", "3", "nan", "0.5"],
      ["3", "not run", "", "", "", ""],
    ]);
    expect(studyMarkdown(t, "s").split("\n")[4]).toBe("| 1 | completed | 2.5 | 6 | 1.235 |  |");
  });

  it("study.png has a panel for losses, rates per cell type and ratios (dashed line at 1), found by column name", () => {
    const header = ["k", "status", "wall_time_s", "total_loss", "firing_rate/E/mean", "firing_rate/I/mean", "scaling_factor/E_E/ratio", "scaling_factor/E_I/ratio"];
    const spec = studyFigureSpec(["k"], { header, rows: [["0.1", "completed", "1", "2", "0.5", "2", "0.9", "1.1"], ["0.2", "completed", "1", "3", "0.6", "2.1", "1", "1.2"]] }) as unknown as {
      vconcat: { title: string; layer: { mark: { type: string }; data: { values: Record<string, unknown>[] } }[] }[];
    };
    expect(spec.vconcat.map((p) => p.title)).toEqual([expect.stringMatching(/loss/), expect.stringMatching(/firing rate/), expect.stringMatching(/ratio/)]);
    expect(new Set(spec.vconcat[1].layer[0].data.values.map((v) => v.series))).toEqual(new Set(["E", "I"]));
    const ratios = spec.vconcat[2].layer;
    expect(ratios[0].mark.type).toBe("rule");
    expect(ratios[0].data.values).toEqual([{ y: 1 }]);
    expect(new Set(ratios[1].data.values.map((v) => v.series))).toEqual(new Set(["scaling_factor/E_E", "scaling_factor/E_I"]));
  });
});

describe("snn-coord --set", () => {
  it("changes the effective parameters and is recorded as an override; parameters.toml stays the file's copy", async () => {
    const params = smallParams(tempDir(), { epochs: 6, accumulation: 3 });
    const dir = join(tempDir(), "run");
    const sets = ["--set", "hyperparameters.learning_rate=0.02", "--set", "hyperparameters.parameterisation=log", "--set", "simulation.seed=7"];
    const r = await coord([params, "--workers", "1", "--output", dir, ...sets]);
    expect(r.code, r.output).toBe(0);
    const m = meta(dir);
    expect(m.overrides).toEqual({ "hyperparameters.learning_rate": 0.02, "hyperparameters.parameterisation": "log", "simulation.seed": 7 });
    expect(m.effective_parameters.hyperparameters.learning_rate).toBe(0.02);
    expect(m.effective_parameters.hyperparameters.parameterisation).toBe("log");
    expect(m.effective_parameters.simulation.seed).toBe(7);
    expect(MetricsCsv.read(join(dir, "metrics.csv")).map((row) => row.learning_rate)).toEqual([0.02, 0.02]);
    expect(readFileSync(join(dir, "parameters.toml"), "utf8")).toBe(readFileSync(params, "utf8"));
    // --print-config applies them too.
    const printed = execFileSync(process.execPath, [COORD, params, "--print-config", ...sets], { cwd: ROOT }).toString();
    expect(parseToml(printed)).toEqual(m.effective_parameters);
    // --epochs K is --set simulation.epochs=K.
    const viaSet = execFileSync(process.execPath, [COORD, params, "--print-config", "--set", "simulation.epochs=12"], { cwd: ROOT }).toString();
    expect(viaSet).toBe(execFileSync(process.execPath, [COORD, params, "--print-config", "--epochs", "12"], { cwd: ROOT }).toString());
  });

  it("an unknown key or a value of the wrong type: one line naming the key and --set, exit 2, no run directory", async () => {
    const params = smallParams(tempDir(), { epochs: 6, accumulation: 3 });
    const cases: [string, RegExp][] = [
      ["simulation.epochz=6", /^snn-coord: simulation\.epochz: unknown key.* \(from --set simulation\.epochz=6\)$/],
      ["simulaton.epochs=6", /^snn-coord: simulaton: unknown key.* \(from --set simulaton\.epochs=6\)$/],
      ["hyperparameters.learning_rate=fast", /^snn-coord: hyperparameters\.learning_rate: expected a finite number, got "fast" \(from --set hyperparameters\.learning_rate=fast\)$/],
      ["simulation.epochs=7", /^snn-coord: simulation\.epochs: must be a multiple of simulation\.accumulation_interval \(3\), got 7 \(from --set simulation\.epochs=7\)$/],
      ["learning_rate", /^snn-coord: --set learning_rate: expected KEY=VALUE/],
    ];
    for (const [set, message] of cases) {
      const dir = join(tempDir(), "run");
      const r = await coord([params, "--workers", "1", "--output", dir, "--set", set]);
      expect(r.code, r.output).toBe(2);
      expect(r.output.trim()).toMatch(message);
      expect(existsSync(dir)).toBe(false);
    }
  });

  it("a resume applies the recorded values again; a --set that differs is refused; epochs may be raised", async () => {
    const params = smallParams(tempDir(), { epochs: 6, accumulation: 3 });
    const dir = join(tempDir(), "run");
    const lr = ["--set", "hyperparameters.learning_rate=0.02"];
    expect((await coord([params, "--workers", "1", "--output", dir, ...lr, "--epochs", "6"])).code).toBe(0);
    const before = readFileSync(join(dir, "metrics.csv"), "utf8");
    const conflict = await coord([params, "--workers", "1", "--output", dir, "--resume", "auto", "--set", "hyperparameters.learning_rate=0.03"]);
    expect(conflict.code, conflict.output).toBe(2);
    expect(conflict.output.trim()).toMatch(/^snn-coord: --set hyperparameters\.learning_rate=0\.03: a resumed run keeps the parameters it was started with \(its overrides: hyperparameters\.learning_rate=0\.02, simulation\.epochs=6\)/);
    const added = await coord([params, "--workers", "1", "--output", dir, "--resume", "auto", "--set", "simulation.seed=3"]);
    expect(added.code, added.output).toBe(2);
    expect(added.output.trim()).toMatch(/^snn-coord: --set simulation\.seed=3: a resumed run keeps/);
    expect(readFileSync(join(dir, "metrics.csv"), "utf8")).toBe(before);

    const resumed = await coord([params, "--workers", "1", "--output", dir, "--resume", "auto", "--set", "simulation.epochs=12"]);
    expect(resumed.code, resumed.output).toBe(0);
    expect(meta(dir).overrides).toEqual({ "hyperparameters.learning_rate": 0.02, "simulation.epochs": 12 });
    // Exactly the run started with both values.
    const straight = join(tempDir(), "straight");
    expect((await coord([params, "--workers", "1", "--output", straight, ...lr, "--epochs", "12"])).code).toBe(0);
    expect(metricRows(dir)).toEqual(metricRows(straight));
    const same = await coord([params, "--workers", "1", "--output", dir, "--resume", "auto", ...lr]);
    expect(same.code, same.output).toBe(0);
    expect(same.output).toMatch(/continuing to --epochs 12, as the run was started with/);
  });
});

describe("snn-study", () => {
  const grid = ["--grid", "hyperparameters.learning_rate=0.01,0.02,0.03"];

  it("runs a grid P at once and writes study.csv, study.md and study.png; a rerun skips every point", async () => {
    const params = smallParams(tempDir(), { epochs: 6, accumulation: 3 });
    const dir = join(tempDir(), "study");
    const r = await study([params, ...grid, "--output", dir, "--parallel", "2", "--no-figures"]);
    expect(r.code, r.output).toBe(0);
    const names = ["hyperparameters.learning_rate=0.01", "hyperparameters.learning_rate=0.02", "hyperparameters.learning_rate=0.03"];
    for (const n of names) expect(r.output).toMatch(new RegExp(`\\[snn-study\\] ${n.replace(/\./g, "\\.")}: completed in [\\d.]+ s, total loss [\\d.]+`));
    // The children's output is in their run directories, not on the study's console.
    expect(r.output).not.toMatch(/Epoch 3\/6/);
    for (const n of names) expect(readFileSync(join(dir, n, "console.log"), "utf8")).toMatch(/Epoch 6\/6:/);

    const [header, ...rows] = csvRows(dir, { wallClock: true });
    const metrics = metricsColumns(["excitatory", "inhibitory"]).filter((c) => c !== "wall_time_s");
    expect(header).toEqual(["hyperparameters.learning_rate", "status", "wall_time_s", ...metrics]);
    expect(rows.map((row) => row[0])).toEqual(["0.01", "0.02", "0.03"]);
    rows.forEach((row, i) => {
      expect(row[1]).toBe("completed");
      expect(Number(row[2])).toBeGreaterThan(0);
      const lines = readFileSync(join(dir, names[i], "metrics.csv"), "utf8").trim().split("\n");
      const cols = lines[0].split(",");
      const last = lines[lines.length - 1].split(",");
      for (const c of metrics) expect(row[header.indexOf(c)], c).toBe(last[cols.indexOf(c)]);
      expect(row[header.indexOf("learning_rate")]).toBe(row[0]);
    });
    const md = readFileSync(join(dir, "study.md"), "utf8").trim().split("\n");
    expect(md[2]).toBe(`| ${header.join(" | ")} |`);
    expect(md.slice(4)).toHaveLength(3);
    expect(md[4]).toMatch(/^\| 0\.01 \| completed \| /);
    const png = readFileSync(join(dir, "study.png"));
    expect(png.subarray(0, 8)).toEqual(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]));
    expect(png.readUInt32BE(16)).toBeGreaterThan(300);
    expect(JSON.parse(readFileSync(join(dir, "study.json"), "utf8")).grid).toEqual([{ key: "hyperparameters.learning_rate", values: [0.01, 0.02, 0.03] }]);

    const csv = readFileSync(join(dir, "study.csv"), "utf8");
    const again = await study([params, ...grid, "--output", dir, "--parallel", "2", "--no-figures"]);
    expect(again.code, again.output).toBe(0);
    expect(again.output.match(/completed earlier; skipped/g)).toHaveLength(3);
    expect(readFileSync(join(dir, "study.csv"), "utf8")).toBe(csv);
  });

  it("a two-key grid: one column per key, one row per point, each point's values in its run", async () => {
    const params = smallParams(tempDir(), { epochs: 3, accumulation: 3 });
    const dir = join(tempDir(), "study");
    const r = await study([params, "--grid", "hyperparameters.parameterisation=linear,log", "--grid", "simulation.seed=5", "--output", dir, "--set", "hyperparameters.learning_rate=0.02"]);
    expect(r.code, r.output).toBe(0);
    const [header, ...rows] = csvRows(dir);
    expect(header.slice(0, 3)).toEqual(["hyperparameters.parameterisation", "simulation.seed", "status"]);
    expect(rows.map((row) => row.slice(0, 3))).toEqual([
      ["linear", "5", "completed"],
      ["log", "5", "completed"],
    ]);
    const m = meta(join(dir, "hyperparameters.parameterisation=log,simulation.seed=5"));
    expect(m.overrides).toEqual({ "hyperparameters.learning_rate": 0.02, "hyperparameters.parameterisation": "log", "simulation.seed": 5 });
  });

  it("interrupted (SIGINT) and run again, resumes and ends with the study an uninterrupted one writes", async () => {
    const params = smallParams(tempDir(), { epochs: 6, accumulation: 3 });
    const args = (dir: string) => [params, ...grid, "--output", dir, "--parallel", "2", "--epochs", "1200", "--no-figures"];
    const dir = join(tempDir(), "study");
    const p = start(STUDY, args(dir));
    const first = join(dir, "hyperparameters.learning_rate=0.01", "metrics.csv");
    await waitFor(() => existsSync(first) && readFileSync(first, "utf8").trim().split("\n").length > 3, 60_000, "the first point's updates", p.output);
    p.child.kill("SIGINT");
    expect(await p.exit, p.output()).toBe(130);
    expect(p.output()).toMatch(/hyperparameters\.learning_rate=0\.01: interrupted in/);
    expect(existsSync(join(dir, "study.csv"))).toBe(false);
    expect(meta(join(dir, "hyperparameters.learning_rate=0.01")).status).toBe("interrupted");

    const resumed = await study(args(dir));
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.output).toMatch(/hyperparameters\.learning_rate=0\.01: interrupted; resuming/);
    const straight = join(tempDir(), "straight");
    const r = await study(args(straight));
    expect(r.code, r.output).toBe(0);
    expect(csvRows(dir)).toEqual(csvRows(straight));
    // Both sessions of the interrupted point are in its console.log.
    expect(readFileSync(join(dir, "hyperparameters.learning_rate=0.01", "console.log"), "utf8")).toMatch(/interrupted at epoch[\s\S]*resuming from epoch/);
  }, 180_000);

  it("a failed point is reported (exit 1) and rerun only with --retry-failed, its earlier log kept", async () => {
    const params = smallParams(tempDir(), { epochs: 6, accumulation: 3 });
    const dir = join(tempDir(), "study");
    // The original's reset-gate gradient with a broad surrogate overflows (test/training-cli.test.ts): exit code 3.
    const sets = ["--set", "hyperparameters.detach_reset=false", "--set", "simulation.chunk_steps=50", "--set", "hyperparameters.max_skipped_updates=2"];
    const args = [params, "--grid", "hyperparameters.surrgrad_scale=0.5,15", ...sets, "--output", dir, "--no-figures"];
    const r = await study(args);
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/hyperparameters\.surrgrad_scale=0\.5: failed in [\d.]+ s, exit 3: snn-coord: training diverged/);
    expect(csvRows(dir).slice(1).map((row) => row.slice(0, 2))).toEqual([
      ["0.5", "failed"],
      ["15", "completed"],
    ]);
    const again = await study(args);
    expect(again.code, again.output).toBe(1);
    expect(again.output).toMatch(/surrgrad_scale=0\.5: failed earlier \(training diverged.*\); not rerun \(--retry-failed reruns it\)/);
    expect(again.output).not.toMatch(/starting/);
    const retried = await study([...args, "--retry-failed"]);
    expect(retried.code, retried.output).toBe(1);
    expect(retried.output).toMatch(/surrgrad_scale=0\.5: failed earlier; rerunning it/);
    const log = readFileSync(join(dir, "hyperparameters.surrgrad_scale=0.5", "console.log"), "utf8");
    expect(log.match(/snn-coord\.js .* --force/g)).toHaveLength(1);
    expect(log.match(/training diverged/g)).toHaveLength(2);
  });

  it("a bad grid key or value: one line naming it, exit 2, nothing created", async () => {
    const params = smallParams(tempDir(), { epochs: 6, accumulation: 3 });
    const cases: [string[], RegExp][] = [
      [["--grid", "simulation.bogus=1,2"], /^snn-study: simulation\.bogus: unknown key.* \(from --grid simulation\.bogus=1\)$/],
      [["--grid", "hyperparameters.learning_rate=0.01,fast"], /^snn-study: hyperparameters\.learning_rate: expected a finite number, got "fast" \(from --grid hyperparameters\.learning_rate=fast\)$/],
      [["--grid", "simulation.seed=1,2", "--set", "simulation.seed=3"], /^snn-study: --grid simulation\.seed: also given by --set/],
      [["--grid", "simulation.seed="], /^snn-study: --grid simulation\.seed=: expected KEY=V1,V2,\.\.\./],
    ];
    for (const [a, message] of cases) {
      const dir = join(tempDir(), "study");
      const r = await study([params, ...a, "--output", dir]);
      expect(r.code, r.output).toBe(2);
      expect(r.output.trim()).toMatch(message);
      expect(existsSync(dir)).toBe(false);
    }
  });

  it("another grid or parameters file in a study's directory is refused, exit 2, nothing overwritten", async () => {
    const params = smallParams(tempDir(), { epochs: 3, accumulation: 3 });
    const dir = join(tempDir(), "study");
    expect((await study([params, "--grid", "simulation.seed=1", "--output", dir, "--no-figures"])).code).toBe(0);
    const files = () => Object.fromEntries(["study.json", "study.csv", "study.md"].map((f) => [f, readFileSync(join(dir, f), "utf8")]));
    const before = files();
    const other = await study([params, "--grid", "simulation.seed=1,2", "--output", dir]);
    expect(other.code, other.output).toBe(2);
    expect(other.output.trim()).toMatch(/^snn-study: .*: holds another study \(grid: /);
    const otherParams = smallParams(tempDir(), { epochs: 6, accumulation: 3 });
    const otherFile = await study([otherParams, "--grid", "simulation.seed=1", "--output", dir]);
    expect(otherFile.code, otherFile.output).toBe(2);
    expect(otherFile.output.trim()).toMatch(/holds another study \(params: /);
    expect(files()).toEqual(before);
    expect(readdirSync(dir).sort()).toEqual(["simulation.seed=1", "study.csv", "study.json", "study.md", "study.png"]);
  });
});
