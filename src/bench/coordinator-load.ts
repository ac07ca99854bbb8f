/**
 * Benchmark 11: a real coordinator process fed by workers at GPU speed. A GPU worker returns an interval's epochs in a
 * few milliseconds, so the coordinator's own work per update (decoding results, the reduce, Adam, statistics,
 * metrics.csv, checkpoints, encoding the next assignments) sets the pace. No GPU is needed to measure that: the
 * workers here are real worker processes' code (WorkerProcess, the protocol, the sockets) over an engine that replays
 * one epoch computed by sparse-cpu at a set rate — for this benchmark only, never in a run.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MetricsCsv } from "../io/run-dir.js";
import { NetworkSpec } from "../model/network.js";
import { Engine, EpochResult, EpochTask } from "../engine/engine.js";
import { SparseCpuEngine } from "../engine/sparse-cpu/sparse-cpu.js";
import { WorkerProcess } from "../distributed/worker.js";

/**
 * Answers every epoch with the first result sparse-cpu computed for a task of its kind (with or without gradient),
 * after `epochMs` per epoch of simulated compute: a stand-in for a GPU worker's speed with a real result's sizes.
 */
class ReplayEngine implements Engine {
  readonly kind = "sparse-cpu" as const;
  private readonly recorded = new Map<boolean, EpochResult>();
  private readonly real: SparseCpuEngine;

  constructor(spec: NetworkSpec, private readonly epochMs: number) {
    this.real = new SparseCpuEngine(spec);
  }

  async runEpoch(task: EpochTask): Promise<EpochResult> {
    let result = this.recorded.get(task.computeGradient);
    if (result === undefined || task.recordActivity) {
      result = await this.real.runEpoch(task);
      if (!task.recordActivity) this.recorded.set(task.computeGradient, result);
    } else if (this.epochMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.epochMs));
    }
    return { ...result, epoch: task.epoch };
  }

  dispose(): void {
    this.real.dispose();
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface LoadResult {
  msPerUpdate: number;
  updatesPerS: number;
  /** CPU time of the coordinator process per update: all its threads (ZeroMQ I/O, GC helpers, checkpoint writer), and its main thread alone. */
  cpuMsPerUpdate: number;
  mainMsPerUpdate: number;
  /** The coordinator's peak resident memory (VmHWM), MiB, as last sampled. */
  peakRssMiB: number;
}

/** CPU time a process has used so far, in ms, from its threads' run times (ns resolution): all of them, and the main thread. */
function processCpuMs(pid: number): { all: number; main: number } {
  const ms = { all: 0, main: 0 };
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const t = Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]) / 1e6;
      ms.all += t;
      if (task === String(pid)) ms.main = t;
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return ms;
}

/** Who computes the epochs: `workers` replay workers in this process, each taking `threads` epochs at once; or one local webgpu worker. */
type LoadWorkers = { kind: "replay"; workers: number; threads: number; epochMs: number } | { kind: "webgpu" };

/** One run of `updates` updates of `A` epochs with the given workers; the coordinator is a real snn-coord process. */
async function loadRun(params: string, A: number, updates: number, w: LoadWorkers): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "snn-bench-load-"));
  try {
    const file = join(dir, "params.toml");
    writeFileSync(
      file,
      readFileSync(params, "utf8")
        .replace(/^accumulation_interval = \d+/m, `accumulation_interval = ${A}`)
        .replace(/^epochs = \d+/m, `epochs = ${updates * A}`)
        .replace(/^burn_in_epochs = \d+/m, "burn_in_epochs = 0"),
    );
    const port = await freePort();
    const cli = fileURLToPath(new URL("../cli/snn-coord.js", import.meta.url));
    const nodeFlags = [...(process.env.SNN_BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.SNN_BENCH_PROFILE}`] : []), ...(process.env.SNN_BENCH_NODE_FLAGS ? process.env.SNN_BENCH_NODE_FLAGS.split(" ") : [])];
    const workerArgs = w.kind === "webgpu" ? ["--workers", "1", "--engine", "webgpu"] : ["--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", String(w.workers)];
    const coordinator = spawn(process.execPath, [...nodeFlags, cli, file, ...workerArgs, "--output", join(dir, "run"), "--metrics-port", "0", "--no-figures"], {
      stdio: ["ignore", process.env.SNN_BENCH_NODE_FLAGS ? "inherit" : "ignore", "pipe"],
    });
    let stderr = "";
    coordinator.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => coordinator.on("exit", resolve));
    // The coordinator's CPU time when each metrics.csv row appeared (rows are appended once per update).
    const csvPath = join(dir, "run", "metrics.csv");
    const cpuAtRow: { all: number; main: number }[] = [];
    let peakRssMiB = 0;
    const sampler = setInterval(() => {
      try {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${coordinator.pid}/status`, "utf8"));
        if (hwm) peakRssMiB = Number(hwm[1]) / 1024;
        const rows = readFileSync(csvPath, "utf8").split("\n").filter((l) => l !== "").length - 1;
        while (cpuAtRow.length < rows) cpuAtRow.push(processCpuMs(coordinator.pid!));
      } catch {
        // No metrics.csv yet, or the process is gone.
      }
    }, 1);
    const procs = Array.from({ length: w.kind === "replay" ? w.workers : 0 }, () =>
      new WorkerProcess({
        endpoint: `tcp://127.0.0.1:${port}`,
        engineName: "sparse-cpu",
        threads: w.kind === "replay" ? w.threads : 0,
        coordinatorTimeout: 60,
        heartbeatInterval: 2,
        createEngine: async (spec) => new ReplayEngine(spec, w.kind === "replay" ? w.epochMs : 0),
        log: () => {},
      }).run(),
    );
    const code = await exited;
    clearInterval(sampler);
    await Promise.all(procs);
    if (code !== 0) throw new Error(`coordinator exited ${code}: ${stderr.trim().split("\n").at(-1)}`);
    // The first updates include the replay engines' one real epoch each and the JIT's warm-up.
    const rows = MetricsCsv.read(join(dir, "run", "metrics.csv")).slice(3);
    const seconds = (rows.at(-1)!.wall_time_s - rows[0].wall_time_s) / (rows.length - 1);
    // Sampled up to a millisecond late, so the last rows' may be missing: the span between the first and last sampled.
    const cpu = cpuAtRow.slice(3);
    const perUpdate = (k: "all" | "main") => (cpu.at(-1)![k] - cpu[0][k]) / (cpu.length - 1);
    return { msPerUpdate: seconds * 1000, updatesPerS: 1 / seconds, cpuMsPerUpdate: perUpdate("all"), mainMsPerUpdate: perUpdate("main"), peakRssMiB };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function coordinatorLoad(params: string, A: number): Promise<void> {
  const updates = 40;
  console.log(`\n11. a real coordinator fed by replay workers at GPU speed (default network, ${A} epochs per update, --no-figures, ${updates} updates):`);
  for (const [workers, threads, epochMs] of [
    [1, A, 0],
    [2, Math.ceil(A / 2), 0],
    [1, A, 1],
  ] as const) {
    const r = await loadRun(params, A, updates, { kind: "replay", workers, threads, epochMs });
    console.log(`   ${workers} worker${workers > 1 ? "s" : ""} taking ${threads} epochs at once, ${epochMs} ms per epoch: ${describe(r)}`);
  }
}

/** The same coordinator with one local webgpu worker that takes the interval's epochs in one pass (the GPU check). */
export async function coordinatorWithGpuWorker(params: string, A: number, updates: number): Promise<void> {
  const r = await loadRun(params, A, updates, { kind: "webgpu" });
  console.log(`\n11b. a real coordinator with one local webgpu worker (${basename(params)}, ${A} epochs per update in one pass, --no-figures, ${updates} updates): ${describe(r)}`);
}

function describe(r: LoadResult): string {
  return `${r.msPerUpdate.toFixed(1)} ms per update (${r.updatesPerS.toFixed(1)} updates/s); coordinator CPU per update ${r.mainMsPerUpdate.toFixed(1)} ms on its main thread (goal ≤ 10 ms), ${r.cpuMsPerUpdate.toFixed(1)} ms in all its threads; its peak RSS ${r.peakRssMiB.toFixed(0)} MiB`;
}
