/**
 * The webgpu engine against sparse-cpu and against itself. Runs wherever Dawn finds an adapter: in CI on SwiftShader's
 * CPU Vulkan driver (.ci/run installs Debian's chromium and sets VK_ICD_FILENAMES), on a GPU machine on the GPU
 * (scripts/gpu-check.sh); without an adapter it is skipped with the reason, and SNN_REQUIRE_WEBGPU=1 makes that a
 * failure (the GPU check sets it).
 *
 * Tolerances are those of engines.test.ts for a float32 engine (its header says why): webgpu computes in float32
 * throughout where sparse-cpu computes in float64 between float32 stores, so spikes are identical on these networks
 * and voltages agree to float32 rounding; gradients to 5e-3 at λ = 100, where a float32 forward moves the steep
 * surrogate, and to 1e-4 where the surrogate is off or broad.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EpochResult, EpochTask, StreamState } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { listAdapters } from "../src/engine/webgpu/gpu-device.js";
import { WebGpuEngine } from "../src/engine/webgpu/webgpu-engine.js";
import { NetworkSpec } from "../src/model/network.js";
import { expectGradientsAgree, expectSameEpoch, task } from "./helpers/engine-checks.js";
import { clampNetwork, SmallNetwork, smallNetwork, smallNetworkToml } from "./helpers/small-network.js";
import { parseConfig } from "../src/model/config.js";
import { loadNetworkSpec } from "../src/io/network-files.js";
import { coord, ensureBuilt, expectSameResult, runResult, SIM, smallParams, start, tempDir, WORKER } from "./helpers/runs.js";
import { readSafetensorsFile } from "../src/platform/atomic-file.js";
import { maxAbsDiff, maxRelError } from "./helpers/engine-checks.js";

// Without a GPU check (which wants the real GPU), a machine with Debian's chromium runs the tests on its SwiftShader.
const SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json";
if (process.env.SNN_REQUIRE_WEBGPU !== "1" && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;
// Dawn's Vulkan stack prints an error per instance without one (harmless, but it buries the test output).
process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), "snn-xdg-"));
const adapters = await listAdapters().catch(() => []);
if (adapters.length === 0) {
  const why = "no WebGPU adapter (apt-get install chromium libvulkan1, then VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)";
  if (process.env.SNN_REQUIRE_WEBGPU === "1") throw new Error(why);
  console.warn(`webgpu-engine.test: skipped: ${why}`);
} else {
  console.log(`webgpu-engine.test: adapter 0 is ${adapters[0].name} (${adapters[0].backend})`);
}

const STRICT = { maxNorm: 1e-4, above1e2: 1e-4, above1e3: 1e-3 };
const MODEL = { maxNorm: 5e-3, above1e2: 1e-2, above1e3: 5e-2 };

/** Both engines over `epochs` consecutive epochs of one stream (each from the state the previous one left). */
async function compareStream(net: SmallNetwork, epochs: number, tol: typeof STRICT): Promise<void> {
  const gpu = await WebGpuEngine.create(net.spec, { epochsPerPass: 2 });
  const cpu = new SparseCpuEngine(net.spec);
  let a: StreamState | null = null;
  let b: StreamState | null = null;
  try {
    for (let e = 0; e < epochs; e++) {
      const mine = await gpu.runEpoch(task(net, e, a));
      const ref = cpu.runEpochSync(task(net, e, b));
      expectSameEpoch(mine, ref);
      expectGradientsAgree(mine, ref, tol);
      a = mine.finalState;
      b = ref.finalState;
    }
  } finally {
    gpu.dispose();
  }
}

describe.skipIf(adapters.length === 0)("webgpu engine against sparse-cpu", () => {
  it("at the model's surrogate steepness (λ = 100): three epochs of a stream", async () => {
    const net = smallNetwork();
    await compareStream(net, 3, MODEL);
  }, 120_000);

  it("with the surrogate switched off (λ = 1e8): gradients to 1e-4", async () => {
    const net = smallNetwork({ surrgradScale: 1e8 });
    await compareStream(net, 2, STRICT);
  }, 120_000);

  it("with a broad surrogate over short chunks (λ = 0.3, 12 chunks of 5 steps) and the reset gate in the graph", async () => {
    const net = smallNetwork({ surrgradScale: 0.3, chunkSteps: 5, chunksPerEpoch: 12, detachReset: false });
    await compareStream(net, 2, STRICT);
  }, 120_000);

  it("with odour inputs (λ = 1e8): the stream's mixture state and the plot trial's mixture come back as sparse-cpu's", async () => {
    const base = smallNetwork({ surrgradScale: 1e8 });
    const config = parseConfig(smallNetworkToml({ surrgradScale: 1e8 }) + '\n[inputs]\nprocess = "odours"\n[odours]\ntau = 2000.0\nsigma = 2.0\n', "small-odours");
    const net = { ...base, spec: loadNetworkSpec(config, base.connectome) };
    await compareStream(net, 2, STRICT);
    const gpu = await WebGpuEngine.create(net.spec, { epochsPerPass: 2 });
    try {
      const [mine, ref] = [await gpu.runEpoch(task(net, 1, null)), new SparseCpuEngine(net.spec).runEpochSync(task(net, 1, null))];
      expect(Array.from(mine.finalState.ou!)).toEqual(Array.from(ref.finalState.ou!));
      expect(Array.from(mine.activity!.odourMixture!)).toEqual(Array.from(ref.activity!.odourMixture!));
    } finally {
      gpu.dispose();
    }
  }, 120_000);

  it("with the conductance clamp binding (λ = 1e8)", async () => {
    const net = clampNetwork({ surrgradScale: 1e8 });
    await compareStream(net, 2, STRICT);
  }, 120_000);

  it("with a simulated teacher (van Rossum loss)", async () => {
    const net = smallNetwork({ surrgradScale: 1e8 });
    const teacherRecWeight = net.connectome.recWeight.map((w, e) => w * (e % 3 === 0 ? 1.5 : 0.8));
    const spec: NetworkSpec = {
      ...net.spec,
      teacherRecWeight,
      teacherFfWeight: net.connectome.ffWeight,
      lossWeights: { ...net.spec.lossWeights, van_rossum: 1 },
    };
    const gpu = await WebGpuEngine.create(spec);
    try {
      const mine = await gpu.runEpoch(task(net, 0, null));
      const ref = new SparseCpuEngine(spec).runEpochSync(task(net, 0, null));
      expect(ref.losses.van_rossum).toBeGreaterThan(0);
      expectSameEpoch(mine, ref);
      expectGradientsAgree(mine, ref, STRICT);
    } finally {
      gpu.dispose();
    }
  }, 120_000);
});

describe.skipIf(adapters.length === 0)("webgpu engine determinism and passes", () => {
  const net = smallNetwork();
  let gpu: WebGpuEngine;
  const tasks: EpochTask[] = [0, 1, 2, 3, 4].map((e) => task(net, e, null, true, e === 2));
  let together: EpochResult[];
  beforeAll(async () => {
    gpu = await WebGpuEngine.create(net.spec, { epochsPerPass: 3 });
    together = await gpu.runEpochs(tasks);
  }, 120_000);
  afterAll(() => gpu?.dispose());

  const bytes = (r: EpochResult) =>
    [r.recGrad!, r.ffGrad!, r.finalState.v, r.finalState.g, r.rates, r.ratios].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64")).join("|") + r.losses.total;

  it("an epoch's result is bit-identical whether it shares a pass or not, and run after run", async () => {
    expect(gpu.capacity).toBe(3);
    for (const [k, t] of tasks.entries()) {
      const alone = await gpu.runEpoch(t);
      expect(bytes(alone)).toBe(bytes(together[k]));
    }
    const again = await gpu.runEpochs(tasks);
    again.forEach((r, k) => expect(bytes(r)).toBe(bytes(together[k])));
  }, 120_000);

  it("records the figure activity of the epoch that asks for it", () => {
    expect(together.map((r) => r.activity !== null)).toEqual([false, false, true, false, false]);
    const ref = new SparseCpuEngine(net.spec).runEpochSync(tasks[2]);
    expectSameEpoch(together[2], ref);
    expect(together[2].activity!.sampleConductance.some((g) => g > 0)).toBe(true);
  });

  it("forward-only epochs carry no gradient and the same activity", async () => {
    const [r] = await gpu.runEpochs([{ ...tasks[0], computeGradient: false }]);
    expect(r.recGrad).toBeNull();
    expect(Array.from(r.rates)).toEqual(Array.from(together[0].rates));
  }, 120_000);
});

describe.skipIf(adapters.length === 0)("training with webgpu workers", () => {
  it("1 and 2 local webgpu workers, and a resumed run, give bit-identical results; the run records the engine", async () => {
    ensureBuilt();
    const params = smallParams(tempDir(), { epochs: 12, accumulation: 3 });
    const one = join(tempDir(), "webgpu-1");
    const r1 = await coord([params, "--workers", "1", "--engine", "webgpu", "--output", one], 240_000);
    expect(r1.code, r1.output).toBe(0);
    expect(r1.output).toMatch(/webgpu/);
    const reference = runResult(one);
    expect(reference.rows.length).toBe(1 + 4);
    const two = join(tempDir(), "webgpu-2");
    const r2 = await coord([params, "--workers", "2", "--engine", "webgpu", "--output", two], 240_000);
    expect(r2.code, r2.output).toBe(0);
    expectSameResult(two, reference);
    const resumed = join(tempDir(), "webgpu-resumed");
    expect((await coord([params, "--workers", "1", "--engine", "webgpu", "--output", resumed, "--epochs", "6"], 240_000)).code).toBe(0);
    const r3 = await coord([params, "--workers", "2", "--engine", "webgpu", "--output", resumed, "--epochs", "12", "--resume", "auto"], 240_000);
    expect(r3.code, r3.output).toBe(0);
    expectSameResult(resumed, reference);
  }, 600_000);
});

describe.skipIf(adapters.length === 0)("command lines", () => {
  const run = async (script: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const p = start(script, args, env);
    return { code: await p.exit, output: p.output() };
  };

  it("snn-worker --list-gpus lists the adapters; a missing adapter, no driver or a contradictory engine is one line, exit 2", async () => {
    ensureBuilt();
    const list = await run(WORKER, ["--list-gpus"]);
    expect(list.code, list.output).toBe(0);
    expect(list.output).toContain(`0: ${adapters[0].name} (${adapters[0].backend})`);
    const connect = ["--connect", "tcp://127.0.0.1:1", "--metrics-port", "0"];
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [[...connect, "--gpu", String(adapters.length)], {}, new RegExp(`--gpu ${adapters.length}: this machine has ${adapters.length} WebGPU adapter`)],
      [[...connect, "--gpu", "0"], { VK_ICD_FILENAMES: "/nonexistent/icd.json" }, /no WebGPU adapter: Dawn found no Vulkan driver/],
      [["--list-gpus"], { VK_ICD_FILENAMES: "/nonexistent/icd.json" }, /no WebGPU adapter: Dawn found no Vulkan driver/],
      [[...connect, "--engine", "sparse-cpu", "--gpu", "0"], {}, /--gpu selects a GPU for the webgpu or tfjs engine/],
      [[...connect, "--engine", "tfjs", "--threads", "4"], {}, /the tfjs engine computes one epoch at a time/],
    ];
    for (const [args, env, message] of cases) {
      const r = await run(WORKER, args, env);
      expect(r.code, r.output).toBe(2);
      expect(r.output).toMatch(message);
      // No JavaScript stack trace (Dawn itself prints the Vulkan loader's warnings before our line, natively).
      expect(r.output).not.toMatch(/\n\s+at .*(file:|node:)/);
      expect(r.output.trim().split("\n").at(-1)).toMatch(/^snn-worker: /);
    }
  }, 120_000);

  it("snn-sim --engine webgpu exports the epoch that sparse-cpu exports: same spikes, close voltages and gradients", async () => {
    const dir = tempDir();
    const params = smallParams(dir);
    const files = { cpu: join(dir, "cpu.safetensors"), gpu: join(dir, "gpu.safetensors") };
    for (const [engine, file] of [["sparse-cpu", files.cpu], ["webgpu", files.gpu]] as const) {
      const r = await run(SIM, [params, "--epochs", "2", "--engine", engine, "--export", file]);
      expect(r.code, r.output).toBe(0);
    }
    const [a, b] = [readSafetensorsFile(files.gpu).tensors, readSafetensorsFile(files.cpu).tensors];
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    expect(Buffer.from(a.spikes.data.buffer).equals(Buffer.from(b.spikes.data.buffer))).toBe(true);
    expect((a.spikes.data as Uint8Array).some((x) => x !== 0)).toBe(true);
    expect(maxAbsDiff(a.voltages.data as Float32Array, b.voltages.data as Float32Array)).toBeLessThan(1e-3);
    expect(maxRelError(a.rec_grad.data as Float32Array, b.rec_grad.data as Float32Array)).toBeLessThan(5e-3);
  }, 120_000);
});
