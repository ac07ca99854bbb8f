/**
 * Results pinned bit for bit: a quickstart run's learned state hashes to the values below. Refactoring (moving code,
 * changing layouts) must keep them; a change that alters results on purpose updates them and says why in its commit.
 * Pinned at the commit that added the training options (detached reset, λ = 15, cosine schedule, burn-in).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { coord, ensureBuilt, finalWeights, ROOT, tempDir } from "./helpers/runs.js";

beforeAll(() => ensureBuilt());

/** First 16 hex digits of the sha256 of each part's float32 bytes (finalWeights). */
const PINNED = {
  rec: "9ed6f1ac12b92a40",
  ff: "1833a418cd76699b",
  m: "77857568145ca321",
  v: "233c80bcf94db891",
  // Stream states in the slot-major StreamState layout (was 66f5d4e2bd99c888 when finalWeights returned them
  // element-major: same values).
  streams: "25fe26d329c10dc9",
};

describe("pinned results", () => {
  it("parameters/quickstart.toml, 100 epochs (50 burn-in, 10 updates), 2 workers: the same weights, moments and streams", async () => {
    const dir = join(tempDir(), "pinned");
    const r = await coord([join(ROOT, "parameters/quickstart.toml"), "--workers", "2", "--epochs", "100", "--no-figures", "--output", dir]);
    expect(r.code, r.output).toBe(0);
    const w = finalWeights(dir);
    const hashes = Object.fromEntries(Object.entries(w).map(([k, b]) => [k, createHash("sha256").update(b).digest("hex").slice(0, 16)]));
    expect(hashes).toEqual(PINNED);
  });
});
