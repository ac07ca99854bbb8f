// Safetensors encode/decode (https://github.com/huggingface/safetensors):
//   [u64 LE header length N][N bytes UTF-8 JSON header, space-padded][data section]
// Files written here stay readable by the `safetensors` Python package and by plain numpy.
//
// Checksum rule (metadata entry `checksum`, value "sha256:<64 lowercase hex digits>"):
//   sha256 over the whole file exactly as stored, except that the 64 hex digits of the checksum value
//   itself are replaced by 64 ASCII '0' characters. The digits are located as the last occurrence of
//   the byte string `"sha256:<digits>"` inside the header. This covers the data section and the header
//   too (tensor names, dtypes, shapes and the other metadata), so a flipped byte anywhere is caught,
//   and it is reproducible in a few lines of Python (hashlib) without re-serialising any JSON.
import { createHash } from "node:crypto";
import { endianness } from "node:os";

export type DType = "F64" | "F32" | "I32" | "U32" | "U8" | "I64" | "BOOL";

export type TensorData = Float64Array | Float32Array | Int32Array | Uint32Array | Uint8Array | BigInt64Array;

export type Tensor = { dtype: DType; shape: number[]; data: TensorData };

export class SafetensorsError extends Error {
  constructor(
    readonly source: string,
    problem: string,
  ) {
    super(`${source}: ${problem}`);
    this.name = "SafetensorsError";
  }
}

type ArrayCtor = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): TensorData;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

const ARRAY_TYPES: Record<DType, ArrayCtor> = {
  F64: Float64Array,
  F32: Float32Array,
  I32: Int32Array,
  U32: Uint32Array,
  U8: Uint8Array,
  I64: BigInt64Array,
  BOOL: Uint8Array,
};

const METADATA_KEY = "__metadata__";
const CHECKSUM_KEY = "checksum";
const CHECKSUM_PREFIX = "sha256:";
const CHECKSUM_PLACEHOLDER = "0".repeat(64);
const HEADER_ALIGNMENT = 8;
// Same cap as the reference implementation; anything larger is a corrupted length field.
const MAX_HEADER_BYTES = 100_000_000;

// Tensor bytes are copied verbatim from typed arrays, which use host byte order.
if (endianness() !== "LE") {
  throw new Error("safetensors.ts requires a little-endian host");
}

function isDType(value: unknown): value is DType {
  return typeof value === "string" && Object.hasOwn(ARRAY_TYPES, value);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((count, dim) => count * dim, 1);
}

function isValidShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0);
}

function matchesDType(dtype: DType, data: TensorData): boolean {
  // Buffer is a Uint8Array subclass and is fine for U8/BOOL; everything else must be the exact type.
  const expected = ARRAY_TYPES[dtype];
  return expected === Uint8Array ? data instanceof Uint8Array : data.constructor === expected;
}

/**
 * Serialises tensors (in insertion order) and string metadata. The `checksum` metadata entry is always
 * recomputed, so metadata returned by `decodeSafetensors` can be passed straight back in.
 */
export function encodeSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  const chunks: Uint8Array[] = [];
  let dataLength = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name === METADATA_KEY) {
      throw new Error(`tensor name "${METADATA_KEY}" is reserved for metadata`);
    }
    const { dtype, shape, data } = tensor;
    if (!isDType(dtype)) {
      throw new Error(`tensor "${name}": unsupported dtype ${JSON.stringify(dtype)}`);
    }
    if (!isValidShape(shape)) {
      throw new Error(`tensor "${name}": shape ${JSON.stringify(shape)} must be a list of non-negative integers`);
    }
    if (!matchesDType(dtype, data)) {
      throw new Error(`tensor "${name}": dtype ${dtype} needs a ${ARRAY_TYPES[dtype].name}, got ${data.constructor.name}`);
    }
    if (elementCount(shape) !== data.length) {
      throw new Error(
        `tensor "${name}": shape [${shape.join(", ")}] has ${elementCount(shape)} elements but data has ${data.length}`,
      );
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    header[name] = { dtype, shape, data_offsets: [dataLength, dataLength + bytes.length] };
    chunks.push(bytes);
    dataLength += bytes.length;
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") {
      throw new Error(`metadata "${key}": value must be a string, got ${typeof value}`);
    }
  }
  // Checksum goes last so the placeholder is easy to find and the rest of the metadata keeps its order.
  const storedMetadata = { ...metadata };
  delete storedMetadata[CHECKSUM_KEY];
  storedMetadata[CHECKSUM_KEY] = CHECKSUM_PREFIX + CHECKSUM_PLACEHOLDER;
  header[METADATA_KEY] = storedMetadata;

  const json = Buffer.from(JSON.stringify(header), "utf8");
  const headerLength = Math.ceil((8 + json.length) / HEADER_ALIGNMENT) * HEADER_ALIGNMENT - 8;
  const out = Buffer.allocUnsafe(8 + headerLength + dataLength);
  out.writeBigUInt64LE(BigInt(headerLength), 0);
  json.copy(out, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let offset = 8 + headerLength;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }

  const placeholderAt = out.lastIndexOf(`"${CHECKSUM_PREFIX}${CHECKSUM_PLACEHOLDER}"`, 8 + headerLength);
  const digitsAt = placeholderAt + 1 + CHECKSUM_PREFIX.length;
  const digest = createHash("sha256").update(out).digest("hex");
  out.write(digest, digitsAt, "latin1");
  return out;
}

type RawEntry = { name: string; dtype: unknown; shape: unknown; begin: number; end: number };

/**
 * Parses and fully validates a safetensors file. Every problem is reported as a SafetensorsError. With
 * `requireChecksum` (files this project writes: checkpoints, targets) a file without a `checksum` entry is refused, so
 * that damage to the entry's own key cannot switch verification off.
 */
export function decodeSafetensors(
  buf: Buffer,
  source: string,
  o: { requireChecksum?: boolean } = {},
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const fail: (problem: string) => never = (problem) => {
    throw new SafetensorsError(source, problem);
  };

  if (buf.length < 8) {
    fail(`file is too short to be safetensors (${buf.length} bytes, need at least 8)`);
  }
  const declaredHeaderLength = buf.readBigUInt64LE(0);
  if (declaredHeaderLength > BigInt(buf.length - 8) || declaredHeaderLength > BigInt(MAX_HEADER_BYTES)) {
    fail(
      `file is truncated or not safetensors (header length field says ${declaredHeaderLength} bytes, ` +
        `but only ${buf.length - 8} bytes follow it)`,
    );
  }
  const headerLength = Number(declaredHeaderLength);
  const dataStart = 8 + headerLength;

  let headerText = "";
  try {
    headerText = new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(8, dataStart));
  } catch {
    fail("header is not valid UTF-8 (the file is corrupted or not safetensors)");
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    fail(`header is not valid JSON (${(err as Error).message}); the file is corrupted or not safetensors`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header is not a JSON object");
  }
  const headerObject = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const rawMetadata = headerObject[METADATA_KEY];
  if (rawMetadata !== undefined) {
    if (typeof rawMetadata !== "object" || rawMetadata === null || Array.isArray(rawMetadata)) {
      fail(`"${METADATA_KEY}" must be an object of strings`);
    }
    for (const [key, value] of Object.entries(rawMetadata as Record<string, unknown>)) {
      if (typeof value !== "string") {
        fail(`metadata "${key}" must be a string, got ${JSON.stringify(value)}`);
      }
      metadata[key] = value as string;
    }
  }

  const entries: RawEntry[] = [];
  let dataEnd = 0;
  for (const [name, value] of Object.entries(headerObject)) {
    if (name === METADATA_KEY) continue;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      fail(`tensor "${name}": header entry is not an object`);
    }
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(`tensor "${name}": data_offsets ${JSON.stringify(offsets)} must be [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    entries.push({ name, dtype, shape, begin, end });
    dataEnd = Math.max(dataEnd, end);
  }

  // Checked before the checksum: a cut-off file is far more common than bit rot and deserves its own message.
  if (dataStart + dataEnd > buf.length) {
    fail(`file is truncated (header says ${dataStart + dataEnd} bytes, file has ${buf.length})`);
  }

  const checksum = metadata[CHECKSUM_KEY];
  if (checksum !== undefined) {
    verifyChecksum(buf, dataStart, checksum, fail);
  } else if (o.requireChecksum) {
    fail(`has no "${CHECKSUM_KEY}" entry in its metadata (every file this program writes has one): the file is corrupted or not ours`);
  }

  // Sorting by offset also returns the tensors in the order they were written.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const tensors: Record<string, Tensor> = {};
  let expectedBegin = 0;
  for (const { name, dtype, shape, begin, end } of entries) {
    if (!isDType(dtype)) {
      fail(`tensor "${name}": unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ARRAY_TYPES).join(", ")})`);
    }
    if (!isValidShape(shape)) {
      fail(`tensor "${name}": shape ${JSON.stringify(shape)} must be a list of non-negative integers`);
    }
    const ctor = ARRAY_TYPES[dtype as DType];
    const count = elementCount(shape as number[]);
    if (end - begin !== count * ctor.BYTES_PER_ELEMENT) {
      fail(
        `tensor "${name}": data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} ` +
          `shape ${JSON.stringify(shape)} needs ${count * ctor.BYTES_PER_ELEMENT}`,
      );
    }
    if (begin < expectedBegin) {
      fail(`tensor "${name}": data_offsets [${begin}, ${end}] overlap the previous tensor (which ends at ${expectedBegin})`);
    }
    if (begin > expectedBegin) {
      fail(`tensor "${name}": gap of ${begin - expectedBegin} unused bytes before data_offsets [${begin}, ${end}]`);
    }
    expectedBegin = end;
    // A fresh ArrayBuffer per tensor: offsets inside the file need not be aligned for the element type.
    const copy = new ArrayBuffer(end - begin);
    new Uint8Array(copy).set(buf.subarray(dataStart + begin, dataStart + end));
    tensors[name] = { dtype: dtype as DType, shape: shape as number[], data: new ctor(copy, 0, count) };
  }
  if (dataStart + expectedBegin !== buf.length) {
    fail(`${buf.length - dataStart - expectedBegin} unexpected bytes after the last tensor`);
  }
  return { tensors, metadata };
}

function verifyChecksum(buf: Buffer, dataStart: number, checksum: string, fail: (problem: string) => never): void {
  const digits = checksum.slice(CHECKSUM_PREFIX.length);
  if (!checksum.startsWith(CHECKSUM_PREFIX) || !/^[0-9a-f]{64}$/.test(digits)) {
    fail(`checksum entry ${JSON.stringify(checksum)} is malformed (expected "sha256:" and 64 hex digits)`);
  }
  const quoted = buf.lastIndexOf(`"${checksum}"`, dataStart - checksum.length - 2);
  if (quoted < 8) {
    fail("checksum entry is not stored verbatim in the header; the file is corrupted");
  }
  const digitsAt = quoted + 1 + CHECKSUM_PREFIX.length;
  const actual = createHash("sha256")
    .update(buf.subarray(0, digitsAt))
    .update(CHECKSUM_PLACEHOLDER)
    .update(buf.subarray(digitsAt + 64))
    .digest("hex");
  if (actual !== digits) {
    fail(
      `checksum mismatch: the file is corrupted (stored sha256 ${digits}, computed ${actual}; ` +
        `or another tool rewrote it and kept the old "${CHECKSUM_KEY}" entry)`,
    );
  }
}
