/**
 * Teacher spike recordings (`snn-sim PARAMS --teacher --export-teacher FILE [--epochs E]`, read by
 * `[targets] teacher_spikes = FILE`): a teacher's input and output spike trains, for a student to replay the exact
 * inputs and fit the recorded outputs with the van Rossum loss (model/teacher-replay.ts; MODEL-HEAD 6).
 *
 * Format: safetensors (readable with Python's `safetensors` or plain numpy), two tensors
 *   input_spikes   U8 [trials, steps, ⌈N_in/8⌉]   the Poisson input the teacher was driven with
 *   output_spikes  U8 [trials, steps, ⌈N/8⌉]      the teacher's spikes
 * bits packed little-endian within a byte: bit q of byte i along the last axis is input (or neuron) 8i + q, so
 *   np.unpackbits(a, axis=-1, bitorder="little")[..., :N]
 * gives trials × steps × N booleans (as 0/1 uint8). trials = streams·batch_size: trial k·B + b is stream k's trial b;
 * steps = E·T_epoch (T_epoch = chunk_steps·chunks_per_epoch). Each stream was simulated from rest through E epochs
 * with its state carried, stream k's n-th epoch driven by the Poisson input of global epoch n·A + k (A = streams), the
 * input a training run would give it. Metadata (strings): format = "snn-train teacher spikes", network_hash (the
 * connectome's structure hash, as targets files carry), dt, chunk_steps, chunks_per_epoch, batch_size, streams,
 * num_inputs, num_neurons, epochs, seed; and the checksum every file this program writes has.
 *
 * Every problem with a file is a ConfigError naming the key, the file and the mismatch.
 */
import { existsSync } from "node:fs";
import { readSafetensorsFile, writeSafetensorsFile } from "../platform/atomic-file.js";
import { SafetensorsError, Tensor } from "../platform/safetensors.js";
import { Config, ConfigError } from "../model/config.js";
import { Connectome } from "../model/connectome.js";
import { epochInputs, NetworkSpec } from "../model/network.js";
import { packedWidth, packRow, TeacherRecording } from "../model/teacher-replay.js";
import { EpochResult, epochSteps, StreamState } from "../engine/engine.js";
import type { SparseCpuEngine } from "../engine/sparse-cpu/sparse-cpu.js";

export const TEACHER_SPIKES_FORMAT = "snn-train teacher spikes";

/**
 * A recording travels to every worker inside the network message, whose frames are limited to 1 GiB
 * (distributed/protocol.ts MAX_MESSAGE_BYTES): larger recordings are refused when read.
 */
export const MAX_RECORDING_BYTES = 512 * 2 ** 20;

/** What a recording must match to be replayed by a network: the simulation settings it was recorded with. */
export interface RecordingSettings {
  networkHash: string;
  dt: number;
  chunkSteps: number;
  chunksPerEpoch: number;
  batchSize: number;
  streams: number;
  numInputs: number;
  numNeurons: number;
}

export interface RecordingFile extends RecordingSettings {
  recording: TeacherRecording;
  seed: number;
}

/** The settings of a run of these parameters that a recording must match. */
export function recordingSettings(config: Config, connectome: Pick<Connectome, "hash" | "numNeurons" | "numInputs">): RecordingSettings {
  const s = config.simulation;
  return {
    networkHash: connectome.hash,
    dt: s.dt,
    chunkSteps: s.chunk_steps,
    chunksPerEpoch: s.chunks_per_epoch,
    batchSize: s.batch_size,
    streams: s.accumulation_interval,
    numInputs: connectome.numInputs,
    numNeurons: connectome.numNeurons,
  };
}

export function writeTeacherRecording(path: string, f: RecordingFile): void {
  const r = f.recording;
  const epochSteps = f.chunkSteps * f.chunksPerEpoch;
  const u8 = (data: Uint8Array, width: number): Tensor => ({ dtype: "U8", shape: [r.trials, r.steps, packedWidth(width)], data });
  writeSafetensorsFile(
    path,
    { input_spikes: u8(r.inputs, r.numInputs), output_spikes: u8(r.outputs, r.numNeurons) },
    {
      format: TEACHER_SPIKES_FORMAT,
      network_hash: f.networkHash,
      dt: String(f.dt),
      chunk_steps: String(f.chunkSteps),
      chunks_per_epoch: String(f.chunksPerEpoch),
      batch_size: String(f.batchSize),
      streams: String(f.streams),
      num_inputs: String(r.numInputs),
      num_neurons: String(r.numNeurons),
      epochs: String(r.steps / epochSteps),
      seed: String(f.seed),
    },
  );
}

/**
 * Simulates the teacher (`engine` on `spec`, Poisson input: a network without a recording) as `streams` streams, each
 * from rest through `epochs` epochs with its state carried, stream k's n-th epoch on the input of global epoch
 * n·streams + k, and records its input and output spikes. Returns the recording and every epoch's result.
 */
export function recordTeacher(
  engine: Pick<SparseCpuEngine, "runEpochSync" | "recordedActivity">,
  spec: NetworkSpec,
  weights: { recWeight: Float32Array; ffWeight: Float32Array },
  streams: number,
  epochs: number,
): { recording: TeacherRecording; results: EpochResult[] } {
  if (spec.teacherRecording) throw new Error("recordTeacher: the teacher's network replays a recording itself");
  const B = spec.batchSize;
  const T = epochSteps(spec);
  const M = spec.constants.numInputs;
  const N = spec.constants.numNeurons;
  const steps = epochs * T;
  const trials = streams * B;
  const [wIn, wOut] = [packedWidth(M), packedWidth(N)];
  const recording: TeacherRecording = {
    trials,
    steps,
    numInputs: M,
    numNeurons: N,
    inputs: new Uint8Array(trials * steps * wIn),
    outputs: new Uint8Array(trials * steps * wOut),
  };
  const inputs = { trials: B, steps: T, numInputs: M, data: new Uint8Array(B * T * M) };
  const results: EpochResult[] = [];
  for (let k = 0; k < streams; k++) {
    let state: StreamState | null = null;
    for (let n = 0; n < epochs; n++) {
      const epoch = n * streams + k;
      const task = { epoch, initialState: state, ...weights, computeGradient: false, recordActivity: false };
      const r = engine.runEpochSync(task);
      results.push(r);
      state = r.finalState;
      epochInputs(spec, task, inputs);
      const { spikes } = engine.recordedActivity();
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          const row = (k * B + b) * steps + n * T + t;
          packRow(inputs.data, (b * T + t) * M, M, recording.inputs, row * wIn);
          packRow(spikes, (b * T + t) * N, N, recording.outputs, row * wOut);
        }
    }
  }
  return { recording, results };
}

type Fail = (problem: string) => never;

/** The recording in `path` (named by parameter `key`), checked against the settings of the network replaying it. */
export function readTeacherRecording(key: string, path: string, expected: RecordingSettings): TeacherRecording {
  const fail: Fail = (problem) => {
    throw new ConfigError(`${key} "${path}": ${problem}`);
  };
  if (!existsSync(path)) fail("file not found (write it with snn-sim PARAMS --teacher --export-teacher FILE)");
  let decoded;
  try {
    decoded = readSafetensorsFile(path, { requireChecksum: true });
  } catch (e) {
    // The decoder's message starts with the path, which ours already names.
    fail(e instanceof SafetensorsError ? e.message.slice(e.source.length + 2) : `cannot read (${(e as Error).message})`);
  }
  const { metadata: m, tensors } = decoded;
  if (m.format !== TEACHER_SPIKES_FORMAT) fail(`not a teacher recording written by snn-sim --export-teacher (format "${m.format ?? ""}")`);
  if (m.network_hash !== expected.networkHash)
    fail(
      `recorded from a different network (network hash ${String(m.network_hash).slice(0, 12)}…, these parameters give ` +
        `${expected.networkHash.slice(0, 12)}…: cell types, assemblies or synapses differ — same seed and connectome parameters needed)`,
    );
  const number = (name: string): number => {
    const v = Number(m[name]);
    if (m[name] === undefined || !Number.isFinite(v)) fail(`metadata "${name}" is missing or not a number (${JSON.stringify(m[name] ?? null)})`);
    return v;
  };
  const same = (name: string, have: number, want: number, what: string, note = "") => {
    if (have !== want) fail(`recorded with ${name} = ${have}, these parameters have ${what} = ${want}${note}`);
  };
  same("dt", number("dt"), expected.dt, "simulation.dt");
  same("chunk_steps", number("chunk_steps"), expected.chunkSteps, "simulation.chunk_steps");
  same("chunks_per_epoch", number("chunks_per_epoch"), expected.chunksPerEpoch, "simulation.chunks_per_epoch");
  same("batch_size", number("batch_size"), expected.batchSize, "simulation.batch_size");
  same("streams", number("streams"), expected.streams, "simulation.accumulation_interval", " (a recording holds one stream per epoch of the interval)");
  same("num_inputs", number("num_inputs"), expected.numInputs, "feedforward.num_neurons");
  same("num_neurons", number("num_neurons"), expected.numNeurons, "recurrent.num_neurons");

  const trials = expected.streams * expected.batchSize;
  const epochSteps = expected.chunkSteps * expected.chunksPerEpoch;
  const shapeOf = (name: string, width: number): number => {
    const t = tensors[name];
    if (!t) fail(`tensor "${name}" is missing`);
    if (t.dtype !== "U8") fail(`tensor "${name}" has dtype ${t.dtype}, expected U8 (bit-packed spikes)`);
    const [nt, steps, bytes] = t.shape;
    if (t.shape.length !== 3 || nt !== trials || bytes !== packedWidth(width))
      fail(`tensor "${name}" has shape [${t.shape.join(", ")}], expected [${trials}, steps, ${packedWidth(width)}] (streams × batch_size trials, ⌈${width}/8⌉ bytes)`);
    return steps;
  };
  const steps = shapeOf("input_spikes", expected.numInputs);
  const outSteps = shapeOf("output_spikes", expected.numNeurons);
  if (outSteps !== steps) fail(`input_spikes has ${steps} steps, output_spikes ${outSteps}: they must match`);
  if (steps < epochSteps)
    fail(`holds ${steps} steps per trial, shorter than one epoch (${epochSteps} steps = simulation.chunk_steps × chunks_per_epoch); record at least --epochs 1`);
  if (steps % epochSteps !== 0) fail(`holds ${steps} steps per trial, not a whole number of epochs of ${epochSteps} steps`);
  const bytes = tensors.input_spikes.data.byteLength + tensors.output_spikes.data.byteLength;
  if (bytes > MAX_RECORDING_BYTES)
    fail(`${(bytes / 2 ** 20).toFixed(0)} MiB of spikes, above the ${MAX_RECORDING_BYTES / 2 ** 20} MiB that travel to workers with the network; record fewer epochs`);
  return {
    trials,
    steps,
    numInputs: expected.numInputs,
    numNeurons: expected.numNeurons,
    inputs: tensors.input_spikes.data as Uint8Array,
    outputs: tensors.output_spikes.data as Uint8Array,
  };
}
