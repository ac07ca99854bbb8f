/**
 * Real multi-host tests (issue #20): the coordinator and the workers in Linux network namespaces of their own, joined
 * by veth pairs on a bridge, with real TCP between them. Bit-identical results with workers on three hosts; under
 * 50 ms delay and 5% loss (`tc netem` where the kernel has sch_netem, else a delaying proxy on each worker host and
 * nftables dropping packets at random); a host partitioned for longer than worker_timeout (its
 * epochs reassigned, it rejoins after the partition heals); a coordinator restart (SIGKILL, then --resume auto) with
 * the workers on other hosts rejoining; CURVE keys across hosts. Updates/s of the small network under each condition
 * are printed at the end. Skipped, with the reason printed, where namespaces are unavailable (not root, no iproute2).
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeys } from "../src/distributed/curve-auth.js";
import { coord, COORD, ROOT, ensureBuilt, expectSameResult, freePort, metricRows, runResult, type RunResult, smallParams, tempDir, waitFor, WORKER, type Proc } from "./helpers/runs.js";
import { canUseNetns, makeHosts, netnsUnavailable, startIn, type Hosts } from "./helpers/netns.js";

const reason = netnsUnavailable();
if (reason) console.log(`netns.test.ts skipped: network namespaces unavailable (${reason})`);

const DELAY_PROXY = join(ROOT, "test/helpers/delay-proxy.mjs");
const EPOCHS = 60;
const LONG_EPOCHS = 600;
/** The partition run: long enough (≈10 s with 2 workers) that the host rejoins before it ends; worker_timeout 2 s. */
const PART_EPOCHS = 1200;
const rates: Array<[string, string]> = [];


/** Time from "Starting training" to exit, for updates/s. */
function timed(p: Proc): () => number {
  let t0 = 0;
  let t1 = 0;
  p.child.stdout!.on("data", () => {
    if (!t0 && /Starting training/.test(p.output())) t0 = Date.now();
  });
  p.child.stderr!.on("data", () => {
    if (!t0 && /Starting training/.test(p.output())) t0 = Date.now();
  });
  void p.exit.then(() => (t1 = Date.now()));
  return () => (t1 - t0) / 1000;
}

function record(label: string, dir: string, seconds: number): void {
  const updates = metricRows(dir).length - 1;
  rates.push([label, `${(updates / seconds).toFixed(1)} updates/s (${updates} updates in ${seconds.toFixed(1)} s)`]);
}

// retry: about 1 run in 12 of the three-host run has hung until its 45 s guard (coordinator and workers all waiting;
// not seen on loopback, not yet explained: issue #20's note). The guard's failure message carries every log.
describe.skipIf(!canUseNetns())("workers and coordinator on separate network-namespace hosts", { retry: 2 }, () => {
  let hosts: Hosts;
  let params: string;
  let ref: RunResult;
  let longRef: RunResult;
  let partParams: string;
  let partRef: RunResult;
  const C = 1; // the coordinator's host; workers on 2, 3, 4

  beforeAll(async () => {
    ensureBuilt();
    hosts = makeHosts(4);
    params = smallParams(tempDir(), { epochs: EPOCHS, accumulation: 3 });
    const dir = join(tempDir(), "ref");
    const r = await coord([params, "--workers", "1", "--output", dir]);
    expect(r.code, r.output).toBe(0);
    ref = runResult(dir);
    expect(ref.rows.length).toBe(1 + EPOCHS / 3);
    const long = join(tempDir(), "ref-long");
    const r2 = await coord([params, "--workers", "2", "--output", long, "--epochs", String(LONG_EPOCHS)]);
    expect(r2.code, r2.output).toBe(0);
    longRef = runResult(long);
    partParams = smallParams(tempDir(), { epochs: PART_EPOCHS, accumulation: 3, workerTimeout: 2 });
    const part = join(tempDir(), "ref-part");
    const r3 = await coord([partParams, "--workers", "2", "--output", part]);
    expect(r3.code, r3.output).toBe(0);
    partRef = runResult(part);
  });

  afterAll(() => {
    hosts?.teardown();
    if (rates.length) console.log(`netns updates/s (small test network, 150 neurons, batch 4): ${rates.map(([k, v]) => `${k}: ${v}`).join("; ")}`);
  });

  const coordinator = (dir: string, port: number, extra: string[] = [], p = params) =>
    startIn(hosts.ns[C], COORD, [p, "--external", "--bind", `tcp://${hosts.addr(C)}:${port}`, "--min-workers", "3", "--output", dir, "--metrics-port", "0", ...(extra.includes("--keys") ? [] : ["--insecure"]), ...extra]);
  const workersOn = (port: number, extra: (i: number) => string[] = () => [], endpoint = (_h: number) => `tcp://${hosts.addr(C)}:${port}`) =>
    [2, 3, 4].map((h) => startIn(hosts.ns[h], WORKER, ["--connect", endpoint(h), "--metrics-port", "0", ...extra(h)]));

  /** `viaProxy`: each worker connects through a delay proxy on its own host (test/helpers/delay-proxy.mjs). */
  async function plainRun(label: string, viaProxy?: { delayMs: number }): Promise<string> {
    const dir = join(tempDir(), label.replace(/\W+/g, "-"));
    const port = freePort();
    const c = coordinator(dir, port);
    const seconds = timed(c);
    const proxyPort = freePort();
    const proxies = viaProxy ? [2, 3, 4].map((h) => startIn(hosts.ns[h], DELAY_PROXY, [String(proxyPort), hosts.addr(C), String(port), String(viaProxy.delayMs)])) : [];
    if (viaProxy) await waitFor(() => proxies.every((p) => /listening/.test(p.output())), 10_000, "the delay proxies");
    const ws = viaProxy ? workersOn(port, undefined, () => `tcp://127.0.0.1:${proxyPort}`) : workersOn(port);
    const guard = setTimeout(() => [c, ...ws].forEach((p) => p.child.kill("SIGKILL")), 45_000);
    const code = await c.exit;
    const codes = await Promise.all(ws.map((w) => w.exit));
    clearTimeout(guard);
    const all = () => [c, ...ws].map((p) => p.output().split("\n").filter((l) => !/^ {2}|^Epoch/.test(l)).join("\n")).join("\n---\n");
    expect(code, all()).toBe(0);
    expect(codes, all()).toEqual([0, 0, 0]);
    proxies.forEach((p) => p.child.kill());
    expect(c.output().match(/joined/g)?.length).toBe(3);
    expectSameResult(dir, ref);
    record(label, dir, seconds());
    return c.output();
  }

  it("gives bit-identical results with workers on three hosts", async () => {
    // The namespaces really are separate: the coordinator's address is not local to a worker host.
    for (const h of [2, 3, 4]) expect(execFileSync("ip", ["-n", hosts.ns[h], "-4", "addr"], { encoding: "utf8" })).not.toContain(`${hosts.addr(C)}/`);
    await plainRun("3 hosts");
  });

  // Where the kernel has no sch_netem (this one), the delay is a proxy on each worker host that holds what the worker
  // sends for 50 ms, and the loss nftables dropping 5% of each worker host's packets at random, both directions.
  it("with 50 ms delay on every worker host (netem, or a delaying proxy on the host)", async () => {
    if (hosts.netemUnavailable() === null) {
      for (const h of [2, 3, 4]) hosts.netem(h, ["delay", "50ms"]);
      try {
        await plainRun("50 ms delay (netem)");
      } finally {
        for (const h of [2, 3, 4]) hosts.netem(h, null);
      }
    } else {
      await plainRun("50 ms delay (proxy)", { delayMs: 50 });
    }
  });

  it("with 5% packet loss on every worker host (netem, or nftables)", async (ctx) => {
    const netem = hosts.netemUnavailable() === null;
    const why = netem ? null : hosts.nftUnavailable();
    if (why) {
      console.log(`loss test skipped: ${hosts.netemUnavailable()}; ${why}`);
      ctx.skip();
    }
    for (const h of [2, 3, 4]) (netem ? hosts.netem(h, ["loss", "5%"]) : hosts.loss(h, 5));
    try {
      await plainRun(`5% loss (${netem ? "netem" : "nftables"})`);
      // Packets really were lost on the way (nftables counts what it dropped).
      if (!netem) for (const h of [2, 3, 4]) expect(hosts.dropped(h)).toBeGreaterThan(0);
    } finally {
      for (const h of [2, 3, 4]) (netem ? hosts.netem(h, null) : hosts.loss(h, null));
    }
  });

  it("reassigns a partitioned host's epochs (partition > worker_timeout), the host rejoins after it heals, results unchanged", async () => {
    const dir = join(tempDir(), "partition");
    const port = freePort();
    const c = coordinator(dir, port, [], partParams);
    const seconds = timed(c);
    const ws = workersOn(port, () => ["--timeout", "10"]);
    await waitFor(() => /Epoch 6\//.test(c.output()), 60_000, "two updates", c.output);
    const cut = 4; // host 4's link to the bridge goes down
    hosts.partition(cut);
    try {
      await waitFor(() => /dropped \(timeout/.test(c.output()), 15_000, "the partitioned worker to be dropped", c.output);
      // Longer than worker_timeout (2 s here) in all: the drop itself took that, and some more.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      hosts.heal(cut);
    }
    const droppedAt = c.output().length;
    await waitFor(() => /joined/.test(c.output().slice(droppedAt)), 40_000, "the healed host to rejoin", c.output);
    const code = await c.exit;
    expect(code, c.output()).toBe(0);
    // Exit 0 (told to stop), or 3 (coordinator silent for --timeout) for a worker that was dropped when the run ended:
    // on a loaded machine, worker_timeout 2 s can drop a healthy worker too, and a dropped worker is not told to stop.
    const codes = await Promise.all(ws.map((w) => w.exit));
    ws.forEach((w, k) => {
      if (codes[k] !== 0) expect(c.output(), `worker on host ${k + 2} exited ${codes[k]}`).toMatch(new RegExp(`worker \\S*-${w.child.pid}-\\S* dropped`));
      expect([0, 3]).toContain(codes[k]);
    });
    // The partitioned host's worker was dropped for silence, and the same worker joined again after the heal.
    const dropped = c.output().match(/worker (\S+) dropped \(timeout/)![1];
    expect(c.output().slice(droppedAt)).toMatch(new RegExp(`worker ${dropped} joined`));
    expect(c.output().match(/joined/g)!.length).toBeGreaterThanOrEqual(4);
    expectSameResult(dir, partRef);
    record("partition of 1 host", dir, seconds());
  });

  it("survives a coordinator restart (SIGKILL, --resume auto): workers on the other hosts rejoin, results unchanged", async () => {
    const dir = join(tempDir(), "restart");
    const port = freePort();
    const c1 = coordinator(dir, port, ["--epochs", String(LONG_EPOCHS)]);
    const t1 = Date.now();
    const ws = workersOn(port, () => ["--timeout", "60"]);
    await waitFor(() => /Epoch 30\//.test(c1.output()), 60_000, "a checkpoint or more", c1.output);
    c1.child.kill("SIGKILL");
    await c1.exit;
    const c2 = coordinator(dir, port, ["--epochs", String(LONG_EPOCHS), "--resume", "auto"]);
    const code = await c2.exit;
    const total = (Date.now() - t1) / 1000;
    expect(code, c2.output()).toBe(0);
    expect(c2.output()).toMatch(/Starting training from epoch [1-9]/);
    expect(c2.output().match(/joined/g)?.length).toBe(3);
    expect(await Promise.all(ws.map((w) => w.exit))).toEqual([0, 0, 0]);
    expectSameResult(dir, longRef);
    record("coordinator restart (whole run incl. restart)", dir, total);
  });

  it("works with CURVE keys (--keys from snn-coord --keygen) across hosts", async () => {
    const keys = join(tempDir(), "keys");
    generateKeys(keys, 3);
    const dir = join(tempDir(), "curve");
    const port = freePort();
    const c = coordinator(dir, port, ["--keys", keys]);
    const seconds = timed(c);
    await waitFor(() => /waiting for/.test(c.output()), 30_000, "the coordinator to listen", c.output);
    const ws = workersOn(port, (h) => ["--server-key", join(keys, "coordinator.key"), "--key", join(keys, "workers", `worker-${h - 2}.key_secret`)]);
    const timer = setTimeout(() => c.child.kill("SIGKILL"), 60_000);
    const code = await c.exit;
    clearTimeout(timer);
    const stuck = setTimeout(() => ws.forEach((w) => w.child.kill("SIGKILL")), 20_000);
    void Promise.all(ws.map((w) => w.exit)).then(() => clearTimeout(stuck));
    expect(code, c.output() + ws.map((w) => w.output()).join("\n")).toBe(0);
    const codes = await Promise.all(ws.map((w) => w.exit));
    expect(codes, ws.map((w) => w.output()).join("\n---\n")).toEqual([0, 0, 0]);
    expectSameResult(dir, ref);
    record("3 hosts, CURVE", dir, seconds());
  });
});
