/**
 * The one schema module for coordinator ↔ worker messages (DESIGN.md, "Messages"). A message is one ZeroMQ multipart
 * message: a msgpack map, then one frame per large typed array. Typed arrays travel as raw little-endian bytes and
 * are rebuilt here with the dtype the schema names: a small one inline (msgpack bin), a large one (gradients, stream
 * states, weights, the connectome) as its own frame, which the map names by a frame reference (msgpack extension
 * FRAME_REF_TYPE). ZeroMQ sends and receives such frames without copying them (the coordinator's socket thread copies
 * each received frame once, into a buffer of its own for the main thread: coordinator-socket.ts), and a frame's bytes
 * are aligned, so the decoded arrays are views of the received frames: megabytes of results per update are neither
 * copied into an encoding buffer nor out of one. Every message carries the protocol version; `decodeMessage`
 * validates every field and throws ProtocolError with a clear reason, never a crash deeper in. Each record's decoder
 * is a schema that the compiler checks against the record's declaration (platform/validate.ts), so a field added to
 * NetworkSpec, EpochResult or a message and not to its schema does not compile.
 */
import { addExtension, Packr } from "msgpackr";
import { EdgeList } from "../model/connectome.js";
import { LossTerms, LossWeights, NeuronTargets } from "../model/losses.js";
import { ModelConstants } from "../model/constants.js";
import { NetworkSpec } from "../model/network.js";
import { OdourProcess } from "../model/odours.js";
import { packedWidth, TeacherRecording } from "../model/teacher-replay.js";
import { CellTypeStats } from "../model/statistics.js";
import { EpochResult, StreamState, TrialActivity } from "../engine/engine.js";
import { At, bool, bytesOf, checkLength, Decoder, f32, f64, i32, isMap, list, nullable, number, optional, real, record, string, u8 } from "../platform/validate.js";

/**
 * 2: per-neuron CV targets, van Rossum loss and teacher weights in the network, the van_rossum loss term.
 * 3: forward-only (burn-in) assignments. 4: `ready`: a worker gets epochs only once it has built the network.
 * 5: the double-exponential van Rossum kernel in the network; scaling-factor training (results reduced per type pair);
 *    a teacher's recorded spike trains (`[targets] teacher_spikes`, bit-packed) travel in the network.
 * 6: the conductance clamp (`[simulation] conductance_clamp`) in the network's constants: a worker of version 5 would
 *    drop the key and simulate without it.
 * 7: odour inputs: the stream state's mixture state, the network's odour patterns.
 * 8: multipart messages: large typed arrays as frames of their own, named by frame references; `leaving`.
 * 9: reduce groups: a worker given an interval's first epochs at once sums their gradients itself (`reduced-results`).
 */
export const PROTOCOL_VERSION = 9;
/** Larger frames are refused by the socket itself (ZeroMQ maxMessageSize). */
export const MAX_MESSAGE_BYTES = 1 << 30;
/** A message has at most this many frames (a result has about ten arrays, a reduce group's results a few per epoch; the network about forty). */
const MAX_MESSAGE_FRAMES = 256;
/** Typed arrays of at least this many bytes travel as frames of their own; smaller ones inline. */
const OWN_FRAME_BYTES = 4096;
/** The msgpack extension type of a frame reference: the index of the frame after the map that holds the bytes. */
export const FRAME_REF_TYPE = 0x46;

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
  /** Its Prometheus /metrics port on `hostname` (0 = none). */
  metricsPort: number;
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
  /** Set when this epoch belongs to a reduce group: its results come back together, in a ReducedResultsMessage. */
  reduceGroup: ReduceGroup | null;
};
/**
 * The first epochs of an interval (often all of them: a GPU worker takes a whole interval at once), given to one
 * worker at once with gradients to compute. The worker sums their gradients in epoch order in float64 itself
 * (GradientReducer.prefixSums: the same additions in the same order as the coordinator's), so that one float64 sum
 * travels and is checked instead of a float32 gradient per epoch: 2.5 times fewer bytes at 5 epochs, 5 times at 10.
 */
export interface ReduceGroup {
  /** The group's epochs, in epoch order: the interval's first ones. */
  epochs: number[];
  /** How many epochs the interval has: where the group is all of them, its sum is divided by it (the mean). */
  intervalEpochs: number;
}
/** The most epochs in one reduce group: its message has a few frames per epoch (MAX_MESSAGE_FRAMES). */
export const MAX_GROUP_EPOCHS = 32;
/** An EpochResult on the wire (gradients empty rather than null in burn-in), with who computed it for which run. */
export type ResultMessage = Omit<EpochResult, "recGrad" | "ffGrad"> & {
  type: "result";
  runId: string;
  weightsVersion: number;
  recGrad: Float32Array;
  ffGrad: Float32Array;
  computeSeconds: number;
};
/**
 * A reduce group's results (ReduceGroup), in its epoch order, their gradients empty; instead, their gradients summed in
 * epoch order in float64 (the interval's mean where the group is the whole interval).
 */
export type ReducedResultsMessage = { type: "reduced-results"; results: Omit<ResultMessage, "type">[]; recSum: Float64Array; ffSum: Float64Array };
/** What a worker process uses, sent with its heartbeats: the coordinator's system metrics (W&B) show each worker's. */
export interface WorkerResources {
  rssBytes: number;
  /** User + system CPU time since the process started, s. */
  cpuSeconds: number;
}
export type HeartbeatMessage = { type: "heartbeat"; resources?: WorkerResources };
/** From a worker that holds the network `networkHash` and its engine: it can take epochs now. */
export type ReadyMessage = { type: "ready"; networkHash: string };
export type ShutdownMessage = { type: "shutdown"; reason: string };
export type RejectMessage = { type: "reject"; reason: string };
/** To a peer the coordinator does not know (it restarted, or dropped the worker after a timeout): announce yourself again. */
export type RejoinMessage = { type: "rejoin" };
export type FailureMessage = { type: "failure"; epoch: number; message: string };
/**
 * From a worker that stops (its GPU is lost, or it was told to stop): the coordinator takes back its epochs at once,
 * instead of after worker_timeout, and answers with a shutdown, which tells the worker that this message arrived.
 */
export type LeavingMessage = { type: "leaving"; reason: string };

export type Message =
  | HelloMessage
  | NetworkMessage
  | AssignMessage
  | ResultMessage
  | ReducedResultsMessage
  | HeartbeatMessage
  | ReadyMessage
  | ShutdownMessage
  | RejectMessage
  | RejoinMessage
  | FailureMessage
  | LeavingMessage;

/** In a message's map: "these bytes are frame `index` after the map". */
export class FrameRef {
  constructor(readonly index: number) {}
}

addExtension({
  Class: FrameRef,
  type: FRAME_REF_TYPE,
  pack: (r: FrameRef) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(r.index);
    return b;
  },
  unpack: (b: Uint8Array) => {
    if (b.byteLength !== 4) throw new ProtocolError(`frame reference of ${b.byteLength} bytes (expected 4)`);
    return new FrameRef(Buffer.from(b.buffer, b.byteOffset, 4).readUInt32LE(0));
  },
});

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

type Obj = Record<string, unknown>;

/** Replaces typed arrays by their raw bytes, recursively: large ones by a reference to a frame pushed on `frames`. */
function toWire(v: unknown, frames: Buffer[]): unknown {
  if (ArrayBuffer.isView(v)) {
    if (v.byteLength < OWN_FRAME_BYTES) return bytesOf(v);
    // A view of the array's own memory: ZeroMQ sends it without a copy and holds it until it is sent, so an array
    // that is sent is never written again (every engine result, weight vector and stream state is a fresh array).
    frames.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    return new FrameRef(frames.length);
  }
  if (Array.isArray(v)) return v.map((x) => toWire(x, frames));
  if (v && typeof v === "object") {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) out[k] = toWire(x, frames);
    return out;
  }
  return v;
}

/** A message's frames: the msgpack map, then the frames it references. */
export function encodeMessage(m: Message): Buffer[] {
  const frames: Buffer[] = [];
  const map = toWire(m, frames) as Obj;
  return [packr.pack({ protocol: PROTOCOL_VERSION, ...map }), ...frames];
}

/** Bytes of a message on the wire. */
export function messageBytes(frames: readonly Uint8Array[]): number {
  return frames.reduce((n, f) => n + f.byteLength, 0);
}

/** Puts each referenced frame where its reference is; every frame after the map must be referenced exactly once. */
function resolveFrames(v: unknown, frames: readonly Uint8Array[], used: boolean[]): unknown {
  if (v instanceof FrameRef) {
    if (v.index < 1 || v.index >= frames.length) throw new ProtocolError(`frame reference ${v.index} out of range (the message has ${frames.length - 1} frames after its map)`);
    if (used[v.index]) throw new ProtocolError(`frame ${v.index} is referenced twice`);
    used[v.index] = true;
    return frames[v.index];
  }
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => resolveFrames(x, frames, used));
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) out[k] = resolveFrames(x, frames, used);
  return out;
}

/** Identifiers a peer sends (worker id, host name, engine, hash, names): at most this many characters. */
const MAX_PEER_STRING = 128;
/** A failure or shutdown message may say more (an error message), within bounds; so may a run id. */
const MAX_PEER_MESSAGE = 4096;

// Peers' strings are logged: they must stay small. Names come from the parameters, which do not bound them.
const id = string(MAX_PEER_STRING);
const text = string(MAX_PEER_MESSAGE);
const names = list(string(), { of: "strings" });
const count = number({ int: true, min: 0 });
const positiveCount = number({ int: true, min: 1 });
const nonNegative = number({ min: 0 });
const positiveNumber = number({ min: 0, exclusiveMin: true });

const state = record<StreamState>({ v: f32(), g: f32(), ou: optional(f64()) });

const edges = record<EdgeList>(
  {
    numPre: count,
    numPost: count,
    pre: i32(),
    post: i32((e) => e.pre.length),
    rowPtr: i32((e) => e.numPre + 1),
  },
  ({ numPre, numPost, pre, post, rowPtr }, at) => {
    if (rowPtr[0] !== 0 || rowPtr[numPre] !== pre.length) at.fail("row pointers do not match the edge count");
    for (let i = 0; i < numPre; i++) {
      if (rowPtr[i + 1] < rowPtr[i]) at.fail(`row pointers decrease at row ${i}`);
      for (let e = rowPtr[i]; e < rowPtr[i + 1]; e++) {
        if (pre[e] !== i || post[e] < 0 || post[e] >= numPost) at.fail(`edge ${e} out of range or not in its row`);
      }
    }
  },
);

const perNeuron = (c: ModelConstants) => c.numNeurons;
const perSlot = (c: ModelConstants) => c.numSlots;
const perSource = (c: ModelConstants) => c.numSources;

const constants = record<ModelConstants>(
  {
    numNeurons: positiveCount,
    numInputs: positiveCount,
    numSlots: positiveCount,
    numSources: positiveCount,
    numRecTypes: positiveCount,
    dt: nonNegative,
    surrgradScale: nonNegative,
    detachReset: bool,
    conductanceClamp: optional((v, at) => (v === true ? true : at.fail(`expected true or absent, got ${String(v)}`))),
    theta: f32(perNeuron),
    uReset: f32(perNeuron),
    eL: f32(perNeuron),
    cM: f32(perNeuron),
    beta: f32(perNeuron),
    dtOverC: f32(perNeuron),
    alphaRise: f32(perSlot),
    alphaDecay: f32(perSlot),
    gScale: f32(perSlot),
    eSyn: f32(perSlot),
    slotSource: i32(perSlot),
    sourceSlotStart: i32(perSource),
    sourceSlotCount: i32(perSource),
    cellType: i32(perNeuron),
    inputSource: i32((c) => c.numInputs),
    slotNames: list(string(), { of: "strings", length: perSlot }),
    sourceNames: names,
  },
  (c, at) => {
    const bad = (a: Int32Array, hi: number) => a.some((x) => x < 0 || x >= hi);
    if (bad(c.slotSource, c.numSources) || bad(c.cellType, c.numRecTypes) || bad(c.inputSource, c.numSources)) at.fail("population index out of range");
    if (c.sourceSlotStart.some((start, g) => start < 0 || start + c.sourceSlotCount[g] > c.numSlots))
      at.fail("synapse slot ranges do not match the slot count");
  },
);

const recording = record<TeacherRecording>({
  trials: positiveCount,
  steps: positiveCount,
  numInputs: positiveCount,
  numNeurons: positiveCount,
  inputs: u8((r) => r.trials * r.steps * packedWidth(r.numInputs)),
  outputs: u8((r) => r.trials * r.steps * packedWidth(r.numNeurons)),
});

const spec = record<NetworkSpec>(
  {
    hash: id,
    seed: count,
    batchSize: positiveCount,
    chunkSteps: positiveCount,
    chunksPerEpoch: positiveCount,
    constants,
    rec: edges,
    ff: edges,
    inputProbability: f64((s) => s.constants.numInputs),
    // Per neuron: their length is checked with the neuron count below.
    targets: record<NeuronTargets>({ rate: f64(), alpha: f64(), ratio: f64(), theta: f64(), cv: f64() }),
    lossWeights: record<LossWeights>({
      firing_rate: number(),
      cv: number(),
      silent_penalty: number(),
      membrane_variance: number(),
      van_rossum: number(),
    }),
    vanRossum: record<NetworkSpec["vanRossum"]>({ tauRise: nonNegative, tauDecay: nonNegative }),
    teacherRecWeight: optional(f32((s) => s.rec.pre.length)),
    teacherFfWeight: optional(f32((s) => s.ff.pre.length)),
    teacherRecording: optional(recording),
    reduceToScalingFactors: optional((v, at) => (v === true ? true : at.fail(`expected true or absent, got ${String(v)}`))),
    teacherForcing: optional(record<{ inputTypes: number }>({ inputTypes: count })),
    odours: optional(
      record<OdourProcess>({
        numPatterns: positiveCount,
        // Their length (numPatterns × inputs) is checked with the input count below.
        patterns: f64(),
        tau: positiveNumber,
        sigma: positiveNumber,
        temperature: positiveNumber,
      }),
    ),
    cellTypeNames: names,
    plotTrial: count,
  },
  (s, at) => {
    const N = s.constants.numNeurons;
    for (const [k, a] of Object.entries(s.targets)) checkLength(at.key("targets").key(k), a.length, N);
    if (s.rec.numPre !== N || s.rec.numPost !== N || s.ff.numPre !== s.constants.numInputs || s.ff.numPost !== N)
      at.fail("edge list sizes do not match the neuron counts");
    if ((s.teacherRecWeight === undefined) !== (s.teacherFfWeight === undefined)) at.fail("teacherRecWeight and teacherFfWeight travel together");
    if (s.odours) checkLength(at.key("odours").key("patterns"), s.odours.patterns.length, s.odours.numPatterns * s.constants.numInputs);
    const r = s.teacherRecording;
    const epochSteps = s.chunkSteps * s.chunksPerEpoch;
    // A teacher-forced network's inputs are the recording's inputs followed by its N recorded neurons.
    const recordedInputs = s.teacherForcing ? s.constants.numInputs - N : s.constants.numInputs;
    if (r && (r.numNeurons !== N || r.numInputs !== recordedInputs || r.trials % s.batchSize !== 0 || r.steps % epochSteps !== 0))
      at.key("teacherRecording").fail(`${r.trials} trials × ${r.steps} steps of ${r.numInputs} inputs and ${r.numNeurons} neurons do not fit the network (whole streams of ${s.batchSize} trials, whole epochs of ${epochSteps} steps)`);
  },
);

const activity = record<TrialActivity>({
  epoch: count,
  steps: positiveCount,
  dt: number(),
  spikePtr: i32(),
  spikeSteps: i32(),
  inputSpikePtr: i32(),
  inputSpikeSteps: i32(),
  sampleNeuron: count,
  sampleVoltage: f32(),
  sampleConductance: f32(),
  sampleCurrent: f32(),
  traceNeurons: i32(),
  traceVoltages: f32(),
  trialSpikeCounts: i32(),
  populationSpikes: i32(),
  isiSteps: i32(),
  odourMixture: optional(f32()),
});

const stats = record<CellTypeStats>({
  cellType: id,
  rateMean: real,
  rateStd: real,
  cvMean: real,
  cvStd: real,
  activeFraction: real,
  ratioMean: real,
});

const losses = record<LossTerms>({
  firing_rate: real,
  cv: real,
  silent_penalty: real,
  membrane_variance: real,
  van_rossum: real,
  total: real,
});

type Body<T extends Message["type"]> = Omit<Extract<Message, { type: T }>, "type">;

const epochResult = record<Body<"result">>({
  runId: text,
  epoch: count,
  weightsVersion: count,
  losses,
  stats: list(stats),
  rates: f32(),
  cvs: f32(),
  ratios: f32(),
  recGrad: f32(),
  ffGrad: f32(),
  finalState: state,
  activity: nullable(activity),
  computeSeconds: nonNegative,
});

/** Every message type's fields, checked by the compiler against the message types above. */
const BODIES: { [T in Message["type"]]: Decoder<Body<T>> } = {
  hello: record<Body<"hello">>({
    workerId: id,
    hostname: id,
    pid: count,
    engine: id,
    threads: positiveCount,
    metricsPort: count,
    networkHash: nullable(id),
  }),
  network: record<Body<"network">>({ spec }),
  assign: record<Body<"assign">>({
    runId: text,
    update: count,
    epoch: count,
    stream: count,
    weightsVersion: count,
    weights: nullable(record({ rec: f32(), ff: f32() })),
    initialState: nullable(state),
    computeGradient: bool,
    recordActivity: bool,
    reduceGroup: nullable(
      record<ReduceGroup>({ epochs: list(count, { of: "epoch numbers" }), intervalEpochs: positiveCount }, (g, at) => {
        if (g.epochs.length === 0 || g.epochs.length > Math.min(g.intervalEpochs, MAX_GROUP_EPOCHS))
          at.fail(`${g.epochs.length} epochs in a reduce group of an interval of ${g.intervalEpochs} (1 to ${MAX_GROUP_EPOCHS}, and no more than the interval)`);
        if (g.epochs.some((e, k) => k > 0 && e !== g.epochs[k - 1] + 1)) at.fail("a reduce group's epochs are not consecutive");
      }),
    ),
  }),
  result: epochResult,
  "reduced-results": record<Body<"reduced-results">>({
    results: (v, at) => {
      const results = list(epochResult)(v, at);
      if (results.length === 0 || results.length > MAX_GROUP_EPOCHS) at.fail(`${results.length} results (a reduce group has 1 to ${MAX_GROUP_EPOCHS})`);
      return results;
    },
    recSum: f64(),
    ffSum: f64(),
  }),
  heartbeat: record<Body<"heartbeat">>({ resources: optional(record<WorkerResources>({ rssBytes: nonNegative, cpuSeconds: nonNegative })) }),
  ready: record<Body<"ready">>({ networkHash: id }),
  rejoin: record<Body<"rejoin">>({}),
  shutdown: record<Body<"shutdown">>({ reason: text }),
  reject: record<Body<"reject">>({ reason: text }),
  failure: record<Body<"failure">>({ epoch: count, message: text }),
  leaving: record<Body<"leaving">>({ reason: text }),
};

/** Decodes and validates one message (its frames, or the map alone); the result is safe to use. */
export function decodeMessage(message: Uint8Array | readonly Uint8Array[]): Message {
  const frames = message instanceof Uint8Array ? [message] : message;
  if (frames.length === 0) throw new ProtocolError("empty message");
  if (frames.length > MAX_MESSAGE_FRAMES) throw new ProtocolError(`${frames.length} frames (at most ${MAX_MESSAGE_FRAMES})`);
  let raw: unknown;
  try {
    raw = packr.unpack(frames[0]);
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`undecodable message (${frames[0].byteLength} bytes): not msgpack (${(e as Error).message.split("\n")[0]})`);
  }
  if (!isMap(raw)) throw new ProtocolError("message is not a msgpack map");
  const protocol = raw.protocol;
  if (protocol !== PROTOCOL_VERSION)
    throw new ProtocolError(`protocol version mismatch: peer speaks ${JSON.stringify(protocol ?? null)}, this build speaks ${PROTOCOL_VERSION} (update snn-train on both sides)`);
  const used = frames.map(() => false);
  const map = resolveFrames(raw, frames, used) as Obj;
  const unused = used.findIndex((u, k) => k > 0 && !u);
  if (unused > 0) throw new ProtocolError(`frame ${unused} of ${frames.length - 1} after the map is not referenced`);
  const at = new At("message", ProtocolError);
  const type = id(map.type, at.key("type"));
  if (!Object.hasOwn(BODIES, type)) throw new ProtocolError(`unknown message type "${type}"`);
  return { type, ...BODIES[type as Message["type"]](map, at) } as Message;
}
