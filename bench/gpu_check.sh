#!/usr/bin/env bash
# The GPU check: one prepared script for a machine with CUDA GPUs. It needs
# this repository, a Python with requirements.txt installed ($PYTHON,
# default .venv/bin/python) and the packed data set
# (python -m resexplorer pack-images path/to/cifar10-jpeg cifar10-jpeg.pack):
#
#   bash bench/gpu_check.sh cifar10-jpeg.pack [OUT]
#
# It prints, and keeps in OUT (default a temporary folder):
#   1. bench/gpu_checks.py: a race across the visible GPUs against one GPU,
#      and compile on CUDA against eager;
#   2. torchrun with NCCL on every GPU: a short race, its time and errors;
#   3. bench/train_throughput.py on GPU 0 (eager, compiled, bounds);
#   4. ResNet-20 to 87% test accuracy on the JPEG copy: the wall time of
#      the first epoch whose test error is at most 13% (goal: 20 s or less
#      on one H100-class GPU).
# Not yet run (no GPU machine was available when it was written).
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=${1:?give the packed data set: bash bench/gpu_check.sh cifar10-jpeg.pack [OUT]}
OUT=${2:-$(mktemp -d)}
PYTHON=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1 RESEXPLORER_RUNS="$OUT/runs"
GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
echo "== $GPUS GPU(s); output in $OUT"

DATA="$OUT/cifar10-jpeg"
[ -d "$DATA" ] || "$PYTHON" -m resexplorer unpack-images "$PACK" "$DATA" || exit 1

echo "== 1. GPU checks"
"$PYTHON" bench/gpu_checks.py "$DATA" 2>&1 | tee "$OUT/gpu_checks.txt"

echo "== 2. torchrun, NCCL, $GPUS process(es)"
SECONDS=0
"$PYTHON" -m torch.distributed.run --standalone --nproc-per-node "$GPUS" -m resexplorer train \
    --model plain-20 --model resnet-20 --data "$DATA" --epochs 3 --device cuda --runs "$OUT/torchrun" \
    2>&1 | tail -5 | tee "$OUT/torchrun.txt"
echo "torchrun race: $SECONDS s, start-up and data load included" | tee -a "$OUT/torchrun.txt"

echo "== 3. throughput"
"$PYTHON" bench/train_throughput.py --data "$DATA" --device cuda --workers 4 8 2>&1 | tee "$OUT/throughput.txt"

echo "== 4. ResNet-20 to 87% test accuracy (a first guess at a fast recipe: tune it on the GPU)"
"$PYTHON" -m resexplorer train --model resnet-20 --data "$DATA" --device cuda --compile on \
    --epochs 16 --batch-size 512 --lr 0.4 --schedule onecycle --warmup-epochs 0 --runs "$OUT/to87" \
    2>&1 | tail -3
"$PYTHON" - "$OUT/to87" <<'PY' | tee "$OUT/to87.txt"
import sys
from resexplorer.runs.store import RunStore
(run,) = RunStore(sys.argv[1]).list()
hit = next((e for e in run.metrics("epoch") if e["test_error"] is not None and e["test_error"] <= 0.13), None)
last = run.metrics("epoch")[-1]
if hit:
    print(f"87% test accuracy after epoch {hit['epoch']}: {hit['wall_s']:.1f} s of training (goal <= 20 s)")
else:
    print(f"87% not reached in {last['epoch']} epochs: best {100 * (1 - min(e['test_error'] for e in run.metrics('epoch'))):.2f}%")
PY
