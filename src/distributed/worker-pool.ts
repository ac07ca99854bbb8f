/**
 * The coordinator's side of the wire: a ZeroMQ ROUTER that registers workers, sends them the network and weights,
 * hands out the epochs of an interval as workers become free, and takes them back from workers that fail, hang or
 * leave. It only moves epochs and results; what is done with results (reduction in epoch order) is the trainer's,
 * except that a worker given an interval's first epochs at once sums their gradients itself (a reduce group).
 */
import { ChildProcess, spawn } from "node:child_process";
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { AllowList, KeyPair, ZAP_DOMAIN, ZapHandler } from "./curve-auth.js";
import { CoordinatorSocket } from "./coordinator-socket.js";
import { NetworkSpec } from "../model/network.js";
import { firstNonFinite, sumOfSquares } from "../model/optimizer.js";
import { factorCounts } from "../model/scaling-factors.js";
import {
  AssignMessage,
  decodeMessage,
  encodeMessage,
  HelloMessage,
  MAX_GROUP_EPOCHS,
  MAX_MESSAGE_BYTES,
  Message,
  messageBytes,
  ReducedResultsMessage,
  ReduceGroup,
  ResultMessage,
  WorkerResources,
} from "./protocol.js";
import { isFiniteState, StreamState } from "../engine/engine.js";

export type FailureReason = "timeout" | "disconnect" | "crash" | "protocol";

/** What the run records of a worker that joined (metadata.json, the Prometheus targets). */
export interface JoinedWorker {
  id: string;
  engine: string;
  hostname: string;
  threads: number;
  /** Its /metrics port on `hostname` (0 = none). */
  metricsPort: number;
}

export interface PoolEvents {
  log(line: string): void;
  workersChanged?(connected: number): void;
  /**
   * A worker joined: its description and the run's engine, which the first worker set. A worker with another engine
   * is refused instead (bit-identity holds per engine; the log and workerFailed("protocol") say so).
   */
  workerJoined?(worker: JoinedWorker, runEngine: string): void;
  workerFailed?(reason: FailureReason): void;
  bytes?(sent: number, received: number): void;
  epochsInFlight?(n: number): void;
  /** Time to encode and queue the interval's first assignments, weights included (the weights broadcast). */
  broadcast?(seconds: number): void;
  /** A peer was refused: its CURVE key, its handshake, or a message it sent (snn_peers_refused_total{reason}). */
  peerRefused?(reason: PeerRefusal): void;
  /** A worker's heartbeat said what it uses (memory, CPU time). */
  workerResources?(workerId: string, resources: WorkerResources): void;
}

export type PeerRefusal = "not_allowed" | "handshake" | "message";
export const PEER_REFUSALS: readonly PeerRefusal[] = ["not_allowed", "handshake", "message"];

export interface EpochAssignment {
  epoch: number;
  stream: number;
  initialState: StreamState | null;
  computeGradient: boolean;
  recordActivity: boolean;
}

/** What the pool hands over of an interval as it accepts results, so that the caller can start reducing. */
export interface IntervalReceiver {
  /**
   * The interval's k-th task's result, once, and whether its final stream state is finite (the pool checked it
   * already: a stream is carried on only from a finite state).
   */
  result(index: number, result: ResultMessage, stateIsFinite: boolean): void;
  /**
   * The gradients of the interval's first `count` tasks, summed in epoch order by the worker that computed them as a
   * reduce group (ReduceGroup; the interval's mean where `count` is all of them), and their Σg² (sumOfSquares), which
   * the pool summed to check them. Their results, which follow, carry no gradients.
   */
  prefixSums(count: number, sums: Float64Array[], sumSquares: number): void;
}

export class NoWorkersError extends Error {}

/** The coordinator's endpoint cannot be bound (taken, or not an address of this machine). */
export class BindError extends Error {}

/** The run was interrupted (a signal) while the pool waited for workers or for an interval that would not finish. */
export class InterruptedError extends Error {}

/** An epoch failed on workers again and again (MAX_EPOCH_FAILURES times): a deterministic problem, not a flaky worker. */
export class EpochFailedError extends Error {}

interface WorkerEntry {
  key: string;
  routingId: Buffer;
  hello: HelloMessage;
  lastSeen: number;
  weightsVersion: number;
  /** Epochs assigned and not yet answered; at most hello.threads. */
  busy: EpochAssignment[];
  /** When each epoch in `busy` was assigned (Date.now()). */
  assignedAt: Map<number, number>;
  computed: number;
  /** Of those, the epochs it computed in reduce groups. */
  grouped: number;
  /** Epochs this worker failed: it gets one of them again only when no other connected worker can take it. */
  failedEpochs: Set<number>;
  /** The reduce group it computes (all its epochs are in `busy`), until its results or one of its epochs' failure. */
  group: ReduceGroup | null;
}

/** No NaN or ±Infinity in the numbers the trainer uses: the total loss and the gradients (the final state aside). */
function isFiniteOutcome(r: ResultMessage): boolean {
  return Number.isFinite(r.losses.total) && firstNonFinite(r.recGrad) < 0 && firstNonFinite(r.ffGrad) < 0;
}

/** Removes and returns the worker's assignment of this epoch, if it has one. */
function takeAssignment(w: WorkerEntry, epoch: number): EpochAssignment | null {
  const i = w.busy.findIndex((t) => t.epoch === epoch);
  if (i < 0) return null;
  w.assignedAt.delete(epoch);
  return w.busy.splice(i, 1)[0];
}

/** An epoch that failed this many times (on one worker or several) is itself the problem: stop instead of looping. */
const MAX_EPOCH_FAILURES = 3;

/**
 * Peers that announced themselves and are not ready yet (no network built): at most this many are remembered (a few
 * hundred bytes each), others are refused until some are ready or dropped, so that a flood of hellos cannot grow the
 * coordinator's memory without bound. Generous for a cluster whose workers all start at once.
 */
const MAX_JOINING_PEERS = 1024;
/**
 * A worker that answers heartbeats but holds an epoch this many times longer than the longest epoch so far took (from
 * assignment to result, on any worker), and longer than worker_timeout, has lost it (a message lost, an engine stuck):
 * it is dropped as a silent one is, its epochs go to other workers, and it joins again at its next heartbeat. Without
 * this the run would wait for that result forever, since the worker never falls silent.
 */
const STALL_FACTOR = 10;
/** Joining peers receiving the network at the same time; the others wait their turn (the network frame is shared). */
const MAX_NETWORK_TRANSFERS = 4;
/** Refusals logged one by one in each heartbeat interval; more are counted in one line, so a flood cannot fill the log. */
const REFUSALS_LOGGED_PER_TICK = 5;
/**
 * close(): how long it waits at most for the peers it told to shut down to close their connections. The CLIs end with
 * process.exit, which skips ZeroMQ's linger (it applies only when the context is terminated): a shutdown still queued
 * in the socket then is lost, and its worker waits out its --timeout for a coordinator that is gone.
 */
const SHUTDOWN_DELIVERY_MS = 3000;

/** A peer that said hello and has not yet said ready: it holds no epoch and is sent no weights. */
interface JoiningPeer {
  routingId: Buffer;
  hello: HelloMessage;
  lastSeen: number;
  networkSent: boolean;
}

export class WorkerPool {
  /** The ROUTER every worker connects to, on a thread of its own. */
  private readonly socket: CoordinatorSocket;
  /** Answers the CURVE handshakes of the socket's ROUTER when the pool authenticates its peers. */
  private readonly zap: ZapHandler | null;
  private readonly workers = new Map<string, WorkerEntry>();
  /** In the order they said hello: the network goes to the earliest first. */
  private readonly joining = new Map<string, JoiningPeer>();
  private refusals = { logged: 0, unlogged: 0 };
  /** Connections the socket accepted and that are still open, and disconnections so far (its monitor events). */
  private connections = { open: 0, closed: 0 };
  private readonly children = new Map<number, ChildProcess>();
  /** The last message handed to the socket, which sends them in order: it has left once this has. */
  private lastSend: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private current: {
    version: number;
    rec: Float32Array;
    ff: Float32Array;
    pending: EpochAssignment[];
    /** Epochs whose results carry gradients (all but burn-in ones). */
    withGradient: Set<number>;
    results: Map<number, ResultMessage>;
    failures: Map<number, number>;
    /** Workers whose result for an epoch held non-finite numbers. */
    nonFinite: Map<number, Set<string>>;
    update: number;
    total: number;
    receiver: IntervalReceiver | undefined;
    resolve: (r: ResultMessage[]) => void;
    reject: (e: Error) => void;
    lastWorkerSeen: number;
  } | null = null;
  /** The engine of the first worker that joined: every other worker must use it. */
  private runEngine: string | null = null;
  /** Epochs of the current interval in reduction order. */
  private order: number[] = [];
  /** The longest time from an assignment to its result so far, ms (0 = no result yet): what a stalled epoch is measured against. */
  private longestEpochMs = 0;
  private closed = false;
  /** Why the run was interrupted (interrupt()), or null. */
  private interrupted: string | null = null;
  boundEndpoint = "";

  constructor(
    private readonly spec: NetworkSpec,
    private readonly runId: string,
    private readonly opts: {
      heartbeatInterval: number;
      workerTimeout: number;
      noWorkerTimeout: number;
      events: PoolEvents;
      /** CURVE: the coordinator's key pair and the worker keys it admits (curve-auth.ts); absent = no authentication. */
      curve?: { keyPair: KeyPair; allow: AllowList };
    },
  ) {
    const curve = opts.curve;
    this.socket = new CoordinatorSocket(
      {
        maxMessageSize: MAX_MESSAGE_BYTES,
        // For a close() not followed by process.exit (tests, embedders); close() itself waits for the shutdowns to leave.
        linger: 2000,
        ...(curve ? { curveServer: true, curvePublicKey: curve.keyPair.publicKey, curveSecretKey: curve.keyPair.secretKey, zapDomain: ZAP_DOMAIN } : {}),
      },
      (message) => {
        if (!this.closed) this.opts.events.log(`send failed: ${message}`);
      },
    );
    this.zap = curve ? new ZapHandler(curve.allow) : null;
  }

  get connected(): number {
    return this.workers.size;
  }

  async bind(endpoint: string): Promise<string> {
    // Watched from before the bind (the socket's thread watches from before it binds), so that every connection is counted.
    void this.watchEvents();
    try {
      await this.zap?.start();
      this.boundEndpoint = await this.socket.bind(endpoint);
    } catch (e) {
      throw new BindError(`--bind ${endpoint}: cannot listen there (${(e as Error).message}); choose another address or port`);
    }
    void this.receiveLoop();
    this.timer = setInterval(() => this.tick(), this.opts.heartbeatInterval * 1000);
    return this.boundEndpoint;
  }

  /**
   * Starts one local worker process per metrics port (0 = none; the embedded default), with `workerArgs` added to their
   * command line (snn-coord --engine) and `ownArgs(i)` to the i-th one's (its CURVE key); their exit is noticed at once.
   */
  spawnLocal(metricsPorts: number[], metricsHost: string, workerArgs: string[] = [], ownArgs: (i: number) => string[] = () => []): void {
    const cli = fileURLToPath(new URL("../cli/snn-worker.js", import.meta.url));
    const connect = this.boundEndpoint.replace("tcp://0.0.0.0", "tcp://127.0.0.1");
    for (const [i, metricsPort] of metricsPorts.entries()) {
      const child = spawn(
        process.execPath,
        [cli, "--connect", connect, "--heartbeat", String(this.opts.heartbeatInterval), "--timeout", String(Math.max(this.opts.workerTimeout * 2, 30)), "--metrics-port", String(metricsPort), "--metrics-port-search", "--metrics-host", metricsHost, ...workerArgs, ...ownArgs(i)],
        // In a process group of their own, local workers do not get the terminal's Ctrl-C (sent to the whole
        // foreground group): the coordinator stops them itself after its last update. The IPC channel tells them
        // when the coordinator is gone, however it ended.
        { stdio: ["ignore", "inherit", "inherit", "ipc"], detached: true },
      );
      const pid = child.pid!;
      this.children.set(pid, child);
      child.on("exit", (code, signal) => {
        this.children.delete(pid);
        if (this.closed) return;
        for (const w of this.workers.values()) {
          if (w.hello.pid === pid && w.hello.hostname === hostname()) this.drop(w, "crash", `local worker ${pid} exited (${signal ?? `code ${code}`})`);
        }
        for (const [key, j] of this.joining) if (j.hello.pid === pid && j.hello.hostname === hostname()) this.joining.delete(key);
      });
    }
  }

  /**
   * Stops waiting: waitForWorkers and the interval in progress reject with an InterruptedError (results of the
   * interval are abandoned; the caller's state is that of the last completed update).
   */
  interrupt(why: string): void {
    this.interrupted = why;
    this.current?.reject(new InterruptedError(why));
  }

  /** Resolves once `min` workers are registered; rejects after `timeoutS`. */
  async waitForWorkers(min: number, timeoutS: number): Promise<void> {
    const deadline = Date.now() + timeoutS * 1000;
    while (this.workers.size < min) {
      if (this.interrupted) throw new InterruptedError(this.interrupted);
      if (this.closed) throw new NoWorkersError("coordinator closed");
      if (Date.now() > deadline) throw new NoWorkersError(`only ${this.workers.size} of ${min} workers joined within ${timeoutS} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Computes the given epochs with the given weights and resolves with their results in the order of `tasks`.
   * `receiver` is handed each task's result as it is accepted (once per task, in arrival order), and a reduce group's
   * summed gradients, so that the caller can start reducing. Rejects with NoWorkersError when no worker has been connected for
   * noWorkerTimeout seconds.
   */
  runInterval(
    update: number,
    version: number,
    weights: { rec: Float32Array; ff: Float32Array },
    tasks: EpochAssignment[],
    receiver?: IntervalReceiver,
  ): Promise<ResultMessage[]> {
    return new Promise((resolve, reject) => {
      this.current = {
        receiver,
        version,
        rec: weights.rec,
        ff: weights.ff,
        pending: [...tasks],
        withGradient: new Set(tasks.filter((t) => t.computeGradient).map((t) => t.epoch)),
        results: new Map(),
        failures: new Map(),
        nonFinite: new Map(),
        update,
        total: tasks.length,
        resolve: (r) => {
          this.current = null;
          resolve(r);
        },
        reject: (e) => {
          this.current = null;
          reject(e);
        },
        lastWorkerSeen: Date.now(),
      };
      this.order = tasks.map((t) => t.epoch);
      const started = performance.now();
      this.dispatch();
      this.opts.events.broadcast?.((performance.now() - started) / 1000);
    });
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    for (const w of this.workers.values()) {
      this.opts.events.log(`worker ${w.hello.workerId} computed ${w.computed} epochs${w.grouped > 0 ? ` (${w.grouped} of them in reduce groups, their gradients summed by the worker)` : ""}`);
      this.send(w.routingId, { type: "shutdown", reason });
    }
    // Peers still joining (a dropped worker announcing itself again, say) are told too, instead of waiting out their
    // --timeout for a coordinator that is gone.
    for (const j of this.joining.values()) this.send(j.routingId, { type: "shutdown", reason });
    const told = this.workers.size + this.joining.size;
    const closedBefore = this.connections.closed;
    await Promise.race([this.lastSend, new Promise((r) => setTimeout(r, 1000))]);
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const exits = [...this.children.values()].map(
      (c) =>
        new Promise<void>((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          const kill = setTimeout(() => c.kill("SIGKILL"), 5000);
          c.once("exit", () => {
            clearTimeout(kill);
            r();
          });
        }),
    );
    await Promise.all(exits);
    // A peer closes its connection once it has its shutdown: until they all have (or every connection is closed), the
    // shutdowns may still sit in the socket, and process.exit would lose them (SHUTDOWN_DELIVERY_MS).
    const deadline = Date.now() + SHUTDOWN_DELIVERY_MS;
    while (told > 0 && this.connections.open > 0 && this.connections.closed - closedBefore < told && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.socket.close();
    this.zap?.close();
  }

  /**
   * The socket's events: connections opened and closed (close() waits for its peers to leave), and, when the pool
   * authenticates, refused handshakes: peers that fail the CURVE handshake never send a message. A key the allow-list
   * does not hold fails authentication; a peer without CURVE, or with another server key, fails the handshake itself.
   */
  private async watchEvents(): Promise<void> {
    try {
      for await (const event of this.socket.events()) {
        if (event.type === "accept") this.connections.open++;
        if (event.type === "disconnect") {
          this.connections.open--;
          this.connections.closed++;
        }
        if (!this.zap || (event.type !== "handshake:error:auth" && event.type !== "handshake:error:protocol" && event.type !== "handshake:error:other")) continue;
        const reason: PeerRefusal = event.type === "handshake:error:auth" ? "not_allowed" : "handshake";
        this.opts.events.peerRefused?.(reason);
        this.logRefusal(reason === "not_allowed" ? "refused a peer: its CURVE key is not in the allow-list (--keys)" : `refused a peer: CURVE handshake failed (${event.error?.message ?? event.type}; no key, or another coordinator key)`);
      }
    } catch {
      // The event stream ends when the socket closes.
    }
  }

  /** Child processes of local workers (tests kill them to prove recovery). */
  localPids(): number[] {
    return [...this.children.keys()];
  }

  private send(routingId: Buffer, m: Message): void {
    this.sendFrames(routingId, encodeMessage(m));
  }

  private sendFrames(routingId: Buffer, frames: Buffer[]): void {
    if (this.closed) return;
    this.opts.events.bytes?.(messageBytes(frames), 0);
    this.lastSend = this.socket.send([routingId, ...frames]).catch((e) => {
      if (!this.closed) this.opts.events.log(`send failed: ${(e as Error).message}`);
    });
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.socket.messages()) {
        const [routingId, ...message] = frames;
        this.opts.events.bytes?.(0, messageBytes(frames));
        let msg: Message;
        try {
          msg = decodeMessage(message);
        } catch (e) {
          this.refuse(routingId, (e as Error).message);
          continue;
        }
        this.handle(routingId, msg);
      }
    } catch (e) {
      if (!this.closed) this.opts.events.log(`receive loop stopped: ${(e as Error).message}`);
    }
  }

  /** A peer that speaks garbage or another protocol is told why and forgotten; the run goes on. */
  private refuse(routingId: Buffer, reason: string): void {
    this.opts.events.peerRefused?.("message");
    this.logRefusal(`refused a message from peer ${routingId.toString("hex")}: ${reason}`);
    this.opts.events.workerFailed?.("protocol");
    const w = this.workers.get(routingId.toString("hex"));
    if (w) this.drop(w, "protocol", reason);
    this.send(routingId, { type: "reject", reason });
  }

  private refuseWorker(routingId: Buffer, hello: HelloMessage, reason: string): void {
    this.opts.events.peerRefused?.("message");
    this.logRefusal(`refused worker ${hello.workerId}: ${reason}`);
    this.opts.events.workerFailed?.("protocol");
    this.send(routingId, { type: "reject", reason });
  }

  private logRefusal(line: string): void {
    if (this.refusals.logged++ < REFUSALS_LOGGED_PER_TICK) this.opts.events.log(line);
    else this.refusals.unlogged++;
  }

  private handle(routingId: Buffer, msg: Message): void {
    const key = routingId.toString("hex");
    const w = this.workers.get(key);
    if (w) w.lastSeen = Date.now();
    switch (msg.type) {
      case "hello": {
        if (this.runEngine !== null && msg.engine !== this.runEngine) {
          const reason = `engine ${msg.engine} differs from this run's engine ${this.runEngine} (results are bit-identical only within one engine; start it with the run's engine)`;
          if (w) this.drop(w, "protocol", reason);
          return this.refuseWorker(routingId, msg, reason);
        }
        if (w) this.drop(w, "disconnect", "re-registered");
        this.joining.delete(key);
        // A worker that already holds this network (it reconnected) is ready at once.
        if (msg.networkHash === this.spec.hash) return this.admit(key, routingId, msg);
        if (this.joining.size >= MAX_JOINING_PEERS && !this.forgetSilentJoiner())
          return this.refuseWorker(routingId, msg, `${MAX_JOINING_PEERS} workers are joining already; announce yourself again later`);
        this.joining.set(key, { routingId, hello: msg, lastSeen: Date.now(), networkSent: false });
        this.sendNetworks();
        return;
      }
      case "ready": {
        const j = this.joining.get(key);
        if (w) return;
        if (!j) return this.send(routingId, { type: "rejoin" });
        if (msg.networkHash !== this.spec.hash) {
          this.joining.delete(key);
          return this.refuse(routingId, `ready with network ${msg.networkHash.slice(0, 12)}, not this run's ${this.spec.hash.slice(0, 12)}`);
        }
        this.joining.delete(key);
        this.admit(key, routingId, j.hello);
        this.sendNetworks();
        return;
      }
      case "heartbeat":
      case "result":
      case "reduced-results":
      case "failure":
        if (!w && this.joining.has(key)) {
          // Still building the network: alive, and it has no epoch to answer for.
          this.joining.get(key)!.lastSeen = Date.now();
          return;
        }
        if (!w) {
          // Dropped earlier (it hung past worker_timeout), or this coordinator restarted: it registers again, and any
          // result it sends until then is ignored (its epoch was reassigned, and recomputing gives the same numbers).
          this.send(routingId, { type: "rejoin" });
          return;
        }
        if (msg.type === "heartbeat" && msg.resources) this.opts.events.workerResources?.(w.hello.workerId, msg.resources);
        if (msg.type === "result") this.onResult(w, msg);
        if (msg.type === "reduced-results") this.onReducedResults(w, msg);
        if (msg.type !== "failure") return;
        this.opts.events.log(`worker ${w.hello.workerId} failed epoch ${msg.epoch}: ${msg.message}`);
        this.opts.events.workerFailed?.("crash");
        // A group that lost an epoch cannot complete: the worker sends its other results one by one.
        if (w.group?.epochs.includes(msg.epoch)) w.group = null;
        const failed = takeAssignment(w, msg.epoch);
        if (failed) {
          w.failedEpochs.add(msg.epoch);
          this.requeue(failed, `worker ${w.hello.workerId}: ${msg.message}`);
          // Weights may be what it lacks: send them again with the next assignment.
          w.weightsVersion = -1;
        }
        this.dispatch();
        return;
      case "leaving":
        // Its epochs go to the others now; the shutdown tells it that it can go.
        if (w) this.drop(w, "disconnect", `leaving: ${msg.reason}`);
        this.joining.delete(key);
        this.send(routingId, { type: "shutdown", reason: "the coordinator has taken back this worker's epochs" });
        return;
      default:
        this.refuse(routingId, `unexpected message type "${msg.type}" from a worker`);
    }
  }

  /** A worker that holds the network: from now on it takes epochs. */
  private admit(key: string, routingId: Buffer, hello: HelloMessage): void {
    this.runEngine ??= hello.engine;
    const entry: WorkerEntry = { key, routingId, hello, lastSeen: Date.now(), weightsVersion: -1, busy: [], assignedAt: new Map(), computed: 0, grouped: 0, failedEpochs: new Set(), group: null };
    this.workers.set(key, entry);
    this.opts.events.log(`worker ${hello.workerId} joined (${hello.engine} on ${hello.hostname}, pid ${hello.pid}, ${hello.threads} thread${hello.threads > 1 ? "s" : ""}); ${this.workers.size} connected`);
    this.opts.events.workersChanged?.(this.workers.size);
    this.opts.events.workerJoined?.({ id: hello.workerId, engine: hello.engine, hostname: hello.hostname, threads: hello.threads, metricsPort: hello.metricsPort }, this.runEngine);
    this.dispatch();
  }

  /**
   * Makes room among the joining peers by forgetting the one silent longest, if it has missed a heartbeat (a live
   * worker heartbeats while it builds the network): peers that say hello and nothing more cannot keep real workers out.
   */
  private forgetSilentJoiner(): boolean {
    let oldest: [string, JoiningPeer] | null = null;
    for (const e of this.joining) if (!oldest || e[1].lastSeen < oldest[1].lastSeen) oldest = e;
    if (!oldest || Date.now() - oldest[1].lastSeen <= 2 * this.opts.heartbeatInterval * 1000) return false;
    this.joining.delete(oldest[0]);
    return true;
  }

  /** Starts network transfers to the earliest joining peers, MAX_NETWORK_TRANSFERS at a time. */
  private sendNetworks(): void {
    let inTransfer = [...this.joining.values()].filter((j) => j.networkSent).length;
    for (const j of this.joining.values()) {
      if (inTransfer >= MAX_NETWORK_TRANSFERS) return;
      if (j.networkSent) continue;
      // The connectome's arrays go out as frames of their own, without a copy: the coordinator holds it once.
      this.send(j.routingId, { type: "network", spec: this.spec });
      j.networkSent = true;
      inTransfer++;
    }
  }

  private onResult(w: WorkerEntry, r: ResultMessage): void {
    const cur = this.current;
    const assignedAt = w.assignedAt.get(r.epoch);
    const assignment = takeAssignment(w, r.epoch);
    if (assignment && assignedAt !== undefined && r.runId === this.runId) this.longestEpochMs = Math.max(this.longestEpochMs, Date.now() - assignedAt);
    if (!assignment || !cur || r.runId !== this.runId || r.weightsVersion !== cur.version || !this.order.includes(r.epoch) || cur.results.has(r.epoch)) {
      // A late or duplicate result (the epoch was reassigned, or is done), or one for an epoch this worker does not
      // hold (of another run, another weights version, or never assigned to it): only what was assigned is taken.
      this.dispatch();
      return;
    }
    const bad = w.group?.epochs.includes(r.epoch) ? "a result of its reduce group on its own" : this.checkResult(r, cur.withGradient.has(r.epoch) ? this.gradientLengths() : [0, 0]);
    if (bad) return this.refuseResults(w, [assignment], `invalid result for epoch ${r.epoch}: ${bad}`);
    const stateIsFinite = isFiniteState(r.finalState);
    if (!(stateIsFinite && isFiniteOutcome(r)) && this.recomputeElsewhere(w, [assignment])) return;
    this.accept(w, r, stateIsFinite);
    this.completeOrDispatch();
  }

  /**
   * A reduce group's results: taken together with their summed gradients, only as the group this worker holds (anything
   * else is late: the group was given up after a failure, and its epochs are computed again).
   */
  private onReducedResults(w: WorkerEntry, m: ReducedResultsMessage): void {
    const cur = this.current;
    const group = w.group;
    const epochs = m.results.map((r) => r.epoch);
    if (!cur || !group || epochs.length !== group.epochs.length || epochs.some((e, k) => e !== group.epochs[k])) return this.dispatch();
    w.group = null;
    const assignedAt = Math.min(...epochs.map((e) => w.assignedAt.get(e) ?? Date.now()));
    const assignments = epochs.map((e) => takeAssignment(w, e)!);
    const results: ResultMessage[] = m.results.map((r) => ({ type: "result", ...r }));
    if (results.some((r) => r.runId !== this.runId || r.weightsVersion !== cur.version)) {
      // Of another run or version: it cannot be this group's (each assignment names both); its epochs go to others.
      return this.refuseResults(w, assignments, "results of another run or weights version for its reduce group");
    }
    this.longestEpochMs = Math.max(this.longestEpochMs, Date.now() - assignedAt);
    const [rec, ff] = this.gradientLengths();
    const bad =
      m.recSum.length !== rec || m.ffSum.length !== ff
        ? `summed gradients of ${m.recSum.length}/${m.ffSum.length} values, expected ${rec}/${ff}`
        : results.map((r) => [r.epoch, this.checkResult(r, [0, 0])] as const).find(([, why]) => why !== null)?.join(": ");
    if (bad) return this.refuseResults(w, assignments, `invalid reduce group results: ${bad}`);
    const statesFinite = results.map((r) => isFiniteState(r.finalState));
    // Σg² is finite exactly where every summed gradient is (float64 sums of float32 gradients cannot overflow); where
    // the sums are the interval's mean, it is the clip's too.
    const sums = [m.recSum, m.ffSum];
    const sumSquares = sumOfSquares(sums);
    const finite = statesFinite.every((f) => f) && results.every(isFiniteOutcome) && Number.isFinite(sumSquares);
    if (!finite && this.recomputeElsewhere(w, assignments)) return;
    cur.receiver?.prefixSums(epochs.length, sums, sumSquares);
    results.forEach((r, k) => this.accept(w, r, statesFinite[k]));
    w.grouped += results.length;
    this.completeOrDispatch();
  }

  /** An invalid result (or a reduce group's): the worker is dropped, and the epochs it answered for computed again. */
  private refuseResults(w: WorkerEntry, assignments: EpochAssignment[], why: string): void {
    this.drop(w, "protocol", why);
    for (const a of assignments) this.requeue(a, `worker ${w.hello.workerId} sent ${why}`);
    this.dispatch();
  }

  /** Takes an epoch's result for the interval. */
  private accept(w: WorkerEntry, r: ResultMessage, stateIsFinite: boolean): void {
    const cur = this.current!;
    cur.results.set(r.epoch, r);
    cur.receiver?.result(this.order.indexOf(r.epoch), r, stateIsFinite);
    w.computed++;
    cur.pending = cur.pending.filter((t) => t.epoch !== r.epoch);
  }

  /** Resolves the interval once every epoch has its result; otherwise hands out what is pending. */
  private completeOrDispatch(): void {
    const cur = this.current!;
    // Any other worker still computing an epoch (after a reassignment) is simply ignored when it answers.
    if (cur.results.size === cur.total) {
      this.opts.events.epochsInFlight?.(0);
      cur.resolve(this.order.map((e) => cur.results.get(e)!));
      return;
    }
    this.dispatch();
  }

  /**
   * A result with NaN or ±Infinity may come from a faulty worker or from the model itself. The epochs (one, or a
   * reduce group's) are computed once more by a worker that has not tried them (the same numbers come back wherever
   * they are computed, so a second non-finite result is the model's); that result is then taken, and the trainer's
   * non-finite guard skips the update. Returns whether the epochs went back to the queue.
   */
  private recomputeElsewhere(w: WorkerEntry, assignments: EpochAssignment[]): boolean {
    const cur = this.current!;
    const epochs = assignments.map((a) => a.epoch);
    const tried = new Set<string>([w.key]);
    for (const e of epochs) {
      for (const k of cur.nonFinite.get(e) ?? []) tried.add(k);
      cur.nonFinite.set(e, tried);
    }
    const which = epochs.length > 1 ? `epochs ${epochs[0]}–${epochs[epochs.length - 1]}` : `epoch ${epochs[0]}`;
    const another = [...this.workers.values()].some((o) => !tried.has(o.key));
    if (tried.size > 1 || !another) {
      this.opts.events.log(`${which} ${epochs.length > 1 ? "are" : "is"} non-finite on ${tried.size} worker(s): the model's numbers, not a worker's fault; taking it`);
      return false;
    }
    this.opts.events.log(`worker ${w.hello.workerId} returned non-finite numbers for ${which}; computing it again on another worker`);
    for (const a of assignments) {
      w.failedEpochs.add(a.epoch);
      this.requeue(a, `non-finite result from worker ${w.hello.workerId}`);
    }
    this.dispatch();
    return true;
  }

  /** Values per gradient in a result that carries one: per edge, or per type pair under scaling-factor training. */
  private gradientLengths(): [number, number] {
    if (!this.spec.reduceToScalingFactors) return [this.spec.rec.pre.length, this.spec.ff.pre.length];
    const factors = factorCounts(this.spec.constants, this.spec.teacherForcing?.inputTypes);
    return [factors.rec, factors.ff];
  }

  /** Why a result is malformed for this network (its gradients of `rec` and `ff` values: 0 in burn-in and reduce groups), or null. */
  private checkResult(r: ResultMessage, [rec, ff]: [number, number]): string | null {
    const N = this.spec.constants.numNeurons;
    const S = this.spec.constants.numSlots;
    const B = this.spec.batchSize;
    if (r.recGrad.length !== rec) return `recurrent gradient has ${r.recGrad.length} values, expected ${rec}`;
    if (r.ffGrad.length !== ff) return `feedforward gradient has ${r.ffGrad.length} values, expected ${ff}`;
    if (r.finalState.v.length !== B * N || r.finalState.g.length !== B * N * 2 * S) return "final state has the wrong size";
    if ((r.finalState.ou?.length ?? 0) !== (this.spec.odours?.numPatterns ?? 0)) return "final odour mixture state has the wrong size";
    if (r.rates.length !== N || r.cvs.length !== N || r.ratios.length !== N) return "per-neuron statistics have the wrong size";
    return null;
  }

  /** An epoch failed (`why`): computed again, unless it failed MAX_EPOCH_FAILURES times, which ends the run. */
  private requeue(t: EpochAssignment, why: string): void {
    const cur = this.current;
    if (!cur || cur.results.has(t.epoch)) return;
    const n = (cur.failures.get(t.epoch) ?? 0) + 1;
    cur.failures.set(t.epoch, n);
    if (n >= MAX_EPOCH_FAILURES) {
      cur.reject(new EpochFailedError(`epoch ${t.epoch} failed ${n} times (last: ${why}); stopping`));
      return;
    }
    if (!cur.pending.some((p) => p.epoch === t.epoch)) cur.pending.unshift(t);
  }

  private drop(w: WorkerEntry, reason: FailureReason, detail: string): void {
    if (!this.workers.delete(w.key)) return;
    this.opts.events.log(`worker ${w.hello.workerId} dropped (${reason}: ${detail}); ${this.workers.size} connected`);
    this.opts.events.workerFailed?.(reason);
    this.opts.events.workersChanged?.(this.workers.size);
    const cur = this.current;
    for (const t of w.busy.splice(0)) {
      if (cur && !cur.results.has(t.epoch) && !cur.pending.some((p) => p.epoch === t.epoch)) cur.pending.unshift(t);
    }
    this.dispatch();
  }

  /**
   * Hands pending epochs, in epoch order, to idle workers. A worker gets an epoch it failed before only when no other
   * connected worker can take it (a lone worker retries; a deterministic failure then ends the run, see requeue).
   */
  private dispatch(): void {
    const cur = this.current;
    if (!cur) return;
    const inFlight = new Set([...this.workers.values()].flatMap((w) => w.busy.map((t) => t.epoch)));
    const othersCan = (w: WorkerEntry, epoch: number) => [...this.workers.values()].some((o) => o !== w && !o.failedEpochs.has(epoch));
    for (const w of this.workers.values()) {
      const taken: EpochAssignment[] = [];
      while (w.busy.length + taken.length < w.hello.threads) {
        const t = cur.pending.find((p) => !inFlight.has(p.epoch) && (!w.failedEpochs.has(p.epoch) || !othersCan(w, p.epoch)));
        if (!t) break;
        taken.push(t);
        inFlight.add(t.epoch);
      }
      w.group = w.busy.length === 0 ? this.reduceGroupOf(taken) : w.group;
      for (const t of taken) this.assign(w, t, cur, w.group?.epochs.includes(t.epoch) ? w.group : null);
    }
    this.opts.events.epochsInFlight?.(inFlight.size);
  }

  /**
   * The reduce group among epochs given to an idle worker at once: those that are the interval's first epochs (and at
   * least two, all with gradients), at most MAX_GROUP_EPOCHS; or null.
   */
  private reduceGroupOf(taken: EpochAssignment[]): ReduceGroup | null {
    let n = 0;
    while (n < taken.length && n < MAX_GROUP_EPOCHS && taken[n].epoch === this.order[n] && taken[n].computeGradient) n++;
    return n >= 2 ? { epochs: taken.slice(0, n).map((t) => t.epoch), intervalEpochs: this.order.length } : null;
  }

  /** Sends one epoch to a worker, with the weights if it does not hold this version yet. */
  private assign(w: WorkerEntry, t: EpochAssignment, cur: NonNullable<WorkerPool["current"]>, reduceGroup: ReduceGroup | null): void {
    w.busy.push(t);
    w.assignedAt.set(t.epoch, Date.now());
    const assign: AssignMessage = {
      type: "assign",
      runId: this.runId,
      update: cur.update,
      epoch: t.epoch,
      stream: t.stream,
      weightsVersion: cur.version,
      weights: w.weightsVersion === cur.version ? null : { rec: cur.rec, ff: cur.ff },
      initialState: t.initialState,
      computeGradient: t.computeGradient,
      recordActivity: t.recordActivity,
      reduceGroup,
    };
    w.weightsVersion = cur.version;
    this.send(w.routingId, assign);
  }

  /** A live worker that holds an epoch far longer than epochs take (STALL_FACTOR): dropped, that epoch counted as failed. */
  private dropIfStalled(w: WorkerEntry, now: number): void {
    if (this.longestEpochMs === 0) return;
    const limit = Math.max(this.opts.workerTimeout * 1000, STALL_FACTOR * this.longestEpochMs);
    for (const [epoch, since] of w.assignedAt) {
      if (now - since <= limit) continue;
      const why = `no result for epoch ${epoch} after ${((now - since) / 1000).toFixed(1)} s though its heartbeats arrive (the longest epoch so far took ${(this.longestEpochMs / 1000).toFixed(2)} s)`;
      const t = takeAssignment(w, epoch)!;
      if (this.order.includes(epoch)) this.requeue(t, `worker ${w.hello.workerId}: ${why}`);
      this.drop(w, "timeout", why);
      return;
    }
  }

  private tick(): void {
    const now = Date.now();
    const heartbeat = encodeMessage({ type: "heartbeat" });
    for (const w of [...this.workers.values()]) {
      if (now - w.lastSeen > this.opts.workerTimeout * 1000) this.drop(w, "timeout", `silent for ${((now - w.lastSeen) / 1000).toFixed(1)} s`);
      else {
        this.sendFrames(w.routingId, heartbeat);
        this.dropIfStalled(w, now);
      }
    }
    // Joining peers that fell silent are forgotten (counted in one line: a flood of them would fill the log).
    let silent = 0;
    for (const [key, j] of this.joining) {
      if (now - j.lastSeen <= this.opts.workerTimeout * 1000) this.sendFrames(j.routingId, heartbeat);
      else {
        this.joining.delete(key);
        silent++;
      }
    }
    if (silent > 0) {
      this.opts.events.log(`forgot ${silent} peer(s) that announced themselves and fell silent before they were ready`);
      this.sendNetworks();
    }
    if (this.refusals.unlogged > 0) this.opts.events.log(`refused ${this.refusals.unlogged} more message(s) from peers`);
    this.refusals = { logged: 0, unlogged: 0 };
    const cur = this.current;
    if (!cur) return;
    if (this.workers.size > 0) cur.lastWorkerSeen = now;
    else if (now - cur.lastWorkerSeen > this.opts.noWorkerTimeout * 1000)
      cur.reject(new NoWorkersError(`no worker connected for ${this.opts.noWorkerTimeout} s`));
  }
}

