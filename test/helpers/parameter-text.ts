/** Editing shipped parameter files as text in tests: exact one-place replacements and the small quickstart wiring. */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
export const QUICK_TEXT = readFileSync(join(ROOT, "parameters/quickstart.toml"), "utf8");
export const DEFAULT_TEXT = readFileSync(join(ROOT, "parameters/fitting-activity.toml"), "utf8");

/** `text` with its one occurrence of `from` replaced; a setup error if it occurs zero or several times. */
export function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const n = typeof from === "string" ? text.split(from).length - 1 : (text.match(new RegExp(from, "gm")) ?? []).length;
  if (n !== 1) throw new Error(`test setup: "${from}" must occur exactly once`);
  return text.replace(from, to);
}

/** Quickstart wiring at 120 neurons in 4 assemblies of 30 (24 E, 6 I each), 40 inputs. */
export function smallConnectomeText(seed = 42): string {
  let t = replaceOnce(QUICK_TEXT, "num_neurons = 500", "num_neurons = 120");
  t = replaceOnce(t, "num_assemblies = 5", "num_assemblies = 4");
  t = replaceOnce(t, "num_neurons = 150", "num_neurons = 40");
  return replaceOnce(t, "seed = 42", `seed = ${seed}`);
}
