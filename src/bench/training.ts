/**
 * Bench sections on training (printed, never asserted):
 *  8. gradient norms per loss term and per chunk on the quickstart network, for the original's settings and the
 *     shipped ones (the reset gate detached, a broader surrogate), each over epochs from steadily firing streams;
 *  9. what the training options cost: a burn-in (forward-only) epoch against a training epoch at default size, and
 *     the coordinator's step under each parameterisation.
 */
import { AdamKernel } from "../model/adam-kernel.js";
import { logWeights, newAdamState, OptimizedParameters, optimizerStep } from "../model/optimizer.js";
import { Config } from "../model/config.js";
import { loadConfig } from "../io/parameters-file.js";
import { Connectome, generateConnectome } from "../model/connectome.js";
import { LossWeights } from "../model/losses.js";
import { NetworkSpec } from "../model/network.js";
import { loadNetworkSpec } from "../io/network-files.js";
import { EpochTask, StreamState } from "../engine/engine.js";
import { SparseCpuEngine } from "../engine/sparse-cpu/sparse-cpu.js";

const TERMS = ["firing_rate", "silent_penalty", "membrane_variance"] as const;

function norm(...parts: ArrayLike<number>[]): number {
  let s = 0;
  for (const p of parts) for (let i = 0; i < p.length; i++) s += p[i] * p[i];
  return Math.sqrt(s);
}

/** Epochs of the network's initial weights, without figure recording. */
function epochTask(connectome: Connectome) {
  return (epoch: number, initialState: StreamState | null, computeGradient: boolean): EpochTask => ({
    epoch,
    initialState,
    recWeight: connectome.recWeight,
    ffWeight: connectome.ffWeight,
    computeGradient,
    recordActivity: false,
  });
}

/** "median [p10, p90] max" of a sample, in 3 significant digits. */
function spread(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))];
  const g = (x: number) => (Number.isFinite(x) ? x.toPrecision(3) : String(x));
  return `${g(q(0.5))} [${g(q(0.1))}, ${g(q(0.9))}] max ${g(s[s.length - 1])}`;
}

/** Gradient norms of `epochs` epochs from streams warmed up for `warm` epochs, with the network's settings changed. */
function gradientNorms(config: Config, settings: { surrgradScale: number; detachReset: boolean }, warm: number, epochs: number) {
  const connectome = generateConnectome(config);
  const base = loadNetworkSpec(config, connectome);
  const spec: NetworkSpec = { ...base, constants: { ...base.constants, surrgradScale: settings.surrgradScale, detachReset: settings.detachReset } };
  const only = (term: (typeof TERMS)[number]): LossWeights => ({ firing_rate: 0, cv: 0, silent_penalty: 0, membrane_variance: 0, van_rossum: 0, [term]: spec.lossWeights[term] });
  const total = new SparseCpuEngine(spec);
  const perTerm = TERMS.map((t) => new SparseCpuEngine({ ...spec, lossWeights: only(t) }));
  const task = epochTask(connectome);
  let state: StreamState | null = null;
  for (let e = 0; e < warm; e++) state = total.runEpochSync(task(e, state, false)).finalState;
  const out = { total: [] as number[], terms: TERMS.map(() => [] as number[]), chunks: Array.from({ length: spec.chunksPerEpoch }, () => [] as number[]) };
  // The backward reports the gradient accumulated so far after each chunk (last chunk first): differences are per chunk.
  let before: Float64Array[] | null = null;
  total.onChunkGradient = (chunk, rec, ff) => {
    const now = [Float64Array.from(rec), Float64Array.from(ff)];
    out.chunks[chunk].push(norm(...now.map((g, p) => (before ? g.map((x, i) => x - before![p][i]) : g))));
    before = chunk === 0 ? null : now;
  };
  for (let e = warm; e < warm + epochs; e++) {
    const r = total.runEpochSync(task(e, state, true));
    out.total.push(norm(r.recGrad!, r.ffGrad!));
    perTerm.forEach((engine, k) => {
      const t = engine.runEpochSync(task(e, state, true));
      out.terms[k].push(norm(t.recGrad!, t.ffGrad!));
    });
    state = r.finalState;
  }
  return out;
}

export function trainingGradients(quickstartFile: string, shipped: Config): void {
  const config = loadConfig(quickstartFile).config;
  const h = shipped.hyperparameters;
  const settings = [
    { name: "original (λ = 100, reset gate in the graph)", surrgradScale: 100, detachReset: false },
    { name: `λ = ${h.surrgrad_scale}, reset gate in the graph`, surrgradScale: h.surrgrad_scale, detachReset: false },
    { name: `shipped (λ = ${h.surrgrad_scale}, detach_reset = ${h.detach_reset})`, surrgradScale: h.surrgrad_scale, detachReset: h.detach_reset },
    { name: "λ = 5, reset gate in the graph", surrgradScale: 5, detachReset: false },
    { name: "λ = 5, detach_reset = true", surrgradScale: 5, detachReset: true },
  ];
  const warm = 20;
  const epochs = 16;
  console.log(`\n8. per-epoch gradient norms (‖∂L/∂w‖, before averaging and clipping), quickstart network with its initial weights,`);
  console.log(`   ${epochs} epochs after ${warm} from rest; median [p10, p90] max:`);
  for (const s of settings) {
    const g = gradientNorms(config, s, warm, epochs);
    console.log(`   ${s.name}`);
    console.log(`     total                ${spread(g.total)}`);
    TERMS.forEach((t, k) => console.log(`     ${t.padEnd(20)} ${spread(g.terms[k])}`));
    g.chunks.forEach((c, k) => console.log(`     chunk ${k} of the epoch   ${spread(c)}`));
  }
}

export function trainingCosts(defaultFile: string): void {
  const config = loadConfig(defaultFile).config;
  const connectome = generateConnectome(config);
  const spec = loadNetworkSpec(config, connectome);
  const engine = new SparseCpuEngine(spec);
  const task = epochTask(connectome);
  let state: StreamState | null = null;
  for (let e = 0; e < 3; e++) state = engine.runEpochSync(task(e, state, false)).finalState;
  const time = (computeGradient: boolean) => {
    const xs: number[] = [];
    for (let e = 0; e < 7; e++) {
      const t = performance.now();
      engine.runEpochSync(task(10 + e, state, computeGradient));
      xs.push((performance.now() - t) / 1000);
    }
    return xs.sort((a, b) => a - b)[3];
  };
  const forward = time(false);
  const training = time(true);
  console.log(`\n9. training options at default size (one core, median of 7 epochs):`);
  console.log(`   burn-in epoch (forward only) ${forward.toFixed(3)} s vs training epoch ${training.toFixed(3)} s: ${(forward / training).toFixed(2)}× the cost`);
  const E = connectome.recWeight.length;
  const F = connectome.ffWeight.length;
  const grads = [Float64Array.from({ length: E }, (_, i) => Math.sin(i) * 1e-3), Float64Array.from({ length: F }, (_, i) => Math.cos(i) * 1e-3)];
  // The coordinator's step less the reduction (optimizerStep, as the trainer takes it: Adam with the SIMD kernel),
  // step after step, median of 9.
  const step = (log: boolean) => {
    const weights = [connectome.recWeight.slice(), connectome.ffWeight.slice()];
    let current: OptimizedParameters = { weights, logWeights: log ? weights.map(logWeights) : null, adam: newAdamState([E, F]) };
    const kernel = AdamKernel.create([E, F]);
    const xs: number[] = [];
    for (let k = 0; k < 9; k++) {
      const g = grads.map((x) => x.slice());
      const t = performance.now();
      const s = optimizerStep(current, g, { learningRate: 1e-3, betas: [0.9, 0.999], eps: 1e-8, maxGradNorm: 1 }, ["recurrent", "feedforward"], "weights", { kernel });
      xs.push((performance.now() - t) / 1000);
      if (s.applied) current = s.next;
    }
    return xs.sort((a, b) => a - b)[4];
  };
  console.log(
    `   coordinator step over ${E + F} weights: parameterisation "linear" (Adam + projection) ${(1000 * step(false)).toFixed(1)} ms, ` +
      `"log" (chain rule + Adam + e^θ) ${(1000 * step(true)).toFixed(1)} ms per update; the workers' epochs are the same in both`,
  );
}
