/**
 * [recurrent.topology] generator = "exact" (src/model/connectome.ts, MODEL-HEAD.md 8): cell types balanced per
 * assembly, exactly round(p·n_src·n_tgt) distinct edges per block (assembly pair × type pair; the feedforward type
 * pairs with conn_inputs), no self-loops, assembly ids returned; and the default "original" generator unchanged.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { Config, ConfigError, parseConfig, roundHalfEven, typeCounts } from "../src/model/config.js";
import { Connectome, EdgeList, generateConnectome, structureHash } from "../src/model/connectome.js";
import { DEFAULT_TEXT, replaceOnce, smallConnectomeText } from "./helpers/parameter-text.js";


/** `generator = ...` added to [recurrent.topology] (after its conn_between line). */
function withGenerator(text: string, generator: string): string {
  const line = text.split("\n").find((l) => l.startsWith("conn_between ="));
  if (!line) throw new Error("test setup: no conn_between line");
  return replaceOnce(text, line, `${line}\ngenerator = "${generator}"`);
}

const smallText = smallConnectomeText;

const smallExact = (seed = 42): Config => parseConfig(withGenerator(smallText(seed), "exact"), "small-exact");

/** Edge counts per [pre assembly][post assembly][pre type][post type] (K = 2 types). */
function blockCounts(c: Connectome): number[][][][] {
  const A = c.numAssemblies;
  const n = Array.from({ length: A }, () => Array.from({ length: A }, () => [
    [0, 0],
    [0, 0],
  ]));
  for (let e = 0; e < c.rec.pre.length; e++) {
    const i = c.rec.pre[e];
    const j = c.rec.post[e];
    n[c.assemblyId[i]][c.assemblyId[j]][c.cellType[i]][c.cellType[j]]++;
  }
  return n;
}

/** Feedforward edge counts per [input type][recurrent type]. */
function ffCounts(c: Connectome, inputTypes: number): number[][] {
  const n = Array.from({ length: inputTypes }, () => [0, 0]);
  for (let e = 0; e < c.ff.pre.length; e++) n[c.inputType[c.ff.pre[e]]][c.cellType[c.ff.post[e]]]++;
  return n;
}

/** Strictly increasing (pre, post): sorted and duplicate-free; CSR row pointers consistent. */
function expectSortedDistinct(el: EdgeList): void {
  expect(el.rowPtr[el.numPre]).toBe(el.pre.length);
  for (let e = 1; e < el.pre.length; e++)
    if (el.pre[e] < el.pre[e - 1] || (el.pre[e] === el.pre[e - 1] && el.post[e] <= el.post[e - 1])) throw new Error(`edges ${e - 1}, ${e}: duplicate or unsorted`);
  for (let i = 0; i < el.numPre; i++) for (let e = el.rowPtr[i]; e < el.rowPtr[i + 1]; e++) if (el.pre[e] !== i) throw new Error(`edge ${e} not in row ${i}`);
}

function expectNoSelfLoops(el: EdgeList): void {
  for (let e = 0; e < el.pre.length; e++) if (el.pre[e] === el.post[e]) throw new Error(`self-loop at ${el.pre[e]}`);
}

/** Sum over all blocks of round(p·n_src·n_tgt), from the configuration alone. */
function expectedTotals(config: Config): { rec: number; ff: number } {
  const A = config.recurrent.num_assemblies;
  const per = typeCounts(config.recurrent.num_neurons / A, config.recurrent.proportion);
  const global = per.map((n) => n * A);
  const inputs = typeCounts(config.feedforward.num_neurons, config.feedforward.proportion);
  const { conn_within, conn_between } = config.recurrent.topology;
  let rec = 0;
  let ff = 0;
  for (let s = 0; s < per.length; s++)
    for (let t = 0; t < per.length; t++) rec += A * roundHalfEven(conn_within[s][t] * per[s] * per[t]) + A * (A - 1) * roundHalfEven(conn_between[s][t] * per[s] * per[t]);
  inputs.forEach((m, s) => global.forEach((n, t) => (ff += roundHalfEven(config.feedforward.topology.conn_inputs[s][t] * m * n))));
  return { rec, ff };
}

describe('generator = "exact", small network (4 assemblies of 24 E + 6 I, 40 inputs)', () => {
  let a: Connectome;

  beforeAll(() => {
    a = generateConnectome(smallExact(42));
  });

  it("balances the cell types per assembly (24 E / 6 I each: round(30·0.8), the rest), shuffled within each", () => {
    expect(a.assemblySize).toBe(30);
    for (let k = 0; k < 4; k++) {
      const types = Array.from(a.cellType.subarray(30 * k, 30 * k + 30));
      expect(types.filter((t) => t === 0).length).toBe(24);
      expect(types.filter((t) => t === 1).length).toBe(6);
    }
    // Shuffled, not sorted: in some assembly the inhibitory cells are not its last 6.
    const sorted = [0, 1, 2, 3].every((k) => Array.from(a.cellType.subarray(30 * k + 24, 30 * k + 30)).every((t) => t === 1));
    expect(sorted).toBe(false);
  });

  it("returns the assembly ids ⌊j/30⌋", () => {
    expect(a.assemblyId).toBeInstanceOf(Int32Array);
    expect(Array.from(a.assemblyId)).toEqual(Array.from({ length: 120 }, (_, j) => Math.floor(j / 30)));
  });

  it("has exactly round(p·n_src·n_tgt) edges in every block", () => {
    // Within (quickstart conn_within [[0.5, 0.5], [0.8, 0.5]]): E→E 0.5·24·24 = 288, E→I 0.5·24·6 = 72,
    // I→E 0.8·6·24 = 115.2 → 115, I→I 0.5·6·6 = 18. Between (0.1 everywhere): 57.6 → 58, 14.4 → 14, 14.4 → 14, 3.6 → 4.
    const within = [
      [288, 72],
      [115, 18],
    ];
    const between = [
      [58, 14],
      [14, 4],
    ];
    const n = blockCounts(a);
    for (let x = 0; x < 4; x++) for (let y = 0; y < 4; y++) expect(n[x][y], `assemblies ${x}→${y}`).toEqual(x === y ? within : between);
    expect(a.rec.pre.length).toBe(4 * (288 + 72 + 115 + 18) + 12 * (58 + 14 + 14 + 4)); // 3052
    // Feedforward: mitral→E 0.2·40·96 = 768, mitral→I 0.2·40·24 = 192.
    expect(ffCounts(a, 1)).toEqual([[768, 192]]);
    expect(expectedTotals(smallExact())).toEqual({ rec: 3052, ff: 960 });
  });

  it("has no duplicate edges and no self-loops; between blocks may use the local diagonal (no original quirk)", () => {
    expectSortedDistinct(a.rec);
    expectSortedDistinct(a.ff);
    expectNoSelfLoops(a.rec);
    let sameLocalIndex = 0;
    for (let e = 0; e < a.rec.pre.length; e++) {
      const i = a.rec.pre[e];
      const j = a.rec.post[e];
      if (a.assemblyId[i] !== a.assemblyId[j] && i % 30 === j % 30) sameLocalIndex++;
    }
    // 1080 between-assembly edges over 10,800 pairs, 360 of them on a local diagonal: about 36 expected.
    expect(sameLocalIndex).toBeGreaterThan(5);
  });

  it("is deterministic in the seed; the hash covers the assembly ids and differs from the original's", () => {
    const b = generateConnectome(smallExact(42));
    expect(b.cellType).toEqual(a.cellType);
    expect(b.rec.pre).toEqual(a.rec.pre);
    expect(b.rec.post).toEqual(a.rec.post);
    expect(b.ff.pre).toEqual(a.ff.pre);
    expect(b.ff.post).toEqual(a.ff.post);
    expect(b.recWeight).toEqual(a.recWeight);
    expect(b.ffWeight).toEqual(a.ffWeight);
    expect(b.hash).toBe(a.hash);
    const c = generateConnectome(smallExact(43));
    expect(c.cellType).not.toEqual(a.cellType);
    expect(c.rec.post).not.toEqual(a.rec.post);
    expect(c.hash).not.toBe(a.hash);
    // Same counts whatever the seed.
    expect(c.rec.pre.length).toBe(3052);
    expect(c.ff.pre.length).toBe(960);
    const { hash: _h, recWeight: _r, ffWeight: _f, assemblyId, ...structure } = a;
    expect(structureHash({ ...structure, assemblyId })).toBe(a.hash);
    expect(structureHash(structure)).not.toBe(a.hash);
    expect(generateConnectome(parseConfig(smallText(42))).hash).not.toBe(a.hash);
  });

  it("dense blocks are exact too: p = 1 gives the complete block, p = 0.95 its rounded count", () => {
    const t = replaceOnce(withGenerator(smallText(), "exact"), "conn_within = [[0.5, 0.5], [0.8, 0.5]]", "conn_within = [[0.95, 1.0], [0.9, 0.8]]");
    const d = generateConnectome(parseConfig(t, "dense"));
    expectSortedDistinct(d.rec);
    expectNoSelfLoops(d.rec);
    // E→E: 0.95·576 = 547.2 → 547 of the 552 pairs without self-loops; E→I all 144; I→E 0.9·144 = 129.6 → 130;
    // I→I 0.8·36 = 28.8 → 29 of 30.
    const n = blockCounts(d);
    for (let x = 0; x < 4; x++)
      expect(n[x][x]).toEqual([
        [547, 144],
        [130, 29],
      ]);
  });
});

describe("impossible densities", () => {
  it("a same-type within-assembly count above n·(n − 1) is a ConfigError naming the key", () => {
    // I→I: round(0.99·6·6) = 36 > 6·5 = 30 pairs without self-loops.
    const t = replaceOnce(withGenerator(smallText(), "exact"), "conn_within = [[0.5, 0.5], [0.8, 0.5]]", "conn_within = [[0.5, 0.5], [0.8, 0.99]]");
    expect(() => parseConfig(t, "x")).toThrow(ConfigError);
    expect(() => parseConfig(t, "x")).toThrow(/recurrent\.topology\.conn_within: \[1\]\[1\] = 0\.99 .* 36 .* only 30 pairs/);
    // The generator checks too (a Config built without parseConfig).
    const c = smallExact();
    c.recurrent.topology.conn_within[1][1] = 1;
    expect(() => generateConnectome(c)).toThrow(ConfigError);
    expect(() => generateConnectome(c)).toThrow(/recurrent\.topology\.conn_within/);
  });

  it('the same density is fine with generator = "original" (self-loops are zeroed there)', () => {
    const t = replaceOnce(smallText(), "conn_within = [[0.5, 0.5], [0.8, 0.5]]", "conn_within = [[0.5, 0.5], [0.8, 1.0]]");
    expect(() => generateConnectome(parseConfig(t, "x"))).not.toThrow();
  });

  it("an unknown generator is a ConfigError", () => {
    expect(() => parseConfig(withGenerator(smallText(), "erdos-renyi"), "x")).toThrow(/recurrent\.topology\.generator/);
  });
});

describe("default network (fitting-activity.toml, seed 42)", () => {
  let exact: Connectome;
  let original: Connectome;
  let exactConfig: Config;

  beforeAll(() => {
    exactConfig = parseConfig(withGenerator(DEFAULT_TEXT, "exact"), "default-exact");
    exact = generateConnectome(exactConfig);
    original = generateConnectome(parseConfig(DEFAULT_TEXT));
  });

  it('"exact": 200 E / 50 I in each of the 20 assemblies', () => {
    for (let k = 0; k < 20; k++) expect(exact.cellType.subarray(250 * k, 250 * k + 250).filter((t) => t === 0).length).toBe(200);
  });

  it('"exact": total edges are the sum of the rounded block counts, 765,000 recurrent and 150,000 feedforward', () => {
    // Within, per assembly: 0.2·200·200 = 8000, 0.2·200·50 = 2000, 0.4·50·200 = 4000, 0.2·50·50 = 500 (14,500 × 20);
    // between, per ordered pair: 0.02·250·250 = 1250 (× 380). Feedforward: 0.02·1500·4000 + 0.02·1500·1000.
    // The original generator falls short: 714,154 recurrent (−6.6%) and 148,581 feedforward (−0.9%) at seed 42.
    expect(expectedTotals(exactConfig)).toEqual({ rec: 765_000, ff: 150_000 });
    expect(exact.rec.pre.length).toBe(765_000);
    expect(exact.ff.pre.length).toBe(150_000);
    expect(original.rec.pre.length).toBe(714_154);
    expect(original.ff.pre.length).toBe(148_581);
    const n = blockCounts(exact);
    for (let x = 0; x < 20; x++)
      for (let y = 0; y < 20; y++) {
        const want = x === y ? [[8000, 2000], [4000, 500]] : [[800, 200], [200, 50]];
        if (JSON.stringify(n[x][y]) !== JSON.stringify(want)) throw new Error(`block ${x}→${y}: ${JSON.stringify(n[x][y])}`);
      }
    expect(ffCounts(exact, 1)).toEqual([[120_000, 30_000]]);
    expectSortedDistinct(exact.rec);
    expectSortedDistinct(exact.ff);
    expectNoSelfLoops(exact.rec);
  });

  it('"original" is the default and unchanged: same network as an explicit generator = "original", hash as before assembly ids', () => {
    const explicit = generateConnectome(parseConfig(withGenerator(DEFAULT_TEXT, "original")));
    const bytes = (x: Int32Array | Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    for (const k of ["cellType", "inputType", "recWeight", "ffWeight"] as const) expect(bytes(explicit[k]).equals(bytes(original[k])), k).toBe(true);
    for (const k of ["rec", "ff"] as const) expect(bytes(explicit[k].pre).equals(bytes(original[k].pre)) && bytes(explicit[k].post).equals(bytes(original[k].post)), k).toBe(true);
    expect(explicit.hash).toBe(original.hash);
    // Measured before generator existed; the assembly ids do not enter an "original" hash.
    expect(original.hash).toBe("24f7a1de4b10b9ed304d4f03d4ab84b871d23ce6c15a37f64d48a5dabf275796");
    expect(Array.from(original.assemblyId.subarray(245, 255))).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(original.assemblyId[4999]).toBe(19);
  });
});
