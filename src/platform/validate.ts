/**
 * The one validator of what comes from outside: the parameters' TOML tables (model/config.ts) and the coordinator ↔
 * worker messages (distributed/protocol.ts). A Decoder turns an unknown value into a typed one or throws, naming the
 * path of what is wrong, with the error class its caller chose (ConfigError, ProtocolError), so both report alike.
 * A record's decoder is built from a Schema typed against the record: a field it leaves out, or decodes to the
 * wrong type, is a compile error, so a field added to a record is added to its wire format in the one place.
 */

export type ErrorClass = new (message: string) => Error;

/** Where a value sits (the path errors name) and which error class reports a problem with it. */
export class At {
  constructor(
    readonly path: string,
    private readonly Err: ErrorClass,
  ) {}

  key(k: string): At {
    return new At(this.path ? `${this.path}.${k}` : k, this.Err);
  }

  index(i: number): At {
    return new At(`${this.path}[${i}]`, this.Err);
  }

  fail(what: string): never {
    throw new this.Err(`${this.path}: ${what}`);
  }
}

/**
 * Reads one value. `sofar` is the part of the enclosing record decoded before this field, for sizes that depend on
 * earlier fields (see Length); outside a record it is absent.
 */
export type Decoder<T, P = unknown> = (v: unknown, at: At, sofar?: P) => T;

/** An expected element count: fixed, or taken from the fields of the enclosing record decoded before this one. */
export type Length<P> = number | ((sofar: P) => number);

type Entries = Record<string, unknown>;

/** A value of the wrong kind, or none where one is required. */
function mismatch(at: At, expected: string, v: unknown): never {
  return at.fail(v === undefined ? `missing (${expected})` : `${expected}, got ${show(v)}`);
}

export function isMap(v: unknown): v is Entries {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Date);
}

/** A map (a TOML table, a msgpack map); `what` is its name in the caller's vocabulary. */
function map(what: string): Decoder<Entries> {
  return (v: unknown, at: At) => (isMap(v) ? v : mismatch(at, `expected ${what}`, v));
}

/** How many characters of a value an error message shows: peers' values are logged, and a value may be huge. */
const SHOWN = 60;

/** The value as an error message shows it: JSON-like, NaN and infinities by name, at most SHOWN characters. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = render(v, SHOWN);
  return s.length > SHOWN ? `${s.slice(0, SHOWN - 3)}...` : s;
}

/** Renders at most about `budget` characters, whatever the size of the value. */
function render(v: unknown, budget: number): string {
  if (typeof v === "string") return `"${v.slice(0, budget)}"`;
  if (typeof v === "number") return String(v);
  if (ArrayBuffer.isView(v)) return `${v.byteLength} bytes`;
  if (!Array.isArray(v) && !isMap(v)) return JSON.stringify(v) ?? String(v);
  const parts: string[] = [];
  let used = 2;
  for (const [k, x] of Array.isArray(v) ? v.entries() : Object.entries(v)) {
    if (used > budget) break;
    const part = (Array.isArray(v) ? "" : `${JSON.stringify(k)}:`) + render(x, budget - used);
    parts.push(part);
    used += part.length + 1;
  }
  return Array.isArray(v) ? `[${parts.join(",")}]` : `{${parts.join(",")}}`;
}

function resolveLength<P>(length: Length<P>, sofar: P | undefined): number {
  // A length function is only given inside a record, which always passes the fields decoded so far.
  return typeof length === "function" ? length(sofar as P) : length;
}

/** An element count; exported for sizes a field's own Length cannot reach (a field of another record). */
export function checkLength(at: At, n: number, expected: number): void {
  if (n !== expected) at.fail(`expected ${expected} elements, got ${n}`);
}

export interface NumberRange {
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  int?: boolean;
}

/** A finite number within `range`. */
export function number(range: NumberRange = {}): Decoder<number> {
  const { min, max, exclusiveMin, int } = range;
  return (v: unknown, at: At) => {
    if (typeof v !== "number" || !Number.isFinite(v)) return mismatch(at, "expected a finite number", v);
    if (int && !Number.isInteger(v)) at.fail(`expected an integer, got ${v}`);
    if (min !== undefined && (exclusiveMin ? v <= min : v < min)) at.fail(`must be ${exclusiveMin ? ">" : "≥"} ${min}, got ${v}`);
    if (max !== undefined && v > max) at.fail(`must be ≤ ${max}, got ${v}`);
    return v;
  };
}

/** Any number, NaN and ±Infinity included (a loss or a statistic, where they are legitimate values). */
export const real: Decoder<number> = (v: unknown, at: At) => (typeof v === "number" ? v : mismatch(at, "expected a number", v));

export const bool: Decoder<boolean> = (v: unknown, at: At) => (typeof v === "boolean" ? v : mismatch(at, "expected true or false", v));

/** A string of at most `maxLength` characters. */
export function string(maxLength = Infinity): Decoder<string> {
  return (v: unknown, at: At) => {
    if (typeof v !== "string") return mismatch(at, "expected a string", v);
    if (v.length > maxLength) at.fail(`longer than ${maxLength} characters (${v.length})`);
    return v;
  };
}

/** One of a few strings. */
export function oneOf<C extends string>(choices: readonly C[]): Decoder<C> {
  const text = string();
  return (v: unknown, at: At) => {
    const s = text(v, at);
    if (!(choices as readonly string[]).includes(s)) at.fail(`must be one of ${choices.join(", ")}, got "${s}"`);
    return s as C;
  };
}

/** An array of items; `of` names them in the message when it is no array. */
export function list<T, P = unknown>(item: Decoder<T>, opts: { length?: Length<P>; of?: string } = {}): Decoder<T[], P> {
  const expected = opts.of ? `expected an array of ${opts.of}` : "expected an array";
  return (v: unknown, at: At, sofar?: P) => {
    if (!Array.isArray(v)) return mismatch(at, expected, v);
    if (opts.length !== undefined) checkLength(at, v.length, resolveLength(opts.length, sofar));
    return v.map((x, i) => item(x, at.index(i)));
  };
}

/** null when absent or null. */
export function nullable<T, P = unknown>(d: Decoder<T, P>): Decoder<T | null, P> {
  return (v, at, sofar) => (v === undefined || v === null ? null : d(v, at, sofar));
}

/** undefined when absent or null: the record leaves the field out. */
export function optional<T, P = unknown>(d: Decoder<T, P>): Decoder<T | undefined, P> {
  return (v, at, sofar) => (v === undefined || v === null ? undefined : d(v, at, sofar));
}

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

interface TypedArrayClass<A> {
  new (length: number): A;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): A;
  readonly BYTES_PER_ELEMENT: number;
}

/** A typed array sent as its raw little-endian bytes (msgpack bin), rebuilt with the dtype the schema names. */
function typedArray<A extends ArrayBufferView>(Ctor: TypedArrayClass<A>, dtype: string) {
  return <P = unknown>(length?: Length<P>): Decoder<A, P> =>
    (v: unknown, at: At, sofar?: P) => {
      if (!(v instanceof Uint8Array)) return mismatch(at, `expected ${dtype} bytes`, v);
      const size = Ctor.BYTES_PER_ELEMENT;
      if (v.byteLength % size !== 0) at.fail(`byte length ${v.byteLength} is not a multiple of ${size}`);
      const n = v.byteLength / size;
      if (length !== undefined) checkLength(at, n, resolveLength(length, sofar));
      // A view where the bytes are aligned for the dtype (the frame is this message's own buffer, never reused: no copy
      // of megabytes of gradients per result); a copy into a fresh buffer where they sit at an unaligned offset.
      if (v.byteOffset % size === 0) return new Ctor(v.buffer, v.byteOffset, n);
      const out = new Ctor(n);
      bytesOf(out).set(v);
      return out;
    };
}

export const f32 = typedArray(Float32Array, "f32");
export const f64 = typedArray(Float64Array, "f64");
export const i32 = typedArray(Int32Array, "i32");
export const u8 = typedArray(Uint8Array, "u8");

/** Keys of T that may be absent. */
type OptionalKey<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];

/**
 * How to decode each field of a record T, typed against T. Fields decode in the schema's order, and each decoder
 * sees the fields decoded before it (`sofar`); an optional field may decode to undefined and is then left out.
 */
export type Schema<T> = { [K in keyof T]-?: Decoder<K extends OptionalKey<T> ? T[K] | undefined : T[K], T> };

/**
 * A record from a map by its schema, then `check` for what relates its fields. Keys the schema does not name are
 * ignored: a worker's result carries whatever its engine's record holds.
 */
export function record<T>(schema: Schema<T>, check?: (r: T, at: At) => void): Decoder<T> {
  const asMap = map("a map");
  return (v: unknown, at: At) => {
    const m = asMap(v, at);
    const out: Entries = {};
    for (const [k, d] of Object.entries(schema) as [string, Decoder<unknown, T>][]) {
      const x = d(m[k], at.key(k), out as T);
      // Absent rather than undefined: a decoded record then equals, and hashes as, the one sent.
      if (x !== undefined) out[k] = x;
    }
    check?.(out as T, at);
    return out as T;
  };
}

/**
 * One table of a parameters file, handing out its keys with their defaults; `done()` rejects every key nobody
 * asked for, naming the key it probably meant.
 */
export class Table {
  private readonly used = new Set<string>();

  constructor(
    readonly at: At,
    private readonly entries: Entries,
  ) {}

  has(k: string): boolean {
    return this.entries[k] !== undefined;
  }

  /** The value of `k`, `def` when it is absent; without a default an absent key is an error. */
  read<T>(k: string, d: Decoder<T>, def?: T): T {
    this.used.add(k);
    const v = this.entries[k];
    if (v === undefined && def !== undefined) return def;
    // A required key the table lacks: a typo of it among the table's keys is the likelier problem, and said first.
    const typo = v === undefined ? Object.keys(this.entries).find((e) => !this.used.has(e) && similar(e, k)) : undefined;
    if (typo !== undefined) this.at.key(typo).fail(`unknown key; did you mean ${k}?`);
    return d(v, this.at.key(k));
  }

  table(k: string, optional = false): Table {
    return new Table(this.at.key(k), this.read(k, map("a table"), optional ? {} : undefined));
  }

  done(hint?: string): void {
    for (const k of Object.keys(this.entries)) {
      if (this.used.has(k)) continue;
      const near = [...this.used].find((u) => this.entries[u] === undefined && similar(u, k));
      this.at.key(k).fail(`unknown key${near ? `; did you mean ${near}?` : hint ? ` (${hint})` : ""}`);
    }
  }
}

/** Edit distance of two short strings (keys), for "did you mean" suggestions. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** Probably a typo of one another: one a prefix of the other, or at most two edits apart (for keys of 4+ letters). */
function similar(a: string, b: string): boolean {
  if (Math.min(a.length, b.length) >= 3 && (a.startsWith(b) || b.startsWith(a))) return true;
  return Math.min(a.length, b.length) >= 4 && editDistance(a, b) <= 2;
}
