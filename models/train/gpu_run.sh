#!/usr/bin/env bash
# The single accelerator run that produced the shipped weights (device tool, carry: .traindata).
# Trains for a fixed wall-clock budget; weights, log and provenance land in $OUT.
set -euo pipefail
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"${PYTHON:-python3}" -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())'
"${PYTHON:-python3}" models/train/train.py --device cuda --run-dir "$OUT" --state-dir /tmp/state --data .traindata/train.npz \
  --batch "${BATCH:-128}" --calibrate --max-minutes "${MINUTES:-7.5}" --warmup 300 \
  --log-every 50 --ckpt-every 500 --restart-every 100 2>&1 | tee "$OUT/train.log"
