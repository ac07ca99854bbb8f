/**
 * Worker-thread entry of the coordinator's socket (coordinator-socket.ts): binds the ROUTER, forwards what the main
 * thread sends through the PAIR, and posts every received message and monitor event to the main thread, each frame
 * copied into a buffer of its own: shared memory, or, while the main thread holds too much of that unreclaimed, an
 * ArrayBuffer transferred; with each frame, whether the copy found only finite float32 words in it.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Pair, Router } from "zeromq";
import { copyCheckingFinite32 } from "../platform/finite.js";
import type { FromSocketThread, SocketThreadData, ToSocketThread } from "./coordinator-socket.js";

const data = workerData as SocketThreadData;
const post = (m: FromSocketThread, transfer: ArrayBuffer[] = []): void => parentPort!.postMessage(m, transfer);

const router = new Router(data.options);
const monitor = router.events;
const outbox = new Pair({ linger: 0 });
outbox.connect(data.outbox);
/** Whether received frames go over as shared memory (the main thread says, by how much of it is still unreclaimed). */
let shared = true;

/**
 * close() closes the ROUTER and the PAIR. The monitor, a socket of its own, stays open until the process exits: closing
 * it loses the messages the ROUTER still holds, and breaks ZeroMQ sockets made after it (a later ROUTER accepts no
 * connection). But a thread that still has any ZeroMQ socket open when the process exits aborts it, so as the process
 * exits the main thread asks for closeAll() and waits on the shared flag, which says that nothing is open any more.
 */
function closeSockets(): void {
  if (!router.closed) router.close();
  if (!outbox.closed) outbox.close();
}
function closeAll(): void {
  closeSockets();
  if (!monitor.closed) monitor.close();
  Atomics.store(data.closed, 0, 1);
  Atomics.notify(data.closed, 0);
}
const onMessage = (m: ToSocketThread): void => {
  if (m.type === "shared") shared = m.shared;
  else closeAll();
};
parentPort!.on("message", onMessage);

async function forwardReceived(): Promise<void> {
  try {
    for await (const frames of router) {
      // A copy of each frame in a buffer of its own (the frame's own memory stays on this thread, which frees it), so
      // that each array decoded from it keeps only its own frame alive: shared memory, or an ArrayBuffer transferred.
      // The copy checks its float32 words for NaN and ±Infinity on the way, while they are in the cache.
      const copies = frames.map((f) => new Uint8Array(shared ? new SharedArrayBuffer(f.byteLength) : new ArrayBuffer(f.byteLength)));
      const finite = frames.map((f, k) => copyCheckingFinite32(f, copies[k]));
      post({ type: "message", frames: copies, finite }, shared ? [] : copies.map((c) => c.buffer as ArrayBuffer));
    }
  } catch {
    // The socket closed.
  }
}

async function forwardEvents(): Promise<void> {
  try {
    for await (const e of monitor) post({ type: "event", event: { type: e.type, ...("error" in e && e.error ? { error: { message: e.error.message } } : {}) } });
  } catch {
    // The socket closed.
  }
}

async function forwardSends(): Promise<void> {
  try {
    for await (const frames of outbox) {
      // The close marker comes after every message sent before it.
      if (frames.length === 1 && frames[0].byteLength === 0) return;
      try {
        await router.send(frames);
      } catch (e) {
        post({ type: "send-error", message: (e as Error).message });
      }
    }
  } catch {
    // The sockets were closed as the process exits.
  }
}

// Watched from before the bind, so that every connection is counted.
void forwardEvents();
let bound = false;
try {
  await router.bind(data.endpoint);
  bound = true;
} catch (e) {
  closeSockets();
  post({ type: "bind-error", message: (e as Error).message });
}
if (bound) {
  post({ type: "bound", endpoint: router.lastEndpoint ?? data.endpoint });
  void forwardReceived();
  await forwardSends();
  closeSockets();
  post({ type: "closed" });
}
// The thread then stays, idle, until the process ends (its message listener holds it), its monitor open: messages the
// ROUTER still holds leave from this thread's memory while it lingers.
