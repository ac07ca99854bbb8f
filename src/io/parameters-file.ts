/**
 * Reads a parameters file and parses it (model/config.ts), with the file's directory as the base of its paths and
 * any command-line overrides (model/overrides.ts) applied before validation.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Config, ConfigError } from "../model/config.js";
import { Override, parseConfigWith } from "../model/overrides.js";

export function loadConfig(file: string, overrides: readonly Override[] = []): { config: Config; text: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: cannot read parameters file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return { config: parseConfigWith(text, file, dirname(resolve(file)), overrides), text };
}
