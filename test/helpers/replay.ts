/** Replaying a recorded teacher in tests, epoch by epoch as the trainer does. */
import { EpochResult, epochSteps, StreamState } from "../../src/engine/engine.js";
import { NetworkSpec } from "../../src/model/network.js";
import { replayStartsFromRest } from "../../src/model/teacher-replay.js";

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

