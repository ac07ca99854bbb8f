import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FileWriteError } from "../src/platform/atomic-file.js";
import { resolveWandbMode, WandbLogger, type WandbStartOptions } from "../src/report/wandb.js";
import { RunMirror, WandbClient } from "../src/report/wandb-api.js";
import { main as syncMain } from "../src/report/wandb-sync.js";

const API_KEY = "k".repeat(40);
const CONFIG = { simulation: { dt: 1, epochs: 500, seed: 42 }, targets: { firing_rates: [5, 15], cvs: 1 } };

const dirs: string[] = [];
const servers: Server[] = [];
beforeEach(() => {
  for (const name of ["WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_MODE"]) vi.stubEnv(name, undefined);
});
afterEach(async () => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "snn-wandb-"));
  dirs.push(dir);
  return dir;
}

/** A valid width x height grey PNG. */
function png(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale, no interlace
  const raw = Buffer.alloc((width + 1) * height, 0x80);
  for (let y = 0; y < height; y++) raw[y * (width + 1)] = 0; // filter byte of each scanline
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

type Row = Record<string, unknown> & { _step: number; _runtime: number; _timestamp: number };

function runFiles(runDir: string) {
  const files = join(runDir, "files");
  const read = (name: string) => readFileSync(join(files, name), "utf8");
  return {
    files,
    history: () =>
      read("wandb-history.jsonl")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Row),
    summary: () => JSON.parse(read("wandb-summary.json")) as Record<string, unknown>,
    config: () => JSON.parse(read("config.json")) as unknown,
    metadata: () => JSON.parse(read("wandb-metadata.json")) as Record<string, unknown>,
  };
}

function options(outputDir: string, extra: Partial<WandbStartOptions> = {}): WandbStartOptions {
  return { outputDir, project: "snn-test", name: "quickstart", mode: "offline", config: CONFIG, ...extra };
}

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A loopback stand-in for the W&B API that records every request and answers like the real one. */
async function recordingServer(): Promise<{ base: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  let base = "";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const json = (value: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value));
      if (req.url === "/graphql") {
        const { query, variables } = JSON.parse(body.toString()) as { query: string; variables: Record<string, unknown> };
        if (query.includes("viewer")) return json({ data: { viewer: { entity: "default-entity" } } });
        if (query.includes("upsertBucket")) {
          const entity = { name: variables.entity };
          return json({ data: { upsertBucket: { bucket: { name: variables.name, project: { name: variables.project, entity } } } } });
        }
        if (query.includes("RunUploadUrls")) {
          const edges = (variables.files as string[]).map((name) => ({ node: { name, url: `${base}/upload/${name}` } }));
          return json({ data: { model: { bucket: { files: { uploadHeaders: ["X-Upload-Test: yes"], edges } } } } });
        }
        return res.writeHead(400).end();
      }
      if (req.url?.endsWith("/file_stream") || req.url?.startsWith("/upload/")) return json({});
      res.writeHead(404).end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, requests };
}

/** A server that accepts connections and never answers. */
async function silentServer(): Promise<string> {
  const server = createServer(() => {});
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** What the recording server learnt about runs: upserts, history by line number, summaries, completions, files. */
function received(requests: Recorded[]) {
  const upserts: Record<string, unknown>[] = [];
  const history = new Map<number, Row>();
  const summaries: Record<string, unknown>[] = [];
  const complete: unknown[] = [];
  const uploaded = new Map<string, Buffer>();
  for (const r of requests) {
    if (r.url === "/graphql") {
      const { query, variables } = JSON.parse(r.body.toString()) as { query: string; variables: Record<string, unknown> };
      if (query.includes("upsertBucket")) upserts.push(variables);
    } else if (r.url.endsWith("/file_stream")) {
      const body = JSON.parse(r.body.toString()) as {
        files?: Record<string, { offset: number; content: string[] }>;
        complete?: boolean;
        exitcode?: number;
      };
      const h = body.files?.["wandb-history.jsonl"];
      h?.content.forEach((line, i) => history.set(h.offset + i, JSON.parse(line) as Row));
      const s = body.files?.["wandb-summary.json"];
      if (s) summaries.push(JSON.parse(s.content[0]) as Record<string, unknown>);
      if (body.complete) complete.push(body.exitcode);
    } else if (r.method === "PUT") {
      uploaded.set(decodeURIComponent(r.url.slice("/upload/".length)), r.body);
    }
  }
  const lines = [...history.keys()].sort((a, b) => a - b);
  return { upserts, lines, rows: lines.map((i) => history.get(i)!), summaries, complete, uploaded };
}

describe("resolveWandbMode", () => {
  it("is online exactly when an API key is set, unless WANDB_MODE says otherwise", () => {
    expect(resolveWandbMode({})).toBe("offline");
    expect(resolveWandbMode({ WANDB_API_KEY: API_KEY })).toBe("online");
    expect(resolveWandbMode({ WANDB_API_KEY: API_KEY, WANDB_MODE: "offline" })).toBe("offline");
    expect(resolveWandbMode({ WANDB_MODE: "dryrun" })).toBe("offline");
    expect(resolveWandbMode({ WANDB_MODE: "disabled" })).toBe("disabled");
  });
});

describe("WandbLogger offline", () => {
  it("writes history, summary, config, metadata and images into output_dir/wandb/offline-run-*", async () => {
    const out = tempDir();
    const figure = join(out, "spike_raster.png");
    writeFileSync(figure, png(7, 3));
    const logger = await WandbLogger.start(options(out));
    expect(logger.runId).toMatch(/^[a-z0-9]{8}$/);
    expect(logger.runDir).toBe(join(out, "wandb", readdirSync(join(out, "wandb"))[0]));
    expect(logger.runDir).toMatch(new RegExp(`/wandb/offline-run-\\d{8}_\\d{6}-${logger.runId}$`));

    logger.log(0, { "loss/total": 2, "firing_rate/E/mean": 3.5 });
    logger.log(1, { "loss/total": Number.NaN, "firing_rate/E/mean": Number.POSITIVE_INFINITY });
    logger.log(2, { "loss/total": 1.5 });
    logger.logImages(2, [{ key: "spike_raster", path: figure }]);
    logger.log(3, { "loss/total": 1.25, "cv/E/std": Number.NEGATIVE_INFINITY });
    await logger.finish(0);

    const run = runFiles(logger.runDir!);
    const rows = run.history();
    expect(rows.map((r) => r._step)).toEqual([0, 1, 2, 3]);
    expect(rows[1]).toMatchObject({ "loss/total": "NaN", "firing_rate/E/mean": "Infinity" });
    expect(rows[3]["cv/E/std"]).toBe("-Infinity");
    // Scalars and the figures of a step form one row.
    expect(rows[2]["loss/total"]).toBe(1.5);
    const image = rows[2].spike_raster as Record<string, unknown>;
    expect(image).toMatchObject({ _type: "image-file", format: "png", width: 7, height: 3, size: png(7, 3).length });
    expect(image.path).toMatch(/^media\/images\/spike_raster_2_[0-9a-f]{20}\.png$/);
    expect(readFileSync(join(run.files, image.path as string))).toEqual(png(7, 3));
    for (const [i, r] of rows.entries()) {
      expect(r._runtime).toBeGreaterThanOrEqual(0);
      expect(Math.abs(r._timestamp - Date.now() / 1000)).toBeLessThan(60);
      if (i > 0) expect(r._runtime).toBeGreaterThanOrEqual(rows[i - 1]._runtime);
    }

    expect(run.summary()).toMatchObject({ "loss/total": 1.25, "firing_rate/E/mean": "Infinity", _step: 3 });
    expect(run.config()).toEqual(CONFIG);
    expect(run.metadata()).toMatchObject({ runId: logger.runId, project: "snn-test", name: "quickstart", exitCode: 0 });
  });

  it("an offline run that cannot be written is one FileWriteError naming the place, not a crash", async () => {
    const out = tempDir();
    writeFileSync(join(out, "wandb"), "a file where the wandb/ folder goes");
    const failed = WandbLogger.start(options(out));
    await expect(failed).rejects.toBeInstanceOf(FileWriteError);
    await expect(failed).rejects.toThrow(`${join(out, "wandb")}: cannot write the W&B offline run there:`);
    expect(readFileSync(join(out, "wandb"), "utf8")).toBe("a file where the wandb/ folder goes");
  });

  it("a resumed run appends to the same directory, continuing the global step", async () => {
    const out = tempDir();
    const first = await WandbLogger.start(options(out));
    for (let step = 0; step < 5; step++) first.log(step, { "loss/total": 10 - step });
    // The first process fails after logging step 4; the checkpoint it is resumed from was written after step 2.
    await first.finish(1);

    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const second = await WandbLogger.start(options(out, { runId: first.runId, resumeStep: 3 }));
    expect(second.runDir).toBe(first.runDir);
    expect(readdirSync(join(out, "wandb"))).toHaveLength(1);
    second.log(2, { "loss/total": -1 });
    for (let step = 3; step < 6; step++) second.log(step, { "loss/total": 100 + step });
    await second.finish(0);

    const run = runFiles(second.runDir!);
    const rows = run.history();
    expect(rows.map((r) => r._step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows.map((r) => r["loss/total"])).toEqual([10, 9, 8, 103, 104, 105]);
    expect(rows[3]._runtime).toBeGreaterThanOrEqual(rows[2]._runtime);
    // Where the offline run is, then the one step that goes back.
    expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringMatching(/^W&B: logging offline\. The offline run .* wandb sync /), expect.stringMatching(/step 2 is before/)]);
    expect(run.summary()).toMatchObject({ "loss/total": 105, _step: 5 });
    expect(run.metadata()).toMatchObject({ runId: first.runId, exitCode: 0 });
  });

  it("disabled mode writes nothing", async () => {
    const out = tempDir();
    const logger = await WandbLogger.start(options(out, { mode: "disabled" }));
    logger.log(0, { "loss/total": 1 });
    await logger.finish(0);
    expect(logger.runDir).toBeUndefined();
    expect(logger.runId).toBeUndefined();
    expect(existsSync(join(out, "wandb"))).toBe(false);
  });

  it("online mode without an API key warns once and logs offline", async () => {
    const out = tempDir();
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const logger = await WandbLogger.start(options(out, { mode: "online" }));
    logger.log(0, { "loss/total": 1 });
    await logger.finish(0);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(/WANDB_API_KEY.*snn-wandb-sync/s);
    expect(runFiles(logger.runDir!).history()).toHaveLength(1);
  });
});

describe("WandbLogger online", () => {
  it("sends the config, history, summary, images and exit code to W&B and keeps the offline copy", async () => {
    const out = tempDir();
    const { base, requests } = await recordingServer();
    const figure = join(out, "rates.png");
    writeFileSync(figure, png(4, 4));
    const opts = options(out, { mode: "online", apiKey: API_KEY, baseUrl: base, entity: "lab" });
    const logger = await WandbLogger.start(opts);
    logger.log(0, { "loss/total": 3 });
    logger.log(1, { "loss/total": 2, "cv/E/mean": Number.NaN });
    logger.logImages(1, [{ key: "rates", path: figure }]);
    logger.log(2, { "loss/total": 1 });
    await logger.finish(0);

    const auth = `Basic ${Buffer.from(`api:${API_KEY}`).toString("base64")}`;
    expect(requests.every((r) => r.method === "PUT" || r.headers.authorization === auth)).toBe(true);
    const got = received(requests);
    expect(got.upserts[0]).toMatchObject({ name: logger.runId, project: "snn-test", entity: "lab", displayName: "quickstart" });
    expect(JSON.parse(got.upserts[0].config as string)).toEqual({
      simulation: { desc: null, value: CONFIG.simulation },
      targets: { desc: null, value: CONFIG.targets },
    });
    expect(requests.some((r) => r.url === `/files/lab/snn-test/${logger.runId}/file_stream`)).toBe(true);
    expect(got.lines).toEqual([0, 1, 2]);
    expect(got.rows.map((r) => r["loss/total"])).toEqual([3, 2, 1]);
    expect(got.rows[1]["cv/E/mean"]).toBe("NaN");
    expect(got.summaries.at(-1)).toMatchObject({ "loss/total": 1, _step: 2 });
    expect(got.complete).toEqual([0]);
    const imagePath = (got.rows[1].rates as { path: string }).path;
    expect(got.uploaded.get(imagePath)).toEqual(png(4, 4));
    expect(JSON.parse(got.uploaded.get("config.json")!.toString())).toEqual(CONFIG);
    expect(JSON.parse(got.uploaded.get("wandb-metadata.json")!.toString())).toMatchObject({ exitCode: 0 });
    const upload = requests.find((r) => r.method === "PUT")!;
    expect(upload.headers["x-upload-test"]).toBe("yes");

    // The offline copy is complete too.
    expect(runFiles(logger.runDir!).history().map((r) => r._step)).toEqual([0, 1, 2]);

    // Resuming continues the same online run: kept lines are re-sent at their offsets, new ones follow.
    requests.length = 0;
    const resumed = await WandbLogger.start({ ...opts, runId: logger.runId, resumeStep: 2 });
    resumed.log(2, { "loss/total": 0.5 });
    resumed.log(3, { "loss/total": 0.25 });
    await resumed.finish(0);
    const again = received(requests);
    expect(again.upserts[0]).toMatchObject({ name: logger.runId });
    expect(again.lines).toEqual([0, 1, 2, 3]);
    expect(again.rows.map((r) => r["loss/total"])).toEqual([3, 2, 0.5, 0.25]);
  });

  it("asks W&B for the default entity when none is given", async () => {
    const out = tempDir();
    const { base, requests } = await recordingServer();
    const logger = await WandbLogger.start(options(out, { mode: "online", apiKey: API_KEY, baseUrl: base }));
    logger.log(0, { "loss/total": 1 });
    await logger.finish(0);
    expect(received(requests).upserts[0]).toMatchObject({ entity: "default-entity" });
    expect(requests.some((r) => r.url.startsWith("/files/default-entity/snn-test/"))).toBe(true);
  });

  it("an unreachable W&B costs one warning, never an exception, and finish returns quickly", async () => {
    const out = tempDir();
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const t0 = Date.now();
    // Nothing listens on port 1.
    const logger = await WandbLogger.start(options(out, { mode: "online", apiKey: API_KEY, baseUrl: "http://127.0.0.1:1" }));
    for (let step = 0; step < 20; step++) logger.log(step, { "loss/total": step });
    await new Promise((r) => setTimeout(r, 100));
    await logger.finish(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(/upload failed.*snn-wandb-sync/s);
    expect(runFiles(logger.runDir!).history()).toHaveLength(20);
    expect(runFiles(logger.runDir!).metadata()).toMatchObject({ exitCode: 0 });
  });

  it("a W&B that accepts connections but never answers is cut off by the timeout", async () => {
    const out = tempDir();
    const baseUrl = await silentServer();
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const t0 = Date.now();
    const logger = await WandbLogger.start(options(out, { mode: "online", apiKey: API_KEY, baseUrl, timeoutMs: 500 }));
    logger.log(0, { "loss/total": 1 });
    await logger.finish(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(runFiles(logger.runDir!).history()).toHaveLength(1);
  });
});

describe("RunMirror", () => {
  it("sends long histories in chunks at consecutive offsets, the summary with the last one", async () => {
    const { base, requests } = await recordingServer();
    const client = new WandbClient({ baseUrl: base, apiKey: API_KEY, timeoutMs: 2000 });
    const mirror = new RunMirror(client, { runId: "r1", project: "p", entity: "e", name: "n", config: {} }, tempDir(), 2);
    const lines = [0, 1, 2, 3, 4].map((step) => JSON.stringify({ x: step, _step: step }));
    mirror.addLines(0, lines);
    mirror.setSummary(JSON.stringify({ x: 4 }));
    await mirror.push(3);
    const streams = requests
      .filter((r) => r.url === "/files/e/p/r1/file_stream")
      .map((r) => JSON.parse(r.body.toString()) as { files?: Record<string, { offset: number; content: string[] }> });
    expect(streams.map((b) => b.files?.["wandb-history.jsonl"]?.offset)).toEqual([0, 2, 4, undefined]);
    expect(streams.map((b) => b.files?.["wandb-summary.json"] !== undefined)).toEqual([false, false, true, false]);
    expect(received(requests)).toMatchObject({ lines: [0, 1, 2, 3, 4], complete: [3] });
    expect(mirror.pending).toBe(false);
  });
});

describe("snn-wandb-sync", () => {
  async function offlineRun(out: string): Promise<WandbLogger> {
    const figure = join(out, "assembly_graph.png");
    writeFileSync(figure, png(2, 2));
    const logger = await WandbLogger.start(options(out, { entity: "lab" }));
    for (let step = 0; step < 3; step++) logger.log(step, { "loss/total": 3 - step });
    logger.logImages(2, [{ key: "assembly_graph", path: figure }]);
    await logger.finish(0);
    return logger;
  }

  it("uploads an offline run directory to W&B", async () => {
    const out = tempDir();
    const logger = await offlineRun(out);
    const { base, requests } = await recordingServer();
    vi.stubEnv("WANDB_API_KEY", API_KEY);
    const log = vi.spyOn(console, "log").mockImplementation(() => {});

    expect(await syncMain([logger.runDir!, "--base-url", base, "--builtin"])).toBe(0);
    const got = received(requests);
    expect(got.upserts).toHaveLength(1);
    expect(got.upserts[0]).toMatchObject({ name: logger.runId, project: "snn-test", entity: "lab" });
    expect(JSON.parse(got.upserts[0].config as string)).toMatchObject({ simulation: { value: CONFIG.simulation } });
    expect(got.lines).toEqual([0, 1, 2]);
    // Lines go up verbatim, original timestamps included.
    expect(got.rows).toEqual(runFiles(logger.runDir!).history());
    expect(got.summaries.at(-1)).toMatchObject({ _step: 2 });
    expect(got.complete).toEqual([0]);
    const image = got.rows[2].assembly_graph as { path: string };
    expect(got.uploaded.get(image.path)).toEqual(png(2, 2));
    expect([...got.uploaded.keys()]).toEqual(expect.arrayContaining(["config.json", "wandb-metadata.json"]));
    expect(String(log.mock.calls[0][0])).toContain(`/lab/snn-test/runs/${logger.runId}`);
  });

  it("finds the offline runs under an output directory", async () => {
    const out = tempDir();
    const logger = await offlineRun(out);
    const { base, requests } = await recordingServer();
    vi.stubEnv("WANDB_API_KEY", API_KEY);
    vi.stubEnv("WANDB_BASE_URL", base);
    vi.spyOn(console, "log").mockImplementation(() => {});
    expect(await syncMain([out, "--builtin"])).toBe(0);
    expect(received(requests).upserts.map((u) => u.name)).toEqual([logger.runId]);
  });

  it("exits 1 when W&B cannot be reached or does not answer in time", async () => {
    const out = tempDir();
    const logger = await offlineRun(out);
    vi.stubEnv("WANDB_API_KEY", API_KEY);
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await syncMain([logger.runDir!, "--base-url", "http://127.0.0.1:1", "--builtin"])).toBe(1);
    expect(String(error.mock.calls[0][0])).toContain(logger.runDir!);

    const t0 = Date.now();
    const baseUrl = await silentServer();
    expect(await syncMain([logger.runDir!, "--base-url", baseUrl, "--timeout", "0.3", "--builtin"])).toBe(1);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(String(error.mock.calls[1][0])).toMatch(/timeout|abort/i);
  });

  it("exits 2 with a clear message for a missing directory, a non-run directory and a missing API key", async () => {
    const out = tempDir();
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    vi.stubEnv("WANDB_API_KEY", API_KEY);
    expect(await syncMain([join(out, "nope"), "--builtin"])).toBe(2);
    expect(String(error.mock.calls.at(-1)?.[0])).toMatch(/nope does not exist/);
    expect(await syncMain([out, "--builtin"])).toBe(2);
    expect(String(error.mock.calls.at(-1)?.[0])).toMatch(/not an snn-train offline W&B run/);
    expect(await syncMain(["--builtin"])).toBe(2);

    const logger = await offlineRun(out);
    vi.stubEnv("WANDB_API_KEY", undefined);
    expect(await syncMain([logger.runDir!, "--builtin"])).toBe(2);
    expect(String(error.mock.calls.at(-1)?.[0])).toMatch(/set WANDB_API_KEY/);
  });

  it("hands the runs it finds to the official wandb CLI where there is one, and says its outcome", async () => {
    const out = tempDir();
    const logger = await offlineRun(out);
    const calls = join(out, "calls.txt");
    const cli = join(out, "fake-wandb");
    // A stand-in for the wandb CLI: answers --version, records `sync ...` and fails when told to.
    writeFileSync(cli, `#!/bin/sh
[ "$1" = --version ] && exit 0
echo "$@" >> ${calls}
exit \${FAIL:-0}
`, { mode: 0o755 });
    vi.spyOn(console, "log").mockImplementation(() => {});
    expect(await syncMain([out, "--project", "other", "--wandb-cli", cli])).toBe(0);
    expect(readFileSync(calls, "utf8").trim()).toBe(`sync --project other ${logger.runDir}`);
    vi.stubEnv("FAIL", "3");
    expect(await syncMain([logger.runDir!, "--wandb-cli", cli])).toBe(1);
    // Without it (no such program), the built-in upload runs: here it stops at the missing key.
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await syncMain([logger.runDir!, "--wandb-cli", join(out, "no-such-wandb")])).toBe(2);
  });
});
