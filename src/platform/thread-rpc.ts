/**
 * Requests to one worker thread, answered in order: the one way the engine threads, the checkpoint writer and the
 * figure renderer talk to their threads. A thread that dies (an uncaught exception, an exit, running out of memory)
 * fails every call it still had with one error naming the thread and why, and the next call starts a fresh thread,
 * which receives the same init message first. `serveRpc` is the thread side.
 */
import { parentPort, Worker } from "node:worker_threads";

type Message<Res> = { id: number; result: Res } | { id: number; error: string; stack?: string };

interface Pending<Res> {
  resolve: (r: Res) => void;
  reject: (e: Error) => void;
}

export class ThreadDiedError extends Error {}

export class ThreadRpc<Req, Res> {
  private thread: Worker | null = null;
  private readonly pending = new Map<number, Pending<Res>>();
  private nextId = 0;
  private closed = false;

  /**
   * `name` appears in errors ("engine thread died: ..."); `init` is posted to every new thread before any request.
   * The first thread starts now, so that its start-up (loading modules) overlaps the caller's; a replacement starts
   * with the next call after a death.
   */
  constructor(
    private readonly url: URL,
    private readonly name: string,
    private readonly init: unknown = undefined,
  ) {
    this.start();
  }

  /** Runs `request` on the thread; rejects with the thread's error, or a ThreadDiedError if the thread died. */
  call(request: Req, transfer: ArrayBuffer[] = []): Promise<Res> {
    if (this.closed) return Promise.reject(new Error(`${this.name} thread is closed`));
    const thread = this.thread ?? this.start();
    const id = this.nextId++;
    return new Promise<Res>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      thread.postMessage({ id, request }, transfer);
    });
  }

  /** Calls still unanswered. */
  get busy(): number {
    return this.pending.size;
  }

  /** Ends the thread as a crash would (tests, and a caller that must stop a runaway request). */
  async kill(): Promise<void> {
    await this.thread?.terminate();
  }

  /** Stops the thread after its answered calls; unanswered ones fail. */
  async close(): Promise<void> {
    this.closed = true;
    const t = this.thread;
    this.thread = null;
    await t?.terminate();
    this.failAll("closed");
  }

  private start(): Worker {
    const t = new Worker(this.url);
    this.thread = t;
    if (this.init !== undefined) t.postMessage({ init: this.init });
    t.on("message", (m: Message<Res>) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if ("error" in m) p.reject(remoteError(m.error, m.stack));
      else p.resolve(m.result);
    });
    // Either event ends the thread: what it still had can never be answered.
    const died = (why: string) => {
      if (this.thread !== t) return;
      this.thread = null;
      this.failAll(why);
    };
    t.on("error", (e) => died(e.message));
    t.on("exit", (code) => died(`exited with code ${code}`));
    return t;
  }

  private failAll(why: string): void {
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const p of calls) p.reject(new ThreadDiedError(`${this.name} thread died: ${why}`));
  }
}

/** An error thrown in the thread, with the thread's stack (where it happened) rather than the caller's. */
function remoteError(message: string, stack: string | undefined): Error {
  const e = new Error(message);
  if (stack) e.stack = stack;
  return e;
}

/**
 * The thread side: `handle(request, init)` answers each request (a thrown error or rejection is sent back as the
 * call's error); `transfer(result)` lists buffers to move rather than copy.
 */
export function serveRpc<Init, Req, Res>(handle: (request: Req, init: Init) => Res | Promise<Res>, transfer: (result: Res) => ArrayBuffer[] = () => []): void {
  let init: Init;
  parentPort!.on("message", (m: { init: Init } | { id: number; request: Req }) => {
    if ("init" in m) {
      init = m.init;
      return;
    }
    Promise.resolve()
      .then(() => handle(m.request, init))
      .then(
        (result) => parentPort!.postMessage({ id: m.id, result }, transfer(result)),
        (e: Error) => parentPort!.postMessage({ id: m.id, error: e.message ?? String(e), stack: e.stack }),
      );
  });
}

/**
 * `value` with every typed array that views only part of a larger buffer (such as a kernel's WebAssembly memory)
 * copied alone: a structured clone copies a view's whole buffer, or shares a shared one, which its owner may write
 * over while the thread reads it (the Adam kernel's moments). Plain objects and arrays are copied shallowly where
 * they hold such a view; everything else is kept as it is, whole shared buffers included (received frames and the
 * weights, which nothing writes). The new buffers are added to `copies`, for the caller to transfer rather than have
 * them copied once more when posted.
 */
export function withOwnBuffers<T>(value: T, copies: ArrayBuffer[] = []): T {
  if (ArrayBuffer.isView(value)) {
    // Typed arrays only: a DataView has no copy of its own, and a Node Buffer's slice() is a view.
    const typed = !(value instanceof DataView) && !Buffer.isBuffer(value);
    const partial = value.byteLength < value.buffer.byteLength;
    if (!typed || !partial) return value;
    const copy = (value as unknown as Float32Array).slice();
    copies.push(copy.buffer);
    return copy as T;
  }
  if (Array.isArray(value)) {
    const items = value.map((x) => withOwnBuffers(x, copies));
    return (items.some((x, k) => x !== value[k]) ? items : value) as T;
  }
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value).map(([k, x]) => [k, withOwnBuffers(x, copies)] as const);
    return (entries.some(([k, x]) => x !== (value as Record<string, unknown>)[k]) ? Object.fromEntries(entries) : value) as T;
  }
  return value;
}
