/**
 * NumPy connectome files (issue #19): the .npy/.npz reader against hand-made bytes and against files NumPy itself
 * wrote (where python3 has numpy), a dense .npy matrix per key, a scipy.sparse.save_npz matrix (coo, csr, csc), the
 * export's connectome.npz, a large network, and the validation messages.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { zipSync } from "fflate";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/io/parameters-file.js";
import { loadConnectome } from "../src/io/connectome-file.js";
import { generateConnectome } from "../src/model/connectome.js";
import { decodeNpy, decodeNpz, encodeNpy, encodeNpz, NpyError } from "../src/platform/numpy.js";
import { ensureBuilt, SIM, smallParams, tempDir } from "./helpers/runs.js";
import { bytes, expectFileError, withFiles } from "./helpers/connectome-params.js";

const hasNumpy = spawnSync("python3", ["-c", "import numpy"]).status === 0;
if (!hasNumpy) console.warn("python3 with numpy not found: the checks against files NumPy writes are skipped");

/** A .npy file's bytes with this header text (padded as numpy pads it) and these element bytes. */
function npy(header: string, body: Uint8Array, major = 1): Buffer {
  const prefix = major === 1 ? 10 : 12;
  const padded = header + " ".repeat(63 - ((prefix + header.length) % 64)) + "\n";
  const head = Buffer.alloc(prefix);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(head);
  if (major === 1) head.writeUInt16LE(padded.length, 8);
  else head.writeUInt32LE(padded.length, 8);
  return Buffer.concat([head, Buffer.from(padded, "latin1"), body]);
}

describe("the .npy and .npz reader", () => {
  it("reads the element types numpy writes, C and Fortran order, versions 1 and 2", () => {
    const f4 = decodeNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", Buffer.from(Float32Array.of(1, 2, 3, 4, 5, 0.5).buffer)));
    expect(f4).toEqual({ dtype: "f4", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 0.5) });
    // Fortran order: the bytes hold column after column; read back in row-major order.
    const fortran = decodeNpy(npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", Buffer.from(Float64Array.of(1, 4, 2, 5, 3, 6).buffer), 2));
    expect(Array.from(fortran.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const i8 = decodeNpy(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", Buffer.from(BigInt64Array.of(-2n, 7n, 2n ** 40n).buffer)));
    expect(Array.from(i8.data)).toEqual([-2, 7, 2 ** 40]);
    const u1 = decodeNpy(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", Uint8Array.of(255, 3)));
    expect(u1.data).toEqual(Int32Array.of(255, 3));
    const text = decodeNpy(npy("{'descr': '|S3', 'fortran_order': False, 'shape': (), }", Buffer.from("coo")));
    expect(text.text).toEqual(["coo"]);
  });

  it("refuses what it cannot read exactly, saying why", () => {
    const bad = (header: string, body = Buffer.alloc(8)) => () => decodeNpy(npy(header, body));
    expect(bad("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }")).toThrow(/big-endian dtype '>f4' is not supported/);
    expect(bad("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }")).toThrow(/dtype '<c8' is not supported/);
    expect(bad("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }")).toThrow(/structured arrays/);
    expect(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }")).toThrow(/8 bytes of data for shape \(4\) of <f4: need 16/);
    expect(bad("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", Buffer.from(BigInt64Array.of(2n ** 60n).buffer))).toThrow(/too large to read exactly/);
    expect(() => decodeNpy(Buffer.from("PK\x03\x04 a zip"))).toThrow(NpyError);
    expect(() => decodeNpz(Buffer.from("not a zip at all"))).toThrow(/not a readable \.npz \(zip\) file/);
  });

  it("writes what it reads, stored or deflated", () => {
    const arrays = { a: Int32Array.of(1, -2, 3), w: Float32Array.of(0.25, 3.5) };
    expect(decodeNpz(encodeNpz(arrays))).toEqual({ a: { dtype: "i4", shape: [3], data: arrays.a }, w: { dtype: "f4", shape: [2], data: arrays.w } });
    const deflated = zipSync({ "a.npy": encodeNpy(arrays.a) }, { level: 9 });
    expect(decodeNpz(deflated).a.data).toEqual(arrays.a);
    // The header is padded so that the elements start at a multiple of 64 bytes, as numpy writes it.
    expect((encodeNpy(arrays.w).length - 8) % 64).toBe(0);
  });

  it.skipIf(!hasNumpy)("reads what NumPy writes (save, savez, savez_compressed, Fortran order, int64) and NumPy reads what it writes", () => {
    const dir = tempDir("snn-npy-");
    const script = `
import numpy as np
np.save("${dir}/m.npy", np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3) / 4))
np.savez_compressed("${dir}/z.npz", ids=np.array([3, -1, 2**33]), flags=np.array([True, False]), w=np.float32([0.1, 7]))
`;
    execFileSync("python3", ["-c", script]);
    expect(Array.from(decodeNpy(readFileSync(join(dir, "m.npy"))).data)).toEqual([0, 0.25, 0.5, 0.75, 1, 1.25]);
    const z = decodeNpz(readFileSync(join(dir, "z.npz")));
    expect(Array.from(z.ids.data)).toEqual([3, -1, 2 ** 33]);
    expect(Array.from(z.flags.data)).toEqual([1, 0]);
    expect(z.w.data).toEqual(Float32Array.of(0.1, 7));
    writeFileSync(join(dir, "ours.npz"), encodeNpz({ pre: Int32Array.of(4, 5), w: Float32Array.of(0.5, 1e-30) }));
    const back = execFileSync("python3", ["-c", `import numpy as np; z = np.load("${dir}/ours.npz"); print(z["pre"].dtype, z["pre"].tolist(), z["w"].dtype, z["w"].tolist())`], { encoding: "utf8" });
    // tolist() gives the float32 value as a Python float: the same shortest repr as JavaScript's.
    expect(back.trim()).toBe(`int32 [4, 5] float32 [0.5, ${Math.fround(1e-30)}]`);
  });
});

describe("connectomes from NumPy files", () => {
  let dir: string;
  beforeAll(() => {
    ensureBuilt();
    dir = tempDir("snn-connectome-np-");
    // smallParams: 150 recurrent neurons (E first, then I), 60 inputs.
    writeFileSync(join(dir, "neurons.csv"), "neuron,cell_type\n" + Array.from({ length: 150 }, (_, j) => `${j},${j < 120 ? "excitatory" : "inhibitory"}`).join("\n") + "\n");
  });
  const load = (rec: string, ff: string, neurons = "neurons.csv") => loadConnectome(loadConfig(withFiles(dir, { rec, ff, neurons }, "", "np.toml")).config);
  const fails = (re: RegExp, key: string, file: string, rec: string, ff: string, neurons = "neurons.csv") => expectFileError(() => load(rec, ff, neurons), re, key, join(dir, file));
  const dense = (rows: number, cols: number, entries: [number, number, number][], name: string) => {
    const m = new Float32Array(rows * cols);
    for (const [i, j, w] of entries) m[i * cols + j] = w;
    writeFileSync(join(dir, name), encodeNpy(m, [rows, cols]));
  };
  /** A scipy.sparse.save_npz file: format, shape, data and the index arrays of the format. */
  const sparse = (name: string, format: string, arrays: Record<string, Int32Array | Float32Array>, shape: [number, number]) => {
    const formatNpy = Buffer.concat([npy(`{'descr': '|S${format.length}', 'fortran_order': False, 'shape': (), }`, Buffer.from(format))]);
    const entries: Record<string, Uint8Array> = { "format.npy": formatNpy, "shape.npy": encodeNpy(Int32Array.from(shape)) };
    for (const [k, a] of Object.entries(arrays)) entries[`${k}.npy`] = encodeNpy(a);
    writeFileSync(join(dir, name), zipSync(entries, { level: 0 }));
  };

  it("the export's connectome.npz loads the generated network bit-identically, without a neurons file", () => {
    const generatedParams = smallParams(dir);
    execFileSync(process.execPath, [SIM, generatedParams, "--export-connectome", join(dir, "export")], { encoding: "utf8" });
    const generated = generateConnectome(loadConfig(generatedParams).config);
    const fromNpz = load("export/connectome.npz", "export/connectome.npz", "");
    expect(fromNpz.hash).toBe(generated.hash);
    for (const k of ["cellType", "inputType", "assemblyId", "recWeight", "ffWeight"] as const) expect(bytes(fromNpz[k]).equals(bytes(generated[k]))).toBe(true);
    for (const e of ["rec", "ff"] as const) for (const k of ["pre", "post", "rowPtr"] as const) expect(bytes(fromNpz[e][k]).equals(bytes(generated[e][k]))).toBe(true);
  });

  it("a dense .npy matrix per key and a scipy.sparse .npz (coo, csr, csc) give the same network", () => {
    const recEntries: [number, number, number][] = [
      [5, 3, 0.25],
      [1, 7, 2],
      [1, 2, 1.5],
      [149, 0, 0.5],
    ];
    dense(150, 150, recEntries, "rec.npy");
    dense(60, 150, [[0, 1, 0.5], [59, 149, 1]], "ff.npy");
    const fromDense = load("rec.npy", "ff.npy");
    expect(Array.from(fromDense.rec.pre)).toEqual([1, 1, 5, 149]);
    expect(Array.from(fromDense.rec.post)).toEqual([2, 7, 3, 0]);
    expect(Array.from(fromDense.recWeight)).toEqual([1.5, 2, 0.25, 0.5]);
    // The same matrix in scipy's three layouts (COO in file order, not sorted).
    sparse("rec-coo.npz", "coo", { row: Int32Array.of(5, 1, 1, 149), col: Int32Array.of(3, 7, 2, 0), data: Float32Array.of(0.25, 2, 1.5, 0.5) }, [150, 150]);
    const indptr = (perRow: number[]) => Int32Array.from([0, ...perRow.map((_, r) => perRow.slice(0, r + 1).reduce((a, b) => a + b, 0))]);
    const rowCounts = Array.from({ length: 150 }, (_, r) => (r === 1 ? 2 : r === 5 || r === 149 ? 1 : 0));
    sparse("rec-csr.npz", "csr", { indptr: indptr(rowCounts), indices: Int32Array.of(2, 7, 3, 0), data: Float32Array.of(1.5, 2, 0.25, 0.5) }, [150, 150]);
    const colCounts = Array.from({ length: 150 }, (_, c) => (c === 0 || c === 2 || c === 3 || c === 7 ? 1 : 0));
    sparse("rec-csc.npz", "csc", { indptr: indptr(colCounts), indices: Int32Array.of(149, 1, 5, 1), data: Float32Array.of(0.5, 1.5, 0.25, 2) }, [150, 150]);
    for (const file of ["rec-coo.npz", "rec-csr.npz", "rec-csc.npz"]) {
      const c = load(file, "ff.npy");
      expect(c.hash, file).toBe(fromDense.hash);
      expect(Array.from(c.recWeight), file).toEqual(Array.from(fromDense.recWeight));
    }
  });

  it.skipIf(!hasNumpy)("files NumPy writes load: a float64 dense matrix and an int64/float64 sparse COO matrix", () => {
    const script = `
import numpy as np
w = np.zeros((150, 150)); w[1, 2] = 1.5; w[5, 3] = 0.25
np.save("${dir}/np-rec.npy", w)
np.savez_compressed("${dir}/np-ff.npz", format=np.array(b"coo"), shape=np.array([60, 150]), row=np.array([59, 0]), col=np.array([149, 1]), data=np.array([1.0, 0.5]))
`;
    execFileSync("python3", ["-c", script]);
    const c = load("np-rec.npy", "np-ff.npz");
    expect(Array.from(c.rec.pre)).toEqual([1, 5]);
    expect(Array.from(c.recWeight)).toEqual([1.5, 0.25]);
    expect(Array.from(c.ff.pre)).toEqual([0, 59]);
    expect(Array.from(c.ffWeight)).toEqual([0.5, 1]);
  });

  it("validation names the file, the entry and the problem", () => {
    dense(60, 150, [[0, 1, 0.5]], "ff.npy");
    dense(150, 150, [[3, 3, 1]], "self.npy");
    fails(/\[3, 3\]: self-loop 3 → 3/, "recurrent.connectome_file", "self.npy", "self.npy", "ff.npy");
    dense(150, 150, [[2, 4, -1]], "neg.npy");
    fails(/\[2, 4\]: weight -1 is negative/, "recurrent.connectome_file", "neg.npy", "neg.npy", "ff.npy");
    dense(150, 150, [[2, 4, Number.NaN]], "nan.npy");
    fails(/\[2, 4\]: weight NaN is not a finite number/, "recurrent.connectome_file", "nan.npy", "nan.npy", "ff.npy");
    dense(140, 150, [[2, 4, 1]], "short.npy");
    fails(/shape \(140, 150\), expected \(150, 150\) = \(recurrent\.num_neurons, recurrent\.num_neurons\)/, "recurrent.connectome_file", "short.npy", "short.npy", "ff.npy");
    dense(150, 150, [], "zero.npy");
    fails(/empty matrix/, "recurrent.connectome_file", "zero.npy", "zero.npy", "ff.npy");
    sparse("oob.npz", "coo", { row: Int32Array.of(0, 200), col: Int32Array.of(1, 2), data: Float32Array.of(1, 1) }, [150, 150]);
    fails(/entry 1: pre 200 is out of range \(neuron ids 0\.\.149\)/, "recurrent.connectome_file", "oob.npz", "oob.npz", "ff.npy");
    sparse("dup.npz", "coo", { row: Int32Array.of(0, 0), col: Int32Array.of(1, 1), data: Float32Array.of(1, 2) }, [150, 150]);
    fails(/entry 1: duplicate edge 0 → 1 \(first at entry 0\)/, "recurrent.connectome_file", "dup.npz", "dup.npz", "ff.npy");
    sparse("bsr.npz", "bsr", { data: Float32Array.of(1) }, [150, 150]);
    fails(/sparse format "bsr" is not supported/, "recurrent.connectome_file", "bsr.npz", "bsr.npz", "ff.npy");
    writeFileSync(join(dir, "other.npz"), encodeNpz({ weights: Float32Array.of(1) }));
    fails(/neither the arrays of scipy\.sparse\.save_npz .* nor those of snn-sim --export-connectome/, "recurrent.connectome_file", "other.npz", "other.npz", "ff.npy");
    writeFileSync(join(dir, "garbage.npy"), "not numpy");
    fails(/not a \.npy file/, "recurrent.connectome_file", "garbage.npy", "garbage.npy", "ff.npy");
    // A container of the whole network with an edge list for the other key; an edge list without cell types.
    fails(/holds the whole network; point recurrent\.connectome_file and feedforward\.connectome_file both at it/, "feedforward.connectome_file", "ff.npy", "export/connectome.npz", "ff.npy", "");
    expect(() => load("rec-coo.npz", "ff.npy", "")).toThrow(/recurrent\.neurons_file: needed with the edge list/);
  });

  it("loads 50 000 neurons and 5 M synapses from a scipy COO .npz", () => {
    const N = 50_000;
    const perNeuron = 100;
    const m = N * perNeuron;
    const row = new Int32Array(m);
    const col = new Int32Array(m);
    const data = new Float32Array(m);
    for (let k = 0; k < perNeuron; k++)
      for (let i = 0; i < N; i++) {
        const e = k * N + i;
        row[e] = i;
        col[e] = (i + 1 + k * 487) % N;
        data[e] = ((i * 7 + k * 13) % 1000) / 1000 + 0.001;
      }
    sparse("large.npz", "coo", { row, col, data }, [N, N]);
    sparse("large-ff.npz", "coo", { row: Int32Array.from({ length: N }, (_, j) => j % 60), col: Int32Array.from({ length: N }, (_, j) => j), data: new Float32Array(N).fill(1) }, [60, N]);
    writeFileSync(join(dir, "large-neurons.csv"), "neuron,cell_type\n" + Array.from({ length: N }, (_, j) => `${j},${j % 5 === 4 ? "inhibitory" : "excitatory"}`).join("\n") + "\n");
    const params = withFiles(dir, { rec: "large.npz", ff: "large-ff.npz", neurons: "large-neurons.csv" }, "", "large.toml");
    writeFileSync(params, readFileSync(params, "utf8").replace(/^num_neurons = 150$/m, `num_neurons = ${N}`));
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const c = loadConnectome(loadConfig(params).config);
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `connectome files: ${N} neurons, ${c.rec.pre.length} recurrent synapses (${(readFileSync(join(dir, "large.npz")).length / 2 ** 20).toFixed(0)} MiB .npz) loaded in ${seconds.toFixed(1)} s; ` +
        `RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
    );
    expect(c.rec.pre.length).toBe(m);
    expect(c.rec.rowPtr[N]).toBe(m);
    for (let e = 1; e < m; e++) if (c.rec.pre[e] * N + c.rec.post[e] <= c.rec.pre[e - 1] * N + c.rec.post[e - 1]) throw new Error(`edge ${e} out of order`);
    expect(seconds).toBeLessThan(60);
  }, 120_000);
});
