/**
 * Odour inputs (`[inputs] process = "odours"`, MODEL-HEAD.md 4): the input rates are a softmax mixture of odour
 * patterns whose weights follow an Ornstein–Uhlenbeck process, and the input spikes are Poisson draws from those
 * time-varying rates.
 *
 * - Pattern a (one per assembly) ranks each input type's inputs by u_a[i] = Σ_{j ∈ a, j excitatory} W_FF[i, j], the
 *   connectome's feedforward weight from input i onto the assembly's excitatory cells; the top
 *   n_up = ⌊n·modulation_fraction⌋ inputs of a type with n inputs fire at baseline + modulation, the others at
 *   (n·baseline − n_up·(baseline + modulation)) / (n − n_up), so that every pattern keeps the type's mean at baseline.
 * - The mixture: a ∈ ℝ^P, from rest a = 1 (the uniform mix). Each step emits w_t = softmax(a_t / temperature) and the
 *   rates r_t = Σ_a w_t[a]·pattern_a, then a_{t+1} = a_t − a_t·dt/τ + σ·√(2·dt/τ)·ξ_t, ξ_t ~ N(0, I).
 * - One process per stream, run through the epoch's trials one after another (trial b continues where trial b − 1
 *   ended, as the original hands consecutive segments of one process to the trials of a batch); the state after the
 *   epoch's last trial is part of the stream's state (engine.ts StreamState.ou), carried to the stream's next epoch
 *   and stored in checkpoints.
 * - Every draw is keyed: ξ of trial b of epoch e by (seed, odourProcess, e, b), its spikes by (seed, poissonInput, e, b),
 *   one draw per step (and per input) in order, so that any worker reproduces any epoch from the stream's state.
 */
import { ConfigError, OdourTypeConfig } from "./config.js";
import type { EdgeList } from "./connectome.js";
import type { InputSpikes } from "./inputs.js";
import { Rng, RngPurpose } from "./rng.js";

/** The odour process a worker needs: part of the network (NetworkSpec.odours), so its hash covers it. */
export interface OdourProcess {
  numPatterns: number;
  /** Rate (Hz) of input i under pattern a: patterns[a·M + i]. */
  patterns: Float64Array;
  tau: number;
  sigma: number;
  temperature: number;
}

/**
 * The patterns, one per assembly that has neurons (assembly ids ≥ 0, in increasing order). `cellType` 0 is the
 * excitatory type (MODEL.md). Ties in u_a are broken by input index. Throws a ConfigError naming the key when a type's
 * unmodulated inputs would need a negative rate to keep the mean at baseline.
 */
export function odourPatterns(
  assemblyId: Int32Array,
  cellType: Int32Array,
  inputType: Int32Array,
  ff: EdgeList,
  ffWeight: Float32Array,
  typeNames: string[],
  types: OdourTypeConfig[],
): { numPatterns: number; patterns: Float64Array } {
  const M = inputType.length;
  const ids = [...new Set(Array.from(assemblyId).filter((a) => a >= 0))].sort((x, y) => x - y);
  const slot = new Map(ids.map((a, k) => [a, k]));
  const P = ids.length;
  if (P === 0) throw new ConfigError('inputs.process: "odours" makes one odour pattern per assembly, but no neuron of the connectome is in an assembly (every assembly id is negative)');
  // u[a·M + i]: summed weight from input i onto assembly a's excitatory cells, in edge order.
  const u = new Float64Array(P * M);
  for (let e = 0; e < ff.pre.length; e++) {
    const j = ff.post[e];
    const a = slot.get(assemblyId[j]);
    if (a !== undefined && cellType[j] === 0) u[a * M + ff.pre[e]] += ffWeight[e];
  }
  const patterns = new Float64Array(P * M);
  types.forEach((t, k) => {
    const members = Int32Array.from({ length: M }, (_, i) => i).filter((i) => inputType[i] === k);
    const n = members.length;
    const up = Math.floor(n * t.modulation_fraction);
    const high = t.baseline_rate + t.modulation_rate;
    const low = up < n ? (n * t.baseline_rate - up * high) / (n - up) : t.baseline_rate;
    if (low < 0)
      throw new ConfigError(
        `odours.${typeNames[k]}.modulation_rate: with ${up} of ${n} inputs at baseline_rate + modulation_rate = ${high} Hz the other ${n - up} would need ${low.toFixed(3)} Hz to keep the mean at baseline_rate (${t.baseline_rate} Hz); lower modulation_rate or modulation_fraction`,
      );
    for (let a = 0; a < P; a++) {
      const ranked = Array.from(members).sort((x, y) => u[a * M + y] - u[a * M + x] || x - y);
      ranked.forEach((i, r) => (patterns[a * M + i] = r < up ? high : low));
    }
  });
  return { numPatterns: P, patterns };
}

/** The state of a stream that has not started: the uniform mixture. */
export function restMixture(numPatterns: number): Float64Array {
  return new Float64Array(numPatterns).fill(1);
}

/**
 * A generator of odour-driven input spikes for one network, holding its buffers (no allocation per step). The rates
 * are computed as base[i] + Σ_a w[a]·(pattern_a[i] − base[i]) over the inputs where pattern_a differs from
 * base = min_a pattern_a (equal to Σ_a w[a]·pattern_a since Σ w = 1), which touches only the modulated inputs.
 */
export class OdourInputs {
  private readonly M: number;
  private readonly P: number;
  private readonly base: Float64Array;
  /** Per pattern, the inputs where it differs from base and by how much: CSR rows deltaPtr[a] .. deltaPtr[a+1]. */
  private readonly deltaPtr: Int32Array;
  private readonly deltaInput: Int32Array;
  private readonly delta: Float64Array;
  private readonly w: Float64Array;
  private readonly rate: Float64Array;

  constructor(private readonly proc: OdourProcess) {
    const P = (this.P = proc.numPatterns);
    const M = (this.M = P > 0 ? proc.patterns.length / P : 0);
    this.base = new Float64Array(M).fill(P > 0 ? Infinity : 0);
    for (let a = 0; a < P; a++) for (let i = 0; i < M; i++) this.base[i] = Math.min(this.base[i], proc.patterns[a * M + i]);
    const ptr = [0];
    const inputs: number[] = [];
    const deltas: number[] = [];
    for (let a = 0; a < P; a++) {
      for (let i = 0; i < M; i++) {
        const d = proc.patterns[a * M + i] - this.base[i];
        if (d !== 0) {
          inputs.push(i);
          deltas.push(d);
        }
      }
      ptr.push(inputs.length);
    }
    this.deltaPtr = Int32Array.from(ptr);
    this.deltaInput = Int32Array.from(inputs);
    this.delta = Float64Array.from(deltas);
    this.w = new Float64Array(P);
    this.rate = new Float64Array(M);
  }

  /**
   * The input spikes of global epoch `epoch` into `out`, from the stream's mixture state `a` (advanced in place to the
   * state after the epoch's last trial). `mixture`, when given, receives trial `mixtureTrial`'s weights w_t, [t·P + a].
   */
  draw(seed: number, epoch: number, dt: number, a: Float64Array, out: InputSpikes, mixture?: { trial: number; weights: Float32Array }): void {
    const { M, P, w, rate, base, deltaPtr, deltaInput, delta } = this;
    const { tau, sigma, temperature } = this.proc;
    const decay = dt / tau;
    const noise = sigma * Math.sqrt((2 * dt) / tau);
    const toThreshold = dt * 1e-3 * 0x100000000;
    for (let b = 0; b < out.trials; b++) {
      const xi = Rng.keyed(seed, RngPurpose.odourProcess, epoch, b);
      const u = Rng.keyed(seed, RngPurpose.poissonInput, epoch, b);
      for (let t = 0; t < out.steps; t++) {
        // w = softmax(a / temperature), shifted by the maximum so that exp never overflows.
        let top = -Infinity;
        for (let k = 0; k < P; k++) top = Math.max(top, a[k]);
        let sum = 0;
        for (let k = 0; k < P; k++) sum += w[k] = Math.exp((a[k] - top) / temperature);
        for (let k = 0; k < P; k++) w[k] /= sum;
        if (mixture && b === mixture.trial) mixture.weights.set(w, t * P);
        // r = base + Σ_a w_a·Δ_a over each pattern's modulated inputs.
        rate.set(base);
        for (let k = 0; k < P; k++) for (let q = deltaPtr[k]; q < deltaPtr[k + 1]; q++) rate[deltaInput[q]] += w[k] * delta[q];
        // One 32-bit draw per input: spike when u < p·2^32 with p = r·dt/1000 (p ≥ 1 always spikes).
        const row = (b * out.steps + t) * M;
        for (let i = 0; i < M; i++) out.data[row + i] = u.nextU32() < rate[i] * toThreshold ? 1 : 0;
        // Euler–Maruyama step of the OU process.
        for (let k = 0; k < P; k++) a[k] += -a[k] * decay + noise * xi.normal();
      }
    }
  }
}
