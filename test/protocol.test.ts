/**
 * Coordinator ↔ worker message schema (src/distributed/protocol.ts): every message type survives encode → decode with
 * typed arrays of the right class and value, and malformed frames are rejected with a ProtocolError that says why.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Packr } from "msgpackr";
import { beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/model/config.js";
import { Connectome, generateConnectome } from "../src/model/connectome.js";
import { hashValue, NetworkSpec } from "../src/model/network.js";
import { loadNetworkSpec } from "../src/io/network-files.js";
import {
  AssignMessage,
  decodeMessage,
  encodeMessage,
  FRAME_REF_TYPE,
  FrameRef,
  Message,
  messageBytes,
  PROTOCOL_VERSION,
  ProtocolError,
  ReducedResultsMessage,
  ResultMessage,
} from "../src/distributed/protocol.js";
import { Rng } from "../src/model/rng.js";
import { TrialActivity } from "../src/engine/engine.js";

const ROOT = join(import.meta.dirname, "..");
const QUICK_TEXT = readFileSync(join(ROOT, "parameters/quickstart.toml"), "utf8");
/** The same msgpack settings as the protocol module, to craft frames by hand. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`test setup: "${from}" must occur exactly once`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

let connectome: Connectome;
let spec: NetworkSpec;

beforeAll(() => {
  let t = replaceOnce(QUICK_TEXT, "num_neurons = 500", "num_neurons = 40");
  t = replaceOnce(t, "num_assemblies = 5", "num_assemblies = 2");
  t = replaceOnce(t, "num_neurons = 150", "num_neurons = 10");
  const config = parseConfig(t, "small");
  connectome = generateConnectome(config);
  spec = loadNetworkSpec(config, connectome);
});

function roundTrip<M extends Message>(m: M): M {
  const frames = encodeMessage(m);
  for (const f of frames) expect(f).toBeInstanceOf(Uint8Array);
  return decodeMessage(frames) as M;
}

/** A message's map with each frame reference replaced by the frame's bytes: one frame that decodes to the same message. */
function rawOf(frames: Uint8Array[]): Record<string, any> {
  const resolve = (v: unknown): unknown => {
    if (v instanceof FrameRef) return frames[v.index];
    if (v instanceof Uint8Array || v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map(resolve);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]));
  };
  return resolve(packr.unpack(frames[0])) as Record<string, any>;
}

/** Rejection with a ProtocolError whose message matches `reason`. */
function expectRejected(message: Uint8Array | Uint8Array[], reason: RegExp | string): void {
  let error: unknown;
  try {
    decodeMessage(message);
  } catch (e) {
    error = e;
  }
  expect(error, "decodeMessage accepted the frame").toBeInstanceOf(ProtocolError);
  expect((error as Error).message).toMatch(reason);
}

function activity(): TrialActivity {
  return {
    epoch: 7,
    steps: 4,
    dt: 1,
    spikePtr: Int32Array.from([0, 1, 1, 3]),
    spikeSteps: Int32Array.from([2, 0, 3]),
    inputSpikePtr: Int32Array.from([0, 2]),
    inputSpikeSteps: Int32Array.from([1, 2]),
    sampleNeuron: 2,
    sampleVoltage: Float32Array.from([-60, -59.5, -58.25, -60]),
    sampleConductance: Float32Array.from([0, 0.5, 0.25, 0.125, 1, 2, 3, 4]),
    sampleCurrent: Float32Array.from([-1.5, 2.5, 0, 3, -4, 5, 6, 7]),
    traceNeurons: Int32Array.from([0, 2]),
    traceVoltages: Float32Array.from([-60, -59, -58, -57, -50, -49, -48, -47]),
    trialSpikeCounts: Int32Array.from([1, 0, 2, 0, 1, 3]),
    populationSpikes: Int32Array.from([0, 1, 2, 0, 1, 1, 0, 2, 0, 0, 1, 1]),
    isiSteps: Int32Array.from([0, 0, 1, 0, 0, 0, 0, 0]),
  };
}

function result(withActivity: boolean): ResultMessage {
  return {
    type: "result",
    runId: "run-1",
    epoch: 12,
    weightsVersion: 3,
    losses: { firing_rate: 1.25, cv: NaN, silent_penalty: 0.5, membrane_variance: Infinity, van_rossum: 0, total: 1.75 },
    stats: [
      { cellType: "excitatory", rateMean: 0.5, rateStd: 0.25, cvMean: NaN, cvStd: NaN, activeFraction: 0.125, ratioMean: 0.2 },
      { cellType: "inhibitory", rateMean: 2, rateStd: 1, cvMean: 0.9, cvStd: 0.1, activeFraction: 1, ratioMean: NaN },
    ],
    rates: Float32Array.from([0, 1.5, NaN]),
    cvs: Float32Array.from([NaN, 0.75, 1.25]),
    ratios: Float32Array.from([0.25, NaN, 0.5]),
    recGrad: Float32Array.from([1e-30, -2.5, 3.25e10, -0]),
    ffGrad: Float32Array.from([0.125]),
    finalState: { v: Float32Array.from([-60, -50.5]), g: Float32Array.from([0, 0.1, 0.2, 0.3]) },
    activity: withActivity ? activity() : null,
    computeSeconds: 0.42,
  };
}

describe("round trip", () => {
  it("hello (with and without a network hash)", () => {
    const m: Message = { type: "hello", workerId: "w-1", hostname: "node7", pid: 1234, engine: "sparse-cpu", threads: 4, metricsPort: 9465, networkHash: null };
    expect(roundTrip(m)).toEqual(m);
    const m2: Message = { ...m, networkHash: "ab".repeat(32) };
    expect(roundTrip(m2)).toEqual(m2);
  });

  it("network: the full spec comes back equal, typed arrays with the right class, hash still valid", () => {
    const m: Message = { type: "network", spec };
    const back = roundTrip(m);
    expect(back).toStrictEqual(m);
    const s = back.spec;
    expect(s.rec.pre).toBeInstanceOf(Int32Array);
    expect(s.rec.post).toBeInstanceOf(Int32Array);
    expect(s.rec.rowPtr).toBeInstanceOf(Int32Array);
    expect(s.ff.pre).toBeInstanceOf(Int32Array);
    expect(s.inputProbability).toBeInstanceOf(Float64Array);
    expect(s.targets.rate).toBeInstanceOf(Float64Array);
    expect(s.constants.theta).toBeInstanceOf(Float32Array);
    expect(s.constants.alphaRise).toBeInstanceOf(Float32Array);
    expect(s.constants.slotSource).toBeInstanceOf(Int32Array);
    expect(s.constants.cellType).toBeInstanceOf(Int32Array);
    expect(s.rec.pre.length).toBe(connectome.rec.pre.length);
    expect(s.rec.pre.length).toBeGreaterThan(100);
    expect(Array.from(s.constants.theta)).toEqual(Array.from(spec.constants.theta));
    // The content hash covers class names and bytes: recomputing it on the decoded spec gives the same value.
    const { hash, ...rest } = s;
    expect(hashValue(rest)).toBe(hash);
    expect(hash).toBe(spec.hash);
  });

  it("network with a teacher: its weights come back as Float32Array and the hash still holds", () => {
    const teacher = { ...spec, teacherRecWeight: connectome.recWeight.map((w) => 2 * w), teacherFfWeight: connectome.ffWeight.slice() };
    const { hash: _h, ...content } = teacher;
    const m: Message = { type: "network", spec: { ...teacher, hash: hashValue(content) } };
    const back = roundTrip(m);
    expect(back).toStrictEqual(m);
    expect(back.spec.teacherRecWeight).toBeInstanceOf(Float32Array);
    const { hash, ...rest } = back.spec;
    expect(hashValue(rest)).toBe(hash);
    expect(hash).not.toBe(spec.hash);
    const short = { ...m, spec: { ...m.spec, teacherFfWeight: connectome.ffWeight.subarray(1) } };
    expect(() => decodeMessage(encodeMessage(short))).toThrow(new RegExp(`teacherFfWeight: expected ${connectome.ffWeight.length} elements`));
  });

  it("assign with weights and initial state, and without", () => {
    const full: AssignMessage = {
      type: "assign",
      runId: "run-1",
      update: 2,
      epoch: 11,
      stream: 1,
      weightsVersion: 3,
      weights: { rec: Float32Array.from(connectome.recWeight), ff: Float32Array.from(connectome.ffWeight) },
      initialState: { v: Float32Array.from([-60, -55]), g: Float32Array.from([0.5, 0.25, 0, 1]) },
      computeGradient: true,
      recordActivity: true,
      reduceGroup: { epochs: [10, 11, 12], intervalEpochs: 5 },
    };
    const back = roundTrip(full);
    expect(back).toStrictEqual(full);
    expect(back.weights!.rec).toBeInstanceOf(Float32Array);
    expect(back.initialState!.g).toBeInstanceOf(Float32Array);
    const bare: AssignMessage = { ...full, weights: null, initialState: null, computeGradient: false, recordActivity: false, reduceGroup: null };
    expect(roundTrip(bare)).toStrictEqual(bare);
  });

  it("assign carrying typed-array views at an offset into a larger buffer", () => {
    const backing = Float32Array.from([9, 9, 1.5, 2.5, 3.5, 9]);
    const m: AssignMessage = {
      type: "assign",
      runId: "r",
      update: 0,
      epoch: 0,
      stream: 0,
      weightsVersion: 0,
      weights: { rec: backing.subarray(2, 5), ff: backing.subarray(1, 2) },
      initialState: null,
      computeGradient: true,
      recordActivity: false,
      reduceGroup: null,
    };
    const back = roundTrip(m);
    expect(Array.from(back.weights!.rec)).toEqual([1.5, 2.5, 3.5]);
    expect(Array.from(back.weights!.ff)).toEqual([9]);
  });

  it("result with typed arrays, NaN/Infinity losses and statistics, no activity", () => {
    const m = result(false);
    const back = roundTrip(m);
    expect(back).toStrictEqual(m);
    expect(back.losses.cv).toBeNaN();
    expect(back.losses.membrane_variance).toBe(Infinity);
    expect(back.stats[0].cvMean).toBeNaN();
    for (const a of [back.rates, back.cvs, back.recGrad, back.ffGrad, back.finalState.v, back.finalState.g]) expect(a).toBeInstanceOf(Float32Array);
    expect(Number.isNaN(back.rates[2])).toBe(true);
    expect(Object.is(back.recGrad[3], -0)).toBe(true);
    expect(back.recGrad[0]).toBe(Math.fround(1e-30));
    expect(back.activity).toBeNull();
  });

  it("result with trial activity", () => {
    const m = result(true);
    const back = roundTrip(m);
    expect(back).toStrictEqual(m);
    expect(back.activity!.spikePtr).toBeInstanceOf(Int32Array);
    expect(back.activity!.sampleConductance).toBeInstanceOf(Float32Array);
    expect(Array.from(back.activity!.sampleVoltage)).toEqual([-60, -59.5, -58.25, -60]);
  });

  it("a reduce group's results: per-epoch results without gradients, the float64 sums as frames of their own", () => {
    const results = [12, 13, 14].map((epoch, k) => {
      const { type: _, ...r } = result(k === 2);
      return { ...r, epoch, recGrad: new Float32Array(0), ffGrad: new Float32Array(0) };
    });
    const m: ReducedResultsMessage = { type: "reduced-results", results, recSum: Float64Array.from({ length: 1000 }, (_, i) => i / 7), ffSum: Float64Array.of(0.1, -1e-300) };
    const frames = encodeMessage(m);
    const back = decodeMessage(frames) as ReducedResultsMessage;
    expect(back).toStrictEqual(m);
    expect(back.recSum).toBeInstanceOf(Float64Array);
    expect(frames.some((f) => f.buffer === m.recSum.buffer), "the sums are sent from their own memory").toBe(true);
  });

  it("a reduce group in an assignment must be 1 to 32 consecutive epochs, no more than the interval has", () => {
    const assign = (reduceGroup: unknown) => packr.pack({ protocol: PROTOCOL_VERSION, type: "assign", runId: "r", update: 0, epoch: 0, stream: 0, weightsVersion: 0, weights: null, initialState: null, computeGradient: true, recordActivity: false, reduceGroup });
    expect((decodeMessage(assign({ epochs: [5, 6], intervalEpochs: 5 })) as AssignMessage).reduceGroup).toEqual({ epochs: [5, 6], intervalEpochs: 5 });
    expectRejected(assign({ epochs: [], intervalEpochs: 5 }), /message\.reduceGroup: 0 epochs in a reduce group of an interval of 5/);
    expectRejected(assign({ epochs: [0, 1, 2], intervalEpochs: 2 }), /message\.reduceGroup: 3 epochs in a reduce group of an interval of 2/);
    expectRejected(assign({ epochs: Array.from({ length: 33 }, (_, i) => i), intervalEpochs: 40 }), /33 epochs .* \(1 to 32/);
    expectRejected(assign({ epochs: [0, 2], intervalEpochs: 5 }), /message\.reduceGroup: a reduce group's epochs are not consecutive/);
    expectRejected(assign({ epochs: [0, -1], intervalEpochs: 5 }), /message\.reduceGroup\.epochs\[1\]: must be ≥ 0/);
    expectRejected(assign({ epochs: [0, 1] }), /message\.reduceGroup\.intervalEpochs/);
  });

  it("a reduce group's results: none, too many, or a malformed one named", () => {
    const { type: _, ...r } = result(false);
    const reduced = (results: unknown[], recSum: unknown = new Float64Array(2)) => encodeMessage({ type: "reduced-results", results, recSum, ffSum: new Float64Array(1) } as ReducedResultsMessage);
    expectRejected(reduced([]), /message\.results: 0 results \(a reduce group has 1 to 32\)/);
    expectRejected(reduced(Array.from({ length: 33 }, () => r)), /message\.results: 33 results/);
    expectRejected(reduced([r, { ...r, epoch: -2 }]), /message\.results\[1\]\.epoch: must be ≥ 0/);
    expectRejected(reduced([r], new Float32Array(3)), /message\.recSum/);
  });

  it("heartbeat, shutdown, reject, failure, leaving", () => {
    const ms: Message[] = [
      { type: "heartbeat" },
      { type: "heartbeat", resources: { rssBytes: 123456789, cpuSeconds: 12.5 } },
      { type: "shutdown", reason: "training completed" },
      { type: "reject", reason: "protocol version mismatch" },
      { type: "failure", epoch: 5, message: "out of memory" },
      { type: "leaving", reason: "GPU device lost" },
    ];
    for (const m of ms) expect(roundTrip(m)).toStrictEqual(m);
  });

  it("a frame stays valid after later messages are encoded (frames are sent asynchronously)", () => {
    const frames = Array.from({ length: 300 }, (_, i) => encodeMessage({ type: "failure", epoch: i, message: "x".repeat(i % 40) }));
    frames.forEach((f, i) => expect(decodeMessage(f)).toEqual({ type: "failure", epoch: i, message: "x".repeat(i % 40) }));
  });

  it("every frame carries the protocol version", () => {
    const raw = packr.unpack(encodeMessage({ type: "heartbeat" })[0]) as Record<string, unknown>;
    expect(raw.protocol).toBe(PROTOCOL_VERSION);
    expect(raw.type).toBe("heartbeat");
  });

  it("typed arrays travel as raw bytes: small ones inline (msgpack bin), large ones as frames of their own", () => {
    const m = result(false);
    m.recGrad = new Float32Array(10_000).fill(0.1);
    m.ffGrad = new Float32Array(10).fill(0.2);
    const frames = encodeMessage(m);
    // 40,000 bytes of payload plus a little framing; a number list would need 5 bytes per float32.
    expect(messageBytes(frames)).toBeLessThan(41_000);
    const raw = packr.unpack(frames[0]) as Record<string, unknown>;
    expect(raw.ffGrad).toBeInstanceOf(Uint8Array);
    expect(raw.recGrad).toBeInstanceOf(FrameRef);
    // The frame is a view of the array itself (ZeroMQ sends it without a copy) ...
    const frame = frames[(raw.recGrad as FrameRef).index];
    expect(frame.buffer).toBe(m.recGrad.buffer);
    expect(frame.byteLength).toBe(40_000);
    // ... and the decoded array a view of the received frame.
    const back = decodeMessage(frames) as ResultMessage;
    expect(back.recGrad.buffer).toBe(frame.buffer);
    expect(back.recGrad).toEqual(m.recGrad);
    expect(back.ffGrad).toEqual(m.ffGrad);
  });

  it("a message of one frame with every array inline decodes to the same message", () => {
    const m = { ...result(true), recGrad: Float32Array.from({ length: 5000 }, (_, i) => i / 7), ffGrad: new Float32Array(2000).fill(-1) };
    expect(encodeMessage(m)).toHaveLength(3);
    expect(decodeMessage(packr.pack(rawOf(encodeMessage(m))))).toStrictEqual(m);
  });
});

describe("rejection of malformed frames", () => {
  const validResult = () => rawOf(encodeMessage(result(false)));
  const validNetwork = () => rawOf(encodeMessage({ type: "network", spec }));

  it("garbage bytes: a reserved msgpack byte, truncated data", () => {
    expectRejected(Uint8Array.from([0xc1, 0x00, 0x17]), /not msgpack|not a msgpack map/);
    expectRejected(encodeMessage({ type: "heartbeat" })[0].subarray(0, 5), /msgpack/);
    expectRejected([], /empty message/);
    expectRejected(new Uint8Array(0), /msgpack/);
  });

  it("frame references: out of range, used twice, a frame no reference names, too many frames", () => {
    const m = { ...result(false), recGrad: new Float32Array(2000), ffGrad: new Float32Array(3000) };
    const [map, a, b] = encodeMessage(m);
    expectRejected([map, a], /frame reference 2 out of range \(the message has 1 frames after its map\)/);
    expectRejected([map, a, b, b], /frame 3 of 3 after the map is not referenced/);
    const raw = packr.unpack(map) as Record<string, unknown>;
    expectRejected([packr.pack({ ...raw, ffGrad: raw.recGrad }), a, b], /frame 1 is referenced twice/);
    expectRejected([packr.pack({ ...raw, recGrad: new FrameRef(0) }), a, b], /frame reference 0 out of range/);
    // A reference where a number belongs is a field of the wrong type, named.
    expectRejected([packr.pack({ ...raw, epoch: raw.recGrad, recGrad: new Uint8Array(8000) }), a, b], /message\.epoch/);
    expectRejected(Array.from({ length: 300 }, () => map), /300 frames \(at most 256\)/);
    // A malformed reference (not 4 bytes) is refused while decoding the map.
    const bad = Buffer.from(map);
    const at = bad.indexOf(Buffer.from([0xd6, FRAME_REF_TYPE]));
    expect(at).toBeGreaterThan(0);
    bad[at] = 0xd5; // fixext 2 instead of fixext 4
    expect(() => decodeMessage([bad, a, b])).toThrow(ProtocolError);
  });

  it("random bytes never escape as anything but a ProtocolError", () => {
    const rng = Rng.keyed(2024, 11);
    for (let k = 0; k < 200; k++) {
      const n = 1 + rng.below(64);
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = rng.below(256);
      expect(() => decodeMessage(bytes)).toThrow(ProtocolError);
    }
  });

  it("a msgpack string, number or array is not a message", () => {
    expectRejected(packr.pack("hello"), /not a msgpack map/);
    expectRejected(packr.pack(42), /not a msgpack map/);
    expectRejected(packr.pack([1, 2, 3]), /not a msgpack map/);
  });

  it("a map without a type", () => {
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, workerId: "w" }), /message\.type/);
  });

  it("wrong or missing protocol version", () => {
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION + 1, type: "heartbeat" }), /protocol version mismatch/);
    expectRejected(packr.pack({ protocol: 0, type: "heartbeat" }), /protocol version mismatch/);
    expectRejected(packr.pack({ type: "heartbeat" }), /protocol version mismatch/);
    expectRejected(packr.pack({ protocol: "1", type: "heartbeat" }), /protocol version mismatch/);
  });

  it("unknown message type", () => {
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, type: "gradient" }), /unknown message type "gradient"/);
  });

  it("a float32 field whose byte length is not a multiple of 4 names the field", () => {
    const raw = validResult();
    raw.recGrad = new Uint8Array(5);
    expectRejected(packr.pack(raw), /message\.recGrad: .*5/);
  });

  it("a typed array field sent as a list of numbers names the field", () => {
    const raw = validResult();
    raw.ffGrad = [0.5, 0.25];
    expectRejected(packr.pack(raw), /message\.ffGrad/);
  });

  it("a per-neuron constant of the wrong length names the field", () => {
    const raw = validNetwork();
    raw.spec.constants.theta = new Uint8Array(4 * 39); // 39 float32 for 40 neurons
    expectRejected(packr.pack(raw), /theta.*expected 40 elements, got 39/);
  });

  it("an edge list with an out-of-range postsynaptic index", () => {
    const raw = validNetwork();
    const post = new Int32Array(new Uint8Array(raw.spec.rec.post).buffer);
    post[3] = 40; // numPost is 40
    raw.spec.rec.post = new Uint8Array(post.buffer);
    expectRejected(packr.pack(raw), /message\.spec\.rec: edge 3 out of range/);
  });

  it("an edge list with a negative presynaptic index", () => {
    const raw = validNetwork();
    const pre = new Int32Array(new Uint8Array(raw.spec.ff.pre).buffer);
    pre[0] = -1;
    raw.spec.ff.pre = new Uint8Array(pre.buffer);
    expectRejected(packr.pack(raw), /message\.spec\.ff: edge 0 out of range/);
  });

  it("an edge list whose row pointers do not match the edge count", () => {
    const raw = validNetwork();
    const rowPtr = new Int32Array(new Uint8Array(raw.spec.rec.rowPtr).buffer);
    rowPtr[rowPtr.length - 1] -= 1;
    raw.spec.rec.rowPtr = new Uint8Array(rowPtr.buffer);
    expectRejected(packr.pack(raw), /row pointers/);
  });

  it("a missing field is named as missing", () => {
    const raw = validResult();
    delete raw.finalState;
    expectRejected(packr.pack(raw), /^message\.finalState: missing \(expected a map\)$/);
  });

  it("a per-neuron target of the wrong length names the field", () => {
    const raw = validNetwork();
    raw.spec.targets.cv = new Uint8Array(8 * 39); // 39 float64 for 40 neurons
    expectRejected(packr.pack(raw), /^message\.spec\.targets\.cv: expected 40 elements, got 39$/);
  });

  it("a teacher's weights travel together", () => {
    const raw = validNetwork();
    raw.spec.teacherRecWeight = new Uint8Array(4 * connectome.rec.pre.length);
    expectRejected(packr.pack(raw), /^message\.spec: teacherRecWeight and teacherFfWeight travel together$/);
  });

  it("a huge value of the wrong kind is shown in a few characters (peers' values are logged)", () => {
    const raw = validResult();
    raw.stats = "x".repeat(1_000_000);
    raw.rates = Array.from({ length: 100_000 }, () => [1, 2, 3]);
    expectRejected(packr.pack(raw), /^message\.stats: expected an array, got "x{50,60}\.\.\.$/);
    delete raw.stats;
    expectRejected(packr.pack({ ...raw, stats: [] }), /^message\.rates: expected f32 bytes, got \[\[1,2,3\],\[1,2,3\].{0,50}\.\.\.$/);
  });

  it("wrong scalar types name the field", () => {
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, type: "hello", workerId: "w".repeat(129), hostname: "h", pid: 1, engine: "sparse-cpu", threads: 1, metricsPort: 0, networkHash: null }), /message\.workerId: longer than 128 characters \(129\)/);
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, type: "failure", epoch: 1, message: "x".repeat(5000) }), /message\.message: longer than 4096 characters/);
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, type: "failure", epoch: "5", message: "x" }), /message\.epoch: expected a finite number, got "5"/);
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, type: "failure", epoch: 1.5, message: "x" }), /message\.epoch: expected an integer/);
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, type: "failure", epoch: -1, message: "x" }), /message\.epoch: must be ≥ 0/);
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, type: "heartbeat", resources: { rssBytes: -1, cpuSeconds: 0 } }), /message\.resources\.rssBytes: must be ≥ 0/);
    expectRejected(packr.pack({ protocol: PROTOCOL_VERSION, type: "heartbeat", resources: { rssBytes: 1 } }), /message\.resources\.cpuSeconds/);
    const raw = validResult();
    (raw.losses as Record<string, unknown>).total = "1";
    expectRejected(packr.pack(raw), /message\.losses\.total/);
  });
});
