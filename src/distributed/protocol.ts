/**
 * The one schema module for coordinator ↔ worker messages (DESIGN.md, "Messages"). Messages are msgpack maps;
 * typed arrays travel as raw little-endian bytes (msgpack bin) and are rebuilt here with the dtype the schema
 * names, so nothing depends on msgpack extensions. Every message carries the protocol version; `decodeMessage`
 * validates every field and throws ProtocolError with a clear reason, never a crash deeper in.
 */
import { Packr } from "msgpackr";
import { EdgeList } from "../model/connectome.js";
import { LossTerms, LOSS_TERM_NAMES } from "../model/losses.js";
import { ModelConstants } from "../model/constants.js";
import { NetworkSpec } from "../model/network.js";
import { EpochResult, StreamState, TrialActivity } from "../engine/engine.js";

/** 2: per-neuron CV targets, van Rossum loss and teacher weights in the network, the van_rossum loss term. */
export const PROTOCOL_VERSION = 3;
/** Larger frames are refused by the socket itself (ZeroMQ maxMessageSize). */
export const MAX_MESSAGE_BYTES = 1 << 30;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

export type HelloMessage = {
  type: "hello";
  workerId: string;
  hostname: string;
  pid: number;
  engine: string;
  threads: number;
  /** Network the worker already holds, if any (it reconnected). */
  networkHash: string | null;
};
export type NetworkMessage = { type: "network"; spec: NetworkSpec };
export type AssignMessage = {
  type: "assign";
  runId: string;
  update: number;
  epoch: number;
  stream: number;
  weightsVersion: number;
  /** Present when the worker does not hold this version yet. */
  weights: { rec: Float32Array; ff: Float32Array } | null;
  initialState: StreamState | null;
  /** false for burn-in epochs: forward only, and the result's gradients are empty. */
  computeGradient: boolean;
  recordActivity: boolean;
};
/** An EpochResult on the wire (gradients empty rather than null in burn-in), with who computed it for which run. */
export type ResultMessage = Omit<EpochResult, "recGrad" | "ffGrad"> & {
  type: "result";
  runId: string;
  weightsVersion: number;
  recGrad: Float32Array;
  ffGrad: Float32Array;
  computeSeconds: number;
};
export type HeartbeatMessage = { type: "heartbeat" };
export type ShutdownMessage = { type: "shutdown"; reason: string };
export type RejectMessage = { type: "reject"; reason: string };
/** To a peer the coordinator does not know (it restarted, or dropped the worker after a timeout): announce yourself again. */
export type RejoinMessage = { type: "rejoin" };
export type FailureMessage = { type: "failure"; epoch: number; message: string };

export type Message =
  | HelloMessage
  | NetworkMessage
  | AssignMessage
  | ResultMessage
  | HeartbeatMessage
  | ShutdownMessage
  | RejectMessage
  | RejoinMessage
  | FailureMessage;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

type Obj = Record<string, unknown>;
type TypedArrayCtor = Float32Array | Float64Array | Int32Array | Uint8Array;
const CTORS = { f32: Float32Array, f64: Float64Array, i32: Int32Array, u8: Uint8Array } as const;
type DType = keyof typeof CTORS;

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Replaces typed arrays by their raw bytes, recursively; the decoder knows each field's dtype. */
function toWire(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return bytesOf(v);
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) out[k] = toWire(x);
    return out;
  }
  return v;
}

export function encodeMessage(m: Message): Buffer {
  return packr.pack({ protocol: PROTOCOL_VERSION, ...(toWire(m) as Obj) });
}

/** Identifiers a peer sends (worker id, host name, run id, engine, hash, reasons): at most this many characters. */
const MAX_PEER_STRING = 128;
/** A failure or shutdown message may say more (an error message), within bounds. */
const MAX_PEER_MESSAGE = 4096;

/** Field readers: each names the path of what is wrong. */
class Fields {
  constructor(
    private readonly o: Obj,
    private readonly path: string,
  ) {}

  private get(k: string): unknown {
    return this.o[k];
  }

  has(k: string): boolean {
    return this.o[k] !== undefined && this.o[k] !== null;
  }

  private fail(k: string, what: string): never {
    throw new ProtocolError(`${this.path}.${k}: ${what}`);
  }

  num(k: string, opts: { int?: boolean; min?: number; finite?: boolean } = {}): number {
    const v = this.get(k);
    if (typeof v !== "number" || Number.isNaN(v)) this.fail(k, `expected a number, got ${typeof v}`);
    if (opts.finite !== false && !Number.isFinite(v)) this.fail(k, "expected a finite number");
    if (opts.int && !Number.isInteger(v)) this.fail(k, "expected an integer");
    if (opts.min !== undefined && v < opts.min) this.fail(k, `must be ≥ ${opts.min}`);
    return v;
  }

  /** A loss or statistic: NaN and ±Infinity are legitimate values there. */
  real(k: string): number {
    const v = this.get(k);
    if (typeof v !== "number") this.fail(k, `expected a number, got ${typeof v}`);
    return v;
  }

  /** A string from a peer, at most `maxLength` characters (peers' strings are logged: they must stay small). */
  str(k: string, maxLength = MAX_PEER_STRING): string {
    const v = this.get(k);
    if (typeof v !== "string") this.fail(k, `expected a string, got ${typeof v}`);
    if (v.length > maxLength) this.fail(k, `longer than ${maxLength} characters (${v.length})`);
    return v;
  }

  bool(k: string): boolean {
    const v = this.get(k);
    if (typeof v !== "boolean") this.fail(k, `expected a boolean, got ${typeof v}`);
    return v;
  }

  strings(k: string): string[] {
    const v = this.get(k);
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) this.fail(k, "expected an array of strings");
    return v as string[];
  }

  array<T extends TypedArrayCtor>(k: string, dtype: DType, length?: number): T {
    const v = this.get(k);
    if (!(v instanceof Uint8Array)) this.fail(k, `expected ${dtype} bytes, got ${v === null ? "null" : typeof v}`);
    const Ctor = CTORS[dtype];
    if (v.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) this.fail(k, `byte length ${v.byteLength} is not a multiple of ${Ctor.BYTES_PER_ELEMENT}`);
    const n = v.byteLength / Ctor.BYTES_PER_ELEMENT;
    if (length !== undefined && n !== length) this.fail(k, `expected ${length} elements, got ${n}`);
    // Copy into a fresh, aligned buffer: the bytes may sit at any offset inside the received frame.
    const out = new Ctor(n);
    bytesOf(out).set(v);
    return out as T;
  }

  obj(k: string): Fields {
    const v = this.get(k);
    if (!v || typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array) this.fail(k, "expected a map");
    return new Fields(v as Obj, `${this.path}.${k}`);
  }

  nullable<T>(k: string, read: (f: Fields) => T): T | null {
    return this.get(k) === null || this.get(k) === undefined ? null : read(this.obj(k));
  }

  list<T>(k: string, read: (f: Fields, i: number) => T): T[] {
    const v = this.get(k);
    if (!Array.isArray(v)) this.fail(k, "expected an array");
    return v.map((x, i) => {
      if (!x || typeof x !== "object") throw new ProtocolError(`${this.path}.${k}[${i}]: expected a map`);
      return read(new Fields(x as Obj, `${this.path}.${k}[${i}]`), i);
    });
  }
}

function readState(f: Fields): StreamState {
  return { v: f.array("v", "f32"), g: f.array("g", "f32") };
}

function readEdges(f: Fields): EdgeList {
  const numPre = f.num("numPre", { int: true, min: 0 });
  const numPost = f.num("numPost", { int: true, min: 0 });
  const pre = f.array<Int32Array>("pre", "i32");
  const post = f.array<Int32Array>("post", "i32", pre.length);
  const rowPtr = f.array<Int32Array>("rowPtr", "i32", numPre + 1);
  if (rowPtr[0] !== 0 || rowPtr[numPre] !== pre.length) throw new ProtocolError("edge list: row pointers do not match the edge count");
  for (let i = 0; i < numPre; i++) {
    if (rowPtr[i + 1] < rowPtr[i]) throw new ProtocolError(`edge list: row pointers decrease at row ${i}`);
    for (let e = rowPtr[i]; e < rowPtr[i + 1]; e++) {
      if (pre[e] !== i || post[e] < 0 || post[e] >= numPost) throw new ProtocolError(`edge list: edge ${e} out of range or not in its row`);
    }
  }
  return { numPre, numPost, pre, post, rowPtr };
}

function readConstants(f: Fields): ModelConstants {
  const N = f.num("numNeurons", { int: true, min: 1 });
  const M = f.num("numInputs", { int: true, min: 1 });
  const S = f.num("numSlots", { int: true, min: 1 });
  const G = f.num("numSources", { int: true, min: 1 });
  const perNeuron = (k: string) => f.array<Float32Array>(k, "f32", N);
  const perSlot = (k: string) => f.array<Float32Array>(k, "f32", S);
  const c: ModelConstants = {
    numNeurons: N,
    numInputs: M,
    numSlots: S,
    numSources: G,
    numRecTypes: f.num("numRecTypes", { int: true, min: 1 }),
    dt: f.num("dt", { min: 0 }),
    surrgradScale: f.num("surrgradScale", { min: 0 }),
    detachReset: f.bool("detachReset"),
    theta: perNeuron("theta"),
    uReset: perNeuron("uReset"),
    eL: perNeuron("eL"),
    cM: perNeuron("cM"),
    beta: perNeuron("beta"),
    dtOverC: perNeuron("dtOverC"),
    alphaRise: perSlot("alphaRise"),
    alphaDecay: perSlot("alphaDecay"),
    gScale: perSlot("gScale"),
    eSyn: perSlot("eSyn"),
    slotSource: f.array<Int32Array>("slotSource", "i32", S),
    sourceSlotStart: f.array<Int32Array>("sourceSlotStart", "i32", G),
    sourceSlotCount: f.array<Int32Array>("sourceSlotCount", "i32", G),
    cellType: f.array<Int32Array>("cellType", "i32", N),
    inputSource: f.array<Int32Array>("inputSource", "i32", M),
    slotNames: f.strings("slotNames"),
    sourceNames: f.strings("sourceNames"),
  };
  const bad = (a: Int32Array, hi: number) => a.some((x) => x < 0 || x >= hi);
  if (bad(c.slotSource, G) || bad(c.cellType, c.numRecTypes) || bad(c.inputSource, G)) throw new ProtocolError("network.constants: population index out of range");
  if (c.sourceSlotStart.some((start, g) => start < 0 || start + c.sourceSlotCount[g] > S) || c.slotNames.length !== S)
    throw new ProtocolError("network.constants: synapse slot ranges do not match the slot count");
  return c;
}

function readSpec(f: Fields): NetworkSpec {
  const constants = readConstants(f.obj("constants"));
  const N = constants.numNeurons;
  const t = f.obj("targets");
  const w = f.obj("lossWeights");
  const rec = readEdges(f.obj("rec"));
  const ff = readEdges(f.obj("ff"));
  // Optional fields stay absent rather than undefined, so that the decoded spec hashes as the sent one.
  const teacher =
    f.has("teacherRecWeight") || f.has("teacherFfWeight")
      ? { teacherRecWeight: f.array<Float32Array>("teacherRecWeight", "f32", rec.pre.length), teacherFfWeight: f.array<Float32Array>("teacherFfWeight", "f32", ff.pre.length) }
      : {};
  const spec: NetworkSpec = {
    hash: f.str("hash"),
    seed: f.num("seed", { int: true, min: 0 }),
    batchSize: f.num("batchSize", { int: true, min: 1 }),
    chunkSteps: f.num("chunkSteps", { int: true, min: 1 }),
    chunksPerEpoch: f.num("chunksPerEpoch", { int: true, min: 1 }),
    constants,
    rec,
    ff,
    inputProbability: f.array("inputProbability", "f64", constants.numInputs),
    targets: {
      rate: t.array("rate", "f64", N),
      alpha: t.array("alpha", "f64", N),
      ratio: t.array("ratio", "f64", N),
      theta: t.array("theta", "f64", N),
      cv: t.array("cv", "f64", N),
    },
    lossWeights: {
      firing_rate: w.num("firing_rate"),
      cv: w.num("cv"),
      silent_penalty: w.num("silent_penalty"),
      membrane_variance: w.num("membrane_variance"),
      van_rossum: w.num("van_rossum"),
    },
    vanRossumTau: f.num("vanRossumTau", { min: 0 }),
    ...teacher,
    cellTypeNames: f.strings("cellTypeNames"),
    plotTrial: f.num("plotTrial", { int: true, min: 0 }),
  };
  if (spec.rec.numPre !== N || spec.rec.numPost !== N || spec.ff.numPre !== constants.numInputs || spec.ff.numPost !== N)
    throw new ProtocolError("network: edge list sizes do not match the neuron counts");
  return spec;
}

function readActivity(f: Fields): TrialActivity {
  return {
    epoch: f.num("epoch", { int: true, min: 0 }),
    steps: f.num("steps", { int: true, min: 1 }),
    dt: f.num("dt"),
    spikePtr: f.array("spikePtr", "i32"),
    spikeSteps: f.array("spikeSteps", "i32"),
    inputSpikePtr: f.array("inputSpikePtr", "i32"),
    inputSpikeSteps: f.array("inputSpikeSteps", "i32"),
    sampleNeuron: f.num("sampleNeuron", { int: true, min: 0 }),
    sampleVoltage: f.array("sampleVoltage", "f32"),
    sampleConductance: f.array("sampleConductance", "f32"),
    sampleCurrent: f.array("sampleCurrent", "f32"),
    traceNeurons: f.array("traceNeurons", "i32"),
    traceVoltages: f.array("traceVoltages", "f32"),
  };
}

function readLosses(f: Fields): LossTerms {
  const out = {} as LossTerms;
  for (const k of LOSS_TERM_NAMES) out[k] = f.real(k);
  return out;
}

/** Decodes and validates one frame; the result is safe to use. */
export function decodeMessage(frame: Buffer | Uint8Array): Message {
  let raw: unknown;
  try {
    raw = packr.unpack(frame);
  } catch (e) {
    throw new ProtocolError(`undecodable message (${frame.byteLength} bytes): not msgpack (${(e as Error).message.split("\n")[0]})`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw) || raw instanceof Uint8Array) throw new ProtocolError("message is not a msgpack map");
  const f = new Fields(raw as Obj, "message");
  const protocol = (raw as Obj).protocol;
  if (protocol !== PROTOCOL_VERSION)
    throw new ProtocolError(`protocol version mismatch: peer speaks ${JSON.stringify(protocol ?? null)}, this build speaks ${PROTOCOL_VERSION} (update snn-train on both sides)`);
  const type = f.str("type");
  switch (type) {
    case "hello":
      return {
        type,
        workerId: f.str("workerId"),
        hostname: f.str("hostname"),
        pid: f.num("pid", { int: true, min: 0 }),
        engine: f.str("engine"),
        threads: f.num("threads", { int: true, min: 1 }),
        networkHash: (raw as Obj).networkHash === null ? null : f.str("networkHash"),
      };
    case "network":
      return { type, spec: readSpec(f.obj("spec")) };
    case "assign":
      return {
        type,
        runId: f.str("runId", MAX_PEER_MESSAGE),
        update: f.num("update", { int: true, min: 0 }),
        epoch: f.num("epoch", { int: true, min: 0 }),
        stream: f.num("stream", { int: true, min: 0 }),
        weightsVersion: f.num("weightsVersion", { int: true, min: 0 }),
        weights: f.nullable("weights", (w) => ({ rec: w.array<Float32Array>("rec", "f32"), ff: w.array<Float32Array>("ff", "f32") })),
        initialState: f.nullable("initialState", readState),
        computeGradient: f.bool("computeGradient"),
        recordActivity: f.bool("recordActivity"),
      };
    case "result":
      return {
        type,
        runId: f.str("runId", MAX_PEER_MESSAGE),
        epoch: f.num("epoch", { int: true, min: 0 }),
        weightsVersion: f.num("weightsVersion", { int: true, min: 0 }),
        losses: readLosses(f.obj("losses")),
        stats: f.list("stats", (s) => ({
          cellType: s.str("cellType"),
          rateMean: s.real("rateMean"),
          rateStd: s.real("rateStd"),
          cvMean: s.real("cvMean"),
          cvStd: s.real("cvStd"),
          activeFraction: s.real("activeFraction"),
          ratioMean: s.real("ratioMean"),
        })),
        rates: f.array("rates", "f32"),
        cvs: f.array("cvs", "f32"),
        ratios: f.array("ratios", "f32"),
        recGrad: f.array("recGrad", "f32"),
        ffGrad: f.array("ffGrad", "f32"),
        finalState: readState(f.obj("finalState")),
        activity: f.nullable("activity", readActivity),
        computeSeconds: f.num("computeSeconds", { min: 0 }),
      };
    case "heartbeat":
    case "rejoin":
      return { type };
    case "shutdown":
    case "reject":
      return { type, reason: f.str("reason", MAX_PEER_MESSAGE) };
    case "failure":
      return { type, epoch: f.num("epoch", { int: true, min: 0 }), message: f.str("message", MAX_PEER_MESSAGE) };
    default:
      throw new ProtocolError(`unknown message type "${type}"`);
  }
}
