/**
 * Benchmark 10: the webgpu engine against sparse-cpu (one core) on the same machine, forward + backward per epoch,
 * with one epoch per pass and with a whole interval's epochs per pass; dispatches per epoch and time per dispatch;
 * where a pass's time goes. On a CPU Vulkan driver (SwiftShader, CI) it tells CI's cost; on a GPU (scripts/gpu-check.sh,
 * `--webgpu-only`) it also runs the default network at 4× and 10× the size with the same in-degrees.
 */
import { Config } from "../model/config.js";
import { generateConnectome } from "../model/connectome.js";
import { loadNetworkSpec } from "../io/network-files.js";
import { EpochTask } from "../engine/engine.js";
import { SparseCpuEngine } from "../engine/sparse-cpu/sparse-cpu.js";
import { listAdapters } from "../engine/webgpu/gpu-device.js";
import { WebGpuEngine } from "../engine/webgpu/webgpu-engine.js";

/** The default network at `factor`× the neurons and inputs with the same in-degrees (as parameters/scale-50k.toml). */
function scaled(config: Config, factor: number): Config {
  if (factor === 1) return config;
  const r = config.recurrent;
  const div = (m: number[][]) => m.map((row) => row.map((p) => p / factor));
  return {
    ...config,
    recurrent: {
      ...r,
      num_neurons: r.num_neurons * factor,
      num_assemblies: r.num_assemblies * factor,
      topology: { ...r.topology, conn_between: div(r.topology.conn_between), generator: "exact" },
    },
    feedforward: { ...config.feedforward, num_neurons: config.feedforward.num_neurons * factor, topology: { ...config.feedforward.topology, conn_inputs: div(config.feedforward.topology.conn_inputs) } },
  } as Config;
}

/** A CPU Vulkan driver's adapter (SwiftShader, llvmpipe, lavapipe): not a GPU. */
export function isSoftwareAdapter(name: string): boolean {
  return /swiftshader|llvmpipe|lavapipe/i.test(name);
}

/**
 * On a CPU Vulkan driver (SwiftShader: its adapter is not a GPU) the dense per-step gathers take minutes at default
 * size, so there the quickstart network (`small`) is measured instead, which tells CI's cost.
 */
export async function webgpuBench(config: Config, o: { scales: number[]; sparseCpu: boolean; small: Config }): Promise<void> {
  const adapters = await listAdapters().catch(() => []);
  if (adapters.length === 0) {
    console.log("\n10. webgpu: skipped (no WebGPU adapter; on a CPU machine: apt-get install chromium libvulkan1 and VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)");
    return;
  }
  const software = isSoftwareAdapter(adapters[0].name);
  if (software) {
    config = o.small;
    o = { ...o, scales: [1] };
  }
  const epochs = config.simulation.accumulation_interval;
  console.log(`\n10. webgpu engine on${software ? " a CPU Vulkan driver, quickstart network:" : ""} ${adapters[0].name} (${adapters[0].backend}); forward + backward per epoch; passes of 1 and of ${epochs} epochs (one interval)`);
  for (const factor of o.scales) {
    const cfg = scaled(config, factor);
    const connectome = generateConnectome(cfg);
    const spec = loadNetworkSpec(cfg, connectome);
    const task = (epoch: number): EpochTask => ({ epoch, initialState: null, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: true, recordActivity: false });
    let cpuSeconds = NaN;
    if (o.sparseCpu && factor === 1) {
      const cpu = new SparseCpuEngine(spec);
      cpu.runEpochSync(task(0));
      const t = performance.now();
      for (let e = 1; e <= 3; e++) cpu.runEpochSync(task(e));
      cpuSeconds = (performance.now() - t) / 3000;
    }
    const gpu = await WebGpuEngine.create(spec, { epochsPerPass: epochs });
    try {
      const line: string[] = [];
      for (const k of [1, Math.min(epochs, gpu.capacity)]) {
        const batch = (first: number) => Array.from({ length: k }, (_, e) => task(first + e));
        await gpu.runEpochs(batch(0));
        const repeats = 3;
        const t = performance.now();
        for (let r = 0; r < repeats; r++) await gpu.runEpochs(batch(k * (r + 1)));
        const pass = (performance.now() - t) / 1000 / repeats;
        const p = gpu.lastPassSeconds;
        line.push(
          `   ${k} epoch${k > 1 ? "s" : " "} per pass: ${((1000 * pass) / k).toFixed(1)} ms per epoch (${(1000 * pass).toFixed(1)} ms per pass; ${gpu.dispatchesPerPass} dispatches per pass, ` +
            `${(gpu.dispatchesPerPass / k).toFixed(0)} per epoch, ${((1e6 * (p.forward + p.backward)) / gpu.dispatchesPerPass).toFixed(0)} µs per dispatch incl. readbacks)` +
            (Number.isFinite(cpuSeconds) ? `; sparse-cpu (one core) ${(1000 * cpuSeconds).toFixed(0)} ms per epoch → ${((cpuSeconds * k) / pass).toFixed(2)}×` : ""),
          `      where a pass goes: host preparation ${(1000 * p.prepare).toFixed(1)} ms, forward on the device + readback ${(1000 * p.forward).toFixed(1)} ms, ` +
            `loss on the CPU ${(1000 * p.loss).toFixed(1)} ms, backward + gradients + readback ${(1000 * p.backward).toFixed(1)} ms, results ${(1000 * p.results).toFixed(1)} ms`,
        );
      }
      console.log(`   ${spec.constants.numNeurons} neurons, ${spec.rec.pre.length} + ${spec.ff.pre.length} synapses, device memory ${(gpu.deviceBytes / 2 ** 20).toFixed(0)} MiB for ${gpu.capacity} epochs per pass`);
      for (const l of line) console.log(l);
    } finally {
      gpu.dispose();
    }
  }
}
