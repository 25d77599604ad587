#!/usr/bin/env bash
# Continue the default codec's current training run on this machine's CPU, in the background at low priority.
#   bash models/train/continue.sh            # MINUTES [120] THREADS [2] BATCH [8] RUN_NAME [v2]
# The run's arguments live in models/train/checkpoints/$RUN_NAME/args.txt; weights, critics, step counter and
# log are written there every --ckpt-every steps (commit them: a fresh clone continues from them), the
# optimiser state beside them in models/train/runs/ (not committed; a fresh clone rebuilds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN_NAME=${RUN_NAME:-v2}
RUN=models/train/checkpoints/$RUN_NAME
[ -f .traindata/train.npz ] || nice -n 10 /usr/bin/python3 models/train/prepare_data.py
# shellcheck disable=SC2046
exec nice -n 19 /usr/bin/python3 models/train/train.py --run-dir "$RUN" --state-dir "models/train/runs/$RUN_NAME-state" \
  --threads "${THREADS:-2}" --batch "${BATCH:-8}" --max-minutes "${MINUTES:-120}" --ckpt-every 20 \
  $(cat "$RUN/args.txt")
