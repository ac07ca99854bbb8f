/**
 * Teacher-forced feedforward students ([student] mode = "feedforward"; MODEL-HEAD.md 6): the teacher's recorded
 * recurrent spikes become inputs and recurrence is off, so that each neuron's fit depends only on its own inputs.
 * The student network has the teacher's N neurons; its inputs are the N_in input neurons followed by the N teacher
 * neurons (input N_in + i is teacher neuron i), of input types feedforward.names followed by one per recurrent type
 * ("teacher_<type>", with that type's recurrent synapse kinetics); its feedforward synapses are the feedforward ones
 * followed by the recurrent ones (presynaptic neuron i → input N_in + i, same order, same weights), and it has no
 * recurrent synapses. Driven by the recording's inputs and outputs, the teacher's weights reproduce the teacher's
 * membrane up to the order of floating-point sums (teacher synapses sit in their own slots).
 *
 * The scaling factors keep their meaning: a synapse from a teacher neuron of type k onto type m is scaled by the
 * recurrent factor S[k, m] (scaling-factors.ts), the others by the feedforward factors, so the learned factors
 * compare with the recurrent teacher's directly.
 */
import type { Config } from "./config.js";
import { Connectome, EdgeList, makeEdgeList, structureHash } from "./connectome.js";

/** The input-type name of a recurrent type's teacher neurons. */
export const teacherInputName = (cellType: string) => `teacher_${cellType}`;

/** The parameters of the simulated network: teacher-neuron input types appended, with the recurrent synapse kinetics. */
export function teacherForcedConfig(c: Config): Config {
  const rec = c.recurrent;
  const ff = c.feedforward;
  return {
    ...c,
    feedforward: {
      ...ff,
      names: [...ff.names, ...rec.names.map(teacherInputName)],
      // Recorded, never drawn: the rates of teacher inputs are unused (0 keeps the Poisson path well defined).
      firing_rate: [...ff.firing_rate, ...rec.names.map(() => 0)],
      synapses: [...ff.synapses, ...rec.synapses],
    },
  };
}

/** The parameters of the network a run simulates: teacher-forced under [student] mode = "feedforward". */
export function simulatedConfig(c: Config): Config {
  return c.student.mode === "feedforward" ? teacherForcedConfig(c) : c;
}

/** The network a run simulates: the teacher-forced one under [student] mode = "feedforward". */
export function simulatedConnectome(config: Config, c: Connectome): Connectome {
  return config.student.mode === "feedforward" ? teacherForcedConnectome(c, config.feedforward.names.length) : c;
}

/** The teacher-forced network of `c` (weights concatenated the same way: teacherForcedWeights). */
export function teacherForcedConnectome(c: Connectome, numInputTypes: number): Connectome {
  const M = c.numInputs;
  const N = c.numNeurons;
  const inputType = new Int32Array(M + N);
  inputType.set(c.inputType);
  for (let i = 0; i < N; i++) inputType[M + i] = numInputTypes + c.cellType[i];
  const pre = new Int32Array(c.ff.pre.length + c.rec.pre.length);
  const post = new Int32Array(pre.length);
  pre.set(c.ff.pre);
  post.set(c.ff.post);
  // Sorted by (pre, post) as every edge list: the teacher inputs follow the real ones, each row in its recurrent order.
  for (let e = 0; e < c.rec.pre.length; e++) pre[c.ff.pre.length + e] = M + c.rec.pre[e];
  post.set(c.rec.post, c.ff.pre.length);
  const structure = {
    numNeurons: N,
    numInputs: M + N,
    cellType: c.cellType,
    inputType,
    numAssemblies: c.numAssemblies,
    assemblySize: c.assemblySize,
    rec: emptyEdges(N),
    ff: makeEdgeList(M + N, N, pre, post),
  };
  const w = teacherForcedWeights(c);
  return { ...structure, assemblyId: c.assemblyId, recWeight: w.recWeight, ffWeight: w.ffWeight, hash: structureHash(structure) };
}

/** Recurrent and feedforward weights of the recurrent network as the teacher-forced network's (none, ff then rec). */
export function teacherForcedWeights(w: { recWeight: Float32Array; ffWeight: Float32Array }): { recWeight: Float32Array; ffWeight: Float32Array } {
  const ffWeight = new Float32Array(w.ffWeight.length + w.recWeight.length);
  ffWeight.set(w.ffWeight);
  ffWeight.set(w.recWeight, w.ffWeight.length);
  return { recWeight: new Float32Array(0), ffWeight };
}

function emptyEdges(n: number): EdgeList {
  return makeEdgeList(n, n, new Int32Array(0), new Int32Array(0));
}
