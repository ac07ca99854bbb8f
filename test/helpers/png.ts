/** Reading back the figure pipeline's PNGs in tests: decoding, and how much of an image is drawn. */
import { inflateSync } from "node:zlib";
import { expect } from "vitest";

/** Decodes the PNGs the pipeline writes: 8-bit RGBA, not interlaced, any of the five scanline filters. */
export function decodePng(buf: Buffer): { width: number; height: number; rgba: Uint8Array } {
  expect(buf.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))).toBe(true);
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  for (let p = 8; p < buf.length; ) {
    const len = buf.readUInt32BE(p);
    const type = buf.toString("latin1", p + 4, p + 8);
    const data = buf.subarray(p + 8, p + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([data[8], data[9], data[12]]).toEqual([8, 6, 0]); // bit depth, RGBA, no interlace
    } else if (type === "IDAT") idat.push(data);
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    expect(filter).toBeLessThanOrEqual(4);
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= 4 ? out[y * stride + x - 4] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= 4 && y > 0 ? out[(y - 1) * stride + x - 4] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = (line[x] + pred) & 0xff;
    }
  }
  return { width, height, rgba: out };
}

/** Luminance variance and the fraction of pixels that are not white. */
export function inkStats(rgba: Uint8Array): { variance: number; ink: number } {
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  let ink = 0;
  for (let i = 0; i < rgba.length; i += 4) {
    const l = 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
    n++;
    sum += l;
    sumSq += l * l;
    if (l < 250) ink++;
  }
  return { variance: sumSq / n - (sum / n) ** 2, ink: ink / n };
}

/** A figure of the set: a valid PNG of figure size (800–1600 px wide, ≥ 300 px high) that is not blank. */
export function expectFigurePng(buf: Buffer, name: string): void {
  const png = decodePng(buf);
  expect(png.width, name).toBeGreaterThanOrEqual(800);
  expect(png.width, name).toBeLessThanOrEqual(1600);
  expect(png.height, name).toBeGreaterThanOrEqual(300);
  const { variance, ink } = inkStats(png.rgba);
  expect(variance, name).toBeGreaterThan(100);
  expect(ink, name).toBeGreaterThan(0.01);
}
