/**
 * The configuration reference (src/model/config-reference.ts, docs/configuration.md) and `snn-coord --print-config`:
 * the reference names exactly the keys the schema reads, each described; the document is what the generator writes
 * now; and the printed parameters are a file that parses back to the same configuration.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Config, KeyRead, parametersToml, parseConfig } from "../src/model/config.js";
import { CONFIG_REFERENCE, configurationMarkdown } from "../src/model/config-reference.js";
import { loadConfig } from "../src/io/parameters-file.js";
import { coord, ensureBuilt, ROOT, tempDir } from "./helpers/runs.js";

const SHIPPED = readdirSync(join(ROOT, "parameters"))
  .filter((f) => f.endsWith(".toml"))
  .map((f) => readFileSync(join(ROOT, "parameters", f), "utf8"));
const QUICK_TEXT = readFileSync(join(ROOT, "parameters/quickstart.toml"), "utf8");

/** Replaces exactly one occurrence of `from` (fails loudly if quickstart.toml changed under the test). */
function edit(text: string, from: string, to: string): string {
  if (text.split(from).length !== 2) throw new Error(`test setup: "${from}" must occur exactly once`);
  return text.replace(from, to);
}

/** quickstart.toml with every optional key the shipped files leave out set, and the schedule and student switched. */
const FULL_TEXT = [
  [`lr_schedule = "cosine"`, `lr_step_updates = 20\nlr_step_factor = 0.7\nbetas = [0.8, 0.99]\neps = 1e-7\npatience = 10\nmax_skipped_updates = 3\nvan_rossum_tau_rise = 5.0\nvan_rossum_tau_decay = 15.0\nloss_weight.van_rossum = 2.0\nlr_schedule = "step"`],
  ["lr_min = 1e-3", "# lr_min = 1e-3"],
  ["threshold_ratio = { excitatory = 0.25, inhibitory = 0.45 }", 'threshold_ratio = 0.3\nfile = "targets.csv"'],
  ["tau_ref = 8.0     # ms", "# tau_ref left at its default"],
].reduce((t, [from, to]) => edit(t, from, to), QUICK_TEXT) +
  'entity = "lab"\nname = "full"\n\n[student]\ninit = "teacher"\nteacher_file = "teacher.safetensors"\nperturbation = "lognormal"\nperturbation_sigma = 0.1\nscale = 0.9\n';

function keysRead(text: string): KeyRead[] {
  const reads: KeyRead[] = [];
  parseConfig(text, "parameters", "/base", (k) => reads.push(k));
  return reads;
}

describe("configuration reference", () => {
  const reads = [...SHIPPED, FULL_TEXT].flatMap(keysRead);
  const paths = new Set(reads.map((k) => k.path));

  it("has an entry for every key and table the schema reads", () => {
    expect([...paths].filter((p) => !(p in CONFIG_REFERENCE))).toEqual([]);
  });

  it("has no entry for a key the schema no longer reads", () => {
    expect(Object.keys(CONFIG_REFERENCE).filter((p) => !paths.has(p))).toEqual([]);
  });

  it("knows what every key accepts (each is read with a described decoder)", () => {
    expect(reads.filter((k) => k.spec === undefined).map((k) => k.path)).toEqual([]);
  });

  it("every parameters file makes the schema read the same keys, optional ones included", () => {
    const set = (text: string) => [...new Set(keysRead(text).map((k) => k.path))].sort();
    for (const text of SHIPPED) expect(set(text)).toEqual(set(FULL_TEXT));
  });

  it("docs/configuration.md is what `npm run docs:config` writes now, whichever file it reads", () => {
    const doc = readFileSync(join(ROOT, "docs/configuration.md"), "utf8");
    for (const text of [...SHIPPED, FULL_TEXT]) expect(configurationMarkdown(text)).toBe(doc);
  });

  it("takes types, defaults and ranges from the schema", () => {
    const doc = configurationMarkdown(QUICK_TEXT);
    expect(doc).toContain("| `tau_mem` | number | required | > 0 | ms |");
    expect(doc).toContain('| `lr_schedule` | string | "constant" | "constant", "cosine", "step" |');
    expect(doc).toContain("| `betas` | array of numbers | [0.9, 0.999] | [0, 0.999999999] |");
    // Bounds and defaults that depend on other keys are named, not given as one file's values.
    expect(doc).toContain("| `trial` | integer | 0 | [0, simulation.batch_size − 1] |");
    expect(doc).toContain("| `interval` | integer | simulation.accumulation_interval |");
  });
});

describe("parametersToml (snn-coord --print-config)", () => {
  it("prints a parameters file that parses to the same configuration, every default written out", () => {
    for (const text of [...SHIPPED, FULL_TEXT]) {
      const config = parseConfig(text, "parameters", "/base");
      const printed = parametersToml(config);
      expect(parseConfig(printed, "printed", "/elsewhere")).toEqual(config);
      expect(printed).toMatch(/^eps = /m);
    }
  });
});

describe("snn-coord --print-config", () => {
  let dir: string;
  beforeAll(() => {
    ensureBuilt();
    dir = tempDir("snn-print-config-");
  });

  it("prints the effective parameters with --epochs applied, exit 0, and touches no run directory", async () => {
    const output = join(dir, "run");
    const runs = existsSync(join(ROOT, "runs")) ? readdirSync(join(ROOT, "runs")) : null;
    const r = await coord(["--print-config", join(ROOT, "parameters/quickstart.toml"), "--epochs", "100", "--output", output]);
    expect(r.code).toBe(0);
    const { config } = loadConfig(join(ROOT, "parameters/quickstart.toml"));
    const expected: Config = { ...config, simulation: { ...config.simulation, epochs: 100 } };
    expect(parseConfig(r.output)).toEqual(expected);
    expect(existsSync(output)).toBe(false);
    expect(existsSync(join(ROOT, "runs")) ? readdirSync(join(ROOT, "runs")) : null).toEqual(runs);
  });

  it("bad parameters or a bad --epochs: one ConfigError line and exit 2", async () => {
    mkdirSync(dir, { recursive: true });
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, edit(QUICK_TEXT, "seed = 42", "seed = = 42"));
    const malformed = await coord(["--print-config", bad]);
    expect(malformed.code).toBe(2);
    expect(malformed.output.trim()).toMatch(new RegExp(`^snn-coord: ${bad}: malformed TOML: [^\\n]*$`));
    const epochs = await coord(["--print-config", join(ROOT, "parameters/quickstart.toml"), "--epochs", "102"]);
    expect(epochs.code).toBe(2);
    expect(epochs.output.trim()).toBe("snn-coord: --epochs: must be a multiple of simulation.accumulation_interval (5), got 102");
  });
});
