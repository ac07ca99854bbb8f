/**
 * tfjs engine: the same epoch as sparse-cpu (MODEL.md 2.4, 3, 4) with dense masked weight tensors and autodiff, so
 * that it is an independent gradient oracle for the hand-written adjoint, and the GPU path with tfjs-node-gpu.
 *
 * Every presynaptic population k (recurrent cell types, then input types) has a dense [n_k, N] weight matrix scattered
 * from the edge list, zero off the graph; its spikes s_k drive all its slots with s_k @ W_k. The surrogate spike is a
 * tf.customGrad (exact 0/1 forward, 1/(λ|x|+1)² backward), the loss is the epoch loss of losses.ts rebuilt from tensor
 * ops, and the weight gradient is read off the dense gradients at the edges. With a teacher, its spike trains of the
 * epoch (same input, same initial state, no gradient) enter the van Rossum term as constants; a recorded teacher
 * (spec.teacherRecording) gives the epoch's inputs and those constant trains from the recording instead
 * (model/teacher-replay.ts). Loss values, statistics
 * and figure data come from epoch-summary.ts on the recorded activity, exactly as for sparse-cpu, so both engines
 * report alike.
 *
 * Internally neurons are ordered by cell type, so that s_k is a slice of s: a gather's gradient is a segment sum,
 * which dominated the cpu backend's backward pass. State, activity and weights are permuted on the host.
 */
import * as tf from "@tensorflow/tfjs";
import { InputSpikes } from "../../model/inputs.js";
import { epochInputs, hasSpikeTrainTeacher, NetworkSpec } from "../../model/network.js";
import { placeOf, recordedOutputs } from "../../model/teacher-replay.js";
import { vanRossumFilterMatrix, vanRossumScale } from "../../model/van-rossum.js";
import { Engine, EngineKind, EpochResult, EpochTask, epochSteps, restState, StreamState } from "../engine.js";
import { ActivityLayout, epochResult, extractTrialActivity, summarizeEpoch, trialSummaries } from "../epoch-summary.js";

/**
 * Backends that run on a GPU. "tensorflow" is the backend tfjs-node-gpu registers (its CPU twin tfjs-node is not a
 * dependency of this project, so here the name always means the GPU build).
 */
const GPU_BACKENDS = new Set(["tensorflow", "webgl", "webgpu"]);

/**
 * Floor under the membrane variance before its square root: where V is constant over the epoch the std is 0 and
 * d√var is infinite, while the reference (losses.ts) gives such neurons zero gradient. The floor keeps the derivative
 * finite and a step(var) factor zeroes it, as the reference does.
 */
const VARIANCE_FLOOR = 1e-30;

export interface TfjsEngineOptions {
  /** tfjs backend name: "cpu" (default) or a GPU backend ("tensorflow" once tfjs-node-gpu is loaded). */
  backend?: string;
  /**
   * Cut gradients at chunk boundaries (truncated BPTT, the model's training rule; default). false back-propagates
   * through the whole epoch, which only tests and analyses want: it shows what the truncation removes.
   */
  truncateBptt?: boolean;
  /**
   * Differentiate with respect to θ = ln w instead of w (parameterisation = "log"), by autodiff through w = e^θ: the
   * oracle for the coordinator's chain rule ∂L/∂θ = w·∂L/∂w. Workers always return ∂L/∂w.
   */
  logSpaceGradient?: boolean;
}

/**
 * A presynaptic population and the edges it sends, in the coordinates of its dense weight matrix. Only populations
 * with members are kept: an empty one injects nothing.
 */
interface Population {
  /** Its index among the model's sources (recurrent types, then input types), which owns its synapse slots. */
  source: number;
  input: boolean;
  /** Its neurons (or inputs), increasing: row r of W_k belongs to members[r]. */
  members: Int32Array;
  /** Recurrent: internal position of members[0]; the population occupies positions start .. start + size. */
  start: number;
  size: number;
  /** Ids of its edges in the recurrent (or feedforward) edge list, and their (row, internal post) places in W_k. */
  edgeIds: Int32Array;
  positions: Int32Array;
  /** Inputs only: [T·B, n_k] spikes of the epoch, rows in (step, trial) order. */
  inputBuffer: Float32Array | null;
}

/** Per-backend constant tensors (per-neuron ones in internal order), created on the first epoch. */
interface Constants {
  theta: tf.Tensor1D;
  eL: tf.Tensor1D;
  beta: tf.Tensor1D;
  dtOverC: tf.Tensor1D;
  uReset: tf.Tensor1D;
  /** [2S, S]: sums the rise and decay components of each slot, g @ slotSum = G. */
  slotSum: tf.Tensor2D;
  ones: tf.Tensor2D;
  /** [S, 1] columns: G @ ones = ΣG, G @ eSyn = Σ G_l E_l. */
  eSyn: tf.Tensor2D;
  /** [2, S]: decay factors of the rise and decay components. */
  alpha: tf.Tensor2D;
  /**
   * [P, 2S]: z @ injectionScale is the injection into every component of every slot: −gScale_l into the rise and
   * +gScale_l into the decay component of the slots l that population k drives, 0 elsewhere.
   */
  injectionScale: tf.Tensor2D;
  /**
   * [2, S] bounds of the conductance clamp (simulation.conductance_clamp), null without it: rise [−gScale_l, 0],
   * decay [0, gScale_l].
   */
  clampLower: tf.Tensor2D | null;
  clampUpper: tf.Tensor2D | null;
  edgeIds: tf.Tensor1D[];
  positions: tf.Tensor2D[];
  targetRate: tf.Tensor1D;
  targetAlpha: tf.Tensor1D;
  targetRatio: tf.Tensor1D;
  targetTheta: tf.Tensor1D;
  /** [T, T] van Rossum filter over steps (y = K·s; the double exponential's K = K_a·K_b), when the network has a teacher. */
  vanRossumFilter: tf.Tensor2D | null;
}

/** What one simulated epoch leaves for the loss and the host: [T, B, N] spikes and V, final state, conductances. */
interface Recorded extends tf.TensorContainerObject {
  spikes: tf.Tensor3D;
  volts: tf.Tensor3D;
  v: tf.Tensor2D;
  g: tf.Tensor4D;
  /** [T, B, N, S] pre-step conductances G_t, only when the epoch's activity is recorded. */
  conductances: tf.Tensor4D | undefined;
}

/** An epoch's results read back to the host, in canonical neuron order. */
interface DeviceResult {
  spikes: Float32Array;
  volts: Float32Array;
  conductances: Float32Array | null;
  /** The teacher's [T, B, N] spikes, when the network has one. */
  teacherSpikes: Float32Array | Uint8Array | null;
  finalState: StreamState;
  recGrad: Float32Array | null;
  ffGrad: Float32Array | null;
}

function recordedTensors(r: Recorded): tf.Tensor[] {
  return r.conductances ? [r.spikes, r.volts, r.v, r.g, r.conductances] : [r.spikes, r.volts, r.v, r.g];
}

/** tf.customGrad for a one-input op (its typings only offer the variadic form). */
function unaryCustomGrad(
  f: (x: tf.Tensor, save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor },
): (x: tf.Tensor) => tf.Tensor {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => f(args[0] as tf.Tensor, args[1] as tf.GradSaveFunc));
  return (x) => op(x);
}

/** Identity whose gradient is zero: tfjs has no stop_gradient of its own. */
const stopGradient = unaryCustomGrad((x) => ({ value: x.clone(), gradFunc: (dy) => tf.zerosLike(dy) }));

/**
 * Moves blocks of `block` values between neuron orders: out[(r·N + to(p))·block + i] = src[(r·N + from(p))·block + i]
 * for every row r (trial, or step and trial) and position p.
 */
function permuteNeurons(src: ArrayLike<number>, N: number, block: number, order: Int32Array, toCanonical: boolean): Float32Array {
  const out = new Float32Array(src.length);
  const rows = src.length / (N * block);
  for (let r = 0; r < rows; r++) {
    for (let p = 0; p < N; p++) {
      const internal = (r * N + p) * block;
      const canonical = (r * N + order[p]) * block;
      const [from, to] = toCanonical ? [internal, canonical] : [canonical, internal];
      for (let i = 0; i < block; i++) out[to + i] = src[from + i];
    }
  }
  return out;
}

export class TfjsEngine implements Engine {
  readonly kind: EngineKind;
  private readonly backend: string;
  private readonly truncateBptt: boolean;
  private readonly logSpaceGradient: boolean;
  private readonly N: number;
  private readonly B: number;
  private readonly S: number;
  private readonly T: number;
  /** order[p] = the neuron at internal position p (neurons sorted by cell type, then index). */
  private readonly order: Int32Array;
  private readonly populations: Population[];
  private readonly inputs: InputSpikes;
  /** Surrogate spike H(x) with strict >, backward dy/(λ|x|+1)² (MODEL.md 2.4): reference-step.ts surrogateGradient, as tensors. */
  private readonly spike: (x: tf.Tensor) => tf.Tensor;
  private consts: Constants | null = null;

  constructor(
    private readonly spec: NetworkSpec,
    options: TfjsEngineOptions = {},
  ) {
    this.backend = options.backend ?? "cpu";
    this.kind = GPU_BACKENDS.has(this.backend) ? "tfjs-gpu" : "tfjs";
    this.truncateBptt = options.truncateBptt ?? true;
    this.logSpaceGradient = options.logSpaceGradient ?? false;
    const c = spec.constants;
    const N = (this.N = c.numNeurons);
    this.B = spec.batchSize;
    this.S = c.numSlots;
    this.T = epochSteps(spec);
    this.inputs = { trials: this.B, steps: this.T, numInputs: c.numInputs, data: new Uint8Array(this.B * this.T * c.numInputs) };

    this.order = Int32Array.from({ length: N }, (_, j) => j).sort((a, b) => c.cellType[a] - c.cellType[b] || a - b);
    const position = new Int32Array(N);
    this.order.forEach((j, p) => (position[j] = p));

    this.populations = [];
    let start = 0;
    for (let k = 0; k < c.numSources; k++) {
      const input = k >= c.numRecTypes;
      const ofPop = input ? c.inputSource : c.cellType;
      const edges = input ? spec.ff : spec.rec;
      const members = Int32Array.from(Array.from(ofPop.keys()).filter((i) => ofPop[i] === k));
      const row = new Int32Array(ofPop.length).fill(-1);
      members.forEach((i, r) => (row[i] = r));
      const ids: number[] = [];
      for (let e = 0; e < edges.pre.length; e++) if (row[edges.pre[e]] >= 0) ids.push(e);
      const positions = new Int32Array(2 * ids.length);
      ids.forEach((e, m) => {
        positions[2 * m] = row[edges.pre[e]];
        positions[2 * m + 1] = position[edges.post[e]];
      });
      if (members.length === 0) continue;
      const inputBuffer = input ? new Float32Array(this.T * this.B * members.length) : null;
      this.populations.push({ source: k, input, members, start, size: members.length, edgeIds: Int32Array.from(ids), positions, inputBuffer });
      if (!input) start += members.length;
    }

    const lambda = c.surrgradScale;
    this.spike = unaryCustomGrad((x, save) => {
      save([x]);
      return {
        value: tf.step(x),
        gradFunc: (dy, [saved]) => tf.div(dy, tf.square(tf.add(tf.mul(tf.abs(saved), lambda), 1))),
      };
    });
  }

  async runEpoch(task: EpochTask): Promise<EpochResult> {
    if (tf.getBackend() !== this.backend && !(await tf.setBackend(this.backend)))
      throw new Error(`tfjs engine: backend "${this.backend}" is not available`);
    const spec = this.spec;
    const { N, B, S, T } = this;
    const c = (this.consts ??= this.makeConstants());
    const drive = epochInputs(spec, task, this.inputs);
    const initial = task.initialState ?? restState(spec);
    // A recorded teacher's spikes of the epoch, [T, B, N] in canonical neuron order.
    const recording = spec.teacherRecording;
    const recorded = recording ? new Uint8Array(T * B * N) : null;
    if (recording) recordedOutputs(recording, placeOf(recording, task.epoch, B, T), B, T, recorded!, { sb: N, st: B * N, sj: 1 });

    const { spikes, volts, conductances, teacherSpikes, finalState, recGrad, ffGrad } = await this.computeOnDevice(c, task, initial, recorded);

    const NB = N * B;
    const layout: ActivityLayout = { trials: B, steps: T, neurons: N, sb: N, st: NB, sj: 1, spikes, voltages: volts, voltageOffset: 0 };
    const trials = trialSummaries(layout);
    const summary = summarizeEpoch(spec, layout, trials, false, teacherSpikes);
    const activity =
      task.recordActivity && conductances
        ? extractTrialActivity(
            spec,
            task.epoch,
            layout,
            trials.count,
            this.inputs,
            (b, t, j) => (t === 0 ? initial.v[b * N + j] : volts[(t - 1) * NB + b * N + j]),
            (b, t, j, l) => conductances[((t * B + b) * N + j) * S + l],
          )
        : null;
    return epochResult(task.epoch, summary, { recGrad, ffGrad }, finalState, activity, drive);
  }

  /**
   * The epoch on the tfjs backend, returned in canonical neuron order: [T, B, N] spikes and V, [T, B, N, S]
   * conductances when recorded, final state, per-edge gradients when requested. Every tensor it creates is released,
   * also when it throws.
   */
  private async computeOnDevice(c: Constants, task: EpochTask, initial: StreamState, recordedTeacher: Uint8Array | null): Promise<DeviceResult> {
    const spec = this.spec;
    const { N, B, S, order } = this;
    const owned: tf.TensorContainer[] = [];
    const own = <X extends tf.TensorContainer>(x: X): X => {
      owned.push(x);
      return x;
    };
    try {
      const edgeWeights = own([tf.tensor1d(task.recWeight), tf.tensor1d(task.ffWeight)]);
      const weights = own(tf.tidy(() => this.denseWeights(c, edgeWeights[0], edgeWeights[1])));
      const inputs = own(this.populations.map((p) => (p.input ? this.inputTensor(p) : undefined)));
      const v0 = own(tf.tensor2d(permuteNeurons(initial.v, N, 1, order, false), [B, N]));
      // The canonical slot-major [c·S + l][b][j] state as the [b][j][c][l] tensor the step works on.
      const g0 = own(tf.tidy(() => tf.reshape(tf.transpose(tf.tensor3d(permuteNeurons(initial.g, N, 1, order, false), [2 * S, B, N]), [1, 2, 0]), [B, N, 2, S]) as tf.Tensor4D));
      const simulate = (ws: tf.Tensor[]) => this.simulate(c, ws as tf.Tensor2D[], inputs, v0, g0, task.recordActivity);
      const { T } = this;
      const teacher = recordedTeacher
        ? own(tf.tensor3d(permuteNeurons(recordedTeacher, N, 1, order, false), [T, B, N]))
        : spec.teacherRecWeight && spec.teacherFfWeight
          ? own(tf.tidy(() => this.simulate(c, this.denseWeights(c, tf.tensor1d(spec.teacherRecWeight!), tf.tensor1d(spec.teacherFfWeight!)), inputs, v0, g0, false).spikes))
          : null;

      let recorded: Recorded;
      let grads: tf.Tensor[] | null = null;
      // Per population's dense matrix, or (log space) per edge vector [rec, ff] of θ = ln w.
      const logSpace = this.logSpaceGradient;
      if (task.computeGradient) {
        const kept: { recorded?: Recorded } = {};
        const variables = logSpace ? own(edgeWeights.map((w) => tf.log(w))) : weights;
        const { value, grads: g } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
          const r = simulate(logSpace ? this.denseWeightsByGather(tf.exp(xs[0]), tf.exp(xs[1])) : xs);
          // valueAndGrads runs f inside a tidy: what the host reads afterwards must survive it.
          recordedTensors(r).forEach((x) => tf.keep(x));
          kept.recorded = r;
          return this.lossTensor(c, r.spikes, r.volts, teacher);
        })(variables);
        value.dispose();
        grads = own(g);
        recorded = own(kept.recorded!);
      } else {
        recorded = own(tf.tidy(() => simulate(weights)));
      }

      const toCanonical = async (x: tf.Tensor, block: number) => permuteNeurons(await x.data(), N, block, order, true);
      const result: DeviceResult = {
        spikes: await toCanonical(recorded.spikes, 1),
        volts: await toCanonical(recorded.volts, 1),
        conductances: recorded.conductances ? await toCanonical(recorded.conductances, S) : null,
        teacherSpikes: recordedTeacher ?? (teacher ? await toCanonical(teacher, 1) : null),
        finalState: { v: await toCanonical(recorded.v, 1), g: await toCanonical(own(tf.tidy(() => tf.transpose(tf.reshape(recorded.g, [B, N, 2 * S]), [2, 0, 1]))), 1) },
        recGrad: null,
        ffGrad: null,
      };
      if (grads && logSpace) {
        result.recGrad = (await grads[0].data()) as Float32Array;
        result.ffGrad = (await grads[1].data()) as Float32Array;
      } else if (grads) {
        const recGrad = (result.recGrad = new Float32Array(spec.rec.pre.length));
        const ffGrad = (result.ffGrad = new Float32Array(spec.ff.pre.length));
        for (let k = 0; k < this.populations.length; k++) {
          const p = this.populations[k];
          if (p.edgeIds.length === 0) continue;
          const values = await own(tf.gatherND(grads[k], c.positions[k])).data();
          const out = p.input ? ffGrad : recGrad;
          for (let m = 0; m < p.edgeIds.length; m++) out[p.edgeIds[m]] = values[m];
        }
      }
      return result;
    } finally {
      tf.dispose(owned);
    }
  }

  dispose(): void {
    if (!this.consts) return;
    tf.dispose(Object.values(this.consts));
    this.consts = null;
  }

  private makeConstants(): Constants {
    const c = this.spec.constants;
    const t = this.spec.targets;
    const P = this.populations.length;
    const perNeuron = (values: ArrayLike<number>) => tf.tensor1d(permuteNeurons(values, this.N, 1, this.order, false));
    const S = this.S;
    const slotSum = new Float32Array(2 * S * S);
    const injectionScale = new Float32Array(P * 2 * S);
    for (let l = 0; l < S; l++) {
      slotSum[l * S + l] = 1;
      slotSum[(S + l) * S + l] = 1;
    }
    this.populations.forEach((p, k) => {
      for (let l = 0; l < S; l++) {
        if (c.slotSource[l] !== p.source) continue;
        injectionScale[k * 2 * S + l] = -c.gScale[l];
        injectionScale[k * 2 * S + S + l] = c.gScale[l];
      }
    });
    const alpha = new Float32Array(2 * S);
    alpha.set(c.alphaRise, 0);
    alpha.set(c.alphaDecay, S);
    const clampLower = new Float32Array(2 * S);
    const clampUpper = new Float32Array(2 * S);
    for (let l = 0; l < S; l++) {
      clampLower[l] = -c.gScale[l];
      clampUpper[S + l] = c.gScale[l];
    }
    return {
      theta: perNeuron(c.theta),
      eL: perNeuron(c.eL),
      beta: perNeuron(c.beta),
      dtOverC: perNeuron(c.dtOverC),
      uReset: perNeuron(c.uReset),
      slotSum: tf.tensor2d(slotSum, [2 * S, S]),
      ones: tf.ones([S, 1]),
      eSyn: tf.tensor2d(c.eSyn, [S, 1]),
      alpha: tf.tensor2d(alpha, [2, S]),
      injectionScale: tf.tensor2d(injectionScale, [P, 2 * S]),
      clampLower: c.conductanceClamp ? tf.tensor2d(clampLower, [2, S]) : null,
      clampUpper: c.conductanceClamp ? tf.tensor2d(clampUpper, [2, S]) : null,
      edgeIds: this.populations.map((p) => tf.tensor1d(p.edgeIds, "int32")),
      positions: this.populations.map((p) => tf.tensor2d(p.positions, [p.edgeIds.length, 2], "int32")),
      targetRate: perNeuron(t.rate),
      targetAlpha: perNeuron(t.alpha),
      targetRatio: perNeuron(t.ratio),
      targetTheta: perNeuron(t.theta),
      vanRossumFilter: hasSpikeTrainTeacher(this.spec) ? tf.tensor2d(vanRossumFilterMatrix(this.T, c.dt, this.spec.vanRossum), [this.T, this.T]) : null,
    };
  }

  /** W_k [n_k, N] per population: the edge weights scattered into zeros (masked entries stay exactly 0). */
  private denseWeights(c: Constants, rec: tf.Tensor, ff: tf.Tensor): tf.Tensor2D[] {
    return this.populations.map((p, k) => {
      const shape: [number, number] = [p.size, this.N];
      if (p.edgeIds.length === 0) return tf.zeros(shape);
      return tf.scatterND(c.positions[k], tf.gather(p.input ? ff : rec, c.edgeIds[k]), shape) as tf.Tensor2D;
    });
  }

  /**
   * The same matrices as a gather from the edge vector (tfjs has no gradient for scatterND): each dense entry reads
   * its edge's value, or a zero appended after the edges. Used where autodiff must reach the edge vectors (log space);
   * the index costs n_k·N int32 per population, which only small test networks afford.
   */
  private denseWeightsByGather(rec: tf.Tensor, ff: tf.Tensor): tf.Tensor2D[] {
    return this.populations.map((p) => {
      const values = p.input ? ff : rec;
      const E = values.shape[0];
      const index = new Int32Array(p.size * this.N).fill(E);
      p.edgeIds.forEach((e, m) => (index[p.positions[2 * m] * this.N + p.positions[2 * m + 1]] = e));
      return tf.reshape(tf.gather(tf.concat([values, tf.zeros([1])]), tf.tensor1d(index, "int32")), [p.size, this.N]) as tf.Tensor2D;
    });
  }

  /** The epoch's spikes of an input population as [T·B, n_k], rows in (step, trial) order. */
  private inputTensor(p: Population): tf.Tensor2D {
    const { B, T } = this;
    const { data, numInputs: M } = this.inputs;
    const n = p.size;
    const buf = p.inputBuffer!;
    for (let t = 0; t < T; t++)
      for (let b = 0; b < B; b++) {
        const src = (b * T + t) * M;
        const dst = (t * B + b) * n;
        for (let m = 0; m < n; m++) buf[dst + m] = data[src + p.members[m]];
      }
    return tf.tensor2d(buf, [T * B, n]);
  }

  /** The epoch's forward pass (MODEL.md 2.4), with the state made constant at every chunk boundary. */
  private simulate(c: Constants, W: tf.Tensor2D[], inputs: (tf.Tensor2D | undefined)[], v0: tf.Tensor2D, g0: tf.Tensor4D, recordConductances: boolean): Recorded {
    const { N, B, S, T } = this;
    const P = this.populations.length;
    // Inputs are constants, so each input population's drive of all steps is one [T·B, n_k] × [n_k, N] product.
    const inputDrive = inputs.map((x, k) => (x ? tf.unstack(tf.reshape(tf.matMul(x, W[k]), [T, B, N])) : null));
    const chunk = this.spec.chunkSteps;
    let v: tf.Tensor2D = v0;
    let g: tf.Tensor4D = g0;
    const spikes: tf.Tensor[] = [];
    const volts: tf.Tensor[] = [];
    const conductances: tf.Tensor[] = [];
    for (let t = 0; t < T; t++) {
      if (this.truncateBptt && t > 0 && t % chunk === 0) {
        v = stopGradient(v) as tf.Tensor2D;
        g = stopGradient(g) as tf.Tensor4D;
      }
      const s = this.spike(tf.sub(v, c.theta));
      const G = tf.matMul(tf.reshape(g, [B * N, 2 * S]), c.slotSum);
      if (recordConductances) conductances.push(G);
      // Σ_l G_l (v − E_l) as v·ΣG − Σ G_l E_l: products, not broadcasts, which the cpu backend does element by element.
      const current = tf.sub(tf.mul(v, tf.reshape(tf.matMul(G, c.ones), [B, N])), tf.reshape(tf.matMul(G, c.eSyn), [B, N]));
      const vTilde = tf.sub(tf.add(tf.mul(tf.sub(v, c.eL), c.beta), c.eL), tf.mul(current, c.dtOverC));
      // Hard reset: U_reset·s is detached; the (1 − s) gate carries the surrogate through the reset path unless
      // detach_reset detaches it too.
      const gate = this.spec.constants.detachReset ? stopGradient(s) : s;
      const vNext = tf.add(tf.mul(vTilde, tf.sub(1, gate)), tf.mul(c.uReset, stopGradient(s))) as tf.Tensor2D;
      const z = this.populations.map((p, k) => {
        if (p.input) return inputDrive[k]![t];
        return tf.matMul(tf.slice(s, [0, p.start], [B, p.size]), W[k]);
      });
      // Stacked on a new leading axis, whose gradient is contiguous slices (a trailing one is strided on the cpu).
      const zFlat = tf.reshape(tf.stack(z), [P, B * N]);
      const injection = tf.reshape(tf.matMul(zFlat, c.injectionScale, true, false), [B, N, 2, S]);
      g = tf.add(tf.mul(g, c.alpha), injection) as tf.Tensor4D;
      // The conductance clamp (MODEL-HEAD.md 3, step 7; reference-step.ts cobaLifStep) on g_{t+1}, after all
      // injections. Per-slot bounds, so minimum/maximum instead of clipByValue (scalar bounds only); their gradients
      // pass at equality (maximum: a ≥ b, minimum: a ≤ b), so the derivative is 1 on the closed interval and 0
      // outside, as clipByValue's and the reference adjoint's.
      if (c.clampLower && c.clampUpper) g = tf.minimum(tf.maximum(g, c.clampLower), c.clampUpper) as tf.Tensor4D;
      v = vNext;
      spikes.push(s);
      volts.push(vNext);
    }
    return {
      spikes: tf.stack(spikes) as tf.Tensor3D,
      volts: tf.stack(volts) as tf.Tensor3D,
      v,
      g,
      conductances: recordConductances ? (tf.reshape(tf.stack(conductances), [T, B, N, S]) as tf.Tensor4D) : undefined,
    };
  }

  /**
   * The differentiable part of the epoch loss (losses.ts), weighted as in the total: firing rate, silent penalty and
   * the van Rossum distance to the teacher's (constant) spikes through the spikes, membrane variance through V. The
   * CV term has no gradient and is left out.
   */
  private lossTensor(c: Constants, spikes: tf.Tensor3D, volts: tf.Tensor3D, teacherSpikes: tf.Tensor3D | null): tf.Scalar {
    const w = this.spec.lossWeights;
    const { T, B, N } = this;
    const dt = this.spec.constants.dt;
    const durationS = (B * T * dt) / 1000;
    const rates = tf.div(tf.sum(spikes, [0, 1]), durationS);
    const firingRate = tf.mean(tf.div(tf.square(tf.sub(rates, c.targetRate)), tf.add(c.targetRate, 1e-6)));
    const silent = tf.mean(tf.exp(tf.mul(tf.neg(c.targetAlpha), rates)));
    const mean = tf.mean(volts, 0);
    const variance = tf.div(tf.sum(tf.square(tf.sub(volts, mean)), 0), T - 1);
    const std = tf.mul(tf.sqrt(tf.maximum(variance, VARIANCE_FLOOR)), tf.step(variance));
    const ratio = tf.div(std, tf.add(tf.sub(c.targetTheta, mean), 1e-8));
    const membrane = tf.mean(tf.square(tf.sub(ratio, c.targetRatio)));
    const terms = [tf.mul(firingRate, w.firing_rate), tf.mul(silent, w.silent_penalty), tf.mul(membrane, w.membrane_variance)];
    if (teacherSpikes) {
      // van-rossum.ts: filtered trains y = K·s along steps over the whole epoch, L = c·Σ (y_student − y_teacher)² with
      // c = dt/(τd·B·N) (single exponential) or 1/(B·T·N) (double, the original's mean).
      const filtered = (s: tf.Tensor3D) => tf.matMul(c.vanRossumFilter!, tf.reshape(s, [T, B * N]));
      const distance = tf.sum(tf.square(tf.sub(filtered(spikes), filtered(teacherSpikes))));
      terms.push(tf.mul(distance, vanRossumScale(B, T, N, dt, this.spec.vanRossum, w.van_rossum)));
    }
    return tf.addN(terms) as tf.Scalar;
  }
}

/**
 * The tfjs engine, on a GPU when `gpu` (a CUDA device index) is given. The GPU build of tfjs is an optional package
 * (its install downloads libtensorflow and needs CUDA), so it is loaded here, on demand, with a clear message when it
 * is missing.
 */
/**
 * Loads @tensorflow/tfjs-node-gpu restricted to one CUDA device and switches tfjs to it. Workers call this at start-up
 * so that a missing GPU package is reported before the worker joins a run.
 */
export async function loadGpuBackend(gpu: number): Promise<void> {
  if (!Number.isInteger(gpu) || gpu < 0) throw new Error(`--gpu: expected a CUDA device index (0, 1, ...), got ${gpu}`);
  if (tf.getBackend() === "tensorflow") return;
  // libtensorflow picks its devices once, when it loads: restrict it to the requested one before the import.
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  const ids = visible ? visible.split(",") : null;
  if (ids && gpu >= ids.length) throw new Error(`--gpu ${gpu}: only ${ids.length} GPU(s) visible (CUDA_VISIBLE_DEVICES=${visible})`);
  process.env.CUDA_VISIBLE_DEVICES = ids ? ids[gpu] : String(gpu);
  // A variable specifier, so that TypeScript does not try to resolve a package that is usually not installed.
  const gpuPackage = "@tensorflow/tfjs-node-gpu";
  try {
    await import(gpuPackage);
  } catch (e) {
    const reason = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new Error(
      `the GPU engine needs the optional package ${gpuPackage} (CUDA 11.8/cuDNN 8.6 on Linux x86-64): ` +
        `install it with \`npm install ${gpuPackage}\` on the worker machine, ` +
        `or run with --cpu (or without --gpu) to use the sparse-cpu engine. (Loading it failed: ${reason})`,
      { cause: e },
    );
  }
  if (!(await tf.setBackend("tensorflow"))) throw new Error(`${gpuPackage} loaded but its "tensorflow" backend did not initialise`);
}

export async function createTfjsEngine(spec: NetworkSpec, opts: { gpu?: number } = {}): Promise<TfjsEngine> {
  if (opts.gpu === undefined) return new TfjsEngine(spec);
  await loadGpuBackend(opts.gpu);
  return new TfjsEngine(spec, { backend: "tensorflow" });
}
