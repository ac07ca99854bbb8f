import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/platform/atomic-file.js";
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type Tensor } from "../src/platform/safetensors.js";

function allDTypes(): Record<string, Tensor> {
  // Odd-sized tensors first so that every later tensor starts at an offset unaligned for its type.
  return {
    u8: { dtype: "U8", shape: [3], data: new Uint8Array([0, 127, 255]) },
    f64: { dtype: "F64", shape: [2, 3], data: new Float64Array([1.5, -0, NaN, Infinity, -1e300, Number.MIN_VALUE]) },
    bool: { dtype: "BOOL", shape: [1], data: new Uint8Array([1]) },
    f32: { dtype: "F32", shape: [2], data: new Float32Array([3.25, -1e-30]) },
    i32: { dtype: "I32", shape: [3], data: new Int32Array([-2147483648, 0, 2147483647]) },
    u32: { dtype: "U32", shape: [2], data: new Uint32Array([0, 4294967295]) },
    i64: { dtype: "I64", shape: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 53n + 1n, 2n ** 63n - 1n]) },
    scalar: { dtype: "F32", shape: [], data: new Float32Array([42]) },
    empty: { dtype: "I32", shape: [0, 4], data: new Int32Array(0) },
  };
}

function expectSafetensorsError(buf: Buffer, fragment: string): void {
  let caught: unknown;
  try {
    decodeSafetensors(buf, "ckpt.safetensors");
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SafetensorsError);
  const message = (caught as Error).message;
  expect(message.startsWith("ckpt.safetensors: ")).toBe(true);
  expect(message).toContain(fragment);
}

/** A file with an arbitrary header, space-padded like the spec asks, and no checksum. */
function rawFile(header: object, data: Buffer = Buffer.alloc(0)): Buffer {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, Buffer.from(json), data]);
}

function headerOf(file: Buffer): { length: number; json: Record<string, unknown> } {
  const length = Number(file.readBigUInt64LE(0));
  return { length, json: JSON.parse(file.subarray(8, 8 + length).toString("utf8")) };
}

describe("encodeSafetensors / decodeSafetensors", () => {
  it("round-trips every dtype, including tensors at unaligned offsets, and keeps their order", () => {
    const tensors = allDTypes();
    const { tensors: decoded } = decodeSafetensors(encodeSafetensors(tensors), "t");
    expect(Object.keys(decoded)).toEqual(Object.keys(tensors));
    for (const [name, tensor] of Object.entries(tensors)) {
      const got = decoded[name]!;
      expect(got.dtype).toBe(tensor.dtype);
      expect(got.shape).toEqual(tensor.shape);
      expect(got.data.constructor).toBe(tensor.data.constructor);
      expect(Array.from(got.data as ArrayLike<unknown>)).toEqual(Array.from(tensor.data as ArrayLike<unknown>));
      expect(got.data.byteOffset % got.data.BYTES_PER_ELEMENT).toBe(0);
    }
    expect(Object.is((decoded.f64!.data as Float64Array)[1], -0)).toBe(true);
  });

  it("lays the data out contiguously in the order written (U8[3] then F64 starts at byte 3)", () => {
    const file = encodeSafetensors(allDTypes());
    const { json } = headerOf(file);
    expect((json.u8 as { data_offsets: number[] }).data_offsets).toEqual([0, 3]);
    expect((json.f64 as { data_offsets: number[] }).data_offsets).toEqual([3, 51]);
    expect((json.bool as { data_offsets: number[] }).data_offsets).toEqual([51, 52]);
  });

  it("preserves metadata and adds a checksum entry", () => {
    const metadata = { epoch: "12", note: "ünïcode ✓", empty: "" };
    const decoded = decodeSafetensors(encodeSafetensors(allDTypes(), metadata), "t");
    expect(decoded.metadata).toMatchObject(metadata);
    expect(decoded.metadata.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("recomputes a checksum passed back in, so decoded metadata can be re-saved", () => {
    const first = decodeSafetensors(encodeSafetensors(allDTypes(), { a: "1" }), "t");
    const again = encodeSafetensors(first.tensors, { ...first.metadata, a: "2" });
    expect(decodeSafetensors(again, "t").metadata.a).toBe("2");
    expect(() => decodeSafetensors(encodeSafetensors({}, { checksum: "bogus" }), "t")).not.toThrow();
  });

  it("pads the header with spaces so the data section starts at a multiple of 8", () => {
    for (const name of ["a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"]) {
      const file = encodeSafetensors({ [name]: { dtype: "U8", shape: [1], data: new Uint8Array([7]) } });
      const { length } = headerOf(file);
      expect((8 + length) % 8).toBe(0);
      const raw = file.subarray(8, 8 + length).toString("latin1");
      expect(raw.trimEnd().endsWith("}")).toBe(true);
      expect(raw.slice(raw.trimEnd().length)).toMatch(/^ *$/);
    }
  });

  it("implements the documented checksum rule: sha256 of the file with the checksum digits zeroed", () => {
    const file = encodeSafetensors({ x: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } }, { k: "v" });
    const { length, json } = headerOf(file);
    const digits = (json.__metadata__ as Record<string, string>).checksum!.slice("sha256:".length);
    const at = file.indexOf(digits);
    expect(at).toBeGreaterThan(8);
    expect(at).toBeLessThan(8 + length);
    const zeroed = Buffer.from(file);
    zeroed.write("0".repeat(64), at, "latin1");
    expect(createHash("sha256").update(zeroed).digest("hex")).toBe(digits);
  });

  it("encodes a known tensor to the bytes the spec prescribes", () => {
    const file = encodeSafetensors({ x: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
    const { length, json } = headerOf(file);
    expect(json.x).toEqual({ dtype: "F32", shape: [2], data_offsets: [0, 8] });
    expect(file.length).toBe(8 + length + 8);
    expect([...file.subarray(8 + length)]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]);
  });

  it("decodes a file built byte by byte from the spec", () => {
    const headerJson = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes
    const file = Buffer.concat([
      Buffer.from([56, 0, 0, 0, 0, 0, 0, 0]), // u64 LE header length: 54 + 2 spaces of padding
      Buffer.from(headerJson + "  ", "latin1"),
      Buffer.from([0x00, 0x00, 0x80, 0x3f]), // 1.0f little-endian
      Buffer.from([0x00, 0x00, 0x00, 0x40]), // 2.0f little-endian
    ]);
    expect(file.length).toBe(72);
    const { tensors, metadata } = decodeSafetensors(file, "hand-built");
    expect(metadata).toEqual({});
    expect(tensors.x!.dtype).toBe("F32");
    expect(tensors.x!.shape).toEqual([2]);
    expect(tensors.x!.data).toEqual(new Float32Array([1, 2]));
  });

  it("decodes from a Buffer that sits at an odd offset inside a larger ArrayBuffer", () => {
    const file = encodeSafetensors(allDTypes());
    const shifted = Buffer.concat([Buffer.from([0xff]), file]).subarray(1);
    expect(shifted.byteOffset % 2).toBe(1);
    const { tensors } = decodeSafetensors(shifted, "t");
    expect(Array.from(tensors.f32!.data as Float32Array)).toEqual([3.25, Math.fround(-1e-30)]);
  });
});

describe("encodeSafetensors rejects bad input", () => {
  it("shape that does not match the data length", () => {
    expect(() => encodeSafetensors({ w: { dtype: "F32", shape: [2, 3], data: new Float32Array(5) } })).toThrow(
      'tensor "w": shape [2, 3] has 6 elements but data has 5',
    );
  });

  it("typed array that does not match the dtype", () => {
    expect(() => encodeSafetensors({ w: { dtype: "F64", shape: [2], data: new Float32Array(2) } })).toThrow(
      'tensor "w": dtype F64 needs a Float64Array, got Float32Array',
    );
  });

  it("negative or fractional dimensions and the reserved name", () => {
    expect(() => encodeSafetensors({ w: { dtype: "U8", shape: [-1], data: new Uint8Array(0) } })).toThrow("shape");
    expect(() => encodeSafetensors({ w: { dtype: "U8", shape: [1.5], data: new Uint8Array(0) } })).toThrow("shape");
    expect(() =>
      encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }),
    ).toThrow("reserved");
  });
});

describe("decodeSafetensors reports damaged files clearly", () => {
  const good = encodeSafetensors(
    { w: { dtype: "F32", shape: [1000], data: new Float32Array(1000).map((_, i) => i) } },
    { epoch: "12" },
  );
  const dataStart = 8 + headerOf(good).length;

  it("accepts the undamaged file", () => {
    expect(decodeSafetensors(good, "ckpt.safetensors").metadata.epoch).toBe("12");
  });

  it("truncated data section", () => {
    const cut = good.subarray(0, good.length - 1000);
    expectSafetensorsError(cut, `file is truncated (header says ${good.length} bytes, file has ${good.length - 1000})`);
  });

  it("truncated inside the header", () => {
    expectSafetensorsError(good.subarray(0, 20), "file is truncated or not safetensors (header length field says");
  });

  it("shorter than the length prefix", () => {
    expectSafetensorsError(good.subarray(0, 5), "file is too short to be safetensors (5 bytes");
    expectSafetensorsError(Buffer.alloc(0), "file is too short");
  });

  it("flipped byte in the data section", () => {
    const bad = Buffer.from(good);
    bad[dataStart + 2001] ^= 0x01;
    expectSafetensorsError(bad, "checksum mismatch: the file is corrupted");
  });

  it("flipped byte in a header value that still parses", () => {
    const bad = Buffer.from(good);
    bad[bad.indexOf('"12"') + 2] ^= 0x01; // "12" -> "13"
    expect(headerOf(bad).json.__metadata__).toMatchObject({ epoch: "13" });
    expectSafetensorsError(bad, "checksum mismatch: the file is corrupted");
  });

  it("flipped byte in the stored checksum digits", () => {
    const bad = Buffer.from(good);
    bad[bad.indexOf("sha256:") + 7] ^= 0x01;
    expectSafetensorsError(bad, "checksum");
  });

  it("flipped byte that breaks the header JSON", () => {
    const bad = Buffer.from(good);
    bad[8] ^= 0x01; // "{" -> "z"
    expectSafetensorsError(bad, "header is not valid JSON");
  });

  it("header length field larger than the file", () => {
    const bad = Buffer.from(good);
    bad.writeBigUInt64LE(2n ** 62n, 0);
    expectSafetensorsError(bad, `header length field says ${2n ** 62n} bytes, but only ${good.length - 8} bytes follow`);
  });

  it("header length field pointing into the middle of the header", () => {
    const bad = Buffer.from(good);
    bad.writeBigUInt64LE(10n, 0);
    expectSafetensorsError(bad, "header is not valid JSON");
  });

  it("unknown dtype", () => {
    const file = rawFile({ h: { dtype: "F16", shape: [2], data_offsets: [0, 4] } }, Buffer.alloc(4));
    expectSafetensorsError(file, 'tensor "h": unknown dtype "F16"');
  });

  it("offsets that do not match the shape", () => {
    const file = rawFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8));
    expectSafetensorsError(file, 'tensor "w": data_offsets [0, 8] span 8 bytes but F32 shape [3] needs 12');
  });

  it("overlapping tensors", () => {
    const file = rawFile(
      {
        a: { dtype: "U8", shape: [4], data_offsets: [0, 4] },
        b: { dtype: "U8", shape: [4], data_offsets: [2, 6] },
      },
      Buffer.alloc(6),
    );
    expectSafetensorsError(file, 'tensor "b": data_offsets [2, 6] overlap the previous tensor');
  });

  it("holes and trailing bytes in the data section", () => {
    const gap = rawFile({ a: { dtype: "U8", shape: [2], data_offsets: [1, 3] } }, Buffer.alloc(3));
    expectSafetensorsError(gap, "gap of 1 unused bytes");
    const trailing = rawFile({ a: { dtype: "U8", shape: [2], data_offsets: [0, 2] } }, Buffer.alloc(5));
    expectSafetensorsError(trailing, "3 unexpected bytes after the last tensor");
  });

  it("malformed offsets, shapes, metadata and header types", () => {
    expectSafetensorsError(rawFile({ a: { dtype: "U8", shape: [1], data_offsets: [1, 0] } }), "data_offsets [1,0]");
    expectSafetensorsError(rawFile({ a: { dtype: "U8", shape: [1] } }, Buffer.alloc(1)), "data_offsets undefined");
    expectSafetensorsError(
      rawFile({ a: { dtype: "U8", shape: "1", data_offsets: [0, 1] } }, Buffer.alloc(1)),
      'tensor "a": shape "1"',
    );
    expectSafetensorsError(rawFile({ __metadata__: { epoch: 12 } }), 'metadata "epoch" must be a string');
    expectSafetensorsError(rawFile({ a: 5 }), 'tensor "a": header entry is not an object');
    expectSafetensorsError(rawFile([]), "header is not a JSON object");
    expectSafetensorsError(rawFile({ __metadata__: { checksum: "md5:abc" } }), "checksum entry");
  });

  it("header bytes that are not UTF-8", () => {
    const bad = rawFile({ __metadata__: { k: "é" } });
    bad[bad.indexOf(Buffer.from("é"))] = 0xff;
    expectSafetensorsError(bad, "header is not valid UTF-8");
  });
});

const canImport = (module: string): boolean =>
  spawnSync("python3", ["-c", `import ${module}`], { stdio: "ignore" }).status === 0;
const hasNumpy = canImport("numpy");
const hasSafetensorsPackage = canImport("safetensors.numpy");

// Reads the file with nothing but the spec: struct, json, hashlib and numpy.frombuffer.
const NUMPY_READER = String.raw`
import hashlib, json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
cs = meta["checksum"]
at = raw.rindex(('"' + cs + '"').encode(), 0, 8 + n) + len('"sha256:')
zeroed = raw[:at] + b"0" * 64 + raw[at + 64:]
dtypes = {"F64": "<f8", "F32": "<f4", "I32": "<i4", "U32": "<u4", "U8": "u1", "I64": "<i8", "BOOL": "?"}
out = {"aligned": (8 + n) % 8 == 0, "checksum_ok": hashlib.sha256(zeroed).hexdigest() == cs[7:], "meta": meta, "tensors": {}}
for name, t in header.items():
    b, e = t["data_offsets"]
    arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    flat = arr.ravel()
    if t["dtype"] == "I64":
        values = [str(int(v)) for v in flat]  # beyond 2**53, so not a JSON number
    elif t["dtype"] in ("F64", "F32"):
        values = [float(v) if np.isfinite(v) else str(float(v)) for v in flat]
    else:
        values = [int(v) for v in flat]
    out["tensors"][name] = {"shape": list(arr.shape), "values": values}
print(json.dumps(out))
`;

// Loads our file with the reference implementation, then writes the tensors back with it.
const REFERENCE_ROUND_TRIP = String.raw`
import sys
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework="np") as f:
    metadata = f.metadata()
del metadata["checksum"]  # it describes our byte layout, which save_file does not reproduce
save_file(tensors, sys.argv[2], metadata=metadata)
`;

describe("interoperability with Python", () => {
  const dir = mkdtempSync(join(tmpdir(), "safetensors-py-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(!hasNumpy)("numpy reads back what we write", () => {
    const path = join(dir, "interop.safetensors");
    const tensors = allDTypes();
    writeSafetensorsFile(path, tensors, { epoch: "7", note: "ü" });
    expect(readSafetensorsFile(path).metadata.epoch).toBe("7");

    const result = spawnSync("python3", ["-c", NUMPY_READER, path], { encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const py = JSON.parse(result.stdout) as {
      aligned: boolean;
      checksum_ok: boolean;
      meta: Record<string, string>;
      tensors: Record<string, { shape: number[]; values: (string | number)[] }>;
    };
    expect(py.aligned).toBe(true);
    expect(py.checksum_ok).toBe(true);
    expect(py.meta).toMatchObject({ epoch: "7", note: "ü" });
    expect(Object.keys(py.tensors)).toEqual(Object.keys(tensors));

    // JSON has no NaN/Infinity, so the script sends Python's spelling of them as strings.
    const asPython = (v: number | bigint): string | number => {
      if (typeof v === "bigint") return v.toString();
      if (Number.isNaN(v)) return "nan";
      if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
      return v;
    };
    for (const [name, tensor] of Object.entries(tensors)) {
      const got = py.tensors[name]!;
      expect(got.shape, name).toEqual(tensor.shape);
      const expected = Array.from(tensor.data as ArrayLike<number | bigint>, asPython);
      expect(got.values, name).toEqual(expected);
    }
  });

  it.skipIf(!hasSafetensorsPackage)("the safetensors Python package reads our files and writes ones we read", () => {
    const ours = join(dir, "ours.safetensors");
    const theirs = join(dir, "theirs.safetensors");
    const tensors = allDTypes();
    writeSafetensorsFile(ours, tensors, { epoch: "7" });
    const result = spawnSync("python3", ["-c", REFERENCE_ROUND_TRIP, ours, theirs], { encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);

    const back = readSafetensorsFile(theirs);
    expect(back.metadata.epoch).toBe("7");
    for (const [name, tensor] of Object.entries(tensors)) {
      const got = back.tensors[name]!;
      expect(got.dtype, name).toBe(tensor.dtype);
      expect(got.shape, name).toEqual(tensor.shape);
      expect(got.data, name).toEqual(tensor.data);
    }
  });
});
