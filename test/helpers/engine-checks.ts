/** Comparisons of engine results shared by the engine tests (tolerance reasoning in engines.test.ts). */
import { expect } from "vitest";
import { EpochResult, EpochTask, StreamState } from "../../src/engine/engine.js";
import { SmallNetwork } from "./small-network.js";

/** max|a − b| / max|b|: the error of a gradient vector relative to its scale. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

/** Largest |a − b| / |b| over the entries with |b| above `floor`·max|b|. */
export function elementwiseRelError(a: ArrayLike<number>, b: ArrayLike<number>, floor: number): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(b[i]));
  let e = 0;
  for (let i = 0; i < b.length; i++) if (Math.abs(b[i]) > floor * m) e = Math.max(e, Math.abs(a[i] - b[i]) / Math.abs(b[i]));
  return e;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

export function task(net: SmallNetwork, epoch: number, initialState: StreamState | null, computeGradient = true, recordActivity = true): EpochTask {
  return { epoch, initialState, recWeight: net.connectome.recWeight, ffWeight: net.connectome.ffWeight, computeGradient, recordActivity };
}

/** Same spikes in every trial (counts and CVs per neuron, the plotted trial spike by spike), close voltages and state. */
export function expectSameEpoch(a: EpochResult, b: EpochResult): void {
  expect(Array.from(a.rates)).toEqual(Array.from(b.rates));
  expect(Array.from(a.cvs)).toEqual(Array.from(b.cvs));
  expect(a.losses.firing_rate).toBe(b.losses.firing_rate);
  expect(a.losses.silent_penalty).toBe(b.losses.silent_penalty);
  expect(a.losses.cv).toBe(b.losses.cv);
  expect(a.losses.van_rossum).toBe(b.losses.van_rossum);
  expect(Math.abs(a.losses.membrane_variance / b.losses.membrane_variance - 1)).toBeLessThan(1e-5);
  expect(Math.abs(a.losses.total / b.losses.total - 1)).toBeLessThan(1e-5);
  // Spike statistics are exact; membrane ratios come from voltages, which agree to float32 precision.
  const spikeStats = (r: EpochResult) => r.stats.map(({ ratioMean: _r, ...rest }) => rest);
  expect(spikeStats(a)).toEqual(spikeStats(b));
  a.stats.forEach((s, k) => expect(Math.abs(s.ratioMean / b.stats[k].ratioMean - 1)).toBeLessThan(1e-5));
  expect(maxRelError(a.ratios, b.ratios)).toBeLessThan(1e-5);
  expect(maxAbsDiff(a.finalState.v, b.finalState.v)).toBeLessThan(1e-4);
  expect(maxRelError(a.finalState.g, b.finalState.g)).toBeLessThan(1e-5);
  if (a.activity && b.activity) {
    expect(Array.from(a.activity.spikePtr)).toEqual(Array.from(b.activity.spikePtr));
    expect(Array.from(a.activity.spikeSteps)).toEqual(Array.from(b.activity.spikeSteps));
    expect(Array.from(a.activity.inputSpikeSteps)).toEqual(Array.from(b.activity.inputSpikeSteps));
    expect(Array.from(a.activity.trialSpikeCounts)).toEqual(Array.from(b.activity.trialSpikeCounts));
    expect(Array.from(a.activity.populationSpikes)).toEqual(Array.from(b.activity.populationSpikes));
    expect(Array.from(a.activity.isiSteps)).toEqual(Array.from(b.activity.isiSteps));
    expect(a.activity.sampleNeuron).toBe(b.activity.sampleNeuron);
    expect(Array.from(a.activity.traceNeurons)).toEqual(Array.from(b.activity.traceNeurons));
    expect(maxAbsDiff(a.activity.sampleVoltage, b.activity.sampleVoltage)).toBeLessThan(1e-4);
    expect(maxAbsDiff(a.activity.traceVoltages, b.activity.traceVoltages)).toBeLessThan(1e-4);
    expect(maxRelError(a.activity.sampleConductance, b.activity.sampleConductance)).toBeLessThan(1e-5);
    expect(maxRelError(a.activity.sampleCurrent, b.activity.sampleCurrent)).toBeLessThan(1e-5);
  }
}

/**
 * Per-edge gradients of one engine against a reference: max-norm relative error, and per-edge relative error for
 * entries above 1e-2·max and 1e-3·max (float32 backprop sums carry ~1e-7·max absolute error, so small entries get a
 * looser bound).
 */
export function expectGradientsAgree(mine: EpochResult, ref: EpochResult, tol: { maxNorm: number; above1e2: number; above1e3: number }): void {
  for (const [a, b] of [
    [mine.recGrad!, ref.recGrad!],
    [mine.ffGrad!, ref.ffGrad!],
  ]) {
    expect(maxRelError(a, b)).toBeLessThan(tol.maxNorm);
    expect(elementwiseRelError(a, b, 1e-2)).toBeLessThan(tol.above1e2);
    expect(elementwiseRelError(a, b, 1e-3)).toBeLessThan(tol.above1e3);
  }
}


/**
 * Central finite differences of the total loss in single weights against `reference`'s adjoint: for each part, 8
 * random edges with a significant gradient (> 1e-3·max) and 2 with none, each weight moved by ±1e-4 relative in
 * `base` (a forward-only task) and the loss difference divided by the float32 step actually taken; the spike train
 * must not change. Each relative error must stay below `tolerance`; returns the worst.
 */
export function expectFiniteDifferences(run: (t: EpochTask) => EpochResult, base: EpochTask, reference: EpochResult, rng: { shuffle(a: unknown[]): void }, tolerance = 1e-5): number {
  let worst = 0;
  for (const which of ["rec", "ff"] as const) {
    const key = which === "rec" ? "recWeight" : "ffWeight";
    const weights = base[key];
    const grad = which === "rec" ? reference.recGrad! : reference.ffGrad!;
    const scale = grad.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
    const significant = Array.from(grad.keys()).filter((e) => Math.abs(grad[e]) > 1e-3 * scale);
    const zero = Array.from(grad.keys()).filter((e) => grad[e] === 0);
    rng.shuffle(significant);
    rng.shuffle(zero);
    for (const e of [...significant.slice(0, 8), ...zero.slice(0, 2)]) {
      const lossAt = (w: number) => {
        const perturbed = Float32Array.from(weights);
        perturbed[e] = w;
        const r = run({ ...base, [key]: perturbed });
        expect(Array.from(r.rates)).toEqual(Array.from(reference.rates));
        return r.losses.total;
      };
      const plus = Math.fround(weights[e] * (1 + 1e-4));
      const minus = Math.fround(weights[e] * (1 - 1e-4));
      const fd = (lossAt(plus) - lossAt(minus)) / (plus - minus);
      if (grad[e] === 0) {
        expect(fd).toBe(0);
      } else {
        const err = Math.abs(fd - grad[e]) / Math.abs(grad[e]);
        worst = Math.max(worst, err);
        expect(err, `${which} edge ${e}: fd ${fd} adjoint ${grad[e]}`).toBeLessThan(tolerance);
      }
    }
  }
  expect(worst).toBeGreaterThan(0);
  return worst;
}
