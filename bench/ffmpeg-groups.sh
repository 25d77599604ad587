#!/bin/bash
# What decoding short files costs in ffmpeg, at the command line (docs/benchmarks.md, "Corpus
# preparation"): CPU (user + sys, best of 4) of one ffmpeg process decoding 64 short spoken files to
# mono float32 at 24 kHz (soxr), with the options prep uses and without them; the same audio as one
# long file; and one output for the whole group through the concat filter.
#   bash bench/ffmpeg-groups.sh
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
for i in $(seq 1 64); do
  espeak-ng -s $((140 + i % 7 * 15)) -w w$i.wav "The quick brown fox jumps over the lazy dog, item $i."
  ffmpeg -nostdin -v error -y -i w$i.wav -c:a libmp3lame -b:a 64k m$i.mp3
  ffmpeg -nostdin -v error -y -i w$i.wav -c:a flac f$i.flac
done
ffmpeg -v error -f concat -safe 0 -i <(for i in $(seq 1 64); do echo "file '$dir/w$i.wav'"; done) -c copy long.wav
ffmpeg -v error -f lavfi -i "sine=f=440:d=0.1:r=22050" tiny1.wav
for i in $(seq 2 64); do cp tiny1.wav tiny$i.wav; done

# group PREFIX EXT "INPUT OPTIONS": 64 inputs, 64 outputs (as codec/ffmpeg-group.ts)
group() {
  local args=() outs=()
  for i in $(seq 1 64); do args+=($3 -i "$1$i.$2"); done
  for i in $(seq 0 63); do outs+=(-map $i:a:0 -ac 1 -af aresample=resampler=soxr -ar 24000 -f f32le /dev/null); done
  OMP_NUM_THREADS=1 ffmpeg -nostdin -v error -y "${args[@]}" "${outs[@]}"
}
# concat PREFIX EXT "INPUT OPTIONS": the same inputs, each resampled alone, joined into one output
concat() {
  local args=() fc="" cat=""
  for i in $(seq 1 64); do args+=($3 -i "$1$i.$2"); done
  for i in $(seq 0 63); do fc="$fc[$i:a:0]aresample=resampler=soxr:osr=24000,aformat=sample_fmts=flt:channel_layouts=mono[a$i];"; cat="$cat[a$i]"; done
  OMP_NUM_THREADS=1 ffmpeg -nostdin -v error -y "${args[@]}" -filter_complex "$fc${cat}concat=n=64:v=0:a=1[out]" -map '[out]' -f f32le /dev/null
}
one() { OMP_NUM_THREADS=1 ffmpeg -nostdin -v error -y "$@" -map 0:a:0 -ac 1 -af aresample=resampler=soxr -ar 24000 -f f32le /dev/null; }
cpu() {
  local best=99
  for _ in 1 2 3 4; do
    local t
    t=$({ TIMEFORMAT='%U %S'; time "$@" >/dev/null 2>&1; } 2>&1 | awk '{print $1 + $2}')
    best=$(awk -v a="$t" -v b="$best" 'BEGIN { print (a < b) ? a : b }')
  done
  echo "$best s"
}
export -f group concat one
echo "ffmpeg start-up alone (ffmpeg -version): $(cpu ffmpeg -version)"
echo "64 WAV (22.05 kHz), probing:                       $(cpu bash -c 'group w wav ""')"
echo "64 WAV, -f wav -probesize 32 (prep):               $(cpu bash -c 'group w wav "-f wav -probesize 32"')"
echo "64 WAV, prep's options + -thread_queue_size 1024:  $(cpu bash -c 'group w wav "-thread_queue_size 1024 -f wav -probesize 32"')"
echo "64 MP3:                                            $(cpu bash -c 'group m mp3 ""')"
echo "64 MP3, -thread_queue_size 1024:                   $(cpu bash -c 'group m mp3 "-thread_queue_size 1024"')"
echo "64 FLAC, -thread_queue_size 1024:                  $(cpu bash -c 'group f flac "-thread_queue_size 1024"')"
echo "64 WAV of 0.1 s (per-input cost):                  $(cpu bash -c 'group tiny wav "-thread_queue_size 1024 -f wav -probesize 32"')"
echo "the 64 WAV as one long file ($(ffprobe -v error -show_entries format=duration -of csv=p=0 long.wav) s):  $(cpu bash -c 'one -f wav -i long.wav')"
echo "64 WAV, one output through the concat filter:      $(cpu bash -c 'concat w wav "-thread_queue_size 1024 -f wav -probesize 32"')"
echo "64 MP3, one output through the concat filter:      $(cpu bash -c 'concat m mp3 "-thread_queue_size 1024"')"
