/**
 * sparse-cpu engine: event-driven CSR forward and a hand-written adjoint (MODEL.md 2.4 and 3).
 *
 * Internal layout is neuron-major with the trial index innermost ([j][b], [t][j][b], [j][c][l][b]) so that the
 * backward sparse product loads each synapse once and updates all trials from one cache line.
 * All buffers are allocated once per engine; nothing is allocated per time step. In float32 (the default) the
 * elementwise passes and the adjoint's sparse product run as WebAssembly kernels (kernels/*.wat) over the same
 * buffers; the JavaScript loops below are their bit-identical fallback and the float64 (test) path.
 *
 * Forward, per step t (MODEL.md 2.4):  s = H(v − θ);  I_l = G_l (v − E_l);  ṽ = E_L + (v − E_L)β − ΣI·dt/C;
 *   v' = ṽ(1 − s) + U_reset·s;  g ← α g + gs·z,  z_src[j] = Σ_i∈src s_i W_ij.
 * Backward, with a_v = dL/dv_{t+1}, a_g = dL/dg_{t+1} (reset to 0 at chunk ends: truncated BPTT):
 *   dṽ = a_v(1 − s);  ds = −ṽ a_v + ∂L/∂s + Σ_j W_ij δ_src(i)[j];  δ_src[j] = Σ_l∈src gs_l (a_g[1,l] − a_g[0,l]);
 *   a_g(t) = α a_g + dG,  dG_l = −dṽ·dt/C·(v − E_l);  a_v(t) = dṽ(β − dt/C·ΣG) + ds·σ'(v − θ);
 *   dW_ij += s_i δ_src(i)[j]   (only rows of neurons that spiked).
 * With a teacher (van Rossum loss), the teacher is simulated first on the same input from the same state, and ∂L/∂s
 * gains a per-(trial, step, neuron) term.
 */
import { InputSpikes, poissonInputs } from "../shared/inputs.js";
import { NetworkSpec } from "../shared/network.js";
import { Engine, EpochResult, EpochTask, epochSteps, StreamState } from "./engine.js";
import { ActivityLayout, epochResult, extractTrialActivity, summarizeEpoch } from "./epoch-summary.js";
import { KernelKind, WasmKernels, Workspace } from "./kernels/workspace.js";

/**
 * Conductances decay geometrically (AMPA rise by e^-10 per step) and reach subnormal numbers within tens of steps;
 * subnormal arithmetic is ~100× slower on x86. Values below 1e-30 (nS, or their adjoints) cannot affect anything
 * that is recorded, so they are set to zero.
 */
function flushTiny(x: number): number {
  return x > -1e-30 && x < 1e-30 ? 0 : x;
}

export type Precision = "float32" | "float64";

type FloatArray = Float32Array | Float64Array;

/** Every buffer of the engine, sized for one network; see Workspace. */
function engineLayout(spec: NetworkSpec, precision: Precision) {
  const c = spec.constants;
  const N = c.numNeurons;
  const B = spec.batchSize;
  const S = c.numSlots;
  const T = epochSteps(spec);
  const G = c.numSources;
  const NB = N * B;
  const F = precision === "float64" ? Float64Array : Float32Array;
  return {
    // Per-step history for the adjoint: v_t for t = 0..T, G_t and s_t for t = 0..T−1.
    vHist: [F, (T + 1) * NB],
    gHist: [F, T * NB * S],
    sHist: [Uint8Array, T * NB],
    g: [F, NB * 2 * S],
    z: [Float64Array, G * NB],
    // Adjoint state.
    av: [Float64Array, NB],
    ag: [Float64Array, NB * 2 * S],
    delta: [Float64Array, G * NB],
    ds: [Float64Array, NB],
    // Loss-gradient coefficients of the epoch (see losses.ts).
    spikeGrad: [Float64Array, N],
    devCoef: [Float64Array, NB],
    meanCoef: [Float64Array, NB],
    meanV: [Float64Array, NB],
    // Per-trial scratch rows reused by every neuron.
    scratchA: [Float64Array, B],
    scratchB: [Float64Array, B],
    scratchC: [Float64Array, B],
    // Constants and structure, copied in once.
    theta: [Float32Array, N],
    uReset: [Float32Array, N],
    eL: [Float32Array, N],
    beta: [Float32Array, N],
    dtOverC: [Float32Array, N],
    gScale: [Float32Array, S],
    alphaRise: [Float32Array, S],
    alphaDecay: [Float32Array, S],
    eSyn: [Float32Array, S],
    slotSource: [Int32Array, S],
    sourceSlotStart: [Int32Array, G],
    sourceSlotCount: [Int32Array, G],
    cellType: [Int32Array, N],
    rowPtr: [Int32Array, N + 1],
    post: [Int32Array, spec.rec.post.length],
    weights: [Float32Array, spec.rec.post.length],
  } as const;
}

type Layout = ReturnType<typeof engineLayout>;
type FloatBuffers = { vHist: FloatArray; gHist: FloatArray; g: FloatArray };

export class SparseCpuEngine implements Engine {
  readonly kind = "sparse-cpu" as const;
  private readonly N: number;
  private readonly B: number;
  private readonly S: number;
  private readonly T: number;
  private readonly inputs: InputSpikes;
  private readonly ws: Workspace<Layout>;
  private readonly buf: Workspace<Layout>["buffers"] & FloatBuffers;
  private readonly wasm: WasmKernels | null;
  // With a teacher: its spikes of the epoch and the van Rossum dL/ds, both in the sHist layout.
  private readonly teacherSpikes: Uint8Array | null;
  private readonly spikeStepGrad: Float64Array | null;
  private readonly recGrad: Float64Array;
  private readonly ffGrad: Float64Array;

  constructor(
    private readonly spec: NetworkSpec,
    precision: Precision = "float32",
    kernel: KernelKind = "wasm",
  ) {
    const c = spec.constants;
    this.N = c.numNeurons;
    this.B = spec.batchSize;
    this.S = c.numSlots;
    this.T = epochSteps(spec);
    this.inputs = { trials: this.B, steps: this.T, numInputs: c.numInputs, data: new Uint8Array(this.B * this.T * c.numInputs) };
    // The compiled kernels store state as float32; the float64 mode (finite-difference tests) runs the JS loops.
    this.ws = new Workspace(engineLayout(spec, precision), precision === "float32" ? kernel : "js");
    this.buf = this.ws.buffers as Workspace<Layout>["buffers"] & FloatBuffers;
    this.wasm = this.ws.kernels;
    const b = this.buf;
    for (const k of ["theta", "uReset", "eL", "beta", "dtOverC", "gScale", "alphaRise", "alphaDecay", "eSyn", "slotSource", "sourceSlotStart", "sourceSlotCount", "cellType"] as const)
      b[k].set(c[k]);
    b.rowPtr.set(spec.rec.rowPtr);
    b.post.set(spec.rec.post);
    this.recGrad = new Float64Array(spec.rec.pre.length);
    this.ffGrad = new Float64Array(spec.ff.pre.length);
    const teacher = spec.teacherRecWeight !== undefined;
    this.teacherSpikes = teacher ? new Uint8Array(this.T * this.N * this.B) : null;
    this.spikeStepGrad = teacher ? new Float64Array(this.T * this.N * this.B) : null;
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
    poissonInputs(spec.seed, task.epoch, this.B, this.T, spec.inputProbability, this.inputs);
    if (this.teacherSpikes) {
      this.simulate(task.initialState, spec.teacherRecWeight!, spec.teacherFfWeight!);
      this.teacherSpikes.set(this.buf.sHist);
    }
    this.simulate(task.initialState, task.recWeight, task.ffWeight);

    const layout = this.activityLayout();
    const summary = summarizeEpoch(spec, layout, task.computeGradient, this.teacherSpikes, this.spikeStepGrad);
    let recGrad: Float32Array | null = null;
    let ffGrad: Float32Array | null = null;
    if (task.computeGradient) {
      this.backward(task.recWeight, summary.spikeGrad!, summary.devCoef!, summary.meanCoef!, summary.meanV);
      recGrad = Float32Array.from(this.recGrad);
      ffGrad = Float32Array.from(this.ffGrad);
    }
    const activity = task.recordActivity
      ? extractTrialActivity(
          spec,
          task.epoch,
          layout,
          this.inputs,
          (b, t, j) => this.buf.vHist[t * this.N * this.B + j * this.B + b],
          (b, t, j, l) => this.buf.gHist[((t * this.N + j) * this.S + l) * this.B + b],
        )
      : null;
    return epochResult(task.epoch, summary, { recGrad, ffGrad }, this.saveState(), activity);
  }

  dispose(): void {}

  /** Spikes and voltages (after each step) of the last epoch in [b][t][j] layout, for exports. */
  recordedActivity(): { spikes: Uint8Array; voltages: Float32Array } {
    const { N, B, T } = this;
    const spikes = new Uint8Array(B * T * N);
    const voltages = new Float32Array(B * T * N);
    for (let t = 0; t < T; t++)
      for (let j = 0; j < N; j++)
        for (let b = 0; b < B; b++) {
          spikes[(b * T + t) * N + j] = this.buf.sHist[t * N * B + j * B + b];
          voltages[(b * T + t) * N + j] = this.buf.vHist[(t + 1) * N * B + j * B + b];
        }
    return { spikes, voltages };
  }

  private activityLayout(): ActivityLayout {
    const NB = this.N * this.B;
    return { trials: this.B, steps: this.T, neurons: this.N, sb: 1, st: NB, sj: this.B, spikes: this.buf.sHist, voltages: this.buf.vHist, voltageOffset: NB };
  }

  /** The epoch forward from `state`, leaving its history in vHist, gHist, sHist and g_T in g. */
  private simulate(state: StreamState | null, W: Float32Array, Wff: Float32Array): void {
    this.loadState(state);
    for (let t = 0; t < this.T; t++) this.forwardStep(t, W, Wff);
    this.applyPendingInjection();
  }

  /** Canonical [b][j] / [b][j][c][l] state into the internal [j][b] / [j][c][l][b] layout. */
  private loadState(state: StreamState | null): void {
    const { N, B, S } = this;
    const c = this.spec.constants;
    this.buf.z.fill(0);
    if (!state) {
      for (let j = 0; j < N; j++) for (let b = 0; b < B; b++) this.buf.vHist[j * B + b] = c.uReset[j];
      this.buf.g.fill(0);
      return;
    }
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < N; j++) {
        this.buf.vHist[j * B + b] = state.v[b * N + j];
        const src = (b * N + j) * 2 * S;
        for (let cl = 0; cl < 2 * S; cl++) this.buf.g[(j * 2 * S + cl) * B + b] = state.g[src + cl];
      }
    }
  }

  private saveState(): StreamState {
    const { N, B, S, T } = this;
    const v = new Float32Array(B * N);
    const g = new Float32Array(B * N * 2 * S);
    const vT = T * N * B;
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < N; j++) {
        v[b * N + j] = this.buf.vHist[vT + j * B + b];
        const dst = (b * N + j) * 2 * S;
        for (let cl = 0; cl < 2 * S; cl++) g[dst + cl] = this.buf.g[(j * 2 * S + cl) * B + b];
      }
    }
    return { v, g };
  }

  /**
   * One forward step. The injection of step t−1 (in z) is applied to g first, completing g_t; the step then
   * decays g in place and scatters this step's spikes into z, which the next step (or applyPendingInjection) adds.
   */
  private forwardStep(t: number, W: Float32Array, Wff: Float32Array): void {
    const { N, B, S } = this;
    const c = this.spec.constants;
    const NB = N * B;
    const z = this.buf.z;
    const vIn = t * NB;
    const sHist = this.buf.sHist;
    if (this.wasm) {
      const p = this.ws.ptr;
      this.wasm.forwardNeurons(N, B, S, p.g, p.z, p.gHist + t * NB * S * 4, p.vHist + vIn * 4, p.vHist + (vIn + NB) * 4, p.sHist + vIn,
        p.theta, p.uReset, p.eL, p.beta, p.dtOverC, p.gScale, p.alphaRise, p.alphaDecay, p.eSyn, p.slotSource);
    } else {
      this.forwardNeuronsJs(t);
    }
    z.fill(0);

    // Event-driven injection: only synapses of neurons (and inputs) that spiked this step are touched.
    const rec = this.spec.rec;
    const recPtr = rec.rowPtr;
    const recPost = rec.post;
    const cellType = c.cellType;
    for (let i = 0; i < N; i++) {
      for (let b = 0; b < B; b++) {
        if (!sHist[vIn + i * B + b]) continue;
        const zBase = cellType[i] * NB + b;
        for (let e = recPtr[i], end = recPtr[i + 1]; e < end; e++) z[zBase + recPost[e] * B] += W[e];
      }
    }
    const ff = this.spec.ff;
    const M = c.numInputs;
    const inputs = this.inputs.data;
    const T = this.T;
    for (let b = 0; b < B; b++) {
      const row = (b * T + t) * M;
      for (let i = 0; i < M; i++) {
        if (!inputs[row + i]) continue;
        const zBase = c.inputSource[i] * NB + b;
        for (let e = ff.rowPtr[i], end = ff.rowPtr[i + 1]; e < end; e++) z[zBase + ff.post[e] * B] += Wff[e];
      }
    }
  }

  /** JavaScript version of kernels/neurons.wat forwardNeurons: the same operations in the same order. */
  private forwardNeuronsJs(t: number): void {
    const { N, B, S } = this;
    const NB = N * B;
    const { theta, uReset, eL, beta, dtOverC, alphaRise, alphaDecay, gScale, eSyn, slotSource: srcOfSlot, g, z, vHist, gHist, sHist } = this.buf;
    const vIn = t * NB;
    const vOut = (t + 1) * NB;
    const gH = t * NB * S;
    // Elementwise neuron update, trials innermost: finish g_t with the pending injection, record G_t, accumulate the
    // synaptic current, decay g; then spike and membrane step per trial.
    const isum = this.buf.scratchA;
    for (let j = 0; j < N; j++) {
      const gBase = j * 2 * S * B;
      const jB = j * B;
      const v0 = vIn + jB;
      isum.fill(0);
      for (let l = 0; l < S; l++) {
        const gs = gScale[l];
        const ar = alphaRise[l];
        const ad = alphaDecay[l];
        const es = eSyn[l];
        const zBase = srcOfSlot[l] * NB + jB;
        const r = gBase + l * B;
        const d = gBase + (S + l) * B;
        const h = gH + (j * S + l) * B;
        for (let b = 0; b < B; b++) {
          const inj = z[zBase + b] * gs;
          g[r + b] -= inj;
          g[d + b] += inj;
          const G = g[r + b] + g[d + b];
          gHist[h + b] = G;
          isum[b] += G * (vHist[v0 + b] - es);
          g[r + b] = flushTiny(g[r + b] * ar);
          g[d + b] = flushTiny(g[d + b] * ad);
        }
      }
      const th = theta[j];
      const ur = uReset[j];
      const el = eL[j];
      const be = beta[j];
      const k = dtOverC[j];
      for (let b = 0; b < B; b++) {
        const v = vHist[v0 + b];
        const spike = v > th ? 1 : 0;
        sHist[v0 + b] = spike;
        vHist[vOut + jB + b] = spike ? ur : el + (v - el) * be - isum[b] * k;
      }
    }
  }

  /** Adds the last step's injection so that g holds g_T, the state the next epoch of the stream starts from. */
  private applyPendingInjection(): void {
    const { N, B, S } = this;
    const NB = N * B;
    const { gScale } = this.spec.constants;
    for (let j = 0; j < N; j++) {
      for (let l = 0; l < S; l++) {
        const zBase = this.buf.slotSource[l] * NB + j * B;
        const r = (j * 2 * S + l) * B;
        const d = (j * 2 * S + S + l) * B;
        for (let b = 0; b < B; b++) {
          const inj = this.buf.z[zBase + b] * gScale[l];
          this.buf.g[r + b] -= inj;
          this.buf.g[d + b] += inj;
        }
      }
    }
  }

  private backward(W: Float32Array, spikeGrad: Float64Array, devCoef: Float64Array, meanCoef: Float64Array, meanV: Float64Array): void {
    const { N, B, S } = this;
    const c = this.spec.constants;
    const NB = N * B;
    const { sHist, delta, ds } = this.buf;
    const spikeStepGrad = this.spikeStepGrad;
    const ff = this.spec.ff;
    const M = c.numInputs;
    const inputs = this.inputs.data;
    const T = this.T;
    const chunk = this.spec.chunkSteps;
    const b0 = this.buf;
    b0.weights.set(W);
    b0.spikeGrad.set(spikeGrad);
    b0.devCoef.set(devCoef);
    b0.meanCoef.set(meanCoef);
    b0.meanV.set(meanV);
    this.recGrad.fill(0);
    this.ffGrad.fill(0);
    const recGrad = this.recGrad;
    const ffGrad = this.ffGrad;
    const p = this.ws.ptr;

    for (let t = T - 1; t >= 0; t--) {
      const chunkEnd = (t + 1) % chunk === 0;
      const vIn = t * NB;
      if (this.wasm) {
        this.wasm.backwardNeurons(N, B, S, c.numSources, chunkEnd ? 1 : 0, c.surrgradScale, p.gHist + vIn * S * 4, p.vHist + vIn * 4, p.vHist + (vIn + NB) * 4,
          p.sHist + vIn, p.av, p.ag, p.ds, p.delta, p.scratchA, p.scratchB, p.scratchC, p.spikeGrad, p.devCoef, p.meanCoef, p.meanV,
          p.theta, p.eL, p.beta, p.dtOverC, p.gScale, p.alphaRise, p.alphaDecay, p.eSyn, p.sourceSlotStart, p.sourceSlotCount);
        this.wasm.rowDots(p.rowPtr, p.post, p.weights, p.delta, p.ds, p.cellType, N, B);
      } else {
        this.backwardNeuronsJs(t, chunkEnd);
        this.rowDotsJs();
      }
      if (spikeStepGrad) for (let k = 0; k < NB; k++) ds[k] += spikeStepGrad[vIn + k];

      // Weight gradient, only for the trials in which presynaptic neuron i spiked: dW_ij += δ_src(i)[j].
      const recPtr = this.spec.rec.rowPtr;
      const recPost = this.spec.rec.post;
      const cellType = c.cellType;
      for (let i = 0; i < N; i++) {
        const dBase = cellType[i] * NB;
        const iB = i * B;
        for (let b = 0; b < B; b++) {
          if (!sHist[vIn + iB + b]) continue;
          for (let e = recPtr[i], end = recPtr[i + 1]; e < end; e++) recGrad[e] += delta[dBase + recPost[e] * B + b];
        }
      }
      for (let b = 0; b < B; b++) {
        const row = (b * T + t) * M;
        for (let i = 0; i < M; i++) {
          if (!inputs[row + i]) continue;
          const dBase = c.inputSource[i] * NB + b;
          for (let e = ff.rowPtr[i], end = ff.rowPtr[i + 1]; e < end; e++) ffGrad[e] += delta[dBase + ff.post[e] * B];
        }
      }
    }
  }

  /** JavaScript version of kernels/neurons.wat backwardNeurons: the same operations in the same order. */
  private backwardNeuronsJs(t: number, chunkEnd: boolean): void {
    const { N, B, S } = this;
    const NB = N * B;
    const { theta, eL, beta, dtOverC, alphaRise, alphaDecay, gScale, eSyn, sourceSlotStart, sourceSlotCount } = this.buf;
    const { vHist, gHist, sHist, av, ag, delta, ds, spikeGrad, devCoef, meanCoef, meanV } = this.buf;
    const numSources = this.spec.constants.numSources;
    const lambda = this.spec.constants.surrgradScale;
    const vIn = t * NB;
    const vOut = (t + 1) * NB;
    const gH = t * NB * S;
    // Elementwise adjoint, trials innermost: finish a_v(t+1) with the surrogate term of step t+1 (or reset it at a
    // chunk end, where the state was detached), add the direct loss term, form δ from a_g(t+1), step a_g back.
    const dvt = this.buf.scratchA;
    const isumB = this.buf.scratchB;
    const gsumB = this.buf.scratchC;
    for (let j = 0; j < N; j++) {
      const jB = j * B;
      const gBase = j * 2 * S * B;
      const th = theta[j];
      const el = eL[j];
      const be = beta[j];
      const k = dtOverC[j];
      const sg = spikeGrad[j];
      if (chunkEnd) ag.fill(0, gBase, gBase + 2 * S * B);
      isumB.fill(0);
      gsumB.fill(0);
      for (let l = 0; l < S; l++) {
        const h = gH + (j * S + l) * B;
        const es = eSyn[l];
        for (let b = 0; b < B; b++) {
          const G = gHist[h + b];
          isumB[b] += G * (vHist[vIn + jB + b] - es);
          gsumB[b] += G;
        }
      }
      for (let b = 0; b < B; b++) {
        const jb = jB + b;
        let a = 0;
        if (!chunkEnd) {
          const den = lambda * Math.abs(vHist[vOut + jb] - th) + 1;
          a = av[jb] + ds[jb] / (den * den);
        }
        const bj = b * N + j;
        a += devCoef[bj] * (vHist[vOut + jb] - meanV[bj]) + meanCoef[bj];
        const v = vHist[vIn + jb];
        const vTilde = el + (v - el) * be - isumB[b] * k;
        const d = sHist[vIn + jb] ? 0 : a;
        dvt[b] = d;
        ds[jb] = -vTilde * a + sg;
        av[jb] = d * (be - k * gsumB[b]);
      }
      for (let src = 0; src < numSources; src++) {
        const out = src * NB + jB;
        for (let b = 0; b < B; b++) delta[out + b] = 0;
        for (let l = sourceSlotStart[src], end = l + sourceSlotCount[src]; l < end; l++) {
          const gs = gScale[l];
          const r = gBase + l * B;
          const dd = gBase + (S + l) * B;
          for (let b = 0; b < B; b++) delta[out + b] += gs * (ag[dd + b] - ag[r + b]);
        }
      }
      for (let l = 0; l < S; l++) {
        const ar = alphaRise[l];
        const ad = alphaDecay[l];
        const es = eSyn[l];
        const r = gBase + l * B;
        const dd = gBase + (S + l) * B;
        for (let b = 0; b < B; b++) {
          const dG = -dvt[b] * k * (vHist[vIn + jB + b] - es);
          ag[r + b] = flushTiny(ag[r + b] * ar + dG);
          ag[dd + b] = flushTiny(ag[dd + b] * ad + dG);
        }
      }
    }

  }

  /**
   * JavaScript version of kernels/adjoint.wat rowDots: ds[i·B + b] += Σ_e W[e]·δ_src(i)[post[e]·B + b] for every
   * neuron and trial, each sum taken over the row's edges in edge order.
   */
  private rowDotsJs(): void {
    const { N, B } = this;
    const NB = N * B;
    const { rowPtr, post, cellType, weights: W, delta, ds } = this.buf;
    for (let i = 0; i < N; i++) {
      const dBase = cellType[i] * NB;
      const start = rowPtr[i];
      const end = rowPtr[i + 1];
      for (let b = 0; b < B; b++) {
        let acc = 0;
        for (let e = start; e < end; e++) acc += W[e] * delta[dBase + post[e] * B + b];
        ds[i * B + b] += acc;
      }
    }
  }

}
