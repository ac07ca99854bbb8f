/**
 * Real coordinator and worker processes over ipc and loopback tcp: the numbers of a run do not depend on how many
 * workers computed it, on workers dying or hanging mid-run, on late joiners, or on garbage sent to the socket.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { Dealer } from "zeromq";
import { Packr } from "msgpackr";
import { decodeMessage, encodeMessage } from "../src/distributed/protocol.js";
import { readCheckpoint } from "../src/io/checkpoint.js";
import { MetricsCsv } from "../src/io/run-dir.js";
import { inProcessWorker } from "./helpers/in-process-worker.js";
import { coord, COORD, ensureBuilt, expectSameResult, finalWeights, freePort, metricRows, ROOT, runResult, type RunResult, smallParams, start, tempDir, waitFor, WORKER } from "./helpers/runs.js";

let params: string;
let reference: RunResult;

const expectSameRun = (dir: string) => expectSameResult(dir, reference);

beforeAll(async () => {
  ensureBuilt();
  // Long enough (≈1 s on a fast machine) that the signals and kills after the first updates land mid-run.
  params = smallParams(tempDir(), { epochs: 60, accumulation: 3 });
  const dir = join(tempDir(), "ref");
  const r = await coord([params, "--workers", "1", "--output", dir]);
  expect(r.code, r.output).toBe(0);
  reference = runResult(dir);
  // The run must have trained: 20 updates, weights moved away from the connectome's.
  expect(reference.rows.length).toBe(1 + 20);
});

describe("bit-identical results", () => {
  it("with 3 local workers", async () => {
    const dir = join(tempDir(), "w3");
    const r = await coord([params, "--workers", "3", "--output", dir]);
    expect(r.code, r.output).toBe(0);
    expectSameRun(dir);
  });

  it("with 2 external workers over loopback tcp, one of them computing 2 epochs at once (--threads 2)", async () => {
    const dir = join(tempDir(), "ext");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "2", "--output", dir, "--metrics-port", "0"]);
    const workers = [["--threads", "2"], []].map((extra) => start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0", ...extra]));
    const code = await c.exit;
    expect(code, c.output()).toBe(0);
    expect(await Promise.all(workers.map((w) => w.exit))).toEqual([0, 0]);
    expect(c.output()).toMatch(/joined \(sparse-cpu on .*, 2 threads\)/);
    expectSameRun(dir);
  });

  it("with one external worker taking whole intervals (--threads 3): it sums their gradients itself (reduce groups)", async () => {
    const dir = join(tempDir(), "groups");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--output", dir, "--metrics-port", "0"]);
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0", "--threads", "3"]);
    expect(await c.exit, c.output()).toBe(0);
    expect(await w.exit).toBe(0);
    expect(c.output()).toMatch(/computed 60 epochs \(60 of them in reduce groups, their gradients summed by the worker\)/);
    expectSameRun(dir);
  });

  it("when a worker is killed with SIGKILL mid-run and another hangs (SIGSTOP)", async () => {
    const dir = join(tempDir(), "faults");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "3", "--output", dir, "--metrics-port", "0"]);
    const workers = [0, 1, 2].map(() => start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]));
    await waitFor(() => /Epoch 6\//.test(c.output()), 60_000, "two updates");
    workers[0].child.kill("SIGKILL");
    workers[1].child.kill("SIGSTOP");
    const code = await c.exit;
    workers[1].child.kill("SIGKILL");
    expect(code, c.output()).toBe(0);
    expect(c.output()).toMatch(/dropped \(timeout/);
    expectSameRun(dir);
  });

  it("when a worker is told to stop (SIGTERM): it says it leaves, its epochs go to the other worker at once, it exits 0", async () => {
    const dir = join(tempDir(), "leaves");
    const port = freePort();
    // worker_timeout is long here: the run ends well within it only if the coordinator takes the epochs back at once.
    const slow = smallParams(tempDir(), { epochs: 60, accumulation: 3, workerTimeout: 120 });
    const c = start(COORD, [slow, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "2", "--output", dir, "--metrics-port", "0"]);
    const workers = [0, 1].map(() => start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0", "--threads", "2"]));
    await waitFor(() => /Epoch 6\//.test(c.output()), 60_000, "two updates");
    workers[0].child.kill("SIGTERM");
    expect(await workers[0].exit, workers[0].output()).toBe(0);
    expect(workers[0].output()).toMatch(/shutdown: the coordinator has taken back this worker's epochs/);
    const code = await c.exit;
    expect(code, c.output()).toBe(0);
    expect(await workers[1].exit).toBe(0);
    expect(c.output()).toMatch(/dropped \(disconnect: leaving: stopped by SIGTERM\); 1 connected/);
    expect(c.output()).not.toMatch(/dropped \(timeout/);
    expectSameRun(dir);
  });

  it("uses a worker that joins mid-run", async () => {
    const dir = join(tempDir(), "late");
    const port = freePort();
    // A longer run, so that the late worker surely arrives while it is going; its first 20 updates are the reference's.
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", dir, "--metrics-port", "0", "--epochs", "150"]);
    const first = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--timeout", "10", "--metrics-port", "0"]);
    await waitFor(() => /Epoch 3\//.test(c.output()), 60_000, "first update");
    const late = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--timeout", "10", "--metrics-port", "0"]);
    const code = await c.exit;
    expect(code, c.output()).toBe(0);
    await Promise.all([first.exit, late.exit]);
    expect(c.output().match(/joined/g)?.length).toBe(2);
    const computed = [...c.output().matchAll(/worker \S+ computed (\d+) epochs/g)].map((m) => Number(m[1]));
    expect(computed.length).toBe(2);
    expect(Math.min(...computed)).toBeGreaterThan(0);
    expect(computed[0] + computed[1]).toBeGreaterThanOrEqual(150);
    expect(metricRows(dir).slice(0, reference.rows.length)).toEqual(reference.rows);
  });

  it("survives garbage bytes and a wrong protocol version on its socket", async () => {
    const dir = join(tempDir(), "garbage");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", dir, "--metrics-port", "0"]);
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    await waitFor(() => /Epoch 3\//.test(c.output()), 60_000, "first update");
    const rogue = new Dealer({ linger: 0 });
    rogue.connect(`tcp://127.0.0.1:${port}`);
    await rogue.send(Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37]));
    const [reply1] = await rogue.receive();
    await rogue.send(new Packr({ useRecords: false }).pack({ protocol: 999, type: "hello" }));
    const [reply2] = await rogue.receive();
    rogue.close();
    const r1 = decodeMessage(reply1);
    const r2 = decodeMessage(reply2);
    expect(r1.type).toBe("reject");
    expect(r2.type === "reject" && r2.reason).toMatch(/protocol version mismatch: peer speaks 999/);
    const code = await c.exit;
    await w.exit;
    expect(code, c.output()).toBe(0);
    expect(c.output()).toMatch(/refused a message/);
    expectSameRun(dir);
  });
});

describe("a flood of peers that announce themselves and never become ready", () => {
  it("is bounded: they get no epoch, the log and memory stay small, the run is unchanged", async () => {
    const dir = join(tempDir(), "flood");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", dir, "--metrics-port", "0"]);
    await waitFor(() => /waiting for 1 worker/.test(c.output()), 30_000, "the coordinator to listen");
    const rssKiB = (field: string) => Number(readFileSync(`/proc/${c.child.pid}/status`, "utf8").match(new RegExp(`${field}:\\s+(\\d+)`))![1]);
    const before = rssKiB("VmRSS");
    // 3000 hellos from 3000 connections, 200 at a time (more than the pool remembers at once: some are refused).
    for (let i = 0; i < 3000; i += 200) {
      const batch = Array.from({ length: 200 }, (_, k) => {
        const d = new Dealer({ linger: 0 });
        d.connect(`tcp://127.0.0.1:${port}`);
        void d.send(encodeMessage({ type: "hello", workerId: `flood-${i + k}`, hostname: "rogue", pid: 1, engine: "sparse-cpu", threads: 1, metricsPort: 0, networkHash: null })).catch(() => {});
        return d;
      });
      await new Promise((r) => setTimeout(r, 100));
      for (const d of batch) d.close();
    }
    await new Promise((r) => setTimeout(r, 500));
    const grownMiB = (rssKiB("VmHWM") - before) / 1024;
    // None of them counts as a worker: training has not started without the real one.
    expect(c.output()).not.toMatch(/Starting training/);
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    const code = await c.exit;
    await w.exit;
    expect(code, c.output()).toBe(0);
    expect(c.output()).not.toMatch(/flood-\d+ joined/);
    expect(c.output()).toMatch(/forgot \d+ peer\(s\) that announced themselves and fell silent/);
    expect(c.output().split("\n").length, "the log grows by lines per heartbeat, not per peer").toBeLessThan(600);
    expect(grownMiB, "MiB the flood added to the coordinator").toBeLessThan(150);
    expectSameRun(dir);
  });
});

describe("results with non-finite numbers", () => {
  /** An in-process worker whose results carry a NaN gradient for the epochs `poison` picks. */
  const poisonedWorker = (port: number, poison: (epoch: number) => boolean) =>
    inProcessWorker(port, async (engine, task) => {
      const r = await engine.runEpoch(task);
      if (poison(task.epoch) && r.recGrad) r.recGrad[0] = NaN;
      return r;
    });

  it("from one worker: the epoch is computed again on another, and the run is unchanged", async () => {
    const dir = join(tempDir(), "nan-one");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "2", "--output", dir, "--metrics-port", "0"]);
    const bad = poisonedWorker(port, () => true);
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    expect(await c.exit, c.output()).toBe(0);
    await Promise.all([bad, w.exit]);
    expect(c.output()).toMatch(/returned non-finite numbers for epoch \d+; computing it again on another worker/);
    expect(c.output()).not.toMatch(/Skipped update \(/);
    expectSameRun(dir);
  });

  it("in a reduce group: the group is computed again on another worker, and the run is unchanged", async () => {
    const dir = join(tempDir(), "nan-group");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "2", "--output", dir, "--metrics-port", "0"]);
    // It joins first, so that it is given each interval's first epochs: a reduce group (3 threads, 3 epochs).
    const bad = inProcessWorker(
      port,
      async (engine, task) => {
        const r = await engine.runEpoch(task);
        if (r.recGrad) r.recGrad[0] = NaN;
        return r;
      },
      3,
    );
    await waitFor(() => /joined/.test(c.output()), 30_000, "the poisoned worker");
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    expect(await c.exit, c.output()).toBe(0);
    await Promise.all([bad, w.exit]);
    expect(c.output()).toMatch(/returned non-finite numbers for epochs 0–2; computing it again on another worker/);
    expect(c.output()).not.toMatch(/Skipped update \(/);
    expectSameRun(dir);
  });

  it("from every worker that computes it: the model's numbers, taken, and the update skipped", async () => {
    const dir = join(tempDir(), "nan-all");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "2", "--output", dir, "--metrics-port", "0"]);
    const workers = [poisonedWorker(port, (e) => e === 4), poisonedWorker(port, (e) => e === 4)];
    expect(await c.exit, c.output()).toBe(0);
    await Promise.all(workers);
    expect(c.output()).toMatch(/epoch 4 is non-finite on 2 worker\(s\): the model's numbers, not a worker's fault; taking it/);
    expect(c.output()).toMatch(/Skipped update \(/);
    const rows = MetricsCsv.read(join(dir, "metrics.csv"));
    expect(rows.find((r) => r.epoch === 6)!.skipped_updates).toBe(1);
  });
});

describe("a reduce group whose epoch fails", () => {
  it("comes back one result at a time; the failed epoch is computed again; the run is unchanged", async () => {
    const dir = join(tempDir(), "group-failure");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--output", dir, "--metrics-port", "0"]);
    let failed = false;
    const worker = inProcessWorker(
      port,
      (engine, task) => {
        if (task.epoch !== 7 || failed) return engine.runEpoch(task);
        failed = true;
        return Promise.reject(new Error("injected failure"));
      },
      3,
    );
    expect(await c.exit, c.output()).toBe(0);
    expect(await worker).toBe(0);
    expect(c.output()).toMatch(/failed epoch 7: injected failure/);
    // Epochs 6 and 8 came back on their own, and 7 again on its own: 57 of the 60 in reduce groups.
    expect(c.output()).toMatch(/computed 60 epochs \(57 of them in reduce groups/);
    expectSameRun(dir);
  });
});

describe("a worker that holds an epoch and never answers, its heartbeats still flowing", () => {
  it("is dropped once it has held it 10× longer than any epoch took (and worker_timeout), the epoch goes to another worker, the run is unchanged", async () => {
    const dir = join(tempDir(), "stalled");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "2", "--output", dir, "--metrics-port", "0"]);
    // In process: its engine never finishes the first epoch from the third update on that it is given (a lost message
    // or a stuck engine looks the same to the coordinator); it computes every other epoch, before and after.
    let stalled: number | null = null;
    const stuck = inProcessWorker(port, (engine, task) => {
      if (stalled !== null || task.epoch < 6) return engine.runEpoch(task);
      stalled = task.epoch;
      return new Promise(() => {});
    });
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    expect(await c.exit, c.output()).toBe(0);
    expect(await Promise.all([stuck, w.exit])).toEqual([0, 0]);
    expect(stalled).not.toBeNull();
    expect(c.output()).toMatch(new RegExp(`dropped \\(timeout: no result for epoch ${stalled} after [\\d.]+ s though its heartbeats arrive`));
    expectSameRun(dir);
  });
});

describe("the coordinator's shutdown message", () => {
  it("reaches every worker though the process exits right after close() (process.exit skips ZeroMQ's linger)", async () => {
    // A pool in a process of its own that ends as snn-coord does: close(), then process.exit. One worker's shutdown is
    // queued behind a 64 MB assignment, which takes longer to leave the socket than close() alone takes.
    const script = join(tempDir(), "pool.mjs");
    writeFileSync(
      script,
      [
        `import { WorkerPool } from ${JSON.stringify(pathToFileURL(join(ROOT, "dist/distributed/worker-pool.js")).href)};`,
        `const pool = new WorkerPool({ hash: "h" }, "run", { heartbeatInterval: 0.5, workerTimeout: 10, noWorkerTimeout: 10, events: { log: (l) => console.error(l) } });`,
        "await pool.bind(process.argv[2]);",
        "await pool.waitForWorkers(2, 30);",
        "const task = { epoch: 0, stream: 0, initialState: null, computeGradient: true, recordActivity: false };",
        "void pool.runInterval(0, 0, { rec: new Float32Array(16 << 20), ff: new Float32Array(0) }, [task]);",
        'await pool.close("training completed");',
        "process.exit(0);",
      ].join("\n"),
    );
    const endpoint = `tcp://127.0.0.1:${freePort()}`;
    const c = start(script, [endpoint]);
    const received = await Promise.all(
      [0, 1].map(async (i) => {
        const d = new Dealer({ linger: 0, receiveTimeout: 10_000 });
        d.connect(endpoint);
        await d.send(encodeMessage({ type: "hello", workerId: `w${i}`, hostname: "test", pid: i + 1, engine: "sparse-cpu", threads: 1, metricsPort: 0, networkHash: "h" }));
        const types: string[] = [];
        try {
          while (types.at(-1) !== "shutdown") types.push(decodeMessage(await d.receive()).type);
        } catch {
          types.push("nothing for 10 s");
        } finally {
          d.close();
        }
        return types.filter((t) => t !== "heartbeat");
      }),
    );
    expect(await c.exit, c.output()).toBe(0);
    expect(received.map((types) => types.at(-1))).toEqual(["shutdown", "shutdown"]);
    expect(received.flat()).toContain("assign");
  });
});

describe("signals to the whole process group (a terminal's Ctrl-C)", () => {
  it("the coordinator finishes its update, checkpoints and exits 130; its local workers are not cut off; resume is exact", async () => {
    const dir = join(tempDir(), "group");
    // Its own process group, as a shell gives a foreground job; the signal goes to the group.
    const c = start(COORD, [params, "--workers", "2", "--output", dir, "--metrics-port", "0", "--epochs", "24"], {}, { detached: true });
    await waitFor(() => /Epoch 6\//.test(c.output()), 60_000, "two updates");
    const sent = Date.now();
    process.kill(-c.child.pid!, "SIGINT");
    expect(await c.exit, c.output()).toBe(130);
    expect(Date.now() - sent).toBeLessThan(10_000);
    expect(c.output()).toMatch(/shutdown: training interrupted/);
    expect(JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8")).status).toBe("interrupted");
    const r = await coord([params, "--workers", "1", "--output", dir, "--epochs", "24", "--resume", "auto"]);
    expect(r.code, r.output).toBe(0);
    const straight = join(tempDir(), "straight");
    expect((await coord([params, "--workers", "1", "--output", straight, "--epochs", "24"])).code).toBe(0);
    const [x, y] = [dir, straight].map(finalWeights);
    for (const key of ["rec", "ff", "m", "v", "streams"] as const) expect(x[key].equals(y[key]), key).toBe(true);
  });

  it("SIGINT while waiting for external workers exits 130 at once, the run marked interrupted", async () => {
    const dir = join(tempDir(), "waiting");
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${freePort()}`, "--min-workers", "1", "--output", dir, "--metrics-port", "0"]);
    await waitFor(() => /waiting for 1 worker/.test(c.output()), 30_000, "the coordinator to listen");
    c.child.kill("SIGINT");
    expect(await c.exit, c.output()).toBe(130);
    expect(c.output()).toMatch(/SIGINT while waiting for workers; writing checkpoint_latest and stopping/);
    expect(JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8")).status).toBe("interrupted");
    expect(existsSync(join(dir, "checkpoints/checkpoint_latest.safetensors"))).toBe(true);
  });

  it("a second signal exits at once, still marking the run interrupted, its last checkpoint intact", async () => {
    const dir = join(tempDir(), "twice");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", dir, "--metrics-port", "0", "--epochs", "300"]);
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    await waitFor(() => /Epoch 6\//.test(c.output()), 60_000, "two updates", () => c.output());
    w.child.kill("SIGSTOP");
    c.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    const sent = Date.now();
    c.child.kill("SIGINT");
    expect(await c.exit, c.output()).toBe(130);
    expect(Date.now() - sent).toBeLessThan(3_000);
    expect(c.output()).toMatch(/SIGINT again: exiting now/);
    const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
    expect(meta.status).toBe("interrupted");
    expect(meta.note).toBe("SIGINT again: exited at once");
    expect(() => readCheckpoint(join(dir, "checkpoints/checkpoint_latest.safetensors"), null, null)).not.toThrow();
    w.child.kill("SIGKILL");
  });

  it("SIGTERM during an update that cannot finish (its worker hangs) abandons it and exits 130 from the last update", async () => {
    const dir = join(tempDir(), "hung");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", dir, "--metrics-port", "0", "--epochs", "300"]);
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    await waitFor(() => /Epoch 6\//.test(c.output()), 60_000, "two updates");
    w.child.kill("SIGSTOP");
    const sent = Date.now();
    c.child.kill("SIGTERM");
    expect(await c.exit, c.output()).toBe(130);
    expect(Date.now() - sent).toBeLessThan(12_000);
    expect(c.output()).toMatch(/did not finish within 8 s; abandoned/);
    const latest = readCheckpoint(join(dir, "checkpoints/checkpoint_latest.safetensors"), null, null).state;
    expect(latest.epoch % 3).toBe(0);
    expect(latest.epoch).toBeGreaterThanOrEqual(6);
    w.child.kill("SIGKILL");
  });

  it("local workers end with their coordinator when it is killed (SIGKILL)", async () => {
    const dir = join(tempDir(), "orphans");
    const c = start(COORD, [params, "--workers", "2", "--output", dir, "--metrics-port", "0", "--epochs", "300"]);
    await waitFor(() => /Epoch 3\//.test(c.output()), 60_000, "first update");
    const pids = [...c.output().matchAll(/joined \(sparse-cpu on \S+, pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(2);
    c.child.kill("SIGKILL");
    await c.exit;
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(() => pids.every((p) => !alive(p)), 10_000, "the local workers to exit");
  });
});

describe("one engine per run", () => {
  it("refuses a worker whose engine differs from the run's; records the engine and the workers in metadata.json", async () => {
    const dir = join(tempDir(), "engines");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", dir, "--metrics-port", "0"]);
    const w = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    await waitFor(() => /Epoch 3\//.test(c.output()), 60_000, "first update", () => `${c.output()}\n${w.output()}`);
    const other = new Dealer({ linger: 0 });
    other.connect(`tcp://127.0.0.1:${port}`);
    await other.send(encodeMessage({ type: "hello", workerId: "gpu-1", hostname: "elsewhere", pid: 1, engine: "tfjs-gpu", threads: 1, metricsPort: 0, networkHash: null }));
    const [reply] = await other.receive();
    other.close();
    const r = decodeMessage(reply);
    expect(r.type === "reject" && r.reason).toBe(
      "engine tfjs-gpu differs from this run's engine sparse-cpu (results are bit-identical only within one engine; start it with the run's engine)",
    );
    expect(await c.exit, c.output()).toBe(0);
    await w.exit;
    expect(c.output()).toMatch(/refused worker gpu-1: engine tfjs-gpu differs/);
    const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
    expect(meta.engine).toBe("sparse-cpu");
    expect(meta.workers_joined).toHaveLength(1);
    expect(meta.workers_joined[0]).toMatchObject({ engine: "sparse-cpu", threads: 1 });
    expectSameRun(dir);
  });
});

describe("exact resume", () => {
  it("K epochs + resume to 2K (with another worker count) equals a straight 2K run", async () => {
    const dir = join(tempDir(), "resume");
    const first = await coord([params, "--workers", "2", "--output", dir, "--epochs", "30"]);
    expect(first.code, first.output).toBe(0);
    const second = await coord([params, "--workers", "1", "--output", dir, "--epochs", "60", "--resume", "auto"]);
    expect(second.code, second.output).toBe(0);
    expectSameRun(dir);
  });

  it("after the coordinator is killed (SIGKILL) and restarted with --resume auto, the same worker rejoins and the run ends identically", async () => {
    const dir = join(tempDir(), "restart");
    const port = freePort();
    const args = [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", dir, "--metrics-port", "0"];
    const first = start(COORD, args);
    const worker = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    await waitFor(() => /Epoch 9\//.test(first.output()), 60_000, "three updates");
    first.child.kill("SIGKILL");
    await first.exit;
    const second = start(COORD, [...args, "--resume", "auto"]);
    const code = await second.exit;
    expect(code, second.output()).toBe(0);
    expect(await worker.exit).toBe(0);
    expect(second.output()).toMatch(/joined/);
    expectSameRun(dir);
  });

  it("after SIGINT: exits non-zero, marks the run interrupted, and resumes exactly", async () => {
    const dir = join(tempDir(), "sigint");
    const c = start(COORD, [params, "--workers", "2", "--output", dir, "--metrics-port", "0"]);
    await waitFor(() => /Epoch 6\//.test(c.output()), 60_000, "two updates");
    c.child.kill("SIGINT");
    const code = await c.exit;
    expect(code, c.output()).toBe(130);
    const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
    expect(meta.status).toBe("interrupted");
    const resumed = await coord([params, "--workers", "2", "--output", dir, "--resume", "auto"]);
    expect(resumed.code, resumed.output).toBe(0);
    expectSameRun(dir);
  });
});
