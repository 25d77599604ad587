#!/usr/bin/env bash
# Installs what tokstream needs on a fresh Debian/Ubuntu machine (as root or with sudo),
# then the npm dependencies, and builds. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Runtime: ffmpeg (every non-WAV format). Tests and model scripts: espeak-ng and ktuberling-data
# (speech), fluidsynth + soundfont + openttd-openmsx (music), sox, codec2 (baseline), redis-server
# (prep queue, rooms across nodes), haproxy (the load-balanced topology of deploy/), chromium (browser
# tests), Debian's PyTorch/ONNX for the Python side of models/.
PACKAGES=(ffmpeg espeak-ng sox codec2 redis-server haproxy chromium fluidsynth fluid-soundfont-gm
  ktuberling-data openttd-openmsx python3-torch python3-onnx python3-numpy python3-scipy python3-yaml)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime-node's install script would download CUDA libraries; the CPU binaries ship in the package.
export ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}"
npm ci --no-audit --no-fund
