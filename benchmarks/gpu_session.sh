#!/usr/bin/env bash
# One GPU session: CUDA correctness checks and the GPU benchmarks, in one command on the lent
# machine (its own python3 has torch; PyAV comes as a carried wheel). From the repo root, with
# .device/ prepared as benchmarks/RESULTS.md describes and carried:
#   bash benchmarks/gpu_session.sh        # writes $OUT/*.md
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/ldl-gpu-out}
mkdir -p "$OUT"
start=$(date +%s)
step() { echo "=== $1 (t=$(( $(date +%s) - start )) s)"; }

step "set-up"
python3 -m pip install -q --no-index --no-deps --target /tmp/pydeps .device/wheels/*.whl
export PYTHONPATH="$PWD:/tmp/pydeps"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, av; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'av', av.__version__)"

# Real converted weights (carried): realesr-animevideov3-x4 and realesrgan-x4plus-anime.
export LDL_MODEL_DIR="$PWD/.device/models"
# realesrgan-x4plus's 64 MB does not fit the carry limit beside PyAV: for speed only, a second
# model folder holds the same architecture with random weights (same cost per pixel).
SPEED_MODELS=/tmp/ldl-speed-models
mkdir -p "$SPEED_MODELS" && cp .device/models/*.safetensors "$SPEED_MODELS"/
python3 - "$SPEED_MODELS" <<'PY'
import sys, torch
from ldl_video.archs import RRDBNet
from ldl_video.checkpoints import save_checkpoint
torch.manual_seed(0)
net = RRDBNet()
with torch.no_grad():
    for p in net.parameters():
        p.mul_(0.1)
save_checkpoint(net, f"{sys.argv[1]}/realesrgan-x4plus.safetensors")
PY

step "CUDA paths against the CPU"
timeout 100 python3 benchmarks/gpu_checks.py --out "$OUT/gpu-checks.md"

step "engine throughput"
LDL_MODEL_DIR="$SPEED_MODELS" timeout 150 python3 benchmarks/bench_engine.py --device cuda --batch 4 --out "$OUT/engine-gpu.md"

step "video pipeline"
LDL_MODEL_DIR="$SPEED_MODELS" timeout 150 python3 benchmarks/bench_video.py --device cuda --precision fp16,bf16 --batch 4 \
  --preset ultrafast --repeats 2 --skip-memory --output "$OUT/video-gpu.md"

step "training step and fine-tune"
timeout 170 python3 benchmarks/bench_train.py --device cuda && cp benchmarks/results/train.md "$OUT/train.md"

step "done"
