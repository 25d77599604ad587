#!/usr/bin/env bash
# Rebuild the default codec from nothing on CPU: data, training, ONNX export into models/default.
#   bash models/train/build.sh            # about 2 hours on 2 CPU cores (100 min of training)
# Resumable: rerunning continues from $RUN/state.pt. Environment knobs (defaults in brackets):
#   RUN [models/train/runs/cpu]  OUT_DIR [models/default]  MINUTES [100]  THREADS [2]  BATCH [8]
# The shipped weights came from the same train.py on a GPU with more steps (see models/default/TRAINING.md);
# a CPU rebuild sees roughly a tenth of that audio (less on a busy machine) and gives a weaker model.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
RUN=${RUN:-models/train/runs/cpu}
OUT_DIR=${OUT_DIR:-models/default}
[ -f .traindata/train.npz ] || nice -n 10 "$PY" models/train/prepare_data.py
nice -n 10 "$PY" models/train/train.py --run-dir "$RUN" --device cpu --threads "${THREADS:-2}" \
  --batch "${BATCH:-8}" --calibrate --max-minutes "${MINUTES:-100}"
"$PY" models/train/export.py --checkpoint "$RUN/weights" --out "$OUT_DIR" --version 1.0.0-cpu \
  --train-provenance "$RUN/provenance.json" \
  --command "bash models/train/build.sh (MINUTES=${MINUTES:-100} THREADS=${THREADS:-2} BATCH=${BATCH:-8})"
node models/train/check_onnx.mjs "$OUT_DIR"
