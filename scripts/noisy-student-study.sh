#!/usr/bin/env bash
# The noisy-student recovery study (MODEL-HEAD.md 9) at quickstart size, in one command:
#   1. the teacher: a quickstart training run (runs/noisy-student-teacher, kept and reused);
#   2. its weights (snn-sim --export-targets) and its spike trains over 40 epochs of 5 streams × 10 trials
#      (snn-sim --export-teacher), which parameters/noisy-student.toml names;
#   3. snn-study over student.noise_frac = 0.05 … 0.50 with the original's global moment rescale and with the
#      per-type one, each point a teacher-forced student training its scaling factors (resumable: rerun the script).
# Usage: scripts/noisy-student-study.sh [OUTPUT_DIR] [extra snn-study options, e.g. --parallel 2 --workers 1]
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-runs/noisy-student-study}
shift || true
teacher=runs/noisy-student-teacher
checkpoint=$teacher/checkpoints/checkpoint_latest.safetensors

if [ ! -f "$teacher/metadata.json" ]; then
  npx snn-coord parameters/quickstart.toml --workers 2 --output "$teacher" --no-figures --metrics-port 0
elif ! grep -q '"status": "completed"' "$teacher/metadata.json"; then
  npx snn-coord parameters/quickstart.toml --workers 2 --output "$teacher" --no-figures --metrics-port 0 --resume auto
fi
[ -f "$teacher/teacher.safetensors" ] ||
  npx snn-sim parameters/quickstart.toml --teacher --checkpoint "$checkpoint" --epochs 2 --export-targets "$teacher/teacher.safetensors"
[ -f "$teacher/spikes.safetensors" ] ||
  npx snn-sim parameters/quickstart.toml --teacher --checkpoint "$checkpoint" --epochs 40 --export-teacher "$teacher/spikes.safetensors"

npx snn-study parameters/noisy-student.toml \
  --grid student.noise_frac=0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45,0.5 \
  --grid student.noise_rescale=global,per_type \
  --output "$out" --workers 2 "$@"
