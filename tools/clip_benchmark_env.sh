#!/usr/bin/env bash
# A separate environment for CLIP_benchmark 1.6.2, the reference that benchmarks/zero_shot_eval.py compares
# zslab's zero-shot evaluation against. Separate because CLIP_benchmark needs numpy<2 (and requests), which
# zslab's own environment does not pin. Same torch/open_clip builds as zslab, so both run the same kernels.
# Usage: bash tools/clip_benchmark_env.sh [FOLDER]   (default .venv-clip-benchmark; no root needed)
set -eu
ENV_DIR="${1:-.venv-clip-benchmark}"
PYTHON="${PYTHON:-python3}"
if [ -x "$ENV_DIR/bin/clip_benchmark" ]; then exit 0; fi
"$PYTHON" -m venv "$ENV_DIR"
"$ENV_DIR/bin/pip" install --quiet torch==2.14.1 torchvision==0.29.1
"$ENV_DIR/bin/pip" install --quiet "clip_benchmark==1.6.2" "open_clip_torch==3.3.0" "numpy<2" requests
echo "CLIP_benchmark installed in $ENV_DIR"
