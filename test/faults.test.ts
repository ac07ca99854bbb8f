/**
 * Faults users hit, with real coordinator and worker processes: a full disk before and during a run (a tmpfs of a
 * few MB, mounted here as root; skipped with a notice elsewhere), and stop signals to the whole process group at
 * random moments. Each case asserts the exit code, metadata.json's status and message, that checkpoint_latest is
 * valid, and that resuming gives the same weights, moments, streams and metrics as an uninterrupted run.
 *
 * The other faults of the same kind are tested beside their code: impossible sizes and timing keys
 * (training-cli.test.ts, config.test.ts), the checksum-key flip and non-regular checkpoint files
 * (checkpoint-cli.test.ts, checkpoint.test.ts), --force with a foreign file and output paths (run-outputs.test.ts),
 * peers that flood or speak garbage (distributed.test.ts).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCheckpoint } from "../src/io/checkpoint.js";
import { coord, COORD, ensureBuilt, finalWeights, metricRows, smallParams, start, tempDir, waitFor } from "./helpers/runs.js";

const EPOCHS = 60;
let params: string;
let reference: { weights: ReturnType<typeof finalWeights>; rows: string[] };

function expectSameAsReference(dir: string): void {
  const w = finalWeights(dir);
  for (const k of ["rec", "ff", "m", "v", "streams"] as const) expect(w[k].equals(reference.weights[k]), k).toBe(true);
  expect(metricRows(dir)).toEqual(reference.rows);
}

function metadata(dir: string): { status: string; error?: string; note?: string } {
  return JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
}

/** No Node stack trace reached the user. */
function expectNoStackTrace(output: string): void {
  expect(output).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
}

beforeAll(async () => {
  ensureBuilt();
  params = smallParams(tempDir(), { epochs: EPOCHS, accumulation: 3, checkpoint: 6, plotting: true });
  const dir = join(tempDir(), "ref");
  const r = await coord([params, "--workers", "1", "--output", dir, "--no-figures"]);
  expect(r.code, r.output).toBe(0);
  reference = { weights: finalWeights(dir), rows: metricRows(dir) };
  expect(reference.rows.length).toBe(1 + EPOCHS / 3);
});

/** A tmpfs of `mb` MB, or null where this process may not mount one (not root, no mount namespace rights). */
function mountTmpfs(mb: number): string | null {
  const dir = tempDir("snn-tmpfs-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${mb}m`, "tmpfs", dir], { stdio: "ignore" });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

const disk = mountTmpfs(8);
if (!disk) console.warn("faults.test.ts: SKIPPED the full-disk cases: cannot mount a tmpfs here (they need root)");

/** Fills the file system at `dir` to the last byte. */
function fill(dir: string): string {
  const filler = join(dir, "filler");
  try {
    execFileSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=64k"], { stdio: "ignore" });
  } catch {
    // dd ends with "No space left on device": that is the point.
  }
  return filler;
}

describe.skipIf(!disk)("a full disk", () => {
  afterAll(() => {
    if (disk) execFileSync("umount", [disk]);
  });

  it("before the run: one message naming parameters.toml, exit 2, nothing left that blocks the same command later", async () => {
    const out = join(disk!, "before");
    const filler = fill(disk!);
    const r = await coord([params, "--workers", "1", "--output", out, "--no-figures"]);
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/before\/parameters\.toml: cannot write: no space left on device \(ENOSPC\)/);
    expectNoStackTrace(r.output);
    expect(existsSync(out), "the run's directory is taken back").toBe(false);
    rmSync(filler);
    const again = await coord([params, "--workers", "1", "--output", out, "--no-figures"]);
    expect(again.code, again.output).toBe(0);
    expectSameAsReference(out);
    rmSync(out, { recursive: true });
  });

  it("during the run: exit 2 naming the file, status failed with the message, a valid checkpoint, exact resume", async () => {
    const out = join(disk!, "during");
    const c = start(COORD, [params, "--workers", "1", "--output", out, "--metrics-port", "0"]);
    await waitFor(() => /Epoch 15\//.test(c.output()), 60_000, "five updates");
    const filler = fill(disk!);
    const code = await c.exit;
    expect(code, c.output()).toBe(2);
    const last = c.output().trim().split("\n").pop()!;
    expect(last).toMatch(/^snn-coord: \/.*during\/(metrics\.csv|checkpoints\/checkpoint_\w+\.safetensors|figures\/.*): cannot (write|append to).*no space left on device \(ENOSPC\)$/);
    expectNoStackTrace(c.output());
    const meta = metadata(out);
    expect(meta.status).toBe("failed");
    expect(meta.error).toMatch(/ENOSPC/);
    expect(() => readCheckpoint(join(out, "checkpoints/checkpoint_latest.safetensors"), null, null)).not.toThrow();
    // No row cut short: every line of metrics.csv has the header's columns.
    const lines = readFileSync(join(out, "metrics.csv"), "utf8").trim().split("\n");
    for (const l of lines) expect(l.split(",").length).toBe(lines[0].split(",").length);
    rmSync(filler);
    const r = await coord([params, "--workers", "1", "--output", out, "--resume", "auto", "--no-figures"]);
    expect(r.code, r.output).toBe(0);
    expectSameAsReference(out);
  });
});

describe("stop signals to the whole process group at random moments", () => {
  // Ten moments spread over the run (start-up, waiting for workers, mid-update, mid-checkpoint, mid-figures); the
  // delays are printed so that a failure can be replayed.
  const delays = Array.from({ length: 10 }, (_, i) => Math.round(150 + i * 400 + Math.random() * 400));
  it.each(delays.map((d, i) => [i, d]))("signal %i after %i ms: exit 130 within 10 s, interrupted, exact resume", async (i, delay) => {
    const dir = join(tempDir(), `signal-${i}`);
    const signal = i % 2 === 0 ? "SIGINT" : "SIGTERM";
    // A process group of its own, as a shell gives a foreground job; figures on, so that some moments fall in them.
    const c = start(COORD, [params, "--workers", "2", "--output", dir, "--metrics-port", "0"], {}, { detached: true });
    await new Promise((r) => setTimeout(r, delay));
    const sent = Date.now();
    try {
      process.kill(-c.child.pid!, signal);
    } catch {
      // The run already ended: nothing to interrupt.
    }
    const code = await c.exit;
    const out = c.output();
    expect(Date.now() - sent).toBeLessThan(10_000);
    expectNoStackTrace(out);
    if (code === 0) {
      // The signal came after the last update.
      expect(metadata(dir).status).toBe("completed");
      expectSameAsReference(dir);
      return;
    }
    if (!existsSync(join(dir, "metadata.json"))) {
      // Before the run directory was made: nothing written, so the same command starts the run. While Node still
      // loads the program its default action ends the process by the signal (a shell shows 130 too).
      if (code === 130) expect(out).toMatch(/interrupted before the run started; nothing was written/);
      else expect(c.signal(), out).toBe(signal);
      expect(existsSync(dir)).toBe(false);
      mkdirSync(dir, { recursive: true });
      const r = await coord([params, "--workers", "2", "--output", dir, "--no-figures"]);
      expect(r.code, r.output).toBe(0);
      expectSameAsReference(dir);
      return;
    }
    expect(code, out).toBe(130);
    expect(metadata(dir).status).toBe("interrupted");
    expect(() => readCheckpoint(join(dir, "checkpoints/checkpoint_latest.safetensors"), null, null)).not.toThrow();
    const r = await coord([params, "--workers", "2", "--output", dir, "--resume", "auto", "--no-figures"]);
    expect(r.code, r.output).toBe(0);
    expectSameAsReference(dir);
  });
});
