/**
 * Spike-train teachers (issue #16): `snn-sim --teacher --export-teacher` records a teacher's input and output spike
 * trains (io/teacher-recording.ts), `[targets] teacher_spikes` replays them epoch by epoch (model/teacher-replay.ts)
 * and fits the recorded outputs with the van Rossum loss. The key check: a student with the teacher's own weights
 * replays the teacher exactly, in both engines and on every slice of the recording.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { EpochResult, epochSteps, StreamState } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { TfjsEngine } from "../src/engine/tfjs/tfjs-engine.js";
import { decodeMessage, encodeMessage, NetworkMessage } from "../src/distributed/protocol.js";
import { MetricsCsv } from "../src/io/run-dir.js";
import { readTeacherRecording, recordingSettings, recordTeacher, TEACHER_SPIKES_FORMAT, writeTeacherRecording } from "../src/io/teacher-recording.js";
import { readSafetensorsFile } from "../src/platform/atomic-file.js";
import { ConfigError, parseConfig } from "../src/model/config.js";
import { generateConnectome } from "../src/model/connectome.js";
import { NetworkSpec } from "../src/model/network.js";
import { loadNetworkSpec } from "../src/io/network-files.js";
import { Rng } from "../src/model/rng.js";
import {
  packBits,
  packedWidth,
  placeOf,
  recordingPlace,
  replayStartsFromRest,
  TeacherRecording,
  unpackBits,
} from "../src/model/teacher-replay.js";
import { perturbLognormal } from "../src/training/student.js";
import { expectGradientsAgree, expectSameEpoch } from "./helpers/engine-checks.js";
import { recordedEpoch, replayRun } from "./helpers/replay.js";
import { replaceOnce } from "./helpers/parameter-text.js";
import { coord, ensureBuilt, finalWeights, metricRows, SIM, start, tempDir } from "./helpers/runs.js";
import { smallNetwork, smallNetworkToml, SmallNetworkOptions } from "./helpers/small-network.js";

beforeAll(() => ensureBuilt());

describe("bit packing", () => {
  it("packs little-endian within a byte, as numpy's unpackbits(bitorder='little') reads it", () => {
    // Columns 0, 2, 3 and 8 set, width 9: byte 0 = 1 + 4 + 8 = 13, byte 1 = 1 (bit 0 = column 8).
    // np.unpackbits(np.array([[13, 1]], np.uint8), axis=-1, bitorder="little")[..., :9] = [[1,0,1,1,0,0,0,0,1]].
    const bits = Uint8Array.from([1, 0, 1, 1, 0, 0, 0, 0, 1]);
    expect(Array.from(packBits(bits, 1, 9))).toEqual([13, 1]);
    expect(Array.from(unpackBits(Uint8Array.from([13, 1]), 1, 9))).toEqual(Array.from(bits));
    // Padding bits of the last byte are ignored on the way back.
    expect(Array.from(unpackBits(Uint8Array.from([13, 0xff]), 1, 9))).toEqual(Array.from(bits));
    expect(packedWidth(8)).toBe(1);
    expect(packedWidth(9)).toBe(2);
    expect(packedWidth(150)).toBe(19);
  });

  it("round-trips random trains of odd widths", () => {
    const rng = new Rng(3);
    for (const width of [1, 7, 8, 9, 13, 63, 150]) {
      const rows = 17;
      const bits = Uint8Array.from({ length: rows * width }, () => (rng.uniform() < 0.3 ? 1 : 0));
      const packed = packBits(bits, rows, width);
      expect(packed.length).toBe(rows * Math.ceil(width / 8));
      expect(Array.from(unpackBits(packed, rows, width))).toEqual(Array.from(bits));
    }
  });
});

describe("replay: epochs to (stream, slice)", () => {
  it("A = 2 streams over 3 recorded epochs: stream e mod 2, slice ⌊e/2⌋ mod 3, from rest at slice 0", () => {
    const table = Array.from({ length: 14 }, (_, e) => {
      const p = recordingPlace(e, 2, 3);
      return [e, p.stream, p.pass, p.slice];
    });
    expect(table).toEqual([
      [0, 0, 0, 0],
      [1, 1, 0, 0],
      [2, 0, 1, 1],
      [3, 1, 1, 1],
      [4, 0, 2, 2],
      [5, 1, 2, 2],
      [6, 0, 3, 0],
      [7, 1, 3, 0],
      [8, 0, 4, 1],
      [9, 1, 4, 1],
      [10, 0, 5, 2],
      [11, 1, 5, 2],
      [12, 0, 6, 0],
      [13, 1, 6, 0],
    ]);
    // The same from a recording's shape (2 streams × 4 trials, 3 epochs of 10 steps).
    const shape = { trials: 8, steps: 30 };
    expect(placeOf(shape, 9, 4, 10)).toEqual({ stream: 1, pass: 4, slice: 1 });
    expect(Array.from({ length: 14 }, (_, e) => replayStartsFromRest(shape, e, 4, 10))).toEqual(table.map(([, , , slice]) => slice === 0));
  });

  it("an epoch's inputs and teacher spikes are its stream's trials over its slice's steps", () => {
    // A synthetic recording whose bit (trial, step, column) is set iff (trial·7 + step·3 + column) mod 5 = 0.
    const [B, T, A, E, M, N] = [2, 4, 3, 2, 11, 9];
    const trials = A * B;
    const steps = E * T;
    const bit = (trial: number, step: number, col: number) => ((trial * 7 + step * 3 + col) % 5 === 0 ? 1 : 0);
    const dense = (width: number) => Uint8Array.from({ length: trials * steps * width }, (_, i) => bit(Math.floor(i / (steps * width)), Math.floor(i / width) % steps, i % width));
    const rec: TeacherRecording = { trials, steps, numInputs: M, numNeurons: N, inputs: packBits(dense(M), trials * steps, M), outputs: packBits(dense(N), trials * steps, N) };
    for (const epoch of [0, 4, 5, 7]) {
      const r = recordedEpoch(rec, epoch, A, B, T);
      const k = epoch % A;
      const slice = Math.floor(epoch / A) % E;
      expect([r.stream, r.slice]).toEqual([k, slice]);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          for (let i = 0; i < M; i++) expect(r.inputs.data[(b * T + t) * M + i]).toBe(bit(k * B + b, slice * T + t, i));
          for (let j = 0; j < N; j++) expect(r.teacherSpikes[(b * T + t) * N + j]).toBe(bit(k * B + b, slice * T + t, j));
        }
    }
    // Into an engine's own layout (trial innermost), leaving what the layout does not address alone.
    const out = new Uint8Array(T * N * B + 1).fill(7);
    recordedEpoch(rec, 3, A, B, T, { teacherSpikes: out, layout: { sb: 1, st: N * B, sj: B } });
    expect(out[T * N * B]).toBe(7);
    // Epoch 3: stream 0, slice 1; trial b = 1, step 2, neuron 5.
    expect(out[(2 * N + 5) * B + 1]).toBe(bit(0 * B + 1, 1 * T + 2, 5));
  });
});

/** The small network with A streams, and its spec replaying `recording` with the van Rossum loss alone (or with every term). */
function replaySpec(net: { spec: NetworkSpec }, recording: TeacherRecording, every = false): NetworkSpec {
  const lw = every ? { ...net.spec.lossWeights, van_rossum: 1 } : { firing_rate: 0, cv: 0, silent_penalty: 0, membrane_variance: 0, van_rossum: 1 };
  return { ...net.spec, lossWeights: lw, teacherRecording: recording };
}

describe("the replay reproduces the teacher", () => {
  const A = 2;
  const E = 3;
  const o: SmallNetworkOptions = { accumulationInterval: A, epochs: 12 };
  const net = smallNetwork(o);
  const weights = { recWeight: net.connectome.recWeight, ffWeight: net.connectome.ffWeight };
  const { recording } = recordTeacher(new SparseCpuEngine(net.spec), net.spec, weights, A, E);
  const spec = replaySpec(net, recording);
  const B = spec.batchSize;
  const T = epochSteps(spec);
  const N = spec.constants.numNeurons;
  const M = spec.constants.numInputs;
  const task = (epoch: number, initialState: StreamState | null, w = weights, computeGradient = true) => ({ epoch, initialState, ...w, computeGradient, recordActivity: true });

  it("the recording is the teacher's own simulation: stream k's epochs on the Poisson input of epochs n·A + k, state carried", () => {
    const engine = new SparseCpuEngine(net.spec);
    for (let k = 0; k < A; k++) {
      let state: StreamState | null = null;
      for (let n = 0; n < E; n++) {
        const r = engine.runEpochSync({ epoch: n * A + k, initialState: state, ...weights, computeGradient: false, recordActivity: false });
        state = r.finalState;
        const replayed = recordedEpoch(recording, n * A + k, A, B, T);
        expect(replayed.slice).toBe(n);
        expect(Buffer.from(replayed.teacherSpikes).equals(Buffer.from(engine.recordedActivity().spikes))).toBe(true);
      }
    }
    expect(unpackBits(recording.outputs, recording.trials * recording.steps, N).some((s) => s === 1)).toBe(true);
  });

  it("sparse-cpu: a student with the teacher's weights has van Rossum loss exactly 0 and the recorded spikes, on every slice", async () => {
    const engine = new SparseCpuEngine(spec);
    const slices = new Set<number>();
    await replayRun((e, s) => engine.runEpochSync(task(e, s)), spec, A, 2 * A * E, (e, r) => {
      const expected = recordedEpoch(recording, e, A, B, T);
      slices.add(expected.slice);
      expect(r.losses.van_rossum).toBe(0);
      expect(Buffer.from(engine.recordedActivity().spikes).equals(Buffer.from(expected.teacherSpikes))).toBe(true);
      // Zero distance, zero van Rossum gradient (the other terms are off).
      expect(r.recGrad!.every((g) => g === 0)).toBe(true);
    });
    expect([...slices].sort()).toEqual([0, 1, 2]);
  });

  it("tfjs: the same, spike by spike in the plotted trial and in every neuron's rate, with the recorded inputs", async () => {
    const engine = new TfjsEngine(spec);
    try {
      await replayRun((e, s) => engine.runEpoch(task(e, s, weights, false)), spec, A, 2 * A * E, (e, r) => {
        const expected = recordedEpoch(recording, e, A, B, T);
        expect(r.losses.van_rossum).toBe(0);
        const count = new Float64Array(N);
        expected.teacherSpikes.forEach((s, i) => (count[i % N] += s));
        expect(Array.from(r.rates)).toEqual(Array.from(count, (c) => Math.fround(c / ((B * T * spec.constants.dt) / 1000))));
        const b = spec.plotTrial;
        const steps: number[] = [];
        for (let j = 0; j < N; j++) for (let t = 0; t < T; t++) if (expected.teacherSpikes[(b * T + t) * N + j]) steps.push(t);
        expect(Array.from(r.activity!.spikeSteps)).toEqual(steps);
        const inputSteps: number[] = [];
        for (let i = 0; i < M; i++) for (let t = 0; t < T; t++) if (expected.inputs.data[(b * T + t) * M + i]) inputSteps.push(t);
        expect(Array.from(r.activity!.inputSpikeSteps)).toEqual(inputSteps);
      });
    } finally {
      engine.dispose();
    }
  });

  it("a perturbed student: loss > 0, and sparse-cpu's gradient agrees with tfjs autodiff (van-rossum.test.ts tolerances)", async () => {
    const student = { recWeight: perturbLognormal(weights.recWeight, 0.5, new Rng(11)), ffWeight: perturbLognormal(weights.ffWeight, 0.5, new Rng(12)) };
    for (const s of [spec, replaySpec(net, recording, true)]) {
      const sparse = new SparseCpuEngine(s, "float64");
      const tfjs = new TfjsEngine(s);
      try {
        // Epoch 0 (slice 0, from rest) and epoch 2 (slice 1, from the student's own state after epoch 0).
        const first = sparse.runEpochSync(task(0, null, student));
        const firstTf = await tfjs.runEpoch(task(0, null, student));
        const later = sparse.runEpochSync(task(2, first.finalState, student));
        const laterTf = await tfjs.runEpoch(task(2, first.finalState, student));
        for (const [a, b] of [
          [firstTf, first],
          [laterTf, later],
        ]) {
          expect(b.losses.van_rossum).toBeGreaterThan(0.05);
          expectSameEpoch(a, b);
          expectGradientsAgree(a, b, { maxNorm: 5e-3, above1e2: 1e-2, above1e3: 3e-2 });
        }
      } finally {
        tfjs.dispose();
      }
    }
  });

  it("the recording travels in the network message, validated for its sizes", () => {
    const m: NetworkMessage = { type: "network", spec };
    const back = decodeMessage(encodeMessage(m)) as NetworkMessage;
    expect(back.spec.teacherRecording!.outputs).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(back.spec.teacherRecording!.inputs).equals(Buffer.from(recording.inputs))).toBe(true);
    const short = { ...m, spec: { ...spec, teacherRecording: { ...recording, outputs: recording.outputs.subarray(1) } } };
    expect(() => decodeMessage(encodeMessage(short))).toThrow(/teacherRecording\.outputs: expected \d+ elements/);
    const misfit = { ...m, spec: { ...spec, teacherRecording: { ...recording, steps: recording.steps - 1, inputs: new Uint8Array(recording.trials * (recording.steps - 1) * packedWidth(M)), outputs: new Uint8Array(recording.trials * (recording.steps - 1) * packedWidth(N)) } } };
    expect(() => decodeMessage(encodeMessage(misfit))).toThrow(/teacherRecording: .* do not fit the network/);
  });

  it("file round trip: the tensors numpy reads, the metadata, and the checks on reading", () => {
    const dir = tempDir();
    const file = join(dir, "rec.safetensors");
    const settings = recordingSettings(net.config, net.connectome);
    writeTeacherRecording(file, { ...settings, recording, seed: 7 });
    const { tensors, metadata } = readSafetensorsFile(file);
    expect(tensors.input_spikes).toMatchObject({ dtype: "U8", shape: [A * B, E * T, packedWidth(M)] });
    expect(tensors.output_spikes).toMatchObject({ dtype: "U8", shape: [A * B, E * T, packedWidth(N)] });
    expect(metadata).toMatchObject({
      format: TEACHER_SPIKES_FORMAT,
      network_hash: net.connectome.hash,
      dt: "1",
      chunk_steps: "20",
      chunks_per_epoch: "3",
      batch_size: "3",
      streams: "2",
      num_inputs: "20",
      num_neurons: "60",
      epochs: "3",
      seed: "7",
    });
    const back = readTeacherRecording("targets.teacher_spikes", file, settings);
    expect(back).toEqual(recording);
    const refused = (s: Partial<typeof settings>) => () => readTeacherRecording("targets.teacher_spikes", file, { ...settings, ...s });
    expect(refused({ batchSize: 4 })).toThrow(new ConfigError(`targets.teacher_spikes "${file}": recorded with batch_size = 3, these parameters have simulation.batch_size = 4`));
    expect(refused({ chunkSteps: 30 })).toThrow(/recorded with chunk_steps = 20, these parameters have simulation\.chunk_steps = 30/);
    expect(refused({ networkHash: "0".repeat(64) })).toThrow(/recorded from a different network/);
    // One epoch of 60 steps is too long for a recording whose epochs were 20 steps long... made with matching settings.
    const shortFile = join(dir, "short.safetensors");
    const cut = { ...recording, steps: T / 2, inputs: recording.inputs.subarray(0, A * B * (T / 2) * packedWidth(M)), outputs: recording.outputs.subarray(0, A * B * (T / 2) * packedWidth(N)) };
    writeTeacherRecording(shortFile, { ...settings, recording: cut, seed: 7 });
    expect(() => readTeacherRecording("targets.teacher_spikes", shortFile, settings)).toThrow(/holds 30 steps per trial, shorter than one epoch \(60 steps/);
  });

  it("loadNetworkSpec puts the recording in the network, replacing the teacher simulated on the fly, and hashes it", () => {
    const dir = tempDir();
    const toml = (extra: string) =>
      smallNetworkToml(o).replace("[targets]", `[targets]\nteacher_spikes = "rec.safetensors"`).replace("loss_weight.membrane_variance = 10.0", `loss_weight.membrane_variance = 10.0\n${extra}`);
    writeTeacherRecording(join(dir, "rec.safetensors"), { ...recordingSettings(net.config, net.connectome), recording, seed: 7 });
    const config = parseConfig(toml("loss_weight.van_rossum = 1.0"), "p", dir);
    const connectome = generateConnectome(config);
    const loaded = loadNetworkSpec(config, connectome);
    expect(loaded.teacherRecording).toEqual(recording);
    expect(loaded.teacherRecWeight).toBeUndefined();
    const other = { ...recording, outputs: recording.outputs.slice() };
    other.outputs[0] ^= 1;
    writeTeacherRecording(join(dir, "rec.safetensors"), { ...recordingSettings(net.config, net.connectome), recording: other, seed: 7 });
    expect(loadNetworkSpec(config, connectome).hash).not.toBe(loaded.hash);
    expect(() => parseConfig(toml(""), "p", dir)).toThrow(
      new ConfigError(`targets.teacher_spikes "${join(dir, "rec.safetensors")}": a recorded teacher is fitted with the van Rossum loss, which is off; set hyperparameters.loss_weight.van_rossum > 0`),
    );
  });
});

// ---- Through the CLIs -------------------------------------------------------------------------------------------

/**
 * A student replaying the recording `recording` with the van Rossum loss alone (τ = 5 ms): the small network of the
 * engine tests driven at 25 Hz (E ≈ 7 Hz, I ≈ 9 Hz), 8 trials × 4 chunks of 25 steps per epoch, 4 streams, started
 * from the generated (= the teacher's) weights with lognormal noise σ = 0.5, learning rate 0.1.
 */
function studentParams(dir: string, o: { epochs: number; name?: string; lr?: number; recording?: string; vanRossum?: number; sigma?: number }): string {
  let t = smallNetworkToml({ inputRateHz: 25, chunkSteps: 25, chunksPerEpoch: 4 });
  t = replaceOnce(t, "batch_size = 3", "batch_size = 8");
  t = replaceOnce(t, "epochs = 10\naccumulation_interval = 1\ncheckpoint_interval = 10", `epochs = ${o.epochs}\naccumulation_interval = 4\ncheckpoint_interval = 8`);
  t = replaceOnce(t, "[targets]", `[targets]\nteacher_spikes = "${o.recording ?? "teacher-spikes.safetensors"}"`);
  t = replaceOnce(t, "[hyperparameters]", `[hyperparameters]\nlearning_rate = ${o.lr ?? 0.1}\nvan_rossum_tau_decay = 5.0`);
  for (const k of ["firing_rate", "cv", "silent_penalty"]) t = replaceOnce(t, new RegExp(`^loss_weight\\.${k} = .*$`, "m"), `loss_weight.${k} = 0.0`);
  t = replaceOnce(t, /^loss_weight\.membrane_variance = .*$/m, `loss_weight.membrane_variance = 0.0\nloss_weight.van_rossum = ${o.vanRossum ?? 1.0}`);
  const sigma = o.sigma ?? 0.5;
  if (sigma > 0) t += `\n[student]\nperturbation = "lognormal"\nperturbation_sigma = ${sigma}\n`;
  const file = join(dir, `${o.name ?? "params"}.toml`);
  writeFileSync(file, t);
  return file;
}

async function sim(args: string[]): Promise<{ code: number; output: string }> {
  const p = start(SIM, args);
  return { code: await p.exit, output: p.output() };
}

describe("teacher spikes through the CLIs", () => {
  it("snn-sim records, snn-coord replays: the distance falls, bit-identical with 1 and 2 workers and across a resume", async () => {
    const dir = tempDir();
    const p = studentParams(dir, { epochs: 32 });
    const recorded = await sim([p, "--teacher", "--export-teacher", join(dir, "teacher-spikes.safetensors"), "--epochs", "2"]);
    expect(recorded.code, recorded.output).toBe(0);
    expect(recorded.output).toMatch(/wrote the teacher's spike trains \(4 streams × 8 trials × 200 steps of 20 inputs and 60 neurons/);
    expect(readSafetensorsFile(join(dir, "teacher-spikes.safetensors")).metadata).toMatchObject({ format: TEACHER_SPIKES_FORMAT, streams: "4", epochs: "2" });

    const one = await coord([p, "--workers", "1", "--output", join(dir, "one"), "--no-figures"]);
    expect(one.code, one.output).toBe(0);
    expect(one.output).toMatch(/Van Rossum Loss: \d/);
    const two = await coord([p, "--workers", "2", "--output", join(dir, "two"), "--no-figures"]);
    expect(two.code, two.output).toBe(0);
    expect(metricRows(join(dir, "two"))).toEqual(metricRows(join(dir, "one")));
    expect(finalWeights(join(dir, "two"))).toEqual(finalWeights(join(dir, "one")));

    // Updates alternate between the recording's two slices: compare like with like, the first pass with the last.
    // Measured: 0.092 + 0.459 in the first two updates, 0.047 + 0.338 in the last two.
    const vr = MetricsCsv.read(join(dir, "one/metrics.csv")).map((r) => r.van_rossum_loss as number);
    expect(vr).toHaveLength(8);
    for (const x of vr) expect(x).toBeGreaterThan(0);
    expect(vr[6]).toBeLessThan(0.8 * vr[0]);
    expect(vr[7]).toBeLessThan(0.9 * vr[1]);

    // Stopped after 16 epochs and resumed: the same as the uninterrupted run.
    const part = await coord([p, "--workers", "1", "--output", join(dir, "resumed"), "--epochs", "16", "--no-figures"]);
    expect(part.code, part.output).toBe(0);
    const rest = await coord([p, "--workers", "2", "--output", join(dir, "resumed"), "--resume", "auto", "--epochs", "32", "--no-figures"]);
    expect(rest.code, rest.output).toBe(0);
    expect(metricRows(join(dir, "resumed"))).toEqual(metricRows(join(dir, "one")));
    expect(finalWeights(join(dir, "resumed"))).toEqual(finalWeights(join(dir, "one")));

    // The student with the teacher's weights (no noise) replays the recording exactly: snn-sim measures distance 0
    // (it simulates stream 0 as training does: epoch 3 is the second slice of the second pass).
    const exact = studentParams(dir, { epochs: 32, name: "exact", sigma: 0 });
    const replay = await sim([exact, "--epochs", "4", "--export", join(dir, "epoch.safetensors")]);
    expect(replay.code, replay.output).toBe(0);
    expect(JSON.parse(readSafetensorsFile(join(dir, "epoch.safetensors")).metadata.losses).van_rossum).toBe(0);
  });

  it("bad recordings: exit code 2, one line naming targets.teacher_spikes and the file, no run directory", async () => {
    const dir = tempDir();
    const at = (f: string) => join(dir, f);
    const base = readFileSync(studentParams(dir, { epochs: 8, name: "base" }), "utf8");
    const record = async (name: string, edit: (t: string) => string) => {
      const file = at(`${name}.toml`);
      writeFileSync(file, edit(base));
      const r = await sim([file, "--teacher", "--export-teacher", at(`${name}.safetensors`), "--epochs", "2"]);
      expect(r.code, r.output).toBe(0);
      return at(`${name}.safetensors`);
    };
    const good = await record("good", (t) => t);
    const cases: [string, string, RegExp][] = [
      [await record("seed", (t) => replaceOnce(t, /^seed = \d+/m, "seed = 8")), "seed", /recorded from a different network/],
      [await record("dt", (t) => replaceOnce(t, /^dt = .*$/m, "dt = 0.5")), "dt", /recorded with dt = 0\.5, these parameters have simulation\.dt = 1/],
      [await record("batch", (t) => replaceOnce(t, /^batch_size = \d+/m, "batch_size = 5")), "batch", /recorded with batch_size = 5, these parameters have simulation\.batch_size = 8/],
      [await record("streams", (t) => replaceOnce(t, /^accumulation_interval = \d+/m, "accumulation_interval = 2")), "streams", /recorded with streams = 2, these parameters have simulation\.accumulation_interval = 4/],
    ];
    // Shorter than one epoch: the same settings, half an epoch (50 of 100 steps) per trial.
    const settings = { networkHash: readSafetensorsFile(good).metadata.network_hash, dt: 1, chunkSteps: 25, chunksPerEpoch: 4, batchSize: 8, streams: 4, numInputs: 20, numNeurons: 60 };
    const half = { trials: 32, steps: 50, numInputs: 20, numNeurons: 60, inputs: new Uint8Array(32 * 50 * 3), outputs: new Uint8Array(32 * 50 * 8) };
    writeTeacherRecording(at("short.safetensors"), { ...settings, seed: 7, recording: half });
    cases.push([at("short.safetensors"), "short", /holds 50 steps per trial, shorter than one epoch \(100 steps/]);
    const raw = readFileSync(good);
    writeFileSync(at("truncated.safetensors"), raw.subarray(0, raw.length - 100));
    cases.push([at("truncated.safetensors"), "truncated", /file is truncated/]);
    const corrupt = Buffer.from(raw);
    corrupt[corrupt.length - 10] ^= 0x10;
    writeFileSync(at("corrupt.safetensors"), corrupt);
    cases.push([at("corrupt.safetensors"), "corrupt", /checksum mismatch/]);
    cases.push([at("missing.safetensors"), "missing", /file not found/]);

    for (const [file, name, problem] of cases) {
      const p = studentParams(dir, { epochs: 8, name: `student-${name}`, recording: file });
      const out = at(`run-${name}`);
      const r = await coord([p, "--workers", "1", "--output", out, "--no-figures"]);
      expect(r.code, `${name}: ${r.output}`).toBe(2);
      const lines = r.output.trim().split("\n");
      expect(lines, name).toHaveLength(1);
      expect(lines[0]).toContain(`targets.teacher_spikes "${file}": `);
      expect(lines[0]).toMatch(problem);
      expect(existsSync(out), name).toBe(false);
    }
    // Nothing was overwritten: the recordings are as they were.
    expect(readFileSync(good).equals(raw)).toBe(true);

    // teacher_spikes without the van Rossum loss.
    const off = studentParams(dir, { epochs: 8, name: "off", recording: good, vanRossum: 0 });
    const r = await coord([off, "--workers", "1", "--output", at("run-off"), "--no-figures"]);
    expect(r.code, r.output).toBe(2);
    expect(r.output.trim().split("\n")).toHaveLength(1);
    expect(r.output).toContain(`targets.teacher_spikes "${good}": a recorded teacher is fitted with the van Rossum loss, which is off`);
    expect(existsSync(at("run-off"))).toBe(false);
    // snn-sim --export-teacher without --teacher is a usage error, and writes nothing.
    const usage = await sim([at("good.toml"), "--export-teacher", at("x.safetensors")]);
    expect(usage.code).toBe(2);
    expect(usage.output).toMatch(/--export-teacher: records the teacher; add --teacher/);
    expect(existsSync(at("x.safetensors"))).toBe(false);
  });
});
