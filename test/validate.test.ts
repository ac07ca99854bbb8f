/**
 * The one validator (src/platform/validate.ts) that config.ts and protocol.ts share: errors name the path and come
 * in the caller's error class, records decode by their schema (sizes from earlier fields, optional fields left out),
 * tables reject unknown keys with the key they probably meant, and shown values stay short.
 */
import { describe, expect, it } from "vitest";
import { At, f32, i32, list, number, optional, record, show, string, Table } from "../src/platform/validate.js";

class TestError extends Error {}

function failure(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a failure");
}

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe("decoders", () => {
  const at = new At("root", TestError);

  it("throw the caller's error class, naming the path", () => {
    const e = failure(() => list(number({ min: 0 }))([1, -2], at.key("xs")));
    expect(e).toBeInstanceOf(TestError);
    expect(e.message).toBe("root.xs[1]: must be ≥ 0, got -2");
    expect(failure(() => string(3)("abcd", at)).message).toBe("root: longer than 3 characters (4)");
    expect(failure(() => number()(undefined, at)).message).toBe("root: missing (expected a finite number)");
  });

  it("records decode fields in order, sizes from earlier fields, optional fields left out when absent", () => {
    const r = record<{ n: number; a: Int32Array; b?: Float32Array }>({ n: number({ int: true }), a: i32((s) => s.n), b: optional(f32()) });
    const back = r({ n: 2, a: bytes(Int32Array.from([7, 8])), extra: "ignored" }, at);
    expect(back).toStrictEqual({ n: 2, a: Int32Array.from([7, 8]) });
    expect(failure(() => r({ n: 3, a: bytes(Int32Array.from([7, 8])) }, at)).message).toBe("root.a: expected 3 elements, got 2");
  });

  it("show() names NaN and infinities and stays short whatever the value", () => {
    expect(show([1, NaN, -Infinity])).toBe("[1,NaN,-Infinity]");
    expect(show({ a: "b" })).toBe('{"a":"b"}');
    expect(show(new Float64Array(1000))).toBe("8000 bytes");
    expect(show(undefined)).toBe("nothing");
    expect(show(Array(1e6).fill({ k: "v".repeat(100) })).length).toBeLessThanOrEqual(60);
  });
});

describe("tables", () => {
  it("defaults, a missing key's typo said first, unknown keys with what they probably meant", () => {
    const t = () => new Table(new At("", TestError), { sim: { epochs: 5, seeed: 1 } }).table("sim");
    expect(t().read("dt", number(), 1)).toBe(1);
    expect(failure(() => t().read("seed", number())).message).toBe("sim.seeed: unknown key; did you mean seed?");
    const u = t();
    u.read("epochs", number());
    u.read("seed", number(), 0);
    expect(failure(() => u.done()).message).toBe("sim.seeed: unknown key; did you mean seed?");
  });
});
