/**
 * A worker given a reduce group (protocol 9), seen from a coordinator of the test's own: the real WorkerProcess and
 * sparse-cpu behind a ZeroMQ ROUTER. The group's results come back in one message, their gradients summed in epoch
 * order bit for bit as the coordinator's reducer sums the same epochs' gradients; an epoch that fails breaks the group,
 * and the others come back one by one with their own gradients.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Router } from "zeromq";
import { decodeMessage, encodeMessage, Message, ReducedResultsMessage, ResultMessage } from "../src/distributed/protocol.js";
import { EpochTask } from "../src/engine/engine.js";
import { SparseCpuEngine } from "../src/engine/sparse-cpu/sparse-cpu.js";
import { averageGradients, GradientReducer } from "../src/model/optimizer.js";
import { smallNetwork } from "./helpers/small-network.js";
import { inProcessWorker } from "./helpers/in-process-worker.js";

const net = smallNetwork();
const router = new Router({ linger: 0 });
let workerId: Buffer;
let worker: Promise<number>;
/** Epochs the worker's engine fails once, as an engine error (not a lost device). */
const failOnce = new Set<number>([5]);

async function next(...types: Message["type"][]): Promise<Message> {
  for (;;) {
    const [id, ...frames] = await router.receive();
    workerId = id;
    const m = decodeMessage(frames);
    if (types.includes(m.type)) return m;
  }
}

function send(m: Message): Promise<void> {
  return router.send([workerId, ...encodeMessage(m)]);
}

/** The epoch's task as the worker runs it: version 1 weights (the connectome's), from rest. */
function task(epoch: number): EpochTask {
  return { epoch, initialState: null, recWeight: net.connectome.recWeight, ffWeight: net.connectome.ffWeight, computeGradient: true, recordActivity: false };
}

function assign(epoch: number, withWeights: boolean, reduceGroup: { epochs: number[]; intervalEpochs: number }): Promise<void> {
  return send({
    type: "assign",
    runId: "test",
    update: 0,
    epoch,
    stream: epoch,
    weightsVersion: 1,
    weights: withWeights ? { rec: net.connectome.recWeight, ff: net.connectome.ffWeight } : null,
    initialState: null,
    computeGradient: true,
    recordActivity: false,
    reduceGroup,
  });
}

beforeAll(async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  await router.bind(`tcp://127.0.0.1:${port}`);
  worker = inProcessWorker(port, (engine, t) => (failOnce.delete(t.epoch) ? Promise.reject(new Error(`injected failure of epoch ${t.epoch}`)) : engine.runEpoch(t)), 3);
  await next("hello");
  await send({ type: "network", spec: net.spec });
  await next("ready");
});

afterAll(async () => {
  await send({ type: "shutdown", reason: "test done" });
  expect(await worker).toBe(0);
  router.close();
});

describe("a worker given a reduce group", () => {
  it("returns its results in one message, their gradients summed in epoch order as the coordinator's reducer sums them, bit for bit", async () => {
    const group = { epochs: [0, 1, 2], intervalEpochs: 4 };
    await assign(0, true, group);
    await assign(1, false, group);
    await assign(2, false, group);
    const m = (await next("reduced-results", "result", "failure")) as ReducedResultsMessage;
    expect(m.type).toBe("reduced-results");
    expect(m.results.map((r) => r.epoch)).toEqual([0, 1, 2]);
    for (const r of m.results) expect([r.recGrad.length, r.ffGrad.length]).toEqual([0, 0]);
    // The same epochs computed here, reduced by the coordinator's reducer: the worker's sums continue into the same mean.
    const engine = new SparseCpuEngine(net.spec);
    const own = [0, 1, 2, 3].map((e) => engine.runEpochSync(task(e)));
    engine.dispose();
    m.results.forEach((r, k) => expect(Array.from(r.finalState.v)).toEqual(Array.from(own[k].finalState.v)));
    const reducer = new GradientReducer();
    reducer.start(4);
    reducer.resumeFrom(3, [m.recSum, m.ffSum]);
    reducer.add(3, [own[3].recGrad!, own[3].ffGrad!]);
    const expected = averageGradients(own.map((r) => [r.recGrad!, r.ffGrad!]));
    expect(reducer.mean().map((a) => Array.from(a))).toEqual(expected.map((a) => Array.from(a)));
    // The sums are of the three epochs, not divided: the interval has four.
    expect(m.recSum[0]).toBe(own[0].recGrad![0] + own[1].recGrad![0] + own[2].recGrad![0]);
  });

  it("breaks into single results, with their own gradients, when one of its epochs fails", async () => {
    const group = { epochs: [4, 5, 6], intervalEpochs: 3 };
    for (const e of group.epochs) await assign(e, false, group);
    const seen = new Map<number, Message>();
    while (seen.size < 3) {
      const m = await next("reduced-results", "result", "failure");
      expect(m.type, "no reduce group's message once the group is broken").not.toBe("reduced-results");
      seen.set((m as ResultMessage).epoch, m);
    }
    expect(seen.get(5)).toEqual({ type: "failure", epoch: 5, message: "injected failure of epoch 5" });
    for (const e of [4, 6]) {
      const r = seen.get(e) as ResultMessage;
      expect(r.type).toBe("result");
      expect(r.recGrad.length).toBe(net.spec.rec.pre.length);
    }
  });
});
