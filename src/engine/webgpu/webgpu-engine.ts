/**
 * webgpu engine: the sparse model (MODEL.md 2.4 and 3) as WGSL compute kernels (kernels.ts) on a WebGPU device
 * through Dawn (gpu-device.ts), over the same edge lists and the same canonical stream state as sparse-cpu.
 *
 * Several epochs at once: a pass simulates K epochs that share the weights (an interval's epochs) as K·B columns of
 * one batch, the trial axis being the GPU's parallelism; every column is computed on its own, so an epoch's result is
 * the same whichever epochs share its pass (and bit-identical from run to run: gathers in fixed order, no atomics).
 * runEpoch queues its task; tasks queued in the same turn of the event loop (a worker's assignments of an interval)
 * go into the same pass, up to `capacity`.
 *
 * A pass: weights in (and into in-edge order on the GPU), initial states and input spikes in; T + 1 forward
 * dispatches (step t gathers the injection of step t − 1's spikes; the last one only completes g_T) and the
 * per-element summaries; the summaries out (with spikes and voltages when a teacher or the figures need them); the
 * loss and its gradient coefficients on the CPU (epoch-summary.ts, as every engine); T backward dispatches (each
 * completes ∂L/∂s of the step after with Σ W δ, then runs the step's adjoint and keeps its δ), the spike events of
 * each presynaptic row and one gradient dispatch per population; gradients and final states out. 2T + 6 dispatches
 * and two round trips per pass, whatever K is.
 */
import { InputSpikes } from "../../model/inputs.js";
import { epochInputs, hasSpikeTrainTeacher, NetworkSpec } from "../../model/network.js";
import { placeOf, recordedOutputs } from "../../model/teacher-replay.js";
import { Engine, EpochResult, EpochTask, epochSteps } from "../engine.js";
import { ActivityLayout, epochResult, extractTrialActivity, summarizeEpoch, TrialSummaries } from "../epoch-summary.js";
import { DEFAULT_EPOCHS_PER_PASS, GpuContext, GpuUnavailableError, openDevice } from "./gpu-device.js";
import { BufferName, KernelShape, kernelSources, WORKGROUP } from "./kernels.js";

export interface WebGpuOptions {
  /** Adapter index (listAdapters order). */
  gpu?: number;
  /** Most epochs per pass; fewer when the device's buffers cannot hold them. */
  epochsPerPass?: number;
  /** Keep every pass's spikes and voltages for recordedActivity (snn-sim's exports; costs a download per pass). */
  keepActivity?: boolean;
}

/** Integer tables of the network in one u32 buffer (offsets: KernelShape.u), and the per-neuron constants. */
function networkTables(spec: NetworkSpec) {
  const c = spec.constants;
  const N = c.numNeurons;
  const R = c.numRecTypes;
  const FI = c.numSources - R;
  const { rec, ff } = spec;
  // In-edges of each neuron grouped by presynaptic population, each group in increasing presynaptic index (edge
  // order within a row): the order in which sparse-cpu's scatter adds into z (counting sort over the CSR edges).
  const csc = (pre: Int32Array, post: Int32Array, groups: number, groupOf: (i: number) => number) => {
    const ptr = new Uint32Array(N * groups + 1);
    for (let e = 0; e < pre.length; e++) ptr[post[e] * groups + groupOf(pre[e]) + 1]++;
    for (let k = 0; k < N * groups; k++) ptr[k + 1] += ptr[k];
    const fill = ptr.slice(0, N * groups);
    const from = new Uint32Array(pre.length);
    const edge = new Uint32Array(pre.length);
    for (let e = 0; e < pre.length; e++) {
      const slot = fill[post[e] * groups + groupOf(pre[e])]++;
      from[slot] = pre[e];
      edge[slot] = e;
    }
    return { ptr, from, edge };
  };
  const recCsc = csc(rec.pre, rec.post, R, (i) => c.cellType[i]);
  const ffCsc = csc(ff.pre, ff.post, FI, (m) => c.inputSource[m] - R);
  const parts = {
    inPtr: recCsc.ptr,
    inPre: recCsc.from,
    inEdge: recCsc.edge,
    ffPtr: ffCsc.ptr,
    ffPre: ffCsc.from,
    ffEdge: ffCsc.edge,
    rowPtr: rec.rowPtr,
    recPost: rec.post,
    recPre: rec.pre,
    cellType: c.cellType,
    ffPost: ff.post,
    ffPreOfEdge: ff.pre,
    inputSrc: c.inputSource,
  };
  const offsets = {} as KernelShape["u"];
  let n = 0;
  for (const [k, a] of Object.entries(parts)) {
    offsets[k as keyof KernelShape["u"]] = n;
    n += a.length;
  }
  const netU = new Uint32Array(n);
  for (const [k, a] of Object.entries(parts)) netU.set(a, offsets[k as keyof KernelShape["u"]]);
  const netF = new Float32Array(5 * N);
  [c.theta, c.uReset, c.eL, c.beta, c.dtOverC].forEach((a, k) => netF.set(a, k * N));
  return { netU, netF, offsets };
}

/** Pipelines and bind groups of one pass size (k epochs); the buffers are the engine's, sized for capacity. */
interface PassKernels {
  k: number;
  run: Map<string, { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; threads: number; perStep: boolean }>;
}

export class WebGpuEngine implements Engine {
  readonly kind = "webgpu" as const;
  /** Epochs computed in one pass. */
  readonly capacity: number;
  private readonly N: number;
  private readonly B: number;
  private readonly T: number;
  private readonly S: number;
  private readonly teacher: boolean;
  private readonly buffers = new Map<BufferName, GPUBuffer>();
  private readonly stepUniform: GPUBuffer;
  private readonly stepStride: number;
  private readonly tables: ReturnType<typeof networkTables>;
  private readonly passKernels = new Map<number, PassKernels>();
  private readonly queue: { task: EpochTask; resolve: (r: EpochResult) => void; reject: (e: unknown) => void }[] = [];
  private draining = false;

  static async create(spec: NetworkSpec, options: WebGpuOptions = {}): Promise<WebGpuEngine> {
    return new WebGpuEngine(spec, await openDevice(options.gpu ?? 0), options.epochsPerPass ?? DEFAULT_EPOCHS_PER_PASS, options.keepActivity ?? false);
  }

  private constructor(
    private readonly spec: NetworkSpec,
    private readonly gpu: GpuContext,
    epochsPerPass: number,
    private readonly keepActivity: boolean,
  ) {
    const c = spec.constants;
    this.N = c.numNeurons;
    this.B = spec.batchSize;
    this.T = epochSteps(spec);
    this.S = c.numSlots;
    this.teacher = hasSpikeTrainTeacher(spec);
    this.tables = networkTables(spec);
    const limits = gpu.device.limits;
    // The largest buffer is δ's history, T·G floats per element (or the events, T per element).
    const perEpoch = 4 * this.T * this.N * this.B * Math.max(c.numSources, 1);
    this.capacity = Math.max(1, Math.min(epochsPerPass, Math.floor(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) / perEpoch)));
    if (perEpoch > limits.maxStorageBufferBindingSize) throw new GpuUnavailableError(`one epoch needs ${(perEpoch / 2 ** 20).toFixed(0)} MiB buffers; ${gpu.adapter.name} binds at most ${(limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`);
    const sizes = this.bufferSizes(this.capacity);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    for (const [name, words] of Object.entries(sizes)) this.buffers.set(name as BufferName, gpu.device.createBuffer({ size: Math.max(4, words * 4), usage }));
    gpu.device.queue.writeBuffer(this.buffers.get("netU")!, 0, this.tables.netU);
    gpu.device.queue.writeBuffer(this.buffers.get("netF")!, 0, this.tables.netF);
    this.stepStride = Math.max(256, limits.minUniformBufferOffsetAlignment);
    this.stepUniform = gpu.device.createBuffer({ size: (this.T + 1) * this.stepStride, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  /** Words of every buffer for a pass of k epochs. */
  private bufferSizes(k: number): Record<BufferName, number> {
    const c = this.spec.constants;
    const { N, B, T, S } = this;
    const PP = N * B * k;
    const E = this.spec.rec.pre.length;
    const F = this.spec.ff.pre.length;
    const M = c.numInputs;
    return {
      netU: this.tables.netU.length,
      netF: this.tables.netF.length,
      recW: E,
      ffW: F,
      cscW: E + F,
      vHist: (T + 1) * PP,
      sHist: T * PP,
      vtHist: T * PP,
      gsHist: T * PP,
      g: 2 * S * PP,
      clampHist: c.conductanceClamp ? T * PP : 0,
      gRec: T * S * N,
      inBits: Math.ceil((T * M * B * k) / 32),
      sumU: 5 * PP,
      sumF: 2 * PP,
      coef: (4 + (this.teacher ? T : 0)) * PP,
      adj: (2 + 2 * S) * PP,
      dHist: T * c.numSources * PP,
      recEv: T * PP,
      recCnt: N * k,
      ffEv: T * M * B * k,
      ffCnt: M * k,
      recGrad: E * k,
      ffGrad: F * k,
    };
  }

  /** Bytes of GPU memory the engine holds (buffers sized for `capacity` epochs). */
  get deviceBytes(): number {
    return Object.values(this.bufferSizes(this.capacity)).reduce((a, w) => a + Math.max(4, w * 4), 0);
  }

  /** Dispatches of one pass with gradient: T + 1 forward, summaries, T backward, events and gradients, permute. */
  get dispatchesPerPass(): number {
    return 2 * this.T + 6;
  }

  /** The kernels for passes of k epochs, compiled on first use (sizes are constants of the code). */
  private kernelsFor(k: number): PassKernels {
    const cached = this.passKernels.get(k);
    if (cached) return cached;
    const c = this.spec.constants;
    const shape: KernelShape = {
      N: this.N, B: this.B, K: k, T: this.T, chunk: this.spec.chunkSteps, M: c.numInputs,
      E: this.spec.rec.pre.length, F: this.spec.ff.pre.length, u: this.tables.offsets, teacher: this.teacher,
    };
    const device = this.gpu.device;
    const stepLayout = device.createBindGroupLayout({
      entries: [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: 8 } }],
    });
    const run: PassKernels["run"] = new Map();
    for (const src of kernelSources(c, shape)) {
      const layout = device.createBindGroupLayout({
        entries: src.bindings.map((b, i) => ({ binding: i, visibility: GPUShaderStage.COMPUTE, buffer: { type: b.write ? "storage" : "read-only-storage" } })),
      });
      const module = device.createShaderModule({ code: src.code, label: src.name });
      const pipeline = device.createComputePipeline({
        layout: device.createPipelineLayout({ bindGroupLayouts: src.perStep ? [layout, stepLayout] : [layout] }),
        compute: { module, entryPoint: "main" },
        label: src.name,
      });
      const bindGroup = device.createBindGroup({ layout, entries: src.bindings.map((b, i) => ({ binding: i, resource: { buffer: this.buffers.get(b.name)! } })) });
      run.set(src.name, { pipeline, bindGroup, threads: src.threads, perStep: src.perStep });
    }
    if (!this.stepGroup) this.stepGroup = device.createBindGroup({ layout: stepLayout, entries: [{ binding: 0, resource: { buffer: this.stepUniform, size: 8 } }] });
    const kernels = { k, run };
    this.passKernels.set(k, kernels);
    return kernels;
  }

  private stepGroup: GPUBindGroup | null = null;

  runEpoch(task: EpochTask): Promise<EpochResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        // Tasks queued in this turn of the event loop (one interval's assignments) share a pass.
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Several epochs, in as few passes as the capacity allows; the same results as one runEpoch each. */
  runEpochs(tasks: EpochTask[]): Promise<EpochResult[]> {
    return Promise.all(tasks.map((t) => this.runEpoch(t)));
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.destroy();
    this.stepUniform.destroy();
    this.gpu.device.destroy();
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      // The first queued task and those after it that can share its pass: same weights, same gradient request, at
      // most one whose activity is recorded (the figures' per-slot conductances are kept for one column).
      const first = this.queue[0].task;
      const pass: typeof this.queue = [];
      let recording = false;
      for (let q = 0; q < this.queue.length && pass.length < this.capacity; ) {
        const item = this.queue[q];
        const t = item.task;
        const fits = t.recWeight === first.recWeight && t.ffWeight === first.ffWeight && t.computeGradient === first.computeGradient && !(recording && t.recordActivity);
        if (!fits) {
          q++;
          continue;
        }
        recording ||= t.recordActivity;
        pass.push(item);
        this.queue.splice(q, 1);
      }
      try {
        const results = await this.runPass(pass.map((p) => p.task));
        pass.forEach((p, k) => p.resolve(results[k]));
      } catch (e) {
        for (const p of pass) p.reject(e);
      }
    }
    this.draining = false;
  }

  private async runPass(tasks: EpochTask[]): Promise<EpochResult[]> {
    if (this.gpu.lost) throw new GpuUnavailableError(this.gpu.lost);
    const spec = this.spec;
    const device = this.gpu.device;
    const { N, B, T, S } = this;
    const k = tasks.length;
    const KB = k * B;
    const PP = N * KB;
    const kernels = this.kernelsFor(k);
    const M = spec.constants.numInputs;
    const E = spec.rec.pre.length;
    const F = spec.ff.pre.length;
    const clock = { at: performance.now() };
    const lap = () => {
      const now = performance.now();
      const seconds = (now - clock.at) / 1000;
      clock.at = now;
      return seconds;
    };
    const timing = { ...this.lastPassSeconds, epochs: k };
    const recordColumn = tasks.findIndex((t) => t.recordActivity);
    const withGradient = tasks[0].computeGradient;

    // Per-step uniforms: the step index, and the column whose conductances the figures keep (none: ~0).
    const steps = new Uint32Array(((T + 1) * this.stepStride) / 4);
    for (let t = 0; t <= T; t++) {
      steps[(t * this.stepStride) / 4] = t;
      steps[(t * this.stepStride) / 4 + 1] = recordColumn >= 0 ? recordColumn * B + spec.plotTrial : 0xffffffff;
    }
    device.queue.writeBuffer(this.stepUniform, 0, steps);

    // Initial states, canonical [b][j] and [c][l][b][j], into the columns of each epoch: element (cl, j, k·B + b).
    const v0 = new Float32Array(PP);
    const g0 = new Float32Array(2 * S * PP);
    tasks.forEach((task, e) => {
      const st = task.initialState;
      for (let j = 0; j < N; j++) for (let b = 0; b < B; b++) v0[j * KB + e * B + b] = st ? st.v[b * N + j] : spec.constants.uReset[j];
      if (st)
        for (let cl = 0; cl < 2 * S; cl++)
          for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) g0[cl * PP + j * KB + e * B + b] = st.g[(cl * B + b) * N + j];
    });
    device.queue.writeBuffer(this.buffers.get("vHist")!, 0, v0);
    device.queue.writeBuffer(this.buffers.get("g")!, 0, g0);

    // Input spikes of each epoch ([b][t][m] bytes, kept for the figures) as bits (t·M + m)·KB + column.
    const inputs: InputSpikes[] = tasks.map(() => ({ trials: B, steps: T, numInputs: M, data: new Uint8Array(B * T * M) }));
    const drives = tasks.map((task, e) => epochInputs(spec, task, inputs[e]));
    const bits = new Uint32Array(Math.max(1, Math.ceil((T * M * KB) / 32)));
    inputs.forEach((inp, e) => {
      const d = inp.data;
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          for (let m = 0; m < M; m++)
            if (d[(b * T + t) * M + m]) {
              const q = (t * M + m) * KB + e * B + b;
              bits[q >>> 5] |= 1 << (q & 31);
            }
    });
    device.queue.writeBuffer(this.buffers.get("inBits")!, 0, bits);

    // With a spike-train teacher: its spikes of each epoch in the student's layout (simulated on the same input from
    // the same state, or replayed from its recording).
    let teacherSpikes: Uint8Array | null = null;
    if (this.teacher) {
      const recording = spec.teacherRecording;
      if (recording) {
        teacherSpikes = new Uint8Array(T * PP);
        tasks.forEach((task, e) => recordedOutputs(recording, placeOf(recording, task.epoch, B, T), B, T, teacherSpikes!.subarray(e * B), { sb: 1, st: PP, sj: KB }));
      } else {
        this.uploadWeights(spec.teacherRecWeight!, spec.teacherFfWeight!);
        const enc = device.createCommandEncoder();
        this.encodeForward(enc, kernels);
        const [s] = await this.read(enc, [["sHist", 0, T * PP]]);
        teacherSpikes = Uint8Array.from(new Uint32Array(s));
        // The forward writes vHist[1..T] and updates g in place: only g goes back to the initial state.
        device.queue.writeBuffer(this.buffers.get("g")!, 0, g0);
      }
    }
    this.uploadWeights(tasks[0].recWeight, tasks[0].ffWeight);

    timing.prepare = lap();
    const enc = device.createCommandEncoder();
    this.encodeForward(enc, kernels);
    this.dispatch(enc, kernels, "summaries");
    const needSpikes = this.teacher || recordColumn >= 0 || this.keepActivity;
    const needVoltages = recordColumn >= 0 || this.keepActivity;
    const wanted: [BufferName, number, number][] = [["sumU", 0, 5 * PP], ["sumF", 0, 2 * PP], ["vHist", T * PP, PP], ["g", 0, 2 * S * PP]];
    if (needSpikes) wanted.push(["sHist", 0, T * PP]);
    if (needVoltages) wanted.push(["vHist", 0, (T + 1) * PP], ["gRec", 0, T * S * N]);
    const got = await this.read(enc, wanted);
    const sumU = new Uint32Array(got[0]);
    const sumF = new Float32Array(got[1]);
    const vT = new Float32Array(got[2]);
    const gT = new Float32Array(got[3]);
    const spikes = needSpikes ? Uint8Array.from(new Uint32Array(got[4])) : new Uint8Array(0);
    const voltages = needVoltages ? new Float32Array(got[5]) : new Float32Array(0);
    const gRec = needVoltages ? new Float32Array(got[6]) : null;
    if (this.keepActivity) this.lastActivity = { spikes, voltages, epoch: k - 1, PP, KB };

    timing.forward = lap();
    const stepGrad = this.teacher && withGradient ? new Float64Array(T * PP) : null;
    const summaries = tasks.map((task, e) => {
      const layout: ActivityLayout = {
        trials: B, steps: T, neurons: N, sb: 1, st: PP, sj: KB,
        spikes: spikes.subarray(e * B), voltages: voltages.subarray(e * B), voltageOffset: PP,
      };
      const trials = this.trialSummaries(sumU, sumF, e, KB, PP);
      const summary = summarizeEpoch(spec, layout, trials, task.computeGradient, teacherSpikes?.subarray(e * B) ?? null, stepGrad?.subarray(e * B) ?? null);
      return { layout, trials, summary };
    });

    timing.loss = lap();
    let grads: { rec: Float32Array; ff: Float32Array } | null = null;
    if (withGradient) {
      // Loss coefficients into the element layout: [∂L/∂s | devCoef | meanCoef | meanV | (teacher) dL/ds[t][x]].
      const coef = new Float32Array((4 + (stepGrad ? T : 0)) * PP);
      summaries.forEach(({ summary: s }, e) => {
        for (let j = 0; j < N; j++)
          for (let b = 0; b < B; b++) {
            const x = j * KB + e * B + b;
            coef[x] = s.spikeGrad![j];
            coef[PP + x] = s.devCoef![b * N + j];
            coef[2 * PP + x] = s.meanCoef![b * N + j];
            coef[3 * PP + x] = s.meanV[b * N + j];
          }
      });
      if (stepGrad) coef.set(stepGrad, 4 * PP);
      device.queue.writeBuffer(this.buffers.get("coef")!, 0, coef);
      const bwd = device.createCommandEncoder();
      for (let t = T - 1; t >= 0; t--) this.dispatch(bwd, kernels, "backward", t);
      for (const name of ["recEvents", "ffEvents", "recGrad", "ffGrad"]) this.dispatch(bwd, kernels, name);
      const [rec, ff] = await this.read(bwd, [["recGrad", 0, E * k], ["ffGrad", 0, F * k]]);
      grads = { rec: new Float32Array(rec), ff: new Float32Array(ff) };
    }
    timing.backward = lap();

    const results = tasks.map((task, e) => {
      const { layout, trials, summary } = summaries[e];
      const finalState = { v: new Float32Array(B * N), g: new Float32Array(2 * S * B * N) };
      for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) finalState.v[b * N + j] = vT[j * KB + e * B + b];
      for (let cl = 0; cl < 2 * S; cl++)
        for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) finalState.g[(cl * B + b) * N + j] = gT[cl * PP + j * KB + e * B + b];
      const activity = task.recordActivity
        ? extractTrialActivity(spec, task.epoch, layout, trials.count, inputs[e], (b, t, j) => voltages[t * PP + j * KB + e * B + b], (_b, t, j, l) => gRec![(t * S + l) * N + j])
        : null;
      const g = grads && { recGrad: grads.rec.slice(e * E, (e + 1) * E), ffGrad: grads.ff.slice(e * F, (e + 1) * F) };
      return epochResult(task.epoch, summary, g ?? { recGrad: null, ffGrad: null }, finalState, activity, drives[e]);
    });
    timing.results = lap();
    this.lastPassSeconds = timing;
    return results;
  }

  /**
   * Wall-clock seconds of the last pass by phase (the benchmark's "where the time goes"): host preparation (states,
   * inputs, weights), the forward on the GPU with its readback, the loss on the CPU, the backward on the GPU with its
   * readback, and the results' assembly.
   */
  lastPassSeconds = { prepare: 0, forward: 0, loss: 0, backward: 0, results: 0, epochs: 0 };

  private lastActivity: { spikes: Uint8Array; voltages: Float32Array; epoch: number; PP: number; KB: number } | null = null;

  /** Spikes and voltages (after each step) of the last epoch of the last pass in [b][t][j] layout (keepActivity). */
  recordedActivity(): { spikes: Uint8Array; voltages: Float32Array } {
    if (!this.lastActivity) throw new Error("webgpu engine: recordedActivity needs keepActivity and a computed epoch");
    const { N, B, T } = this;
    const { spikes: s, voltages: v, epoch: e, PP, KB } = this.lastActivity;
    const spikes = new Uint8Array(B * T * N);
    const voltages = new Float32Array(B * T * N);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let j = 0; j < N; j++) {
          const x = t * PP + j * KB + e * B + b;
          spikes[(b * T + t) * N + j] = s[x];
          voltages[(b * T + t) * N + j] = v[x + PP];
        }
    return { spikes, voltages };
  }

  /** Epoch e's per-(trial, neuron) summaries from the summaries kernel's element layout into b·N + j. */
  private trialSummaries(sumU: Uint32Array, sumF: Float32Array, e: number, KB: number, PP: number): TrialSummaries {
    const { N, B } = this;
    const n = B * N;
    const out: TrialSummaries = {
      count: new Int32Array(n), first: new Int32Array(n), last: new Int32Array(n),
      sum: new Float64Array(n), sumSq: new Float64Array(n), meanV: new Float64Array(n), stdV: new Float64Array(n),
    };
    for (let j = 0; j < N; j++)
      for (let b = 0; b < B; b++) {
        const x = j * KB + e * B + b;
        const i = b * N + j;
        out.count[i] = sumU[x];
        out.first[i] = sumU[PP + x];
        out.last[i] = sumU[2 * PP + x];
        out.sum[i] = sumU[3 * PP + x];
        out.sumSq[i] = sumU[4 * PP + x];
        out.meanV[i] = sumF[x];
        out.stdV[i] = sumF[PP + x];
      }
    return out;
  }

  private uploadWeights(rec: Float32Array, ff: Float32Array): void {
    const q = this.gpu.device.queue;
    if (rec.length) q.writeBuffer(this.buffers.get("recW")!, 0, rec as Float32Array<ArrayBuffer>);
    if (ff.length) q.writeBuffer(this.buffers.get("ffW")!, 0, ff as Float32Array<ArrayBuffer>);
  }

  /** Weights into in-edge order, then the T + 1 forward dispatches. */
  private encodeForward(enc: GPUCommandEncoder, kernels: PassKernels): void {
    this.dispatch(enc, kernels, "permute");
    for (let t = 0; t <= this.T; t++) this.dispatch(enc, kernels, "forward", t);
  }

  /** One dispatch of kernel `name` over its threads (2-D when more workgroups than one dimension holds). */
  private dispatch(enc: GPUCommandEncoder, kernels: PassKernels, name: string, step = 0): void {
    const k = kernels.run.get(name)!;
    if (k.threads === 0) return;
    const pass = enc.beginComputePass();
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, k.bindGroup);
    if (k.perStep) pass.setBindGroup(1, this.stepGroup!, [step * this.stepStride]);
    const groups = Math.ceil(k.threads / WORKGROUP);
    const maxX = this.gpu.device.limits.maxComputeWorkgroupsPerDimension;
    pass.dispatchWorkgroups(Math.min(groups, maxX), Math.ceil(groups / maxX));
    pass.end();
  }

  /** Submits `enc` with copies of the given word ranges and returns their contents. */
  private async read(enc: GPUCommandEncoder, ranges: [BufferName, number, number][]): Promise<ArrayBuffer[]> {
    const device = this.gpu.device;
    const total = ranges.reduce((a, [, , n]) => a + Math.max(1, n) * 4, 0);
    const staging = device.createBuffer({ size: total, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    let at = 0;
    const places: [number, number][] = [];
    for (const [name, from, n] of ranges) {
      if (n > 0) enc.copyBufferToBuffer(this.buffers.get(name)!, from * 4, staging, at, n * 4);
      places.push([at, n * 4]);
      at += Math.max(1, n) * 4;
    }
    device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      throw new GpuUnavailableError(this.gpu.lost ?? `GPU readback failed: ${(e as Error).message}`);
    }
    const mapped = staging.getMappedRange();
    const out = places.map(([p, n]) => mapped.slice(p, p + n));
    staging.unmap();
    staging.destroy();
    return out;
  }
}
