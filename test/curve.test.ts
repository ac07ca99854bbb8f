/**
 * Authenticated, encrypted workers (issue #20): Z85, zcert key files, `snn-coord --keygen`, `--external --keys` with
 * its ZAP allow-list, and real coordinator and worker processes: admitted workers give the same results as an
 * insecure run, peers without a key, with an unlisted one or replaying an admitted worker's traffic are refused and counted, a key file added later admits
 * a new worker, and keys never reach the logs or metadata.json.
 */
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type AddressInfo, createConnection, createServer } from "node:net";
import { Dealer } from "zeromq";
import { z85Decode, z85Encode } from "../src/platform/z85.js";
import { AllowList, certificateText, generateKeys, KeyFileError, readKeyPair, readPublicKey } from "../src/distributed/curve-auth.js";
import { encodeMessage } from "../src/distributed/protocol.js";
import { coord, COORD, ensureBuilt, finalWeights, freePort, smallParams, start, tempDir, waitFor, WORKER } from "./helpers/runs.js";

beforeAll(() => ensureBuilt());

describe("Z85 and key files", () => {
  it("encodes RFC 32's test vector", () => {
    const bytes = Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    expect(z85Encode(bytes)).toBe("HelloWorld");
    expect(Array.from(z85Decode("HelloWorld")!)).toEqual(Array.from(bytes));
    expect(z85Decode("Hello")).not.toBeNull();
    expect(z85Decode("Hell")).toBeNull();
    expect(z85Decode("Hello~orld")).toBeNull();
  });

  it("--keygen writes czmq zcert files: public ones, and secret ones readable by their owner only; never overwrites", () => {
    const dir = join(tempDir(), "keys");
    const files = generateKeys(dir, 2, new Date("2026-12-02T10:00:00Z"));
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual([
      "coordinator.key",
      "coordinator.key_secret",
      "workers/worker-0.key",
      "workers/worker-0.key_secret",
      "workers/worker-1.key",
      "workers/worker-1.key_secret",
    ]);
    const pub = readFileSync(join(dir, "coordinator.key"), "utf8");
    expect(pub).toMatch(/^# {3}\*{4} {2}Generated on 2026-12-02 10:00:00 by snn-train {2}\*{4}\n# {3}ZeroMQ CURVE Public Certificate\n/);
    expect(pub).toMatch(/\nmetadata\ncurve\n {4}public-key = "[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}"\n$/);
    expect(pub).not.toMatch(/secret-key/);
    const secret = readFileSync(join(dir, "coordinator.key_secret"), "utf8");
    expect(secret).toMatch(/ZeroMQ CURVE \*\*Secret\*\* Certificate/);
    expect(statSync(join(dir, "coordinator.key_secret")).mode & 0o777).toBe(0o600);
    const pair = readKeyPair(join(dir, "coordinator.key_secret"), "--key");
    expect(readPublicKey(join(dir, "coordinator.key"), "--server-key")).toBe(pair.publicKey);
    expect(z85Decode(pair.secretKey)!.length).toBe(32);
    expect(() => generateKeys(dir, 1)).toThrow(/coordinator\.key exists; keys are never overwritten/);
  });

  it("refuses what is not a key: a public file as secret, a wrong length, no curve section, an empty allow-list", () => {
    const dir = tempDir();
    generateKeys(join(dir, "k"), 1);
    expect(() => readKeyPair(join(dir, "k/workers/worker-0.key"), "--key")).toThrow(KeyFileError);
    expect(() => readKeyPair(join(dir, "k/workers/worker-0.key"), "--key")).toThrow(/a public certificate where the secret one is needed/);
    const short = join(dir, "short.key");
    writeFileSync(short, certificateText({ publicKey: "HelloWorld" }, new Date()));
    expect(() => readPublicKey(short, "--server-key")).toThrow(/public-key is not a CURVE key \(40 Z85 characters/);
    const junk = join(dir, "junk.key");
    writeFileSync(junk, "hello\n");
    expect(() => readPublicKey(junk, "--server-key")).toThrow(/not a ZeroMQ CURVE certificate/);
    expect(() => readPublicKey(join(dir, "missing.key"), "--server-key")).toThrow(/cannot read it \(ENOENT\)/);
    expect(() => new AllowList(join(dir, "nowhere"))).toThrow(/is not a directory of worker public keys/);
    expect(() => new AllowList(tempDir())).toThrow(/holds no worker public key/);
  });
});

describe("local workers", () => {
  it("talk CURVE over a socket in a private directory, with keys made for the run: a plain peer there is refused", async () => {
    const dir = tempDir();
    const params = smallParams(dir, { epochs: 3000 });
    const metricsPort = freePort();
    const c = start(COORD, [params, "--workers", "1", "--output", join(dir, "out"), "--metrics-port", String(metricsPort)]);
    await waitFor(() => /Epoch 6\//.test(c.output()), 60_000, "training", c.output);
    // The local worker's command line names the socket and its key files (paths only, never keys).
    const children = readFileSync(`/proc/${c.child.pid}/task/${c.child.pid}/children`, "utf8").trim().split(/\s+/);
    const args = children.map((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).find((a) => a.includes("--connect"))!;
    const endpoint = args[args.indexOf("--connect") + 1];
    const keyFile = args[args.indexOf("--key") + 1];
    expect(endpoint).toMatch(/^ipc:\/\/.*\/snn-coord-[^/]+\/coordinator\.ipc$/);
    const privateDir = endpoint.slice("ipc://".length, -"/coordinator.ipc".length);
    expect(statSync(privateDir).mode & 0o777).toBe(0o700);
    expect(keyFile.startsWith(join(privateDir, "keys", "workers"))).toBe(true);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    // A process of the same user that reaches the socket without the run's keys is refused and counted.
    // Its handshake fails, so its message may never leave (a DEALER's send waits for a connected peer): not awaited.
    const plain = new Dealer({ linger: 0, sendTimeout: 5000 });
    plain.connect(endpoint);
    plain.send(encodeMessage({ type: "heartbeat" })).catch(() => {});
    const refused = async () => Number(/^snn_peers_refused_total\{reason="handshake"\} (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text())?.[1] ?? 0);
    let count = 0;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && count === 0; await new Promise((r) => setTimeout(r, 200))) count = await refused();
    plain.close();
    expect(count, c.output()).toBeGreaterThan(0);
    const secret = readKeyPair(join(privateDir, "keys", "coordinator.key_secret"), "--key").secretKey;
    c.child.kill("SIGINT");
    expect(await c.exit, c.output()).toBe(130);
    expect(c.output()).not.toContain(secret);
    // Gone with the coordinator.
    await waitFor(() => !existsSync(privateDir), 10_000, "the private directory removed");
  }, 120_000);
});

describe("--external --keys through the CLIs", () => {
  const dir = tempDir();
  const params = smallParams(dir, { epochs: 12 });
  const keys = join(dir, "keys");
  beforeAll(() => generateKeys(keys, 2));
  const workerArgs = (port: number, i: number, keyDir = keys) => ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0", "--server-key", join(keyDir, "coordinator.key"), "--key", join(keyDir, "workers", `worker-${i}.key_secret`)];

  it("admitted workers train as insecure ones do; peers without a key or with an unlisted one are refused and counted", async () => {
    const insecure = join(dir, "insecure");
    expect((await coord([params, "--workers", "1", "--output", insecure])).code).toBe(0);

    const out = join(dir, "curve");
    const port = freePort();
    const metricsPort = freePort();
    const c = start(COORD, [params, "--external", "--keys", keys, "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", out, "--metrics-port", String(metricsPort)]);
    await waitFor(() => /listening on/.test(c.output()), 20_000, "the coordinator listening", c.output);
    // Before the real worker: a plain peer (no CURVE) and one with a key the allow-list does not hold.
    const plain = new Dealer({ linger: 0, sendTimeout: 5000 });
    plain.connect(`tcp://127.0.0.1:${port}`);
    plain.send(encodeMessage({ type: "heartbeat" })).catch(() => {});
    const stranger = join(dir, "stranger");
    generateKeys(stranger, 1);
    // The right coordinator key, but a worker key of its own.
    const intruder = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0", "--server-key", join(keys, "coordinator.key"), "--key", join(stranger, "workers/worker-0.key_secret"), "--timeout", "3"]);
    // Refusals are counted one by one (the log shows the first few per heartbeat interval: the plain peer retries).
    const refused = async (reason: string) => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      return Number(new RegExp(`^snn_peers_refused_total\\{reason="${reason}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
    };
    let counts = [0, 0];
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && !(counts[0] > 0 && counts[1] > 0); await new Promise((r) => setTimeout(r, 200)))
      counts = [await refused("not_allowed"), await refused("handshake")];
    expect(counts[0], c.output()).toBeGreaterThan(0);
    expect(counts[1], c.output()).toBeGreaterThan(0);
    expect(c.output()).toMatch(/refused a peer: (its CURVE key is not in the allow-list|CURVE handshake failed)/);
    plain.close();

    const worker = start(WORKER, workerArgs(port, 0));
    expect(await c.exit, c.output()).toBe(0);
    expect(await worker.exit).toBe(0);
    // The stranger never got a network: it gives up when no coordinator answers it.
    expect(await intruder.exit).toBe(3);
    expect(finalWeights(out)).toEqual(finalWeights(insecure));
    // No key material anywhere the run writes or prints.
    const secrets = ["coordinator.key_secret", "workers/worker-0.key_secret"].map((f) => readKeyPair(join(keys, f), "--key").secretKey);
    const written = [c.output(), worker.output(), readFileSync(join(out, "metadata.json"), "utf8")].join("\n");
    for (const s of secrets) expect(written).not.toContain(s);
  }, 120_000);

  it("a flood of 10 000 unauthenticated connections: memory stays bounded and training goes on", async () => {
    const out = join(dir, "flood");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--keys", keys, "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", out, "--metrics-port", "0", "--epochs", "30000"]);
    await waitFor(() => /listening on/.test(c.output()), 20_000, "the coordinator listening", c.output);
    const worker = start(WORKER, workerArgs(port, 1));
    const epoch = () => Math.max(0, ...[...c.output().matchAll(/Epoch (\d+)\//g)].map((m) => Number(m[1])));
    await waitFor(() => /Epoch 6\//.test(c.output()), 30_000, "training", c.output);
    const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${c.child.pid}/status`, "utf8"))![1]) / 1024;
    const before = rss();
    const started = epoch();
    // Raw TCP peers, 100 at a time: a ZMTP greeting without CURVE, then garbage, then gone.
    const greeting = Buffer.concat([Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0]), Buffer.from("NULL".padEnd(20, "\0")), Buffer.alloc(32)]);
    for (let batch = 0; batch < 100; batch++)
      await Promise.all(
        Array.from({ length: 100 }, () =>
          new Promise<void>((done) => {
            const sock = createConnection(port, "127.0.0.1", () => {
              sock.write(Buffer.concat([greeting, Buffer.from("garbage")]));
              setTimeout(() => sock.destroy(), 5);
            });
            sock.on("error", () => undefined);
            sock.on("close", () => done());
          }),
        ),
      );
    const after = rss();
    const during = epoch();
    await waitFor(() => epoch() >= during + 30, 30_000, "training going on after the flood", c.output);
    c.child.kill("SIGINT");
    expect(await c.exit, c.output()).toBe(130);
    await worker.exit;
    // Measured: 85 → 95 MiB, and training went from epoch 6 to 159 during the flood.
    expect(after - before, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB`).toBeLessThan(100);
    expect(during, "training went on during the flood").toBeGreaterThan(started);
  }, 180_000);

  it("a peer replaying an admitted worker's recorded traffic is refused and counted; the run is unchanged", async () => {
    const epochs = ["--epochs", "150"];
    const insecure = join(dir, "replay-ref");
    expect((await coord([params, "--workers", "1", "--output", insecure, ...epochs])).code).toBe(0);
    const out = join(dir, "replayed");
    const port = freePort();
    const metricsPort = freePort();
    const c = start(COORD, [params, "--external", "--keys", keys, "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", out, "--metrics-port", String(metricsPort), ...epochs]);
    await waitFor(() => /listening on/.test(c.output()), 20_000, "the coordinator listening", c.output);
    // The admitted worker talks through a proxy that records every byte it sends: its CURVE handshake (HELLO,
    // INITIATE with its vouch) and its encrypted messages, as someone on the network path would see them.
    const sent: Buffer[] = [];
    const proxy = createServer((client) => {
      const upstream = createConnection(port, "127.0.0.1");
      client.on("data", (d) => {
        sent.push(Buffer.from(d));
        upstream.write(d);
      });
      upstream.on("data", (d) => client.write(d));
      const end = () => (client.destroy(), upstream.destroy());
      client.on("close", end).on("error", end);
      upstream.on("close", end).on("error", end);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const proxyPort = (proxy.address() as AddressInfo).port;
    const worker = start(WORKER, ["--connect", `tcp://127.0.0.1:${proxyPort}`, ...workerArgs(port, 0).slice(2)]);
    await waitFor(() => /Epoch 6\//.test(c.output()), 30_000, "training", c.output);
    // Replay all of it, on a connection of its own, while the run goes on.
    const handshakes = async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      return Number(/^snn_peers_refused_total\{reason="handshake"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const before = await handshakes();
    const replay = createConnection(port, "127.0.0.1");
    await new Promise<void>((r) => replay.on("connect", r));
    replay.write(Buffer.concat(sent));
    const closed = new Promise<void>((r) => replay.on("close", () => r()).on("error", () => r()));
    let after = before;
    for (const deadline = Date.now() + 10_000; after <= before && Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) after = await handshakes();
    expect(after, c.output()).toBeGreaterThan(before);
    replay.destroy();
    await closed;
    expect(await c.exit, c.output()).toBe(0);
    expect(await worker.exit).toBe(0);
    proxy.close();
    expect(c.output()).toMatch(/refused a peer: CURVE handshake failed/);
    // One worker joined: the replay never became one.
    expect(c.output().match(/joined \(sparse-cpu/g)?.length).toBe(1);
    expect(finalWeights(out)).toEqual(finalWeights(insecure));
  }, 120_000);

  it("a key file added to the allow-list admits a new worker without a restart", async () => {
    const own = join(dir, "own-keys");
    generateKeys(own, 1);
    const later = join(dir, "later");
    generateKeys(later, 1);
    const out = join(dir, "added");
    const port = freePort();
    const c = start(COORD, [params, "--external", "--keys", own, "--bind", `tcp://127.0.0.1:${port}`, "--min-workers", "1", "--output", out, "--metrics-port", "0", "--epochs", "3000"]);
    await waitFor(() => /listening on/.test(c.output()), 20_000, "the coordinator listening", c.output);
    const first = start(WORKER, workerArgs(port, 0, own));
    await waitFor(() => /Epoch 6\//.test(c.output()), 30_000, "training", c.output);
    // Admit the later worker's key: copy its public file into the allow-list.
    copyFileSync(join(later, "workers/worker-0.key"), join(own, "workers/worker-later.key"));
    const second = start(WORKER, ["--connect", `tcp://127.0.0.1:${port}`, "--metrics-port", "0", "--server-key", join(own, "coordinator.key"), "--key", join(later, "workers/worker-0.key_secret")]);
    await waitFor(() => (c.output().match(/joined \(sparse-cpu/g) ?? []).length >= 2, 30_000, "the second worker joined", c.output);
    c.child.kill("SIGINT");
    expect(await c.exit, c.output()).toBe(130);
    await Promise.all([first.exit, second.exit]);
  }, 120_000);

  it("--external without --keys (or --insecure) and bad key files: one line, exit 2, no run directory", async () => {
    const cases: [string[], RegExp][] = [
      [["--external"], /--external needs --keys DIR \(CURVE: snn-coord --keygen DIR writes them\), or --insecure/],
      [["--external", "--keys", join(dir, "nowhere")], /--keys .*nowhere\/coordinator\.key_secret: cannot read it \(ENOENT\)/],
      [["--external", "--keys", keys, "--insecure"], /--keys and --insecure contradict each other/],
      [["--workers", "1", "--keys", keys], /--keys and --insecure apply to --external/],
    ];
    for (const [args, message] of cases) {
      const out = join(dir, `bad-${cases.findIndex((x) => x[0] === args)}`);
      const r = await coord([params, ...args, "--output", out]);
      expect(r.code, r.output).toBe(2);
      expect(r.output).toMatch(message);
      expect(r.output).not.toMatch(/\n\s+at /);
      expect(existsSync(out)).toBe(false);
    }
    const w = start(WORKER, ["--connect", "tcp://127.0.0.1:1", "--server-key", join(keys, "coordinator.key"), "--key", join(keys, "workers/worker-0.key")]);
    expect(await w.exit).toBe(2);
    expect(w.output()).toMatch(/--key .*worker-0\.key: a public certificate where the secret one is needed/);
    const half = start(WORKER, ["--connect", "tcp://127.0.0.1:1", "--key", join(keys, "workers/worker-0.key_secret")]);
    expect(await half.exit).toBe(2);
    expect(half.output()).toMatch(/--server-key and --key go together/);
  }, 60_000);
});
