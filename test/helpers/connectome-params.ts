/** Parameters of `smallParams` whose connectome is read from files (the connectome file tests). */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { ConfigError } from "../../src/model/config.js";
import { smallParams } from "./runs.js";

/**
 * smallParams with the connectome keys pointing at `files` (relative to the parameters file); an empty `neurons`
 * leaves recurrent.neurons_file out (a container holds the cell types). `extra` lines go into [recurrent].
 */
export function withFiles(dir: string, files: { rec: string; neurons: string; ff: string; inputs?: string }, extra = "", name = "files.toml"): string {
  let text = readFileSync(smallParams(dir), "utf8");
  const neurons = files.neurons ? `\nneurons_file = "${files.neurons}"` : "";
  text = text.replace(/^num_assemblies = \d+$/m, (m) => `${m}\nconnectome_file = "${files.rec}"${neurons}\n${extra}`);
  text = text.replace(/^firing_rate = .*$/m, (m) => `${m}\nconnectome_file = "${files.ff}"${files.inputs ? `\ninputs_file = "${files.inputs}"` : ""}`);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A typed array's bytes, for bit-for-bit comparisons. */
export const bytes = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Expects `load()` to throw one ConfigError that starts with `key "path": ` and matches `re`. */
export function expectFileError(load: () => unknown, re: RegExp, key: string, path: string): void {
  let error: unknown;
  try {
    load();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const message = (error as Error).message;
  expect(message.startsWith(`${key} "${path}": `), message).toBe(true);
  expect(message).toMatch(re);
}
