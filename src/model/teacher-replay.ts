/**
 * Replaying a recorded teacher (`[targets] teacher_spikes`, io/teacher-recording.ts; MODEL-HEAD 6): the recording
 * holds the teacher's input and output spike trains of `streams` streams × batch_size trials over a whole number of
 * epochs, each stream simulated from rest with its state carried, bit-packed. Training replays it epoch by epoch:
 *
 *   global epoch e → stream k = e mod A, pass n = ⌊e/A⌋, slice = n mod (steps / T_epoch),
 *
 * (A = streams = accumulation_interval, T_epoch = chunk_steps·chunks_per_epoch): its inputs are stream k's B trials
 * (recorded trials k·B .. k·B + B − 1) over steps [slice·T_epoch, (slice + 1)·T_epoch), and the teacher's output
 * spikes of the same trials and steps are the van Rossum loss's target. At slice 0 a stream starts from rest, as the
 * recording did, so that every pass over the recording replays the teacher exactly (the original resets its model at
 * every data-epoch start). Everything is a function of the epoch index: any worker replays any epoch alike.
 *
 * Bits are packed little-endian within a byte, one row of ⌈width/8⌉ bytes per (trial, step): bit q of byte i is
 * column 8i + q (numpy: np.unpackbits(a, axis=-1, bitorder="little")[..., :width]). Pure: no I/O.
 */
import { InputSpikes } from "./inputs.js";

/**
 * A teacher's recorded spike trains, bit-packed: inputs[(trial·steps + t)·⌈numInputs/8⌉ + i/8] and
 * outputs[(trial·steps + t)·⌈numNeurons/8⌉ + j/8]; trial k·B + b is stream k's trial b.
 */
export interface TeacherRecording {
  trials: number;
  steps: number;
  numInputs: number;
  numNeurons: number;
  inputs: Uint8Array;
  outputs: Uint8Array;
}

/** Bytes of one packed row of `width` bits. */
export function packedWidth(width: number): number {
  return (width + 7) >> 3;
}

/** Packs bits[srcOffset .. srcOffset + width) (each 0 or non-zero) into dst[dstOffset ..], little-endian within a byte. */
export function packRow(bits: ArrayLike<number>, srcOffset: number, width: number, dst: Uint8Array, dstOffset: number): void {
  const bytes = packedWidth(width);
  for (let i = 0; i < bytes; i++) {
    let v = 0;
    const col = i << 3;
    const n = Math.min(8, width - col);
    for (let q = 0; q < n; q++) if (bits[srcOffset + col + q]) v |= 1 << q;
    dst[dstOffset + i] = v;
  }
}

/** rows × width 0/1 values (row-major) as rows × ⌈width/8⌉ packed bytes. */
export function packBits(bits: ArrayLike<number>, rows: number, width: number): Uint8Array {
  const w = packedWidth(width);
  const out = new Uint8Array(rows * w);
  for (let r = 0; r < rows; r++) packRow(bits, r * width, width, out, r * w);
  return out;
}

/** The inverse of packBits: rows × width values 0/1 (padding bits of the last byte are ignored). */
export function unpackBits(packed: Uint8Array, rows: number, width: number): Uint8Array {
  const w = packedWidth(width);
  const out = new Uint8Array(rows * width);
  for (let r = 0; r < rows; r++) unpackRow(packed, r * w, width, out, r * width, 1);
  return out;
}

/** Unpacks one row of `width` bits into out[offset + c·stride] for columns c (every column written, 0 or 1). */
function unpackRow(packed: Uint8Array, srcOffset: number, width: number, out: { [i: number]: number }, offset: number, stride: number): void {
  const bytes = packedWidth(width);
  for (let i = 0; i < bytes; i++) {
    const v = packed[srcOffset + i];
    const col = i << 3;
    const n = Math.min(8, width - col);
    let at = offset + col * stride;
    for (let q = 0; q < n; q++, at += stride) out[at] = (v >> q) & 1;
  }
}

/** Where a global epoch sits in the recording. */
export interface RecordingPlace {
  /** Its stream k = e mod A: recorded trials k·B .. k·B + B − 1. */
  stream: number;
  /** Its pass n = ⌊e/A⌋ over the stream (the update index in training). */
  pass: number;
  /** The recorded epoch it replays, n mod (steps / T_epoch): steps slice·T_epoch .. (slice + 1)·T_epoch − 1. */
  slice: number;
}

/** The number of recorded epochs per stream (steps / T_epoch). */
export function recordedSlices(recording: Pick<TeacherRecording, "steps">, epochSteps: number): number {
  return recording.steps / epochSteps;
}

export function recordingPlace(epoch: number, streams: number, slices: number): RecordingPlace {
  const pass = Math.floor(epoch / streams);
  return { stream: epoch % streams, pass, slice: pass % slices };
}

/** The place of `epoch` in the recording of a network with `batchSize` trials and `epochSteps` steps per epoch. */
export function placeOf(recording: Pick<TeacherRecording, "trials" | "steps">, epoch: number, batchSize: number, epochSteps: number): RecordingPlace {
  return recordingPlace(epoch, recording.trials / batchSize, recordedSlices(recording, epochSteps));
}

/**
 * A recorded stream replays the teacher exactly only from the state the recording started from: the rest state, at
 * every slice 0 (the trainer passes initialState null there).
 */
export function replayStartsFromRest(recording: Pick<TeacherRecording, "trials" | "steps">, epoch: number, batchSize: number, epochSteps: number): boolean {
  return placeOf(recording, epoch, batchSize, epochSteps).slice === 0;
}

/**
 * What a recorded channel contributes to a network's inputs: the teacher's recorded inputs, or (for teacher forcing,
 * where the network's inputs are the N_in recorded inputs followed by the N recorded outputs) its output spikes.
 */
export type RecordedChannel = "inputs" | "outputs";

/** The network's inputs today: the recorded inputs, nothing else. */
export const RECORDED_INPUTS: readonly RecordedChannel[] = ["inputs"];

/**
 * An epoch's input spikes for the network's M = out.numInputs inputs from the recording: the channels' columns
 * concatenated in order (their widths must add up to M), in the layout engines use (inputs.ts InputSpikes,
 * data[(b·steps + t)·M + i]). Every entry is written; nothing is allocated.
 */
export function recordedInputs(
  recording: TeacherRecording,
  place: RecordingPlace,
  batchSize: number,
  epochSteps: number,
  out: InputSpikes,
  channels: readonly RecordedChannel[] = RECORDED_INPUTS,
): InputSpikes {
  const M = out.numInputs;
  const sources = channels.map((c) => (c === "inputs" ? { data: recording.inputs, width: recording.numInputs } : { data: recording.outputs, width: recording.numNeurons }));
  const total = sources.reduce((s, c) => s + c.width, 0);
  if (total !== M) throw new Error(`recorded channels ${channels.join(" + ")} give ${total} inputs, the network has ${M}`);
  if (out.trials !== batchSize || out.steps !== epochSteps) throw new Error(`input buffer of ${out.trials} trials × ${out.steps} steps, expected ${batchSize} × ${epochSteps}`);
  const { steps } = recording;
  for (let b = 0; b < batchSize; b++) {
    const trial = place.stream * batchSize + b;
    for (let t = 0; t < epochSteps; t++) {
      const row = trial * steps + place.slice * epochSteps + t;
      let col = (b * epochSteps + t) * M;
      for (const s of sources) {
        unpackRow(s.data, row * packedWidth(s.width), s.width, out.data, col, 1);
        col += s.width;
      }
    }
  }
  return out;
}

/** Where spike (trial b, step t, neuron j) goes: b·sb + t·st + j·sj (van-rossum.ts SpikeTrainLayout's strides). */
export interface SpikeStrides {
  sb: number;
  st: number;
  sj: number;
}

/**
 * The teacher's recorded output spikes of an epoch into out[b·sb + t·st + j·sj] (0/1; entries outside the layout,
 * an engine's padding, are left alone). Nothing is allocated.
 */
export function recordedOutputs(
  recording: TeacherRecording,
  place: RecordingPlace,
  batchSize: number,
  epochSteps: number,
  out: { [i: number]: number },
  layout: SpikeStrides,
): void {
  const { steps, numNeurons: N } = recording;
  const w = packedWidth(N);
  for (let b = 0; b < batchSize; b++) {
    const trial = place.stream * batchSize + b;
    for (let t = 0; t < epochSteps; t++) {
      const row = trial * steps + place.slice * epochSteps + t;
      unpackRow(recording.outputs, row * w, N, out, b * layout.sb + t * layout.st, layout.sj);
    }
  }
}

/** Adds each neuron's recorded spikes over an epoch's place (its B trials × T steps) to counts[j]. */
export function addRecordedSpikeCounts(recording: TeacherRecording, place: RecordingPlace, batchSize: number, epochSteps: number, counts: Float64Array): void {
  const { steps, numNeurons: N } = recording;
  const w = packedWidth(N);
  for (let b = 0; b < batchSize; b++) {
    const trial = place.stream * batchSize + b;
    for (let t = 0; t < epochSteps; t++) {
      // One packed row: the set bits of each byte are neurons 8i + q.
      const row = (trial * steps + place.slice * epochSteps + t) * w;
      for (let i = 0; i < w; i++) {
        let v = recording.outputs[row + i];
        for (let q = 0; v !== 0; q++, v >>= 1) if (v & 1) counts[(i << 3) + q]++;
      }
    }
  }
}
