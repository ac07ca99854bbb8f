/**
 * The model's step and its adjoint for one neuron in one trial, in plain TypeScript over named records: the readable
 * definition of MODEL.md 2.4 (in the style of Norse's coba_lif_step), and the arithmetic of every engine's kernels.
 * sparse-cpu's JavaScript fallback calls these per element; its WebAssembly kernels (sparse-cpu/kernels/neurons.wat)
 * are optimised copies with the same operations in the same order, tested bit-identical against them; the tfjs
 * engine writes the same step with tensors and lets autodiff find the adjoint (the oracle the tests compare with).
 *
 * Storage precision: an engine stores state (v, g and their adjoints) in float32 or float64; `store` rounds a value
 * to it (Math.fround, or the identity) wherever the engine stores one, and arithmetic in between is float64.
 */

/** Per-neuron constants (MODEL.md 2.2), as the engine stores them. */
export interface CobaLifParameters {
  /** Threshold θ (mV). */
  theta: number;
  uReset: number;
  eL: number;
  /** e^(−dt/τ_mem). */
  beta: number;
  /** dt / C_m (ms/pF). */
  dtOverC: number;
}

/** Per synapse slot l: the rise and decay components' factors and the reversal potential. */
export interface SynapseSlot {
  /** g_bar / P (nS per unit weight): the rise component receives −gScale·z, the decay +gScale·z. */
  gScale: number;
  /** e^(−dt/τ_rise), e^(−dt/τ_decay). */
  alphaRise: number;
  alphaDecay: number;
  eSyn: number;
}

/** The neuron's state before a step: v_t and each slot's rise and decay conductance (before the pending injection). */
export interface CobaLifState {
  v: number;
  gRise: Float64Array;
  gDecay: Float64Array;
}

/** What a step produces (and the adjoint needs). */
export interface CobaLifStepRecord {
  /** s_t = H(v_t − θ), strict >. */
  spike: number;
  /** v_{t+1} = ṽ(1 − s) + U_reset·s. */
  vNext: number;
  /** ṽ = E_L + (v − E_L)β − I·dt/C: the membrane before the reset. */
  vTilde: number;
  /** ΣG_t over slots. */
  gSum: number;
  /** G_t,l = g_rise,l + g_decay,l per slot (for figures). */
  G: Float64Array;
  /**
   * Written when the conductance clamp is on (and needed then): per slot, CLAMPED_RISE | CLAMPED_DECAY for the
   * components the clamp moved to a bound, where its derivative is 0 — all the adjoint needs to know of it.
   */
  clamped?: Uint8Array;
}

/** Bits of CobaLifStepRecord.clamped[l]: the slot's rise (decay) component was outside [−gs_l, 0] ([0, gs_l]) or NaN. */
export const CLAMPED_RISE = 1;
export const CLAMPED_DECAY = 2;

/** x < lo ? lo : x > hi ? hi : x (NaN kept), the conductance clamp; lo, hi are float32 values, so the result is one. */
export function clip(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/**
 * Conductances decay geometrically (AMPA rise by e^-10 per step) and reach subnormal numbers within tens of steps;
 * subnormal arithmetic is ~100× slower on x86. Values below 1e-30 (nS, or their adjoints) cannot affect anything
 * that is recorded, so they are set to zero (NaN is kept).
 */
export function flushTiny(x: number): number {
  return x > -1e-30 && x < 1e-30 ? 0 : x;
}

/**
 * The fast-sigmoid surrogate (Zenke & Ganguli 2018) applied to an upstream gradient: ∂s/∂x·dy = dy / (λ|x| + 1)², with
 * x = v − θ (mV) and λ = surrgrad_scale (1/mV); its peak derivative is 1, at threshold.
 */
export function surrogateGradient(dy: number, x: number, lambda: number): number {
  const den = lambda * Math.abs(x) + 1;
  return dy / (den * den);
}

/**
 * One forward step (MODEL.md 2.4), given the pending injection z_l (Σ_i s_i W_ij of slot l's presynaptic population
 * at the previous step):
 *   g_rise,l −= gs_l z_l;  g_decay,l += gs_l z_l
 *   [clamp] g_rise,l ← clip(g_rise,l, −gs_l, 0);  g_decay,l ← clip(g_decay,l, 0, gs_l)
 *   G_l = g_rise,l + g_decay,l;  I = Σ_l G_l (v − E_l)
 *   ṽ = E_L + (v − E_L)β − I·dt/C;  s = H(v − θ);  v' = s ? U_reset : ṽ  (= ṽ(1 − s) + U_reset·s)
 *   g_c,l ← α_c,l g_c,l   (this step's own spikes are injected into the next one)
 * Updates state.gRise/gDecay to the decayed conductances; state.v is the caller's to replace by out.vNext.
 *
 * The clamp (`clamp`, simulation.conductance_clamp; MODEL-HEAD.md 3 step 7) acts on the slot's summed conductance
 * after all injections into it (every slot has one presynaptic population, so z_l is all of them), with bound
 * gs_l = g_bar_l/N_l, the amplitude one unit-weight spike injects: a slot never holds more than one unit-weight
 * kernel. It is applied where the step completes g_t, i.e. to MODEL.md's g_{t+1} = α g_t + injection, so the state
 * carried between steps and epochs is post-clamp; at step 0 (no pending injection) it leaves a state that was
 * produced under the clamp unchanged. Its derivative is 1 on the closed interval and 0 outside (tf.clipByValue's
 * convention, so a value exactly at a bound passes gradient); out.clamped records where it was 0.
 */
export function cobaLifStep(
  n: CobaLifParameters,
  slots: readonly SynapseSlot[],
  state: CobaLifState,
  injection: ArrayLike<number>,
  store: (x: number) => number,
  out: CobaLifStepRecord,
  clamp = false,
): void {
  const v = state.v;
  let current = 0;
  let gSum = 0;
  for (let l = 0; l < slots.length; l++) {
    const slot = slots[l];
    const inj = injection[l] * slot.gScale;
    let gRise = store(state.gRise[l] - inj);
    let gDecay = store(state.gDecay[l] + inj);
    if (clamp) {
      // Marked where the clip changed the value: outside the closed interval (and NaN, which clip keeps).
      const b = slot.gScale;
      const rise = clip(gRise, -b, 0);
      const decay = clip(gDecay, 0, b);
      out.clamped![l] = (rise !== gRise ? CLAMPED_RISE : 0) | (decay !== gDecay ? CLAMPED_DECAY : 0);
      gRise = rise;
      gDecay = decay;
    }
    const G = gRise + gDecay;
    out.G[l] = G;
    gSum += G;
    current += G * (v - slot.eSyn);
    state.gRise[l] = store(flushTiny(gRise * slot.alphaRise));
    state.gDecay[l] = store(flushTiny(gDecay * slot.alphaDecay));
  }
  const vTilde = n.eL + (v - n.eL) * n.beta - current * n.dtOverC;
  out.spike = v > n.theta ? 1 : 0;
  out.vNext = store(out.spike ? n.uReset : vTilde);
  out.vTilde = store(vTilde);
  out.gSum = store(gSum);
}

/** The loss's gradient with respect to this step's output (losses.ts): ∂L/∂s_t and the membrane-variance terms. */
export interface LossGradient {
  spikeGrad: number;
  /** ∂L/∂V_{t+1} = devCoef·(V_{t+1} − meanV) + meanCoef. */
  devCoef: number;
  meanCoef: number;
  meanV: number;
}

/**
 * The adjoint of one neuron, carried backwards through the steps: a_v = ∂L/∂v_{t+1}, a_g = ∂L/∂g_{t+1} per slot and
 * component, and ds = the complete ∂L/∂s_{t+1} (this step's own terms, the spike's effect on its targets Σ_j W δ_j,
 * and any per-step spike gradient), which the step replaces by its own part of ∂L/∂s_t.
 */
export interface CobaLifAdjoint {
  av: number;
  agRise: Float64Array;
  agDecay: Float64Array;
  ds: number;
}

/** How the step's graph is cut: the surrogate's λ, the reset gate detached, and truncation at a chunk end. */
export interface AdjointOptions {
  surrgradScale: number;
  detachReset: boolean;
  /** The state after this step was detached (a chunk boundary): nothing flows back from later steps. */
  chunkEnd: boolean;
  /** The forward clamped the conductances (cobaLifStep's `clamp`): fwd.clamped says where. */
  conductanceClamp?: boolean;
}

/**
 * The adjoint of cobaLifStep (the reverse of step t), given the forward's v_t (`v`), record and this step's loss
 * gradient. With a = ∂L/∂v_{t+1} (through the next step's surrogate unless cut there, plus the loss's direct term):
 *   a = [not chunk end] (a_v + σ'(v_{t+1} − θ)·ds) + devCoef (v_{t+1} − meanV) + meanCoef
 *   dṽ = a (1 − s);  ds_t = −ṽ a·[gate in the graph] + ∂L/∂s_t
 *   a_v(t) = dṽ (β − dt/C·ΣG);  δ_l = gs_l (a_g,decay,l − a_g,rise,l)   (∂L/∂z_l: the weight gradient's factor)
 *   a_g,c,l(t) = m_c,l (α_c,l a_g,c,l + dG_l),  dG_l = −dṽ·dt/C·(v − E_l)
 * with m_c,l = 0 where this step's clamp bound (fwd.clamped) and 1 otherwise (always 1 without the clamp): a_g is
 * then ∂L/∂ of the pre-clamp conductance, which the previous step's decay and injection produced.
 * Writes δ_l into deltaBySlot[l] (the caller adds it into its presynaptic population's δ, slot by slot).
 */
export function cobaLifAdjointStep(
  n: CobaLifParameters,
  slots: readonly SynapseSlot[],
  v: number,
  fwd: Pick<CobaLifStepRecord, "spike" | "vNext" | "vTilde" | "gSum" | "clamped">,
  loss: LossGradient,
  o: AdjointOptions,
  adj: CobaLifAdjoint,
  store: (x: number) => number,
  deltaBySlot: Float64Array,
): void {
  let a = o.chunkEnd ? 0 : adj.av + surrogateGradient(adj.ds, fwd.vNext - n.theta, o.surrgradScale);
  a += loss.devCoef * (fwd.vNext - loss.meanV) + loss.meanCoef;
  const dvTilde = fwd.spike ? 0 : a;
  adj.ds = store(-fwd.vTilde * a * (o.detachReset ? 0 : 1) + loss.spikeGrad);
  adj.av = store(dvTilde * (n.beta - n.dtOverC * fwd.gSum));
  const dk = -dvTilde * n.dtOverC;
  const clamped = o.conductanceClamp ? fwd.clamped! : null;
  for (let l = 0; l < slots.length; l++) {
    const slot = slots[l];
    deltaBySlot[l] = slot.gScale * (adj.agDecay[l] - adj.agRise[l]);
    const dG = dk * (v - slot.eSyn);
    const agRise = adj.agRise[l] * slot.alphaRise + dG;
    const agDecay = adj.agDecay[l] * slot.alphaDecay + dG;
    adj.agRise[l] = store(flushTiny(clamped && clamped[l] & CLAMPED_RISE ? 0 : agRise));
    adj.agDecay[l] = store(flushTiny(clamped && clamped[l] & CLAMPED_DECAY ? 0 : agDecay));
  }
}
