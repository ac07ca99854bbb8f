/** writeCheckpoint / readCheckpoint: exact round trip, compressed stream states, format version 1, damaged tensors. */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  CheckpointIdentity,
  ENCODED_TENSORS_KEY,
  newCounters,
  readCheckpoint,
  TrainingState,
  writeCheckpoint,
} from "../src/io/checkpoint.js";
import { checkpointIdentity } from "../src/io/identity.js";
import { readSafetensorsFile } from "../src/platform/atomic-file.js";
import { loadConfig } from "../src/io/parameters-file.js";
import { generateConnectome } from "../src/model/connectome.js";
import { LOSS_TERM_NAMES, LossTerms } from "../src/model/losses.js";
import { loadNetworkSpec } from "../src/io/network-files.js";
import { decodeSafetensors, encodeSafetensors, Tensor } from "../src/platform/safetensors.js";
import { StreamState } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { ROOT, tempDir } from "./helpers/runs.js";

const bits = (f: Float32Array) => Buffer.from(f.buffer, f.byteOffset, f.byteLength);
const F = (a: number[]) => Float32Array.from(a);

function expectSameState(got: TrainingState, want: TrainingState): void {
  expect(got.epoch).toBe(want.epoch);
  expect(got.adam.step).toBe(want.adam.step);
  expect(bits(got.recWeight).equals(bits(want.recWeight))).toBe(true);
  expect(bits(got.ffWeight).equals(bits(want.ffWeight))).toBe(true);
  for (const i of [0, 1]) {
    expect(bits(got.adam.m[i]).equals(bits(want.adam.m[i])), `adam m ${i}`).toBe(true);
    expect(bits(got.adam.v[i]).equals(bits(want.adam.v[i])), `adam v ${i}`).toBe(true);
  }
  expect(got.streams.length).toBe(want.streams.length);
  want.streams.forEach((s, k) => {
    if (!s) return expect(got.streams[k], `stream ${k}`).toBeNull();
    expect(bits(got.streams[k]!.v).equals(bits(s.v)), `stream ${k} v`).toBe(true);
    expect(bits(got.streams[k]!.g).equals(bits(s.g)), `stream ${k} g`).toBe(true);
  });
  expect(got.bestLoss).toBe(want.bestLoss);
  expect(got.losses).toEqual(want.losses);
  expect(got.wandbRunId).toBe(want.wandbRunId);
  expect(got.counters).toEqual(want.counters);
  expect(got.logWeights === null).toBe(want.logWeights === null);
  if (want.logWeights) {
    expect(bits(got.logWeights!.rec).equals(bits(want.logWeights.rec))).toBe(true);
    expect(bits(got.logWeights!.ff).equals(bits(want.logWeights.ff))).toBe(true);
  }
}

/** Conductance-like values with the bit patterns a resume must keep: zeros, -0, subnormals, NaN, infinities. */
function syntheticStream(B: number, N: number, S: number, seed: number): StreamState {
  const v = Float32Array.from({ length: B * N }, (_, i) => -60 + 22 * Math.abs(Math.sin(seed + i)));
  const g = Float32Array.from({ length: B * N * 2 * S }, (_, i) => (i % 3 === 0 ? 0 : Math.exp(-20 * Math.abs(Math.cos(seed * 7 + i)))));
  const special = new Uint32Array([0x80000000, 0x00000001, 0x807fffff, 0x7fc00000, 0xffc00001, 0x7f800000, 0xff800000]);
  new Uint32Array(g.buffer).set(special, 5);
  return { v, g };
}

function syntheticState(A: number, id: CheckpointIdentity, started: boolean[]): TrainingState {
  const E = 50;
  const Ff = 20;
  const w = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(s + i));
  const losses = Object.fromEntries(LOSS_TERM_NAMES.map((k, i) => [k, i + 0.5])) as unknown as LossTerms;
  return {
    epoch: 12,
    recWeight: w(E, 1),
    ffWeight: w(Ff, 2),
    adam: { step: 4, m: [w(E, 3), w(Ff, 4)], v: [w(E, 5).map(Math.abs), w(Ff, 6).map(Math.abs)] },
    streams: Array.from({ length: A }, (_, k) => (started[k] ? syntheticStream(id.batchSize, id.numNeurons, id.numSlots, k) : null)),
    bestLoss: 3.25,
    losses,
    wandbRunId: "run-1",
    logWeights: null,
    counters: { skippedUpdates: 2, skippedInARow: 1, updatesSinceBest: 3 },
  };
}

const ID: CheckpointIdentity = { networkHash: "net", trainingHash: "train", seed: 7, numNeurons: 30, numSlots: 5, batchSize: 4, parameterisation: "linear", optimise: "weights", odourPatterns: 0 };

describe("checkpoint round trip", () => {
  it("restores weights, Adam moments and stream states bit for bit, with the stream states compressed", () => {
    const path = join(tempDir(), "c.safetensors");
    const state = syntheticState(3, ID, [true, false, true]);
    writeCheckpoint(path, state, ID);
    const info = readCheckpoint(path, ID, 3);
    expectSameState(info.state, state);
    expect(info.metadata.format_version).toBe(CHECKPOINT_FORMAT_VERSION);

    const { tensors, metadata } = readSafetensorsFile(path);
    expect(tensors.stream_v).toBeUndefined();
    expect(tensors.stream_g).toBeUndefined();
    expect(tensors["stream_g.shuffle4_deflate"].dtype).toBe("U8");
    expect(tensors.rec_weight.dtype).toBe("F32");
    expect(tensors.adam_v_ff.dtype).toBe("F32");
    expect(JSON.parse(metadata[ENCODED_TENSORS_KEY])).toEqual({
      stream_v: { stored_as: "stream_v.shuffle4_deflate", codec: "shuffle4_deflate", dtype: "F32", shape: [3, 4, 30] },
      stream_g: { stored_as: "stream_g.shuffle4_deflate", codec: "shuffle4_deflate", dtype: "F32", shape: [3, 2, 5, 4, 30] },
    });

    const raw = 3 * 4 * 30 * 11 * 4;
    expect(info.streamStateBytes.decoded).toBe(raw);
    expect(info.streamStateBytes.stored).toBe(tensors["stream_v.shuffle4_deflate"].data.length + tensors["stream_g.shuffle4_deflate"].data.length);
    expect(info.fileBytes).toBe(statSync(path).size);
    expect(info.storedTensorBytes).toBeLessThan(info.fileBytes);
  });

  it("keeps streams that have not started as null, and all-zero state", () => {
    const path = join(tempDir(), "c.safetensors");
    const state = syntheticState(2, ID, [false, false]);
    writeCheckpoint(path, state, ID);
    expectSameState(readCheckpoint(path, ID, 2).state, state);
  });
});

describe("parameterisation", () => {
  it('"log" checkpoints keep θ = ln w bit for bit beside the weights; the counters round-trip', () => {
    const path = join(tempDir(), "log.safetensors");
    const id: CheckpointIdentity = { ...ID, parameterisation: "log" };
    const base = syntheticState(2, id, [true, false]);
    const theta = (w: Float32Array) => w.map((x) => Math.log(Math.abs(x) + 0.1));
    const state: TrainingState = { ...base, logWeights: { rec: theta(base.recWeight), ff: theta(base.ffWeight) } };
    writeCheckpoint(path, state, id);
    const info = readCheckpoint(path, id, 2);
    expect(info.metadata.parameterisation).toBe("log");
    expectSameState(info.state, state);
  });

  it("a checkpoint written under another parameterisation is refused, naming the key", () => {
    const dir = tempDir();
    const linear = join(dir, "linear.safetensors");
    writeCheckpoint(linear, syntheticState(2, ID, [true, true]), ID);
    expect(() => readCheckpoint(linear, { ...ID, parameterisation: "log" }, 2)).toThrow(
      /trained with hyperparameters\.parameterisation = "linear", these parameters say "log"/,
    );
    const log = join(dir, "log.safetensors");
    const id: CheckpointIdentity = { ...ID, parameterisation: "log" };
    const st = syntheticState(2, id, [true, true]);
    writeCheckpoint(log, { ...st, logWeights: { rec: st.recWeight, ff: st.ffWeight } }, id);
    expect(() => readCheckpoint(log, ID, 2)).toThrow(/parameterisation = "log", these parameters say "linear"/);
  });
});

describe("checkpoint format version 1", () => {
  // Written by the format-1 writer (commit dd0ef9d) from the values below: stream 0 started, stream 1 not.
  const FIXTURE = join(ROOT, "test/fixtures/checkpoint-v1.safetensors");
  const fixtureId: CheckpointIdentity = { networkHash: "net-v1-fixture", trainingHash: "train-v1-fixture", seed: 7, numNeurons: 3, numSlots: 2, batchSize: 2, parameterisation: "linear", optimise: "weights", odourPatterns: 0 };

  it("still reads, with plain F32 stream states", () => {
    const info = readCheckpoint(FIXTURE, fixtureId, 2);
    expect(info.metadata.format_version).toBe("1");
    expectSameState(info.state, {
      epoch: 6,
      recWeight: F([0.25, -1.5, 3e-39, 7]),
      ffWeight: F([0.5, -0, 2]),
      adam: { step: 3, m: [F([1e-3, -2e-3, 0, 5e-8]), F([0.1, 0.2, 0.3])], v: [F([1e-6, 4e-6, 0, 2.5e-15]), F([0.01, 0.04, 0.09])] },
      // Format 1 stored g element-major (value i at element ⌊i/4⌋, component-slot i mod 4); read back slot-major.
      streams: [{ v: F([-60, -55.5, -41.25, -60, -38.01, -70]), g: F(Array.from({ length: 24 }, (_, k) => ((i) => (i % 3 === 0 ? 0 : (i + 1) / 8))((k % 6) * 4 + Math.floor(k / 6)))) }, null],
      bestLoss: 12.5,
      losses: Object.fromEntries(LOSS_TERM_NAMES.map((k, i) => [k, k === "cv" ? NaN : 1.25 * (i + 1)])) as unknown as LossTerms,
      wandbRunId: "abc123",
      logWeights: null,
      counters: newCounters(),
    });
    expect(info.streamStateBytes).toEqual({ stored: 4 * (12 + 48), decoded: 4 * (12 + 48), codec: "none" });
  });

  it("a resumed run rewrites it as the current version with the same state", () => {
    const path = join(tempDir(), "c.safetensors");
    const old = readCheckpoint(FIXTURE, fixtureId, 2).state;
    writeCheckpoint(path, old, fixtureId);
    const info = readCheckpoint(path, fixtureId, 2);
    expect(info.metadata.format_version).toBe("2");
    expectSameState(info.state, old);
  });
});

describe("damaged compressed stream states", () => {
  /** Rewrites a checkpoint with a changed tensor or metadata and a valid checksum, as a buggy writer or tool would. */
  function tampered(edit: (tensors: Record<string, Tensor>, metadata: Record<string, string>) => void): string {
    const path = join(tempDir(), "c.safetensors");
    writeCheckpoint(path, syntheticState(3, ID, [true, true, false]), ID);
    const { tensors, metadata } = decodeSafetensors(readFileSync(path), path);
    edit(tensors, metadata);
    writeFileSync(path, encodeSafetensors(tensors, metadata));
    return path;
  }

  function expectError(path: string, message: RegExp): void {
    let caught: unknown;
    try {
      readCheckpoint(path, ID, 3);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CheckpointError);
    const text = (caught as Error).message;
    expect(text).toContain(`${path}: `);
    expect(text).toMatch(message);
  }

  const G = "stream_g.shuffle4_deflate";
  const u8 = (data: Uint8Array): Tensor => ({ dtype: "U8", shape: [data.length], data });

  it("corrupt bytes", () => {
    const path = tampered((t) => {
      const data = (t[G].data as Uint8Array).slice();
      data[Math.floor(data.length / 2)] ^= 0xff;
      data[data.length - 1] ^= 0xff;
      t[G] = u8(data);
    });
    expectError(path, /tensor "stream_g" \(stored as "stream_g\.shuffle4_deflate"\): compressed data is corrupt or truncated \(zlib: /);
  });

  it("truncated", () => {
    const path = tampered((t) => (t[G] = u8((t[G].data as Uint8Array).slice(0, 20))));
    expectError(path, /tensor "stream_g" \(stored as "stream_g\.shuffle4_deflate"\): compressed data is corrupt or truncated \(zlib: unexpected end of file\)/);
  });

  it("a decoded size that does not match the declared shape", () => {
    const path = tampered((_, m) => {
      const enc = JSON.parse(m[ENCODED_TENSORS_KEY]);
      enc.stream_v.shape = [3, 4, 31];
      m[ENCODED_TENSORS_KEY] = JSON.stringify(enc);
    });
    expectError(path, /tensor "stream_v" \(stored as "stream_v\.shuffle4_deflate"\): decodes to 1440 bytes but its shape needs 1488/);
  });

  it("missing or unusable encoding metadata", () => {
    expectError(tampered((_, m) => delete m[ENCODED_TENSORS_KEY]), /metadata "encoded_tensors" is missing or not a JSON object/);
    expectError(
      tampered((_, m) => (m[ENCODED_TENSORS_KEY] = JSON.stringify({ ...JSON.parse(m[ENCODED_TENSORS_KEY]), stream_g: undefined }))),
      /tensor "stream_g": has no entry in the "encoded_tensors" metadata/,
    );
    expectError(
      tampered((_, m) => (m[ENCODED_TENSORS_KEY] = m[ENCODED_TENSORS_KEY].replace('"codec":"shuffle4_deflate","dtype":"F32","shape":[3,2,5,4,30]', '"codec":"zstd","dtype":"F32","shape":[3,2,5,4,30]'))),
      /tensor "stream_g" \(stored as "stream_g\.shuffle4_deflate"\): unknown codec "zstd"/,
    );
    expectError(tampered((t) => delete t[G]), /tensor "stream_g" \(stored as "stream_g\.shuffle4_deflate"\): the stored tensor is missing/);
  });

  it("a flipped byte in the file is still caught by the whole-file checksum first", () => {
    const path = join(tempDir(), "c.safetensors");
    writeCheckpoint(path, syntheticState(3, ID, [true, true, true]), ID);
    const bytes = readFileSync(path);
    bytes[bytes.length - 100] ^= 0x01;
    writeFileSync(path, bytes);
    expectError(path, /checksum mismatch/);
  });
});

describe("checkpoint of real stream states (quickstart network: 500 neurons, 5 streams × 10 trials)", () => {
  const { config } = loadConfig(join(ROOT, "parameters/quickstart.toml"));
  const A = config.simulation.accumulation_interval;
  let id: CheckpointIdentity;
  let streams: StreamState[];
  let state: TrainingState;
  let path: string;

  beforeAll(() => {
    const connectome = generateConnectome(config);
    const spec = loadNetworkSpec(config, connectome);
    id = checkpointIdentity(config, spec);
    // Two epochs per stream, as after the second update of a run.
    const engine = new SparseCpuEngine(spec);
    streams = [];
    for (let k = 0; k < A; k++) {
      let st: StreamState | null = null;
      for (let round = 0; round < 2; round++)
        st = engine.runEpochSync({ epoch: round * A + k, initialState: st, recWeight: connectome.recWeight, ffWeight: connectome.ffWeight, computeGradient: false, recordActivity: false }).finalState;
      streams.push(st!);
    }
    const scaled = (w: Float32Array, f: number) => w.map((x) => x * f);
    state = {
      epoch: 2 * A,
      recWeight: connectome.recWeight,
      ffWeight: connectome.ffWeight,
      adam: { step: 2, m: [scaled(connectome.recWeight, 1e-3), scaled(connectome.ffWeight, 1e-3)], v: [scaled(connectome.recWeight, 1e-6), scaled(connectome.ffWeight, 1e-6)] },
      streams,
      bestLoss: Infinity,
      losses: null,
      wandbRunId: "",
      logWeights: null,
      counters: newCounters(),
    };
    path = join(tempDir(), "quickstart.safetensors");
    writeCheckpoint(path, state, id);
  });

  it("round-trips exactly and stores the stream states in well under their float32 size", () => {
    const info = readCheckpoint(path, id, A);
    expectSameState(info.state, state);
    const { numNeurons: N, numSlots: S, batchSize: B } = id;
    expect(info.streamStateBytes.decoded).toBe(A * B * N * (1 + 2 * S) * 4);
    // Measured 0.66 here, and 0.66–0.76 at default size (2 to 100 epochs into each stream); random bits give ≈1.
    expect(info.streamStateBytes.stored / info.streamStateBytes.decoded).toBeLessThan(0.8);
    const plain = 4 * 3 * (state.recWeight.length + state.ffWeight.length);
    expect(info.fileBytes).toBeLessThan(plain + 0.8 * info.streamStateBytes.decoded);
  });

  const hasNumpy = spawnSync("python3", ["-c", "import numpy, zlib"], { stdio: "ignore" }).status === 0;

  it.skipIf(!hasNumpy)("the README's numpy + zlib example decodes the same stream states", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const example = [...readme.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]).find((code) => code.includes("zlib.decompress"));
    expect(example, "README has a numpy + zlib example").toBeDefined();
    const readmePath = '"runs/exp1/checkpoints/checkpoint_latest.safetensors"';
    expect(example).toContain(readmePath);
    const script =
      "import sys, hashlib\n" +
      example!.replace(readmePath, "sys.argv[1]") +
      'print(json.dumps({k: [list(stream(k).shape), stream(k).dtype.str, hashlib.sha256(stream(k).tobytes()).hexdigest()] for k in ["stream_v", "stream_g"]}))\n';
    const r = spawnSync("python3", ["-c", script, path], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const got = JSON.parse(r.stdout.trim().split("\n").at(-1)!);

    const { numNeurons: N, numSlots: S, batchSize: B } = id;
    const sha = (parts: Float32Array[]) => parts.reduce((h, p) => h.update(bits(p)), createHash("sha256")).digest("hex");
    // stream_g[k, c, l, b, j] is exactly the engines' (canonical, slot-major) g of stream k.
    expect(got).toEqual({
      stream_v: [[A, B, N], "<f4", sha(streams.map((s) => s.v))],
      stream_g: [[A, 2, S, B, N], "<f4", sha(streams.map((s) => s.g))],
    });
  });
});

describe("checkpoint writer thread", () => {
  // The compiled module: its worker thread loads dist/io/checkpoint-thread.js (npm test builds first).
  const load = async () => (await import(join(ROOT, "dist/io/checkpoint-writer.js"))) as typeof import("../src/io/checkpoint-writer.js");

  it("writes snapshots in submission order, each as the state was when it was submitted", async () => {
    const { CheckpointWriter } = await load();
    const dir = tempDir();
    const state = syntheticState(2, ID, [true, true]);
    const submitted = structuredClone(state);
    const written: string[] = [];
    const writer = new CheckpointWriter(ID, (seconds, kind) => {
      expect(seconds).toBeGreaterThan(0);
      written.push(kind);
    });
    writer.submit([{ path: join(dir, "best.safetensors"), kind: "best" }, { path: join(dir, "latest-1.safetensors"), kind: "latest" }], state);
    // The loop goes on updating the state in place (Adam) while the thread writes.
    state.recWeight[0] += 1;
    state.adam.m[1][3] = 42;
    state.epoch += 2;
    writer.submit([{ path: join(dir, "latest.safetensors"), kind: "latest" }], state);
    await writer.close();
    expect(written).toEqual(["best", "latest", "latest"]);
    expectSameState(readCheckpoint(join(dir, "best.safetensors"), ID, 2).state, submitted);
    // One encoding, written to both files of the first submission.
    expect(readFileSync(join(dir, "latest-1.safetensors")).equals(readFileSync(join(dir, "best.safetensors")))).toBe(true);
    expectSameState(readCheckpoint(join(dir, "latest.safetensors"), ID, 2).state, state);
  });

  it("reports a failed write, naming the file, on flush and on the next submit", async () => {
    const { CheckpointWriter } = await load();
    const dir = tempDir();
    const bad = join(dir, "missing-dir", "checkpoint_latest.safetensors");
    const writer = new CheckpointWriter(ID, () => {});
    const written: string[] = [];
    const writer2 = new CheckpointWriter(ID, (_, kind) => written.push(kind));
    writer2.submit([{ path: join(dir, "best.safetensors"), kind: "best" }, { path: bad, kind: "latest" }], syntheticState(1, ID, [true]));
    await expect(writer2.flush()).rejects.toThrow(`${bad}: cannot write checkpoint`);
    expect(written).toEqual(["best"]);
    await writer2.close().catch(() => {});
    writer.submit([{ path: bad, kind: "latest" }], syntheticState(1, ID, [true]));
    await expect(writer.flush()).rejects.toThrow(`${bad}: cannot write checkpoint`);
    expect(() => writer.submit([{ path: join(dir, "ok.safetensors"), kind: "latest" }], syntheticState(1, ID, [true]))).toThrow(/cannot write checkpoint/);
    await expect(writer.close()).rejects.toThrow(/cannot write checkpoint/);
  });
});
