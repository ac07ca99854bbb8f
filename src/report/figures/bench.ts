/** Micro benchmark: one figure set at the default network size (data generation not timed). */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { renderFigureSet } from "./render.js";
import { syntheticFigureData } from "./synthetic.js";

export async function benchFigureSet(): Promise<{ seconds: number }> {
  const data = syntheticFigureData({ neurons: 5000, inputs: 1500, steps: 100, assemblies: 20, seed: 1 });
  const dir = await mkdtemp(path.join(tmpdir(), "snn-figures-bench-"));
  try {
    const start = process.hrtime.bigint();
    await renderFigureSet(data, dir);
    return { seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
