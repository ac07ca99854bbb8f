/**
 * Minimal PNG encoder (8-bit RGBA, filter 0). Used for heatmap images embedded in specs and for the final figures,
 * whose deflate then runs on libuv's thread pool instead of blocking the event loop as resvg's own encoder does.
 */
import { promisify } from "node:util";
import { deflate, deflateSync } from "node:zlib";

const deflateAsync = promisify(deflate);

const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

function crc32(buf: Buffer): number {
  let crc = -1;
  for (let i = 0; i < buf.length; i++) crc = CRC_TABLE[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Scanlines each prefixed with filter type 0: plots are mostly flat colour, which deflate handles well unfiltered. */
function scanlines(width: number, height: number, rgba: Uint8Array): Buffer {
  const stride = width * 4;
  if (rgba.length !== stride * height) throw new Error(`PNG: expected ${stride * height} bytes of RGBA for ${width}×${height}, got ${rgba.length}`);
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return raw;
}

function assemble(width: number, height: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  return Buffer.concat([SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", Buffer.alloc(0))]);
}

/** `level`: zlib's compression level (default 6; the final figures use 1, as encodePng). */
export function encodePngSync(width: number, height: number, rgba: Uint8Array, level?: number): Buffer {
  return assemble(width, height, deflateSync(scanlines(width, height, rgba), level === undefined ? {} : { level }));
}

export async function encodePng(width: number, height: number, rgba: Uint8Array): Promise<Buffer> {
  return assemble(width, height, await deflateAsync(scanlines(width, height, rgba), { level: 1 }));
}
