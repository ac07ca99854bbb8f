import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { CodecError, decodeShuffleDeflate, encodeShuffleDeflate, shuffleFloat32, unshuffleFloat32 } from "../src/platform/shuffle-deflate.js";

/** Bit patterns, so that NaN payloads and -0 count: toEqual on floats would accept a changed NaN. */
const bits = (f: Float32Array) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));

function randomFloats(count: number, seed: number): Float32Array {
  // Random bit patterns cover every exponent, sign and NaN payload, not just the values a simulation produces.
  const u = new Uint32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    u[i] = x >>> 0;
  }
  return new Float32Array(u.buffer);
}

const SPECIAL_BITS = new Uint32Array([
  0x00000000, // 0
  0x80000000, // -0
  0x7fc00000, // NaN
  0xffc00001, // negative NaN with a payload
  0x7f800001, // signalling NaN
  0x7f800000, // Infinity
  0xff800000, // -Infinity
  0x00000001, // smallest subnormal
  0x807fffff, // largest negative subnormal
  0x00800000, // smallest normal
  0x7f7fffff, // largest finite
  0x3f800000, // 1
]);

describe("shuffleFloat32 / unshuffleFloat32", () => {
  it("puts byte k of every float into plane k, and back", () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const shuffled = shuffleFloat32(new Float32Array(bytes.buffer));
    expect(Array.from(shuffled)).toEqual([1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12]);
    expect(Array.from(new Uint8Array(unshuffleFloat32(shuffled).buffer))).toEqual(Array.from(bytes));
  });

  it("reads a float view at any offset and rejects a length that is not whole floats", () => {
    const buffer = new Float32Array([7, 1.5, -2, 3]);
    expect(Array.from(unshuffleFloat32(shuffleFloat32(buffer.subarray(1, 3))))).toEqual([1.5, -2]);
    expect(() => unshuffleFloat32(new Uint8Array(6))).toThrow(/not a whole number of 4-byte floats/);
  });

  it("matches numpy's reshape(4, -1).T decoding of the planes, which the README shows", () => {
    const f = new Float32Array([1.5, -2, 3e-40]);
    const shuffled = shuffleFloat32(f);
    const n = f.length;
    const rebuilt = new Uint8Array(4 * n);
    for (let i = 0; i < n; i++) for (let k = 0; k < 4; k++) rebuilt[4 * i + k] = shuffled[k * n + i];
    expect(bits(new Float32Array(rebuilt.buffer))).toEqual(bits(f));
  });
});

describe("encodeShuffleDeflate / decodeShuffleDeflate", () => {
  it("round-trips random bit patterns exactly", () => {
    for (const count of [0, 1, 3, 1000, 100_003]) {
      const f = randomFloats(count, count + 11);
      const back = decodeShuffleDeflate(encodeShuffleDeflate(f), count);
      expect(back).toBeInstanceOf(Float32Array);
      expect(back.length).toBe(count);
      expect(bits(back)).toEqual(bits(f));
    }
  });

  it("round-trips 0, -0, NaN payloads, infinities and subnormals exactly", () => {
    // Built from bit patterns: assigning floats could canonicalise the NaNs.
    const f = new Float32Array(Uint32Array.from({ length: SPECIAL_BITS.length * 50 }, (_, i) => SPECIAL_BITS[i % SPECIAL_BITS.length]).buffer);
    expect(bits(decodeShuffleDeflate(encodeShuffleDeflate(f), f.length))).toEqual(bits(f));
  });

  it("encodes a view into a larger buffer by its own elements only", () => {
    const whole = randomFloats(100, 3);
    const view = whole.subarray(10, 20);
    expect(bits(decodeShuffleDeflate(encodeShuffleDeflate(view), 10))).toEqual(bits(view));
  });

  it("is deterministic and compresses zeros and repeated exponents", () => {
    // As in stream states: runs of exact zeros (a third of the values), and values sharing an exponent ([1, 2)) with
    // random mantissas, which no lossless codec can shrink: the ideal is 3 bytes per non-zero value, half the input.
    const bits = new Uint32Array(randomFloats(10_000, 5).buffer);
    const f = Float32Array.from(bits, (u, i) => (i % 300 < 100 ? 0 : 1 + (u >>> 9) / 2 ** 23));
    const a = encodeShuffleDeflate(f);
    expect(Buffer.from(encodeShuffleDeflate(f)).equals(Buffer.from(a))).toBe(true);
    expect(a.length).toBeLessThan(0.55 * f.byteLength);
  });
});

describe("decodeShuffleDeflate reports damaged input", () => {
  const f = randomFloats(5000, 99);
  const good = encodeShuffleDeflate(f);

  function expectCodecError(bytes: Uint8Array, count: number, message: RegExp): void {
    let caught: unknown;
    try {
      decodeShuffleDeflate(bytes, count);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CodecError);
    expect((caught as Error).message).toMatch(message);
  }

  it("flipped bytes (bad header, bad data, bad adler32)", () => {
    for (const at of [0, 1, Math.floor(good.length / 2), good.length - 1]) {
      const bad = good.slice();
      bad[at] ^= 0x5a;
      expectCodecError(bad, f.length, /corrupt or truncated|decodes to/);
    }
  });

  it("truncated", () => {
    expectCodecError(good.subarray(0, good.length - 10), f.length, /corrupt or truncated \(zlib: unexpected end of file\)/);
    expectCodecError(new Uint8Array(0), f.length, /corrupt or truncated/);
  });

  it("bytes after the compressed stream", () => {
    const longer = new Uint8Array(good.length + 3);
    longer.set(good);
    expectCodecError(longer, f.length, /3 unexpected bytes after the compressed data/);
  });

  it("a decoded size other than the declared shape's", () => {
    expectCodecError(good, f.length + 1, /decodes to 20000 bytes but its shape needs 20004/);
    expectCodecError(good, f.length - 1, /decodes to more than the 19996 bytes its shape needs/);
    expectCodecError(good, 0, /decodes to more than the 0 bytes/);
    // Valid zlib whose length is not a whole number of floats.
    expectCodecError(new Uint8Array(deflateSync(Buffer.alloc(7))), 2, /decodes to 7 bytes but its shape needs 8/);
  });

  it("an invalid element count", () => {
    expectCodecError(good, -1, /invalid element count -1/);
    expectCodecError(good, 1.5, /invalid element count 1.5/);
  });
});
