/**
 * Connectome generation (MODEL.md section 1): cell types, assemblies, configuration-model blocks, lognormal weights,
 * feedforward graph. Output is edge lists sorted by (pre, post) with CSR row pointers: the trainable vector has one
 * entry per existing synapse and no dense N×N matrix is ever built.
 *
 * The original draws from numpy's global MT19937; we draw from our own keyed stream, so the graphs are statistically
 * equivalent rather than identical. The original's quirks are kept: multi-edges collapse, and square between-assembly
 * blocks lose their local diagonal.
 */
import { createHash } from "node:crypto";
import { Config, roundHalfEven, typeCounts } from "./config.js";
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
  rec: EdgeList;
  ff: EdgeList;
  recWeight: Float32Array;
  ffWeight: Float32Array;
  /** sha256 of the structure (types and edges, not weights): identifies the network across processes and files. */
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
    if (this.bitmap.length < ns * nt) this.bitmap = new Uint8Array(ns * nt);
    const bm = this.bitmap.subarray(0, ns * nt);
    bm.fill(0);
    const K = prob.length;
    const Kt = prob[0].length;
    for (let s = 0; s < K; s++) {
      for (let t = 0; t < Kt; t++) {
        const p = prob[s][t];
        if (p <= 0) continue;
        const srcs: number[] = [];
        const tgts: number[] = [];
        for (let a = 0; a < ns; a++) if (srcType[srcIdx[a]] === s) srcs.push(a);
        for (let b = 0; b < nt; b++) if (tgtType[tgtIdx[b]] === t) tgts.push(b);
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
    for (let a = 0; a < ns; a++) {
      for (let b = 0; b < nt; b++) {
        if (bm[a * nt + b]) {
          this.pre.push(srcIdx[a]);
          this.post.push(tgtIdx[b]);
        }
      }
    }
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

export function structureHash(c: Omit<Connectome, "hash" | "recWeight" | "ffWeight">): string {
  const h = createHash("sha256");
  h.update(JSON.stringify([c.numNeurons, c.numInputs, c.numAssemblies, c.assemblySize]));
  for (const a of [c.cellType, c.inputType, c.rec.pre, c.rec.post, c.ff.pre, c.ff.post]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest("hex");
}

export function generateConnectome(config: Config): Connectome {
  const rng = Rng.keyed(config.simulation.seed, RngPurpose.connectome);
  const N = config.recurrent.num_neurons;
  const M = config.feedforward.num_neurons;
  const A = config.recurrent.num_assemblies;
  const size = Math.floor(N / A);

  const cellType = assignCellTypes(N, config.recurrent.proportion, rng);

  // Within-assembly blocks first, then every ordered pair of distinct assemblies, as the original's loop order.
  const rec = new EdgeCollector();
  const block = (a: number) => Int32Array.from({ length: size }, (_, k) => a * size + k);
  const blocks = Array.from({ length: A }, (_, a) => block(a));
  const { conn_within, conn_between } = config.recurrent.topology;
  for (let a = 0; a < A; a++) rec.block(blocks[a], blocks[a], cellType, cellType, conn_within, rng, true);
  for (let a = 0; a < A; a++)
    for (let b = 0; b < A; b++) if (a !== b) rec.block(blocks[a], blocks[b], cellType, cellType, conn_between, rng, true);
  const recEdges = rec.finish(N, N);

  const inputType = assignCellTypes(M, config.feedforward.proportion, rng);
  const ff = new EdgeCollector();
  const allInputs = Int32Array.from({ length: M }, (_, i) => i);
  const allNeurons = Int32Array.from({ length: N }, (_, j) => j);
  ff.block(allInputs, allNeurons, inputType, cellType, config.feedforward.topology.conn_inputs, rng, false);
  const ffEdges = ff.finish(M, N);

  const recWeight = drawWeights(recEdges, cellType, cellType, config.recurrent.weights.w_mu, config.recurrent.weights.w_sigma, rng);
  const ffWeight = drawWeights(ffEdges, inputType, cellType, config.feedforward.weights.w_mu, config.feedforward.weights.w_sigma, rng);

  const structure = { numNeurons: N, numInputs: M, cellType, inputType, numAssemblies: A, assemblySize: size, rec: recEdges, ff: ffEdges };
  return { ...structure, recWeight, ffWeight, hash: structureHash(structure) };
}
