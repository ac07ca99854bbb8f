/**
 * The coordinator's ROUTER on a thread of its own (src/distributed/coordinator-socket.ts), against a DEALER of the
 * test's own: messages both ways, byte for byte and in order; every send queued before close() leaves; monitor events;
 * a bind that fails; frames as shared memory until the main thread holds more of it unreclaimed than its budget, then
 * as ArrayBuffers, and shared again once collections have reclaimed it; a process that exits with the socket open
 * exits with its own code rather than aborting; frames of only finite float32 words marked so. And Channel, the queue its messages and events come through.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { Dealer } from "zeromq";
import type * as SocketModule from "../src/distributed/coordinator-socket.js";
import type * as FiniteModule from "../src/platform/finite.js";
import { Channel } from "../src/platform/channel.js";
import { ROOT } from "./helpers/runs.js";

// The socket starts its thread from the built socket-thread.js, as the CLIs do.
const MODULE = join(ROOT, "dist/distributed/coordinator-socket.js");
const load = async () => (await import(MODULE)) as typeof SocketModule;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `n` bytes counting up from `seed`, so that a frame out of place or a byte changed shows. */
const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i + seed) % 251));

async function take<T>(it: AsyncIterator<T>): Promise<T> {
  const r = await it.next();
  if (r.done) throw new Error("the stream ended");
  return r.value;
}

describe("Channel", () => {
  it("hands values to its reader in order, then ends: done, or the error it ended with, after what was queued", async () => {
    const c = new Channel<number>();
    c.push(1);
    c.push(2);
    const it = c[Symbol.asyncIterator]();
    expect(await take(it)).toBe(1);
    expect(await take(it)).toBe(2);
    const waiting = it.next();
    c.push(3);
    expect(await waiting).toEqual({ value: 3, done: false });
    c.push(4);
    c.end();
    c.push(5);
    expect(await take(it)).toBe(4);
    expect(await it.next()).toEqual({ value: undefined, done: true });

    const failed = new Channel<number>();
    const reader = failed[Symbol.asyncIterator]();
    const pending = reader.next();
    failed.end(new Error("thread died"));
    await expect(pending).rejects.toThrow("thread died");
    await expect(reader.next()).rejects.toThrow("thread died");
  });
});

describe("CoordinatorSocket", () => {
  it("carries messages both ways byte for byte and in order, reports connections, and sends everything queued before close()", async () => {
    const { CoordinatorSocket } = await load();
    const failures: string[] = [];
    const socket = new CoordinatorSocket({ linger: 2000 }, (m) => failures.push(m));
    const port = await freePort();
    expect(await socket.bind(`tcp://127.0.0.1:${port}`)).toBe(`tcp://127.0.0.1:${port}`);
    const events = socket.events()[Symbol.asyncIterator]();
    const messages = socket.messages()[Symbol.asyncIterator]();
    const dealer = new Dealer({ routingId: "dealer-1", linger: 0 });
    dealer.connect(`tcp://127.0.0.1:${port}`);
    // Its own bind first (the thread watches from before it binds), then the dealer's connection.
    expect((await take(events)).type).toBe("bind");
    expect((await take(events)).type).toBe("accept");

    // Frames of every size: an empty one, small ones, and megabytes.
    const sent = [0, 1, 2].map((k) => [Buffer.from(`map ${k}`), pattern(3 * 2 ** 20 + k, k), Buffer.alloc(0), pattern(100, k + 7)]);
    for (const frames of sent) await dealer.send(frames);
    for (const frames of sent) {
      const [routingId, ...got] = await take(messages);
      expect(routingId.toString()).toBe("dealer-1");
      expect(got.map((f, i) => Buffer.compare(f, frames[i]))).toEqual([0, 0, 0, 0]);
      // Under the budget, as shared memory.
      expect(got.every((f) => f.buffer instanceof SharedArrayBuffer)).toBe(true);
    }

    // Sends leave in the order queued; close() returns once the ROUTER has them all, and they still arrive.
    const replies = Array.from({ length: 50 }, (_, k) => [Buffer.from("dealer-1"), Buffer.from(`reply ${k}`), pattern(70_000, k)]);
    for (const frames of replies) void socket.send(frames);
    await socket.close();
    for (let k = 0; k < replies.length; k++) {
      const [text, bytes] = await dealer.receive();
      expect(text.toString()).toBe(`reply ${k}`);
      expect(Buffer.compare(bytes, replies[k][2])).toBe(0);
    }
    expect(failures).toEqual([]);
    // The socket's messages and events end with it.
    expect(await messages.next()).toEqual({ value: undefined, done: true });
    dealer.close();
  });

  it("marks the frames whose every float32 word is finite, checked in the thread's copy: the pool's checks then need not read them", async () => {
    const { CoordinatorSocket } = await load();
    const { allFinite32, isMarkedFinite32 } = (await import(join(ROOT, "dist/platform/finite.js"))) as typeof FiniteModule;
    const socket = new CoordinatorSocket({ linger: 0 }, () => {});
    const port = await freePort();
    await socket.bind(`tcp://127.0.0.1:${port}`);
    const messages = socket.messages()[Symbol.asyncIterator]();
    const dealer = new Dealer({ routingId: "dealer-2", linger: 0 });
    dealer.connect(`tcp://127.0.0.1:${port}`);
    // Several blocks of the check and a tail; the same with one NaN, with one −Infinity in the tail; finite values in
    // a frame whose length is not a whole number of float32.
    const states = Float32Array.from({ length: 3 * 16384 + 21 }, (_, i) => Math.sin(i) * 1e30);
    const nan = states.slice();
    nan[20_000] = Number.NaN;
    const inf = states.slice();
    inf[inf.length - 2] = -Infinity;
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    await dealer.send([bytes(states), bytes(nan), bytes(inf), Buffer.concat([bytes(states.subarray(0, 8)), Buffer.of(0)])]);
    const [, ...got] = await take(messages);
    expect(got.map((f) => isMarkedFinite32(f.buffer))).toEqual([true, false, false, false]);
    expect(got.slice(0, 3).map((f) => allFinite32(new Float32Array(f.buffer, f.byteOffset, f.byteLength / 4)))).toEqual([true, false, false]);
    expect(Buffer.compare(got[1], bytes(nan))).toBe(0);
    await socket.close();
    dealer.close();
  });

  it("sockets made one after another each take connections (closing a ZeroMQ monitor would break the later ones)", async () => {
    const { CoordinatorSocket } = await load();
    for (let k = 0; k < 3; k++) {
      const socket = new CoordinatorSocket({ linger: 0 }, () => {});
      const endpoint = await socket.bind("tcp://127.0.0.1:0");
      const dealer = new Dealer({ linger: 0 });
      dealer.connect(endpoint);
      await dealer.send([pattern(5000, k)]);
      const [, frame] = await take(socket.messages()[Symbol.asyncIterator]());
      expect(Buffer.compare(frame, pattern(5000, k)), `socket ${k + 1}`).toBe(0);
      dealer.close();
      await socket.close();
    }
  });

  it("a bind that fails is an error naming the cause", async () => {
    const { CoordinatorSocket } = await load();
    const first = new CoordinatorSocket({ linger: 0 }, () => {});
    const port = await freePort();
    await first.bind(`tcp://127.0.0.1:${port}`);
    const second = new CoordinatorSocket({ linger: 0 }, () => {});
    await expect(second.bind(`tcp://127.0.0.1:${port}`)).rejects.toThrow(/in use/i);
    await second.close();
    await first.close();
  });

  it("frames come as ArrayBuffers while more shared memory than the budget is unreclaimed, and as shared memory again once it is", async () => {
    const { CoordinatorSocket } = await load();
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const socket = new CoordinatorSocket({ linger: 0 }, () => {}, 10_000);
    const port = await freePort();
    await socket.bind(`tcp://127.0.0.1:${port}`);
    const messages = socket.messages()[Symbol.asyncIterator]();
    const dealer = new Dealer({ linger: 0 });
    dealer.connect(`tcp://127.0.0.1:${port}`);
    const roundTrip = async (bytes: number) => {
      await dealer.send([pattern(bytes, 3)]);
      const [, frame] = await take(messages);
      expect(Buffer.compare(frame, pattern(bytes, 3))).toBe(0);
      return frame.buffer instanceof SharedArrayBuffer;
    };
    let held: boolean | null = await roundTrip(20_000);
    expect(held).toBe(true);
    // 20 000 bytes held against a budget of 10 000: the thread is told to send ArrayBuffers (the next message or the
    // one after it, as the thread may take a message before the word).
    const after = [await roundTrip(100), await roundTrip(100)];
    expect(after[1]).toBe(false);
    // Nothing refers to the first frame any more: once a collection has reclaimed it, shared memory again.
    held = null;
    let shared = false;
    for (let k = 0; k < 50 && !shared; k++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
      shared = await roundTrip(100);
    }
    expect(shared).toBe(true);
    dealer.close();
    await socket.close();
  });

  for (const closed of [false, true])
    it(`a process that exits with the socket ${closed ? "closed and its thread lingering" : "open"} exits with its own code (ZeroMQ's sockets on a thread would abort it)`, () => {
      const script = `
        import { CoordinatorSocket } from ${JSON.stringify(MODULE)};
        import { Dealer } from ${JSON.stringify(join(ROOT, "node_modules/zeromq/lib/index.js"))};
        const socket = new CoordinatorSocket({ linger: 5000 }, () => {});
        const endpoint = await socket.bind("tcp://127.0.0.1:0");
        const dealer = new Dealer({ linger: 0 });
        dealer.connect(endpoint);
        await dealer.send([Buffer.alloc(5000, 1)]);
        const [routingId] = (await socket.messages()[Symbol.asyncIterator]().next()).value;
        await socket.send([routingId, Buffer.alloc(5000, 2)]);
        if (${closed}) await socket.close();
        process.exit(3);
      `;
      const file = join(mkdtempSync(join(tmpdir(), "snn-socket-exit-")), "exit.mjs");
      writeFileSync(file, script);
      const started = Date.now();
      const r = spawnSync(process.execPath, [file], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
      expect(r.stderr).not.toMatch(/terminate called/);
      expect(r.status, r.stderr).toBe(3);
      // Without waiting out the linger.
      expect(Date.now() - started).toBeLessThan(4000);
    });
});
