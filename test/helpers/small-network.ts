/**
 * A network small enough for exact engine comparisons (60 neurons in 3 assemblies, 80/20 E/I, 20 inputs, 3 trials,
 * 3 chunks of 20 steps), tuned so that from rest both cell types fire at moderate rates in the first epoch (seed 7:
 * E ≈ 10 Hz with ~80% of cells active, I ≈ 15 Hz with ~75% active), so that every loss term and both gradient paths
 * (through spikes and through voltages) are exercised. Inputs fire at 80 Hz onto half of the neurons; rates keep
 * rising over later epochs as NMDA conductance builds up, which the non-rest-state tests use.
 */
import { Config, parseConfig } from "../../src/model/config.js";
import { Connectome, generateConnectome } from "../../src/model/connectome.js";
import { NetworkSpec } from "../../src/model/network.js";
import { loadNetworkSpec } from "../../src/io/network-files.js";

export interface SmallNetworkOptions {
  seed?: number;
  chunkSteps?: number;
  chunksPerEpoch?: number;
  surrgradScale?: number;
  detachReset?: boolean;
  inputRateHz?: number;
  /** Extra lines for the [simulation] and [hyperparameters] tables (training tests). */
  simulationLines?: string;
  hyperparameterLines?: string;
  /** simulation.epochs and accumulation_interval (default 10 and 1). */
  epochs?: number;
  accumulationInterval?: number;
}

export interface SmallNetwork {
  spec: NetworkSpec;
  connectome: Connectome;
}

export function smallNetworkToml(o: SmallNetworkOptions = {}): string {
  return `
[simulation]
seed = ${o.seed ?? 7}
dt = 1.0
chunk_steps = ${o.chunkSteps ?? 20}
chunks_per_epoch = ${o.chunksPerEpoch ?? 3}
batch_size = 3
epochs = ${o.epochs ?? 10}
accumulation_interval = ${o.accumulationInterval ?? 1}
checkpoint_interval = ${o.accumulationInterval ?? 10}
${o.simulationLines ?? ""}

[targets]
firing_rates = { excitatory = 5.0, inhibitory = 10.0 }
cvs = 1.0
alpha = { excitatory = 10.0, inhibitory = 2.0 }
threshold_ratio = { excitatory = 0.25, inhibitory = 0.45 }

[hyperparameters]
surrgrad_scale = ${(o.surrgradScale ?? 100).toExponential()}
detach_reset = ${o.detachReset ?? false}
${o.hyperparameterLines ?? ""}
loss_weight.firing_rate = 1.0
loss_weight.cv = 0.5
loss_weight.silent_penalty = 1.0
loss_weight.membrane_variance = 10.0

[recurrent]
names = ["excitatory", "inhibitory"]
proportion = [0.8, 0.2]
num_neurons = 60
num_assemblies = 3

[recurrent.topology]
conn_within = [[0.3, 0.3], [0.5, 0.3]]
conn_between = [[0.05, 0.05], [0.1, 0.1]]

[recurrent.weights]
w_mu = [[0.4, 0.3], [1.5, 0.6]]
w_sigma = [[0.2, 0.2], [0.3, 0.1]]

[recurrent.physiology.excitatory]
tau_mem = 85.0
theta = -38.0
U_reset = -60.0
E_L = -60.0
g_L = 1.35

[recurrent.physiology.inhibitory]
tau_mem = 50.0
theta = -45.0
U_reset = -60.0
E_L = -60.0
g_L = 0.9

[recurrent.synapses.excitatory]
names = ["AMPA", "NMDA"]
tau_rise = [0.1, 10.0]
tau_decay = [5.0, 70.0]
E_syn = [0.0, 0.0]
g_bar = [0.7, 0.1]

[recurrent.synapses.inhibitory]
names = ["GABA_A"]
tau_rise = [1.0]
tau_decay = [6.0]
E_syn = [-70.0]
g_bar = [1.5]

[feedforward]
names = ["mitral"]
proportion = [1.0]
num_neurons = 20
firing_rate = ${o.inputRateHz ?? 80.0}

[feedforward.topology]
conn_inputs = [[0.5, 0.5]]

[feedforward.weights]
w_mu = [[0.6, 0.2]]
w_sigma = [[0.2, 0.1]]

[feedforward.synapses.mitral]
names = ["AMPA", "NMDA"]
tau_rise = [0.1, 10.0]
tau_decay = [5.0, 70.0]
E_syn = [0.0, 0.0]
g_bar = [0.7, 0.1]

[plotting]
trial = 1
raster_neurons = 20
`;
}

export function smallNetwork(o: SmallNetworkOptions = {}): SmallNetwork & { config: Config } {
  const config = parseConfig(smallNetworkToml(o), "small-network");
  const connectome = generateConnectome(config);
  return { spec: loadNetworkSpec(config, connectome), connectome, config };
}

/**
 * The small network with its feedforward synapses 4× stronger per unit weight (mitral
 * g_bar × 4) and 4× smaller weights (w_mu / 4, w_sigma / 16: w_sigma is a variance, so the lognormal keeps its shape).
 * Without the clamp that is the same network (same spikes); with it the bound B = g_bar/N is 4 unit weights of today's
 * drive further away, so the network still fires (at the original strengths the clamp silences it from rest) while
 * the clamp binds on every slot (counted below).
 */
export function clampNetwork(o: { clamp?: boolean; surrgradScale?: number; batch?: number; neurons?: number } = {}) {
  const k = 4;
  const toml = smallNetworkToml({ surrgradScale: o.surrgradScale, simulationLines: o.clamp === false ? "" : "conductance_clamp = true" })
    .replace(/^batch_size = \d+/m, `batch_size = ${o.batch ?? 3}`)
    .replace(/^num_neurons = 60$/m, `num_neurons = ${o.neurons ?? 60}`)
    .replace(/(\[feedforward\.weights\]\nw_mu = )\[\[0\.6, 0\.2\]\]\nw_sigma = \[\[0\.2, 0\.1\]\]/, `$1[[${0.6 / k}, ${0.2 / k}]]\nw_sigma = [[${0.2 / k ** 2}, ${0.1 / k ** 2}]]`)
    .replace(/(\[feedforward\.synapses\.mitral\][\s\S]*?g_bar = )\[0\.7, 0\.1\]/, `$1[${0.7 * k}, ${0.1 * k}]`);
  const config = parseConfig(toml, "clamp-network");
  // The replacements above must all have applied.
  if (config.simulation.conductance_clamp !== (o.clamp !== false) || config.feedforward.synapses[0].g_bar[0] !== 0.7 * k || config.feedforward.weights.w_sigma[0][0] !== 0.2 / k ** 2)
    throw new Error("clampNetwork: the small network's text changed; update the replacements");
  const connectome = generateConnectome(config);
  return { spec: loadNetworkSpec(config, connectome), connectome, config };
}
