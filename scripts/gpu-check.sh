#!/usr/bin/env bash
# The GPU check: the webgpu engine's tests (test/webgpu-engine.test.ts, SNN_REQUIRE_WEBGPU=1 so that no adapter is a
# failure) and the webgpu benchmark (dist/bench/run.js --webgpu-only), on a real GPU. Run from anywhere:
#   bash scripts/gpu-check.sh [--no-system]
# On a machine without Node.js (a device machine: carry .device and .gl, made by scripts/pack-device.sh) it first
# unpacks the Vulkan/GL loader debs from .gl into / (skipped with --no-system or GPU_CHECK_SKIP_GL=1, for trying it
# out on a machine that has them), node to /tmp/node, and node_modules and dist into the repo root. Where `node` is on
# PATH and node_modules exists (any Linux machine with Node and a GPU, after npm ci and npm run build) it unpacks
# nothing. All output also goes to $OUT/gpu-check.log when OUT is set. Exit status: non-zero if the tests fail (the
# benchmark's failure is reported and also fails the check).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
SKIP_GL="${GPU_CHECK_SKIP_GL:-0}"
for a in "$@"; do
  case "$a" in
    --no-system) SKIP_GL=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $a" >&2; exit 2 ;;
  esac
done

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  exec > >(tee -a "$OUT/gpu-check.log") 2>&1
fi

echo "== gpu-check $(date -u +%FT%TZ) on $(uname -n) ($(uname -m))"

NODE=""
if command -v node >/dev/null 2>&1 && [ -d node_modules ]; then
  NODE="$(command -v node)"
  echo "== using this machine's node ($NODE) and node_modules; nothing to unpack"
else
  if [ "$SKIP_GL" != "1" ] && compgen -G ".gl/*.deb" >/dev/null; then
    echo "== unpacking .gl loaders into /"
    for f in .gl/*.deb; do dpkg -x "$f" / || { echo "gpu-check: dpkg -x $f failed" >&2; exit 2; }; done
    ldconfig
  fi
  if [ -f .device/node.xz ]; then
    echo "== unpacking node to /tmp/node"
    if ! xz -dc .device/node.xz >/tmp/node || ! chmod +x /tmp/node; then
      echo "gpu-check: could not unpack node" >&2
      exit 2
    fi
    NODE=/tmp/node
  elif command -v node >/dev/null 2>&1; then
    NODE="$(command -v node)"
  else
    echo "gpu-check: no node on PATH and no .device/node.xz (run scripts/pack-device.sh, carry .device)" >&2
    exit 2
  fi
  for t in node_modules dist; do
    if [ -f ".device/$t.tar.xz" ]; then
      echo "== unpacking $t"
      rm -rf "$t"
      # -m: the files get the time of unpacking, so test/helpers' ensureBuilt sees dist as newer than src.
      xz -dc ".device/$t.tar.xz" | tar -xmf - || { echo "gpu-check: could not unpack $t" >&2; exit 2; }
    fi
  done
fi
if [ ! -d node_modules ] || [ ! -f dist/cli/snn-worker.js ]; then
  echo "gpu-check: node_modules or dist/ missing (npm ci && npm run build, or carry .device)" >&2
  exit 2
fi
echo "node $("$NODE" -v)"

if command -v nvidia-smi >/dev/null 2>&1; then
  echo "== nvidia-smi -L"
  nvidia-smi -L
fi

NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
list_gpus() { "$NODE" dist/cli/snn-worker.js --list-gpus; }
echo "== ldconfig -p | grep libvulkan"
ldconfig -p | grep libvulkan || echo "(none)"
# Dawn (through the Vulkan loader) complains on every start where XDG_RUNTIME_DIR is unset; give it one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d /tmp/xdg.XXXXXX)" && chmod 700 "$XDG_RUNTIME_DIR" && export XDG_RUNTIME_DIR
fi
# No loader, or no NVIDIA adapter with the default driver search: point the loader at the NVIDIA ICD (device README).
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$NVIDIA_ICD" ] &&
  { ! ldconfig -p | grep -q libvulkan || ! list_gpus 2>/dev/null | grep -qi nvidia; }; then
  echo "== no NVIDIA adapter with the default drivers: VK_DRIVER_FILES=$NVIDIA_ICD"
  export VK_DRIVER_FILES="$NVIDIA_ICD"
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
echo "== snn-worker --list-gpus"
list_gpus
gpus=$?

echo "== vitest run test/webgpu-engine.test.ts (SNN_REQUIRE_WEBGPU=1)"
SECONDS=0
SNN_REQUIRE_WEBGPU=1 "$NODE" node_modules/vitest/vitest.mjs run test/webgpu-engine.test.ts
tests=$?
echo "   tests took ${SECONDS}s"

# Bounded (GPU_CHECK_BENCH_TIMEOUT seconds, default 420) so that the summary below still prints inside a 10-minute run.
bench_timeout="${GPU_CHECK_BENCH_TIMEOUT:-420}"
echo "== bench: dist/bench/run.js --webgpu-only (at most ${bench_timeout}s)"
SECONDS=0
timeout -k 10 "$bench_timeout" "$NODE" dist/bench/run.js --webgpu-only
bench=$?
echo "   bench took ${SECONDS}s"
if [ "$bench" -eq 124 ] || [ "$bench" -eq 137 ]; then echo "gpu-check: the bench ran past ${bench_timeout}s and was stopped" >&2; fi

echo "== gpu-check: list-gpus exit $gpus, tests exit $tests, bench exit $bench"
if [ "$tests" -ne 0 ]; then exit "$tests"; fi
if [ "$gpus" -ne 0 ]; then exit "$gpus"; fi
exit "$bench"
