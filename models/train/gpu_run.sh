#!/usr/bin/env bash
# Continue the default codec's current training run on the lent accelerator, for the time left.
#   here:  /usr/bin/python3 models/train/pack_for_device.py           # .devicepack/train.npz, <= 40 MiB
#   there: device run, carry [.devicepack, models/train/checkpoints/$RUN_NAME], command:
#          MINUTES=8 bash models/train/gpu_run.sh
#   back:  copy $OUT/run/* over models/train/checkpoints/$RUN_NAME, commit, export (TRAINING.md).
# The run continues from its committed weights, critics and step counter (train.py's portable checkpoint);
# optimiser moments are rebuilt (they would not fit in the carry budget).
set -euo pipefail
export PYTHONUNBUFFERED=1
RUN_NAME=${RUN_NAME:-v2}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"${PYTHON:-python3}" -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())'
mkdir -p "$OUT/run"
cp -r "models/train/checkpoints/$RUN_NAME/." "$OUT/run/"
# shellcheck disable=SC2046
"${PYTHON:-python3}" models/train/train.py --device cuda --run-dir "$OUT/run" --state-dir /tmp/state \
  --data .devicepack/train.npz --batch "${BATCH:-64}" --max-minutes "${MINUTES:-8}" \
  $(cat "models/train/checkpoints/$RUN_NAME/args.txt") --ckpt-every 250 2>&1 | tee "$OUT/run/train-gpu.log"
