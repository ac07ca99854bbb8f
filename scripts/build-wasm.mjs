// Compiles the WebAssembly text kernels (src/**/*.wat) to binaries next to their sources and into dist/, so that
// both the compiled program and the tests (which run the TypeScript sources) find them.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import wabt from "wabt";

const root = new URL("..", import.meta.url).pathname;
const w = await wabt();
const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
for (const file of walk(join(root, "src")).filter((f) => f.endsWith(".wat"))) {
  const features = { simd: true, threads: true };
  const module = w.parseWat(file, readFileSync(file, "utf8"), features);
  module.validate(features);
  const { buffer } = module.toBinary({});
  module.destroy();
  const rel = relative(join(root, "src"), file).replace(/\.wat$/, ".wasm");
  for (const out of [join(root, "src", rel), join(root, "dist", rel)]) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, buffer);
  }
}
