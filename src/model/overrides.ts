/**
 * Command-line overrides of the parameters (`snn-coord --set section.key=VALUE`, `snn-study --grid KEY=V1,V2,...`):
 * a dotted key into the parameters' TOML document and a value parsed as TOML, applied to the parsed document before
 * the schema validates it (parseConfig's `edit`), so that every check of the schema applies to an overridden value
 * and its error says where the value came from.
 */
import { parse as parseToml } from "smol-toml";
import { Config, ConfigError, parseConfig } from "./config.js";

export interface Override {
  /** Dotted path into the parameters: hyperparameters.learning_rate, recurrent.physiology.excitatory.tau_mem. */
  key: string;
  value: unknown;
  /** Where it came from, as errors name it: "--set", "--grid", "metadata.json's overrides". */
  source: string;
  /** The value as given on the command line, where it was (errors show it as typed). */
  text?: string;
}

const KEY = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/**
 * A value as TOML reads it (`0.1`, `"log"`, `[0.1, 0.2]`, `true`, `{ excitatory = 0.5 }`); a bare word that is no TOML
 * value (`log`) is that string.
 */
export function parseValue(text: string): unknown {
  if (/[\r\n]/.test(text)) return text;
  try {
    const doc = parseToml(`v = ${text}`);
    if (Object.keys(doc).length === 1) return doc.v;
  } catch {
    // not a TOML value: the text itself
  }
  return text;
}

/** A value the way a parameters file writes it (messages, grid point names, --print-config's users). */
export function formatValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return Number.isNaN(v) ? "nan" : v === Infinity ? "inf" : v === -Infinity ? "-inf" : String(v);
  if (Array.isArray(v)) return `[${v.map(formatValue).join(", ")}]`;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "object" && v !== null)
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${KEY.test(k) ? k : JSON.stringify(k)} = ${formatValue(x)}`)
      .join(", ")} }`;
  return String(v);
}

/** `KEY=VALUE` → an override; `flag` names the option in errors (--set, --grid). */
function splitSetting(arg: string, flag: string): { key: string; text: string } {
  const eq = arg.indexOf("=");
  const key = eq < 0 ? arg : arg.slice(0, eq).trim();
  if (eq < 0 || !KEY.test(key))
    throw new ConfigError(`${flag} ${arg}: expected KEY=VALUE, KEY a dotted key of the parameters (e.g. ${flag} hyperparameters.learning_rate=0.01)`);
  return { key, text: arg.slice(eq + 1).trim() };
}

/** The --set options, in order; a key given twice is refused. */
export function parseSettings(args: readonly string[], flag = "--set"): Override[] {
  const out: Override[] = [];
  for (const arg of args) {
    const { key, text } = splitSetting(arg, flag);
    if (out.some((o) => o.key === key)) throw new ConfigError(`${flag} ${key}: given more than once`);
    out.push({ key, value: parseValue(text), source: flag, text });
  }
  return out;
}

/** Splits a list of values at the commas that are not inside brackets, braces or quotes: `0.1,[1, 2],"a,b"`. */
export function splitValues(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out;
}

/** `--grid KEY=V1,V2,...` → the key and its values (each parsed like --set). */
export function parseGridOption(arg: string): { key: string; values: unknown[]; texts: string[] } {
  const { key, text } = splitSetting(arg, "--grid");
  const texts = splitValues(text);
  if (texts.some((p) => p === "")) throw new ConfigError(`--grid ${arg}: expected KEY=V1,V2,... with no empty value`);
  return { key, values: texts.map(parseValue), texts };
}

/** dotted key → value, as metadata.json's `overrides` records them. */
export function overridesRecord(overrides: readonly Override[]): Record<string, unknown> {
  return Object.fromEntries(overrides.map((o) => [o.key, o.value]));
}

const describe = (o: Override) => `${o.source} ${o.key}=${o.text ?? formatValue(o.value)}`;

/** Sets each key in the parsed TOML document (tables along the way are created; a value in the way is an error). */
export function applyOverrides(doc: Record<string, unknown>, overrides: readonly Override[]): void {
  for (const o of overrides) {
    const parts = o.key.split(".");
    let table = doc;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = table[parts[i]];
      if (next === undefined) table[parts[i]] = {};
      else if (typeof next !== "object" || next === null || Array.isArray(next) || next instanceof Date)
        throw new ConfigError(`${parts.slice(0, i + 1).join(".")}: ${formatValue(next)} is not a table, so ${o.key} cannot be set in it`);
      table = table[parts[i]] as Record<string, unknown>;
    }
    table[parts[parts.length - 1]] = o.value;
  }
}

/**
 * The error with the override it concerns named: the one whose key is the error's path (or inside it, or contains
 * it), else one whose key the message mentions.
 */
export function attributed(e: ConfigError, overrides: readonly Override[]): ConfigError {
  const path = e.message.split(": ")[0];
  const related = (k: string) => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`) || k.startsWith(`${path}.`);
  const o = overrides.find((x) => related(x.key)) ?? overrides.find((x) => e.message.includes(x.key));
  return o ? new ConfigError(`${e.message} (from ${describe(o)})`) : e;
}

/** parseConfig with the overrides applied to the document before validation; errors name the override concerned. */
export function parseConfigWith(text: string, source: string, baseDir: string, overrides: readonly Override[]): Config {
  if (overrides.length === 0) return parseConfig(text, source, baseDir);
  try {
    return parseConfig(text, source, baseDir, undefined, (doc) => applyOverrides(doc, overrides));
  } catch (e) {
    throw e instanceof ConfigError ? attributed(e, overrides) : e;
  }
}
