/** Reads a parameters file and parses it (model/config.ts), with the file's directory as the base of its paths. */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Config, ConfigError, parseConfig } from "../model/config.js";

export function loadConfig(file: string): { config: Config; text: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: cannot read parameters file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return { config: parseConfig(text, file, dirname(resolve(file))), text };
}
