/**
 * Connectome generation (MODEL.md section 1): cell types, assemblies, configuration-model blocks, lognormal weights,
 * feedforward graph. Output is edge lists sorted by (pre, post) with CSR row pointers: the trainable vector has one
 * entry per existing synapse and no dense N×N matrix is ever built.
 *
 * The original draws from numpy's global MT19937; we draw from our own keyed stream, so the graphs are statistically
 * equivalent rather than identical. With [recurrent.topology] generator = "original" (the default) the original's
 * quirks are kept: multi-edges collapse, and square between-assembly blocks lose their local diagonal. generator =
 * "exact" (MODEL-HEAD.md 8, the later synthetic_connectome) balances the cell types per assembly and gives every
 * block exactly round(p·n_src·n_tgt) distinct edges without self-loops.
 */
import { createHash } from "node:crypto";
import { checkEulerStep, coincidentDrive, Config, ConfigError, roundHalfEven, typeCounts } from "./config.js";
import { Rng, RngPurpose } from "./rng.js";

/** Synapses from `numPre` presynaptic to `numPost` postsynaptic neurons, sorted by (pre, post). */
export interface EdgeList {
  numPre: number;
  numPost: number;
  pre: Int32Array;
  post: Int32Array;
  /** Edges of presynaptic neuron i are rowPtr[i] .. rowPtr[i+1]. */
  rowPtr: Int32Array;
}

export interface Connectome {
  numNeurons: number;
  numInputs: number;
  cellType: Int32Array;
  inputType: Int32Array;
  numAssemblies: number;
  assemblySize: number;
  /** Assembly of each recurrent neuron: assemblies are contiguous blocks, neuron j is in ⌊j / assemblySize⌋. */
  assemblyId: Int32Array;
  rec: EdgeList;
  ff: EdgeList;
  recWeight: Float32Array;
  ffWeight: Float32Array;
  /**
   * sha256 of the structure (types and edges, not weights): identifies the network across processes and files. The
   * assembly ids enter it only under generator = "exact", so that "original" networks keep their hashes.
   */
  hash: string;
}

/** Cell types: round(n·p) per type (remainder to the last), sorted then shuffled, as the original. */
function assignCellTypes(n: number, proportions: number[], rng: Rng): Int32Array {
  const counts = typeCounts(n, proportions);
  const types = new Int32Array(n);
  let k = 0;
  counts.forEach((c, t) => {
    types.fill(t, k, k + c);
    k += c;
  });
  rng.shuffle(types);
  return types;
}

/** generator = "exact": round(size·p) cells of each type (remainder to the last) in every assembly, shuffled within it. */
function assignCellTypesPerAssembly(numAssemblies: number, size: number, proportions: number[], rng: Rng): Int32Array {
  const counts = typeCounts(size, proportions);
  const types = new Int32Array(numAssemblies * size);
  for (let a = 0; a < numAssemblies; a++) {
    let k = a * size;
    counts.forEach((c, t) => {
      types.fill(t, k, k + c);
      k += c;
    });
    rng.shuffle(types.subarray(a * size, (a + 1) * size));
  }
  return types;
}

/** Positions k in `idx` whose neuron is of type `t`. */
function positionsOfType(idx: Int32Array, types: Int32Array, t: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < idx.length; k++) if (types[idx[k]] === t) out.push(k);
  return out;
}

/** Collects edges of one block at a time in a bitmap so duplicates collapse, as in the boolean adjacency matrix. */
class EdgeCollector {
  private pre: number[] = [];
  private post: number[] = [];
  private bitmap = new Uint8Array(0);

  block(
    srcIdx: Int32Array,
    tgtIdx: Int32Array,
    srcType: Int32Array,
    tgtType: Int32Array,
    prob: number[][],
    rng: Rng,
    zeroLocalDiagonal: boolean,
  ): void {
    const ns = srcIdx.length;
    const nt = tgtIdx.length;
    const bm = this.clearedBitmap(ns * nt);
    const K = prob.length;
    const Kt = prob[0].length;
    for (let s = 0; s < K; s++) {
      for (let t = 0; t < Kt; t++) {
        const p = prob[s][t];
        if (p <= 0) continue;
        const srcs = positionsOfType(srcIdx, srcType, s);
        const tgts = positionsOfType(tgtIdx, tgtType, t);
        const outDeg = roundHalfEven(p * tgts.length);
        const inDeg = roundHalfEven(p * srcs.length);
        const outStubs = new Int32Array(srcs.length * outDeg);
        const inStubs = new Int32Array(tgts.length * inDeg);
        srcs.forEach((a, i) => outStubs.fill(a, i * outDeg, (i + 1) * outDeg));
        tgts.forEach((b, i) => inStubs.fill(b, i * inDeg, (i + 1) * inDeg));
        rng.shuffle(outStubs);
        rng.shuffle(inStubs);
        const m = Math.min(outStubs.length, inStubs.length);
        for (let e = 0; e < m; e++) bm[outStubs[e] * nt + inStubs[e]] = 1;
      }
    }
    if (zeroLocalDiagonal && ns === nt) for (let a = 0; a < ns; a++) bm[a * nt + a] = 0;
    this.emit(srcIdx, tgtIdx, bm);
  }

  /**
   * generator = "exact": for each type pair, exactly round(p·n_s·n_t) distinct edges, none from a neuron to itself
   * (`sameNeurons`: srcIdx and tgtIdx are the same neurons, a within-assembly block). Configuration model with exact
   * stub counts (m stubs spread as evenly as possible over the sources and over the targets, the remainder to random
   * ones), then every duplicate or self-loop swaps its target with a random other edge of the block (degrees kept)
   * until none remains. A block where that does not finish within its attempts (too dense for its count) is drawn
   * instead as m distinct pairs sampled without replacement (Floyd's algorithm). `key` names the probabilities.
   */
  exactBlock(srcIdx: Int32Array, tgtIdx: Int32Array, srcType: Int32Array, tgtType: Int32Array, prob: number[][], rng: Rng, sameNeurons: boolean, key: string): void {
    const ns = srcIdx.length;
    const nt = tgtIdx.length;
    const bm = this.clearedBitmap(ns * nt);
    for (let s = 0; s < prob.length; s++) {
      for (let t = 0; t < prob[0].length; t++) {
        const p = prob[s][t];
        if (p <= 0) continue;
        const srcs = positionsOfType(srcIdx, srcType, s);
        const tgts = positionsOfType(tgtIdx, tgtType, t);
        const m = roundHalfEven(p * srcs.length * tgts.length);
        const diag = sameNeurons && s === t;
        const max = srcs.length * tgts.length - (diag ? srcs.length : 0);
        if (m > max)
          throw new ConfigError(
            `${key}: [${s}][${t}] = ${p} asks generator = "exact" for round(p·${srcs.length}·${tgts.length}) = ${m} distinct edges, but only ${max} pairs${diag ? " without self-loops" : ""} exist`,
          );
        if (m > 0) exactTypeBlock(bm, nt, srcs, tgts, m, diag, rng);
      }
    }
    this.emit(srcIdx, tgtIdx, bm);
  }

  private emit(srcIdx: Int32Array, tgtIdx: Int32Array, bm: Uint8Array): void {
    const ns = srcIdx.length;
    const nt = tgtIdx.length;
    for (let a = 0; a < ns; a++) {
      for (let b = 0; b < nt; b++) {
        if (bm[a * nt + b]) {
          this.pre.push(srcIdx[a]);
          this.post.push(tgtIdx[b]);
        }
      }
    }
  }

  /** The block's adjacency bitmap (ns·nt cells), all clear; one buffer reused across blocks. */
  private clearedBitmap(cells: number): Uint8Array {
    if (this.bitmap.length < cells) this.bitmap = new Uint8Array(cells);
    const bm = this.bitmap.subarray(0, cells);
    bm.fill(0);
    return bm;
  }

  /** Edge list in CSR form, sorted by (pre, post); blocks are disjoint, so no edge appears twice. */
  finish(numPre: number, numPost: number): EdgeList {
    const keys = new Float64Array(this.pre.length);
    for (let e = 0; e < keys.length; e++) keys[e] = this.pre[e] * numPost + this.post[e];
    keys.sort();
    const pre = new Int32Array(keys.length);
    const post = new Int32Array(keys.length);
    for (let e = 0; e < keys.length; e++) {
      pre[e] = Math.floor(keys[e] / numPost);
      post[e] = keys[e] - pre[e] * numPost;
    }
    return makeEdgeList(numPre, numPost, pre, post);
  }
}

/** `m` stubs over `nodes`: ⌊m/n⌋ each, one more for m mod n of them chosen at random. */
function exactStubs(nodes: number[], m: number, rng: Rng): Int32Array {
  const order = Int32Array.from(nodes);
  rng.shuffle(order);
  const stubs = new Int32Array(m);
  for (let k = 0; k < m; k++) stubs[k] = order[k % order.length];
  return stubs;
}

/**
 * Sets exactly m distinct (src, tgt) pairs of srcs × tgts in the bitmap `bm` (row length nt), none with src = tgt when
 * `diag` (srcs and tgts are then the same list). The pairs of srcs × tgts must be clear on entry.
 */
function exactTypeBlock(bm: Uint8Array, nt: number, srcs: number[], tgts: number[], m: number, diag: boolean, rng: Rng): void {
  const u = exactStubs(srcs, m, rng);
  const v = exactStubs(tgts, m, rng);
  // One shuffle suffices for a uniformly random matching of the out-stubs u[k] with the in-stubs v[k].
  rng.shuffle(v);
  const bad: number[] = [];
  const isBad = new Uint8Array(m);
  for (let k = 0; k < m; k++) {
    const at = u[k] * nt + v[k];
    if ((diag && u[k] === v[k]) || bm[at]) {
      bad.push(k);
      isBad[k] = 1;
    } else bm[at] = 1;
  }
  // Re-swap: a bad edge (x, y) and a random good one (x2, y2) become (x, y2) and (x2, y) when both are new and no
  // self-loops. Each success removes one bad edge and keeps every degree.
  let attempts = 200 * bad.length + 1000;
  for (const e of bad) {
    const x = u[e];
    const y = v[e];
    for (;;) {
      if (attempts-- <= 0) {
        for (const a of srcs) for (const b of tgts) bm[a * nt + b] = 0;
        sampleDistinctPairs(bm, nt, srcs, tgts, m, diag, rng);
        return;
      }
      const f = rng.below(m);
      if (isBad[f]) continue;
      const x2 = u[f];
      const y2 = v[f];
      if (diag && (x === y2 || x2 === y)) continue;
      if (bm[x * nt + y2] || bm[x2 * nt + y]) continue;
      bm[x2 * nt + y2] = 0;
      bm[x * nt + y2] = 1;
      bm[x2 * nt + y] = 1;
      v[e] = y2;
      v[f] = y;
      isBad[e] = 0;
      break;
    }
  }
}

/** m distinct pairs of srcs × tgts (without the diagonal when `diag`), uniformly: Floyd's sampling over pair indices. */
function sampleDistinctPairs(bm: Uint8Array, nt: number, srcs: number[], tgts: number[], m: number, diag: boolean, rng: Rng): void {
  const row = diag ? tgts.length - 1 : tgts.length;
  const max = srcs.length * row;
  const at = (i: number) => {
    const r = Math.floor(i / row);
    let c = i - r * row;
    if (diag && c >= r) c++;
    return srcs[r] * nt + tgts[c];
  };
  for (let j = max - m; j < max; j++) {
    const t = at(rng.below(j + 1));
    if (bm[t]) bm[at(j)] = 1;
    else bm[t] = 1;
  }
}

/** CSR row pointers for edges already sorted by pre. */
export function makeEdgeList(numPre: number, numPost: number, pre: Int32Array, post: Int32Array): EdgeList {
  const rowPtr = new Int32Array(numPre + 1);
  for (let e = 0; e < pre.length; e++) rowPtr[pre[e] + 1]++;
  for (let i = 0; i < numPre; i++) rowPtr[i + 1] += rowPtr[i];
  return { numPre, numPost, pre, post, rowPtr };
}

/**
 * Lognormal weights where w_mu is the mean m and w_sigma the *variance* v (the original's convention):
 * σ² = ln(1 + v/m²), μ = ln m − σ²/2.
 */
export function lognormalParameters(mean: number, variance: number): { mu: number; sigma: number } {
  const m = Math.max(mean, Number.EPSILON);
  const sigma2 = Math.log(1 + variance / (m * m));
  return { mu: Math.log(m) - sigma2 / 2, sigma: Math.sqrt(sigma2) };
}

function drawWeights(edges: EdgeList, preType: Int32Array, postType: Int32Array, wMu: number[][], wVar: number[][], rng: Rng): Float32Array {
  const params = wMu.map((row, s) => row.map((m, t) => lognormalParameters(m, wVar[s][t])));
  const w = new Float32Array(edges.pre.length);
  for (let e = 0; e < w.length; e++) {
    const p = params[preType[edges.pre[e]]][postType[edges.post[e]]];
    w[e] = Math.exp(p.mu + p.sigma * rng.normal());
  }
  return w;
}

/** Hashes `assemblyId` when given (generator = "exact"); without it, the hash of an "original" network as before. */
export function structureHash(c: Omit<Connectome, "hash" | "recWeight" | "ffWeight" | "assemblyId"> & { assemblyId?: Int32Array }): string {
  const h = createHash("sha256");
  h.update(JSON.stringify([c.numNeurons, c.numInputs, c.numAssemblies, c.assemblySize]));
  const arrays = [c.cellType, c.inputType, c.rec.pre, c.rec.post, c.ff.pre, c.ff.post];
  if (c.assemblyId) arrays.push(c.assemblyId);
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest("hex");
}

export function generateConnectome(config: Config): Connectome {
  const rng = Rng.keyed(config.simulation.seed, RngPurpose.connectome);
  const N = config.recurrent.num_neurons;
  const M = config.feedforward.num_neurons;
  const A = config.recurrent.num_assemblies;
  const size = Math.floor(N / A);
  const exact = config.recurrent.topology.generator === "exact";

  const cellType = exact ? assignCellTypesPerAssembly(A, size, config.recurrent.proportion, rng) : assignCellTypes(N, config.recurrent.proportion, rng);
  const assemblyId = Int32Array.from({ length: N }, (_, j) => Math.floor(j / size));

  // Within-assembly blocks first, then every ordered pair of distinct assemblies, as the original's loop order.
  const rec = new EdgeCollector();
  const block = (a: number) => Int32Array.from({ length: size }, (_, k) => a * size + k);
  const blocks = Array.from({ length: A }, (_, a) => block(a));
  const { conn_within, conn_between } = config.recurrent.topology;
  for (let a = 0; a < A; a++)
    if (exact) rec.exactBlock(blocks[a], blocks[a], cellType, cellType, conn_within, rng, true, "recurrent.topology.conn_within");
    else rec.block(blocks[a], blocks[a], cellType, cellType, conn_within, rng, true);
  for (let a = 0; a < A; a++)
    for (let b = 0; b < A; b++) {
      if (a === b) continue;
      if (exact) rec.exactBlock(blocks[a], blocks[b], cellType, cellType, conn_between, rng, false, "recurrent.topology.conn_between");
      else rec.block(blocks[a], blocks[b], cellType, cellType, conn_between, rng, true);
    }
  const recEdges = rec.finish(N, N);

  const inputType = assignCellTypes(M, config.feedforward.proportion, rng);
  const ffEdges = feedforwardEdges(config, cellType, inputType, rng);

  const recWeight = drawWeights(recEdges, cellType, cellType, config.recurrent.weights.w_mu, config.recurrent.weights.w_sigma, rng);
  const ffWeight = drawWeights(ffEdges, inputType, cellType, config.feedforward.weights.w_mu, config.feedforward.weights.w_sigma, rng);

  const structure = { numNeurons: N, numInputs: M, cellType, inputType, numAssemblies: A, assemblySize: size, rec: recEdges, ff: ffEdges };
  return { ...structure, assemblyId, recWeight, ffWeight, hash: structureHash(exact ? { ...structure, assemblyId } : structure) };
}

/** [feedforward.topology]'s synapses from every input onto every recurrent neuron of the given types. */
function feedforwardEdges(config: Config, cellType: Int32Array, inputType: Int32Array, rng: Rng): EdgeList {
  const N = cellType.length;
  const M = inputType.length;
  const ff = new EdgeCollector();
  const allInputs = Int32Array.from({ length: M }, (_, i) => i);
  const allNeurons = Int32Array.from({ length: N }, (_, j) => j);
  const conn_inputs = config.feedforward.topology.conn_inputs;
  if (config.recurrent.topology.generator === "exact") ff.exactBlock(allInputs, allNeurons, inputType, cellType, conn_inputs, rng, false, "feedforward.topology.conn_inputs");
  else ff.block(allInputs, allNeurons, inputType, cellType, conn_inputs, rng, false);
  return ff.finish(M, N);
}

/**
 * The feedforward part generated onto recurrent neurons of the given types (a recurrent connectome read from a file):
 * input types, synapses and weights as generateConnectome draws them, from a stream of its own (keyed by the seed),
 * so that the same file and seed give the same inputs.
 */
export function generateFeedforward(config: Config, cellType: Int32Array): { inputType: Int32Array; ff: EdgeList; ffWeight: Float32Array } {
  const rng = Rng.keyed(config.simulation.seed, RngPurpose.connectome, 1);
  const inputType = assignCellTypes(config.feedforward.num_neurons, config.feedforward.proportion, rng);
  const ff = feedforwardEdges(config, cellType, inputType, rng);
  return { inputType, ff, ffWeight: drawWeights(ff, inputType, cellType, config.feedforward.weights.w_mu, config.feedforward.weights.w_sigma, rng) };
}

/**
 * dt against a network read from files, neuron by neuron: each neuron's coincident drive from its own in-synapses at
 * their initial weights (summed per presynaptic type), as checkStability estimates it for a generated network. The
 * neuron with the largest dt·G/C_m is the one named.
 */
export function checkConnectomeStability(c: Config, net: Connectome, files: string): void {
  const K = c.recurrent.names.length;
  const Kin = c.feedforward.names.length;
  const N = net.numNeurons;
  // Summed in-weight per (presynaptic type, neuron): recurrent types first, then input types.
  const summed = new Float64Array((K + Kin) * N);
  for (let e = 0; e < net.recWeight.length; e++) summed[net.cellType[net.rec.pre[e]] * N + net.rec.post[e]] += net.recWeight[e];
  for (let e = 0; e < net.ffWeight.length; e++) summed[(K + net.inputType[net.ff.pre[e]]) * N + net.ff.post[e]] += net.ffWeight[e];
  const drive = coincidentDrive(c);
  let worst = { ratio: -1, j: 0, G: 0 };
  for (let j = 0; j < N; j++) {
    let G = 0;
    for (let t = 0; t < K; t++) G += drive(c.recurrent.synapses[t], summed[t * N + j]);
    for (let t = 0; t < Kin; t++) G += drive(c.feedforward.synapses[t], summed[(K + t) * N + j]);
    const ph = c.recurrent.physiology[net.cellType[j]];
    const ratio = G / (ph.tau_mem * ph.g_L);
    if (ratio > worst.ratio) worst = { ratio, j, G };
  }
  const t = net.cellType[worst.j];
  checkEulerStep(c, t, worst.G, `neuron ${worst.j} (${c.recurrent.names[t]}) of ${files}`, "with all its synapses coincident at their initial weights");
}
