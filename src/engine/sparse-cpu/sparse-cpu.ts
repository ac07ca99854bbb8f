/**
 * sparse-cpu engine: event-driven CSR forward and a hand-written adjoint (MODEL.md 2.4 and 3).
 *
 * Internal layout is flat over the element p = j·B + b (neuron-major, trial innermost), padded to whole SIMD pairs:
 * per-step arrays are [t][p], conductances and their adjoints slot-major [c][l][p], so that the elementwise passes are
 * unit-stride streams and the sparse passes load each synapse once and reach all trials of its target from one cache
 * line. The forward keeps for the backward only v, s, the pre-reset membrane ṽ and ΣG per step (per-slot conductances
 * only for epochs recorded for figures). All buffers are allocated once per engine; nothing is allocated per time
 * step. In float32 (the default) every pass runs as a WebAssembly kernel (kernels/*.wat) over the same buffers; the
 * JavaScript loops below, which call the reference step and adjoint (../reference-step.ts) per element, are their
 * bit-identical fallback and the float64 (test) path. State, adjoint state and loss
 * coefficients are stored in the engine's precision and combined in float64; the adjoint's sparse product
 * Σ_j W_ij δ[j] runs in that precision throughout (float32 lanes by default); weight gradients accumulate in float64.
 *
 * Forward, per step t (MODEL.md 2.4):  s = H(v − θ);  I_l = G_l (v − E_l);  ṽ = E_L + (v − E_L)β − ΣI·dt/C;
 *   v' = ṽ(1 − s) + U_reset·s;  g ← α g + gs·z,  z_src[j] = Σ_i∈src s_i W_ij.
 * Backward, with a_v = dL/dv_{t+1}, a_g = dL/dg_{t+1} (reset to 0 at chunk ends: truncated BPTT):
 *   dṽ = a_v(1 − s);  ds = −ṽ a_v + ∂L/∂s + Σ_j W_ij δ_src(i)[j]  (without −ṽ a_v when the reset gate is detached);  δ_src[j] = Σ_l∈src gs_l (a_g[1,l] − a_g[0,l]);
 *   a_g(t) = m(α a_g + dG),  dG_l = −dṽ·dt/C·(v − E_l);  a_v(t) = dṽ(β − dt/C·ΣG) + ds·σ'(v − θ);
 *   dW_ij += s_i δ_src(i)[j]   (only rows of neurons that spiked).
 * With simulation.conductance_clamp the forward clips g to [−gs, 0] (rise) and [0, gs] (decay) once the pending
 * injection is added (reference-step.ts cobaLifStep), and m is 0 for the components it clipped, 1 otherwise (m ≡ 1
 * without the clamp). Where it bound cannot be recomputed from what the forward keeps (v, s, ṽ, ΣG: per-slot
 * conductances are not stored), so the forward also keeps a mask: 2 bits per (element, step, slot), four slots to a
 * byte, ⌈S/4⌉·T·P bytes (default size, S = 5: 2 × 100 × 50 000 = 10 MB, half of vHist), only when the clamp is on.
 * With a teacher (van Rossum loss), the teacher is simulated first on the same input from the same state, and ∂L/∂s
 * gains a per-(trial, step, neuron) term. With a recorded teacher (spec.teacherRecording) the epoch's inputs and the
 * teacher's spikes are unpacked from the recording instead (model/teacher-replay.ts), once per epoch, straight into
 * the input buffer and the teacher's sHist-layout buffer.
 */
import { InputSpikes } from "../../model/inputs.js";
import { epochInputs, hasSpikeTrainTeacher, NetworkSpec } from "../../model/network.js";
import { placeOf, recordedOutputs } from "../../model/teacher-replay.js";
import { Engine, EpochResult, EpochTask, epochSteps, StreamState } from "../engine.js";
import { ActivityLayout, epochResult, extractTrialActivity, summarizeEpoch, TrialSummaries, trialSummaries } from "../epoch-summary.js";
import { KernelKind, layoutBytes, WasmKernels, Workspace } from "./kernels/workspace.js";
import {
  clip,
  CobaLifAdjoint,
  cobaLifAdjointStep,
  CobaLifParameters,
  CobaLifState,
  cobaLifStep,
  CobaLifStepRecord,
  flushTiny,
  LossGradient,
  SynapseSlot,
} from "../reference-step.js";


export type Precision = "float32" | "float64";

type FloatArray = Float32Array | Float64Array;

/** Every buffer of the engine, sized for one network; see Workspace. P is the padded element count (see SparseCpuEngine). */
function engineLayout(spec: NetworkSpec, precision: Precision) {
  const c = spec.constants;
  const N = c.numNeurons;
  const B = spec.batchSize;
  const S = c.numSlots;
  const T = epochSteps(spec);
  const G = c.numSources;
  const P = paddedElements(N, B);
  const M = c.numInputs;
  const E = spec.rec.post.length;
  const F = spec.ff.post.length;
  const Real = precision === "float64" ? Float64Array : Float32Array;
  return {
    // Per-step history for the adjoint: v_t for t = 0..T; s_t, ṽ_t (membrane before reset) and ΣG_t for t < T.
    vHist: [Real, (T + 1) * P],
    sHist: [Uint8Array, T * P],
    vTildeHist: [Real, T * P],
    gSumHist: [Real, T * P],
    // With the conductance clamp only: where it bound, [t][w][p] bytes, bits 2(l mod 4) (rise) and 2(l mod 4) + 1
    // (decay) of slot l = 4w + (l mod 4), as reference-step.ts CLAMPED_RISE / CLAMPED_DECAY.
    clampHist: [Uint8Array, c.conductanceClamp ? T * clampBytes(S) * P : 0],
    // Per-slot G_t of the step ([l][p]), written only for epochs whose activity is recorded for figures, and of the
    // plot trial over the epoch ([t][l][j]), which is all the figures use.
    gStep: [Real, S * P],
    gTrial: [Real, T * S * N],
    g: [Real, 2 * S * P],
    z: [Real, G * P],
    // Adjoint state.
    av: [Real, P],
    ag: [Real, 2 * S * P],
    delta: [Real, G * P],
    // δ of the recurrent sources in the sparse product's layout (see kernels/adjoint.wat), with slack.
    deltaPacked: [Real, c.numRecTypes * N * packedTrials(B) + 16],
    ds: [Real, P],
    // Per-element constants and loss-gradient coefficients of the epoch (see losses.ts), in the flat layout.
    theta: [Float32Array, P],
    uReset: [Float32Array, P],
    eL: [Float32Array, P],
    beta: [Float32Array, P],
    dtOverC: [Float32Array, P],
    spikeGrad: [Real, P],
    devCoef: [Real, P],
    meanCoef: [Real, P],
    meanV: [Real, P],
    // The epoch's per-(trial, neuron) summaries (epoch-summary.ts TrialSummaries), which the kernels write in the
    // summary's b·N + j layout: spike trains (neurons.wat spikeTrains) and moments of V (voltageMoments).
    trainCount: [Int32Array, N * B],
    trainFirst: [Int32Array, N * B],
    trainLast: [Int32Array, N * B],
    trainSum: [Float64Array, N * B],
    trainSumSq: [Float64Array, N * B],
    vMean: [Float64Array, N * B],
    vStd: [Float64Array, N * B],
    // Kernel-only tables, read by kernels/neurons.wat and by no JavaScript (the fallbacks take the slot constants from
    // the scratch records): per slot, [gScale, alphaRise, alphaDecay, eSyn], each as a splatted pair; the byte offset
    // of the slot's source row in the float32 [source][p] arrays z and delta.
    slotTable: [Float64Array, S * 8],
    slotRow: [Int32Array, S],
    scratch: [Float32Array, 12],
    // Synapses: the tables of both populations (see SynapseTables), weights of the epoch, gradient accumulators;
    // the epoch's input spikes.
    rowPtr: [Int32Array, N + 1],
    recSource: [Int32Array, N],
    recTarget: [Int32Array, E],
    weights: [Float32Array, E],
    recGrad: [Float64Array, E],
    ffRowPtr: [Int32Array, M + 1],
    ffSource: [Int32Array, M],
    ffTarget: [Int32Array, F],
    ffWeights: [Float32Array, F],
    ffGrad: [Float64Array, F],
    inputSpikes: [Uint8Array, B * T * M],
    // For the sparse product (kernels/adjoint.wat rowDots, rowDotsJs): each neuron's source population, the order of
    // the product's rows and their CSR edges, and per product edge k the recurrent edge e = productEdge[k], the
    // element post[e]·Bq of its target's row in a packed δ block, and its weight W[e].
    cellType: [Int32Array, N],
    rowOrder: [Int32Array, N],
    productRowPtr: [Int32Array, N + 1],
    productEdge: [Int32Array, E],
    productTarget: [Int32Array, E],
    productWeight: [Float32Array, E],
  } as const;
}

/** Bytes of the engine's memory for one epoch of this network (history for the backward, state, adjoint, synapses). */
export function sparseCpuEpochBytes(spec: NetworkSpec): number {
  return layoutBytes(engineLayout(spec, "float32"));
}

/** Element count N·B rounded up to whole SIMD pairs; padding elements never spike and stay at zero. */
function paddedElements(N: number, B: number): number {
  return N * B + ((N * B) & 1);
}

/** Bytes per element and step of the conductance clamp's mask: 2 bits per slot. */
function clampBytes(S: number): number {
  return Math.ceil(S / 4);
}

/** Trials per packed δ row: B rounded up to whole float32 vectors. */
function packedTrials(B: number): number {
  return Math.ceil(B / 4) * 4;
}

type Layout = ReturnType<typeof engineLayout>;
type RealBuffers = "vHist" | "vTildeHist" | "gSumHist" | "gStep" | "gTrial" | "g" | "z" | "av" | "ag" | "delta" | "deltaPacked" | "ds" | "spikeGrad" | "devCoef" | "meanCoef" | "meanV";
type FloatBuffers = { [K in RealBuffers]: FloatArray };

export class SparseCpuEngine implements Engine {
  readonly kind = "sparse-cpu" as const;
  private readonly N: number;
  private readonly B: number;
  private readonly S: number;
  private readonly T: number;
  /** Padded element count: element p = j·B + b of every flat per-step array. */
  private readonly P: number;
  /** simulation.conductance_clamp, and the bytes of its mask per element and step. */
  private readonly clamp: boolean;
  private readonly clampWords: number;
  private readonly inputs: InputSpikes;
  private readonly ws: Workspace<Layout>;
  private readonly buf: Workspace<Layout>["buffers"] & FloatBuffers;
  private readonly wasm: WasmKernels | null;
  /** Rounding to the storage precision (Math.fround in float32, none in float64): the reference step's stores, the sparse product. */
  private readonly round: (x: number) => number;
  /** Records of one element for the JavaScript fallbacks (reference-step.ts), allocated once. */
  private readonly scratch: {
    neuron: CobaLifParameters;
    slots: SynapseSlot[];
    state: CobaLifState;
    injection: Float64Array;
    step: CobaLifStepRecord;
    adjoint: CobaLifAdjoint;
    loss: LossGradient;
    deltaBySlot: Float64Array;
  };
  /** The recurrent and feedforward synapses' tables, for the JavaScript synapse pass. */
  private readonly recSynapses: SynapseTables;
  private readonly ffSynapses: SynapseTables;
  // With a teacher: its spikes of the epoch and the van Rossum dL/ds, both in the sHist layout.
  private readonly teacherSpikes: Uint8Array | null;
  private readonly spikeStepGrad: Float64Array | null;
  /**
   * Diagnostics (bench): called as the backward finishes each chunk (last chunk first) with the weight gradients
   * accumulated so far, so that per-chunk contributions can be told apart.
   */
  onChunkGradient: ((chunk: number, recGrad: Float64Array, ffGrad: Float64Array) => void) | null = null;

  constructor(
    private readonly spec: NetworkSpec,
    precision: Precision = "float32",
    kernel: KernelKind = "wasm",
  ) {
    const c = spec.constants;
    const N = (this.N = c.numNeurons);
    const B = (this.B = spec.batchSize);
    const S = (this.S = c.numSlots);
    this.T = epochSteps(spec);
    const P = (this.P = paddedElements(N, B));
    this.clamp = c.conductanceClamp === true;
    this.clampWords = clampBytes(S);
    // The compiled kernels store state as float32; the float64 mode (finite-difference tests) runs the JS loops.
    this.ws = new Workspace(engineLayout(spec, precision), precision === "float32" ? kernel : "js");
    this.buf = this.ws.buffers as Workspace<Layout>["buffers"] & FloatBuffers;
    this.wasm = this.ws.kernels;
    this.round = precision === "float32" ? Math.fround : (x) => x;
    this.scratch = {
      neuron: { theta: 0, uReset: 0, eL: 0, beta: 0, dtOverC: 0 },
      slots: Array.from({ length: S }, (_, l) => ({ gScale: c.gScale[l], alphaRise: c.alphaRise[l], alphaDecay: c.alphaDecay[l], eSyn: c.eSyn[l] })),
      state: { v: 0, gRise: new Float64Array(S), gDecay: new Float64Array(S) },
      injection: new Float64Array(S),
      step: { spike: 0, vNext: 0, vTilde: 0, gSum: 0, G: new Float64Array(S), clamped: new Uint8Array(S) },
      adjoint: { av: 0, agRise: new Float64Array(S), agDecay: new Float64Array(S), ds: 0 },
      loss: { spikeGrad: 0, devCoef: 0, meanCoef: 0, meanV: 0 },
      deltaBySlot: new Float64Array(S),
    };
    const b = this.buf;
    this.inputs = { trials: B, steps: this.T, numInputs: c.numInputs, data: b.inputSpikes };
    // Padding elements: θ = ∞ (never spike), everything else 0, so their state stays exactly 0.
    b.theta.fill(Infinity);
    for (let j = 0; j < N; j++) {
      b.theta.fill(c.theta[j], j * B, (j + 1) * B);
      b.uReset.fill(c.uReset[j], j * B, (j + 1) * B);
      b.eL.fill(c.eL[j], j * B, (j + 1) * B);
      b.beta.fill(c.beta[j], j * B, (j + 1) * B);
      b.dtOverC.fill(c.dtOverC[j], j * B, (j + 1) * B);
    }
    for (let l = 0; l < S; l++) {
      [c.gScale[l], c.alphaRise[l], c.alphaDecay[l], c.eSyn[l]].forEach((x, k) => b.slotTable.fill(x, l * 8 + 2 * k, l * 8 + 2 * k + 2));
      b.slotRow[l] = c.slotSource[l] * P * Float32Array.BYTES_PER_ELEMENT;
    }
    b.cellType.set(c.cellType);
    // Rows grouped by source type: while the product walks one type's rows only that type's δ block is in use,
    // which halves its cache footprint. Rows are independent sums, so their order changes no result.
    b.rowOrder.set(Array.from(c.cellType.keys()).sort((x, y) => c.cellType[x] - c.cellType[y] || x - y));
    let k = 0;
    b.rowOrder.forEach((i, r) => {
      for (let e = spec.rec.rowPtr[i]; e < spec.rec.rowPtr[i + 1]; e++) b.productEdge[k++] = e;
      b.productRowPtr[r + 1] = k;
    });
    b.rowPtr.set(spec.rec.rowPtr);
    b.ffRowPtr.set(spec.ff.rowPtr);
    const Bq = packedTrials(B);
    spec.rec.post.forEach((j, e) => (b.recTarget[e] = j * B));
    b.productEdge.forEach((e, k) => (b.productTarget[k] = spec.rec.post[e] * Bq));
    spec.ff.post.forEach((j, e) => (b.ffTarget[e] = j * B));
    c.cellType.forEach((k, i) => (b.recSource[i] = k * P));
    c.inputSource.forEach((k, i) => (b.ffSource[i] = k * P));
    this.recSynapses = { rowPtr: b.rowPtr, rowSource: b.recSource, target: b.recTarget };
    this.ffSynapses = { rowPtr: b.ffRowPtr, rowSource: b.ffSource, target: b.ffTarget };
    const teacher = hasSpikeTrainTeacher(spec);
    this.teacherSpikes = teacher ? new Uint8Array(this.T * P) : null;
    this.spikeStepGrad = teacher ? new Float64Array(this.T * P) : null;
  }

  /** Which kernels run: "wasm" unless WebAssembly SIMD is unavailable or the engine runs in float64. */
  get kernel(): KernelKind {
    return this.ws.kind;
  }

  async runEpoch(task: EpochTask): Promise<EpochResult> {
    return this.runEpochSync(task);
  }

  runEpochSync(task: EpochTask): EpochResult {
    const spec = this.spec;
    const drive = epochInputs(spec, task, this.inputs);
    const recording = spec.teacherRecording;
    if (recording) {
      const { B, T, P } = this;
      recordedOutputs(recording, placeOf(recording, task.epoch, B, T), B, T, this.teacherSpikes!, { sb: 1, st: P, sj: B });
    } else if (this.teacherSpikes) {
      this.simulate(task.initialState, spec.teacherRecWeight!, spec.teacherFfWeight!, false, false);
      this.teacherSpikes.set(this.buf.sHist);
    }
    this.simulate(task.initialState, task.recWeight, task.ffWeight, task.recordActivity, task.computeGradient);

    const layout = this.activityLayout();
    const trials = this.summarizeTrials(layout);
    const summary = summarizeEpoch(spec, layout, trials, task.computeGradient, this.teacherSpikes, this.spikeStepGrad);
    let recGrad: Float32Array | null = null;
    let ffGrad: Float32Array | null = null;
    if (task.computeGradient) {
      this.backward(summary.spikeGrad!, summary.devCoef!, summary.meanCoef!, summary.meanV);
      recGrad = new Float32Array(this.buf.recGrad);
      ffGrad = new Float32Array(this.buf.ffGrad);
    }
    const { B, S, P } = this;
    const activity = task.recordActivity
      ? extractTrialActivity(
          spec,
          task.epoch,
          layout,
          trials.count,
          this.inputs,
          (b, t, j) => this.buf.vHist[t * P + j * B + b],
          // Figures read the plot trial only.
          (_b, t, j, l) => this.buf.gTrial[(t * S + l) * this.N + j],
        )
      : null;
    return epochResult(task.epoch, summary, { recGrad, ffGrad }, this.saveState(), activity, drive);
  }

  dispose(): void {}

  /** Spikes and voltages (after each step) of the last epoch in [b][t][j] layout, for exports. */
  recordedActivity(): { spikes: Uint8Array; voltages: Float32Array } {
    const { N, B, T, P } = this;
    const spikes = new Uint8Array(B * T * N);
    const voltages = new Float32Array(B * T * N);
    for (let t = 0; t < T; t++)
      for (let j = 0; j < N; j++)
        for (let b = 0; b < B; b++) {
          spikes[(b * T + t) * N + j] = this.buf.sHist[t * P + j * B + b];
          voltages[(b * T + t) * N + j] = this.buf.vHist[(t + 1) * P + j * B + b];
        }
    return { spikes, voltages };
  }

  private activityLayout(): ActivityLayout {
    const { N, B, T, P } = this;
    return { trials: B, steps: T, neurons: N, sb: 1, st: P, sj: B, spikes: this.buf.sHist, voltages: this.buf.vHist, voltageOffset: P };
  }

  /**
   * The epoch's per-(trial, neuron) summaries: the kernels write them straight into epoch-summary.ts's b·N + j layout;
   * without the kernels, epoch-summary.ts computes them from the recorded activity.
   */
  private summarizeTrials(layout: ActivityLayout): TrialSummaries {
    if (!this.wasm) return trialSummaries(layout);
    const { N, B, T, P } = this;
    const p = this.ws.ptr;
    const b = this.buf;
    this.wasm.spikeTrains(p.sHist, P, N, B, T, p.trainCount, p.trainFirst, p.trainLast, p.trainSum, p.trainSumSq);
    this.wasm.voltageMoments(p.vHist + P * 4, P, N, B, T, p.vMean, p.vStd);
    return { count: b.trainCount, first: b.trainFirst, last: b.trainLast, sum: b.trainSum, sumSq: b.trainSumSq, meanV: b.vMean, stdV: b.vStd };
  }

  /**
   * The epoch forward from `state`, leaving its history in vHist, sHist, vTildeHist, gSumHist (and gTrial, and with
   * `forBackward` and the conductance clamp, clampHist) and g_T in g.
   */
  private simulate(state: StreamState | null, W: Float32Array, Wff: Float32Array, record: boolean, forBackward: boolean): void {
    this.loadState(state);
    this.buf.weights.set(W);
    this.buf.ffWeights.set(Wff);
    for (let t = 0; t < this.T; t++) this.forwardStep(t, record, forBackward && this.clamp);
    this.applyPendingInjection();
  }

  /** Canonical [b][j] / [c][l][b][j] state into the internal flat p = j·B + b / [c][l][p] layout. */
  private loadState(state: StreamState | null): void {
    const { N, B, S, P } = this;
    this.buf.z.fill(0);
    this.buf.g.fill(0);
    this.buf.vHist.fill(0, 0, P);
    if (!state) {
      this.buf.vHist.set(this.buf.uReset.subarray(0, N * B));
      return;
    }
    // Per (component, slot) block: the [b][j] → [j][b] transpose of the element index.
    for (let cl = 0; cl <= 2 * S; cl++) {
      const from = cl < 2 * S ? state.g.subarray(cl * B * N, (cl + 1) * B * N) : state.v;
      const to = cl < 2 * S ? this.buf.g.subarray(cl * P) : this.buf.vHist;
      for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) to[j * B + b] = from[b * N + j];
    }
  }

  private saveState(): StreamState {
    const { N, B, S, T, P } = this;
    const v = new Float32Array(B * N);
    const g = new Float32Array(B * N * 2 * S);
    for (let cl = 0; cl <= 2 * S; cl++) {
      const from = cl < 2 * S ? this.buf.g.subarray(cl * P) : this.buf.vHist.subarray(T * P);
      const to = cl < 2 * S ? g.subarray(cl * B * N) : v;
      for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) to[b * N + j] = from[j * B + b];
    }
    return { v, g };
  }

  /**
   * One forward step. The injection of step t−1 (in z) is applied to g first, completing g_t; the step then
   * decays g in place and scatters this step's spikes into z, which the next step (or applyPendingInjection) adds.
   */
  private forwardStep(t: number, record: boolean, keepMask: boolean): void {
    const { S, P } = this;
    const vIn = t * P;
    const p = this.ws.ptr;
    if (this.wasm) {
      this.wasm.forwardNeurons(P, S, p.g, p.z, record ? p.gStep : 0, p.vHist + vIn * 4, p.vHist + (vIn + P) * 4, p.sHist + vIn,
        p.vTildeHist + vIn * 4, p.gSumHist + vIn * 4, p.theta, p.uReset, p.eL, p.beta, p.dtOverC, p.slotTable, p.slotRow,
        this.clamp ? 1 : 0, keepMask ? p.clampHist + t * this.clampWords * P : 0);
    } else {
      this.forwardNeuronsJs(t, record, keepMask);
    }
    if (record) this.keepPlotTrialConductances(t);
    this.buf.z.fill(0);
    // Event-driven injection: only synapses of neurons (and inputs) that spiked this step are touched.
    this.synapsePass(INJECT, t);
  }

  /**
   * Step t's event-driven pass over both synapse populations (see kernels/synapses.wat): the recurrent spikes as
   * one flag run over the step's elements, the input spikes trial by trial.
   */
  private synapsePass(mode: typeof INJECT | typeof GRADIENT, t: number): void {
    const { N, B, P, T } = this;
    const M = this.spec.constants.numInputs;
    const b = this.buf;
    const [recValues, ffValues, state] = mode === INJECT ? (["weights", "ffWeights", "z"] as const) : (["recGrad", "ffGrad", "delta"] as const);
    if (this.wasm) {
      const p = this.ws.ptr;
      this.wasm.synapsePass(mode, p.sHist + t * P, N * B, B, 0, p.rowPtr, p.recTarget, p.recSource, p[recValues], p[state]);
      for (let trial = 0; trial < B; trial++)
        this.wasm.synapsePass(mode, p.inputSpikes + (trial * T + t) * M, M, 1, trial, p.ffRowPtr, p.ffTarget, p.ffSource, p[ffValues], p[state]);
    } else {
      synapsePassJs(mode, b.sHist, t * P, N * B, B, 0, this.recSynapses, b[recValues], b[state]);
      for (let trial = 0; trial < B; trial++)
        synapsePassJs(mode, b.inputSpikes, (trial * T + t) * M, M, 1, trial, this.ffSynapses, b[ffValues], b[state]);
    }
  }

  /** Step t's per-slot G of the plot trial, from gStep into gTrial. */
  private keepPlotTrialConductances(t: number): void {
    const { N, B, S, P } = this;
    const { gStep, gTrial } = this.buf;
    const trial = this.spec.plotTrial;
    for (let l = 0; l < S; l++) for (let j = 0; j < N; j++) gTrial[(t * S + l) * N + j] = gStep[l * P + j * B + trial];
  }

  /** Element p's constants into the scratch neuron record. */
  private loadNeuron(p: number): void {
    const n = this.scratch.neuron;
    const b = this.buf;
    n.theta = b.theta[p];
    n.uReset = b.uReset[p];
    n.eL = b.eL[p];
    n.beta = b.beta[p];
    n.dtOverC = b.dtOverC[p];
  }

  /**
   * JavaScript version of kernels/neurons.wat forwardNeurons: the reference step (reference-step.ts cobaLifStep) for
   * every element, over the engine's flat arrays; the kernel performs the same operations in the same order.
   */
  private forwardNeuronsJs(t: number, record: boolean, keepMask: boolean): void {
    const { S, P } = this;
    const { g, z, vHist, sHist, vTildeHist, gSumHist, gStep, clampHist } = this.buf;
    const srcOfSlot = this.spec.constants.slotSource;
    const { neuron, slots, state, injection, step } = this.scratch;
    const vIn = t * P;
    const vOut = (t + 1) * P;
    const clamp = this.clamp;
    const maskBase = t * this.clampWords * P;
    for (let p = 0; p < P; p++) {
      this.loadNeuron(p);
      state.v = vHist[vIn + p];
      for (let l = 0; l < S; l++) {
        state.gRise[l] = g[l * P + p];
        state.gDecay[l] = g[(S + l) * P + p];
        injection[l] = z[srcOfSlot[l] * P + p];
      }
      cobaLifStep(neuron, slots, state, injection, this.round, step, clamp);
      for (let l = 0; l < S; l++) {
        g[l * P + p] = state.gRise[l];
        g[(S + l) * P + p] = state.gDecay[l];
        if (record) gStep[l * P + p] = step.G[l];
      }
      if (keepMask) for (let w = 0; w < this.clampWords; w++) clampHist[maskBase + w * P + p] = packClamped(step.clamped!, w);
      sHist[vIn + p] = step.spike;
      vHist[vOut + p] = step.vNext;
      vTildeHist[vIn + p] = step.vTilde;
      gSumHist[vIn + p] = step.gSum;
    }
  }

  /**
   * Adds the last step's injection so that g holds g_T, the state the next epoch of the stream starts from (clamped
   * as a step would clamp it; no gradient reaches it, so no mask).
   */
  private applyPendingInjection(): void {
    const { S, P } = this;
    const { g, z } = this.buf;
    const { slots } = this.scratch;
    const srcOfSlot = this.spec.constants.slotSource;
    for (let l = 0; l < S; l++) {
      const gs = slots[l].gScale;
      const zBase = srcOfSlot[l] * P;
      for (let p = 0; p < P; p++) {
        const inj = z[zBase + p] * gs;
        if (this.clamp) {
          g[l * P + p] = clip(this.round(g[l * P + p] - inj), -gs, 0);
          g[(S + l) * P + p] = clip(this.round(g[(S + l) * P + p] + inj), 0, gs);
        } else {
          g[l * P + p] -= inj;
          g[(S + l) * P + p] += inj;
        }
      }
    }
  }

  private backward(spikeGrad: Float64Array, devCoef: Float64Array, meanCoef: Float64Array, meanV: Float64Array): void {
    const { N, B, P, T } = this;
    const c = this.spec.constants;
    const b0 = this.buf;
    const { delta, ds, ag } = b0;
    const spikeStepGrad = this.spikeStepGrad;
    const chunk = this.spec.chunkSteps;
    // Loss-gradient coefficients from the summary's [b][j] (and per-neuron) layout into the flat one.
    for (let j = 0; j < N; j++) {
      for (let b = 0; b < B; b++) {
        const p = j * B + b;
        b0.spikeGrad[p] = spikeGrad[j];
        b0.devCoef[p] = devCoef[b * N + j];
        b0.meanCoef[p] = meanCoef[b * N + j];
        b0.meanV[p] = meanV[b * N + j];
      }
    }
    for (let k = 0; k < b0.productEdge.length; k++) b0.productWeight[k] = b0.weights[b0.productEdge[k]];
    b0.recGrad.fill(0);
    b0.ffGrad.fill(0);
    const p = this.ws.ptr;

    for (let t = T - 1; t >= 0; t--) {
      const chunkEnd = (t + 1) % chunk === 0;
      // dL/ds_t only reaches step t − 1, through the surrogate; at a chunk start the state was detached there.
      const needSpikeGrad = t % chunk !== 0;
      const vIn = t * P;
      // At a chunk end the state was detached: nothing flows back into step t from later steps.
      if (chunkEnd) ag.fill(0);
      delta.fill(0);
      if (this.wasm) {
        this.wasm.backwardNeurons(P, this.S, chunkEnd ? 1 : 0, c.surrgradScale, c.detachReset ? 0 : 1, p.vHist + vIn * 4, p.vHist + (vIn + P) * 4, p.sHist + vIn,
          p.vTildeHist + vIn * 4, p.gSumHist + vIn * 4, p.av, p.ag, p.ds, p.delta,
          p.theta, p.beta, p.dtOverC, p.spikeGrad, p.devCoef, p.meanCoef, p.meanV, p.slotTable, p.slotRow,
          this.clamp ? p.clampHist + vIn * this.clampWords : 0);
        if (needSpikeGrad) {
          this.wasm.packDelta(p.delta, p.deltaPacked, N, B, c.numRecTypes, P);
          this.wasm.rowDots(p.productRowPtr, p.productTarget, p.productWeight, p.deltaPacked, p.ds, p.cellType, N, B, p.scratch, p.rowOrder);
        }
      } else {
        this.backwardNeuronsJs(t, chunkEnd);
        if (needSpikeGrad) {
          this.packDeltaJs();
          this.rowDotsJs();
        }
      }
      if (spikeStepGrad && needSpikeGrad) for (let k = 0; k < P; k++) ds[k] += spikeStepGrad[vIn + k];

      // Weight gradient, only for the trials in which presynaptic neuron i (or input i) spiked: dW_ij += δ_src(i)[j].
      this.synapsePass(GRADIENT, t);
      if (t % chunk === 0) this.onChunkGradient?.(t / chunk, b0.recGrad, b0.ffGrad);
    }
  }

  /**
   * JavaScript version of kernels/neurons.wat backwardNeurons: the reference adjoint (reference-step.ts
   * cobaLifAdjointStep) for every element, adding each slot's δ into its presynaptic population's row in slot order.
   */
  private backwardNeuronsJs(t: number, chunkEnd: boolean): void {
    const { S, P } = this;
    const { vHist, sHist, vTildeHist, gSumHist, av, ag, delta, ds, spikeGrad, devCoef, meanCoef, meanV, clampHist } = this.buf;
    const c = this.spec.constants;
    const { neuron, slots, step, adjoint, loss, deltaBySlot } = this.scratch;
    const clamp = this.clamp;
    const options = { surrgradScale: c.surrgradScale, detachReset: c.detachReset, chunkEnd, conductanceClamp: clamp };
    const vIn = t * P;
    const vOut = (t + 1) * P;
    const maskBase = t * this.clampWords * P;
    for (let p = 0; p < P; p++) {
      this.loadNeuron(p);
      step.spike = sHist[vIn + p];
      step.vNext = vHist[vOut + p];
      step.vTilde = vTildeHist[vIn + p];
      step.gSum = gSumHist[vIn + p];
      loss.spikeGrad = spikeGrad[p];
      loss.devCoef = devCoef[p];
      loss.meanCoef = meanCoef[p];
      loss.meanV = meanV[p];
      adjoint.av = av[p];
      adjoint.ds = ds[p];
      for (let l = 0; l < S; l++) {
        adjoint.agRise[l] = ag[l * P + p];
        adjoint.agDecay[l] = ag[(S + l) * P + p];
        if (clamp) step.clamped![l] = (clampHist[maskBase + (l >> 2) * P + p] >> (2 * (l & 3))) & 3;
      }
      cobaLifAdjointStep(neuron, slots, vHist[vIn + p], step, loss, options, adjoint, this.round, deltaBySlot);
      av[p] = adjoint.av;
      ds[p] = adjoint.ds;
      for (let l = 0; l < S; l++) {
        ag[l * P + p] = adjoint.agRise[l];
        ag[(S + l) * P + p] = adjoint.agDecay[l];
        delta[c.slotSource[l] * P + p] += deltaBySlot[l];
      }
    }
  }

  /** JavaScript version of kernels/adjoint.wat packDelta. */
  private packDeltaJs(): void {
    const { N, B, P } = this;
    const { delta, deltaPacked } = this.buf;
    const Bq = packedTrials(B);
    for (let src = 0; src < this.spec.constants.numRecTypes; src++)
      for (let j = 0; j < N; j++)
        for (let b = 0; b < B; b++) deltaPacked[(src * N + j) * Bq + b] = flushTiny(delta[src * P + j * B + b]);
  }

  /**
   * JavaScript version of kernels/adjoint.wat rowDots: ds[i·B + b] += Σ_e W[e]·δ_src(i)[post[e]][b] for every
   * neuron and trial, each sum taken over the row's edges in edge order in the engine's precision. Row k of the
   * product is neuron i = rowOrder[k]; its δ_src(i) is the packed block of source cellType[i], in which the target
   * of product edge e starts at element productTarget[e].
   */
  private rowDotsJs(): void {
    const { N, B } = this;
    const Bq = packedTrials(B);
    const { rowOrder, productRowPtr, productTarget, productWeight, cellType, deltaPacked, ds } = this.buf;
    const r = this.round;
    for (let k = 0; k < N; k++) {
      const i = rowOrder[k];
      const block = cellType[i] * N * Bq;
      for (let b = 0; b < B; b++) {
        let acc = 0;
        for (let e = productRowPtr[k], end = productRowPtr[k + 1]; e < end; e++)
          acc = r(acc + r(productWeight[e] * deltaPacked[block + productTarget[e] + b]));
        ds[i * B + b] += acc;
      }
    }
  }
}

const INJECT = 0;
const GRADIENT = 1;

/** Byte w of an element's clamp mask (layout of clampHist): slots 4w .. 4w + 3 of `clamped`, two bits each. */
function packClamped(clamped: Uint8Array, w: number): number {
  let byte = 0;
  for (let l = 4 * w; l < Math.min(4 * w + 4, clamped.length); l++) byte |= clamped[l] << (2 * (l & 3));
  return byte;
}

/**
 * One synapse population's tables, in element indices of the flat [source][p] arrays z and delta (shared with
 * kernels/synapses.wat, which scales them to bytes): the state of (source(i), neuron post[e], trial b) is element
 * rowSource[i] + b + target[e].
 */
interface SynapseTables {
  /** CSR rows over the presynaptic neurons (or inputs) i: row i's edges are rowPtr[i] .. rowPtr[i + 1]. */
  rowPtr: Int32Array;
  /** Per row: source(i)·P, the first element of its source population's block. */
  rowSource: Int32Array;
  /** Per edge: post[e]·B, the element of its target neuron in trial 0 within a block. */
  target: Int32Array;
}

/**
 * JavaScript version of kernels/synapses.wat synapsePass, with the same operations in the same order. The step's
 * spike flags are flags[start + q] for q < count, flag q standing for row i = ⌊q / trialsPerRow⌋ in trial
 * b = firstTrial + q mod trialsPerRow; for every flag set, in increasing q, and every edge e of row i in edge order:
 *   INJECT:   state[src(i)][post[e]][b] += values[e]   (z += W);
 *   GRADIENT: values[e] += state[src(i)][post[e]][b]   (dW += δ).
 */
function synapsePassJs(mode: typeof INJECT | typeof GRADIENT, flags: Uint8Array, start: number, count: number, trialsPerRow: number,
  firstTrial: number, synapses: SynapseTables, values: FloatArray, state: FloatArray): void {
  const { rowPtr, rowSource, target } = synapses;
  for (let q = 0; q < count; q++) {
    if (!flags[start + q]) continue;
    const i = Math.floor(q / trialsPerRow);
    const trial = firstTrial + q - i * trialsPerRow;
    // The element of (source(i), neuron 0, trial b); edge e's target is target[e] further.
    const base = rowSource[i] + trial;
    for (let e = rowPtr[i], end = rowPtr[i + 1]; e < end; e++) {
      if (mode === INJECT) state[base + target[e]] += values[e];
      else values[e] += state[base + target[e]];
    }
  }
}
