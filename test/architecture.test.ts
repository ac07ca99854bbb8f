/**
 * The source layout (src/*\/README.md): folders by concept in one order, platform → model → engine → io →
 * distributed → training → report → cli → bench; a module imports only from its own folder or from folders before
 * it, and no modules import each other in a circle.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/runs.js";

const SRC = join(ROOT, "src");
const ORDER = ["platform", "model", "engine", "io", "distributed", "training", "report", "cli", "bench"];

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? modules(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

/** Relative imports of a module (static, dynamic and type-only), as paths of .ts files under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)\.js"/g)].map((m) => resolve(dirname(file), `${m[1]}.ts`));
}

const folder = (file: string) => relative(SRC, file).split("/")[0];

describe("source layout", () => {
  const files = modules(SRC);

  it("has only the concept folders, each with a README saying what it owns and what it may import", () => {
    expect(readdirSync(SRC).sort()).toEqual([...ORDER].sort());
    for (const f of ORDER) expect(readFileSync(join(SRC, f, "README.md"), "utf8")).toMatch(/May import:/);
  });

  it("imports run downhill only", () => {
    const upward: string[] = [];
    for (const file of files) {
      for (const target of importsOf(file)) {
        expect(existsSync(target), `${relative(SRC, file)} imports a missing ${relative(SRC, target)}`).toBe(true);
        if (ORDER.indexOf(folder(target)) > ORDER.indexOf(folder(file))) upward.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("no modules import each other in a circle", () => {
    const graph = new Map(files.map((f) => [f, importsOf(f)]));
    const state = new Map<string, "open" | "done">();
    const circles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === "done") return;
      if (state.get(f) === "open") {
        circles.push([...path.slice(path.indexOf(f)), f].map((x) => relative(SRC, x)).join(" → "));
        return;
      }
      state.set(f, "open");
      for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, "done");
    };
    for (const f of files) visit(f, []);
    expect(circles).toEqual([]);
  });
});
