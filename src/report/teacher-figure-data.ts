/**
 * The recorded teacher's side of a figure set (FigureData.teacher): its spikes in the plotted trial and its per-neuron
 * rates in the figure epoch, read from the recording the run replays (model/teacher-replay.ts). Pure: no I/O.
 */
import type { NetworkSpec } from "../model/network.js";
import { addRecordedSpikeCounts, placeOf, recordedOutputs, type RecordingPlace, type TeacherRecording } from "../model/teacher-replay.js";
import type { TeacherFigureData } from "./figure-data.js";

/** Trial b of an epoch's place as a place of its own: with one trial per "stream", stream s is recorded trial s. */
const trialPlace = (place: RecordingPlace, batchSize: number, b: number): RecordingPlace => ({ ...place, stream: place.stream * batchSize + b });

/** Per-neuron rates (Hz) of the recorded teacher over trials [from, to) of an epoch's place. */
function recordedRates(recording: TeacherRecording, place: RecordingPlace, batchSize: number, epochSteps: number, dt: number, from: number, to: number): Float32Array {
  const counts = new Float64Array(recording.numNeurons);
  for (let b = from; b < to; b++) addRecordedSpikeCounts(recording, trialPlace(place, batchSize, b), 1, epochSteps, counts);
  const seconds = ((to - from) * epochSteps * dt) / 1000;
  return Float32Array.from(counts, (c) => c / seconds);
}

/** The recorded teacher's spikes of one trial of a place as CSR (neuron-major, steps increasing). */
function recordedTrialSpikes(recording: TeacherRecording, place: RecordingPlace, epochSteps: number): { spikePtr: Int32Array; spikeSteps: Int32Array } {
  const N = recording.numNeurons;
  const dense = new Uint8Array(epochSteps * N);
  recordedOutputs(recording, place, 1, epochSteps, dense, { sb: 0, st: N, sj: 1 });
  const spikePtr = new Int32Array(N + 1);
  for (let t = 0; t < epochSteps; t++) for (let j = 0; j < N; j++) spikePtr[j + 1] += dense[t * N + j];
  for (let j = 0; j < N; j++) spikePtr[j + 1] += spikePtr[j];
  const spikeSteps = new Int32Array(spikePtr[N]);
  const next = spikePtr.slice(0, N);
  for (let t = 0; t < epochSteps; t++) for (let j = 0; j < N; j++) if (dense[t * N + j]) spikeSteps[next[j]++] = t;
  return { spikePtr, spikeSteps };
}

/**
 * The recorded teacher's figure data for global epoch `epoch` (the figure set's activity epoch): the epoch's place in
 * the recording as training replays it, its plotted trial (spec.plotTrial) and its rates over all trials and over
 * each half of them. Undefined when the network replays no recording.
 */
export function recordedTeacherFigureData(
  spec: Pick<NetworkSpec, "teacherRecording" | "batchSize" | "chunkSteps" | "chunksPerEpoch" | "plotTrial" | "constants">,
  epoch: number,
): TeacherFigureData | undefined {
  const recording = spec.teacherRecording;
  if (!recording) return undefined;
  const B = spec.batchSize;
  const T = spec.chunkSteps * spec.chunksPerEpoch;
  const dt = spec.constants.dt;
  const place = placeOf(recording, epoch, B, T);
  const split = Math.floor(B / 2);
  return {
    ...recordedTrialSpikes(recording, trialPlace(place, B, spec.plotTrial), T),
    rates: recordedRates(recording, place, B, T, dt, 0, B),
    halves: B < 2 ? null : { trials: B, split, first: recordedRates(recording, place, B, T, dt, 0, split), second: recordedRates(recording, place, B, T, dt, split, B) },
  };
}
