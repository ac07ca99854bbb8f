/**
 * A GPU worker whose device is lost during a run (issue #17): the worker reports the epoch it was computing, says so
 * in one line and exits (code 4); the coordinator gives its epochs to the other worker and the run ends as one
 * without the failure would. The lost device is an engine that fails with GpuUnavailableError, as the webgpu engine
 * does when Dawn reports the device lost or a readback fails; the rest is the real coordinator process and the real
 * worker code over TCP.
 */
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { Engine, EpochResult, EpochTask } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { GpuUnavailableError } from "../src/engine/webgpu/gpu-device.js";
import { WorkerProcess } from "../src/distributed/worker.js";
import { NetworkSpec } from "../src/model/network.js";
import { coord, COORD, ensureBuilt, finalWeights, freePort, smallParams, start, tempDir } from "./helpers/runs.js";

/** sparse-cpu until its `lossAfter`-th epoch, then "the device is lost" for good. */
class LosingEngine implements Engine {
  readonly kind = "sparse-cpu" as const;
  private readonly real: SparseCpuEngine;
  private epochs = 0;

  constructor(spec: NetworkSpec, private readonly lossAfter: number) {
    this.real = new SparseCpuEngine(spec);
  }

  async runEpoch(task: EpochTask): Promise<EpochResult> {
    if (++this.epochs > this.lossAfter) throw new GpuUnavailableError("GPU device lost (test adapter): the device was reset");
    return this.real.runEpoch(task);
  }

  dispose(): void {
    this.real.dispose();
  }
}

describe("a GPU device lost during a run", () => {
  it("the worker reports it and exits 4; its epochs go to the other worker; the results are those of an undisturbed run", async () => {
    ensureBuilt();
    const dir = tempDir();
    const params = smallParams(dir, { epochs: 30, workerTimeout: 3 });
    const reference = join(dir, "reference");
    expect((await coord([params, "--workers", "1", "--output", reference])).code).toBe(0);

    const port = freePort();
    const out = join(dir, "lost");
    const c = start(COORD, [params, "--external", "--insecure", "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "2", "--output", out, "--metrics-port", "0"]);
    const lines: string[] = [];
    const worker = (lossAfter: number) =>
      new WorkerProcess({
        endpoint: `tcp://127.0.0.1:${port}`,
        engineName: "sparse-cpu",
        threads: 1,
        coordinatorTimeout: 30,
        heartbeatInterval: 0.5,
        createEngine: async (spec) => new LosingEngine(spec, lossAfter),
        log: (line) => lines.push(line),
      }).run();
    const [losing, healthy] = [worker(4), worker(Number.POSITIVE_INFINITY)];
    expect(await losing).toBe(4);
    expect(await c.exit, c.output()).toBe(0);
    expect(await healthy).toBe(0);
    expect(lines.filter((l) => /GPU device lost/.test(l))).toEqual([expect.stringMatching(/^GPU device lost \(test adapter\): the device was reset; this worker stops \(epoch \d+ and the others go to other workers\)$/)]);
    expect(c.output()).toMatch(/failed epoch \d+: GPU device lost/);
    // It said it leaves, so its epochs went to the other worker at once, not after worker_timeout; the coordinator's
    // answer reached it.
    expect(c.output()).toMatch(/dropped \(disconnect: leaving: GPU device lost \(test adapter\)/);
    expect(c.output()).not.toMatch(/dropped \(timeout/);
    expect(lines).toContain("shutdown: the coordinator has taken back this worker's epochs");
    expect(finalWeights(out)).toEqual(finalWeights(reference));
  }, 120_000);
});
