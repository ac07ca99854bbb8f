/**
 * The network spec of a run's parameters, with the files they name read: `[targets] file` (per-neuron targets) and,
 * when the van Rossum loss is on, the teacher's recorded spike trains of `[targets] teacher_spikes` or else the
 * teacher's weights of `[student] teacher_file` (a recording is the target when both are set; the weights then only
 * serve the student's initialisation and the weight metrics). Every problem with a file is a ConfigError naming the
 * key and the file (targets-file.ts, teacher-recording.ts).
 */
import { Config } from "../model/config.js";
import { Connectome } from "../model/connectome.js";
import { buildNetworkSpec, NetworkFiles, NetworkSpec } from "../model/network.js";
import { readTargetsFile, readTeacherWeights } from "./targets-file.js";
import { readTeacherRecording, recordingSettings } from "./teacher-recording.js";

export function readNetworkFiles(config: Config, connectome: Connectome): NetworkFiles {
  const vanRossum = config.hyperparameters.loss_weight.van_rossum > 0;
  const recorded = vanRossum ? config.targets.teacher_spikes : undefined;
  return {
    targets: config.targets.file ? readTargetsFile("targets.file", config.targets.file, connectome) : null,
    teacherWeights: vanRossum && !recorded ? readTeacherWeights("student.teacher_file", config.student.teacher_file!, connectome) : null,
    teacherRecording: recorded ? readTeacherRecording("targets.teacher_spikes", recorded, recordingSettings(config, connectome)) : null,
  };
}

export function loadNetworkSpec(config: Config, connectome: Connectome): NetworkSpec {
  return buildNetworkSpec(config, connectome, readNetworkFiles(config, connectome));
}
