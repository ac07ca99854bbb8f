/**
 * WebGPU adapters and devices through Dawn's Node binding (the `webgpu` package): listing the adapters this machine
 * has, opening adapter N as a device with the limits the engine needs, and the errors a user can act on (no Vulkan
 * driver, no such adapter, device lost).
 *
 * Dawn lists its adapters only in the message of a request for an adapter name that does not exist (the package's
 * documented way: `create(["adapter=…"])`), so listAdapters asks for one that cannot exist and reads the list back.
 */
import { createRequire } from "node:module";

/** One adapter as Dawn lists it: the backend and the name `create(["adapter=NAME"])` selects it by. */
export interface GpuAdapterEntry {
  index: number;
  backend: string;
  name: string;
}

/** Epochs a webgpu worker simulates per pass unless told otherwise (snn-worker --threads); fewer when they do not fit. */
export const DEFAULT_EPOCHS_PER_PASS = 8;

/** A GPU problem the user can act on (no driver, no such adapter, device lost): one line, no stack trace. */
export class GpuUnavailableError extends Error {}

interface DawnModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawn: DawnModule | null = null;

/** The binding, loaded on first use (CPU-only processes never load it), with WebGPU's constants made global. */
function binding(): DawnModule {
  if (dawn) return dawn;
  try {
    dawn = createRequire(import.meta.url)("webgpu") as DawnModule;
  } catch (e) {
    throw new GpuUnavailableError(`the webgpu package (Dawn) could not be loaded: ${(e as Error).message.split("\n")[0]}`);
  }
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return dawn;
}

const NO_DRIVER =
  "no WebGPU adapter: Dawn found no Vulkan driver (install the GPU's Vulkan driver and libvulkan1; on a CPU-only machine, " +
  "Debian's chromium package ships SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)";

/** The adapters Dawn can open; none is a GpuUnavailableError saying how to get a driver. */
export async function availableAdapters(): Promise<GpuAdapterEntry[]> {
  const adapters = await listAdapters();
  if (adapters.length === 0) throw new GpuUnavailableError(NO_DRIVER);
  return adapters;
}

/** The adapters Dawn can open, in its order (the index --gpu takes). */
export async function listAdapters(): Promise<GpuAdapterEntry[]> {
  const { create } = binding();
  let message = "";
  try {
    await create(["adapter=snn-train-list-adapters"]).requestAdapter();
  } catch (e) {
    message = (e as Error).message;
  }
  const entries: GpuAdapterEntry[] = [];
  for (const m of message.matchAll(/\* backend: '([^']*)', name: '([^']*)'/g)) entries.push({ index: entries.length, backend: m[1], name: m[2] });
  return entries;
}

/** A device on one adapter, with what the engine needs to know of it. */
export interface GpuContext {
  device: GPUDevice;
  adapter: GpuAdapterEntry;
  /** Set when the device is lost: every later use fails with this message. */
  lost: string | null;
  /** Keeps Dawn's instance alive as long as the device is used (Dawn ends with its last reference). */
  instance: GPU;
}

/** Opens adapter `index` (of listAdapters) as a device with the adapter's own storage limits. */
export async function openDevice(index = 0): Promise<GpuContext> {
  const adapters = await availableAdapters();
  const entry = adapters[index];
  if (!entry) throw new GpuUnavailableError(`--gpu ${index}: this machine has ${adapters.length} WebGPU adapter${adapters.length > 1 ? "s" : ""} (0-${adapters.length - 1}; see --list-gpus)`);
  const instance = binding().create([`adapter=${entry.name}`, `backend=${entry.backend}`]);
  const adapter = await instance.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new GpuUnavailableError(`adapter ${index} (${entry.name}) could not be opened`);
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  });
  const ctx: GpuContext = { device, adapter: entry, lost: null, instance };
  void device.lost.then((info) => {
    if (info.reason !== "destroyed") ctx.lost = `GPU device lost (${entry.name}): ${info.message || info.reason}`;
  });
  return ctx;
}
