/**
 * The coordinator's ROUTER socket, on a thread of its own (socket-thread.ts), so that the results it receives cost the
 * main thread no full garbage collections.
 *
 * ZeroMQ hands each frame it receives to V8 as memory outside the heap, and V8 starts a full (mark-compact) collection
 * when enough such memory has come since the last one, whether or not it is still in use. At GPU speed a coordinator
 * receives some 17 MiB of results per update at default size; on the main thread that meant about one mark-compact
 * per update, some 8 ms of its CPU. Here the socket's thread receives them and copies each frame into shared memory,
 * which V8 does not count that way (SharedArrayBuffers are not per-isolate memory): the main thread's collections then
 * follow its own allocations. Shared memory goes back only when a collection finds it dead, so the main thread keeps
 * count of what it received and has not yet seen reclaimed (a FinalizationRegistry); above SHARED_BUDGET_BYTES
 * the thread hands frames over as ordinary ArrayBuffers instead, transferred, which V8 counts, until collections have
 * reclaimed enough. That bounds the memory; the results are the same bytes either way. The copy also checks each
 * frame's float32 words for NaN and ±Infinity while they are in the cache (platform/finite.ts), so that the pool's
 * checks of the states and gradients decoded from it need not read them again.
 *
 * Sends take the other way through an inproc PAIR socket (ZeroMQ's context is shared by a process's threads), without
 * a copy: the thread forwards them to the ROUTER in the order they were sent. The CURVE handshake's ZAP handler stays
 * where it is, on the main thread's end of the same context.
 *
 * A process that exits while a thread still has ZeroMQ sockets open aborts (zeromq.js cannot close them once the
 * thread's JavaScript has stopped: "terminate called after throwing an instance of 'Napi::Error'"), and the CLIs exit
 * with process.exit on many paths (errors, a second Ctrl-C). The thread cannot close everything at close() either
 * (socket-thread.ts: its monitor stays open), so it stays, idle, until the process exits; then the main thread asks it
 * to close what it has open and waits for it, briefly, before the process goes on ending.
 */
import { Worker } from "node:worker_threads";
import { Pair, Router } from "zeromq";
import { Channel } from "../platform/channel.js";
import { markFinite32 } from "../platform/finite.js";

export type RouterOptions = NonNullable<ConstructorParameters<typeof Router>[0]>;

/** What the pool sees of the socket's monitor (zeromq's event types: accept, disconnect, handshake:error:auth, …). */
export interface SocketEvent {
  type: string;
  error?: { message: string };
}

/**
 * The thread's start: the ROUTER's options and address, the inproc address of the PAIR that feeds it sends, and a flag
 * in shared memory that the thread sets to 1 once it has nothing of ZeroMQ open (as the process exits).
 */
export interface SocketThreadData {
  options: RouterOptions;
  endpoint: string;
  outbox: string;
  closed: Int32Array;
}

/** From the thread: the bind's outcome, then received messages, monitor events and failed sends. */
export type FromSocketThread =
  | { type: "bound"; endpoint: string }
  | { type: "bind-error"; message: string }
  | { type: "message"; frames: Uint8Array[]; finite: boolean[] }
  | { type: "event"; event: SocketEvent }
  | { type: "send-error"; message: string }
  | { type: "closed" };

/** To the thread: whether to hand frames over as shared memory; or, as the process exits, close the sockets now. */
export type ToSocketThread = { type: "shared"; shared: boolean } | { type: "close" };

/** How long an exiting process waits at most for the thread to close its sockets. */
const EXIT_CLOSE_MS = 2000;

/** Sent through the PAIR after the last message to send: the thread closes the ROUTER once everything before it is forwarded. */
const CLOSE_MARKER: Buffer[] = [Buffer.alloc(0)];

/**
 * The most received shared memory the main thread may hold unreclaimed before frames come as ordinary buffers: about 4
 * updates of results at default size, less than one at 50 000 neurons. In bench 11 the coordinator's peak RSS is some
 * 140 MiB above the 350 MiB it had receiving on the main thread; 128 and 256 MiB saved no measurable main-thread time.
 */
export const SHARED_BUDGET_BYTES = 64 * 2 ** 20;

/** Each socket's PAIR address is its own (a process may hold several pools: tests). */
let sockets = 0;

/** Every socket thread of the process, with its flag: they stay until the process exits (socket-thread.ts). */
const threadsToClose = new Map<Worker, Int32Array>();

/**
 * The process's "exit" listener: asks every socket thread to close all it has open and waits for each, briefly. It
 * runs synchronously, so it waits on the flag rather than for a message.
 */
function closeThreadsAtExit(): void {
  for (const [thread, closed] of threadsToClose) {
    if (Atomics.load(closed, 0) === 1) continue;
    thread.postMessage({ type: "close" } satisfies ToSocketThread);
    Atomics.wait(closed, 0, 0, EXIT_CLOSE_MS);
  }
}

export class CoordinatorSocket {
  private thread: Worker | null = null;
  private readonly outbox = new Pair({ linger: 0 });
  private readonly outboxEndpoint = `inproc://snn-coordinator-socket-${process.pid}-${sockets++}`;
  private readonly received = new Channel<Buffer[]>();
  private readonly monitor = new Channel<SocketEvent>();
  private exited: Promise<void> = Promise.resolve();
  /** The last send queued (send()). */
  private queued: Promise<void> = Promise.resolve();
  /** Resolves when the thread has closed its sockets after close(). */
  private socketsClosedMessage: Promise<void> = Promise.resolve();
  private closing = false;
  /** SocketThreadData.closed. */
  private readonly nothingOpen = new Int32Array(new SharedArrayBuffer(4));
  /** Bytes of shared memory received whose buffers no collection has reclaimed yet, and whether the thread sends more. */
  private unreclaimed = 0;
  private shared = true;
  private readonly reclaimed = new FinalizationRegistry<number>((bytes) => {
    this.unreclaimed -= bytes;
    this.updateShared();
  });

  /**
   * `sendFailed` hears of a message the ROUTER would not take (the pool logs it, as it logged its own failed sends);
   * `sharedBudget` is SHARED_BUDGET_BYTES but in tests.
   */
  constructor(
    private readonly options: RouterOptions,
    private readonly sendFailed: (message: string) => void,
    private readonly sharedBudget = SHARED_BUDGET_BYTES,
  ) {}

  /** Starts the thread and binds the ROUTER there; returns the address bound, or throws the bind's error. */
  async bind(endpoint: string): Promise<string> {
    await this.outbox.bind(this.outboxEndpoint);
    const data: SocketThreadData = { options: this.options, endpoint, outbox: this.outboxEndpoint, closed: this.nothingOpen };
    const thread = new Worker(new URL("./socket-thread.js", import.meta.url), { workerData: data });
    this.thread = thread;
    let socketsClosed = (): void => {};
    this.socketsClosedMessage = new Promise((resolve) => (socketsClosed = resolve));
    let exited = (): void => {};
    this.exited = new Promise((resolve) => (exited = resolve));
    threadsToClose.set(thread, this.nothingOpen);
    if (!process.listeners("exit").includes(closeThreadsAtExit)) process.on("exit", closeThreadsAtExit);
    return new Promise<string>((resolve, reject) => {
      thread.on("message", (m: FromSocketThread) => {
        if (m.type === "closed") socketsClosed();
        else if (m.type === "bound") resolve(m.endpoint);
        else if (m.type === "bind-error") {
          socketsClosed();
          reject(new Error(m.message));
        } else if (m.type === "message") this.receive(m.frames, m.finite);
        else if (m.type === "event") this.monitor.push(m.event);
        else this.sendFailed(m.message);
      });
      thread.once("error", (e) => {
        reject(e);
        this.received.end(new Error(`the coordinator's socket thread failed: ${e.message}`));
        this.monitor.end();
      });
      // Only a thread that failed ends before the process does (socket-thread.ts).
      thread.once("exit", () => {
        threadsToClose.delete(thread);
        exited();
        reject(new Error("the coordinator's socket thread exited before it bound"));
        this.received.end(this.closing ? null : new Error("the coordinator's socket thread exited"));
        this.monitor.end();
      });
    });
  }

  /**
   * A message from the thread: its frames' own buffers, of which Buffers are views that cost nothing. Those that the
   * thread's copy found to hold only finite float32 words are marked so: the pool's checks of states and gradients
   * decoded from them need not read them again.
   */
  private receive(frames: Uint8Array[], finite: boolean[]): void {
    frames.forEach((f, k) => {
      if (finite[k]) markFinite32(f.buffer);
      if (!(f.buffer instanceof SharedArrayBuffer)) return;
      this.unreclaimed += f.byteLength;
      this.reclaimed.register(f.buffer, f.byteLength);
    });
    this.updateShared();
    this.received.push(frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
  }

  private updateShared(): void {
    const shared = this.unreclaimed < this.sharedBudget;
    if (shared === this.shared || this.closing) return;
    this.shared = shared;
    this.thread?.postMessage({ type: "shared", shared } satisfies ToSocketThread);
  }

  /**
   * Queues a message ([routing id, ...frames]) for the ROUTER; the thread sends messages in the order queued. The PAIR
   * takes one send at a time, so each waits for the one before.
   */
  send(frames: Buffer[]): Promise<void> {
    const sent = this.queued.then(() => this.outbox.send(frames));
    this.queued = sent.catch(() => {});
    return sent;
  }

  /** Every message received, as [routing id, ...frames], in arrival order; ends when the socket closes. */
  messages(): AsyncIterable<Buffer[]> {
    return this.received;
  }

  /** The ROUTER's monitor events; end when the socket closes. */
  events(): AsyncIterable<SocketEvent> {
    return this.monitor;
  }

  /**
   * Closes the ROUTER once every message sent before has been handed to it. Messages it still holds leave while it
   * lingers (its `linger` option), from the thread's memory. The thread stays, idle, until the process ends (see
   * socket-thread.ts), but no longer keeps it alive.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.thread) {
      // Where the thread has closed its sockets already (its bind failed), nothing takes the marker, and the send waits
      // until the PAIR is closed below.
      this.send(CLOSE_MARKER).catch(() => {});
      await Promise.race([this.socketsClosedMessage, this.exited]);
      this.thread.unref();
    }
    this.outbox.close();
    this.received.end();
    this.monitor.end();
  }
}
