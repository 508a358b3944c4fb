#!/usr/bin/env bash
# How far a lower JPEG 2000 resolution level is from the full decode resized by Lanczos3: the measure behind
# decoding JPEG 2000 masters at full resolution. A lossless JP2 of SOURCE (default the 1680x1050 test photo) is
# made with opj_compress; levels 1 and 2 (opj_decompress -r) and a Lanczos3 halving of the full image are each
# resized by Lanczos3 to WIDTHxHEIGHT and compared with the full image resized straight there (PSNR, dB).
# Needs opj_compress/opj_decompress (libopenjp2-tools), vips (libvips-tools) and compare (imagemagick).
# Usage (from anywhere): bench/jp2-levels.sh [SOURCE [WIDTH HEIGHT]]
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${1:-$here/../tests/fixtures/dune_1680x1050.jpg}
tw=${2:-320} th=${3:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
vips copy "$src" "$work/full.png"
opj_compress -i "$work/full.png" -o "$work/full.jp2" >/dev/null
# resize IN OUT: Lanczos3 to exactly tw x th.
resize() {
  local w h
  w=$(vipsheader -f width "$1") h=$(vipsheader -f height "$1")
  vips resize "$1" "$2" "$(python3 -c "print($tw / $w)")" --vscale "$(python3 -c "print($th / $h)")" --kernel lanczos3
}
psnr() { compare -metric PSNR "$1" "$2" null: 2>&1 >/dev/null || true; }
resize "$work/full.png" "$work/ref.png"
for r in 1 2; do
  opj_decompress -i "$work/full.jp2" -o "$work/level$r.png" -r "$r" >/dev/null
  resize "$work/level$r.png" "$work/from-level$r.png"
  echo "level $r ($(vipsheader -f width "$work/level$r.png")x$(vipsheader -f height "$work/level$r.png")) -> ${tw}x$th: $(psnr "$work/from-level$r.png" "$work/ref.png") dB"
done
vips resize "$work/full.png" "$work/half.png" 0.5 --kernel lanczos3
resize "$work/half.png" "$work/from-half.png"
echo "Lanczos3 halving -> ${tw}x$th: $(psnr "$work/from-half.png" "$work/ref.png") dB"
