/** The static part of the figure data, built once per run from the parameters and the connectome. */
import { Config } from "../../model/config.js";
import { Connectome } from "../../model/connectome.js";
import { FigureData, NetworkView } from "../figure-data.js";
import { NetworkSpec } from "../../model/network.js";
import { meanByType } from "../../model/statistics.js";
import type { OdourProcess } from "../../model/odours.js";

/** `odours`: the network's odour patterns (NetworkSpec.odours), for the input-rate figure. */
export function networkView(config: Config, c: Connectome, odours: OdourProcess | undefined): NetworkView {
  const slots = [
    ...config.recurrent.synapses.flatMap((g, k) => g.names.map((name, i) => ({ name, source: config.recurrent.names[k], excitatory: g.E_syn[i] > config.recurrent.physiology[0].E_L, gBar: g.g_bar[i] }))),
    ...config.feedforward.synapses.flatMap((g, k) => g.names.map((name, i) => ({ name, source: config.feedforward.names[k], excitatory: g.E_syn[i] > config.recurrent.physiology[0].E_L, gBar: g.g_bar[i] }))),
  ];
  return {
    cellTypeNames: config.recurrent.names,
    inputTypeNames: config.feedforward.names,
    cellType: c.cellType,
    inputType: c.inputType,
    assemblySize: c.assemblySize,
    numAssemblies: c.numAssemblies,
    recPre: c.rec.pre,
    recPost: c.rec.post,
    recWeight: c.recWeight,
    ffPre: c.ff.pre,
    ffPost: c.ff.post,
    ffWeight: c.ffWeight,
    theta: config.recurrent.physiology.map((p) => p.theta),
    restingPotential: config.recurrent.physiology.map((p) => p.E_L),
    slots,
    ...(odours ? { odours: { numPatterns: odours.numPatterns, patterns: odours.patterns } } : {}),
  };
}

/**
 * What the figures, the console and the target gauges compare against: the per-type targets, or with a targets file
 * the per-type means of its per-neuron targets, and those themselves.
 */
export function figureTargets(config: Config, spec: NetworkSpec): FigureData["targets"] {
  if (!config.targets.file) return { firingRate: config.targets.firing_rates, cv: config.targets.cvs };
  const c = spec.constants;
  return {
    firingRate: meanByType(spec.targets.rate, c.cellType, c.numRecTypes),
    cv: config.targets.cvs,
    perNeuronRate: Float32Array.from(spec.targets.rate),
  };
}
