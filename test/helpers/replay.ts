/** Replaying a recorded teacher in tests, epoch by epoch as the trainer does. */
import { EpochResult, epochSteps, StreamState } from "../../src/engine/engine.js";
import { NetworkSpec } from "../../src/model/network.js";
import { InputSpikes } from "../../src/model/inputs.js";
import {
  recordedInputs,
  recordedOutputs,
  recordedSlices,
  RecordingPlace,
  recordingPlace,
  replayStartsFromRest,
  SpikeStrides,
  TeacherRecording,
} from "../../src/model/teacher-replay.js";

/** Runs `epochs` epochs as the trainer does: epoch e on stream e mod A from its carried state, from rest at slice 0. */
export async function replayRun(
  run: (epoch: number, initial: StreamState | null) => Promise<EpochResult> | EpochResult,
  spec: NetworkSpec,
  streams: number,
  epochs: number,
  each: (epoch: number, r: EpochResult) => void,
): Promise<void> {
  const states: (StreamState | null)[] = Array.from({ length: streams }, () => null);
  for (let e = 0; e < epochs; e++) {
    const k = e % streams;
    const initial = replayStartsFromRest(spec.teacherRecording!, e, spec.batchSize, epochSteps(spec)) ? null : states[k];
    const r = await run(e, initial);
    states[k] = r.finalState;
    each(e, r);
  }
}

export interface RecordedEpoch extends RecordingPlace {
  inputs: InputSpikes;
  /** The teacher's output spikes, in `layout` (default [b][t][j]: b·T·N + t·N + j). */
  teacherSpikes: Uint8Array;
}

/**
 * Global epoch `epoch` of a run replaying `recording` with `streams` streams: its place, its input spikes and the
 * teacher's output spikes, unpacked into `out`'s buffers when given (engines pass theirs, once per epoch) or fresh
 * ones.
 */
export function recordedEpoch(
  recording: TeacherRecording,
  epoch: number,
  streams: number,
  batchSize: number,
  epochSteps: number,
  out: { inputs?: InputSpikes; teacherSpikes?: Uint8Array; layout?: SpikeStrides } = {},
): RecordedEpoch {
  if (recording.trials !== streams * batchSize) throw new Error(`a recording of ${recording.trials} trials does not hold ${streams} streams of ${batchSize} trials`);
  const slices = recordedSlices(recording, epochSteps);
  if (!Number.isInteger(slices) || slices < 1) throw new Error(`a recording of ${recording.steps} steps does not hold whole epochs of ${epochSteps} steps`);
  const place = recordingPlace(epoch, streams, slices);
  const N = recording.numNeurons;
  const inputs = out.inputs ?? { trials: batchSize, steps: epochSteps, numInputs: recording.numInputs, data: new Uint8Array(batchSize * epochSteps * recording.numInputs) };
  const teacherSpikes = out.teacherSpikes ?? new Uint8Array(batchSize * epochSteps * N);
  recordedInputs(recording, place, batchSize, epochSteps, inputs);
  recordedOutputs(recording, place, batchSize, epochSteps, teacherSpikes, out.layout ?? { sb: epochSteps * N, st: N, sj: 1 });
  return { ...place, inputs, teacherSpikes };
}
