/**
 * The one configuration schema: parses a parameters TOML file, validates every key (path, type, range) and returns a
 * typed, fully-defaulted Config. Any problem is a ConfigError naming the key; the CLIs turn it into exit code 2.
 * Pure: io/parameters-file.ts reads the file (relative paths in it are resolved against `baseDir`).
 */
import { resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";

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
    /** Time constant (ms) of the van Rossum spike-train filter. */
    van_rossum_tau: number;
    loss_weight: { firing_rate: number; cv: number; silent_penalty: number; membrane_variance: number; van_rossum: number };
  };
  /** Where a fresh run's weights come from (teacher-student fitting). */
  student: StudentConfig;
  recurrent: {
    names: string[];
    proportion: number[];
    num_neurons: number;
    num_assemblies: number;
    topology: { conn_within: number[][]; conn_between: number[][] };
    weights: { w_mu: number[][]; w_sigma: number[][] };
    physiology: PhysiologyConfig[];
    synapses: SynapseGroupConfig[];
  };
  feedforward: {
    names: string[];
    proportion: number[];
    num_neurons: number;
    firing_rate: number[];
    topology: { conn_inputs: number[][] };
    weights: { w_mu: number[][]; w_sigma: number[][] };
    synapses: SynapseGroupConfig[];
  };
  distributed: { heartbeat_interval: number; worker_timeout: number; no_worker_timeout: number };
  plotting: { enabled: boolean; interval: number; trial: number; raster_neurons: number };
  wandb: { enabled: boolean; project: string; entity: string; mode: "online" | "offline" | "disabled"; name: string };
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
}

type Table = Record<string, unknown>;

/** Reads one table, handing out its keys; `done()` rejects whatever the schema did not ask for. */
class Reader {
  private used = new Set<string>();
  constructor(
    readonly path: string,
    private readonly entries: Table,
  ) {}

  private key(k: string): string {
    return this.path ? `${this.path}.${k}` : k;
  }

  private raw(k: string): unknown {
    this.used.add(k);
    return this.entries[k];
  }

  has(k: string): boolean {
    return this.entries[k] !== undefined;
  }

  /** A key the table lacks: a typo of it among the table's keys is the likelier problem, and said first. */
  private missing(k: string, expected: string): never {
    const typo = Object.keys(this.entries).find((e) => !this.used.has(e) && e !== k && similar(e, k));
    if (typo !== undefined) throw new ConfigError(`${this.key(typo)}: unknown key; did you mean ${k}?`);
    throw new ConfigError(`${this.key(k)}: missing (${expected})`);
  }

  number(k: string, opts: { def?: number; min?: number; max?: number; int?: boolean; exclusiveMin?: boolean } = {}): number {
    const v = this.raw(k);
    if (v === undefined) {
      if (opts.def === undefined) this.missing(k, "expected a number");
      return opts.def;
    }
    return checkNumber(this.key(k), v, opts);
  }

  bool(k: string, def: boolean): boolean {
    const v = this.raw(k);
    if (v === undefined) return def;
    if (typeof v !== "boolean") throw new ConfigError(`${this.key(k)}: expected true or false, got ${show(v)}`);
    return v;
  }

  string(k: string, def?: string, choices?: readonly string[]): string {
    const v = this.raw(k);
    if (v === undefined) {
      if (def === undefined) this.missing(k, "expected a string");
      return def;
    }
    if (typeof v !== "string") throw new ConfigError(`${this.key(k)}: expected a string, got ${show(v)}`);
    if (choices && !choices.includes(v)) throw new ConfigError(`${this.key(k)}: must be one of ${choices.join(", ")}, got "${v}"`);
    return v;
  }

  strings(k: string): string[] {
    const v = this.raw(k);
    if (!Array.isArray(v) || v.length === 0) throw new ConfigError(`${this.key(k)}: expected a non-empty array of strings, got ${show(v)}`);
    v.forEach((s, i) => {
      if (typeof s !== "string" || s === "") throw new ConfigError(`${this.key(k)}[${i}]: expected a non-empty string, got ${show(s)}`);
      if (!NAME.test(s))
        throw new ConfigError(
          `${this.key(k)}[${i}]: ${show(s)} is not a valid name (a letter, then letters, digits, _ or -: names become metrics.csv columns and labels)`,
        );
    });
    if (new Set(v).size !== v.length) throw new ConfigError(`${this.key(k)}: names must be unique, got ${show(v)}`);
    return v as string[];
  }

  numbers(k: string, len: number | undefined, opts: { min?: number; max?: number; exclusiveMin?: boolean } = {}): number[] {
    const v = this.raw(k);
    if (!Array.isArray(v)) throw new ConfigError(`${this.key(k)}: expected an array of numbers, got ${show(v)}`);
    if (len !== undefined && v.length !== len) throw new ConfigError(`${this.key(k)}: expected ${len} values, got ${v.length}`);
    return v.map((x, i) => checkNumber(`${this.key(k)}[${i}]`, x, opts));
  }

  matrix(k: string, rows: number, cols: number, opts: { min?: number; max?: number; exclusiveMin?: boolean } = {}): number[][] {
    const v = this.raw(k);
    if (!Array.isArray(v) || v.length !== rows)
      throw new ConfigError(`${this.key(k)}: expected ${rows} rows (one per presynaptic type) of ${cols} numbers, got ${show(v)}`);
    return v.map((row, i) => {
      if (!Array.isArray(row) || row.length !== cols)
        throw new ConfigError(`${this.key(k)}[${i}]: expected ${cols} numbers (one per postsynaptic type), got ${show(row)}`);
      return row.map((x, j) => checkNumber(`${this.key(k)}[${i}][${j}]`, x, opts));
    });
  }

  /** A number for every cell type: either one scalar for all, or a table keyed by cell type name. */
  perType(k: string, names: string[], opts: { def?: number | Record<string, number>; min?: number; max?: number; exclusiveMin?: boolean }): number[] {
    const v = this.raw(k);
    if (v === undefined) {
      if (opts.def === undefined) throw new ConfigError(`${this.key(k)}: missing (a number, or a table with one number per cell type)`);
      const def = opts.def;
      return names.map((n) => (typeof def === "number" ? def : def[n] ?? NaN));
    }
    const range = { min: opts.min, max: opts.max, exclusiveMin: opts.exclusiveMin };
    if (typeof v === "number") return names.map(() => checkNumber(this.key(k), v, range));
    if (isTable(v)) {
      const sub = new Reader(this.key(k), v);
      const out = names.map((n) => sub.number(n, range));
      sub.done(`cell type names are ${names.join(", ")}`);
      return out;
    }
    throw new ConfigError(`${this.key(k)}: expected a number or a table per cell type (${names.join(", ")}), got ${show(v)}`);
  }

  /** A path, relative to the parameters file's directory (`baseDir`), returned absolute. */
  file(k: string, baseDir: string): string | undefined {
    if (!this.has(k)) return undefined;
    const v = this.string(k);
    if (v.trim() === "") throw new ConfigError(`${this.key(k)}: expected a file path, got an empty string`);
    return resolve(baseDir, v);
  }

  table(k: string, optional = false): Reader {
    const v = this.raw(k);
    if (v === undefined && optional) return new Reader(this.key(k), {});
    if (!isTable(v)) throw new ConfigError(`${this.key(k)}: expected a table, got ${show(v)}`);
    return new Reader(this.key(k), v);
  }

  done(hint?: string): void {
    for (const k of Object.keys(this.entries)) {
      if (this.used.has(k)) continue;
      const near = [...this.used].find((u) => this.entries[u] === undefined && similar(u, k));
      throw new ConfigError(`${this.key(k)}: unknown key${near ? `; did you mean ${near}?` : hint ? ` (${hint})` : ""}`);
    }
  }
}

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return `"${v}"`;
  // JSON has no NaN or infinities (it would print null): say what TOML's nan and inf are.
  if (typeof v === "number") return String(v);
  const s = JSON.stringify(v, (_k, x) => (typeof x === "number" && !Number.isFinite(x) ? String(x) : x));
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Edit distance of two short strings (keys), for "did you mean" suggestions. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** Probably a typo of one another: one a prefix of the other, or at most two edits apart (for keys of 4+ letters). */
function similar(a: string, b: string): boolean {
  if (Math.min(a.length, b.length) >= 3 && (a.startsWith(b) || b.startsWith(a))) return true;
  return Math.min(a.length, b.length) >= 4 && editDistance(a, b) <= 2;
}

/** Names (cell types, input types, synapses) become metrics.csv columns, metric labels and figure labels. */
const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

function checkNumber(path: string, v: unknown, opts: { min?: number; max?: number; int?: boolean; exclusiveMin?: boolean }): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ConfigError(`${path}: expected a finite number, got ${show(v)}`);
  if (opts.int && !Number.isInteger(v)) throw new ConfigError(`${path}: expected an integer, got ${v}`);
  if (opts.min !== undefined && (opts.exclusiveMin ? v <= opts.min : v < opts.min))
    throw new ConfigError(`${path}: must be ${opts.exclusiveMin ? ">" : "≥"} ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new ConfigError(`${path}: must be ≤ ${opts.max}, got ${v}`);
  return v;
}

const positive = { min: 0, exclusiveMin: true };
const probability = { min: 0, max: 1 };

function readPhysiology(r: Reader): PhysiologyConfig {
  const p: PhysiologyConfig = {
    tau_mem: r.number("tau_mem", positive),
    theta: r.number("theta"),
    U_reset: r.number("U_reset"),
    E_L: r.number("E_L"),
    g_L: r.number("g_L", positive),
    tau_ref: r.number("tau_ref", { def: 0, min: 0 }),
  };
  r.done();
  if (p.U_reset >= p.theta) throw new ConfigError(`${r.path}.U_reset: must be below theta (${p.theta} mV), got ${p.U_reset}`);
  return p;
}

function readSynapses(r: Reader): SynapseGroupConfig {
  const names = r.strings("names");
  const n = names.length;
  const s: SynapseGroupConfig = {
    names,
    tau_rise: r.numbers("tau_rise", n, positive),
    tau_decay: r.numbers("tau_decay", n, positive),
    E_syn: r.numbers("E_syn", n),
    g_bar: r.numbers("g_bar", n, { min: 0 }),
  };
  r.done();
  s.tau_rise.forEach((tr, i) => {
    if (tr === s.tau_decay[i]) throw new ConfigError(`${r.path}.tau_rise[${i}]: must differ from tau_decay (double-exponential kernel)`);
  });
  return s;
}

function perTypeTables<T>(parent: Reader, key: string, names: string[], read: (r: Reader) => T): T[] {
  const t = parent.table(key);
  const out = names.map((n) => {
    if (!t.has(n)) throw new ConfigError(`${t.path}.${n}: missing (one table per cell type: ${names.join(", ")})`);
    return read(t.table(n));
  });
  t.done(`cell type names are ${names.join(", ")}`);
  return out;
}

function checkProportions(path: string, p: number[]): void {
  const sum = p.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-6) throw new ConfigError(`${path}: proportions must sum to 1, got ${sum}`);
}

/** `baseDir` anchors relative file paths in the parameters (loadConfig passes the parameters file's directory). */
export function parseConfig(text: string, source = "parameters", baseDir = "."): Config {
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (e) {
    const msg = e instanceof TomlError ? `${e.message.split("\n")[0]} (line ${e.line}, column ${e.column})` : String(e);
    throw new ConfigError(`${source}: malformed TOML: ${msg}`);
  }
  const root = new Reader("", doc);

  const simR = root.table("simulation");
  const simulation = {
    seed: simR.number("seed", { def: 42, min: 0, max: 2 ** 32 - 1, int: true }),
    dt: simR.number("dt", { def: 1.0, ...positive }),
    chunk_steps: simR.number("chunk_steps", { def: 50, min: 2, int: true }),
    chunks_per_epoch: simR.number("chunks_per_epoch", { def: 2, min: 1, int: true }),
    batch_size: simR.number("batch_size", { def: 10, min: 1, int: true }),
    epochs: simR.number("epochs", { def: 500, min: 1, int: true }),
    accumulation_interval: simR.number("accumulation_interval", { def: 5, min: 1, int: true }),
    checkpoint_interval: simR.number("checkpoint_interval", { def: 50, min: 1, int: true }),
    burn_in_epochs: simR.number("burn_in_epochs", { def: 0, min: 0, int: true }),
  };
  simR.done();
  if (simulation.epochs % simulation.accumulation_interval !== 0)
    throw new ConfigError(
      `simulation.epochs: must be a multiple of simulation.accumulation_interval (${simulation.accumulation_interval}), got ${simulation.epochs}`,
    );
  if (simulation.checkpoint_interval % simulation.accumulation_interval !== 0)
    throw new ConfigError(
      `simulation.checkpoint_interval: must be a multiple of simulation.accumulation_interval (${simulation.accumulation_interval}), got ${simulation.checkpoint_interval}`,
    );

  const recR = root.table("recurrent");
  const recNames = recR.strings("names");
  const K = recNames.length;
  const recProportion = recR.numbers("proportion", K, probability);
  checkProportions("recurrent.proportion", recProportion);
  const numNeurons = recR.number("num_neurons", { min: 2, max: 200_000, int: true });
  const numAssemblies = recR.number("num_assemblies", { def: 1, min: 1, int: true });
  if (numAssemblies > numNeurons) throw new ConfigError(`recurrent.num_assemblies: must be ≤ recurrent.num_neurons (${numNeurons}), got ${numAssemblies}`);
  if (numNeurons % numAssemblies !== 0)
    throw new ConfigError(
      `recurrent.num_assemblies: recurrent.num_neurons (${numNeurons}) must be divisible by it (the original would silently drop neurons), got ${numAssemblies}`,
    );
  const topR = recR.table("topology");
  const recTopology = {
    conn_within: topR.matrix("conn_within", K, K, probability),
    conn_between: topR.matrix("conn_between", K, K, probability),
  };
  topR.done();
  const wR = recR.table("weights");
  const recWeights = { w_mu: wR.matrix("w_mu", K, K, { min: 0 }), w_sigma: wR.matrix("w_sigma", K, K, { min: 0 }) };
  wR.done();
  const physiology = perTypeTables(recR, "physiology", recNames, readPhysiology);
  const recSynapses = perTypeTables(recR, "synapses", recNames, readSynapses);
  recR.done();

  const ffR = root.table("feedforward");
  const ffNames = ffR.strings("names");
  const KF = ffNames.length;
  const ffProportion = ffR.numbers("proportion", KF, probability);
  checkProportions("feedforward.proportion", ffProportion);
  const ffNum = ffR.number("num_neurons", { min: 1, max: 200_000, int: true });
  const ffRate = ffR.perType("firing_rate", ffNames, { min: 0 });
  const ffTopR = ffR.table("topology");
  const ffTopology = { conn_inputs: ffTopR.matrix("conn_inputs", KF, K, probability) };
  ffTopR.done();
  const ffWR = ffR.table("weights");
  const ffWeights = { w_mu: ffWR.matrix("w_mu", KF, K, { min: 0 }), w_sigma: ffWR.matrix("w_sigma", KF, K, { min: 0 }) };
  ffWR.done();
  const ffSynapses = perTypeTables(ffR, "synapses", ffNames, readSynapses);
  ffR.done();

  const tR = root.table("targets");
  const targets = {
    firing_rates: tR.perType("firing_rates", recNames, { min: 0 }),
    cvs: tR.number("cvs", { def: 1.0, min: 0 }),
    alpha: tR.perType("alpha", recNames, { def: 0, min: 0 }),
    threshold_ratio: tR.perType("threshold_ratio", recNames, { def: 0, min: 0 }),
    file: tR.file("file", baseDir),
  };
  tR.done();

  const hR = root.table("hyperparameters");
  const betas = hR.has("betas") ? hR.numbers("betas", 2, { min: 0, max: 0.999999999 }) : [0.9, 0.999];
  const lwR = hR.table("loss_weight", true);
  const lr_schedule = hR.string("lr_schedule", "constant", ["constant", "cosine", "step"]) as "constant" | "cosine" | "step";
  // A schedule's own keys only with that schedule: a lr_min under a constant schedule would silently do nothing.
  const scheduleKey = (k: string, schedule: string, opts: Parameters<Reader["number"]>[1]) => {
    if (hR.has(k) && lr_schedule !== schedule)
      throw new ConfigError(`hyperparameters.${k}: only used with lr_schedule = "${schedule}" (lr_schedule is "${lr_schedule}")`);
    return hR.number(k, opts);
  };
  const hyperparameters = {
    learning_rate: hR.number("learning_rate", { def: 5e-4, ...positive }),
    surrgrad_scale: hR.number("surrgrad_scale", { def: 100, ...positive }),
    detach_reset: hR.bool("detach_reset", false),
    max_grad_norm: hR.number("max_grad_norm", { def: 1.0, ...positive }),
    parameterisation: hR.string("parameterisation", "linear", ["linear", "log"]) as "linear" | "log",
    lr_schedule,
    warmup_updates: hR.number("warmup_updates", { def: 0, min: 0, int: true }),
    lr_min: scheduleKey("lr_min", "cosine", { def: 0, min: 0 }),
    lr_step_updates: scheduleKey("lr_step_updates", "step", { def: 100, min: 1, int: true }),
    lr_step_factor: scheduleKey("lr_step_factor", "step", { def: 0.5, min: 0, max: 1, exclusiveMin: true }),
    max_skipped_updates: hR.number("max_skipped_updates", { def: 5, min: 1, int: true }),
    patience: hR.number("patience", { def: 0, min: 0, int: true }),
    betas: [betas[0], betas[1]] as [number, number],
    eps: hR.number("eps", { def: 1e-8, ...positive }),
    van_rossum_tau: hR.number("van_rossum_tau", { def: 20.0, ...positive }),
    loss_weight: {
      firing_rate: lwR.number("firing_rate", { def: 1.0, min: 0 }),
      cv: lwR.number("cv", { def: 0.5, min: 0 }),
      silent_penalty: lwR.number("silent_penalty", { def: 1.0, min: 0 }),
      membrane_variance: lwR.number("membrane_variance", { def: 10.0, min: 0 }),
      van_rossum: lwR.number("van_rossum", { def: 0, min: 0 }),
    },
  };
  lwR.done();
  hR.done();
  if (hyperparameters.lr_min > hyperparameters.learning_rate)
    throw new ConfigError(`hyperparameters.lr_min: must be ≤ hyperparameters.learning_rate (${hyperparameters.learning_rate}), got ${hyperparameters.lr_min}`);
  checkTrainingLength(simulation, hyperparameters, simulation.epochs, "simulation.epochs");

  const student = readStudent(root.table("student", true), baseDir);
  if (hyperparameters.loss_weight.van_rossum > 0 && !student.teacher_file)
    throw new ConfigError(
      "hyperparameters.loss_weight.van_rossum: the van Rossum loss compares with a teacher's spike trains; set student.teacher_file to the file `snn-sim --teacher --export-targets` wrote",
    );

  const dR = root.table("distributed", true);
  const distributed = {
    heartbeat_interval: dR.number("heartbeat_interval", { def: 2.0, min: 0.01 }),
    worker_timeout: dR.number("worker_timeout", { def: 60.0, ...positive }),
    no_worker_timeout: dR.number("no_worker_timeout", { def: 300.0, ...positive }),
  };
  dR.done();
  // A timeout shorter than two heartbeats drops healthy workers between two of their heartbeats.
  for (const k of ["worker_timeout", "no_worker_timeout"] as const)
    if (distributed[k] < 2 * distributed.heartbeat_interval)
      throw new ConfigError(`distributed.${k}: must be at least 2 × distributed.heartbeat_interval (${2 * distributed.heartbeat_interval} s), got ${distributed[k]}`);

  const pR = root.table("plotting", true);
  const plotting = {
    enabled: pR.bool("enabled", true),
    interval: pR.number("interval", { def: simulation.accumulation_interval, min: 1, int: true }),
    trial: pR.number("trial", { def: 0, min: 0, max: simulation.batch_size - 1, int: true }),
    raster_neurons: pR.number("raster_neurons", { def: 40, min: 1, max: numNeurons, int: true }),
  };
  pR.done();
  if (plotting.interval % simulation.accumulation_interval !== 0)
    throw new ConfigError(
      `plotting.interval: must be a multiple of simulation.accumulation_interval (${simulation.accumulation_interval}), got ${plotting.interval}`,
    );

  const wbR = root.table("wandb", true);
  const wandb = {
    enabled: wbR.bool("enabled", false),
    project: wbR.string("project", "connectome-snns-fitting-activity"),
    entity: wbR.string("entity", ""),
    mode: wbR.string("mode", "offline", ["online", "offline", "disabled"]) as "online" | "offline" | "disabled",
    name: wbR.string("name", ""),
  };
  wbR.done();
  root.done();

  const config: Config = {
    simulation,
    targets,
    hyperparameters,
    student,
    recurrent: {
      names: recNames,
      proportion: recProportion,
      num_neurons: numNeurons,
      num_assemblies: numAssemblies,
      topology: recTopology,
      weights: recWeights,
      physiology,
      synapses: recSynapses,
    },
    feedforward: {
      names: ffNames,
      proportion: ffProportion,
      num_neurons: ffNum,
      firing_rate: ffRate,
      topology: ffTopology,
      weights: ffWeights,
      synapses: ffSynapses,
    },
    distributed,
    plotting,
    wandb,
  };
  checkStability(config);
  return config;
}

/**
 * Burn-in and warm-up must leave updates to train: checked for the parameters' epochs and again for an --epochs
 * override (`epochsKey` names where the count came from).
 */
export function checkTrainingLength(
  simulation: Pick<Config["simulation"], "accumulation_interval" | "burn_in_epochs">,
  h: Pick<Config["hyperparameters"], "warmup_updates">,
  epochs: number,
  epochsKey: string,
): void {
  const A = simulation.accumulation_interval;
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
 * The membrane drive is integrated by forward Euler, so a step must not move v further than its distance to the
 * synaptic reversal potentials: dt·G/C_m < 1. G is estimated as the conductance if every presynaptic neuron of
 * every type fired at once at its mean weight (the continuous-time kernel peak), a pessimistic bound.
 */
export function checkStability(c: Config): void {
  const { dt } = c.simulation;
  const K = c.recurrent.names.length;
  const counts = typeCounts(c.recurrent.num_neurons, c.recurrent.proportion);
  const ffCounts = typeCounts(c.feedforward.num_neurons, c.feedforward.proportion);
  const A = c.recurrent.num_assemblies;
  const peak = (g: SynapseGroupConfig) =>
    g.g_bar.reduce((acc, gb, l) => {
      const tr = g.tau_rise[l];
      const td = g.tau_decay[l];
      return acc + gb * Math.pow(tr / td, (2 * tr) / (td - tr)) * (1 - tr / td);
    }, 0);
  for (let post = 0; post < K; post++) {
    let G = 0;
    for (let pre = 0; pre < K; pre++) {
      const inDeg =
        (counts[pre] / A) * c.recurrent.topology.conn_within[pre][post] + (counts[pre] * (A - 1)) / A * c.recurrent.topology.conn_between[pre][post];
      G += inDeg * c.recurrent.weights.w_mu[pre][post] * peak(c.recurrent.synapses[pre]);
    }
    for (let pre = 0; pre < c.feedforward.names.length; pre++) {
      const inDeg = ffCounts[pre] * c.feedforward.topology.conn_inputs[pre][post];
      G += inDeg * c.feedforward.weights.w_mu[pre][post] * peak(c.feedforward.synapses[pre]);
    }
    const ph = c.recurrent.physiology[post];
    const C = ph.tau_mem * ph.g_L;
    const ratio = (dt * G) / C;
    if (ratio >= 1)
      throw new ConfigError(
        `simulation.dt: ${dt} ms is too large for the explicit Euler membrane step of ${c.recurrent.names[post]} cells: ` +
          `dt·G_syn/C_m = ${ratio.toFixed(2)} ≥ 1 (G_syn ≈ ${G.toFixed(1)} nS with all inputs coincident, C_m = ${C.toFixed(1)} pF); ` +
          `use dt < ${(C / G).toFixed(3)} ms`,
      );
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

function readStudent(r: Reader, baseDir: string): StudentConfig {
  const init = r.string("init", "generated", ["generated", "teacher"]) as StudentConfig["init"];
  const teacher_file = r.file("teacher_file", baseDir);
  const perturbation = r.string("perturbation", "none", ["none", "lognormal"]) as StudentConfig["perturbation"];
  if (perturbation === "lognormal" && !r.has("perturbation_sigma"))
    throw new ConfigError(`${r.path}.perturbation_sigma: missing (perturbation = "lognormal" needs the σ of its log-space noise)`);
  if (perturbation === "none" && r.has("perturbation_sigma"))
    throw new ConfigError(`${r.path}.perturbation_sigma: only used with perturbation = "lognormal" (perturbation is "none")`);
  const student: StudentConfig = {
    init,
    teacher_file,
    perturbation,
    perturbation_sigma: r.number("perturbation_sigma", { def: 0, min: 0, max: 5 }),
    scale: r.number("scale", { def: 1.0, ...positive }),
  };
  r.done();
  if (init === "teacher" && !teacher_file)
    throw new ConfigError(`${r.path}.init: "teacher" takes the weights of student.teacher_file, which is not set`);
  return student;
}
