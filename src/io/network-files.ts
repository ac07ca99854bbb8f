/**
 * The network spec of a run's parameters, with the files they name read: `[targets] file` (per-neuron targets) and,
 * when the van Rossum loss is on, the teacher's weights of `[student] teacher_file`. Every problem with a file is a
 * ConfigError naming the key and the file (targets-file.ts).
 */
import { Config } from "../model/config.js";
import { Connectome } from "../model/connectome.js";
import { buildNetworkSpec, NetworkFiles, NetworkSpec } from "../model/network.js";
import { readTargetsFile, readTeacherWeights } from "./targets-file.js";

export function readNetworkFiles(config: Config, connectome: Connectome): NetworkFiles {
  return {
    targets: config.targets.file ? readTargetsFile("targets.file", config.targets.file, connectome) : null,
    teacherWeights: config.hyperparameters.loss_weight.van_rossum > 0 ? readTeacherWeights("student.teacher_file", config.student.teacher_file!, connectome) : null,
  };
}

export function loadNetworkSpec(config: Config, connectome: Connectome): NetworkSpec {
  return buildNetworkSpec(config, connectome, readNetworkFiles(config, connectome));
}
