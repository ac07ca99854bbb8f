/**
 * The official `wandb sync` (the wandb 0.30 SDK, installed from wheels on disk into a private virtual environment)
 * uploads the offline run of a real `snn-coord --wandb` run, unchanged, to a stand-in W&B server that records every
 * request: the run with its group, notes, commit and effective config; every history row; the summary with the best
 * loss; the console; system metrics; the figures; the checkpoints as artifact versions. Skipped, saying why, where
 * the wheels are not on disk.
 */
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coord, ensureBuilt, ROOT, smallParams, tempDir } from "./helpers/runs.js";

const WHEELS = "/opt/pypi/files";
const venv = join(tempDir("snn-wandb-sdk-"), "venv");
const made = existsSync(join(WHEELS, "wandb-0.30.0-py3-none-manylinux_2_28_x86_64.whl"))
  ? spawnSync("bash", [join(ROOT, "test/helpers/wandb-sdk-venv.sh"), WHEELS, venv], { encoding: "utf8" })
  : undefined;
const sdkReady = made?.status === 0;
if (!sdkReady) {
  console.warn(
    made === undefined
      ? `no wandb 0.30.0 wheel in ${WHEELS}: the test with the official wandb sync is skipped`
      : `the wandb SDK environment could not be made (${made.stderr.trim().split("\n").at(-1)}): the test with the official wandb sync is skipped`,
  );
}

interface Request {
  method: string;
  path: string;
  op?: string;
  variables?: Record<string, unknown>;
  body: string;
  bytes: number;
}

/** A W&B server that answers what `wandb sync` asks with the least that lets it go on, and records each request. */
function standInServer(requests: Request[]) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const bytes = Buffer.concat(chunks).length;
      const body = Buffer.concat(chunks).toString("utf8");
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const json = (value: unknown) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      const path = req.url ?? "";
      if (path === "/graphql") {
        const q = JSON.parse(body) as { operationName?: string; variables?: Record<string, unknown> };
        const v = q.variables ?? {};
        requests.push({ method: req.method!, path, op: q.operationName, variables: v, body, bytes });
        return json({ data: answer(q.operationName ?? "", v, base) });
      }
      requests.push({ method: req.method!, path, body, bytes });
      if (req.method === "GET") {
        res.writeHead(404).end();
        return;
      }
      json({ exitcode: null, limits: {} });
    });
  });
  return server;
}

function answer(op: string, v: Record<string, unknown>, base: string): unknown {
  const artifact = { id: "QXJ0aWZhY3Q6MQ==", state: "PENDING", artifactSequence: { id: "s", latestArtifact: null } };
  const file = { id: "f", directUrl: `${base}/blob/manifest`, uploadUrl: `${base}/upload/manifest`, uploadHeaders: [] };
  switch (op) {
    case "ServerFeaturesQuery":
      return { serverInfo: { features: [] } };
    case "UpsertBucket":
      return {
        upsertBucket: {
          bucket: { id: "b", name: v.name, displayName: v.displayName, config: "{}", historyLineCount: 0, sweepName: null, project: { id: "p", name: v.project, entity: { id: "e", name: v.entity ?? "me" } } },
          inserted: true,
        },
      };
    case "CreateArtifact":
      return { createArtifact: { artifact } };
    case "CreateArtifactManifest":
      return { createArtifactManifest: { artifactManifest: { id: "m", file } } };
    case "CreateArtifactFiles": {
      const files = ((v.input as { artifactFiles?: { name: string }[] })?.artifactFiles ?? []).map((f, i) => ({
        node: { id: `f${i}`, name: f.name, displayName: f.name, uploadUrl: `${base}/upload/${f.name}`, uploadHeaders: [], storagePath: f.name, artifact: { id: artifact.id } },
      }));
      return { createArtifactFiles: { files: { edges: files } } };
    }
    case "CreateRunFiles": {
      const files = (v.files as string[]) ?? [];
      return { createRunFiles: { runID: "r", uploadHeaders: [], files: files.map((name) => ({ name, uploadUrl: `${base}/upload/${name}` })) } };
    }
    default:
      return {};
  }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A history or summary line: JSON with W&B's NaN and ±Infinity, read here as strings. */
const parseLine = (line: string) => JSON.parse(line.replace(/:(NaN|-?Infinity)(?=[,}])/g, ':"$1"')) as Record<string, unknown>;

/** The contents that file_stream requests sent for one file, in order. */
function streamed(requests: Request[], file: string): string[] {
  return requests
    .filter((r) => r.path.endsWith("/file_stream"))
    .flatMap((r) => (JSON.parse(r.body) as { files?: Record<string, { content: string[] }> }).files?.[file]?.content ?? []);
}

beforeAll(() => ensureBuilt());

describe.skipIf(!sdkReady)("the official wandb sync", () => {
  const requests: Request[] = [];
  const server = standInServer(requests);
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("uploads a real run's offline directory unchanged: run, history, summary, console, system metrics, figures, checkpoints", async () => {
    const params = smallParams(tempDir(), { epochs: 30, accumulation: 3, plotting: true });
    const dir = join(tempDir(), "out");
    const r = await coord([params, "--workers", "2", "--output", dir, "--wandb", "--epochs", "6"]);
    expect(r.code, r.output).toBe(0);
    const runDir = join(dir, "wandb", readdirSync(join(dir, "wandb"))[0]);
    const runId = runDir.split("-").at(-1)!;
    // wandb sync marks what it synced: give it a copy, so that the run directory stays as the run left it.
    const copy = join(tempDir(), "offline-run");
    cpSync(runDir, copy, { recursive: true });

    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const home = tempDir();
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      WANDB_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      WANDB_API_KEY: "k".repeat(40),
      WANDB_CONFIG_DIR: join(home, "config"),
      WANDB_CACHE_DIR: join(home, "cache"),
      WANDB_DATA_DIR: join(home, "data"),
    };
    const sync = await run(join(venv, "bin", "wandb"), ["sync", copy], env);
    expect(sync.output).toMatch(new RegExp(`Finished syncing .*${runId}`));

    const upserts = requests.filter((q) => q.op === "UpsertBucket").map((q) => q.variables!);
    expect(upserts[0]).toMatchObject({ name: runId, project: "connectome-snns-fitting-activity", displayName: "out", commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
    const config = JSON.parse(upserts[0].config as string) as Record<string, { value: unknown }>;
    // The effective configuration, with the command line's override.
    expect(config.simulation.value).toMatchObject({ epochs: 6 });
    expect(config.overrides.value).toMatchObject({ "simulation.epochs": 6 });

    const csv = readFileSync(join(dir, "metrics.csv"), "utf8").trim().split("\n").length - 1;
    const history = streamed(requests, "wandb-history.jsonl").map(parseLine);
    expect(history.map((h) => h._step)).toEqual([3, 6]);
    expect(history).toHaveLength(csv);
    expect(history[1]["plots/spike_raster"]).toMatchObject({ _type: "image-file", format: "png" });
    const summary = parseLine(streamed(requests, "wandb-summary.json").at(-1)!);
    expect(summary["best/loss/total"]).toBe(Math.min(...history.map((h) => h["loss/total"] as number)));
    expect(streamed(requests, "output.log").join("\n")).toContain("Saved plots to");
    const events = streamed(requests, "wandb-events.jsonl").map(parseLine);
    expect(events.length).toBeGreaterThan(0);
    expect(events[0]["system.proc.memory.rssMB"]).toBeGreaterThan(10);
    // The workers' memory, from their heartbeats.
    expect(Object.keys(events.at(-1)!).filter((k) => /^system\.worker\..+\.memory\.rssMB$/.test(k))).toHaveLength(2);

    // The figures were uploaded as files of the run.
    const uploaded = requests.filter((q) => q.op === "CreateRunFiles").flatMap((q) => q.variables!.files as string[]);
    expect(uploaded).toEqual(expect.arrayContaining([expect.stringMatching(/^media\/images\/plots_spike_raster_6_/), "output.log", "wandb-summary.json"]));
    // The checkpoints, as versions of one model artifact.
    const artifacts = requests.filter((q) => q.op === "CreateArtifact").map((q) => q.variables!.input as { artifactCollectionName: string; artifactTypeName: string; aliases: { alias: string }[] });
    expect(artifacts.map((a) => [a.artifactCollectionName, a.artifactTypeName])).toEqual([
      [`checkpoint-${runId}`, "model"],
      [`checkpoint-${runId}`, "model"],
    ]);
    expect(artifacts.map((a) => a.aliases.map((x) => x.alias).sort())).toEqual([["epoch-6", "latest"], ["best"]]);
    // ... whose files and manifests were uploaded, byte for byte, and committed.
    for (const kind of ["latest", "best"]) {
      const put = requests.find((q) => q.method === "PUT" && q.path === `/upload/checkpoint_${kind}.safetensors`);
      expect(put?.bytes).toBe(readFileSync(join(dir, "checkpoints", `checkpoint_${kind}.safetensors`)).length);
    }
    expect(requests.filter((q) => q.op === "CommitArtifact")).toHaveLength(2);
  }, 180_000);
});
