/**
 * Worker threads that die: the RPC helper fails the calls a dead thread had with one clear error and starts a fresh
 * thread for the next call; an engine thread's death fails its epoch, which the coordinator reassigns to another
 * worker (the run ends as an undisturbed one); a dead figure thread costs its figure set; a dead checkpoint writer
 * stops the run naming the file. Threads load compiled modules, so these use dist/ (npm test builds first).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type * as CheckpointWriterModule from "../src/io/checkpoint-writer.js";
import type * as FigureQueueModule from "../src/report/figures/queue.js";
import type * as ThreadRpcModule from "../src/platform/thread-rpc.js";
import type * as ThreadedEngineModule from "../src/engine/threaded-engine.js";
import type * as WorkerModule from "../src/distributed/worker.js";
import { initialTrainingState } from "../src/io/checkpoint.js";
import { syntheticFigureData } from "./helpers/synthetic-figures.js";
import { Engine, EpochTask } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { COORD, coord, ensureBuilt, freePort, metricRows, ROOT, smallParams, start, tempDir } from "./helpers/runs.js";
import { smallNetwork } from "./helpers/small-network.js";

const dist = async <T>(path: string): Promise<T> => (await import(join(ROOT, "dist", path))) as T;

let rpc: typeof ThreadRpcModule;
beforeAll(async () => {
  ensureBuilt();
  rpc = await dist<typeof ThreadRpcModule>("platform/thread-rpc.js");
});

/** A thread that echoes its init and request, throws on "throw", crashes outside any request on "crash", hangs on "hang". */
function testThread(): URL {
  const file = join(tempDir(), "thread.mjs");
  writeFileSync(
    file,
    `import { serveRpc } from ${JSON.stringify(join(ROOT, "dist/platform/thread-rpc.js"))};
serveRpc((req, init) => {
  if (req === "throw") throw new Error("bad request");
  if (req === "crash") { setTimeout(() => { throw new Error("boom"); }); return new Promise(() => {}); }
  if (req === "hang") return new Promise(() => {});
  return init + ":" + req;
});`,
  );
  return new URL(`file://${file}`);
}

describe("ThreadRpc", () => {
  it("answers calls; an error thrown for a request fails that call only", async () => {
    const t = new rpc.ThreadRpc<string, string>(testThread(), "test", "init");
    expect(await t.call("a")).toBe("init:a");
    await expect(t.call("throw")).rejects.toThrow(/^bad request$/);
    expect(await t.call("b")).toBe("init:b");
    await t.close();
  });

  it("a thread that crashes or is killed fails its calls with ThreadDiedError; the next call gets a fresh thread", async () => {
    const t = new rpc.ThreadRpc<string, string>(testThread(), "test", "again");
    const crashed = t.call("crash");
    await expect(crashed).rejects.toThrow(rpc.ThreadDiedError);
    await expect(crashed).rejects.toThrow(/^test thread died: boom$/);
    expect(await t.call("c")).toBe("again:c");
    const hung = [t.call("hang"), t.call("hang")];
    await t.kill();
    for (const h of hung) await expect(h).rejects.toThrow(/^test thread died: exited with code \d+$/);
    expect(t.busy).toBe(0);
    expect(await t.call("d")).toBe("again:d");
    await t.close();
    await expect(t.call("e")).rejects.toThrow(/test thread is closed/);
  });
});

describe("engine threads", () => {
  it("a dead engine thread fails its epoch with a clear error; the next epoch runs on a fresh thread", async () => {
    const { ThreadedEngine } = await dist<typeof ThreadedEngineModule>("engine/threaded-engine.js");
    const net = smallNetwork();
    const engine = new ThreadedEngine(net.spec, 1);
    const task: EpochTask = { epoch: 0, initialState: null, recWeight: net.connectome.recWeight, ffWeight: net.connectome.ffWeight, computeGradient: true, recordActivity: false };
    const dying = engine.runEpoch(task);
    await engine.threads[0].kill();
    await expect(dying).rejects.toThrow(/^engine thread died: exited with code \d+$/);
    const r = await engine.runEpoch(task);
    const direct = new SparseCpuEngine(net.spec).runEpochSync(task);
    expect(Buffer.from(r.recGrad!.buffer).equals(Buffer.from(direct.recGrad!.buffer))).toBe(true);
    engine.dispose();
  });

  it("in a run, the epoch of a worker whose engine thread died is reassigned, and the run ends as an undisturbed one", async () => {
    const { WorkerProcess } = await dist<typeof WorkerModule>("distributed/worker.js");
    const { ThreadedEngine } = await dist<typeof ThreadedEngineModule>("engine/threaded-engine.js");
    const dir = tempDir();
    const params = smallParams(dir, { epochs: 12, accumulation: 3 });
    const reference = join(dir, "reference");
    expect((await coord([params, "--workers", "1", "--output", reference])).code).toBe(0);

    const out = join(dir, "run");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "2", "--output", out, "--metrics-port", "0"]);
    const logs: string[] = [];
    let killed = false;
    // An in-process worker whose engine thread dies while computing its first epoch after the first interval.
    const sabotaged = new WorkerProcess({
      endpoint: `tcp://127.0.0.1:${port}`,
      engineName: "sparse-cpu",
      threads: 1,
      coordinatorTimeout: 20,
      heartbeatInterval: 0.5,
      log: (l) => logs.push(l),
      createEngine: async (spec) => {
        const threaded = new ThreadedEngine(spec, 1);
        const engine: Engine = {
          kind: "sparse-cpu",
          runEpoch: (task) => {
            if (task.epoch < 3 || killed) return threaded.runEpoch(task);
            // A thread killed while it is still starting cannot have answered: the epoch surely fails.
            killed = true;
            logs.push(`killing the engine thread during epoch ${task.epoch}`);
            const doomed = new ThreadedEngine(spec, 1);
            const r = doomed.runEpoch(task);
            void doomed.threads[0].kill();
            return r.finally(() => doomed.dispose());
          },
          dispose: () => threaded.dispose(),
        };
        return engine;
      },
    });
    const healthy = start(join(ROOT, "dist/cli/snn-worker.js"), ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0"]);
    const [code] = await Promise.all([c.exit, sabotaged.run(), healthy.exit]);
    expect(code, c.output()).toBe(0);
    expect(killed).toBe(true);
    expect(logs.join("\n")).toMatch(/killing the engine thread during epoch (\d+)\n.*epoch \1 failed: .*engine thread died: exited with code \d+/s);
    expect(metricRows(out)).toEqual(metricRows(reference));
  });
});

describe("an epoch that fails for a deterministic reason", () => {
  it("ends the run with its message (exit code 5, status failed) instead of hanging, with a single worker", async () => {
    const { WorkerProcess } = await dist<typeof WorkerModule>("distributed/worker.js");
    const { ThreadedEngine } = await dist<typeof ThreadedEngineModule>("engine/threaded-engine.js");
    const dir = tempDir();
    const params = smallParams(dir, { epochs: 12, accumulation: 3 });
    const out = join(dir, "run");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", out, "--metrics-port", "0"]);
    const lone = new WorkerProcess({
      endpoint: `tcp://127.0.0.1:${port}`,
      engineName: "sparse-cpu",
      threads: 1,
      coordinatorTimeout: 5,
      heartbeatInterval: 0.5,
      log: () => {},
      createEngine: async (spec) => {
        const threaded = new ThreadedEngine(spec, 1);
        return {
          kind: "sparse-cpu",
          runEpoch: (task) => (task.epoch === 4 ? Promise.reject(new Error("out of memory (simulated)")) : threaded.runEpoch(task)),
          dispose: () => threaded.dispose(),
        } satisfies Engine;
      },
    });
    const [code] = await Promise.all([c.exit, lone.run()]);
    expect(code, c.output()).toBe(5);
    const last = c.output().trim().split("\n").pop()!;
    expect(last).toMatch(/^snn-coord: epoch 4 failed 3 times \(last: worker \S+: out of memory \(simulated\)\); stopping$/);
    expect(JSON.parse(readFileSync(join(out, "metadata.json"), "utf8")).status).toBe("failed");
  });
});

describe("figure and checkpoint threads", () => {
  it("a dead figure thread costs that figure set (reported), not the run: the next set renders", async () => {
    const { FigureQueue } = await dist<typeof FigureQueueModule>("report/figures/queue.js");
    const rendered: number[] = [];
    const failed: string[] = [];
    const q = new FigureQueue(
      (epoch) => rendered.push(epoch),
      (epoch, message) => failed.push(`${epoch}: ${message}`),
    );
    const dir = tempDir();
    const data = (epoch: number) => syntheticFigureData({ neurons: 100, inputs: 30, steps: 100, assemblies: 2, seed: 3, epoch });
    q.submit(data(5), join(dir, "a"));
    await q.thread.kill();
    await q.settled();
    q.submit(data(10), join(dir, "b"));
    await q.close();
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/^5: figure thread died: exited with code \d+$/);
    expect(rendered).toEqual([10]);
  });

  it("a dead checkpoint writer thread is a CheckpointError naming the file, on flush and on the next submit", async () => {
    const { CheckpointWriter } = await dist<typeof CheckpointWriterModule>("io/checkpoint-writer.js");
    const net = smallNetwork();
    const id = { networkHash: "n", trainingHash: "t", seed: 7, numNeurons: 60, numSlots: 5, batchSize: 3, parameterisation: "linear" as const, optimise: "weights" as const };
    const w = new CheckpointWriter(id, () => {});
    const path = join(tempDir(), "checkpoint_latest.safetensors");
    const state = initialTrainingState(net.connectome, 1, "linear", "x");
    w.submit([{ path, kind: "latest" }], state);
    await w.thread.kill();
    await expect(w.flush()).rejects.toThrow(`${path}: not written (checkpoint writer thread died: exited with code`);
    expect(() => w.submit([{ path, kind: "latest" }], state)).toThrow(/not written/);
    await w.close().catch(() => {});
  });
});
