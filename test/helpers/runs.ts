/** Starting real coordinator and worker processes for integration tests (loopback and ipc only). */
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect } from "vitest";
import { readCheckpoint } from "../../src/io/checkpoint.js";

export const ROOT = resolve(__dirname, "../..");
export const COORD = join(ROOT, "dist/cli/snn-coord.js");
export const WORKER = join(ROOT, "dist/cli/snn-worker.js");
export const SIM = join(ROOT, "dist/cli/snn-sim.js");

/** Compiles once per test run if dist is older than the sources (tsc emits even when other files have type errors). */
export function ensureBuilt(): void {
  const newest = (dir: string): number => {
    let t = 0;
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else t = Math.max(t, statSync(p).mtimeMs);
      }
    };
    walk(dir);
    return t;
  };
  if (existsSync(COORD) && newest(join(ROOT, "dist")) >= newest(join(ROOT, "src"))) return;
  try {
    execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: ROOT, stdio: "ignore" });
  } catch {
    // Type errors elsewhere still leave emitted JavaScript; the tests below fail loudly if it is missing.
  }
}

export function tempDir(prefix = "snn-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A small network (quickstart physiology, 150 neurons) whose epochs take tens of milliseconds. */
export function smallParams(dir: string, overrides: { epochs?: number; accumulation?: number; checkpoint?: number; workerTimeout?: number; plotting?: boolean } = {}): string {
  let text = readFileSync(join(ROOT, "parameters/quickstart.toml"), "utf8");
  const set = (re: RegExp, value: string) => {
    if (!re.test(text)) throw new Error(`smallParams: ${re} not found in quickstart.toml`);
    text = text.replace(re, value);
  };
  const A = overrides.accumulation ?? 3;
  set(/^epochs = \d+/m, `epochs = ${overrides.epochs ?? 12}`);
  set(/^accumulation_interval = \d+/m, `accumulation_interval = ${A}`);
  set(/^checkpoint_interval = \d+/m, `checkpoint_interval = ${overrides.checkpoint ?? A * 2}`);
  set(/^batch_size = \d+/m, "batch_size = 4");
  set(/^chunk_steps = \d+/m, "chunk_steps = 25");
  set(/^num_neurons = 150$/m, "num_neurons = 60");
  set(/^num_neurons = 500/m, "num_neurons = 150");
  set(/^worker_timeout = [\d.]+/m, `worker_timeout = ${overrides.workerTimeout ?? 4}`);
  set(/^heartbeat_interval = [\d.]+/m, "heartbeat_interval = 0.5");
  set(/^no_worker_timeout = [\d.]+/m, "no_worker_timeout = 20");
  set(/^enabled = true/m, `enabled = ${overrides.plotting ?? false}`);
  // A run of a few epochs has no room for the shipped burn-in and warm-up; and a constant learning rate makes runs of
  // different lengths (--epochs) agree update by update, as the distribution and resume tests compare them.
  text = text.replace(/^burn_in_epochs = \d+/m, "burn_in_epochs = 0").replace(/^warmup_updates = \d+/m, "warmup_updates = 0");
  text = text.replace(/^lr_schedule = .*$/m, 'lr_schedule = "constant"').replace(/^lr_min = .*\n/m, "");
  // Figures (where enabled) every interval, the default.
  text = text.replace(/^interval = \d+ .*\n/m, "");
  const file = join(dir, "params.toml");
  writeFileSync(file, text);
  return file;
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** The exit code (128 when a signal ended the process). */
  exit: Promise<number>;
  /** The signal that ended the process, once it has ended by one. */
  signal: () => NodeJS.Signals | null;
}

/** `detached`: in a process group of its own, as a shell starts a foreground job (for signals to the group). */
export function start(script: string, args: string[], env: NodeJS.ProcessEnv = {}, o: { detached?: boolean } = {}): Proc {
  return track(spawn(process.execPath, [script, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: o.detached ?? false }));
}

/**
 * Processes started through track() (start, coord) that have not exited yet, with their output so far: the setup file
 * (test/setup/processes.ts) prints and kills those a failed or timed-out test leaves behind.
 */
export const liveProcesses = new Set<{ child: ChildProcess; output: () => string }>();

/** A spawned process (stdout and stderr piped) as a Proc: its collected output, exit code and ending signal. */
export function track(child: ChildProcess): Proc {
  let out = "";
  let endedBy: NodeJS.Signals | null = null;
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const live = { child, output: () => out };
  liveProcesses.add(live);
  const exit = new Promise<number>((r) =>
    child.on("exit", (code, signal) => {
      liveProcesses.delete(live);
      endedBy = signal;
      r(code ?? (signal ? 128 : -1));
    }),
  );
  return { child, output: () => out, exit, signal: () => endedBy };
}

export async function coord(args: string[], timeoutMs = 90_000): Promise<{ code: number; output: string }> {
  const p = start(COORD, [...args, "--metrics-port", "0"]);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
  const code = await p.exit;
  clearTimeout(timer);
  return { code, output: p.output() };
}

/** A finished run's learned state (weights, Adam moments, streams) and metrics rows, to compare other runs with. */
export interface RunResult {
  weights: ReturnType<typeof finalWeights>;
  rows: string[];
}

export function runResult(outputDir: string): RunResult {
  return { weights: finalWeights(outputDir), rows: metricRows(outputDir) };
}

/** The run in `outputDir` ended bit for bit as `ref`: weights, Adam moments, stream states and every metrics row. */
export function expectSameResult(outputDir: string, ref: RunResult): void {
  const w = finalWeights(outputDir);
  for (const key of ["rec", "ff", "m", "v", "streams"] as const) expect(w[key].equals(ref.weights[key]), key).toBe(true);
  expect(metricRows(outputDir)).toEqual(ref.rows);
}

/** `context` (a process's output, say) is added to the error when the wait times out. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string, context?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${context ? `\n${context()}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The learned state of a run, for bit-identity checks (stream states decoded, whatever the checkpoint format). */
export function finalWeights(outputDir: string): { rec: Buffer; ff: Buffer; m: Buffer; v: Buffer; streams: Buffer } {
  const { state } = readCheckpoint(join(outputDir, "checkpoints/checkpoint_latest.safetensors"), null, null);
  const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  // With odour inputs a stream's state includes its mixture state (ou).
  const streams = Buffer.concat(
    state.streams.flatMap((s) => (s ? [bytes(s.v), bytes(s.g), ...(s.ou ? [Buffer.from(s.ou.buffer, s.ou.byteOffset, s.ou.byteLength)] : [])] : [Buffer.from("not started")])),
  );
  return { rec: bytes(state.recWeight), ff: bytes(state.ffWeight), m: bytes(state.adam.m[0]), v: bytes(state.adam.v[0]), streams };
}

/** metrics.csv without the wall-clock columns, which legitimately differ between runs. */
export function metricRows(outputDir: string): string[] {
  const [header, ...rows] = readFileSync(join(outputDir, "metrics.csv"), "utf8").trim().split("\n");
  const cols = header.split(",");
  const keep = cols.map((c, i) => (c === "wall_time_s" || c === "epochs_per_s" ? -1 : i)).filter((i) => i >= 0);
  return [header, ...rows].map((r) => keep.map((i) => r.split(",")[i]).join(","));
}

/** A random port below Linux's ephemeral range (32768 on), where outgoing connections (thousands, in the flood test) take theirs. */
export function freePort(): number {
  return 20000 + Math.floor(Math.random() * 12000);
}
