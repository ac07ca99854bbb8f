/**
 * snn-report RUN_DIR (issue #18): a self-contained report.html with the run's curves and links to every figure set,
 * whose pages link back; a directory that is not a run is refused with one line and exit code 2.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { coord, ensureBuilt, ROOT, smallParams, tempDir } from "./helpers/runs.js";

const REPORT = join(ROOT, "dist/cli/snn-report.js");

const report = (...args: string[]) => spawnSync(process.execPath, [REPORT, ...args], { cwd: ROOT, encoding: "utf8" });

beforeAll(() => ensureBuilt());

describe("snn-report", () => {
  it("writes report.html with the run's curves and a link to every figure set, and the sets link back", async () => {
    const params = smallParams(tempDir(), { epochs: 6, accumulation: 3, plotting: true });
    const dir = join(tempDir(), "run");
    const r = await coord([params, "--workers", "1", "--output", dir]);
    expect(r.code, r.output).toBe(0);
    // The coordinator writes the report at the end of a run with figures; snn-report writes it again.
    expect(r.output).toContain(`Run report: ${join(dir, "report.html")}`);
    rmSync(join(dir, "report.html"));

    const out = report(dir);
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe(`wrote ${join(dir, "report.html")}`);
    const html = readFileSync(join(dir, "report.html"), "utf8");
    const sets = readdirSync(join(dir, "figures")).sort();
    expect(sets).toEqual(["epoch_0000", "epoch_0003", "epoch_0006"]);
    for (const s of sets) {
      expect(html).toContain(`href="figures/${s}/index.html"`);
      expect(readFileSync(join(dir, "figures", s, "index.html"), "utf8")).toContain('href="../../report.html"');
    }
    // Self-contained: the curves are inline SVG, nothing is fetched.
    expect(html.match(/<svg/g)?.length).toBeGreaterThanOrEqual(4);
    expect(html).not.toMatch(/<(img|script|link)\b/);
    expect(html).not.toMatch(/(src|href)="https?:/);
    for (const title of ["Loss terms", "Mean firing rate per cell type", "Optimizer"]) expect(html).toContain(title);
    // Target rates of the quickstart physiology, as dashed lines labelled in the rate panels.
    expect(html).toContain("target 0.5");
    expect(html).toContain("target 2");
  }, 120_000);

  it("refuses a directory that is not a run with one line and exit code 2", () => {
    const empty = tempDir();
    writeFileSync(join(empty, "notes.txt"), "not a run");
    for (const args of [[empty], [join(empty, "missing")], [join(empty, "notes.txt")], [], [empty, empty]]) {
      const out = report(...args);
      expect(out.status, args.join(" ")).toBe(2);
      expect(out.stdout).toBe("");
      expect(out.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
      expect(out.stderr).toMatch(/^snn-report: /);
    }
    expect(report(empty).stderr).toContain("is not a run directory");
    expect(existsSync(join(empty, "report.html"))).toBe(false);
  });

  it("prints its usage with --help", () => {
    const out = report("--help");
    expect(out.status).toBe(0);
    expect(out.stdout).toContain("snn-report RUN_DIR");
  });
});
