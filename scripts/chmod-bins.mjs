// Makes the package's bins (dist/*, written by tsc without the executable bit) executable, so that they run however
// they are reached: npx, a stale npx cache entry that links to this checkout, or a path on PATH in an image.
import { chmodSync, readFileSync } from "node:fs";

const root = new URL("..", import.meta.url);
const { bin } = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
for (const file of Object.values(bin)) chmodSync(new URL(file, root), 0o755);
