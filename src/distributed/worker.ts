/**
 * A worker process: a ZeroMQ DEALER that announces itself, receives the static network once (cached by hash),
 * weights by version, and computes the epochs it is assigned (several at once with --threads). Where those are an
 * interval's first epochs (a reduce group), it sums their gradients itself and returns them together. It holds no
 * training state: a crash loses nothing but the epochs in flight, which the coordinator reassigns.
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { Dealer } from "zeromq";
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, Message, messageBytes, ProtocolError, AssignMessage, ReduceGroup, ResultMessage } from "./protocol.js";
import { NetworkSpec } from "../model/network.js";
import { Engine, EpochResult } from "../engine/engine.js";
import { GpuUnavailableError } from "../engine/webgpu/gpu-device.js";
import { KeyPair } from "./curve-auth.js";
import { factorCounts, factorLogGradient, specTypePairs } from "../model/scaling-factors.js";
import { GradientReducer } from "../model/optimizer.js";

/** The gradients of a burn-in (forward-only) epoch's result. */
const NO_GRADIENT = new Float32Array(0);

export interface WorkerOptions {
  endpoint: string;
  /** Builds the engine for a network (sparse-cpu, or tfjs on a GPU). */
  createEngine: (spec: NetworkSpec) => Promise<Engine>;
  engineName: string;
  threads: number;
  /** Seconds without any message from the coordinator before the worker gives up and exits. */
  coordinatorTimeout: number;
  heartbeatInterval: number;
  log?: (line: string) => void;
  onEpoch?: (seconds: number, trialSteps: number) => void;
  /** CURVE (curve-auth.ts): the coordinator's public key and this worker's key pair; absent = no authentication. */
  curve?: { serverKey: string; keyPair: KeyPair };
}

/** How long a leaving worker waits for the coordinator's answer before it closes anyway. */
const LEAVE_ANSWER_MS = 5000;

/**
 * A reduce group (ReduceGroup) in progress: the results computed so far, until all are in. Once one of its epochs
 * failed, it is broken: its results go back one by one, with their gradients, as results of epochs outside a group do.
 */
interface GroupInProgress {
  group: ReduceGroup;
  weightsVersion: number;
  results: Map<number, ResultMessage>;
  broken: boolean;
}

export class WorkerProcess {
  private readonly socket: Dealer;
  readonly id = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  private spec: NetworkSpec | null = null;
  /** Per edge, its connection-type pair, when the network trains scaling factors (spec.reduceToScalingFactors). */
  private typePairs: { rec: Int32Array; ff: Int32Array } | null = null;
  private engine: Engine | null = null;
  /** The weights of the current version; epochs of an interval all use it. */
  private weights: { version: number; rec: Float32Array; ff: Float32Array } | null = null;
  /** Reduce groups of the current weights version in progress, by their first epoch. */
  private groups = new Map<number, GroupInProgress>();
  private lastHeard = Date.now();
  /** When the last hello went out: the network's arrival is timed from it. */
  private helloAt = Date.now();
  private sendChain: Promise<void> = Promise.resolve();
  private closed = false;
  /** What run() returns: 0, or why the worker stopped (2 refused, 3 coordinator silent, 4 GPU lost). */
  private exitCode = 0;
  /** Set once this worker told the coordinator that it leaves (leave()). */
  private leaving = false;
  private readonly log: (line: string) => void;
  /** Where this worker serves Prometheus metrics (0 = nowhere): announced, so that the run can list its targets. */
  metricsPort = 0;

  constructor(private readonly opts: WorkerOptions) {
    const curve = opts.curve;
    this.socket = new Dealer({
      maxMessageSize: MAX_MESSAGE_BYTES,
      linger: 0,
      ...(curve ? { curveServerKey: curve.serverKey, curvePublicKey: curve.keyPair.publicKey, curveSecretKey: curve.keyPair.secretKey } : {}),
    });
    this.log = opts.log ?? ((l) => console.error(`[snn-worker ${this.id}] ${l}`));
  }

  /** Runs until shutdown (resolves 0), or the coordinator is gone for coordinatorTimeout (resolves 3). */
  async run(): Promise<number> {
    this.socket.connect(this.opts.endpoint);
    await this.hello();
    const timer = setInterval(() => {
      if (Date.now() - this.lastHeard > this.opts.coordinatorTimeout * 1000) {
        this.log(`no message from the coordinator at ${this.opts.endpoint} for ${this.opts.coordinatorTimeout} s; exiting`);
        this.exitCode = 3;
        this.close();
        return;
      }
      const cpu = process.cpuUsage();
      const resources = { rssBytes: process.memoryUsage.rss(), cpuSeconds: (cpu.user + cpu.system) / 1e6 };
      this.send({ type: "heartbeat", resources }).catch(() => {});
    }, this.opts.heartbeatInterval * 1000);
    try {
      for await (const frames of this.socket) {
        this.lastHeard = Date.now();
        let msg: Message;
        try {
          msg = decodeMessage(frames);
        } catch (e) {
          this.log(`ignored a bad message from the coordinator: ${(e as Error).message}`);
          if (e instanceof ProtocolError && e.message.startsWith("protocol version mismatch")) {
            this.exitCode = 2;
            break;
          }
          continue;
        }
        if (msg.type === "shutdown") {
          this.log(`shutdown: ${msg.reason}`);
          break;
        }
        if (msg.type === "reject") {
          this.log(`refused by the coordinator: ${msg.reason}`);
          this.exitCode = 2;
          break;
        }
        // A worker that leaves takes no more work (the coordinator takes back what it assigned meanwhile).
        if (this.leaving) continue;
        if (msg.type === "rejoin") await this.hello();
        else if (msg.type === "network") {
          // How long the network took to arrive (the coordinator sends it after this worker's hello) and to load.
          const arrived = (Date.now() - this.helloAt) / 1000;
          const t0 = Date.now();
          await this.setNetwork(msg.spec);
          this.log(`network of ${(messageBytes(frames) / 2 ** 20).toFixed(1)} MiB received ${arrived.toFixed(2)} s after hello; engine ready ${((Date.now() - t0) / 1000).toFixed(2)} s later`);
          // Until it hears this the coordinator assigns no epoch (and sends no weights) to this worker.
          await this.send({ type: "ready", networkHash: msg.spec.hash });
        }
        // Not awaited: with --threads T several epochs are computed at once; results go back as they finish.
        else if (msg.type === "assign") void this.compute(msg);
      }
    } catch (e) {
      if (!this.closed) throw e;
    } finally {
      clearInterval(timer);
      this.close();
    }
    return this.exitCode;
  }

  /** Announces this worker; the network it already holds is named so that it is not sent again. */
  private hello(): Promise<void> {
    this.helloAt = Date.now();
    return this.send({
      type: "hello",
      workerId: this.id,
      hostname: hostname(),
      pid: process.pid,
      engine: this.opts.engineName,
      threads: this.opts.threads,
      metricsPort: this.metricsPort,
      networkHash: this.spec?.hash ?? null,
    });
  }

  /**
   * Stops after telling the coordinator (a `leaving` message), so that it gives this worker's epochs to others at once
   * rather than after worker_timeout. The coordinator's shutdown in answer ends run(); without one within
   * LEAVE_ANSWER_MS (the coordinator is gone), the worker closes anyway. Called again, it closes at once.
   */
  leave(reason: string, exitCode = 0): void {
    if (this.leaving) return this.close();
    this.leaving = true;
    this.exitCode = exitCode;
    this.send({ type: "leaving", reason }).catch(() => {});
    setTimeout(() => this.close(), LEAVE_ANSWER_MS).unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.engine?.dispose();
    this.socket.close();
  }

  /** ZeroMQ allows one pending send per socket: concurrent epochs answer through this chain. */
  private send(m: Message): Promise<void> {
    const frames = encodeMessage(m);
    this.sendChain = this.sendChain.then(() => (this.closed ? undefined : this.socket.send(frames))).catch((e) => {
      if (!this.closed) this.log(`send failed: ${(e as Error).message}`);
    });
    return this.sendChain;
  }

  /** The gradients a result carries: per edge, or reduced to ∂L/∂ln S per type pair; empty without a gradient. */
  private resultGradients(r: EpochResult, w: { rec: Float32Array; ff: Float32Array }): { recGrad: Float32Array; ffGrad: Float32Array } {
    if (!r.recGrad || !r.ffGrad) return { recGrad: NO_GRADIENT, ffGrad: NO_GRADIENT };
    const pairs = this.typePairs;
    if (!pairs) return { recGrad: r.recGrad, ffGrad: r.ffGrad };
    const counts = factorCounts(this.spec!.constants, this.spec!.teacherForcing?.inputTypes);
    const g = factorLogGradient(
      [
        { grad: r.recGrad, weight: w.rec, pair: pairs.rec },
        { grad: r.ffGrad, weight: w.ff, pair: pairs.ff },
      ],
      counts,
    );
    return { recGrad: g.rec, ffGrad: g.ff };
  }

  private async setNetwork(spec: NetworkSpec): Promise<void> {
    if (this.spec?.hash === spec.hash) return;
    this.engine?.dispose();
    this.spec = spec;
    this.weights = null;
    this.typePairs = spec.reduceToScalingFactors ? specTypePairs(spec) : null;
    this.engine = await this.opts.createEngine(spec);
    this.log(`network ${spec.hash.slice(0, 12)}: ${spec.constants.numNeurons} neurons, ${spec.rec.pre.length} recurrent + ${spec.ff.pre.length} feedforward synapses, engine ${this.engine.kind}`);
  }

  private async compute(a: AssignMessage): Promise<void> {
    const group = a.reduceGroup ? this.groupOf(a.reduceGroup, a.weightsVersion, a.epoch) : null;
    const fail = async (message: string): Promise<void> => {
      await this.send({ type: "failure", epoch: a.epoch, message });
      if (group) await this.breakGroup(group);
    };
    if (!this.engine || !this.spec) return fail("no network received yet");
    if (a.weights) {
      if (a.weights.rec.length !== this.spec.rec.pre.length || a.weights.ff.length !== this.spec.ff.pre.length)
        return fail(`weights do not match the network (${a.weights.rec.length}/${a.weights.ff.length} values)`);
      this.weights = { version: a.weightsVersion, ...a.weights };
      // Groups of earlier versions will not complete: the coordinator has moved on.
      for (const [first, g] of this.groups) if (g.weightsVersion !== a.weightsVersion) this.groups.delete(first);
    }
    if (!this.weights || this.weights.version !== a.weightsVersion) return fail(`weights version ${a.weightsVersion} not held`);
    const started = performance.now();
    const weights = this.weights;
    try {
      const r = await this.engine.runEpoch({
        epoch: a.epoch,
        initialState: a.initialState,
        recWeight: weights.rec,
        ffWeight: weights.ff,
        computeGradient: a.computeGradient,
        recordActivity: a.recordActivity,
      });
      const seconds = (performance.now() - started) / 1000;
      this.opts.onEpoch?.(seconds, this.spec.batchSize * this.spec.chunkSteps * this.spec.chunksPerEpoch);
      const result: ResultMessage = { ...r, type: "result", runId: a.runId, weightsVersion: a.weightsVersion, ...this.resultGradients(r, weights), computeSeconds: seconds };
      await (group ? this.groupResult(group, result) : this.send(result));
    } catch (e) {
      if (e instanceof GpuUnavailableError) {
        // The device is gone (lost, reset, driver crash): every later epoch would fail too. Leave, so that the
        // coordinator drops this worker and gives its epochs to the others. The other epochs of the same pass fail
        // with it: the coordinator takes them back with the rest.
        if (this.leaving) return;
        this.log(`${e.message}; this worker stops (epoch ${a.epoch} and the others go to other workers)`);
        void fail(e.message);
        this.leave(e.message, 4);
        return;
      }
      this.log(`epoch ${a.epoch} failed: ${(e as Error).stack ?? e}`);
      await fail((e as Error).message);
    }
  }

  /**
   * The group in progress that the assignment of `epoch` belongs to. The coordinator sends a group's assignments in
   * epoch order, so the first one starts it afresh (a group given again, after this worker was dropped and rejoined,
   * starts from nothing).
   */
  private groupOf(group: ReduceGroup, weightsVersion: number, epoch: number): GroupInProgress {
    const first = group.epochs[0];
    let g = this.groups.get(first);
    if (!g || g.weightsVersion !== weightsVersion || epoch === first) {
      g = { group, weightsVersion, results: new Map(), broken: false };
      this.groups.set(first, g);
    }
    return g;
  }

  /**
   * Keeps a reduce group's result until the group is complete, then sends all its results in one message with their
   * gradients summed in epoch order (the interval's mean where the group is the whole interval).
   */
  private groupResult(g: GroupInProgress, r: ResultMessage): Promise<void> {
    if (g.broken) return this.send(r);
    g.results.set(r.epoch, r);
    if (g.results.size < g.group.epochs.length) return Promise.resolve();
    // Its entry, unless the group was given again since (groupOf): that one is another's.
    if (this.groups.get(g.group.epochs[0]) === g) this.groups.delete(g.group.epochs[0]);
    const reducer = new GradientReducer();
    reducer.start(g.group.intervalEpochs);
    const results = g.group.epochs.map((e) => g.results.get(e)!);
    results.forEach((x, k) => reducer.add(k, [x.recGrad, x.ffGrad]));
    const [recSum, ffSum] = reducer.prefixSums();
    return this.send({ type: "reduced-results", results: results.map(({ type: _, ...x }) => ({ ...x, recGrad: NO_GRADIENT, ffGrad: NO_GRADIENT })), recSum, ffSum });
  }

  /** One of a group's epochs failed: the group cannot complete, so its results go back one by one, those kept and those to come. */
  private async breakGroup(g: GroupInProgress): Promise<void> {
    g.broken = true;
    for (const r of g.results.values()) await this.send(r);
    g.results.clear();
  }
}
