/**
 * The offline run's run-<id>.wandb, W&B's transaction log: the block framing against hand-computed bytes and an
 * independent Python reader, the records against the SDK's own generated protobuf classes (from the wandb wheel, where
 * one is on disk) and protoc, and the logger's records: history, summary with the best loss, console, system
 * metrics, artifacts, resume.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import protobuf from "protobufjs";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { BLOCK_SIZE, encodeLogHeader, RecordLogError, RecordLogFramer, scanRecordLog } from "../src/platform/record-log.js";
import { WandbLogger, type WandbStartOptions } from "../src/report/wandb.js";
import { decodeWandbRecord, encodeWandbRecord, WANDB_RECORD_SCHEMA, type WandbRecord } from "../src/report/wandb-records.js";
import { readTransactionLog } from "../src/report/wandb-transaction-log.js";
import { WorkerStats } from "../src/report/coordinator-reports.js";
import { ROOT } from "./helpers/runs.js";

const dirs: string[] = [];
afterEach(() => vi.restoreAllMocks());
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "snn-wandb-log-"));
  dirs.push(dir);
  return dir;
}

const READER = join(ROOT, "test", "helpers", "wandb_log_reader.py");
const hasPython = spawnSync("python3", ["--version"]).status === 0;
const hasProtoc = spawnSync("protoc", ["--version"]).status === 0;

// The SDK's generated protobuf modules, from the wandb wheel and the protobuf wheel where they are on disk (this
// workplace's package mirror): a reader of our records that shares nothing with protobufjs or our schema.
const WHEELS = "/opt/pypi/files";
const wheel = (prefix: string) => (existsSync(WHEELS) ? readdirSync(WHEELS).find((f) => f.startsWith(prefix) && f.endsWith(".whl")) : undefined);
const wandbWheel = wheel("wandb-");
const protobufWheel = wheel("protobuf-6.");
let sdkDir: string | undefined;
function sdk(): string | undefined {
  if (!hasPython || wandbWheel === undefined || protobufWheel === undefined) return undefined;
  if (sdkDir === undefined) {
    sdkDir = tempDir();
    const script = [
      "import sys, zipfile",
      "out, wandb, pb = sys.argv[1:]",
      "z = zipfile.ZipFile(wandb)",
      "[z.extract(n, out) for n in z.namelist() if n.startswith('wandb/proto/')]",
      "zipfile.ZipFile(pb).extractall(out)",
      // Only wandb/proto is needed; the package's own __init__ would import the whole SDK.
      "open(out + '/wandb/__init__.py', 'w').close()",
    ].join("\n");
    execFileSync("python3", ["-c", script, sdkDir, join(WHEELS, wandbWheel), join(WHEELS, protobufWheel)]);
  }
  return sdkDir;
}
if (!hasPython) console.warn("python3 not found: the independent reader checks of the W&B log are skipped");
if (!hasProtoc) console.warn("protoc not found: the protoc checks of the W&B records are skipped");
if (wandbWheel === undefined) console.warn(`no wandb wheel in ${WHEELS}: the checks against the SDK's own protobuf classes are skipped`);

interface PythonRead {
  chunks: number[];
  records: string[];
  sdk: Record<string, unknown>[] | null;
}
function pythonRead(path: string, withSdk = false): PythonRead {
  const args = [READER, path, ...(withSdk && sdk() ? [sdk()!] : [])];
  return JSON.parse(execFileSync("python3", args, { encoding: "utf8", maxBuffer: 64 << 20 })) as PythonRead;
}

describe("record log framing", () => {
  it("frames a small record as one FULL chunk, as hand-computed", () => {
    const framer = new RecordLogFramer();
    // crc32 of [type 1, "a", "b", "c"] = 0x539d20a9 (zlib.crc32(b"abc", zlib.crc32(b"\x01"))), length 3, type 1.
    expect([...framer.frame(Buffer.from("abc"))]).toEqual([0xa9, 0x20, 0x9d, 0x53, 3, 0, 1, 0x61, 0x62, 0x63]);
    expect(framer.offset).toBe(7 + 10);
    expect([...encodeLogHeader()]).toEqual([0x3a, 0x57, 0x26, 0x42, 0xe1, 0xbe, 0]);
  });

  it("splits records across blocks, pads short block tails, and reads back what it wrote", () => {
    const framer = new RecordLogFramer();
    const fill = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
    // First record leaves 3 bytes of block 0 (too few for a chunk header: zero padding), the second spans three
    // blocks (FIRST, MIDDLE, LAST), the third is small.
    const records = [fill(BLOCK_SIZE - 7 - 7 - 3, 1), fill(2 * BLOCK_SIZE + 100, 2), fill(5, 3)];
    const bytes = Buffer.concat([encodeLogHeader(), ...records.map((r) => framer.frame(r))]);
    expect(bytes.subarray(BLOCK_SIZE - 3, BLOCK_SIZE)).toEqual(Buffer.alloc(3));
    expect(bytes.readUInt8(BLOCK_SIZE + 6)).toBe(2); // FIRST at the start of block 1
    const scanned = scanRecordLog(bytes);
    expect(scanned.records.map((r) => Buffer.from(r))).toEqual(records);
    expect(scanned.truncated).toBe(false);
    expect(scanned.validLength).toBe(bytes.length);

    if (hasPython) {
      const dir = tempDir();
      writeFileSync(join(dir, "log.wandb"), bytes);
      const read = pythonRead(join(dir, "log.wandb"));
      expect(read.chunks).toEqual([1, 2, 3, 4, 1]);
      expect(read.records.map((r) => Buffer.from(r, "base64"))).toEqual(records);
    }
  });

  it("reads the records before a cut, and names the offset of damage", () => {
    const framer = new RecordLogFramer();
    const whole = Buffer.concat([encodeLogHeader(), framer.frame(Buffer.from("first")), framer.frame(Buffer.alloc(40000, 7))]);
    const cut = scanRecordLog(whole.subarray(0, whole.length - 10));
    expect(cut.records.map((r) => Buffer.from(r).toString())).toEqual(["first"]);
    expect(cut).toMatchObject({ truncated: true, validLength: 7 + 7 + 5 });

    const damaged = Buffer.from(whole);
    damaged[7 + 7 + 2] ^= 1;
    expect(() => scanRecordLog(damaged)).toThrow(new RecordLogError("checksum mismatch in the chunk at byte 7"));
    expect(() => scanRecordLog(Buffer.from("PK\x03\x04 not a log"))).toThrow(/not a :W&B log version 0/);
    expect(() => scanRecordLog(Buffer.alloc(3))).toThrow(/shorter than the log header/);
  });
});

describe("W&B records", () => {
  it("have the SDK's field numbers (wandb_internal.proto)", () => {
    const root = protobuf.parse(WANDB_RECORD_SCHEMA, { keepCase: true }).root;
    // From the SDK's wandb_internal.proto: message → field → number, for every field we write.
    const sdkNumbers: Record<string, Record<string, number>> = {
      Record: { num: 1, history: 2, summary: 3, config: 5, files: 6, stats: 7, artifact: 8, metric: 12, output_raw: 13, run: 17, exit: 18, uuid: 19, final: 20, header: 21, environment: 26 },
      RunRecord: { run_id: 1, entity: 2, project: 3, config: 4, summary: 5, run_group: 6, job_type: 7, display_name: 8, notes: 9, tags: 10, host: 13, starting_step: 14, start_time: 17, resumed: 18, runtime: 20, git: 21 },
      EnvironmentRecord: { os: 1, python: 2, started_at: 3, args: 5, program: 6, code_path: 7, git: 9, root: 11, host: 12, username: 13, executable: 14, cpu_count: 16, cpu_count_logical: 17, writer_id: 199 },
      HistoryRecord: { item: 1, step: 2 },
      HistoryItem: { key: 1, nested_key: 2, value_json: 16 },
      SummaryItem: { key: 1, nested_key: 2, value_json: 16 },
      ConfigItem: { key: 1, nested_key: 2, value_json: 16 },
      StatsRecord: { stats_type: 1, timestamp: 2, item: 3 },
      StatsItem: { key: 1, value_json: 16 },
      OutputRawRecord: { output_type: 1, timestamp: 2, line: 3 },
      FilesItem: { path: 1, policy: 2, type: 3 },
      MetricRecord: { name: 1, step_metric: 4, options: 6, summary: 7, goal: 8 },
      ArtifactRecord: { run_id: 1, project: 2, entity: 3, type: 4, name: 5, digest: 6, description: 7, metadata: 8, user_created: 9, aliases: 11, manifest: 12, finalize: 14, client_id: 15, sequence_client_id: 16 },
      ArtifactManifest: { version: 1, storage_policy: 2, storage_policy_config: 3, contents: 4 },
      ArtifactManifestEntry: { path: 1, digest: 2, size: 4, local_path: 6 },
      RunExitRecord: { exit_code: 1, runtime: 2 },
      Timestamp: { seconds: 1, nanos: 2 },
    };
    for (const [message, fields] of Object.entries(sdkNumbers)) {
      const type = root.lookupType(`wandb_internal.${message}`);
      expect(Object.fromEntries(Object.entries(fields).map(([f]) => [f, type.fields[f]?.id])), message).toEqual(fields);
    }
  });

  it("round-trip through protobufjs, and protoc decodes them with the same schema", () => {
    const record: WandbRecord = {
      num: 7,
      history: { item: [{ key: "loss/total", value_json: "1.5" }], step: { num: 300 } },
    };
    const bytes = encodeWandbRecord(record);
    expect(decodeWandbRecord(bytes)).toEqual(record);
    if (!hasProtoc) return;
    const dir = tempDir();
    writeFileSync(join(dir, "wandb_internal.proto"), WANDB_RECORD_SCHEMA);
    const text = execFileSync("protoc", [`--proto_path=${dir}`, "--decode=wandb_internal.Record", "wandb_internal.proto"], { input: bytes, encoding: "utf8" });
    expect(text.replace(/\s+/g, " ").trim()).toBe('num: 7 history { item { key: "loss/total" value_json: "1.5" } step { num: 300 } }');
    // And the raw wire format, without any schema: field 2 (history) holding field 1 (item) and field 2 (step).
    const raw = execFileSync("protoc", ["--decode_raw"], { input: bytes, encoding: "utf8" });
    expect(raw.replace(/\s+/g, " ").trim()).toBe('1: 7 2 { 1 { 1: "loss/total" 16: "1.5" } 2 { 1: 300 } }');
  });
});

const CONFIG = { simulation: { dt: 1, epochs: 500 }, overrides: { "simulation.epochs": 500 } };

function options(outputDir: string, extra: Partial<WandbStartOptions> = {}): WandbStartOptions {
  return {
    outputDir,
    project: "snn-test",
    name: "quickstart",
    mode: "offline",
    config: CONFIG,
    tags: ["fit", "quickstart"],
    group: "sweep-1",
    notes: "a test run",
    jobType: "train",
    minimise: "loss/total",
    statsIntervalMs: 0,
    ...extra,
  };
}

function logOf(logger: WandbLogger): string {
  return join(logger.runDir!, `run-${logger.runId}.wandb`);
}

const byType = (records: WandbRecord[], type: keyof WandbRecord) => records.filter((r) => r[type] !== undefined);
// value_json as the Python SDK reads it: JSON, with NaN and ±Infinity.
const parseValue = (v: string): unknown => (v === "NaN" ? Number.NaN : v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : JSON.parse(v));
const items = (list: { key: string; value_json: string }[]) => Object.fromEntries(list.map((i) => [i.key, parseValue(i.value_json)]));

describe("WandbLogger's transaction log", () => {
  it("holds the run, history, summary with the best loss, console, system metrics and checkpoint artifacts", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const out = tempDir();
    const checkpoint = join(out, "ck.bin");
    // "abc" × 10 as ck.bin: the SDK (wandb 0.30, a real offline run's log_artifact) gave this file the digest below
    // and its one-file manifest the artifact digest 19839cce9b903c473bc66040b9ae6e73.
    writeFileSync(checkpoint, "abc".repeat(10));
    const workers = new WorkerStats();
    workers.update("host-1", { rssBytes: 200 * 2 ** 20, cpuSeconds: 10 }, 0);
    const logger = await WandbLogger.start(options(out, { captureConsole: true, statsIntervalMs: 20, extraStats: () => workers.values() }));
    workers.update("host-1", { rssBytes: 210 * 2 ** 20, cpuSeconds: 11.5 }, 2000);
    process.stdout.write("Epoch 1/3\n");
    logger.log(0, { "loss/total": 3 });
    logger.log(1, { "loss/total": 1, "firing_rate/E/mean": Number.NaN });
    logger.log(2, { "loss/total": 2 });
    await new Promise((resolve) => setTimeout(resolve, 80));
    await logger.finish(0, [{ name: `checkpoint-${logger.runId}`, type: "model", aliases: ["latest", "epoch-2"], paths: [checkpoint] }]);
    process.stdout.write("after finish\n");

    const { records, truncated } = readTransactionLog(logOf(logger));
    expect(truncated).toBe(false);
    expect(records.map((r) => r.num)).toEqual(records.map((_, i) => i + 1));
    expect(Object.keys(records[0])).toContain("header");
    const run = records[1].run!;
    expect(run).toMatchObject({ run_id: logger.runId, project: "snn-test", display_name: "quickstart", run_group: "sweep-1", job_type: "train", notes: "a test run", tags: ["fit", "quickstart"] });
    expect(items(run.config!.update)).toEqual(CONFIG);
    expect(records[2].environment?.args ?? []).toEqual(process.argv.slice(2));
    expect(byType(records, "metric")[0].metric).toMatchObject({ name: "loss/total", goal: "GOAL_MINIMIZE" });

    const history = byType(records, "history").map((r) => r.history!);
    expect(history.map((h) => h.step.num ?? 0)).toEqual([0, 1, 2]);
    expect(history.map((h) => items(h.item)["loss/total"])).toEqual([3, 1, 2]);
    // NaN as the Python SDK writes it, so W&B keeps the series numeric.
    expect(history[1].item.find((i) => i.key === "firing_rate/E/mean")?.value_json).toBe("NaN");
    const summary = items(byType(records, "summary").at(-1)!.summary!.update);
    expect(summary).toMatchObject({ "loss/total": 2, "best/loss/total": 1, "best/step": 1, _step: 2 });

    const output = byType(records, "output_raw").map((r) => r.output_raw!);
    expect(output.map((o) => o.line)).toContain("Epoch 1/3\n");
    expect(output.find((o) => o.line === "Epoch 1/3\n")?.output_type).toBe("STDOUT");
    expect(output.some((o) => o.line.includes("after finish"))).toBe(false);

    const stats = byType(records, "stats").map((r) => items(r.stats!.item));
    expect(stats.length).toBeGreaterThan(0);
    expect(stats[0]["proc.memory.rssMB"]).toBeGreaterThan(10);
    expect(stats[0]["worker.host-1.memory.rssMB"]).toBe(210);
    // 1.5 s of CPU over 2 s of wall time.
    expect(stats[0]["worker.host-1.cpu"]).toBeCloseTo(75, 10);

    const artifact = byType(records, "artifact")[0].artifact!;
    expect(artifact).toMatchObject({ type: "model", name: `checkpoint-${logger.runId}`, aliases: ["latest", "epoch-2"], digest: "19839cce9b903c473bc66040b9ae6e73" });
    expect(artifact.manifest.contents).toEqual([{ path: "ck.bin", digest: "G2ZVi+KyzYmOvDODYjo2dw==", size: 30, local_path: checkpoint }]);
    expect(records.at(-1)?.exit).toMatchObject({ exit_code: 0 });

    // An independent reader agrees on every byte, and the SDK's own classes decode the fields we meant.
    if (!hasPython) return;
    const read = pythonRead(logOf(logger), true);
    expect(read.records.map((r) => Buffer.from(r, "base64"))).toEqual(scanRecordLog(readFileSync(logOf(logger))).records.map((r) => Buffer.from(r)));
    if (wandbWheel === undefined || protobufWheel === undefined) return;
    if (read.sdk === null) throw new Error("the SDK's classes were not loaded");
    const sdkRun = read.sdk[1].run as Record<string, unknown>;
    expect(sdkRun).toMatchObject({ run_id: logger.runId, run_group: "sweep-1", job_type: "train", notes: "a test run", tags: ["fit", "quickstart"], display_name: "quickstart" });
    const sdkHistory = read.sdk.filter((r) => r.history).map((r) => r.history as { item: { key: string; value_json: string }[]; step?: { num?: string } });
    expect(sdkHistory.map((h) => Number(h.step?.num ?? 0))).toEqual([0, 1, 2]);
    expect(sdkHistory.map((h) => items(h.item)["loss/total"])).toEqual([3, 1, 2]);
    expect(read.sdk.find((r) => r.metric)?.metric).toMatchObject({ name: "loss/total", goal: "GOAL_MINIMIZE", options: { defined: true } });
    expect(read.sdk.find((r) => r.output_raw)?.output_raw).toMatchObject({ line: expect.any(String) });
    expect((read.sdk.find((r) => r.stats)?.stats as { item: { key: string }[] }).item.map((i) => i.key)).toContain("proc.memory.rssMB");
    const sdkArtifact = read.sdk.find((r) => r.artifact)?.artifact as Record<string, unknown>;
    expect(sdkArtifact).toMatchObject({ digest: "19839cce9b903c473bc66040b9ae6e73", aliases: ["latest", "epoch-2"], finalize: true });
    expect(sdkArtifact.manifest).toMatchObject({ version: 1, storage_policy: "wandb-storage-policy-v1", contents: [{ path: "ck.bin", digest: "G2ZVi+KyzYmOvDODYjo2dw==", size: "30" }] });
    expect(read.sdk.find((r) => r.environment)?.environment).toMatchObject({ executable: process.execPath, cpu_count: expect.any(Number) });
  });

  it("a resumed run rewrites the log once: the old history before the resumed step, then the new", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const out = tempDir();
    const first = await WandbLogger.start(options(out));
    for (let step = 0; step < 5; step++) first.log(step, { "loss/total": 10 - step });
    await first.finish(1);
    const second = await WandbLogger.start(options(out, { runId: first.runId, resumeStep: 3 }));
    for (let step = 3; step < 6; step++) second.log(step, { "loss/total": 100 + step });
    await second.finish(0);

    const { records } = readTransactionLog(logOf(second));
    expect(records.map((r) => Object.keys(r).find((k) => k !== "num")).filter((t) => t !== "history" && t !== "summary")).toEqual(["header", "run", "environment", "metric", "exit"]);
    expect(byType(records, "history").map((r) => items(r.history!.item)["loss/total"])).toEqual([10, 9, 8, 103, 104, 105]);
    expect(items(byType(records, "summary").at(-1)!.summary!.update)).toMatchObject({ "best/loss/total": 8, "best/step": 2 });
    expect(records.at(-1)?.exit).toMatchObject({ exit_code: 0 });
    if (hasPython) expect(pythonRead(logOf(second)).records).toHaveLength(records.length);
  });

  it("keeps a log it cannot read aside and starts a new one", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const out = tempDir();
    const first = await WandbLogger.start(options(out));
    first.log(0, { "loss/total": 1 });
    await first.finish(1);
    const damaged = readFileSync(logOf(first));
    damaged[20] ^= 0xff;
    writeFileSync(logOf(first), damaged);
    const second = await WandbLogger.start(options(out, { runId: first.runId, resumeStep: 1 }));
    second.log(1, { "loss/total": 0.5 });
    await second.finish(0);
    expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/could not be read \(checksum mismatch in the chunk at byte 7\); kept as .*\.corrupt-\d+, starting a new log/));
    expect(readdirSync(second.runDir!).filter((f) => f.includes(".corrupt-"))).toHaveLength(1);
    expect(byType(readTransactionLog(logOf(second)).records, "history")).toHaveLength(1);
  });
});
