import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CoordinatorMetrics } from "../src/report/metrics.js";
import type { MetricsServer } from "../src/platform/metrics-server.js";
import { WorkerMetrics } from "../src/report/worker-metrics.js";
import { SHARED_TARGETS_DIR } from "../src/report/prometheus-targets.js";

const ROOT = join(import.meta.dirname, "..");
const DASHBOARD_DIR = join(ROOT, "deploy/grafana/dashboards");
const PROMETHEUS_YML = join(ROOT, "deploy/prometheus/prometheus.yml");

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  /** Metric family name -> type, from the # TYPE lines. */
  types: Map<string, string>;
  samples: Sample[];
}

/** Parses the Prometheus text exposition format (the subset prom-client writes). */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples };
}

function value(exp: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return exp.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

async function scrape(port: number, path = "/metrics"): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

/** The PromQL expression of every panel target in deploy/grafana/dashboards. */
function dashboardExpressions(): string[] {
  const exprs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === "object") {
      for (const [key, child] of Object.entries(node)) {
        if (key === "expr" && typeof child === "string") exprs.push(child);
        else walk(child);
      }
    }
  };
  for (const file of readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json"))) {
    walk(JSON.parse(readFileSync(join(DASHBOARD_DIR, file), "utf8")));
  }
  return exprs;
}

/** Every snn_ metric family the dashboards query, histogram series suffixes stripped. */
function dashboardMetrics(): Set<string> {
  return new Set(
    dashboardExpressions().flatMap((expr) =>
      [...expr.matchAll(/snn_[a-z_]+/g)].map(([name]) => name.replace(/_(bucket|sum|count)$/, "")),
    ),
  );
}

/** Drives a coordinator through one update of a two-cell-type network. */
function recordSomeTraining(m: CoordinatorMetrics): void {
  m.setWorkersConnected(3);
  m.setEpochsInFlight(2);
  m.epochCompleted(0.5, 1.0);
  m.epochCompleted(1.5, 1.0);
  m.observeReduce(0.01);
  m.observeAdam(0.002);
  m.observeBroadcast(0.03);
  m.bytesTransferred(1000, 0);
  m.bytesTransferred(0, 5000);
  m.workerFailure("timeout");
  m.checkpointWritten(0.25, "latest");
  m.recordUpdate({
    epoch: 10,
    step: 2,
    outcome: "step",
    learningRate: 0.01,
    losses: { firing_rate: 0.5, cv: 0.25, silent_penalty: 0, membrane_variance: 0.125, total: 0.875 },
    stats: [
      { cellType: "E", rateMean: 4.5, rateStd: 1.5, cvMean: 0.9, cvStd: 0.2, activeFraction: 0.75, ratioMean: 0.25 },
      { cellType: "I", rateMean: 12, rateStd: 3, cvMean: 1.1, cvStd: 0.3, activeFraction: 1, ratioMean: 0.5 },
    ],
    targets: [
      { cellType: "E", rate: 5, cv: 1, ratio: 0.3 },
      { cellType: "I", rate: 15, cv: 1 },
    ],
    teacher: { recurrent: { correlation: 0.75, relativeError: 0.5 }, feedforward: { correlation: 0.875, relativeError: 0.25 } },
    scalingFactors: [
      { pre: "E", post: "I", value: 1.5, target: 2 },
      { pre: "mitral", post: "E", value: 0.5, target: 0.5 },
    ],
  });
}

const open: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

function coordinator(): CoordinatorMetrics {
  const m = new CoordinatorMetrics({ version: "0.1.0", engine: "sparse-cpu" });
  open.push(m);
  return m;
}

function worker(id = "w0"): WorkerMetrics {
  const m = new WorkerMetrics({ version: "0.1.0", engine: "sparse-cpu", workerId: id });
  open.push(m);
  return m;
}

describe("CoordinatorMetrics", () => {
  it("does not serve when the port is 0 (--metrics-port 0 = off)", async () => {
    expect(await coordinator().serve(0, "127.0.0.1")).toBe(0);
  });

  it("serves the recorded values on /metrics in the Prometheus text format", async () => {
    const m = coordinator();
    const port = await m.listen(0, "127.0.0.1");
    expect(port).toBeGreaterThan(0);
    recordSomeTraining(m);

    const res = await scrape(port);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const exp = parseExposition(res.text);

    expect(value(exp, "snn_epochs_completed_total")).toBe(2);
    expect(value(exp, "snn_optimizer_steps_total")).toBe(1);
    expect(value(exp, "snn_optimizer_skipped_updates_total")).toBe(0);
    expect(value(exp, "snn_learning_rate")).toBe(0.01);
    expect(value(exp, "snn_epoch")).toBe(10);
    expect(value(exp, "snn_optimizer_step")).toBe(2);
    expect(value(exp, "snn_loss", { term: "total" })).toBe(0.875);
    expect(value(exp, "snn_loss", { term: "silent_penalty" })).toBe(0);
    expect(value(exp, "snn_firing_rate_hertz", { cell_type: "E" })).toBe(4.5);
    expect(value(exp, "snn_firing_rate_stddev_hertz", { cell_type: "I" })).toBe(3);
    expect(value(exp, "snn_target_firing_rate_hertz", { cell_type: "I" })).toBe(15);
    expect(value(exp, "snn_cv", { cell_type: "I" })).toBe(1.1);
    expect(value(exp, "snn_cv_stddev", { cell_type: "E" })).toBe(0.2);
    expect(value(exp, "snn_target_cv", { cell_type: "E" })).toBe(1);
    expect(value(exp, "snn_active_ratio", { cell_type: "E" })).toBe(0.75);
    expect(value(exp, "snn_membrane_ratio", { cell_type: "I" })).toBe(0.5);
    expect(value(exp, "snn_target_membrane_ratio", { cell_type: "E" })).toBe(0.3);
    expect(value(exp, "snn_teacher_weight_correlation", { population: "feedforward" })).toBe(0.875);
    expect(value(exp, "snn_teacher_weight_relative_error", { population: "recurrent" })).toBe(0.5);
    expect(value(exp, "snn_scaling_factor", { pre: "E", post: "I" })).toBe(1.5);
    expect(value(exp, "snn_scaling_factor_ratio", { pre: "E", post: "I" })).toBe(0.75);
    expect(value(exp, "snn_scaling_factor_ratio", { pre: "mitral", post: "E" })).toBe(1);
    expect(value(exp, "snn_workers_connected")).toBe(3);
    expect(value(exp, "snn_epochs_in_flight")).toBe(2);
    expect(value(exp, "snn_worker_failures_total", { reason: "timeout" })).toBe(1);
    expect(value(exp, "snn_worker_failures_total", { reason: "crash" })).toBe(0);
    expect(value(exp, "snn_epoch_duration_seconds_count")).toBe(2);
    expect(value(exp, "snn_epoch_duration_seconds_sum")).toBe(2);
    expect(value(exp, "snn_epoch_duration_seconds_bucket", { le: "+Inf" })).toBe(2);
    expect(value(exp, "snn_epoch_duration_seconds_bucket", { le: "0.64" })).toBe(1);
    expect(value(exp, "snn_update_phase_duration_seconds_count", { phase: "reduce" })).toBe(1);
    expect(value(exp, "snn_update_phase_duration_seconds_sum", { phase: "broadcast" })).toBe(0.03);
    expect(value(exp, "snn_simulated_seconds_total")).toBe(2);
    expect(value(exp, "snn_network_sent_bytes_total")).toBe(1000);
    expect(value(exp, "snn_network_received_bytes_total")).toBe(5000);
    expect(value(exp, "snn_checkpoint_duration_seconds_count", { kind: "latest" })).toBe(1);
    expect(value(exp, "snn_checkpoint_duration_seconds_count", { kind: "best" })).toBe(0);
    const stamp = value(exp, "snn_checkpoint_last_success_timestamp_seconds", { kind: "latest" }) ?? 0;
    expect(Math.abs(stamp - Date.now() / 1000)).toBeLessThan(60);
    expect(value(exp, "snn_build_info", { version: "0.1.0", engine: "sparse-cpu", node_version: process.version })).toBe(1);
    expect(value(exp, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(exp.types.get("nodejs_heap_size_total_bytes")).toBe("gauge");
  });

  it("snn_build_info carries the engine the run's workers use, once known", async () => {
    const m = new CoordinatorMetrics({ version: "0.1.0", engine: "none" });
    open.push(m);
    m.setEngine("sparse-cpu");
    const exp = parseExposition(await m.metricsText());
    expect(value(exp, "snn_build_info", { version: "0.1.0", engine: "sparse-cpu", node_version: process.version })).toBe(1);
    expect(exp.samples.filter((x) => x.name === "snn_build_info")).toHaveLength(1);
  });

  it("counts skipped updates apart from steps, and burn-in intervals as neither", async () => {
    const m = coordinator();
    const base = { epoch: 5, step: 0, losses: { total: 1 }, stats: [], targets: [] };
    m.recordUpdate({ ...base, outcome: "burn-in", learningRate: 0 });
    m.recordUpdate({ ...base, epoch: 10, outcome: "skipped", learningRate: 0.02 });
    m.recordUpdate({ ...base, epoch: 15, step: 1, outcome: "step", learningRate: 0.03 });
    const exp = parseExposition(await m.metricsText());
    expect(value(exp, "snn_optimizer_steps_total")).toBe(1);
    expect(value(exp, "snn_optimizer_skipped_updates_total")).toBe(1);
    expect(value(exp, "snn_learning_rate")).toBe(0.03);
  });

  it("follows the Prometheus naming conventions with bounded labels", async () => {
    const m = coordinator();
    recordSomeTraining(m);
    const exp = parseExposition(await m.metricsText());
    const snn = [...exp.types].filter(([name]) => name.startsWith("snn_"));
    expect(snn.length).toBeGreaterThanOrEqual(22);
    for (const [name, type] of snn) {
      expect(name).toMatch(/^snn_[a-z_]+$/);
      // Counters, and only counters, end in _total.
      expect(name.endsWith("_total")).toBe(type === "counter");
      if (type === "histogram" || name.includes("duration") || name.includes("timestamp")) {
        expect(name).toMatch(/_seconds$/);
      }
    }
    // pre, post: cell-type names of a scaling factor, as bounded as cell_type.
    const allowed = new Set(["term", "cell_type", "reason", "phase", "kind", "version", "engine", "node_version", "le", "population", "pre", "post"]);
    for (const s of exp.samples.filter((x) => x.name.startsWith("snn_"))) {
      for (const label of Object.keys(s.labels)) expect(allowed).toContain(label);
    }
  });

  it("answers 404 off /metrics, 405 to other methods, and stops serving on close", async () => {
    const m = coordinator();
    const port = await m.listen(0, "127.0.0.1");
    expect((await scrape(port, "/")).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: "POST" })).status).toBe(405);
    await m.close();
    await expect(scrape(port)).rejects.toThrow();
  });

  it("reports a port in use clearly", async () => {
    const port = await coordinator().listen(0, "127.0.0.1");
    await expect(coordinator().serve(port, "127.0.0.1")).rejects.toThrow(/already in use.*--metrics-port/);
  });
});

describe("WorkerMetrics", () => {
  it("serves the worker's own counters, histogram and identity", async () => {
    const m = worker("w7");
    const port = await m.listen(0, "127.0.0.1");
    m.epochComputed({ durationSeconds: 0.2, trialSteps: 1000 });
    m.epochComputed({ durationSeconds: 0.4, trialSteps: 1000 });
    const exp = parseExposition((await scrape(port)).text);
    expect(value(exp, "snn_worker_epochs_computed_total")).toBe(2);
    expect(value(exp, "snn_worker_trial_steps_total")).toBe(2000);
    expect(value(exp, "snn_worker_epoch_duration_seconds_count")).toBe(2);
    expect(value(exp, "snn_worker_epoch_duration_seconds_sum")).toBeCloseTo(0.6, 12);
    expect(value(exp, "snn_worker_info", { engine: "sparse-cpu", worker_id: "w7" })).toBe(1);
    expect(value(exp, "snn_build_info", { engine: "sparse-cpu" })).toBe(1);
    expect(value(exp, "process_resident_memory_bytes")).toBeGreaterThan(0);
  });
});

describe("deploy/", () => {
  it("the Grafana dashboard queries only metrics that a running coordinator or worker exports", async () => {
    const c = coordinator();
    const w = worker();
    const exported = new Set<string>();
    for (const m of [c, w]) {
      const port = await m.listen(0, "127.0.0.1");
      for (const name of parseExposition((await scrape(port)).text).types.keys()) exported.add(name);
    }
    const queried = dashboardMetrics();
    expect(queried.size).toBeGreaterThanOrEqual(20);
    const missing = [...queried].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
    // The coordinator alone exports everything except the workers' own metrics.
    const coordinatorOnly = new Set(parseExposition(await c.metricsText()).types.keys());
    expect([...queried].filter((n) => !n.startsWith("snn_worker_") && !coordinatorOnly.has(n))).toEqual([]);
  });

  it("the dashboard is a provisionable Grafana dashboard with the required panels", () => {
    const dashboard = JSON.parse(readFileSync(join(DASHBOARD_DIR, "snn-train.json"), "utf8")) as {
      uid: string;
      schemaVersion: number;
      panels: { title: string; type: string; targets?: { expr: string }[] }[];
    };
    expect(dashboard.uid).toBe("snn-train");
    expect(dashboard.schemaVersion).toBeGreaterThan(30);
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join("\n");
    expect(exprs).toContain("rate(snn_epochs_completed_total[1m])");
    expect(exprs).toContain("time() - snn_checkpoint_last_success_timestamp_seconds");
    expect(exprs).toMatch(/histogram_quantile\(0\.95, sum by \(le\) \(rate\(snn_epoch_duration_seconds_bucket/);
    expect(exprs).toContain("snn_target_firing_rate_hertz");
    const provisioning = readFileSync(join(ROOT, "deploy/grafana/provisioning/dashboards/dashboards.yml"), "utf8");
    expect(provisioning).toMatch(/path: \/var\/lib\/grafana\/dashboards/);
    const datasource = readFileSync(join(ROOT, "deploy/grafana/provisioning/datasources/prometheus.yml"), "utf8");
    expect(datasource).toMatch(/type: prometheus/);
  });

  it("prometheus.yml discovers the runs of this machine where they publish their targets", () => {
    const yml = readFileSync(PROMETHEUS_YML, "utf8");
    expect(yml).toMatch(/^scrape_configs:$/m);
    // Relative to the file: deploy/prometheus/../../runs is the default runs/ folder, whose runs write there.
    const shared = join(ROOT, "runs", SHARED_TARGETS_DIR);
    for (const [job, suffix] of [["snn-coordinator", "coordinator"], ["snn-worker", "workers"]]) {
      const m = yml.match(new RegExp(`job_name: ${job}\\n\\s+file_sd_configs:\\n\\s+- files: \\["([^"]+)"\\]`));
      expect(m, job).not.toBeNull();
      expect(resolve(dirname(PROMETHEUS_YML), m![1])).toBe(join(shared, `*-${suffix}.json`));
    }
    expect(yml).not.toMatch(/\t/);
  });

  it.skipIf(!which("promtool"))("prometheus.yml passes promtool check config", () => {
    expect(() => execFileSync("promtool", ["check", "config", PROMETHEUS_YML], { stdio: "pipe" })).not.toThrow();
  });
});

function which(binary: string): string | undefined {
  try {
    return execFileSync("which", [binary], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface PromResponse {
  status: string;
  error?: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe.skipIf(!which("prometheus"))("with a real Prometheus server", () => {
  let prometheus: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(() => {
    prometheus?.kill("SIGKILL");
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("scrapes the coordinator, returns a loss series, and accepts every dashboard query", async () => {
    const m = coordinator();
    const target = await m.listen(0, "127.0.0.1");
    recordSomeTraining(m);
    dir = mkdtempSync(join(tmpdir(), "snn-prom-"));
    const config = join(dir, "prometheus.yml");
    writeFileSync(
      config,
      `global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: snn-coordinator\n` +
        `    static_configs: [{targets: ["127.0.0.1:${target}"]}]\n`,
    );
    const web = await freePort();
    prometheus = spawn(
      "prometheus",
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${web}`],
      { stdio: "ignore" },
    );
    const query = async (expr: string): Promise<PromResponse> => {
      const res = await fetch(`http://127.0.0.1:${web}/api/v1/query?query=${encodeURIComponent(expr)}`);
      return (await res.json()) as PromResponse;
    };

    let result: PromResponse["data"]["result"] = [];
    for (let i = 0; i < 120 && result.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      result = await query('snn_loss{term="total"}').then((r) => r.data.result, () => []);
    }
    expect(result).toHaveLength(1);
    expect(result[0].metric.job).toBe("snn-coordinator");
    expect(Number(result[0].value[1])).toBe(0.875);

    for (const expr of dashboardExpressions()) {
      const res = await query(expr);
      expect({ expr, status: res.status, error: res.error }).toEqual({ expr, status: "success", error: undefined });
    }
  });
});
