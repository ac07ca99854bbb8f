/**
 * sparse-cpu engine: event-driven CSR forward and a hand-written adjoint (MODEL.md 2.4 and 3).
 *
 * Internal layout is neuron-major with the trial index innermost ([j][b], [t][j][b], [j][c][l][b]) so that the
 * backward sparse product loads each synapse once and updates all trials from one cache line.
 * All buffers are allocated once per engine; nothing is allocated per time step.
 *
 * Forward, per step t (MODEL.md 2.4):  s = H(v − θ);  I_l = G_l (v − E_l);  ṽ = E_L + (v − E_L)β − ΣI·dt/C;
 *   v' = ṽ(1 − s) + U_reset·s;  g ← α g + gs·z,  z_src[j] = Σ_i∈src s_i W_ij.
 * Backward, with a_v = dL/dv_{t+1}, a_g = dL/dg_{t+1} (reset to 0 at chunk ends: truncated BPTT):
 *   dṽ = a_v(1 − s);  ds = −ṽ a_v + ∂L/∂s + Σ_j W_ij δ_src(i)[j];  δ_src[j] = Σ_l∈src gs_l (a_g[1,l] − a_g[0,l]);
 *   a_g(t) = α a_g + dG,  dG_l = −dṽ·dt/C·(v − E_l);  a_v(t) = dṽ(β − dt/C·ΣG) + ds·σ'(v − θ);
 *   dW_ij += s_i δ_src(i)[j]   (only rows of neurons that spiked).
 */
import { InputSpikes, poissonInputs } from "../shared/inputs.js";
import { NetworkSpec } from "../shared/network.js";
import { Engine, EpochResult, EpochTask, epochSteps, StreamState } from "./engine.js";
import { ActivityLayout, extractTrialActivity, summarizeEpoch } from "./epoch-summary.js";
import { KernelKind, RowDots } from "./kernels/adjoint.js";

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

export class SparseCpuEngine implements Engine {
  readonly kind = "sparse-cpu" as const;
  /** Which implementation of the adjoint's sparse product runs ("wasm" unless WebAssembly SIMD is unavailable). */
  get kernel(): KernelKind {
    return this.rowDots.kind;
  }
  private readonly N: number;
  private readonly B: number;
  private readonly S: number;
  private readonly T: number;
  private readonly inputs: InputSpikes;
  // Per-step history for the adjoint: v_t for t = 0..T, G_t and s_t for t = 0..T−1.
  private readonly vHist: FloatArray;
  private readonly gHist: FloatArray;
  private readonly sHist: Uint8Array;
  private readonly g: FloatArray;
  private readonly z: Float64Array;
  // Adjoint state.
  private readonly av: Float64Array;
  private readonly ag: Float64Array;
  private readonly delta: Float64Array;
  private readonly ds: Float64Array;
  private readonly rowDots: RowDots;
  private readonly recGrad: Float64Array;
  private readonly ffGrad: Float64Array;
  private readonly srcOfSlot: Int32Array;
  // Per-trial scratch rows reused by every neuron.
  private readonly scratchA: Float64Array;
  private readonly scratchB: Float64Array;
  private readonly scratchC: Float64Array;

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
    const F = precision === "float64" ? Float64Array : Float32Array;
    const NB = this.N * this.B;
    this.inputs = { trials: this.B, steps: this.T, numInputs: c.numInputs, data: new Uint8Array(this.B * this.T * c.numInputs) };
    this.vHist = new F((this.T + 1) * NB);
    this.gHist = new F(this.T * NB * this.S);
    this.sHist = new Uint8Array(this.T * NB);
    this.g = new F(NB * 2 * this.S);
    this.z = new Float64Array(c.numSources * NB);
    this.av = new Float64Array(NB);
    this.ag = new Float64Array(NB * 2 * this.S);
    this.rowDots = new RowDots(spec.rec, c.cellType, c.numSources, this.B, kernel);
    this.delta = this.rowDots.delta;
    this.ds = this.rowDots.ds;
    this.recGrad = new Float64Array(spec.rec.pre.length);
    this.ffGrad = new Float64Array(spec.ff.pre.length);
    this.srcOfSlot = c.slotSource;
    this.scratchA = new Float64Array(this.B);
    this.scratchB = new Float64Array(this.B);
    this.scratchC = new Float64Array(this.B);
  }

  async runEpoch(task: EpochTask): Promise<EpochResult> {
    return this.runEpochSync(task);
  }

  runEpochSync(task: EpochTask): EpochResult {
    const spec = this.spec;
    poissonInputs(spec.seed, task.epoch, this.B, this.T, spec.inputProbability, this.inputs);
    this.loadState(task.initialState);
    for (let t = 0; t < this.T; t++) this.forwardStep(t, task.recWeight, task.ffWeight);
    this.applyPendingInjection();

    const layout = this.activityLayout();
    const summary = summarizeEpoch(spec, layout, task.computeGradient);
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
          (b, t, j) => this.vHist[t * this.N * this.B + j * this.B + b],
          (b, t, j, l) => this.gHist[((t * this.N + j) * this.S + l) * this.B + b],
        )
      : null;
    return {
      epoch: task.epoch,
      losses: summary.losses,
      stats: summary.stats,
      rates: summary.rates,
      cvs: summary.cvs,
      recGrad,
      ffGrad,
      finalState: this.saveState(),
      activity,
    };
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
          spikes[(b * T + t) * N + j] = this.sHist[t * N * B + j * B + b];
          voltages[(b * T + t) * N + j] = this.vHist[(t + 1) * N * B + j * B + b];
        }
    return { spikes, voltages };
  }

  private activityLayout(): ActivityLayout {
    const NB = this.N * this.B;
    return { trials: this.B, steps: this.T, neurons: this.N, sb: 1, st: NB, sj: this.B, spikes: this.sHist, voltages: this.vHist, voltageOffset: NB };
  }

  /** Canonical [b][j] / [b][j][c][l] state into the internal [j][b] / [j][c][l][b] layout. */
  private loadState(state: StreamState | null): void {
    const { N, B, S } = this;
    const c = this.spec.constants;
    this.z.fill(0);
    if (!state) {
      for (let j = 0; j < N; j++) for (let b = 0; b < B; b++) this.vHist[j * B + b] = c.uReset[j];
      this.g.fill(0);
      return;
    }
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < N; j++) {
        this.vHist[j * B + b] = state.v[b * N + j];
        const src = (b * N + j) * 2 * S;
        for (let cl = 0; cl < 2 * S; cl++) this.g[(j * 2 * S + cl) * B + b] = state.g[src + cl];
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
        v[b * N + j] = this.vHist[vT + j * B + b];
        const dst = (b * N + j) * 2 * S;
        for (let cl = 0; cl < 2 * S; cl++) g[dst + cl] = this.g[(j * 2 * S + cl) * B + b];
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
    const { theta, uReset, eL, beta, dtOverC, alphaRise, alphaDecay, gScale, eSyn } = c;
    const srcOfSlot = this.srcOfSlot;
    const g = this.g;
    const z = this.z;
    const vIn = t * NB;
    const vOut = (t + 1) * NB;
    const gH = t * NB * S;
    const vHist = this.vHist;
    const gHist = this.gHist;
    const sHist = this.sHist;

    // Elementwise neuron update, trials innermost: finish g_t with the pending injection, record G_t, accumulate the
    // synaptic current, decay g; then spike and membrane step per trial.
    const isum = this.scratchA;
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

  /** Adds the last step's injection so that g holds g_T, the state the next epoch of the stream starts from. */
  private applyPendingInjection(): void {
    const { N, B, S } = this;
    const NB = N * B;
    const { gScale } = this.spec.constants;
    for (let j = 0; j < N; j++) {
      for (let l = 0; l < S; l++) {
        const zBase = this.srcOfSlot[l] * NB + j * B;
        const r = (j * 2 * S + l) * B;
        const d = (j * 2 * S + S + l) * B;
        for (let b = 0; b < B; b++) {
          const inj = this.z[zBase + b] * gScale[l];
          this.g[r + b] -= inj;
          this.g[d + b] += inj;
        }
      }
    }
  }

  private backward(W: Float32Array, spikeGrad: Float64Array, devCoef: Float64Array, meanCoef: Float64Array, meanV: Float64Array): void {
    const { N, B, S } = this;
    const c = this.spec.constants;
    const NB = N * B;
    const { theta, eL, beta, dtOverC, alphaRise, alphaDecay, gScale, eSyn, sourceSlotStart, sourceSlotCount, numSources } = c;
    const lambda = c.surrgradScale;
    const { vHist, gHist, sHist, av, ag, delta, ds } = this;
    const rec = this.spec.rec;
    const ff = this.spec.ff;
    const M = c.numInputs;
    const inputs = this.inputs.data;
    const T = this.T;
    const chunk = this.spec.chunkSteps;
    this.recGrad.fill(0);
    this.ffGrad.fill(0);
    this.rowDots.setWeights(W);
    const recGrad = this.recGrad;
    const ffGrad = this.ffGrad;

    for (let t = T - 1; t >= 0; t--) {
      const chunkEnd = (t + 1) % chunk === 0;
      const vIn = t * NB;
      const vOut = (t + 1) * NB;
      const gH = t * NB * S;

      // Elementwise adjoint, trials innermost: finish a_v(t+1) with the surrogate term of step t+1 (or reset it at a
      // chunk end, where the state was detached), add the direct loss term, form δ from a_g(t+1), step a_g back.
      const dvt = this.scratchA;
      const isumB = this.scratchB;
      const gsumB = this.scratchC;
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

      // Sparse adjoint of the recurrent injection: ds_i += Σ_j W_ij δ_src(i)[j] for every neuron (all trials per
      // synapse load), and dW_ij += δ_src(i)[j] for the trials in which i spiked.
      const recPtr = rec.rowPtr;
      const recPost = rec.post;
      const cellType = c.cellType;
      this.rowDots.accumulate();
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
}
