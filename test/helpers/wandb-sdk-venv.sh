#!/usr/bin/env bash
# Makes a Python virtual environment with the official wandb SDK from wheels on disk (no network): the tests run its
# `wandb sync` on our offline runs. Usage: wandb-sdk-venv.sh WHEEL_DIR VENV_DIR. Exits non-zero when the wheels are
# not all there (the caller then skips, saying why).
set -euo pipefail
wheels=$1 venv=$2
python3 -m venv "$venv"
# --no-deps with the list spelled out: the wheel directory lacks opentelemetry-semantic-conventions (stood in for by
# semconv_shim.py below) and holds two pydantic-core versions; these are the ones wandb 0.30 needs.
"$venv/bin/pip" install -q --no-index --find-links "$wheels" --no-deps \
  "wandb==0.30.0" click opentelemetry-api opentelemetry-sdk opentelemetry-proto opentelemetry-exporter-otlp-proto-common \
  opentelemetry-exporter-otlp-proto-http packaging platformdirs "protobuf<7" "pydantic==2.13.5" "pydantic-core==2.46.5" \
  annotated-types typing-inspection pyyaml requests urllib3 idna certifi charset-normalizer typing-extensions xxhash \
  importlib-metadata zipp
site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
cp "$(dirname "$0")/semconv_shim.py" "$site/_semconv_shim.py"
echo "import _semconv_shim" >"$site/_semconv_shim.pth"
"$venv/bin/wandb" --version
