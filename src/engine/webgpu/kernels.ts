/**
 * The webgpu engine's WGSL compute kernels, generated per network shape: sizes, slot constants and buffer offsets are
 * baked in as constants (the slot loops unrolled), so that each kernel is straight-line code over its element.
 *
 * Layout (see webgpu-engine.ts): element x = j·KB + c over neuron j and column c = k·B + b (epoch k of the pass,
 * trial b), columns innermost, so that the threads of a workgroup share a neuron and its synapse lists and read
 * consecutive words. Per-step arrays are [t][x]; conductances and their adjoints [comp·S + l][x]; δ per source
 * [t][src][x]. Every sum over synapses is a gather in a fixed order (no atomics), so each result is the same run
 * after run:
 * - forward z_src[j][c] = Σ over j's in-edges from src, in increasing presynaptic index, of W where the
 *   presynaptic neuron (input) spiked at t − 1: the order of sparse-cpu's scatter, so z is bit-identical to it;
 * - backward Σ_e∈row i W_e δ_src(i)[post e][c] in edge order (sparse-cpu's rowDots order);
 * - dW_e of epoch k = Σ over the presynaptic spikes (t descending, trial ascending) of δ[t][src][post e][c], a
 *   compensated float32 sum (sparse-cpu sums in float64 in the same order).
 * Arithmetic is float32 throughout (WGSL has no float64), where sparse-cpu computes in float64 between float32
 * stores: the two agree to float32 rounding, which the tests check against the tolerances of the tfjs oracle.
 */
import type { ModelConstants } from "../../model/constants.js";

/** Threads per workgroup of every kernel. */
export const WORKGROUP = 64;

/** Buffers the kernels share: element type and whether a kernel writes it (declared per kernel). */
export type BufferName =
  | "netU" | "netF" | "recW" | "ffW" | "cscW"
  | "vHist" | "sHist" | "vtHist" | "gsHist" | "g" | "clampHist" | "gRec" | "inBits"
  | "sumU" | "sumF" | "coef" | "adj" | "dHist"
  | "recEv" | "recCnt" | "ffEv" | "ffCnt" | "recGrad" | "ffGrad";

const U32_BUFFERS = new Set<BufferName>(["netU", "sHist", "clampHist", "inBits", "sumU", "recEv", "recCnt", "ffEv", "ffCnt"]);

export interface KernelShape {
  N: number;
  /** Trials per epoch and epochs in the pass: KB = K·B columns. */
  B: number;
  K: number;
  T: number;
  chunk: number;
  M: number;
  E: number;
  F: number;
  /** Offsets of the integer tables in netU (webgpu-engine.ts networkTables). */
  u: Record<"inPtr" | "inPre" | "inEdge" | "ffPtr" | "ffPre" | "ffEdge" | "rowPtr" | "recPost" | "recPre" | "cellType" | "ffPost" | "ffPreOfEdge" | "inputSrc", number>;
  /** With a spike-train teacher: coef holds dL/ds per (t, x) after the four per-element coefficients. */
  teacher: boolean;
}

export interface KernelSource {
  name: string;
  code: string;
  /** Bindings of group 0 in order, with write access where the kernel writes. */
  bindings: { name: BufferName; write: boolean }[];
  /** Threads to launch (one per element, edge or row). */
  threads: number;
  /** Takes the per-step uniform (group 1, dynamic offset). */
  perStep: boolean;
}

/** A float as a WGSL f32 literal (the shortest decimal that reads back as the same float64, rounded to f32 by WGSL). */
function f(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`webgpu kernels: constant ${x} is not finite`);
  const s = String(x);
  return /[.e]/.test(s) ? `${s}f` : `${s}.0f`;
}

export function kernelSources(c: ModelConstants, s: KernelShape): KernelSource[] {
  const S = c.numSlots;
  const G = c.numSources;
  const R = c.numRecTypes;
  const FI = G - R;
  const KB = s.K * s.B;
  const PP = s.N * KB;
  const clamp = c.conductanceClamp === true;
  const prelude = `
const N = ${s.N}u; const B = ${s.B}u; const K = ${s.K}u; const KB = ${KB}u; const PP = ${PP}u; const T = ${s.T}u;
const CH = ${s.chunk}u; const M = ${s.M}u; const E = ${s.E}u; const F = ${s.F}u; const G = ${G}u; const R = ${R}u;
const FI = ${FI}u; const TB = ${s.T * s.B}u;
// Per-neuron constants in netF: θ, U_reset, E_L, β, dt/C, each N long.
const THETA = 0u; const URESET = ${s.N}u; const EL = ${2 * s.N}u; const BETA = ${3 * s.N}u; const DTC = ${4 * s.N}u;
${Object.entries(s.u).map(([k, v]) => `const U_${k.toUpperCase()} = ${v}u;`).join("\n")}
struct Step { t: u32, plotCol: u32 }
// Values below 1e-30 in magnitude become 0 (reference-step.ts flushTiny; NaN kept).
fn flush(x: f32) -> f32 { return select(x, 0.0f, x > -1e-30f && x < 1e-30f); }
// x < lo ? lo : x > hi ? hi : x, NaN kept (reference-step.ts clip).
fn clip(x: f32, lo: f32, hi: f32) -> f32 { return select(select(x, hi, x > hi), lo, x < lo); }
`;
  const entry = (threads: number, body: string) => `
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let x = (wid.y * nwg.x + wid.x) * ${WORKGROUP}u + li;
  if (x >= ${threads}u) { return; }
${body}
}`;
  const slots = Array.from({ length: S }, (_, l) => ({
    l,
    rise: `${l}u * PP + x`,
    decay: `${S + l}u * PP + x`,
    src: c.slotSource[l],
    gs: f(c.gScale[l]),
    ar: f(c.alphaRise[l]),
    ad: f(c.alphaDecay[l]),
    es: f(c.eSyn[l]),
    riseBit: `${1 << (2 * l)}u`,
    decayBit: `${2 << (2 * l)}u`,
  }));
  if (2 * S > 32) throw new Error(`webgpu kernels: the conductance clamp's mask holds 16 slots, the network has ${S}`);

  // Forward step t (t = T: only the pending injection of step T − 1, completing g_T).
  const injection = `
  var z: array<f32, ${G}>;
  if (t > 0u) {
    let sRow = (t - 1u) * PP + c;
    for (var src = 0u; src < R; src++) {
      var acc = 0.0f;
      for (var e = netU[U_INPTR + j * R + src]; e < netU[U_INPTR + j * R + src + 1u]; e++) {
        if (sHist[sRow + netU[U_INPRE + e] * KB] != 0u) { acc += cscW[e]; }
      }
      z[src] = acc;
    }
    for (var src = 0u; src < FI; src++) {
      var acc = 0.0f;
      for (var e = netU[U_FFPTR + j * FI + src]; e < netU[U_FFPTR + j * FI + src + 1u]; e++) {
        let q = ((t - 1u) * M + netU[U_FFPRE + e]) * KB + c;
        if (((inBits[q >> 5u] >> (q & 31u)) & 1u) != 0u) { acc += cscW[E + e]; }
      }
      z[R + src] = acc;
    }
  }`;
  const forward = entry(PP, `
  let t = step.t;
  let j = x / KB;
  let c = x - j * KB;
  ${injection}
  if (t == T) {
${slots.map((p) => `    { let inj = z[${p.src}] * ${p.gs};
      g[${p.rise}] = ${clamp ? `clip(g[${p.rise}] - inj, -${p.gs}, 0.0f)` : `g[${p.rise}] - inj`};
      g[${p.decay}] = ${clamp ? `clip(g[${p.decay}] + inj, 0.0f, ${p.gs})` : `g[${p.decay}] + inj`}; }`).join("\n")}
    return;
  }
  let v = vHist[t * PP + x];
  var cur = 0.0f;
  var gsum = 0.0f;
  var mask = 0u;
  let record = c == step.plotCol;
${slots.map((p) => `  {
    let inj = z[${p.src}] * ${p.gs};
    var gr = g[${p.rise}] - inj;
    var gd = g[${p.decay}] + inj;${clamp ? `
    let cr = clip(gr, -${p.gs}, 0.0f);
    let cd = clip(gd, 0.0f, ${p.gs});
    mask |= select(0u, ${p.riseBit}, cr != gr) | select(0u, ${p.decayBit}, cd != gd);
    gr = cr;
    gd = cd;` : ""}
    let G = gr + gd;
    if (record) { gRec[(t * ${S}u + ${p.l}u) * N + j] = G; }
    gsum += G;
    cur += G * (v - ${p.es});
    g[${p.rise}] = flush(gr * ${p.ar});
    g[${p.decay}] = flush(gd * ${p.ad});
  }`).join("\n")}
  let eL = netF[EL + j];
  let vt = eL + (v - eL) * netF[BETA + j] - cur * netF[DTC + j];
  let spike = v > netF[THETA + j];
  vHist[(t + 1u) * PP + x] = select(vt, netF[URESET + j], spike);
  sHist[t * PP + x] = select(0u, 1u, spike);
  vtHist[t * PP + x] = vt;
  gsHist[t * PP + x] = gsum;${clamp ? "\n  clampHist[t * PP + x] = mask;" : ""}`);

  // Per element: the spike train's count, first and last step and ISI sums; two-pass mean and unbiased std of V.
  const summaries = entry(PP, `
  var count = 0u; var first = 0u; var last = 0u; var isiSum = 0u; var isiSq = 0u;
  for (var t = 0u; t < T; t++) {
    if (sHist[t * PP + x] != 0u) {
      if (count == 0u) { first = t; } else { let isi = t - last; isiSum += isi; isiSq += isi * isi; }
      last = t;
      count++;
    }
  }
  var m = 0.0f;
  for (var t = 1u; t <= T; t++) { m += vHist[t * PP + x]; }
  m = m / f32(T);
  var q = 0.0f;
  for (var t = 1u; t <= T; t++) { let d = vHist[t * PP + x] - m; q += d * d; }
  sumU[x] = count; sumU[PP + x] = first; sumU[2u * PP + x] = last; sumU[3u * PP + x] = isiSum; sumU[4u * PP + x] = isiSq;
  sumF[x] = m; sumF[PP + x] = sqrt(q / f32(T - 1u));`);

  // Backward step t. adj = [a_v | ds | a_g (2S·PP)]; coef = [∂L/∂s | devCoef | meanCoef | meanV | (teacher) dL/ds[t][x]].
  const backward = entry(PP, `
  let t = step.t;
  let i = x / KB;
  let c = x - i * KB;
  let chunkEnd = ((t + 1u) % CH) == 0u;
  var ds = adj[PP + x];
  if (!chunkEnd) {
    // Completing ∂L/∂s_{t+1}: the spike's effect on its targets through δ of step t + 1, then the teacher's term.
    ${R > 0 ? `let base = ((t + 1u) * G + netU[U_CELLTYPE + i]) * PP + c;
    var acc = 0.0f;
    for (var e = netU[U_ROWPTR + i]; e < netU[U_ROWPTR + i + 1u]; e++) { acc += recW[e] * flush(dHist[base + netU[U_RECPOST + e] * KB]); }
    ds += acc;` : ""}
    ${s.teacher ? "ds += coef[(4u + t + 1u) * PP + x];" : ""}
  }
  let vo = vHist[(t + 1u) * PP + x];
  var a = 0.0f;
  if (!chunkEnd) {
    let den = ${f(c.surrgradScale)} * abs(vo - netF[THETA + i]) + 1.0f;
    a = adj[x] + ds / (den * den);
  }
  a += coef[PP + x] * (vo - coef[3u * PP + x]) + coef[2u * PP + x];
  let d = select(a, 0.0f, sHist[t * PP + x] != 0u);
  adj[PP + x] = -vtHist[t * PP + x] * a * ${c.detachReset ? "0.0f" : "1.0f"} + coef[x];
  let dtc = netF[DTC + i];
  adj[x] = d * (netF[BETA + i] - dtc * gsHist[t * PP + x]);
  let dk = -d * dtc;
  let v = vHist[t * PP + x];
  var delta: array<f32, ${G}>;${clamp ? "\n  let mask = clampHist[t * PP + x];" : ""}
${slots.map((p) => `  {
    let agR = select(adj[${2 * PP}u + ${p.rise}], 0.0f, chunkEnd);
    let agD = select(adj[${2 * PP}u + ${p.decay}], 0.0f, chunkEnd);
    delta[${p.src}] += ${p.gs} * (agD - agR);
    let dG = dk * (v - ${p.es});
    adj[${2 * PP}u + ${p.rise}] = flush(${clamp ? `select(agR * ${p.ar} + dG, 0.0f, (mask & ${p.riseBit}) != 0u)` : `agR * ${p.ar} + dG`});
    adj[${2 * PP}u + ${p.decay}] = flush(${clamp ? `select(agD * ${p.ad} + dG, 0.0f, (mask & ${p.decayBit}) != 0u)` : `agD * ${p.ad} + dG`});
  }`).join("\n")}
  for (var src = 0u; src < G; src++) { dHist[(t * G + src) * PP + x] = delta[src]; }`);

  // Spike events of each presynaptic neuron (input) in each epoch: (t, b) as t·B + b, t descending, b ascending.
  const events = (flag: string, rows: number) =>
    entry(rows * s.K, `
  let r = x / K;
  let k = x - r * K;
  var n = 0u;
  let base = x * TB;
  for (var t = T; t > 0u; t--) {
    for (var b = 0u; b < B; b++) {
      if (${flag}) { ev[base + n] = (t - 1u) * B + b; n++; }
    }
  }
  cnt[x] = n;`);
  const recEvents = events("sHist[(t - 1u) * PP + r * KB + k * B + b] != 0u", s.N);
  const ffEvents = events("((inBits[(((t - 1u) * M + r) * KB + k * B + b) >> 5u] >> ((((t - 1u) * M + r) * KB + k * B + b) & 31u)) & 1u) != 0u", s.M);

  // dW_e of epoch k: a compensated (Kahan) sum of δ over the presynaptic row's events.
  const gradient = (edges: number, pre: string, src: string, post: string) =>
    entry(edges * s.K, `
  let k = x / ${edges}u;
  let e = x - k * ${edges}u;
  let row = netU[${pre} + e] * K + k;
  let dBase = ${src} * PP + netU[${post} + e] * KB + k * B;
  var sum = 0.0f;
  var comp = 0.0f;
  for (var q = 0u; q < cnt[row]; q++) {
    let ev = evs[row * TB + q];
    let t = ev / B;
    let y = dHist[t * G * PP + dBase + (ev - t * B)] - comp;
    let s1 = sum + y;
    comp = (s1 - sum) - y;
    sum = s1;
  }
  grad[x] = sum;`);

  const decl = (bindings: KernelSource["bindings"], rename: Record<string, string> = {}) =>
    bindings
      .map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.write ? "read_write" : "read"}> ${rename[b.name] ?? b.name}: array<${U32_BUFFERS.has(b.name) ? "u32" : "f32"}>;`)
      .join("\n");
  const kernel = (name: string, threads: number, perStep: boolean, body: string, used: [BufferName, boolean][], rename: Record<string, string> = {}): KernelSource => {
    const bindings = used.map(([n, write]) => ({ name: n, write }));
    const step = perStep ? "@group(1) @binding(0) var<uniform> step: Step;\n" : "";
    return { name, threads, perStep, bindings, code: `${prelude}\n${decl(bindings, rename)}\n${step}${body}` };
  };
  const cl: [BufferName, boolean][] = clamp ? [["clampHist", false]] : [];
  return [
    kernel("permute", s.E + s.F, false, entry(s.E + s.F, `
  if (x < E) { cscW[x] = recW[netU[U_INEDGE + x]]; } else { cscW[x] = ffW[netU[U_FFEDGE + x - E]]; }`), [["netU", false], ["recW", false], ["ffW", false], ["cscW", true]]),
    kernel("forward", PP, true, forward, [
      ["netU", false], ["netF", false], ["cscW", false], ["inBits", false], ["vHist", true], ["sHist", true], ["vtHist", true],
      ["gsHist", true], ["g", true], ["gRec", true], ...(clamp ? [["clampHist", true] as [BufferName, boolean]] : []),
    ]),
    kernel("summaries", PP, false, summaries, [["sHist", false], ["vHist", false], ["sumU", true], ["sumF", true]]),
    kernel("backward", PP, true, backward, [
      ["netU", false], ["netF", false], ["recW", false], ["vHist", false], ["sHist", false], ["vtHist", false], ["gsHist", false],
      ["coef", false], ["adj", true], ["dHist", true], ...cl,
    ]),
    kernel("recEvents", s.N * s.K, false, recEvents, [["sHist", false], ["recEv", true], ["recCnt", true]], { recEv: "ev", recCnt: "cnt" }),
    kernel("ffEvents", s.M * s.K, false, ffEvents, [["inBits", false], ["ffEv", true], ["ffCnt", true]], { ffEv: "ev", ffCnt: "cnt" }),
    kernel("recGrad", s.E * s.K, false, gradient(s.E, "U_RECPRE", "netU[U_CELLTYPE + netU[U_RECPRE + e]]", "U_RECPOST"),
      [["netU", false], ["dHist", false], ["recEv", false], ["recCnt", false], ["recGrad", true]], { recEv: "evs", recCnt: "cnt", recGrad: "grad" }),
    kernel("ffGrad", s.F * s.K, false, gradient(s.F, "U_FFPREOFEDGE", "netU[U_INPUTSRC + netU[U_FFPREOFEDGE + e]]", "U_FFPOST"),
      [["netU", false], ["dHist", false], ["ffEv", false], ["ffCnt", false], ["ffGrad", true]], { ffEv: "evs", ffCnt: "cnt", ffGrad: "grad" }),
  ];
}
