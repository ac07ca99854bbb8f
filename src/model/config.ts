/**
 * The one configuration schema: parses a parameters TOML file, validates every key (path, type, range) and returns a
 * typed, fully-defaulted Config. Any problem is a ConfigError naming the key (the decoders and tables of
 * platform/validate.ts, which the message schema uses too); the CLIs turn it into exit code 2.
 * Pure: io/parameters-file.ts reads the file (relative paths in it are resolved against `baseDir`).
 */
import { resolve } from "node:path";
import { parse as parseToml, stringify as stringifyToml, TomlError } from "smol-toml";
import {
  At,
  bool as plainBool,
  Decoder,
  isMap,
  list,
  number as plainNumber,
  NumberRange,
  oneOf as plainOneOf,
  optional,
  show,
  string as plainString,
  Table,
} from "../platform/validate.js";
import { Optimise, OPTIMISE_MODES } from "./scaling-factors.js";
import { kernelNormaliser, kernelPeak } from "./synaptic-kernel.js";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface PhysiologyConfig {
  tau_mem: number;
  theta: number;
  U_reset: number;
  E_L: number;
  g_L: number;
  tau_ref: number;
}

export interface SynapseGroupConfig {
  names: string[];
  tau_rise: number[];
  tau_decay: number[];
  E_syn: number[];
  g_bar: number[];
}

export interface Config {
  simulation: {
    seed: number;
    dt: number;
    chunk_steps: number;
    chunks_per_epoch: number;
    batch_size: number;
    epochs: number;
    accumulation_interval: number;
    checkpoint_interval: number;
    /**
     * The run's first epochs simulate the streams forward without gradient and without an update, so that training
     * starts from steady activity instead of the rest state (a multiple of accumulation_interval; counted in epochs).
     */
    burn_in_epochs: number;
    /**
     * What a unit-weight spike's double-exponential conductance is normalised by (MODEL-HEAD.md 3): "original",
     * (τd/τr)^(τr/(τd−τr)) (MODEL.md); "peak", the kernel's true peak, so that g_bar is the peak conductance.
     */
    kernel_normalisation: "original" | "peak";
    /**
     * Clip each neuron's summed conductance per slot after every step's injections (MODEL-HEAD.md 3, step 7): rise
     * component to [−B_l, 0], decay to [0, B_l], B_l = g_bar_l/N_l the amplitude of one unit-weight spike; zero
     * gradient where the clip binds. false = MODEL.md 2.4.
     */
    conductance_clamp: boolean;
  };
  targets: {
    /** Per recurrent cell type, in the order of recurrent.names. */
    firing_rates: number[];
    cvs: number;
    alpha: number[];
    threshold_ratio: number[];
    /**
     * Absolute path of a per-neuron targets file (.safetensors from `snn-sim --export-targets`, or .csv); its values
     * override the ones above for the quantities it holds.
     */
    file?: string;
    /**
     * Absolute path of a teacher's recorded spike trains (`snn-sim --teacher --export-teacher`): epochs replay its
     * inputs and fit its outputs with the van Rossum loss (model/teacher-replay.ts); needs loss_weight.van_rossum > 0.
     */
    teacher_spikes?: string;
  };
  hyperparameters: {
    learning_rate: number;
    surrgrad_scale: number;
    /**
     * Detach the reset gate (1 − s) from the graph, as the original's newer versions do: no gradient flows through the
     * reset (false = MODEL.md 2.4, the surrogate carries −ṽ·∂s through it).
     */
    detach_reset: boolean;
    max_grad_norm: number;
    /** What Adam optimises: w with projection onto w ≥ 0 ("linear") or ln w ("log"). */
    parameterisation: "linear" | "log";
    /** What is trained: the weights, or per-connection-type scaling factors (both parts or one), as ln S. */
    optimise: Optimise;
    lr_schedule: "constant" | "cosine" | "step";
    /** Updates of linear learning-rate warm-up at the start of training. */
    warmup_updates: number;
    /** cosine: the learning rate reached at the last update. */
    lr_min: number;
    /** step: multiply the learning rate by lr_step_factor every lr_step_updates updates. */
    lr_step_updates: number;
    lr_step_factor: number;
    /** Consecutive updates skipped for a non-finite loss, gradient or weight before the run stops as failed. */
    max_skipped_updates: number;
    /** Early stopping: stop after this many updates without a new best total loss (0 = off). */
    patience: number;
    betas: [number, number];
    eps: number;
    /** Rise time (ms) of the van Rossum spike-train filter: 0 = single exponential, else < van_rossum_tau_decay. */
    van_rossum_tau_rise: number;
    /** Decay time (ms) of the van Rossum spike-train filter. */
    van_rossum_tau_decay: number;
    loss_weight: { firing_rate: number; cv: number; silent_penalty: number; membrane_variance: number; van_rossum: number };
  };
  /** Where a fresh run's weights come from (teacher-student fitting). */
  student: StudentConfig;
  /**
   * Initial per-connection-type scaling factors (MODEL-HEAD.md 1), [pre type][post type]: recurrent K×K, feedforward
   * K_in×K. The weights simulated are W·S; under optimise = "weights" S is folded into the initial weights.
   */
  scaling_factors: { recurrent: number[][]; feedforward: number[][] };
  recurrent: {
    names: string[];
    proportion: number[];
    num_neurons: number;
    num_assemblies: number;
    /**
     * generator "original": the original's configuration model (duplicates collapse, square blocks lose their local
     * diagonal); "exact": types balanced per assembly, exactly round(p·n_src·n_tgt) distinct edges per block.
     */
    topology: { conn_within: number[][]; conn_between: number[][]; generator: "original" | "exact" };
    weights: { w_mu: number[][]; w_sigma: number[][] };
    physiology: PhysiologyConfig[];
    synapses: SynapseGroupConfig[];
    /** Absolute path of a CSV edge list pre,post,weight (io/connectome-file.ts); replaces topology and weights. */
    connectome_file?: string;
    /** Absolute path of a CSV neuron,cell_type[,assembly]; needed with connectome_file. */
    neurons_file?: string;
    duplicate_edges: "error" | "sum" | "keep-first";
  };
  feedforward: {
    names: string[];
    proportion: number[];
    num_neurons: number;
    firing_rate: number[];
    topology: { conn_inputs: number[][] };
    weights: { w_mu: number[][]; w_sigma: number[][] };
    synapses: SynapseGroupConfig[];
    /** Absolute path of a CSV edge list pre,post,weight from inputs to recurrent neurons; with recurrent.connectome_file. */
    connectome_file?: string;
    /** Absolute path of a CSV input,input_type; without it inputs are typed in blocks by proportion. */
    inputs_file?: string;
  };
  /** What drives the inputs: constant-rate Poisson trains (feedforward.firing_rate), or odours (model/odours.ts). */
  inputs: { process: "poisson" | "odours" };
  /** Present with inputs.process = "odours". */
  odours?: OdoursConfig;
  distributed: { heartbeat_interval: number; worker_timeout: number; no_worker_timeout: number };
  plotting: { enabled: boolean; interval: number; trial: number; raster_neurons: number };
  wandb: {
    enabled: boolean;
    project: string;
    entity: string;
    mode: "online" | "offline" | "disabled";
    name: string;
    tags: string[];
    group: string;
    notes: string;
    job_type: string;
  };
}

/** `[odours.<input type>]`: the rates of one input type's inputs under each odour pattern (model/odours.ts). */
export interface OdourTypeConfig {
  /** Mean rate of the type's inputs under every pattern (Hz). */
  baseline_rate: number;
  /** Added to the baseline for the type's most strongly connected inputs of a pattern (Hz). */
  modulation_rate: number;
  /** Share of the type's inputs that are modulated up in each pattern, in [0, 1]. */
  modulation_fraction: number;
}

/** `[odours]`: the Ornstein–Uhlenbeck process of the odour mixture, and the patterns per input type. */
export interface OdoursConfig {
  /** OU time constant (ms). */
  tau: number;
  /** OU noise amplitude. */
  sigma: number;
  /** Softmax temperature of the mixture. */
  temperature: number;
  /** Per input type, in the order of feedforward.names. */
  types: OdourTypeConfig[];
}

export interface StudentConfig {
  /** "generated": the connectome's lognormal weights; "teacher": the weights in teacher_file. */
  init: "generated" | "teacher";
  /** Absolute path of a teacher file written by `snn-sim --teacher --export-targets`. */
  teacher_file?: string;
  /** Mean-preserving multiplicative noise on the initial weights: w·exp(σn − σ²/2), n standard normal. */
  perturbation: "none" | "lognormal";
  perturbation_sigma: number;
  /** Multiplies every initial weight (after the perturbation). */
  scale: number;
  /**
   * Noisy student (src/model/weight-noise.ts): w·max(1 + noise_frac·ξ, 0) per synapse, then rescaled to the mean and
   * std the weights had (0 = off).
   */
  noise_frac: number;
  /** Over which synapses that mean and std are kept: all pooled ("global", the original) or each connection type. */
  noise_rescale: "global" | "per_type";
  /** Variance σ² of the per-type-pair factors p ~ LogNormal(−σ²/2, σ) the weights are multiplied by (0 = off). */
  weight_perturbation_variance: number;
  /**
   * "recurrent": the student is the recurrent network; "feedforward": teacher-forced, the teacher's recorded recurrent
   * spikes (targets.teacher_spikes) are its inputs and recurrence is off (model/teacher-forcing.ts).
   */
  mode: "recurrent" | "feedforward";
}

/**
 * What a key accepts, as the configuration reference (config-reference.ts) shows it: attached to the decoder that
 * reads the key, so that the reference takes types and ranges from the schema itself.
 */
export interface ValueSpec {
  type: "number" | "integer" | "boolean" | "string" | "strings" | "choice" | "names" | "numbers" | "matrix" | "per type" | "file" | "table";
  /** Of the value, or of each element. */
  range?: NumberRange;
  /** A maximum that depends on other keys, by name (range.max holds its value for the file parsed). */
  maxOf?: string;
  choices?: readonly string[];
  /** What a value must be beyond its type, in words. */
  rule?: string;
}

const specs = new WeakMap<Decoder<unknown>, ValueSpec>();

function described<T>(d: Decoder<T>, spec: ValueSpec): Decoder<T> {
  specs.set(d, spec);
  return d;
}

// The decoders of platform/validate.ts, described: every key below is read through one of these or a described
// composite, so that the reference knows what each key accepts (test/config-reference.test.ts checks it does).
const number = (range: NumberRange = {}, maxOf?: string) => described(plainNumber(range), { type: range.int ? "integer" : "number", range, maxOf });
const bool = described(plainBool, { type: "boolean" });
const string = (maxLength?: number) =>
  described(plainString(maxLength), { type: "string", ...(maxLength !== undefined && { rule: `at most ${maxLength} characters` }) });
const oneOf = <C extends string>(choices: readonly C[]) => described(plainOneOf(choices), { type: "choice", choices });

/** One key the schema read while parsing (parseConfig's `seen`): what the configuration reference is built from. */
export interface KeyRead {
  /** Dotted path, the names of per-type tables written "<type>": recurrent.physiology.<type>.tau_mem. */
  path: string;
  /** Absent where a decoder is not described (the reference's test fails on it). */
  spec?: ValueSpec;
  /** The value an absent key takes; undefined where the key is required (or, for a file, optional without one). */
  default?: unknown;
}

const TABLE: ValueSpec = { type: "table" };

/** A table of the parameters that tells `seen` (when given) every key and table the schema reads from it. */
class Keys {
  constructor(
    private readonly t: Table,
    private readonly seen: ((k: KeyRead) => void) | undefined,
    private readonly path = "",
  ) {}

  get at(): At {
    return this.t.at;
  }

  has(k: string): boolean {
    return this.t.has(k);
  }

  read<T>(k: string, d: Decoder<T>, def?: T): T {
    this.seen?.({ path: this.pathOf(k), spec: specs.get(d), default: def });
    return this.t.read(k, d, def);
  }

  /** `as` is the table's name in the reference: "<type>" for the tables of perTypeTables. */
  table(k: string, optional = false, as = k): Keys {
    this.seen?.({ path: this.pathOf(as), spec: TABLE, default: optional ? {} : undefined });
    return new Keys(this.t.table(k, optional), this.seen, this.pathOf(as));
  }

  done(hint?: string): void {
    this.t.done(hint);
  }

  private pathOf(k: string): string {
    return this.path ? `${this.path}.${k}` : k;
  }
}

/** Names (cell types, input types, synapses) become metrics.csv columns, metric labels and figure labels. */
const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** A non-empty list of unique names. */
const names: Decoder<string[]> = described((v: unknown, at: At) => {
  if (!Array.isArray(v) || v.length === 0) at.fail(`expected a non-empty array of strings, got ${show(v)}`);
  v.forEach((s, i) => {
    if (typeof s !== "string" || s === "") at.index(i).fail(`expected a non-empty string, got ${show(s)}`);
    if (!NAME.test(s))
      at.index(i).fail(`${show(s)} is not a valid name (a letter, then letters, digits, _ or -: names become metrics.csv columns and labels)`);
  });
  if (new Set(v).size !== v.length) at.fail(`names must be unique, got ${show(v)}`);
  return v as string[];
}, { type: "names", rule: "at least one; unique; each a letter, then letters, digits, _ or -" });

const numbers = (length: number, range: NumberRange = {}) => described(list(number(range), { length, of: "numbers" }), { type: "numbers", range });

function matrix(rows: number, cols: number, range: NumberRange = {}): Decoder<number[][]> {
  const cell = number(range);
  return described((v: unknown, at: At) => {
    if (!Array.isArray(v) || v.length !== rows) at.fail(`expected ${rows} rows (one per presynaptic type) of ${cols} numbers, got ${show(v)}`);
    return v.map((row: unknown, i) => {
      if (!Array.isArray(row) || row.length !== cols) return at.index(i).fail(`expected ${cols} numbers (one per postsynaptic type), got ${show(row)}`);
      return row.map((x, j) => cell(x, at.index(i).index(j)));
    });
  }, { type: "matrix", range });
}

/** A number for every cell type: either one scalar for all, or a table keyed by cell type name. */
function perType(typeNames: string[], range: NumberRange): Decoder<number[]> {
  const one = number(range);
  return described((v: unknown, at: At) => {
    if (typeof v === "number") return typeNames.map(() => one(v, at));
    if (v === undefined) at.fail("missing (a number, or a table with one number per cell type)");
    if (!isMap(v)) at.fail(`expected a number or a table per cell type (${typeNames.join(", ")}), got ${show(v)}`);
    const t = new Table(at, v);
    const out = typeNames.map((n) => t.read(n, one));
    t.done(`cell type names are ${typeNames.join(", ")}`);
    return out;
  }, { type: "per type", range });
}

const filePath = described(optional(plainString()), { type: "file" });

/** A path, relative to the parameters file's directory (`baseDir`), returned absolute; undefined when absent. */
function file(r: Keys, k: string, baseDir: string): string | undefined {
  // Read even when absent, so that the reference sees the key in every parameters file.
  const v = r.read(k, filePath);
  if (v === undefined) return undefined;
  if (v.trim() === "") r.at.key(k).fail("expected a file path, got an empty string");
  return resolve(baseDir, v);
}

const positive = { min: 0, exclusiveMin: true };
const probability = { min: 0, max: 1 };

function readPhysiology(r: Keys): PhysiologyConfig {
  const p: PhysiologyConfig = {
    tau_mem: r.read("tau_mem", number(positive)),
    theta: r.read("theta", number()),
    U_reset: r.read("U_reset", number()),
    E_L: r.read("E_L", number()),
    g_L: r.read("g_L", number(positive)),
    tau_ref: r.read("tau_ref", number({ min: 0 }), 0),
  };
  r.done();
  if (p.U_reset >= p.theta) r.at.key("U_reset").fail(`must be below theta (${p.theta} mV), got ${p.U_reset}`);
  return p;
}

function readSynapses(r: Keys): SynapseGroupConfig {
  const synapseNames = r.read("names", names);
  const n = synapseNames.length;
  const s: SynapseGroupConfig = {
    names: synapseNames,
    tau_rise: r.read("tau_rise", numbers(n, positive)),
    tau_decay: r.read("tau_decay", numbers(n, positive)),
    E_syn: r.read("E_syn", numbers(n)),
    g_bar: r.read("g_bar", numbers(n, { min: 0 })),
  };
  r.done();
  s.tau_rise.forEach((tr, i) => {
    if (tr === s.tau_decay[i]) r.at.key("tau_rise").index(i).fail("must differ from tau_decay (double-exponential kernel)");
  });
  return s;
}

function perTypeTables<T>(parent: Keys, key: string, typeNames: string[], read: (r: Keys) => T): T[] {
  const t = parent.table(key);
  const out = typeNames.map((n) => {
    if (!t.has(n)) t.at.key(n).fail(`missing (one table per cell type: ${typeNames.join(", ")})`);
    return read(t.table(n, false, "<type>"));
  });
  t.done(`cell type names are ${typeNames.join(", ")}`);
  return out;
}

/**
 * `[odours]` (model/odours.ts), used only with inputs.process = "odours" (refused otherwise, where it would do
 * nothing). MODEL-HEAD.md 4's defaults; a type's baseline_rate defaults to its feedforward.firing_rate.
 */
function readOdours(root: Keys, process: "poisson" | "odours", ffNames: string[], ffRate: number[]): OdoursConfig | undefined {
  if (process !== "odours" && root.has("odours")) throw new ConfigError('odours: only used with inputs.process = "odours" (inputs.process is "poisson")');
  // Read (from an empty table when absent) whatever the process, so that the configuration reference sees every key.
  const r = root.table("odours", true);
  const odours: OdoursConfig = {
    tau: r.read("tau", number(positive), 700_000),
    sigma: r.read("sigma", number(positive), 5.0),
    temperature: r.read("temperature", number(positive), 0.2),
    types: ffNames.map((name, k) => {
      const t = r.table(name, true, "<input type>");
      const type = {
        baseline_rate: t.read("baseline_rate", number({ min: 0 }), ffRate[k]),
        modulation_rate: t.read("modulation_rate", number({ min: 0 }), 30.0),
        modulation_fraction: t.read("modulation_fraction", number(probability), 0.1),
      };
      t.done();
      return type;
    }),
  };
  r.done(`input type names are ${ffNames.join(", ")}`);
  return process === "odours" ? odours : undefined;
}

function checkProportions(path: string, p: number[]): void {
  const sum = p.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-6) throw new ConfigError(`${path}: proportions must sum to 1, got ${sum}`);
}

/**
 * `baseDir` anchors relative file paths in the parameters (loadConfig passes the parameters file's directory);
 * `seen` hears of every key and table read, in the order read (config-reference.ts); `edit` changes the parsed
 * document before it is validated (the command-line overrides of model/overrides.ts).
 */
export function parseConfig(text: string, source = "parameters", baseDir = ".", seen?: (k: KeyRead) => void, edit?: (doc: Record<string, unknown>) => void): Config {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text);
  } catch (e) {
    const msg = e instanceof TomlError ? `${e.message.split("\n")[0]} (line ${e.line}, column ${e.column})` : String(e);
    throw new ConfigError(`${source}: malformed TOML: ${msg}`);
  }
  edit?.(doc);
  const root = new Keys(new Table(new At("", ConfigError), doc), seen);

  const simR = root.table("simulation");
  const simulation = {
    seed: simR.read("seed", number({ min: 0, max: 2 ** 32 - 1, int: true }), 42),
    dt: simR.read("dt", number(positive), 1.0),
    chunk_steps: simR.read("chunk_steps", number({ min: 2, int: true }), 50),
    chunks_per_epoch: simR.read("chunks_per_epoch", number({ min: 1, int: true }), 2),
    batch_size: simR.read("batch_size", number({ min: 1, int: true }), 10),
    epochs: simR.read("epochs", number({ min: 1, int: true }), 500),
    accumulation_interval: simR.read("accumulation_interval", number({ min: 1, int: true }), 5),
    checkpoint_interval: simR.read("checkpoint_interval", number({ min: 1, int: true }), 50),
    burn_in_epochs: simR.read("burn_in_epochs", number({ min: 0, int: true }), 0),
    kernel_normalisation: simR.read("kernel_normalisation", oneOf(["original", "peak"] as const), "original"),
    conductance_clamp: simR.read("conductance_clamp", bool, false),
  };
  simR.done();
  if (simulation.checkpoint_interval % simulation.accumulation_interval !== 0)
    throw new ConfigError(
      `simulation.checkpoint_interval: must be a multiple of simulation.accumulation_interval (${simulation.accumulation_interval}), got ${simulation.checkpoint_interval}`,
    );

  const recR = root.table("recurrent");
  const recNames = recR.read("names", names);
  const K = recNames.length;
  const recProportion = recR.read("proportion", numbers(K, probability));
  checkProportions("recurrent.proportion", recProportion);
  const numNeurons = recR.read("num_neurons", number({ min: 2, max: 200_000, int: true }));
  const numAssemblies = recR.read("num_assemblies", number({ min: 1, int: true }), 1);
  if (numAssemblies > numNeurons) throw new ConfigError(`recurrent.num_assemblies: must be ≤ recurrent.num_neurons (${numNeurons}), got ${numAssemblies}`);
  if (numNeurons % numAssemblies !== 0)
    throw new ConfigError(
      `recurrent.num_assemblies: recurrent.num_neurons (${numNeurons}) must be divisible by it (the original would silently drop neurons), got ${numAssemblies}`,
    );
  const topR = recR.table("topology");
  const recTopology = {
    conn_within: topR.read("conn_within", matrix(K, K, probability)),
    conn_between: topR.read("conn_between", matrix(K, K, probability)),
    generator: topR.read("generator", oneOf(["original", "exact"] as const), "original"),
  };
  if (recTopology.generator === "exact") {
    // Exact counts per assembly and type pair: same-type blocks within an assembly have no self-loops, so
    // round(p·n·n) must not exceed n·(n − 1) (other blocks cannot overflow: p ≤ 1).
    const perAssembly = typeCounts(numNeurons / numAssemblies, recProportion);
    perAssembly.forEach((n, k) => {
      const want = roundHalfEven(recTopology.conn_within[k][k] * n * n);
      if (want > n * (n - 1))
        topR.at
          .key("conn_within")
          .fail(
            `[${k}][${k}] = ${recTopology.conn_within[k][k]} asks generator = "exact" for round(p·${n}·${n}) = ${want} distinct ${recNames[k]}→${recNames[k]} edges per assembly, but only ${n * (n - 1)} pairs without self-loops exist`,
          );
    });
  }
  topR.done();
  const wR = recR.table("weights");
  const recWeights = { w_mu: wR.read("w_mu", matrix(K, K, { min: 0 })), w_sigma: wR.read("w_sigma", matrix(K, K, { min: 0 })) };
  wR.done();
  const physiology = perTypeTables(recR, "physiology", recNames, readPhysiology);
  const recSynapses = perTypeTables(recR, "synapses", recNames, readSynapses);
  const recConnectomeFile = file(recR, "connectome_file", baseDir);
  const neuronsFile = file(recR, "neurons_file", baseDir);
  const duplicateEdges = recR.read("duplicate_edges", oneOf(["error", "sum", "keep-first"] as const), "error");
  recR.done();

  const ffR = root.table("feedforward");
  const ffNames = ffR.read("names", names);
  const KF = ffNames.length;
  const ffProportion = ffR.read("proportion", numbers(KF, probability));
  checkProportions("feedforward.proportion", ffProportion);
  const ffNum = ffR.read("num_neurons", number({ min: 1, max: 200_000, int: true }));
  const ffRate = ffR.read("firing_rate", perType(ffNames, { min: 0 }));
  const ffTopR = ffR.table("topology");
  const ffTopology = { conn_inputs: ffTopR.read("conn_inputs", matrix(KF, K, probability)) };
  ffTopR.done();
  const ffWR = ffR.table("weights");
  const ffWeights = { w_mu: ffWR.read("w_mu", matrix(KF, K, { min: 0 })), w_sigma: ffWR.read("w_sigma", matrix(KF, K, { min: 0 })) };
  ffWR.done();
  const ffSynapses = perTypeTables(ffR, "synapses", ffNames, readSynapses);
  const ffConnectomeFile = file(ffR, "connectome_file", baseDir);
  const inputsFile = file(ffR, "inputs_file", baseDir);
  ffR.done();
  // A .safetensors or .npz container may hold the cell types; whether a .npz does is known once it is read.
  if (recConnectomeFile && !neuronsFile && !/\.(safetensors|npz)$/i.test(recConnectomeFile))
    throw new ConfigError("recurrent.neurons_file: needed with recurrent.connectome_file (the cell type of every neuron, CSV neuron,cell_type[,assembly])");
  // Either part may come from a file and the other be generated ([recurrent|feedforward].topology and .weights).
  if (!recConnectomeFile && neuronsFile) throw new ConfigError("recurrent.neurons_file: only used with recurrent.connectome_file");
  if (!ffConnectomeFile && inputsFile) throw new ConfigError("feedforward.inputs_file: only used with feedforward.connectome_file");

  const tR = root.table("targets");
  const targets = {
    firing_rates: tR.read("firing_rates", perType(recNames, { min: 0 })),
    cvs: tR.read("cvs", number({ min: 0 }), 1.0),
    alpha: tR.read("alpha", perType(recNames, { min: 0 }), recNames.map(() => 0)),
    threshold_ratio: tR.read("threshold_ratio", perType(recNames, { min: 0 }), recNames.map(() => 0)),
    file: file(tR, "file", baseDir),
    teacher_spikes: file(tR, "teacher_spikes", baseDir),
  };
  tR.done();

  const hR = root.table("hyperparameters");
  const betas = hR.read("betas", numbers(2, { min: 0, max: 0.999999999 }), [0.9, 0.999]);
  const lwR = hR.table("loss_weight", true);
  const lr_schedule = hR.read("lr_schedule", oneOf(["constant", "cosine", "step"] as const), "constant");
  // A schedule's own keys only with that schedule: a lr_min under a constant schedule would silently do nothing.
  const scheduleKey = (k: keyof typeof SCHEDULE_OF, range: NumberRange, def: number) => {
    const schedule = SCHEDULE_OF[k];
    if (hR.has(k) && lr_schedule !== schedule)
      throw new ConfigError(`hyperparameters.${k}: only used with lr_schedule = "${schedule}" (lr_schedule is "${lr_schedule}")`);
    return hR.read(k, number(range), def);
  };
  const hyperparameters = {
    learning_rate: hR.read("learning_rate", number(positive), 5e-4),
    surrgrad_scale: hR.read("surrgrad_scale", number(positive), 100),
    detach_reset: hR.read("detach_reset", bool, false),
    max_grad_norm: hR.read("max_grad_norm", number(positive), 1.0),
    parameterisation: hR.read("parameterisation", oneOf(["linear", "log"] as const), "linear"),
    optimise: hR.read("optimise", oneOf(OPTIMISE_MODES), "weights"),
    lr_schedule,
    warmup_updates: hR.read("warmup_updates", number({ min: 0, int: true }), 0),
    lr_min: scheduleKey("lr_min", { min: 0 }, 0),
    lr_step_updates: scheduleKey("lr_step_updates", { min: 1, int: true }, 100),
    lr_step_factor: scheduleKey("lr_step_factor", { min: 0, max: 1, exclusiveMin: true }, 0.5),
    max_skipped_updates: hR.read("max_skipped_updates", number({ min: 1, int: true }), 5),
    patience: hR.read("patience", number({ min: 0, int: true }), 0),
    betas: [betas[0], betas[1]] as [number, number],
    eps: hR.read("eps", number(positive), 1e-8),
    van_rossum_tau_rise: hR.read("van_rossum_tau_rise", number({ min: 0 }), 0),
    van_rossum_tau_decay: hR.read("van_rossum_tau_decay", number(positive), 20.0),
    loss_weight: {
      firing_rate: lwR.read("firing_rate", number({ min: 0 }), 1.0),
      cv: lwR.read("cv", number({ min: 0 }), 0.5),
      silent_penalty: lwR.read("silent_penalty", number({ min: 0 }), 1.0),
      membrane_variance: lwR.read("membrane_variance", number({ min: 0 }), 10.0),
      van_rossum: lwR.read("van_rossum", number({ min: 0 }), 0),
    },
  };
  lwR.done();
  // The van Rossum filter's time constants (model/van-rossum.ts): the single-exponential key was renamed.
  if (hR.has("van_rossum_tau"))
    hR.at.key("van_rossum_tau").fail("renamed to van_rossum_tau_decay (the same single-exponential filter while van_rossum_tau_rise is 0, its default)");
  if (hyperparameters.van_rossum_tau_rise > 0 && hyperparameters.van_rossum_tau_rise >= hyperparameters.van_rossum_tau_decay)
    hR.at
      .key("van_rossum_tau_rise")
      .fail(
        `must be 0 (single exponential) or < van_rossum_tau_decay (${hyperparameters.van_rossum_tau_decay} ms), got ${hyperparameters.van_rossum_tau_rise}` +
          (hyperparameters.van_rossum_tau_rise === hyperparameters.van_rossum_tau_decay ? " (equal time constants are a degenerate double exponential)" : ""),
      );
  // The CV term has no gradient: a run whose other terms all weigh 0 would take steps of nothing.
  const lw = hyperparameters.loss_weight;
  if (hyperparameters.optimise !== "weights" && lw.firing_rate + lw.silent_penalty + lw.membrane_variance + lw.van_rossum === 0)
    hR.at.key("optimise").fail(
      `"${hyperparameters.optimise}" needs a loss term with a gradient, but loss_weight.firing_rate, silent_penalty, membrane_variance and van_rossum are all 0`,
    );
  // Scaling factors are always optimised as ln S; parameterisation is about the weights.
  if (hyperparameters.optimise !== "weights" && hR.has("parameterisation"))
    hR.at.key("parameterisation").fail(`only used with optimise = "weights" (optimise is "${hyperparameters.optimise}": scaling factors are always optimised as ln S)`);
  hR.done();
  if (hyperparameters.lr_min > hyperparameters.learning_rate)
    throw new ConfigError(`hyperparameters.lr_min: must be ≤ hyperparameters.learning_rate (${hyperparameters.learning_rate}), got ${hyperparameters.lr_min}`);
  checkTrainingLength(simulation, hyperparameters, simulation.epochs, "simulation.epochs");

  const student = readStudent(root.table("student", true), baseDir);
  const sfR = root.table("scaling_factors", true);
  const ones = (rows: number) => Array.from({ length: rows }, () => recNames.map(() => 1));
  const scaling_factors = {
    recurrent: sfR.read("recurrent", matrix(K, K, positive), ones(K)),
    feedforward: sfR.read("feedforward", matrix(KF, K, positive), ones(KF)),
  };
  sfR.done();
  if (student.mode === "feedforward" && !targets.teacher_spikes)
    throw new ConfigError(
      'student.mode: "feedforward" (teacher forcing) takes the teacher\'s recorded recurrent spikes as inputs; set targets.teacher_spikes to a recording of `snn-sim --teacher --export-teacher`',
    );

  if (hyperparameters.loss_weight.van_rossum > 0 && !student.teacher_file && !targets.teacher_spikes)
    throw new ConfigError(
      "hyperparameters.loss_weight.van_rossum: the van Rossum loss compares with a teacher's spike trains; set student.teacher_file to the file `snn-sim --teacher --export-targets` wrote, or targets.teacher_spikes to a recording of `snn-sim --teacher --export-teacher`",
    );
  if (targets.teacher_spikes && !(hyperparameters.loss_weight.van_rossum > 0))
    throw new ConfigError(
      `targets.teacher_spikes "${targets.teacher_spikes}": a recorded teacher is fitted with the van Rossum loss, which is off; set hyperparameters.loss_weight.van_rossum > 0`,
    );

  const iR = root.table("inputs", true);
  const inputs = { process: iR.read("process", oneOf(["poisson", "odours"] as const), "poisson") };
  iR.done();
  const odours = readOdours(root, inputs.process, ffNames, ffRate);
  if (odours && targets.teacher_spikes)
    throw new ConfigError(
      `inputs.process: "odours" draws new inputs, but targets.teacher_spikes replays the recorded teacher's inputs; use inputs.process = "poisson" (the recording already holds the teacher's odour inputs)`,
    );

  const dR = root.table("distributed", true);
  const distributed = {
    heartbeat_interval: dR.read("heartbeat_interval", number({ min: 0.01 }), 2.0),
    worker_timeout: dR.read("worker_timeout", number(positive), 60.0),
    no_worker_timeout: dR.read("no_worker_timeout", number(positive), 300.0),
  };
  dR.done();
  // A timeout shorter than two heartbeats drops healthy workers between two of their heartbeats.
  for (const k of ["worker_timeout", "no_worker_timeout"] as const)
    if (distributed[k] < 2 * distributed.heartbeat_interval)
      throw new ConfigError(`distributed.${k}: must be at least 2 × distributed.heartbeat_interval (${2 * distributed.heartbeat_interval} s), got ${distributed[k]}`);

  const pR = root.table("plotting", true);
  const plotting = {
    enabled: pR.read("enabled", bool, true),
    interval: pR.read("interval", number({ min: 1, int: true }), simulation.accumulation_interval),
    trial: pR.read("trial", number({ min: 0, max: simulation.batch_size - 1, int: true }, "simulation.batch_size − 1"), 0),
    raster_neurons: pR.read("raster_neurons", number({ min: 1, max: numNeurons, int: true }, "recurrent.num_neurons"), 40),
  };
  pR.done();
  if (plotting.interval % simulation.accumulation_interval !== 0)
    throw new ConfigError(
      `plotting.interval: must be a multiple of simulation.accumulation_interval (${simulation.accumulation_interval}), got ${plotting.interval}`,
    );

  const wbR = root.table("wandb", true);
  const wandb = {
    enabled: wbR.read("enabled", bool, false),
    project: wbR.read("project", string(), "connectome-snns-fitting-activity"),
    entity: wbR.read("entity", string(), ""),
    mode: wbR.read("mode", oneOf(["online", "offline", "disabled"] as const), "offline"),
    name: wbR.read("name", string(), ""),
    // W&B's own limits: 64 characters a tag or job type, 128 a group.
    tags: wbR.read("tags", described(list(plainString(64), { of: "strings" }), { type: "strings", rule: "each at most 64 characters" }), []),
    group: wbR.read("group", string(128), ""),
    notes: wbR.read("notes", string(), ""),
    job_type: wbR.read("job_type", string(64), "train"),
  };
  wbR.done();
  root.done();

  const config: Config = {
    simulation,
    targets,
    hyperparameters,
    student,
    scaling_factors,
    recurrent: {
      names: recNames,
      proportion: recProportion,
      num_neurons: numNeurons,
      num_assemblies: numAssemblies,
      topology: recTopology,
      weights: recWeights,
      physiology,
      synapses: recSynapses,
      connectome_file: recConnectomeFile,
      neurons_file: neuronsFile,
      duplicate_edges: duplicateEdges,
    },
    feedforward: {
      names: ffNames,
      proportion: ffProportion,
      num_neurons: ffNum,
      firing_rate: ffRate,
      topology: ffTopology,
      weights: ffWeights,
      synapses: ffSynapses,
      connectome_file: ffConnectomeFile,
      inputs_file: inputsFile,
    },
    inputs,
    ...(odours ? { odours } : {}),
    distributed,
    plotting,
    wandb,
  };
  // The estimate comes from [recurrent.topology] and the weight means, which a network read from files does not use.
  // A network with a part from a file is checked on its own weights once it is read (checkConnectomeStability).
  if (!recConnectomeFile && !ffConnectomeFile) checkStability(config);
  return config;
}

/** The keys of the learning-rate schedules, each allowed only with its schedule. */
const SCHEDULE_OF = { lr_min: "cosine", lr_step_updates: "step", lr_step_factor: "step" } as const;

/**
 * Whole updates, and burn-in and warm-up that leave updates to train: checked for the parameters' epochs and again
 * for an --epochs override (`epochsKey` names where the count came from).
 */
export function checkTrainingLength(
  simulation: Pick<Config["simulation"], "accumulation_interval" | "burn_in_epochs">,
  h: Pick<Config["hyperparameters"], "warmup_updates">,
  epochs: number,
  epochsKey: string,
): void {
  const A = simulation.accumulation_interval;
  if (epochs % A !== 0) throw new ConfigError(`${epochsKey}: must be a multiple of simulation.accumulation_interval (${A}), got ${epochs}`);
  if (simulation.burn_in_epochs % A !== 0)
    throw new ConfigError(`simulation.burn_in_epochs: must be a multiple of simulation.accumulation_interval (${A}), got ${simulation.burn_in_epochs}`);
  if (simulation.burn_in_epochs >= epochs)
    throw new ConfigError(`simulation.burn_in_epochs: must be below ${epochsKey} (${epochs}) so that some epochs train, got ${simulation.burn_in_epochs}`);
  const updates = (epochs - simulation.burn_in_epochs) / A;
  if (h.warmup_updates >= updates)
    throw new ConfigError(
      `hyperparameters.warmup_updates: must be shorter than the run's ${updates} updates (${epochsKey} ${epochs} − burn-in ${simulation.burn_in_epochs}, every ${A} epochs), got ${h.warmup_updates}`,
    );
}

/**
 * The tables of the parameters file that parses to `config`, every default written out and file paths absolute (the
 * effective parameters a run records, and `snn-coord --print-config` prints): per-type values become tables keyed by
 * name, and the keys a setting leaves unused (another schedule's, perturbation_sigma without a perturbation,
 * noise_rescale without noise, parameterisation when scaling factors are trained) are left out, as the schema refuses them.
 */
export function parametersTables(c: Config): Record<string, unknown> {
  const byName = <T>(typeNames: string[], values: T[]) => Object.fromEntries(typeNames.map((n, i) => [n, values[i]]));
  const rec = c.recurrent.names;
  const ff = c.feedforward.names;
  const h = c.hyperparameters;
  const { perturbation_sigma, noise_rescale, ...student } = c.student;
  return {
    simulation: c.simulation,
    targets: { ...c.targets, firing_rates: byName(rec, c.targets.firing_rates), alpha: byName(rec, c.targets.alpha), threshold_ratio: byName(rec, c.targets.threshold_ratio) },
    hyperparameters: Object.fromEntries(
      Object.entries(h).filter(
        ([k]) => (!(k in SCHEDULE_OF) || SCHEDULE_OF[k as keyof typeof SCHEDULE_OF] === h.lr_schedule) && (k !== "parameterisation" || h.optimise === "weights"),
      ),
    ),
    student: { ...student, ...(student.perturbation === "lognormal" ? { perturbation_sigma } : {}), ...(student.noise_frac > 0 ? { noise_rescale } : {}) },
    scaling_factors: c.scaling_factors,
    recurrent: { ...c.recurrent, physiology: byName(rec, c.recurrent.physiology), synapses: byName(rec, c.recurrent.synapses) },
    feedforward: { ...c.feedforward, firing_rate: byName(ff, c.feedforward.firing_rate), synapses: byName(ff, c.feedforward.synapses) },
    inputs: c.inputs,
    ...(c.odours ? { odours: { tau: c.odours.tau, sigma: c.odours.sigma, temperature: c.odours.temperature, ...byName(ff, c.odours.types) } } : {}),
    distributed: c.distributed,
    plotting: c.plotting,
    wandb: c.wandb,
  };
}

export function parametersToml(c: Config): string {
  return stringifyToml(parametersTables(c));
}

/** `config` with a command-line --epochs applied, checked as simulation.epochs is. */
export function withEpochs(config: Config, epochs: number | undefined): Config {
  if (epochs === undefined) return config;
  checkTrainingLength(config.simulation, config.hyperparameters, epochs, "--epochs");
  return { ...config, simulation: { ...config.simulation, epochs } };
}

/**
 * The conductance (nS) a synapse group gives a cell at the continuous-time kernel peak when its summed weight onto the
 * cell is `w` and every one of those synapses fires at once: w·Σ_slots peak per unit weight (g_bar under "peak",
 * g_bar·N/P = g_bar·r^(2r/(1−r))·(1 − r) with r = τr/τd under the original normalisation); with the conductance clamp
 * no slot holds more than one unit-weight spike's amplitude g_bar/N (N: the normaliser), whatever the inputs.
 */
export function coincidentDrive(c: Config): (g: SynapseGroupConfig, w: number) => number {
  const peakNorm = c.simulation.kernel_normalisation === "peak";
  const slotPeak = (gb: number, tr: number, td: number) => (peakNorm ? gb : gb * Math.pow(tr / td, (2 * tr) / (td - tr)) * (1 - tr / td));
  return (g, w) =>
    g.g_bar.reduce((acc, gb, l) => {
      const [tr, td] = [g.tau_rise[l], g.tau_decay[l]];
      const slot = w * slotPeak(gb, tr, td);
      return acc + (c.simulation.conductance_clamp ? Math.min(slot, gb / (peakNorm ? kernelPeak : kernelNormaliser)(tr, td)) : slot);
    }, 0);
}

/**
 * The membrane drive is integrated by forward Euler, so a step must not move v further than its distance to the
 * synaptic reversal potentials: dt·G/C_m < 1. Throws the ConfigError that says so for a cell of type `post` whose
 * coincident drive is `G` nS (`which`: the cells meant, e.g. "excitatory cells", "neuron 17 (excitatory)").
 */
export function checkEulerStep(c: Config, post: number, G: number, which: string, how: string): void {
  const { dt } = c.simulation;
  const ph = c.recurrent.physiology[post];
  const C = ph.tau_mem * ph.g_L;
  const ratio = (dt * G) / C;
  if (ratio >= 1)
    throw new ConfigError(
      `simulation.dt: ${dt} ms is too large for the explicit Euler membrane step of ${which}: ` +
        `dt·G_syn/C_m = ${ratio.toFixed(2)} ≥ 1 (G_syn ≈ ${G.toFixed(1)} nS ${how}${c.simulation.conductance_clamp ? " and clamped" : ""}, C_m = ${C.toFixed(1)} pF); ` +
        `use dt < ${(C / G).toFixed(3)} ms`,
    );
}

/**
 * dt against the generated network: G is estimated as the conductance if every presynaptic neuron of every type
 * fired at once at its mean weight and expected in-degree, a pessimistic bound. (A network read from files is checked
 * neuron by neuron on its own weights: checkConnectomeStability.)
 */
export function checkStability(c: Config): void {
  const K = c.recurrent.names.length;
  const counts = typeCounts(c.recurrent.num_neurons, c.recurrent.proportion);
  const ffCounts = typeCounts(c.feedforward.num_neurons, c.feedforward.proportion);
  const A = c.recurrent.num_assemblies;
  const drive = coincidentDrive(c);
  for (let post = 0; post < K; post++) {
    let G = 0;
    for (let pre = 0; pre < K; pre++) {
      const inDeg =
        (counts[pre] / A) * c.recurrent.topology.conn_within[pre][post] + (counts[pre] * (A - 1)) / A * c.recurrent.topology.conn_between[pre][post];
      G += drive(c.recurrent.synapses[pre], inDeg * c.recurrent.weights.w_mu[pre][post]);
    }
    for (let pre = 0; pre < c.feedforward.names.length; pre++) {
      const inDeg = ffCounts[pre] * c.feedforward.topology.conn_inputs[pre][post];
      G += drive(c.feedforward.synapses[pre], inDeg * c.feedforward.weights.w_mu[pre][post]);
    }
    checkEulerStep(c, post, G, `${c.recurrent.names[post]} cells`, "with all inputs coincident");
  }
}

/** Neurons per type: round(n·p) for all but the last type, which takes the remainder (as the original). */
export function typeCounts(n: number, proportions: number[]): number[] {
  const counts = proportions.slice(0, -1).map((p) => roundHalfEven(n * p));
  counts.push(n - counts.reduce((a, b) => a + b, 0));
  return counts;
}

/** numpy's round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function readStudent(r: Keys, baseDir: string): StudentConfig {
  const init = r.read("init", oneOf(["generated", "teacher"] as const), "generated");
  const teacher_file = file(r, "teacher_file", baseDir);
  const perturbation = r.read("perturbation", oneOf(["none", "lognormal"] as const), "none");
  if (perturbation === "lognormal" && !r.has("perturbation_sigma"))
    r.at.key("perturbation_sigma").fail(`missing (perturbation = "lognormal" needs the σ of its log-space noise)`);
  if (perturbation === "none" && r.has("perturbation_sigma"))
    r.at.key("perturbation_sigma").fail(`only used with perturbation = "lognormal" (perturbation is "none")`);
  const student: StudentConfig = {
    init,
    teacher_file,
    perturbation,
    perturbation_sigma: r.read("perturbation_sigma", number({ min: 0, max: 5 }), 0),
    scale: r.read("scale", number(positive), 1.0),
    noise_frac: r.read("noise_frac", number({ min: 0, max: 10 }), 0),
    noise_rescale: r.read("noise_rescale", oneOf(["global", "per_type"] as const), "global"),
    weight_perturbation_variance: r.read("weight_perturbation_variance", number({ min: 0, max: 4 }), 0),
    mode: r.read("mode", oneOf(["recurrent", "feedforward"] as const), "recurrent"),
  };
  if (student.noise_frac === 0 && r.has("noise_rescale"))
    r.at.key("noise_rescale").fail(`only used with noise_frac > 0 (noise_frac is 0: no weight noise to rescale)`);
  r.done();
  if (init === "teacher" && !teacher_file)
    r.at.key("init").fail(`"teacher" takes the weights of student.teacher_file, which is not set`);
  return student;
}
