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
# the training audio's Debian packages (besides what scripts/setup.sh installs)
DATA_PACKAGES=(asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722 festival
  festvox-kallpc16k festvox-kdlpc16k espeak-ng ktuberling-data fluidsynth fluid-soundfont-gm openttd-openmsx sox)
missing=()
for p in "${DATA_PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] && [ ! -f .traindata/train.npz ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ -f .traindata/train.npz ] || nice -n 10 /usr/bin/python3 models/train/prepare_data.py
# shellcheck disable=SC2046
exec nice -n 19 /usr/bin/python3 models/train/train.py --run-dir "$RUN" --state-dir "models/train/runs/$RUN_NAME-state" \
  --threads "${THREADS:-2}" --batch "${BATCH:-8}" --max-minutes "${MINUTES:-120}" --ckpt-every 20 \
  $(cat "$RUN/args.txt")
