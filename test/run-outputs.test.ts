/**
 * What a run leaves behind, from real processes: figures for every plotting epoch, the offline W&B run, metadata,
 * and checkpoints; and that training on a small network actually fits.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { beforeAll, describe, expect, it } from "vitest";
import { MetricsCsv } from "../src/io/run-dir.js";
import { recordType } from "../src/report/wandb-records.js";
import { readTransactionLog } from "../src/report/wandb-transaction-log.js";
import { coord, COORD, ensureBuilt, ROOT, smallParams, start, tempDir, waitFor, WORKER } from "./helpers/runs.js";

beforeAll(() => ensureBuilt());

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe("outputs of a run", () => {
  it("writes figures every accumulation interval, the W&B offline run, metadata and checkpoints", async () => {
    const params = smallParams(tempDir(), { epochs: 9, accumulation: 3, plotting: true });
    const dir = join(tempDir(), "out");
    const r = await coord([params, "--workers", "2", "--output", dir, "--wandb"]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/Saved plots to .*epoch_0009/);
    // --wandb without a key says where the offline run is and how to upload it.
    expect(r.output).toMatch(/W&B: logging offline\. The offline run \S+\/wandb\/offline-run-\S+ can be uploaded later with: wandb sync \S+ \(or, without the Python SDK: npx snn-wandb-sync \S+\)/);

    for (const epoch of ["0000", "0003", "0006", "0009"]) {
      const fdir = join(dir, "figures", `epoch_${epoch}`);
      const pngs = readdirSync(fdir).filter((f) => f.endsWith(".png"));
      expect(pngs).toEqual(expect.arrayContaining(["spike_raster.png", "firing_rate_distribution.png", "assembly_graph.png", "training_history.png"]));
      for (const f of pngs) {
        const bytes = readFileSync(join(fdir, f));
        expect(bytes.subarray(0, 8).equals(PNG)).toBe(true);
        expect(bytes.length).toBeGreaterThan(5000);
      }
      const html = readFileSync(join(fdir, "index.html"), "utf8");
      for (const f of pngs) expect(html).toContain(f);
    }

    const runs = readdirSync(join(dir, "wandb"));
    expect(runs.length).toBe(1);
    const files = join(dir, "wandb", runs[0], "files");
    const history = readFileSync(join(files, "wandb-history.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(history.map((h) => h._step)).toEqual([3, 6, 9]);
    const rows = MetricsCsv.read(join(dir, "metrics.csv"));
    history.forEach((h, i) => {
      expect(h["loss/total"]).toBe(rows[i].total_loss);
      expect(h["firing_rate/inhibitory/mean"]).toBe(rows[i]["firing_rate/inhibitory/mean"]);
      expect(h["membrane_ratio/excitatory/mean"]).toBe(rows[i]["membrane_ratio/excitatory/mean"]);
      expect(h["optimizer/learning_rate"]).toBe(rows[i].learning_rate);
      expect(h["optimizer/skipped_updates"]).toBe(0);
      // Each update's figures joined that update's W&B row.
      expect(h["plots/spike_raster"]?._type).toBe("image-file");
    });
    expect(readdirSync(join(files, "media", "images")).length).toBeGreaterThanOrEqual(3 * 16);

    // The SDK's transaction log, which `wandb sync` uploads: the same history, the console, the checkpoints.
    const runId = runs[0].split("-").at(-1);
    const log = readTransactionLog(join(dir, "wandb", runs[0], `run-${runId}.wandb`)).records;
    // The log writes NaN and ±Infinity as the Python SDK does, files/ as strings ("NaN").
    const value = (json: string) => (/^(NaN|-?Infinity)$/.test(json) ? json : JSON.parse(json));
    const logged = log.filter((rec) => rec.history).map((rec) => Object.fromEntries(rec.history!.item.map((i) => [i.key, value(i.value_json)])));
    expect(logged).toEqual(history);
    expect(recordType(log[0])).toBe("header");
    expect(log[1].run?.config?.update.find((i) => i.key === "overrides")).toBeDefined();
    expect(log.filter((rec) => rec.files).flatMap((rec) => rec.files!.files.map((f) => f.path))).toEqual(expect.arrayContaining(history.map((h) => h["plots/spike_raster"].path)));
    const consoleText = log.flatMap((rec) => (rec.output_raw ? [rec.output_raw.line] : [])).join("");
    expect(consoleText).toContain("Saved plots to");
    const artifacts = log.filter((rec) => rec.artifact).map((rec) => rec.artifact!);
    expect(artifacts.map((a) => a.aliases)).toEqual([["latest", "epoch-9"], ["best"]]);
    expect(artifacts[0].manifest.contents[0]).toMatchObject({ path: "checkpoint_latest.safetensors", size: readFileSync(join(dir, "checkpoints", "checkpoint_latest.safetensors")).length });
    const finalSummary = log.filter((rec) => rec.summary).at(-1)!.summary!.update;
    expect(JSON.parse(finalSummary.find((i) => i.key === "best/loss/total")!.value_json)).toBe(Math.min(...history.map((h) => h["loss/total"])));
    expect(log.at(-1)?.exit).toBeDefined();

    const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
    expect(meta.status).toBe("completed");
    expect(meta.workers).toBe(2);
    expect(typeof meta.end_time).toBe("string");
    expect(readFileSync(join(dir, "parameters.toml"), "utf8")).toBe(readFileSync(params, "utf8"));
    expect(existsSync(join(dir, "checkpoints/checkpoint_latest.safetensors"))).toBe(true);
    expect(existsSync(join(dir, "checkpoints/checkpoint_best.safetensors"))).toBe(true);

    // The end-of-run block agrees with metrics.csv: the best update, the last rates against their targets, where things are.
    const summary = r.output.slice(r.output.indexOf("Run completed"));
    expect(summary).toMatch(/^Run completed at epoch 9\/9: 9 epochs in [\d.]+ s \([\d.]+ epochs\/s\)/);
    const best = rows.reduce((a, b) => (b.total_loss < a.total_loss ? b : a));
    expect(summary).toContain(`Best total loss: ${best.total_loss.toFixed(6)} at epoch ${best.epoch}`);
    const last = rows[rows.length - 1];
    expect(summary).toContain(`Last total loss: ${last.total_loss.toFixed(6)}`);
    expect(summary).toContain(`inhibitory ${last["firing_rate/inhibitory/mean"].toFixed(2)} / 2 Hz`);
    expect(summary).toContain("Skipped updates: 0");
    expect(summary).toContain(`Figures: ${join(dir, "figures", "epoch_0009")}/index.html`);
  });

  it("records command-line overrides and the effective parameters; a resume keeps them unless given again", async () => {
    const params = smallParams(tempDir(), { epochs: 12, accumulation: 3 });
    const dir = join(tempDir(), "overrides");
    const r = await coord([params, "--workers", "1", "--output", dir, "--epochs", "6", "--wandb"]);
    expect(r.code, r.output).toBe(0);
    const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
    expect(meta.overrides).toEqual({ "simulation.epochs": 6 });
    expect(meta.effective_parameters.simulation.epochs).toBe(6);
    expect(meta.effective_parameters.simulation.batch_size).toBe(4);
    // The same parameters --print-config prints: every key, defaults filled in.
    const printed = execFileSync(process.execPath, [COORD, params, "--print-config", "--epochs", "6"], { cwd: ROOT }).toString();
    expect(meta.effective_parameters).toEqual(parseToml(printed));
    // parameters.toml stays the exact copy of the file.
    expect(readFileSync(join(dir, "parameters.toml"), "utf8")).toMatch(/^epochs = 12 /m);
    const [run] = readdirSync(join(dir, "wandb"));
    const config = JSON.parse(readFileSync(join(dir, "wandb", run, "files", "config.json"), "utf8"));
    expect(config.simulation.epochs).toBe(6);
    expect(config.overrides).toEqual({ "simulation.epochs": 6 });

    const resumed = await coord([params, "--workers", "1", "--output", dir, "--resume", "auto"]);
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.output).toMatch(/continuing to --epochs 6, as the run was started with/);
    expect(MetricsCsv.read(join(dir, "metrics.csv")).map((row) => row.epoch)).toEqual([3, 6]);
    const longer = await coord([params, "--workers", "1", "--output", dir, "--resume", "auto", "--epochs", "12"]);
    expect(longer.code, longer.output).toBe(0);
    expect(MetricsCsv.read(join(dir, "metrics.csv")).map((row) => row.epoch)).toEqual([3, 6, 9, 12]);
    expect(JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8")).overrides).toEqual({ "simulation.epochs": 12 });
  });

  it("with plotting.interval, writes figure sets at its multiples, for the untrained network and at the end", async () => {
    const params = smallParams(tempDir(), { epochs: 15, accumulation: 3, plotting: true });
    writeFileSync(params, readFileSync(params, "utf8").replace(/^enabled = true$/m, "enabled = true\ninterval = 6"));
    const dir = join(tempDir(), "out");
    const r = await coord([params, "--workers", "1", "--output", dir]);
    expect(r.code, r.output).toBe(0);
    expect(readdirSync(join(dir, "figures")).sort()).toEqual(["epoch_0000", "epoch_0006", "epoch_0012", "epoch_0015"]);
    expect(readdirSync(join(dir, "figures", "epoch_0012"))).toContain("spike_raster.png");
    expect(MetricsCsv.read(join(dir, "metrics.csv")).map((row) => row.epoch)).toEqual([3, 6, 9, 12, 15]);
  });

  it("refuses to overwrite a non-empty output directory without --resume or --force", async () => {
    const params = smallParams(tempDir(), { epochs: 3, accumulation: 3 });
    const dir = join(tempDir(), "out");
    expect((await coord([params, "--workers", "1", "--output", dir])).code).toBe(0);
    const before = readFileSync(join(dir, "metrics.csv"));
    const again = await coord([params, "--workers", "1", "--output", dir]);
    expect(again.code).toBe(2);
    expect(again.output).toMatch(/not empty; pass --resume .* or --force/);
    expect(readFileSync(join(dir, "metrics.csv")).equals(before)).toBe(true);
  });

  it("an --output that is or lies under a file, or in /proc, and a checkpoint that is not a regular file: one message, exit 2", async () => {
    const params = smallParams(tempDir(), { epochs: 3, accumulation: 3 });
    const file = join(tempDir(), "a-file");
    writeFileSync(file, "x");
    for (const [output, message] of [
      [file, /a-file: exists and is not a directory$/],
      [join(file, "run"), /a-file is a file, not a directory$/],
      ["/proc/snn-run", /not a place for a run's files \(a kernel file system\)/],
    ] as const) {
      const r = await coord([params, "--workers", "1", "--output", output]);
      expect(r.code, r.output).toBe(2);
      expect(r.output.trim()).toMatch(message);
      expect(r.output.trim().split("\n")).toHaveLength(1);
    }
    const fifo = join(tempDir(), "checkpoint.fifo");
    execFileSync("mkfifo", [fifo]);
    const r = await coord([params, "--workers", "1", "--output", join(tempDir(), "out"), "--resume", fifo], 20_000);
    expect(r.code, r.output).toBe(2);
    expect(r.output.trim()).toBe(`snn-coord: ${fifo}: not a regular file`);
  });

  it("--force removes only what a run writes, and refuses a directory holding anything else", async () => {
    const params = smallParams(tempDir(), { epochs: 3, accumulation: 3 });
    const dir = join(tempDir(), "out");
    expect((await coord([params, "--workers", "1", "--output", dir])).code).toBe(0);
    writeFileSync(join(dir, "notes.txt"), "mine");
    const refused = await coord([params, "--workers", "1", "--output", dir, "--force"]);
    expect(refused.code).toBe(2);
    expect(refused.output.trim()).toMatch(/--force removes only what a run writes .* also holds notes\.txt; nothing was removed$/);
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("mine");
    expect(existsSync(join(dir, "metrics.csv"))).toBe(true);
    rmSync(join(dir, "notes.txt"));
    // Temporary files of interrupted atomic writes belong to the run too, and are swept.
    writeFileSync(join(dir, ".metadata.json.tmp-123-abcdef"), "{");
    const forced = await coord([params, "--workers", "1", "--output", dir, "--force"]);
    expect(forced.code, forced.output).toBe(0);
    expect(MetricsCsv.read(join(dir, "metrics.csv"))).toHaveLength(1);
    expect(readdirSync(dir).filter((e) => e.includes(".tmp-"))).toEqual([]);
    // Resuming sweeps them from checkpoints/ as well.
    writeFileSync(join(dir, "checkpoints", ".checkpoint_latest.safetensors.tmp-99-0123ab"), "partial");
    const resumed = await coord([params, "--workers", "1", "--output", dir, "--resume", "auto", "--epochs", "6"]);
    expect(resumed.code, resumed.output).toBe(0);
    expect(readdirSync(join(dir, "checkpoints")).filter((e) => e.includes(".tmp-"))).toEqual([]);
  });
});

describe("metrics endpoints of concurrent runs", () => {
  it("local workers serve metrics on free ports by default, and each run publishes its targets for Prometheus", async () => {
    // Long enough to be still running when scraped on a fast machine (they are stopped with SIGINT below).
    const params = smallParams(tempDir(), { epochs: 6000, accumulation: 3 });
    const parent = tempDir();
    // No --metrics-port: both runs want 9464 and 9465 on; the second (or a run elsewhere) takes the next free ones.
    const a = start(COORD, [params, "--workers", "2", "--output", join(parent, "a"), "--no-figures"]);
    const b = start(COORD, [params, "--workers", "1", "--output", join(parent, "b"), "--no-figures"]);
    await waitFor(() => /Epoch 6\//.test(a.output()) && /Epoch 6\//.test(b.output()), 60_000, "both runs training", () => `${a.output()}\n${b.output()}`);
    const shared = join(parent, ".prometheus");
    const groups = (name: string) => JSON.parse(readFileSync(join(shared, `${name}.json`), "utf8")) as { targets: string[]; labels: Record<string, string> }[];
    const targets: Record<string, string[]> = {};
    for (const run of ["a", "b"])
      for (const job of ["coordinator", "workers"]) {
        const [g] = groups(`${run}-${job}`);
        expect(g.labels).toEqual({ job: job === "coordinator" ? "snn-coordinator" : "snn-worker", run });
        targets[`${run}-${job}`] = g.targets;
      }
    expect(targets["a-workers"]).toHaveLength(2);
    expect(targets["b-workers"]).toHaveLength(1);
    const all = Object.values(targets).flat();
    expect(new Set(all).size, "no two processes share a port").toBe(5);
    for (const [name, list] of Object.entries(targets))
      for (const t of list) {
        const body = await (await fetch(`http://${t}/metrics`)).text();
        expect(body, `${name} ${t}`).toMatch(name.endsWith("workers") ? /^snn_worker_epochs_computed_total \d+/m : /^snn_loss\{/m);
      }
    const meta = JSON.parse(readFileSync(join(parent, "a", "metadata.json"), "utf8"));
    expect(meta.workers_joined.map((w: { metrics_port: number }) => `localhost:${w.metrics_port}`).sort()).toEqual([...targets["a-workers"]].sort());
    expect(`localhost:${meta.metrics_port}`).toBe(targets["a-coordinator"][0]);
    a.child.kill("SIGINT");
    b.child.kill("SIGINT");
    expect(await a.exit, a.output()).toBe(130);
    expect(await b.exit, b.output()).toBe(130);
    // The run directory keeps its record; the discovery folder forgets ended runs.
    expect(JSON.parse(readFileSync(join(parent, "a", "prometheus-targets.json"), "utf8")).flatMap((g: { targets: string[] }) => g.targets)).toEqual([
      ...targets["a-coordinator"],
      ...targets["a-workers"],
    ]);
    expect(readdirSync(shared)).toEqual([]);
  });
});

describe("bad command lines", () => {
  it("an unknown flag or a bad value is one line naming it, exit code 2, for snn-coord and snn-worker", async () => {
    const c = await coord([join(ROOT, "parameters/quickstart.toml"), "--bogus"]);
    expect(c.code).toBe(2);
    expect(c.output.trim()).toBe("snn-coord: Unknown argument: bogus");
    for (const [flag, value, range] of [["--metrics-port", "70000", "0-65535"], ["--worker-metrics-port", "-3", "0-65534"], ["--worker-metrics-port", "65535", "0-65534"]]) {
      // Not coord(): it adds a --metrics-port of its own.
      const bad = start(COORD, [join(ROOT, "parameters/quickstart.toml"), "--workers", "2", flag, value]);
      expect(await bad.exit, bad.output()).toBe(2);
      expect(bad.output().trim()).toBe(`snn-coord: ${flag}: expected a port, ${range} (0 = off), got ${value}`);
    }
    const w = start(WORKER, ["--connect", "localhost:5555"]);
    expect(await w.exit).toBe(2);
    expect(w.output().trim()).toBe('snn-worker: --connect: expected tcp://HOST:PORT or ipc://PATH, got "localhost:5555"');
  });
});

describe("fitting", () => {
  it("the shipped quickstart settings lower the loss and move both rates toward their targets within 200 epochs", async () => {
    const dir = join(tempDir(), "fit");
    const r = await coord([join(ROOT, "parameters/quickstart.toml"), "--workers", "2", "--output", dir, "--epochs", "200", "--no-figures"], 240_000);
    expect(r.code, r.output).toBe(0);
    const rows = MetricsCsv.read(join(dir, "metrics.csv"));
    expect(rows.length).toBe(40);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // The untrained network in steady state (the burn-in's last intervals, epochs 30–50) against the last 3 updates.
    const early = rows.slice(6, 10);
    expect(early.every((x) => x.step === 0)).toBe(true);
    const late = rows.slice(-3);
    const at = (xs: typeof rows, k: string) => mean(xs.map((x) => x[k]));
    // Measured: total loss 27.2 → 7.7; I 14.0 → 7.6 Hz; E 0.06 → 0.62 Hz (the full 800 epochs reach the targets).
    expect(at(late, "total_loss")).toBeLessThan(0.4 * at(early, "total_loss"));
    expect(Math.abs(at(late, "firing_rate/inhibitory/mean") - 2)).toBeLessThan(0.6 * Math.abs(at(early, "firing_rate/inhibitory/mean") - 2));
    expect(Math.abs(at(late, "firing_rate/excitatory/mean") - 0.5)).toBeLessThan(0.5 * Math.abs(at(early, "firing_rate/excitatory/mean") - 0.5));
    expect(rows.every((x) => x.skipped_updates === 0)).toBe(true);
  });

});
