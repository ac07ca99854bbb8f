/** Bad checkpoints give one clear error naming the file, exit non-zero and change nothing; --fallback and tools. */
import { cpSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/platform/atomic-file.js";
import { Tensor } from "../src/platform/safetensors.js";
import { decodeShuffleDeflate } from "../src/platform/shuffle-deflate.js";
import { coord, ensureBuilt, finalWeights, metricRows, SIM, smallParams, start, tempDir } from "./helpers/runs.js";

let params: string;
let runDir: string;

/** A fresh copy of the finished 6-epoch run, to damage. */
function cloneRun(): string {
  const dir = join(tempDir(), "run");
  cpSync(runDir, dir, { recursive: true });
  return dir;
}

const latest = (dir: string) => join(dir, "checkpoints/checkpoint_latest.safetensors");
const best = (dir: string) => join(dir, "checkpoints/checkpoint_best.safetensors");

/** Rewrites a checkpoint in format version 1 (plain F32 stream states), as runs started before version 2 have. */
function toVersion1(path: string): void {
  const { tensors, metadata } = readSafetensorsFile(path);
  const { encoded_tensors: encodedJson, ...rest } = metadata;
  const encoded = JSON.parse(encodedJson) as Record<string, { stored_as: string; shape: number[] }>;
  const plain: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const logical = Object.keys(encoded).find((k) => encoded[k].stored_as === name);
    if (!logical) plain[name] = t;
    else {
      const shape = encoded[logical].shape;
      const data = decodeShuffleDeflate(t.data as Uint8Array, shape.reduce((a, d) => a * d, 1));
      plain[logical] = logical === "stream_g" ? toElementMajor(data, shape) : { dtype: "F32", shape, data };
    }
  }
  writeSafetensorsFile(path, plain, { ...rest, format_version: "1" });
}

/** Format 2's slot-major stream_g (A×2×S×B×N) as format 1 stored it (A×B×N×2×S). */
function toElementMajor(g: Float32Array, [A, two, S, B, N]: number[]): Tensor {
  const out = new Float32Array(g.length);
  for (let k = 0; k < A; k++)
    for (let cl = 0; cl < two * S; cl++)
      for (let e = 0; e < B * N; e++) out[(k * B * N + e) * two * S + cl] = g[(k * two * S + cl) * B * N + e];
  return { dtype: "F32", shape: [A, B, N, two, S], data: out };
}

beforeAll(async () => {
  ensureBuilt();
  params = smallParams(tempDir(), { epochs: 6, accumulation: 3, checkpoint: 6 });
  runDir = join(tempDir(), "base");
  const r = await coord([params, "--workers", "1", "--output", runDir]);
  expect(r.code, r.output).toBe(0);
});

async function resumeExpectingError(dir: string, extra: string[], message: RegExp): Promise<string> {
  const before = { csv: readFileSync(join(dir, "metrics.csv")), latest: readFileSync(latest(dir)), best: readFileSync(best(dir)) };
  const r = await coord([params, "--workers", "1", "--output", dir, "--epochs", "12", "--resume", "auto", ...extra]);
  expect(r.code, r.output).toBe(2);
  expect(r.output).toMatch(message);
  expect(r.output).toContain(latest(dir));
  expect(r.output.trim().split("\n").length).toBe(1);
  expect(readFileSync(join(dir, "metrics.csv")).equals(before.csv)).toBe(true);
  expect(readFileSync(latest(dir)).equals(before.latest)).toBe(true);
  expect(readFileSync(best(dir)).equals(before.best)).toBe(true);
  return r.output;
}

describe("bad checkpoints on resume", () => {
  it("truncated", async () => {
    const dir = cloneRun();
    const bytes = readFileSync(latest(dir));
    writeFileSync(latest(dir), bytes.subarray(0, bytes.length - 1000));
    await resumeExpectingError(dir, [], /truncated/);
  });

  it("corrupted (one flipped byte)", async () => {
    const dir = cloneRun();
    const bytes = readFileSync(latest(dir));
    bytes[bytes.length - 7] ^= 0xff;
    writeFileSync(latest(dir), bytes);
    await resumeExpectingError(dir, [], /checksum mismatch/);
  });

  it("the checksum entry's own key damaged, and a data byte flipped: refused, not read unverified", async () => {
    const dir = cloneRun();
    const bytes = readFileSync(latest(dir));
    const key = bytes.indexOf('"checksum"');
    expect(key).toBeGreaterThan(0);
    bytes[key + 1] ^= 0x20; // "Checksum": no longer the checksum entry
    bytes[bytes.length - 7] ^= 0xff;
    writeFileSync(latest(dir), bytes);
    await resumeExpectingError(dir, [], /has no "checksum" entry in its metadata/);
  });

  it("wrong format version", async () => {
    const dir = cloneRun();
    const { tensors, metadata } = readSafetensorsFile(latest(dir));
    writeSafetensorsFile(latest(dir), tensors, { ...metadata, format_version: "99" });
    await resumeExpectingError(dir, [], /format version 99 is not supported/);
  });

  it("from a different network", async () => {
    const dir = cloneRun();
    const other = join(tempDir(), "other.toml");
    writeFileSync(other, readFileSync(params, "utf8").replace(/^seed = \d+/m, "seed = 7"));
    const r = await coord([other, "--workers", "1", "--output", dir, "--epochs", "12", "--resume", "auto"]);
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/belongs to a different network/);
  });

  it("--fallback uses checkpoint_best when latest is corrupt, and says so", async () => {
    const dir = cloneRun();
    const bytes = readFileSync(latest(dir));
    bytes[bytes.length - 7] ^= 0xff;
    writeFileSync(latest(dir), bytes);
    const r = await coord([params, "--workers", "1", "--output", dir, "--epochs", "12", "--resume", "auto", "--fallback"]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/falling back to .*checkpoint_best\.safetensors/);
    expect(readSafetensorsFile(latest(dir)).metadata.epoch).toBe("12");
  });
});

describe("older checkpoints", () => {
  it("a format-1 checkpoint (plain F32 stream states) resumes exactly as the current format does", async () => {
    const current = cloneRun();
    const old = cloneRun();
    toVersion1(latest(old));
    expect(readSafetensorsFile(latest(old)).tensors.stream_g.dtype).toBe("F32");
    for (const dir of [current, old]) {
      const r = await coord([params, "--workers", "1", "--output", dir, "--epochs", "12", "--resume", "auto"]);
      expect(r.code, r.output).toBe(0);
    }
    expect(readSafetensorsFile(latest(old)).metadata.format_version).toBe("2");
    expect(finalWeights(old)).toEqual(finalWeights(current));
    expect(metricRows(old)).toEqual(metricRows(current));
  });
});

describe("checkpoint tools", () => {
  it("--inspect prints epoch, step and sizes", async () => {
    const r = await coord(["--inspect", latest(runDir)]);
    expect(r.code, r.output).toBe(0);
    const info = JSON.parse(r.output);
    expect(info.epoch).toBe(6);
    expect(info.step).toBe(2);
    expect(info.streams).toBe(3);
    expect(info.recurrent_synapses).toBeGreaterThan(0);
    expect(info.format_version).toBe("2");
    expect(info.file_bytes).toBe(statSync(latest(runDir)).size);
    expect(info.tensor_bytes).toBeLessThan(info.file_bytes);
    expect(info.stream_state_bytes.codec).toBe("shuffle4_deflate");
    expect(info.stream_state_bytes.decoded).toBe(3 * 4 * 150 * 11 * 4);
    expect(info.stream_state_bytes.stored).toBeLessThan(info.stream_state_bytes.decoded);
  });

  it("snn-sim --checkpoint simulates the trained weights", async () => {
    const p = start(SIM, [params, "--epochs", "2", "--checkpoint", latest(runDir)]);
    expect(await p.exit, p.output()).toBe(0);
    expect(p.output()).toMatch(/weights from .* \(epoch 6\)/);
    expect(p.output()).toMatch(/inhibitory: rate [\d.]+/);
  });
});
