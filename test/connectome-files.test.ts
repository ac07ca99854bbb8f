/** Connectome files (issue #19): CSV edge lists and neuron files, snn-sim --export-connectome, validation, a large file. */
import { execFileSync } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/io/parameters-file.js";
import { ConfigError } from "../src/model/config.js";
import { generateConnectome } from "../src/model/connectome.js";
import { float32Text, loadConnectome, writeConnectomeFiles } from "../src/io/connectome-file.js";
import { writeSafetensorsFile } from "../src/platform/atomic-file.js";
import { coord, ensureBuilt, metricRows, SIM, smallParams, tempDir } from "./helpers/runs.js";
import { bytes, expectFileError, withFiles } from "./helpers/connectome-params.js";

describe("connectome files: round trip of a generated network", () => {
  let dir: string;
  beforeAll(() => {
    ensureBuilt();
    dir = tempDir("snn-connectome-");
  });

  it("float32 weights are written with the shortest text that reads back exactly", () => {
    const w = Float32Array.from([0.1, 1 / 3, 1e-30, 3.4e38, 0, 7.5, Math.PI]);
    for (const x of w) expect(Math.fround(Number(float32Text(x)))).toBe(x);
    expect(float32Text(Math.fround(0.1))).toBe("0.1");
  });

  it("generated → snn-sim --export-connectome → loaded: same hash and weights, moved files keep the hash, identical training", async () => {
    const generatedParams = smallParams(dir);
    const exportDir = join(dir, "export");
    const out = execFileSync(process.execPath, [SIM, generatedParams, "--export-connectome", exportDir], { encoding: "utf8" });
    expect(out).toMatch(/wrote the connectome/);
    const files = { rec: "export/recurrent.csv", neurons: "export/neurons.csv", ff: "export/feedforward.csv", inputs: "export/inputs.csv" };
    const fileParams = withFiles(dir, files);
    const generated = generateConnectome(loadConfig(generatedParams).config);
    const loaded = loadConnectome(loadConfig(fileParams).config);
    expect(loaded.hash).toBe(generated.hash);
    for (const k of ["cellType", "inputType", "assemblyId", "recWeight", "ffWeight"] as const) expect(bytes(loaded[k]).equals(bytes(generated[k]))).toBe(true);
    for (const e of ["rec", "ff"] as const)
      for (const k of ["pre", "post", "rowPtr"] as const) expect(bytes(loaded[e][k]).equals(bytes(generated[e][k]))).toBe(true);

    // The one-file safetensors export loads the same network.
    const st = withFiles(dir, { rec: "export/connectome.safetensors", neurons: "", ff: "export/connectome.safetensors" }, "", "st.toml");
    const fromSt = loadConnectome(loadConfig(st).config);
    expect(fromSt.hash).toBe(generated.hash);
    for (const k of ["recWeight", "ffWeight", "assemblyId"] as const) expect(bytes(fromSt[k]).equals(bytes(generated[k]))).toBe(true);

    // The same content elsewhere keeps the hash; other content changes it.
    const moved = join(dir, "moved");
    writeConnectomeFiles(moved, loaded, loadConfig(fileParams).config);
    const movedParams = withFiles(dir, { rec: "moved/recurrent.csv", neurons: "moved/neurons.csv", ff: "moved/feedforward.csv", inputs: "moved/inputs.csv" }, "", "moved.toml");
    expect(loadConnectome(loadConfig(movedParams).config).hash).toBe(generated.hash);
    const rec = readFileSync(join(moved, "recurrent.csv"), "utf8").trim().split("\n");
    writeFileSync(join(moved, "recurrent.csv"), rec.slice(0, -1).join("\n") + "\n");
    expect(loadConnectome(loadConfig(movedParams).config).hash).not.toBe(generated.hash);

    // A short training run on the loaded network is the generated one's, update for update.
    const a = join(dir, "run-generated");
    const b = join(dir, "run-files");
    const ra = await coord([generatedParams, "--workers", "1", "--output", a]);
    const rb = await coord([fileParams, "--workers", "1", "--output", b]);
    expect(ra.code, ra.output).toBe(0);
    expect(rb.code, rb.output).toBe(0);
    expect(metricRows(a).length).toBeGreaterThan(2);
    expect(metricRows(b)).toEqual(metricRows(a));

    // A resume whose connectome file changed is refused, naming the file.
    const r = await coord([movedParams, "--workers", "1", "--output", b, "--resume", "auto"]);
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/different network/);
    expect(r.output).toContain(join(moved, "recurrent.csv"));
  }, 80_000);
});

describe("connectome files: validation", () => {
  let dir: string;
  let neurons: string;
  beforeAll(() => {
    dir = tempDir("snn-connectome-bad-");
    // smallParams: 150 recurrent neurons (E first, then I), 60 inputs.
    neurons = "neuron,cell_type\n" + Array.from({ length: 150 }, (_, j) => `${j},${j < 120 ? "excitatory" : "inhibitory"}`).join("\n") + "\n";
    writeFileSync(join(dir, "neurons.csv"), neurons);
    writeFileSync(join(dir, "ff.csv"), "pre,post,weight\n0,1,0.5\n59,149,1\n");
  });

  /** Loads the network with recurrent.csv = `rec` (and the other files as given). */
  const load = (rec: string, o: { neurons?: string; ff?: string; extra?: string } = {}) => {
    writeFileSync(join(dir, "rec.csv"), rec);
    if (o.neurons !== undefined) writeFileSync(join(dir, "n2.csv"), o.neurons);
    if (o.ff !== undefined) writeFileSync(join(dir, "ff2.csv"), o.ff);
    const params = withFiles(dir, { rec: "rec.csv", neurons: o.neurons !== undefined ? "n2.csv" : "neurons.csv", ff: o.ff !== undefined ? "ff2.csv" : "ff.csv" }, o.extra ?? "");
    return loadConnectome(loadConfig(params).config);
  };
  const fails = (re: RegExp, key: string, file: string, rec: string, o: Parameters<typeof load>[1] = {}) => expectFileError(() => load(rec, o), re, key, join(dir, file));

  it("a valid file loads, sorted into (pre, post) order, with or without a header", () => {
    const c = load("5,3,0.25\n1,7,2\n1,2,1.5\n");
    expect(Array.from(c.rec.pre)).toEqual([1, 1, 5]);
    expect(Array.from(c.rec.post)).toEqual([2, 7, 3]);
    expect(Array.from(c.recWeight)).toEqual([1.5, 2, 0.25]);
    expect(c.rec.rowPtr[2] - c.rec.rowPtr[1]).toBe(2);
    expect(Array.from(c.inputType)).toEqual(new Array(60).fill(0));
    expect(load("pre,post,weight\n5,3,0.25\n1,7,2\n1,2,1.5\n").hash).toBe(c.hash);
  });

  it("ids out of range, self-loops, negative and non-finite weights name the line", () => {
    fails(/line 3: post "150" is out of range \(neuron ids 0\.\.149\)/, "recurrent.connectome_file", "rec.csv", "pre,post,weight\n0,1,1\n0,150,1\n");
    fails(/line 1: pre "-1" is out of range/, "recurrent.connectome_file", "rec.csv", "-1,2,1\n");
    fails(/line 2: self-loop 4 → 4/, "recurrent.connectome_file", "rec.csv", "0,1,1\n4,4,1\n");
    fails(/line 2: weight -0\.5 is negative/, "recurrent.connectome_file", "rec.csv", "0,1,1\n0,2,-0.5\n");
    fails(/line 3: weight "NaN" is not a finite number/, "recurrent.connectome_file", "rec.csv", "pre,post,weight\n0,1,1\n0,2,NaN\n");
    fails(/line 2: weight "inf" is not a finite number/, "recurrent.connectome_file", "rec.csv", "0,1,1\n0,2,inf\n");
    fails(/line 2: pre "60" is out of range \(input ids 0\.\.59\)/, "feedforward.connectome_file", "ff2.csv", "0,1,1\n", { ff: "0,0,1\n60,3,1\n" });
  });

  it("duplicate edges: refused under error, summed under sum, the first kept under keep-first", () => {
    const rec = "0,1,1.5\n2,3,1\n0,1,0.25\n";
    fails(/line 3: duplicate edge 0 → 1 \(first at line 1\); set recurrent\.duplicate_edges/, "recurrent.connectome_file", "rec.csv", rec);
    const sum = load(rec, { extra: 'duplicate_edges = "sum"' });
    expect(Array.from(sum.recWeight)).toEqual([1.75, 1]);
    expect(sum.rec.pre.length).toBe(2);
    const first = load(rec, { extra: 'duplicate_edges = "keep-first"' });
    expect(Array.from(first.recWeight)).toEqual([1.5, 1]);
    expect(Array.from(first.rec.post)).toEqual([1, 3]);
  });

  it("an unknown cell type, a size mismatch, an empty file, a bad header", () => {
    const bad = neurons.replace("7,excitatory", "7,granule");
    fails(/line 9: cell_type "granule" is not a cell type of the parameters \(excitatory, inhibitory\)/, "recurrent.neurons_file", "n2.csv", "0,1,1\n", { neurons: bad });
    const short = neurons.split("\n").slice(0, -2).join("\n") + "\n";
    fails(/149 rows, but the parameters say 150/, "recurrent.neurons_file", "n2.csv", "0,1,1\n", { neurons: short });
    fails(/empty file/, "recurrent.connectome_file", "rec.csv", "");
    fails(/empty file/, "recurrent.connectome_file", "rec.csv", "pre,post,weight\n");
    fails(/empty file/, "recurrent.neurons_file", "n2.csv", "0,1,1\n", { neurons: "\n" });
    fails(/line 1: bad header "source,target,weight"/, "recurrent.connectome_file", "rec.csv", "source,target,weight\n0,1,1\n");
    fails(/line 1: bad header "pre;post;weight"/, "recurrent.connectome_file", "rec.csv", "pre;post;weight\n0,1,1\n");
    fails(/line 1: bad header "id,type"/, "recurrent.neurons_file", "n2.csv", "0,1,1\n", { neurons: "id,type\n0,excitatory\n" });
    fails(/line 2: expected 3 values/, "recurrent.connectome_file", "rec.csv", "0,1,1\n0,2\n");
  });

  it("a safetensors connectome is checked the same way, its edges named by index", () => {
    const i32 = (a: number[]) => ({ dtype: "I32" as const, shape: [a.length], data: Int32Array.from(a) });
    const f32 = (a: number[]) => ({ dtype: "F32" as const, shape: [a.length], data: Float32Array.from(a) });
    const cellType = Array.from({ length: 150 }, (_, j) => (j < 120 ? 0 : 1));
    const write = (recPost: number[], types = cellType) =>
      writeSafetensorsFile(join(dir, "c.safetensors"), { rec_pre: i32([0, 3]), rec_post: i32(recPost), rec_weight: f32([1, 2]), ff_pre: i32([0]), ff_post: i32([1]), ff_weight: f32([1]), cell_type: i32(types) });
    const params = () => {
      const text = readFileSync(smallParams(dir), "utf8")
        .replace(/^num_assemblies = \d+$/m, (m) => `${m}\nconnectome_file = "c.safetensors"`)
        .replace(/^firing_rate = .*$/m, (m) => `${m}\nconnectome_file = "c.safetensors"`);
      writeFileSync(join(dir, "st.toml"), text);
      return loadConfig(join(dir, "st.toml")).config;
    };
    write([1, 2]);
    expect(Array.from(loadConnectome(params()).rec.post)).toEqual([1, 2]);
    write([1, 3]);
    expect(() => loadConnectome(params())).toThrow(`recurrent.connectome_file "${join(dir, "c.safetensors")}": edge 1: self-loop 3 → 3`);
    write([1, 2], cellType.map((t, j) => (j === 5 ? 2 : t)));
    expect(() => loadConnectome(params())).toThrow(/cell_type\[5\] = 2 is not a cell type of the parameters/);
  });

  it("dt is checked against the file's own weights, neuron by neuron, naming the neuron that is driven hardest", () => {
    // Neuron 5 gets one synapse a million times the usual weight: its Euler step would overshoot.
    expect(() => load("0,5,1e6\n1,2,1\n")).toThrow(ConfigError);
    expect(() => load("0,5,1e6\n1,2,1\n")).toThrow(
      new RegExp(`^simulation\\.dt: [\\d.]+ ms is too large for the explicit Euler membrane step of neuron 5 \\(excitatory\\) of "${join(dir, "rec.csv")}" and "${join(dir, "ff.csv")}": dt·G_syn/C_m = [\\d.]+ ≥ 1 .*with all its synapses coincident at their initial weights.*use dt < [\\d.]+ ms$`),
    );
    // The same synapse at a usual weight loads.
    expect(load("0,5,1\n1,2,1\n").rec.pre.length).toBe(2);
  });

  it("one part from a file, the other generated: inputs onto the file's neurons, or a generated recurrent network", () => {
    writeFileSync(join(dir, "rec.csv"), "5,3,0.25\n1,7,2\n");
    const half = (recurrent: string, feedforward: string, seed = 7, name = "half.toml") => {
      const text = readFileSync(smallParams(dir), "utf8")
        .replace(/^seed = \d+/m, `seed = ${seed}`)
        .replace(/^num_assemblies = \d+$/m, (m) => `${m}\n${recurrent}`)
        .replace(/^firing_rate = .*$/m, (m) => `${m}\n${feedforward}`);
      writeFileSync(join(dir, name), text);
      return loadConfig(join(dir, name)).config;
    };
    // The recurrent synapses and types from files; the inputs generated by [feedforward.topology] onto those types.
    const recOnly = half('connectome_file = "rec.csv"\nneurons_file = "neurons.csv"', "");
    const a = loadConnectome(recOnly);
    expect(Array.from(a.rec.pre)).toEqual([1, 5]);
    expect(a.ff.pre.length).toBeGreaterThan(100);
    expect(Math.max(...a.ff.post)).toBeLessThan(150);
    const again = loadConnectome(recOnly);
    expect(again.hash).toBe(a.hash);
    expect(bytes(again.ffWeight).equals(bytes(a.ffWeight))).toBe(true);
    expect(loadConnectome(half('connectome_file = "rec.csv"\nneurons_file = "neurons.csv"', "", 8, "half8.toml")).hash).not.toBe(a.hash);
    // The inputs from a file; the recurrent network generated, exactly as it is without files.
    const ffOnly = half("", 'connectome_file = "ff.csv"', 7, "ffonly.toml");
    const b = loadConnectome(ffOnly);
    const generated = generateConnectome(ffOnly);
    for (const k of ["pre", "post"] as const) expect(bytes(b.rec[k]).equals(bytes(generated.rec[k]))).toBe(true);
    expect(bytes(b.recWeight).equals(bytes(generated.recWeight))).toBe(true);
    expect(Array.from(b.ff.pre)).toEqual([0, 59]);
    // A key that needs its part's file.
    expect(() => half('neurons_file = "neurons.csv"', "", 7, "n.toml")).toThrow(/^recurrent\.neurons_file: only used with recurrent\.connectome_file$/);
    expect(() => half("", 'inputs_file = "neurons.csv"', 7, "i.toml")).toThrow(/^feedforward\.inputs_file: only used with feedforward\.connectome_file$/);
  });
});

describe("connectome files: a large network", () => {
  it("loads 50 000 neurons and 5 M synapses from CSV", () => {
    const dir = tempDir("snn-connectome-large-");
    const N = 50_000;
    const perNeuron = 100;
    const rec = join(dir, "recurrent.csv");
    const fd = openSync(rec, "w");
    writeSync(fd, "pre,post,weight\n");
    // Row k of every neuron, then the next k: the file is not in (pre, post) order.
    for (let k = 0; k < perNeuron; k++) {
      const lines: string[] = [];
      for (let i = 0; i < N; i++) lines.push(`${i},${(i + 1 + k * 487) % N},${((i * 7 + k * 13) % 1000) / 1000 + 0.001}`);
      writeSync(fd, lines.join("\n") + "\n");
    }
    closeSync(fd);
    writeFileSync(join(dir, "neurons.csv"), "neuron,cell_type\n" + Array.from({ length: N }, (_, j) => `${j},${j % 5 === 4 ? "inhibitory" : "excitatory"}`).join("\n") + "\n");
    writeFileSync(join(dir, "ff.csv"), Array.from({ length: N }, (_, j) => `${j % 60},${j},1`).join("\n") + "\n");
    let text = readFileSync(withFiles(dir, { rec: "recurrent.csv", neurons: "neurons.csv", ff: "ff.csv" }), "utf8");
    text = text.replace(/^num_neurons = 150$/m, `num_neurons = ${N}`);
    writeFileSync(join(dir, "large.toml"), text);
    const config = loadConfig(join(dir, "large.toml")).config;

    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const c = loadConnectome(config);
    const seconds = (performance.now() - t0) / 1000;
    const rss = process.memoryUsage().rss;
    console.log(
      `connectome files: ${N} neurons, ${c.rec.pre.length} recurrent synapses (${(readFileSync(rec).length / 2 ** 20).toFixed(0)} MiB CSV) loaded in ${seconds.toFixed(1)} s; ` +
        `RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss / 2 ** 20).toFixed(0)} MiB`,
    );
    expect(c.rec.pre.length).toBe(N * perNeuron);
    expect(c.ff.pre.length).toBe(N);
    for (let e = 1; e < c.rec.pre.length; e++) {
      const prev = c.rec.pre[e - 1] * N + c.rec.post[e - 1];
      if (c.rec.pre[e] * N + c.rec.post[e] <= prev) throw new Error(`edge ${e} out of order`);
    }
    expect(c.rec.rowPtr[N]).toBe(N * perNeuron);
    expect(seconds).toBeLessThan(60);
    expect(rss - rss0).toBeLessThan(3 * 2 ** 30);
  }, 90_000);
});
