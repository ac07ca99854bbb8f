/**
 * Keyed random numbers. Every random stream is derived from (seed, purpose, indices…) only — never from which worker
 * draws it, in what order, or when — which is what makes results independent of the number of workers.
 * Generator: xoshiro128** (32-bit ops only, fast in JS); keys are mixed into its state with splitmix32.
 */

/** Purposes, so that e.g. the connectome and the Poisson inputs of epoch 0 never share a stream. */
export const RngPurpose = {
  connectome: 1,
  poissonInput: 2,
  figures: 3,
  teacher: 4,
  /** Lognormal noise on a student's initial weights ([student] perturbation), keyed further by population. */
  studentPerturbation: 5,
  /** ξ of a noisy student's weight noise ([student] noise_frac), keyed further by part (0 recurrent, 1 feedforward). */
  weightNoise: 6,
  /** Per-type-pair factors p of [student] weight_perturbation_variance (one stream: recurrent pairs, then feedforward). */
  factorPerturbation: 7,
  /** ξ of the odour mixture's Ornstein–Uhlenbeck process (model/odours.ts), keyed further by (epoch, trial). */
  odourProcess: 8,
} as const;

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal = NaN;

  /** A stream keyed by any number of non-negative integers (each < 2^53). */
  static keyed(...keys: number[]): Rng {
    let h = 0x6a09e667;
    for (const k of keys) {
      h = splitmix32(h ^ (k >>> 0));
      h = splitmix32(h ^ Math.floor(k / 0x100000000));
    }
    return new Rng(h);
  }

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = () => (x = splitmix32(x));
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Unbiased integer in [0, n) (Lemire's rejection on 32 bits). */
  below(n: number): number {
    if (n <= 0 || n > 0x100000000) throw new RangeError(`Rng.below: n=${n} out of range`);
    const threshold = (0x100000000 - n) % n;
    for (;;) {
      const r = this.nextU32();
      if (r >= threshold) return r % n;
    }
  }

  /** Standard normal via Box–Muller (the second value is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spareNormal)) {
      const v = this.spareNormal;
      this.spareNormal = NaN;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * this.uniform();
    this.spareNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle(a: Int32Array | number[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
