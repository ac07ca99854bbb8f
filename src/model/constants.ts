/**
 * Model constants (MODEL.md 2.1–2.2), computed exactly from their definitions in float64 and then stored as float32,
 * as the original does: 5-digit constants shift gradients by ~2% through the steep surrogate.
 *
 * Synapse slots: every recurrent type's synapses in type order, then every input type's (default: rec AMPA, NMDA,
 * GABA_A, FF AMPA, NMDA). A spike of a neuron of population p drives all slots of p with the same weight.
 * Populations ("sources") are the recurrent types followed by the input types.
 */
import { Config } from "./config.js";
import { Connectome } from "./connectome.js";
import { kernelNormaliser, kernelPeak } from "./synaptic-kernel.js";

export interface ModelConstants {
  numNeurons: number;
  numInputs: number;
  /** Number of synapse slots S. */
  numSlots: number;
  /** Number of presynaptic populations (recurrent types + input types). */
  numSources: number;
  numRecTypes: number;
  dt: number;
  surrgradScale: number;
  /** Reset gate (1 − s) detached: the backward drops the −ṽ·∂L/∂v' term of ∂L/∂s ([hyperparameters] detach_reset). */
  detachReset: boolean;
  /**
   * simulation.conductance_clamp (MODEL-HEAD.md 3, step 7): after each step's injections every slot's rise component
   * is clipped to [−gScale_l, 0] and its decay component to [0, gScale_l] (reference-step.ts cobaLifStep). Present
   * only when on, so that the network hash of a network without it is what it was before the option existed.
   */
  conductanceClamp?: true;
  /** Per neuron (float32 values). */
  theta: Float32Array;
  uReset: Float32Array;
  eL: Float32Array;
  cM: Float32Array;
  beta: Float32Array;
  /** dt / C_m per neuron, the Euler factor of the synaptic current. */
  dtOverC: Float32Array;
  /** Per slot: decay factors exp(−dt/τ) of the rise and decay components. */
  alphaRise: Float32Array;
  alphaDecay: Float32Array;
  /** Per slot: g_bar / P (nS per unit weight); the rise component receives −gScale, the decay +gScale. */
  gScale: Float32Array;
  eSyn: Float32Array;
  /** Per slot: the presynaptic population that drives it. */
  slotSource: Int32Array;
  /** Per population: its first slot and slot count (slots of a population are contiguous). */
  sourceSlotStart: Int32Array;
  sourceSlotCount: Int32Array;
  /** Per recurrent neuron: the population of its own spikes (its cell type). */
  cellType: Int32Array;
  /** Per input: its population index (numRecTypes + input type). */
  inputSource: Int32Array;
  slotNames: string[];
  sourceNames: string[];
}

export function buildModelConstants(config: Config, connectome: Pick<Connectome, "cellType" | "inputType">): ModelConstants {
  const dt = config.simulation.dt;
  const N = connectome.cellType.length;
  const M = connectome.inputType.length;
  const groups = [...config.recurrent.synapses, ...config.feedforward.synapses];
  const sourceNames = [...config.recurrent.names, ...config.feedforward.names];
  const S = groups.reduce((a, g) => a + g.names.length, 0);
  const alphaRise = new Float32Array(S);
  const alphaDecay = new Float32Array(S);
  const gScale = new Float32Array(S);
  const eSyn = new Float32Array(S);
  const slotSource = new Int32Array(S);
  const sourceSlotStart = new Int32Array(groups.length);
  const sourceSlotCount = new Int32Array(groups.length);
  const slotNames: string[] = [];
  let l = 0;
  groups.forEach((g, src) => {
    sourceSlotStart[src] = l;
    sourceSlotCount[src] = g.names.length;
    g.names.forEach((name, i) => {
      alphaRise[l] = Math.exp(-dt / g.tau_rise[i]);
      alphaDecay[l] = Math.exp(-dt / g.tau_decay[i]);
      gScale[l] = g.g_bar[i] / (config.simulation.kernel_normalisation === "peak" ? kernelPeak : kernelNormaliser)(g.tau_rise[i], g.tau_decay[i]);
      eSyn[l] = g.E_syn[i];
      slotSource[l] = src;
      slotNames.push(`${sourceNames[src]}:${name}`);
      l++;
    });
  });

  const perNeuron = (f: (p: Config["recurrent"]["physiology"][number]) => number) => {
    const out = new Float32Array(N);
    for (let j = 0; j < N; j++) out[j] = f(config.recurrent.physiology[connectome.cellType[j]]);
    return out;
  };
  const K = config.recurrent.names.length;
  const inputSource = new Int32Array(M);
  for (let i = 0; i < M; i++) inputSource[i] = K + connectome.inputType[i];

  return {
    numNeurons: N,
    numInputs: M,
    numSlots: S,
    numSources: groups.length,
    numRecTypes: K,
    dt,
    surrgradScale: config.hyperparameters.surrgrad_scale,
    detachReset: config.hyperparameters.detach_reset,
    ...(config.simulation.conductance_clamp ? { conductanceClamp: true as const } : {}),
    theta: perNeuron((p) => p.theta),
    uReset: perNeuron((p) => p.U_reset),
    eL: perNeuron((p) => p.E_L),
    cM: perNeuron((p) => p.tau_mem * p.g_L),
    beta: perNeuron((p) => Math.exp(-dt / p.tau_mem)),
    dtOverC: perNeuron((p) => dt / (p.tau_mem * p.g_L)),
    alphaRise,
    alphaDecay,
    gScale,
    eSyn,
    slotSource,
    sourceSlotStart,
    sourceSlotCount,
    cellType: connectome.cellType,
    inputSource,
    slotNames,
    sourceNames,
  };
}
