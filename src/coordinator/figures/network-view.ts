/** The static part of the figure data, built once per run from the parameters and the connectome. */
import { Config } from "../../shared/config.js";
import { Connectome } from "../../shared/connectome.js";
import { NetworkView } from "../../shared/figure-data.js";

export function networkView(config: Config, c: Connectome): NetworkView {
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
  };
}
