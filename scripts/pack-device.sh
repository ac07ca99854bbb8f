#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has no Node.js and no network, into two ignored folders
# at the repo root that a device run carries (carry [".device", ".gl"], 64 MiB in all with the working tree):
#   .device/node.xz             this machine's node binary (xz -9)
#   .device/node_modules.tar.xz the runtime node_modules (dependencies plus vitest and its deps for
#                               test/webgpu-engine.test.ts), pruned to linux-x64 prebuilds, no docs, maps or typings
#   .device/dist.tar.xz         the built dist/ (git-ignored, so it must travel)
#   .gl/*.deb                   Debian amd64 packages of the Vulkan/GL loaders (unpacked there with dpkg -x)
# Usage: bash scripts/pack-device.sh   (from anywhere; builds dist first unless SKIP_BUILD=1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUTDIR="$ROOT/.device"
GLDIR="$ROOT/.gl"
LIMIT_MIB=60
STAGE="$(mktemp -d /tmp/pack-device.XXXXXX)"
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$OUTDIR"

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  echo "== npm run build"
  npm run build >/dev/null
fi
[ -f dist/cli/snn-worker.js ] || { echo "pack-device: dist/ is missing; run npm run build" >&2; exit 1; }
if [ -n "$(find src -newer dist/cli/snn-worker.js -type f -print -quit)" ]; then
  echo "pack-device: warning: src/ has files newer than dist/ (SKIP_BUILD=1?); the packed dist may be stale" >&2
fi
[ -d node_modules/vitest ] || { echo "pack-device: node_modules (with devDependencies) is missing; run npm ci" >&2; exit 1; }

# (a) node
NODE_BIN="$(command -v node)"
NODE_BIN="$(readlink -f "$NODE_BIN")"
echo "== node.xz from $NODE_BIN ($(node -v)); xz -9 takes a few minutes"
if [ -f "$OUTDIR/node.xz" ] && [ -f "$OUTDIR/node.version" ] && [ "$(cat "$OUTDIR/node.version")" = "$(node -v) $(stat -c %s "$NODE_BIN")" ]; then
  echo "   (up to date, kept)"
else
  xz -9 -T2 -c "$NODE_BIN" >"$OUTDIR/node.xz.tmp"
  mv "$OUTDIR/node.xz.tmp" "$OUTDIR/node.xz"
  printf '%s %s\n' "$(node -v)" "$(stat -c %s "$NODE_BIN")" >"$OUTDIR/node.version"
fi

# (b) node_modules, pruned
echo "== node_modules (pruned copy in $STAGE)"
NM="$STAGE/node_modules"
cp -a node_modules "$NM"
# Build-time only, or not needed by dist/, the webgpu test or the bench.
rm -rf "$NM/typescript" "$NM/@types" "$NM/wabt" "$NM/.cache" "$NM/.package-lock.json"
rm -rf "$NM"/@tensorflow/tfjs-node* "$NM/.bin/tsc" "$NM/.bin/tsserver"
# webgpu (dawn.node): linux-x64 only; its build scripts are for publishing.
find "$NM/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
rm -rf "$NM/webgpu/build"
# zeromq: linux/x64 prebuilds only (cmake-ts/build/loader picks one by ABI and libc); no sources.
if [ -d "$NM/zeromq/build" ]; then
  find "$NM/zeromq/build" -mindepth 1 -maxdepth 1 -type d ! -name linux -exec rm -rf {} +
  find "$NM/zeromq/build/linux" -mindepth 1 -maxdepth 1 -type d ! -name x64 -exec rm -rf {} +
fi
rm -rf "$NM/zeromq/src" "$NM/zeromq/script"
# Other native prebuilds: keep only linux-x64 (glibc) variants of per-platform packages.
for scope in "$NM/@resvg" "$NM/@esbuild" "$NM/@rollup" "$NM/@msgpackr-extract"; do
  [ -d "$scope" ] || continue
  for d in "$scope"/*; do
    case "$(basename "$d")" in
      *linux-x64-gnu | linux-x64 | *linux-x64) ;;
      *darwin* | *win32* | *android* | *freebsd* | *openbsd* | *netbsd* | *sunos* | *aix* | *linux-arm* | *linux-ia32* | *linux-loong* | *linux-mips* | *linux-ppc* | *linux-riscv* | *linux-s390* | *musl* | *wasm* | *openharmony*) rm -rf "$d" ;;
    esac
  done
done
find "$NM" -type d -name prebuilds -prune -print0 | while IFS= read -r -d '' p; do
  find "$p" -mindepth 1 -maxdepth 1 -type d ! -name 'linux-x64*' -exec rm -rf {} +
done
# tfjs (loaded on demand only by the tfjs engine): Node resolves "main", the *.node.js CommonJS bundles; drop the
# browser bundles, the per-module ESM tree, and the tools.
for d in "$NM"/@tensorflow/tfjs*; do
  [ -d "$d/dist" ] || continue
  find "$d/dist" -mindepth 1 -maxdepth 1 ! -name '*.node.js' -exec rm -rf {} +
  rm -rf "$d/src" "$d/tools" "$d/scripts"
done
# Everywhere: docs, source maps, typings, tests, examples.
find "$NM" -type f \( -name '*.md' -o -name '*.markdown' -o -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
  -o -name '*.tsbuildinfo' -o -name 'CHANGELOG*' -o -name '*.html' -o -name '.eslintrc*' -o -name '.npmignore' \) -delete
find "$NM" -mindepth 2 -type d \( -name test -o -name tests -o -name __tests__ -o -name docs -o -name doc -o -name example -o -name examples -o -name .github \) -prune -exec rm -rf {} +
echo "   pruned node_modules: $(du -sh "$NM" | cut -f1) (from $(du -sh node_modules | cut -f1))"
tar -C "$STAGE" -cf - node_modules | xz -9 -T2 >"$OUTDIR/node_modules.tar.xz"

# (c) dist
echo "== dist.tar.xz"
tar -cf - --exclude='*.map' dist | xz -9 -T2 >"$OUTDIR/dist.tar.xz"

# (d) .gl: the Vulkan/GL loaders for amd64, as .device's README says (the GPU machine may lack libvulkan1).
echo "== .gl"
mkdir -p "$GLDIR"
if ls "$GLDIR"/libvulkan1_*.deb >/dev/null 2>&1; then
  echo "   (debs present, kept)"
else
  mkdir -p /tmp/amd64/partial
  apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${apt_opts[@]}" update >/dev/null
  (cd "$GLDIR" && apt-get "${apt_opts[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

echo "== sizes"
total=0
for f in "$OUTDIR/node.xz" "$OUTDIR/node_modules.tar.xz" "$OUTDIR/dist.tar.xz" "$GLDIR"/*.deb; do
  s=$(stat -c %s "$f")
  total=$((total + s))
  printf '%10.2f MiB  %s\n' "$(echo "$s / 1048576" | bc -l)" "${f#"$ROOT"/}"
done
printf '%10.2f MiB  total (limit %d MiB; the working tree travels too, 64 MiB in all)\n' "$(echo "$total / 1048576" | bc -l)" "$LIMIT_MIB"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "pack-device: total exceeds $LIMIT_MIB MiB" >&2
  exit 1
fi
