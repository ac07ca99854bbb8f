/**
 * The configuration reference: what every key of a parameters file means, and in which unit, keyed by its dotted
 * path (the names of per-type tables written "<type>"). Types, defaults and ranges are not repeated here: they come
 * from the schema (config.ts), which reports every key it reads with its decoder's ValueSpec. `npm run docs:config`
 * writes configurationMarkdown() to docs/configuration.md; test/config-reference.test.ts checks that this table and
 * the schema name the same keys and that the file is current.
 */
import { KeyRead, parseConfig, ValueSpec } from "./config.js";
import { NumberRange } from "../platform/validate.js";

export interface KeyReference {
  meaning: string;
  unit?: string;
  /** Rules relating the key to others, which the schema checks after decoding each key on its own. */
  also?: string;
  /** A default taken from another key (the schema's default is then that key's value in the file parsed). */
  default?: string;
}

const ACCUMULATION = "a multiple of simulation.accumulation_interval";
const TWO_HEARTBEATS = "≥ 2 × distributed.heartbeat_interval";

/** The keys of a synapse table, for the recurrent and the input types alike (config.ts reads both with readSynapses). */
function synapseKeys(table: string, presynaptic: string): Record<string, KeyReference> {
  return {
    [table]: { meaning: `One table per ${presynaptic}.` },
    [`${table}.<type>`]: {
      meaning: `The synapses a neuron of this ${presynaptic} makes: one slot per entry of names; every list below has one number per slot.`,
    },
    [`${table}.<type>.names`]: { meaning: "Synapse slots (receptors), e.g. AMPA, NMDA." },
    [`${table}.<type>.tau_rise`]: { meaning: "Rise time constant of each slot's double-exponential conductance.", unit: "ms", also: "≠ tau_decay of the slot" },
    [`${table}.<type>.tau_decay`]: { meaning: "Decay time constant of each slot's conductance.", unit: "ms" },
    [`${table}.<type>.E_syn`]: { meaning: "Reversal potential of each slot.", unit: "mV" },
    [`${table}.<type>.g_bar`]: {
      meaning:
        "Conductance scale of each slot per unit weight. As in the original the kernel is divided by exp(t_peak/τ_decay), not by its peak, so the peak is below g_bar (0.84 g_bar for AMPA, 0.45 for NMDA, 0.41 for GABA_A).",
      unit: "nS",
    },
  };
}

/** The lognormal initial weights of a projection; `rows` names the presynaptic types. */
function weightKeys(table: string, rows: string): Record<string, KeyReference> {
  return {
    [table]: { meaning: `Lognormal initial weights, dimensionless multipliers of g_bar; rows = ${rows}, columns = recurrent type.` },
    [`${table}.w_mu`]: { meaning: "Mean of the weights of each (presynaptic, postsynaptic) type pair." },
    [`${table}.w_sigma`]: { meaning: "Variance (not the standard deviation, as in the original) of the weights of each type pair." },
  };
}

/** In the order of the document: each table, then its own keys, then its subtables. */
export const CONFIG_REFERENCE: Record<string, KeyReference> = {
  simulation: { meaning: "Time step, chunking, epochs and their grouping into updates." },
  "simulation.seed": { meaning: "Seed of every random stream (connectome, inputs, weight noise); randomness is keyed by (seed, epoch, trial)." },
  "simulation.dt": {
    meaning: "Time step: exact exponential leak, forward-Euler synaptic drive.",
    unit: "ms",
    also: "dt·G_syn/C_m < 1 for every cell type (the Euler membrane step, with all inputs coincident; for a network read from files, for every neuron at its file weights)",
  },
  "simulation.chunk_steps": { meaning: "Time steps per chunk; gradients are truncated at chunk boundaries (the state is carried on, detached).", unit: "steps" },
  "simulation.chunks_per_epoch": { meaning: "Chunks per epoch (an epoch is the unit of work a worker receives).", unit: "chunks" },
  "simulation.batch_size": { meaning: "Trials per epoch: independent simulations, each driven by its own Poisson input.", unit: "trials" },
  "simulation.kernel_normalisation": {
    meaning:
      'What a unit-weight spike\'s double-exponential conductance g_bar·(e^{−t/τd} − e^{−t/τr})/N is normalised by: "original", N = (τd/τr)^(τr/(τd−τr)) (MODEL.md); "peak", the kernel\'s true peak (MODEL-HEAD.md 3: 0.9048 AMPA, 0.6197 NMDA, 0.5824 GABA_A at the default time constants), so that g_bar is the peak conductance.',
  },
  "simulation.conductance_clamp": {
    meaning:
      "Clamp each neuron's conductance per synapse slot after every step's injections (MODEL-HEAD.md 3, step 7; the original at HEAD): the rise component to [−B, 0] and the decay component to [0, B], B = g_bar/N the amplitude one unit-weight spike injects (N as set by kernel_normalisation), so that a slot never holds more than one unit-weight kernel. The gradient is zero where the clamp binds (1 at exactly the bound, as tf.clipByValue). The dt stability check then counts each slot at most B. false = MODEL.md 2.4.",
  },
  "simulation.epochs": { meaning: "Epochs of the whole run, burn-in included (snn-coord --epochs overrides it).", unit: "epochs", also: ACCUMULATION },
  "simulation.accumulation_interval": {
    meaning: "Epochs whose gradients are averaged into one Adam step; the coordinator spreads them over the workers, so it is the most workers one update can use.",
    unit: "epochs",
  },
  "simulation.checkpoint_interval": { meaning: "Epochs between writes of checkpoint_latest.", unit: "epochs", also: ACCUMULATION },
  "simulation.burn_in_epochs": {
    meaning: "First epochs simulated forward only (no gradient, no update), so that training starts from steady activity instead of rest.",
    unit: "epochs",
    also: `${ACCUMULATION}; < simulation.epochs`,
  },

  targets: { meaning: "The activity training fits, per cell type (a number for all types or a table by type name), or per neuron from a file." },
  "targets.firing_rates": { meaning: "Target firing rate r* of each cell type; the loss is the mean of (r − r*)²/(r* + 1e-6).", unit: "Hz" },
  "targets.cvs": { meaning: "Target coefficient of variation of the inter-spike intervals (the CV loss is logged only: it has no gradient).", unit: "—" },
  "targets.alpha": { meaning: "Silent-neuron penalty strength α of each cell type: the penalty is the mean of exp(−α·r).", unit: "s" },
  "targets.threshold_ratio": { meaning: "Target membrane ratio std(V)/(θ − mean V) of each cell type (membrane variance loss).", unit: "—" },
  "targets.file": {
    meaning:
      "Per-neuron targets: a .safetensors file from snn-sim --export-targets, or a CSV with header neuron,rate[,cv][,ratio]. Its values replace the ones above for the quantities it holds.",
  },
  "targets.teacher_spikes": {
    meaning:
      "A teacher's recorded input and output spike trains (snn-sim --teacher --export-teacher): every epoch replays the recorded inputs of its stream and slice (stream e mod A, slice ⌊e/A⌋ mod recorded epochs; from rest at slice 0) instead of Poisson input, and the van Rossum loss fits the recorded outputs instead of a teacher simulated on the fly. Recorded with this network, dt, chunking, batch_size and accumulation_interval streams.",
    also: "needs hyperparameters.loss_weight.van_rossum > 0",
  },

  hyperparameters: { meaning: "Optimiser, learning-rate schedule, surrogate gradient, guards and loss weights." },
  "hyperparameters.learning_rate": { meaning: "Adam's learning rate: the peak of the schedule." },
  "hyperparameters.lr_schedule": {
    meaning: 'After the warm-up: "constant"; "cosine" down to lr_min at the last update; "step", × lr_step_factor every lr_step_updates updates.',
  },
  "hyperparameters.warmup_updates": {
    meaning: "Updates of linear learning-rate warm-up at the start of training.",
    unit: "updates",
    also: "< the run's updates, (epochs − burn_in_epochs) / accumulation_interval",
  },
  "hyperparameters.lr_min": { meaning: "cosine: the learning rate at the last update.", also: '≤ learning_rate; only with lr_schedule = "cosine"' },
  "hyperparameters.lr_step_updates": { meaning: "step: updates between two reductions of the learning rate.", unit: "updates", also: 'only with lr_schedule = "step"' },
  "hyperparameters.lr_step_factor": { meaning: "step: the factor each reduction multiplies the learning rate by.", also: 'only with lr_schedule = "step"' },
  "hyperparameters.betas": { meaning: "Adam's β1, β2: decay rates of the first and second moment estimates." },
  "hyperparameters.eps": { meaning: "Adam's ε, added to the root of the second moment." },
  "hyperparameters.surrgrad_scale": { meaning: "Steepness λ of the fast-sigmoid surrogate gradient ∂s/∂v = 1/(λ·|v − θ| + 1)².", unit: "1/mV" },
  "hyperparameters.detach_reset": {
    meaning: "No gradient through the reset gate (1 − s), as the original's newer versions; false lets the surrogate carry gradient through the reset (MODEL.md 2.4).",
  },
  "hyperparameters.parameterisation": {
    meaning: 'How Adam optimises the weights: "linear", the weights, projected onto w ≥ 0 after each step; "log", ln w.',
    also: 'only with optimise = "weights"',
  },
  "hyperparameters.optimise": {
    meaning:
      'What is trained: "weights", every synapse; "scaling_factors", one factor S per (pre type, post type) of both the recurrent and the feedforward weights, optimised as ln S (effective weight W·S, W fixed); "scaling_factors_recurrent" / "scaling_factors_feedforward", one part only (the other keeps its initial factors).',
    also: "scaling factors need a loss term with a gradient (firing_rate, silent_penalty, membrane_variance or van_rossum)",
  },
  "hyperparameters.max_grad_norm": { meaning: "Clip of the global L2 norm of the recurrent and feedforward gradients together." },
  "hyperparameters.max_skipped_updates": {
    meaning: "Consecutive updates skipped for a non-finite loss, gradient or weight before the run stops as failed (exit code 3).",
    unit: "updates",
  },
  "hyperparameters.patience": { meaning: "Early stopping: the run ends after this many updates without a new best total loss; 0 = never.", unit: "updates" },
  "hyperparameters.van_rossum_tau_rise": {
    meaning:
      "Rise time of the van Rossum spike-train filter (van Rossum loss): 0, the single exponential, loss (1/τ)∫(f − g)²dt averaged over (trial, neuron); > 0, the original's double exponential (unnormalised), loss the mean of (f − g)² over (trial, step, neuron).",
    unit: "ms",
    also: "> 0 must be < van_rossum_tau_decay",
  },
  "hyperparameters.van_rossum_tau_decay": { meaning: "Decay time of the van Rossum spike-train filter (van Rossum loss); was van_rossum_tau.", unit: "ms" },
  "hyperparameters.loss_weight": { meaning: "Weight of each loss term in the total loss (the logged terms are unweighted)." },
  "hyperparameters.loss_weight.firing_rate": { meaning: "Weight of the firing-rate loss." },
  "hyperparameters.loss_weight.cv": { meaning: "Weight of the CV loss, which counts in the logged total only (it has no gradient)." },
  "hyperparameters.loss_weight.silent_penalty": { meaning: "Weight of the silent-neuron penalty." },
  "hyperparameters.loss_weight.membrane_variance": { meaning: "Weight of the membrane variance loss." },
  "hyperparameters.loss_weight.van_rossum": {
    meaning: "Weight of the van Rossum distance to the teacher's spike trains (teacher-student fitting).",
    also: "> 0 needs student.teacher_file or targets.teacher_spikes",
  },

  student: { meaning: "Where a fresh run's weights come from (teacher-student fitting); a resumed run takes them from its checkpoint." },
  "student.init": { meaning: '"generated": the connectome\'s lognormal weights; "teacher": the weights in teacher_file.', also: '"teacher" needs student.teacher_file' },
  "student.teacher_file": { meaning: "A teacher file written by snn-sim --teacher --export-targets: its weights, and its spike trains for the van Rossum loss (simulated on the fly, unless targets.teacher_spikes replays a recording)." },
  "student.perturbation": { meaning: 'Noise on the initial weights: "none", or "lognormal", w·exp(σn − σ²/2) with n standard normal (the mean is kept).' },
  "student.perturbation_sigma": { meaning: "σ of the lognormal perturbation (in log space).", also: 'required with perturbation = "lognormal", refused otherwise' },
  "student.mode": {
    meaning:
      '"recurrent": the student is the recurrent network; "feedforward": a teacher-forced student, whose inputs are the recorded input spikes and the teacher\'s recorded recurrent spikes (targets.teacher_spikes), with recurrence off (MODEL-HEAD.md 6). Scaling factors keep their meaning: teacher E → student I synapses take the recurrent factor excitatory_inhibitory.',
    also: '"feedforward" needs targets.teacher_spikes',
  },
  "student.scale": { meaning: "Factor applied to every initial weight, after the perturbation." },
  "student.noise_frac": {
    meaning: "Noisy student: every synapse times max(1 + noise_frac·ξ, 0), ξ standard normal, then the weights are mapped affinely back to the mean and std they had (0 = off). Applied before the factor and lognormal perturbations.",
  },
  "student.noise_rescale": {
    meaning: '"global": one affine map keeps the mean and std of all synapses pooled, as the original (it pulls every connection type toward the pooled mean); "per_type": each connection type (pre type, post type) keeps its own.',
    also: "refused unless noise_frac > 0",
  },
  "student.weight_perturbation_variance": {
    meaning: "σ² of a factor p ~ LogNormal(−σ²/2, σ) (mean 1) per connection type (pre type, post type), recurrent and feedforward, that multiplies every synapse of the type; the scaling factors that undo it, 1/p, are the targets (0 = off).",
  },

  scaling_factors: {
    meaning: "Initial per-connection-type scaling factors S (MODEL-HEAD.md 1): every synapse from type k onto type m is simulated as W·S[k][m]; rows = presynaptic type, columns = postsynaptic type. Under optimise = \"weights\" they are folded into the initial weights.",
  },
  "scaling_factors.recurrent": { meaning: "K×K factors of the recurrent weights; ones when absent.", also: "> 0" },
  "scaling_factors.feedforward": { meaning: "K_in×K factors of the feedforward weights (rows = input types); ones when absent.", also: "> 0" },

  recurrent: { meaning: "The recurrent network: cell types, size, connectivity, initial weights, membranes and synapses." },
  "recurrent.names": { meaning: "Cell types. They order every per-type list and matrix, and become metrics.csv columns and labels." },
  "recurrent.proportion": { meaning: "Fraction of the neurons of each cell type (round(N·p) neurons, the last type takes the rest).", also: "sums to 1" },
  "recurrent.num_neurons": { meaning: "Recurrent neurons.", unit: "neurons" },
  "recurrent.num_assemblies": { meaning: "Assemblies of equal size the neurons are split into.", unit: "assemblies", also: "divides recurrent.num_neurons" },
  "recurrent.connectome_file": {
    meaning:
      "Read the recurrent synapses from this CSV edge list instead of generating them: one synapse a line, pre,post,weight (neuron ids 0..num_neurons−1, weight ≥ 0 and finite: the initial weight; a header line pre,post,weight optional; no self-loops). Sorted into (pre, post) order on loading. recurrent.topology and recurrent.weights are then not used; dt is checked against the file's own weights instead, neuron by neuron (each neuron's synapses firing at once at their initial weights). snn-sim --export-connectome DIR writes it (recurrent.csv). Or a NumPy file: a dense .npy matrix W[pre, post] of shape (num_neurons, num_neurons) whose non-zero entries are the synapses, or a scipy.sparse.save_npz .npz matrix (coo, csr or csc). Or a .safetensors or .npz container holding integer rec_pre, rec_post, ff_pre, ff_post, cell_type (N; index into recurrent.names), optional input_type (M) and assembly_id (N), and float rec_weight, ff_weight — the whole network in one file (DIR/connectome.safetensors, DIR/connectome.npz); point feedforward.connectome_file at the same file. The network hash covers the content, not the path.",
    also: "recurrent.neurons_file with an edge list (CSV, .npy, scipy .npz); without feedforward.connectome_file the inputs are generated onto these neurons",
  },
  "recurrent.neurons_file": {
    meaning:
      "With recurrent.connectome_file: the cell type of every neuron, CSV with header neuron,cell_type[,assembly], one row per neuron 0..num_neurons−1 (cell types by name, from recurrent.names; assembly: its assembly id, default ⌊j / (num_neurons / num_assemblies)⌋). recurrent.proportion is then not used for the types.",
    also: "rows = recurrent.num_neurons; overrides a safetensors file's cell_type",
  },
  "recurrent.duplicate_edges": {
    meaning:
      'What a connectome file\'s repeated pre,post pair means (recurrent and feedforward files): "error" refuses it naming the line, "sum" adds the weights into one synapse, "keep-first" keeps the first line\'s weight.',
  },
  "recurrent.topology": { meaning: "Connection probabilities of the configuration-model connectome; rows = presynaptic type, columns = postsynaptic type." },
  "recurrent.topology.conn_within": { meaning: "Probability of a synapse between two neurons of the same assembly." },
  "recurrent.topology.conn_between": { meaning: "Probability of a synapse between two neurons of different assemblies." },
  "recurrent.topology.generator": {
    meaning:
      '"original": the original\'s configuration model (cell types shuffled over the whole network; multi-edges collapse and square blocks lose their local diagonal, so edge counts fall short of p·n_src·n_tgt). "exact": each assembly gets round(size·proportion) cells of each type; every block (assembly pair × type pair, and the feedforward type pairs with conn_inputs) gets exactly round(p·n_src·n_tgt) distinct edges and no self-loops (configuration-model stubs, duplicates and self-loops re-swapped).',
  },
  ...weightKeys("recurrent.weights", "presynaptic type"),
  "recurrent.physiology": { meaning: "One table per cell type (recurrent.names)." },
  "recurrent.physiology.<type>": { meaning: "The membrane of a cell type: conductance-based LIF with a hard reset (C_m = tau_mem·g_L)." },
  "recurrent.physiology.<type>.tau_mem": { meaning: "Membrane time constant.", unit: "ms" },
  "recurrent.physiology.<type>.theta": { meaning: "Spike threshold.", unit: "mV" },
  "recurrent.physiology.<type>.U_reset": { meaning: "Potential the membrane is reset to after a spike.", unit: "mV", also: "< theta" },
  "recurrent.physiology.<type>.E_L": { meaning: "Leak reversal (resting) potential.", unit: "mV" },
  "recurrent.physiology.<type>.g_L": { meaning: "Leak conductance.", unit: "nS" },
  "recurrent.physiology.<type>.tau_ref": { meaning: "Refractory period, kept for compatibility with the original's files: the model has none.", unit: "ms" },
  ...synapseKeys("recurrent.synapses", "cell type (recurrent.names)"),

  feedforward: { meaning: "The inputs (mitral cells): Poisson spike trains into the recurrent network, fixed during training but for their weights." },
  "feedforward.names": { meaning: "Input types; they order the rows of the feedforward matrices." },
  "feedforward.proportion": { meaning: "Fraction of the inputs of each type.", also: "sums to 1" },
  "feedforward.num_neurons": { meaning: "Input neurons.", unit: "neurons" },
  "feedforward.firing_rate": { meaning: "Poisson rate of each input type.", unit: "Hz" },
  "feedforward.connectome_file": {
    meaning:
      "The synapses from the inputs as a CSV edge list pre,post,weight (pre = input id 0..feedforward.num_neurons−1, post = recurrent neuron id; header optional), a dense .npy matrix of shape (feedforward.num_neurons, recurrent.num_neurons), a scipy.sparse .npz matrix, or the container of recurrent.connectome_file (its ff_pre, ff_post, ff_weight and input_type). feedforward.topology and feedforward.weights are then not used. Without recurrent.connectome_file the recurrent network is generated (as without files) and this file's post ids are its neurons. snn-sim --export-connectome writes it (feedforward.csv).",
    also: "a container needs recurrent.connectome_file set to it too",
  },
  "feedforward.inputs_file": {
    meaning:
      "With feedforward.connectome_file: the type of every input, CSV with header input,input_type, one row per input (types by name, from feedforward.names). Without it the inputs are typed in contiguous blocks by feedforward.proportion (round(M·p) each, in the order of feedforward.names). snn-sim --export-connectome writes it (inputs.csv).",
    also: "rows = feedforward.num_neurons",
  },
  "feedforward.topology": { meaning: "Connection probabilities from the inputs; rows = input type, columns = recurrent type." },
  "feedforward.topology.conn_inputs": { meaning: "Probability of a synapse from an input to a recurrent neuron." },
  ...weightKeys("feedforward.weights", "input type"),
  ...synapseKeys("feedforward.synapses", "input type (feedforward.names)"),

  distributed: { meaning: "Timing of the coordinator and its workers." },
  "distributed.heartbeat_interval": { meaning: "Interval of the heartbeats between the coordinator and its workers.", unit: "s" },
  "distributed.worker_timeout": { meaning: "Time without a heartbeat or result after which a worker's epochs go to other workers.", unit: "s", also: TWO_HEARTBEATS },
  "distributed.no_worker_timeout": {
    meaning: "Time without any worker after which the coordinator writes checkpoint_latest and exits with code 4.",
    unit: "s",
    also: TWO_HEARTBEATS,
  },

  inputs: { meaning: "What drives the input neurons." },
  "inputs.process": {
    meaning:
      '"poisson": each input fires as a Poisson train at its type\'s feedforward.firing_rate. "odours": the input rates are a softmax mixture of odour patterns (one per assembly) whose weights follow an Ornstein–Uhlenbeck process, carried from epoch to epoch in each stream and stored in checkpoints ([odours], MODEL-HEAD.md 4).',
  },
  odours: { meaning: 'The odour input process (inputs.process = "odours"; refused otherwise). Pattern a sets the most strongly connected inputs onto assembly a\'s excitatory cells (by the connectome\'s feedforward weights) to baseline + modulation and the others so that the type\'s mean stays at baseline.' },
  "odours.tau": { meaning: "Time constant of the Ornstein–Uhlenbeck process of the mixture weights (the original's 700 s makes it nearly a random walk).", unit: "ms" },
  "odours.sigma": { meaning: "Noise amplitude of the Ornstein–Uhlenbeck process: a gains σ·√(2·dt/τ)·ξ per step." },
  "odours.temperature": { meaning: "Softmax temperature: the mixture is softmax(a / temperature); lower is closer to one odour at a time." },
  "odours.<input type>": { meaning: "One optional table per input type (feedforward.names)." },
  "odours.<input type>.baseline_rate": { meaning: "Mean rate of the type's inputs under every odour.", unit: "Hz", default: "feedforward.firing_rate of the type" },
  "odours.<input type>.modulation_rate": {
    meaning: "Added to the baseline for the modulated inputs of an odour; the others fire below baseline to keep the mean (an error if that would be negative).",
    unit: "Hz",
  },
  "odours.<input type>.modulation_fraction": { meaning: "Share of the type's inputs modulated up in each odour (⌊n·fraction⌋ of n)." },
  plotting: { meaning: "Figure sets, rendered into figures/epoch_XXXX/ while training goes on." },
  "plotting.enabled": { meaning: "Render figure sets (snn-coord --no-figures skips them)." },
  "plotting.interval": { meaning: "Epochs between figure sets.", unit: "epochs", also: ACCUMULATION, default: "simulation.accumulation_interval" },
  "plotting.trial": { meaning: "The trial whose activity the figures show (the original's batch 0)." },
  "plotting.raster_neurons": { meaning: "Recurrent neurons shown in the spike raster (and a quarter as many inputs).", unit: "neurons" },

  wandb: { meaning: "Weights & Biases logging: scalars every update, and the figure sets." },
  "wandb.enabled": { meaning: "Log to W&B (snn-coord --wandb turns it on too)." },
  "wandb.project": { meaning: "W&B project." },
  "wandb.entity": { meaning: "W&B entity (user or team); empty: the API key's default entity." },
  "wandb.mode": {
    meaning: '"online" streams to W&B (offline without WANDB_API_KEY); "offline" writes output_dir/wandb/offline-run-*, which `wandb sync` (or snn-wandb-sync) uploads later; "disabled" logs nothing.',
  },
  "wandb.name": { meaning: "Name of the W&B run; empty: the output directory's name." },
  "wandb.tags": { meaning: "Tags of the W&B run, for filtering runs in the project." },
  "wandb.group": { meaning: "Group of the W&B run (runs of one study); empty: none." },
  "wandb.notes": { meaning: "Notes (description) of the W&B run." },
  "wandb.job_type": { meaning: "Job type of the W&B run." },
};

/** Every key and table `text` makes the schema read, once each, in the order first read. */
export function schemaKeys(text: string): KeyRead[] {
  const reads = new Map<string, KeyRead>();
  parseConfig(text, "parameters", ".", (k) => {
    if (!reads.has(k.path)) reads.set(k.path, k);
  });
  return [...reads.values()];
}

const TYPES: Record<ValueSpec["type"], string> = {
  number: "number",
  integer: "integer",
  boolean: "boolean",
  string: "string",
  strings: "array of strings",
  choice: "string",
  names: "array of names",
  numbers: "array of numbers",
  matrix: "matrix of numbers",
  "per type": "number, or table of numbers by type",
  file: "path, relative to the parameters file",
  table: "table",
};

function rangeText(spec: ValueSpec): string {
  if (spec.choices) return spec.choices.map((c) => `"${c}"`).join(", ");
  if (spec.rule) return spec.rule;
  const { min, max, exclusiveMin }: NumberRange = spec.range ?? {};
  const top = spec.maxOf ?? max;
  if (min !== undefined && top !== undefined) return `${exclusiveMin ? "(" : "["}${min}, ${top}]`;
  if (min !== undefined) return `${exclusiveMin ? ">" : "≥"} ${min}`;
  return top !== undefined ? `≤ ${top}` : "";
}

function valueText(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(valueText).join(", ")}]`;
  return typeof v === "string" ? `"${v}"` : String(v);
}

function defaultText(k: KeyRead, ref: KeyReference): string {
  if (ref.default) return ref.default;
  if (k.default === undefined) return k.spec?.type === "file" ? "unset" : "required";
  // A per-type default is the same number for every type (the schema spreads one over the file's types).
  if (k.spec?.type === "per type" && Array.isArray(k.default)) return valueText(k.default[0]);
  return valueText(k.default);
}

/** Table cells: a "|" would end the cell. */
const cell = (s: string) => s.replace(/\|/g, "\\|");

/**
 * docs/configuration.md: a section per table, a row per key, from the keys `text` makes the schema read (any valid
 * parameters file reads them all, and the document does not depend on which) and CONFIG_REFERENCE.
 */
export function configurationMarkdown(text: string): string {
  const reads = new Map(schemaKeys(text).map((k) => [k.path, k]));
  const unknown = [...reads.keys()].filter((p) => !(p in CONFIG_REFERENCE));
  if (unknown.length > 0) throw new Error(`keys the schema reads without a CONFIG_REFERENCE entry: ${unknown.join(", ")}`);
  const out = [
    "# Configuration reference",
    "",
    "<!-- Generated by `npm run docs:config` from src/model/config.ts (types, defaults, ranges) and src/model/config-reference.ts (meanings, units); edit those, not this file. -->",
    "",
    "Every table and key of a parameters file (TOML), as `src/model/config.ts` reads it. A key that is not listed is an error,",
    "and so is a value outside its range; a missing key takes its default, and a missing optional table the defaults of all its",
    'keys. `<type>` stands for each name of `recurrent.names` (under `feedforward`, of `feedforward.names`); a "table of',
    'numbers by type" has one entry per such name (`firing_rates = { excitatory = 0.5, inhibitory = 2.0 }`), and a single',
    "number applies to every type. Lists of a synapse table have one number per slot, matrices one row per presynaptic and",
    "one column per postsynaptic type. `snn-coord --print-config PARAMS` prints a file with every default filled in.",
  ];
  let section = "";
  let rows = 0;
  for (const [path, ref] of Object.entries(CONFIG_REFERENCE)) {
    const k = reads.get(path);
    if (!k) throw new Error(`CONFIG_REFERENCE names ${path}, which the schema does not read`);
    if (!k.spec) throw new Error(`${path}: its decoder is not described (config.ts, ValueSpec)`);
    if (k.spec.type === "table") {
      section = path;
      rows = 0;
      out.push("", `## \`[${path}]\`${k.default === undefined ? "" : " (optional)"}`, "", ref.meaning);
      continue;
    }
    const name = path.slice(section.length + 1);
    if (!path.startsWith(`${section}.`) || name.includes(".")) throw new Error(`CONFIG_REFERENCE: ${path} must follow its table's entry`);
    if (rows++ === 0) out.push("", "| key | type | default | range | unit | meaning |", "| --- | --- | --- | --- | --- | --- |");
    const range = [rangeText(k.spec), ref.also].filter(Boolean).join("; ");
    out.push(`| \`${name}\` | ${cell(TYPES[k.spec.type])} | ${cell(defaultText(k, ref))} | ${cell(range)} | ${ref.unit ?? ""} | ${cell(ref.meaning)} |`);
  }
  return `${out.join("\n")}\n`;
}
