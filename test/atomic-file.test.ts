import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSafetensorsFile, writeFileAtomic, writeSafetensorsFile } from "../src/platform/atomic-file.js";
import { encodeSafetensors, SafetensorsError } from "../src/platform/safetensors.js";
import { payload } from "./fixtures/atomic-writer.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const fixture = join(root, "test/fixtures/atomic-writer.mjs");
const sources = ["src/platform/atomic-file.ts", "src/platform/safetensors.ts"];
const TEMP_NAME = /^\.(.+)\.tmp-\d+-[0-9a-f]{12}$/;

const work = mkdtempSync(join(tmpdir(), "atomic-file-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function tempFilesIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => TEMP_NAME.test(name));
}

describe("writeFileAtomic", () => {
  it("creates and replaces files without leaving temp files behind", () => {
    const path = join(work, "plain.txt");
    writeFileAtomic(path, "first");
    writeFileAtomic(path, Buffer.from("second, longer"));
    writeFileAtomic(path, new Uint8Array([0x6f, 0x6b]));
    expect(readFileSync(path, "utf8")).toBe("ok");
    expect(tempFilesIn(work)).toEqual([]);
  });

  it("removes its temp file and rethrows when the rename fails", () => {
    const dir = join(work, "rename-fails");
    const path = join(dir, "target");
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, "occupant"), "x"); // a non-empty directory cannot be replaced by a file
    expect(() => writeFileAtomic(path, "data")).toThrow(/EISDIR|ENOTEMPTY|EEXIST|EPERM/);
    expect(readdirSync(dir)).toEqual(["target"]);
  });

  it("fails cleanly when the directory does not exist", () => {
    expect(() => writeFileAtomic(join(work, "missing-dir", "f"), "data")).toThrow(/ENOENT/);
  });
});

describe("safetensors files", () => {
  it("round-trips through writeSafetensorsFile / readSafetensorsFile", () => {
    const path = join(work, "small.safetensors");
    writeSafetensorsFile(path, { w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } }, { epoch: "3" });
    const { tensors, metadata } = readSafetensorsFile(path);
    expect(tensors.w!.data).toEqual(new Float32Array([1, 2]));
    expect(metadata.epoch).toBe("3");
  });

  it("names the file in decode errors", () => {
    const path = join(work, "cut.safetensors");
    writeFileSync(path, encodeSafetensors({ w: { dtype: "F64", shape: [100], data: new Float64Array(100) } }).subarray(0, 500));
    expect(() => readSafetensorsFile(path)).toThrow(SafetensorsError);
    expect(() => readSafetensorsFile(path)).toThrow(`${path}: file is truncated`);
  });
});

/**
 * The child runs the compiled module. Uses dist/ when it is at least as new as the sources; otherwise
 * builds the project, and if the project as a whole does not compile (other modules mid-edit), builds
 * just the two modules under test into a temp directory.
 */
function compiledModule(): string {
  const distModule = join(root, "dist/platform/atomic-file.js");
  const fresh = (): boolean =>
    sources.every((src) => {
      const built = join(root, src.replace(/^src/, "dist").replace(/\.ts$/, ".js"));
      return existsSync(built) && statSync(built).mtimeMs >= statSync(join(root, src)).mtimeMs;
    });
  if (fresh()) return distModule;
  if (spawnSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: root }).status === 0 && fresh()) return distModule;

  const outDir = join(work, "build");
  const own = spawnSync(
    "npx",
    ["tsc", "--outDir", outDir, "--rootDir", "src/platform", "--target", "ES2022", "--module", "NodeNext",
      "--moduleResolution", "NodeNext", "--strict", "--skipLibCheck", "--types", "node", ...sources],
    { cwd: root, encoding: "utf8" },
  );
  if (own.status !== 0) throw new Error(`could not compile ${sources.join(", ")}:\n${own.stdout}${own.stderr}`);
  // Outside the project there is no package.json saying the emitted .js files are ES modules.
  writeFileSync(join(outDir, "package.json"), '{"type":"module"}\n');
  return join(outDir, "atomic-file.js");
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve();
    });
    child.once("exit", (code, signal) => reject(new Error(`writer exited early (${code ?? signal}): ${stderr}`)));
  });
}

describe("crash safety", () => {
  const ELEMENTS = 5_000_000; // 20 MB of F32 per payload
  const ROUNDS = 15;
  let modulePath = "";
  const expected: Record<string, Buffer> = {};

  beforeAll(() => {
    modulePath = compiledModule();
    for (const tag of ["A", "B"]) {
      const { tensors, metadata } = payload(tag, ELEMENTS);
      expected[tag] = encodeSafetensors(tensors, metadata);
    }
  }, 120_000);

  it("a writer SIGKILLed at random moments never leaves a torn file", async () => {
    const dir = join(work, "crash");
    mkdirSync(dir);
    const target = join(dir, "checkpoint_latest.safetensors");
    const seen = new Set<string>();

    for (let round = 0; round < ROUNDS; round++) {
      // Alternating the first payload guarantees both A and B are observed at least once.
      const child = spawn(process.execPath, [fixture, target, String(ELEMENTS), round % 2 ? "B" : "A"], {
        env: { ...process.env, ATOMIC_FILE_MODULE: modulePath },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const exited = once(child, "exit");
      await waitForReady(child);
      // Spread over the first half second of rewriting, with jitter so no two rounds share a delay.
      const delay = (round * 500) / ROUNDS + Math.random() * 30;
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill("SIGKILL");
      await exited;

      const bytes = readFileSync(target);
      const { metadata } = readSafetensorsFile(target);
      const tag = metadata.tag!;
      expect(["A", "B"], `round ${round}`).toContain(tag);
      expect(bytes.equals(expected[tag]!), `round ${round}: file differs from payload ${tag}`).toBe(true);
      seen.add(tag);
    }
    expect([...seen].sort()).toEqual(["A", "B"]);

    // Temp files from interrupted writes stay behind (nothing can clean up after SIGKILL). They live
    // under other names, so readers never see them; the assertions above already ran with them present.
    const leftovers = tempFilesIn(dir);
    expect(readdirSync(dir).sort()).toEqual([...leftovers, "checkpoint_latest.safetensors"].sort());
    expect(leftovers.every((name) => TEMP_NAME.exec(name)![1] === "checkpoint_latest.safetensors")).toBe(true);
    // Most kills land mid-write, since the child spends nearly all its time writing; at least one must
    // have, or this test did not exercise what it claims to.
    expect(leftovers.length).toBeGreaterThan(0);
  }, 60_000);
});
