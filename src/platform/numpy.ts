// NumPy's array files, read and written without NumPy: `.npy` (one array) and `.npz` (a zip of `.npy` files, stored
// or deflated, as numpy.savez and numpy.savez_compressed write them; the zip is read with fflate).
//
// .npy (numpy/lib/format.py): the magic "\x93NUMPY", a version byte pair (1.0: header length uint16 LE; 2.0 and 3.0:
// uint32 LE), then a header that is a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces to a multiple of 64 bytes, then the elements. Supported element types: little-endian (or
// byte-order-free) bool, int8..int64, uint8..uint64, float32 and float64; 64-bit integers are read as numbers and must
// be exact (|x| ≤ 2^53). Fortran order is read into C (row-major) order.
import { unzipSync, zipSync } from "fflate";

export type NpyDtype = "b1" | "i1" | "u1" | "i2" | "u2" | "i4" | "u4" | "i8" | "u8" | "f4" | "f8";

/** An array read from a .npy file: C-order elements, widened to a JavaScript-friendly typed array. */
export interface NpyArray {
  /** "S": byte strings (scipy.sparse.save_npz's format entry), in `text`, with `data` empty. */
  dtype: NpyDtype | "S";
  shape: number[];
  /** Int32Array for b1/i1/u1/i2/u2/i4, Float64Array for u4/i8/u8/f8 (exact integers), Float32Array for f4. */
  data: Int32Array | Float32Array | Float64Array;
  text?: string[];
}

/** A file that is not a NumPy array (or not one we read), with what is wrong. */
export class NpyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NpyError";
  }
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
const SIZES: Record<NpyDtype, number> = { b1: 1, i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, i8: 8, u8: 8, f4: 4, f8: 8 };

/** Parses the header dict literal: only the three keys numpy writes, with the value forms it writes. */
function parseHeader(text: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr) throw new NpyError(/'descr'\s*:\s*\[/.test(text) ? "structured arrays (record dtypes) are not supported" : `header without 'descr': ${text.trim()}`);
  if (!fortran || !shape) throw new NpyError(`header without 'fortran_order' or 'shape': ${text.trim()}`);
  const dims = shape[1]
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "")
    .map((d) => (/^\d+L?$/.test(d) ? Number.parseInt(d, 10) : Number.NaN));
  if (dims.some((d) => !Number.isSafeInteger(d))) throw new NpyError(`bad shape (${shape[1]})`);
  return { descr: descr[1], fortran: fortran[1] === "True", shape: dims };
}

/** Reads one .npy file's bytes. */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new NpyError("not a .npy file (no \\x93NUMPY magic)");
  const major = buf[6];
  if (major < 1 || major > 3) throw new NpyError(`.npy format version ${major}.${buf[7]} is not supported (1.0, 2.0, 3.0)`);
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (start + headerLength > buf.length) throw new NpyError("header runs past the end of the file");
  const header = parseHeader(buf.toString(major === 3 ? "utf8" : "latin1", start, start + headerLength));
  const order = header.descr[0];
  const count = header.shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  const strings = /^\|S(\d+)$/.exec(header.descr);
  if (strings) {
    const width = Number(strings[1]);
    if (buf.length - offset < count * width) throw new NpyError(`data cut short for shape (${header.shape.join(", ")}) of ${header.descr}`);
    const text = Array.from({ length: count }, (_, i) => buf.toString("latin1", offset + i * width, offset + (i + 1) * width).replace(/\0+$/, ""));
    return { dtype: "S", shape: header.shape, data: new Int32Array(0), text };
  }
  const dtype = header.descr.slice(1) as NpyDtype;
  if (!(dtype in SIZES) || !["<", "|", "="].includes(order)) {
    throw new NpyError(
      order === ">" ? `big-endian dtype '${header.descr}' is not supported (save with .astype('<${dtype}'))` : `dtype '${header.descr}' is not supported (bool, int, uint, float32, float64)`,
    );
  }
  const byteLength = count * SIZES[dtype];
  if (buf.length - offset < byteLength) throw new NpyError(`${buf.length - offset} bytes of data for shape (${header.shape.join(", ")}) of ${header.descr}: need ${byteLength}`);
  // A copy: the elements may sit at any offset of the file (or of the zip entry).
  const raw = buf.subarray(offset, offset + byteLength);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let data: NpyArray["data"];
  switch (dtype) {
    case "f4": {
      data = new Float32Array(count);
      new Uint8Array(data.buffer).set(raw);
      break;
    }
    case "f8": {
      data = new Float64Array(count);
      new Uint8Array(data.buffer).set(raw);
      break;
    }
    case "i8":
    case "u8": {
      data = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const v = dtype === "i8" ? view.getBigInt64(i * 8, true) : view.getBigUint64(i * 8, true);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new NpyError(`element ${i} = ${v} is too large to read exactly`);
        data[i] = Number(v);
      }
      break;
    }
    case "u4": {
      data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getUint32(i * 4, true);
      break;
    }
    default: {
      const read = { b1: (i: number) => view.getUint8(i), i1: (i: number) => view.getInt8(i), u1: (i: number) => view.getUint8(i), i2: (i: number) => view.getInt16(i * 2, true), u2: (i: number) => view.getUint16(i * 2, true), i4: (i: number) => view.getInt32(i * 4, true) }[dtype];
      data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = read(i);
    }
  }
  if (header.fortran && header.shape.length > 1) data = toRowMajor(data, header.shape);
  return { dtype, shape: header.shape, data };
}

/** Fortran (column-major) elements into C (row-major) order. */
function toRowMajor<A extends NpyArray["data"]>(data: A, shape: number[]): A {
  const out = new (data.constructor as new (n: number) => A)(data.length);
  const n = shape.length;
  const index = new Array<number>(n).fill(0);
  // Walk the elements in Fortran order (first index fastest), writing each at its row-major position.
  for (let f = 0; f < data.length; f++) {
    let c = 0;
    for (let d = 0; d < n; d++) c = c * shape[d] + index[d];
    out[c] = data[f];
    for (let d = 0; d < n && ++index[d] === shape[d]; d++) index[d] = 0;
  }
  return out;
}

/** The arrays of a .npz file by name (the ".npy" suffix dropped). */
export function decodeNpz(bytes: Uint8Array): Record<string, NpyArray> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new NpyError(`not a readable .npz (zip) file: ${(e as Error).message}`);
  }
  const out: Record<string, NpyArray> = {};
  for (const [name, entry] of Object.entries(entries)) {
    if (!name.endsWith(".npy")) continue;
    try {
      out[name.slice(0, -4)] = decodeNpy(entry);
    } catch (e) {
      throw new NpyError(`${name}: ${(e as Error).message}`);
    }
  }
  return out;
}

/** One array as .npy bytes (version 1.0, C order, little-endian), as numpy.save writes it. */
export function encodeNpy(data: Int32Array | Float32Array, shape: number[] = [data.length]): Uint8Array {
  const descr = data instanceof Int32Array ? "<i4" : "<f4";
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  // Padded with spaces and a newline so that the data starts at a multiple of 64 bytes.
  header += " ".repeat(64 - ((10 + header.length + 1) % 64 || 64)) + "\n";
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, "latin1"), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Arrays as one .npz (stored, not compressed, as numpy.savez writes them). */
export function encodeNpz(arrays: Record<string, Int32Array | Float32Array>): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(arrays).map(([name, a]) => [`${name}.npy`, encodeNpy(a)])), { level: 0 });
}
