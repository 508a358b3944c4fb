#!/usr/bin/env bash
# The reliability figures of the README: what hostile inputs cost a run with the limits on. Makes its own inputs
# (small PNGs that decode to 75 MB each, the SFO set plus requests for gigapixel outputs), runs the release binary
# on them and prints wall time, peak RSS and the exit status of each case as a Markdown table.
# Usage (from anywhere): bench/limits.sh      (needs bash, python3, cargo and /usr/bin/time: apt-get install time)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
(cd "$root" && cargo build --release --quiet)
bin=${CARGO_TARGET_DIR:-$root/target}/release/iiif-process
[[ $bin = /* ]] || bin=$root/$bin

work=$(mktemp -d "${TMPDIR:-/tmp}/iiif-limits.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/big" "$work/src/photo"
cp "$root/examples/source/IMG_0084.JPG" "$work/src/photo/a.jpg"
cp "$root/tests/fixtures/landscape.jpg" "$work/src/photo/b.jpg"
# Eight 5000x5000 PNGs of one colour: about 80 KB on disk, 75 MB decoded, each.
python3 - "$work/src/big" <<'PY'
import struct, sys, zlib
w = h = 5000
row = b"\x00" + bytes([200, 120, 40]) * w
data = zlib.compress(row * h, 9)
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", data) + chunk(b"IEND", b"")
for i in range(8):
    open(f"{sys.argv[1]}/{i}.png", "wb").write(png)
PY
cat >"$work/config.json" <<'JSON'
{"images": {"source": {"name": "Disk", "path": "src"}}, "derivatives": {"cache": {"name": "Disk", "path": "out"}}}
JSON
echo '{"b": {"size": "!1024,768"}, "n": {"size": "!320,240"}}' >"$work/small.json"
python3 - "$root/instructions.example.json" "$work/absurd.json" <<'PY'
import json, sys
ins = json.load(open(sys.argv[1]))
for k in ("dc", "ds"):  # go-iiif's dither needs a config feature; not what this measures
    ins.pop(k)
ins.update({"huge": {"size": "100000000,100000000"}, "pct": {"size": "pct:100000"},
            "wide": {"size": "65535,65535"}, "smart": {"region": "-1,-1,100000,100000"},
            "turned": {"size": "65535,1", "rotation": "45"}})
json.dump(ins, open(sys.argv[2], "w"))
PY

case_() {
  local name=$1 ins=$2; shift 2
  rm -rf "$work/out"
  local status=0
  (cd "$work" && /usr/bin/time -f '%e %M' -o "$work/t" "$bin" -config config.json -instructions "$ins" -quiet "$@" \
    >"$work/report.json") || status=$?
  read -r secs kib < <(tail -n 1 "$work/t")
  local made
  made=$({ find "$work/out" -type f 2>/dev/null || true; } | wc -l)
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$secs" "$((kib / 1024))" "$status" "$made"
}

echo "| case | wall s | peak RSS MiB | exit | files written |"
echo "|---|--:|--:|--:|--:|"
case_ "8 PNGs of 25 MP, -jobs 8, -max-memory 10G (no effective budget)" small.json -uri big -jobs 8 -max-memory 10G
case_ "8 PNGs of 25 MP, -jobs 8, -max-memory 256M" small.json -uri big -jobs 8 -max-memory 256M
case_ "one PNG of 25 MP, -max-memory 64M (refused before decoding)" small.json -uri big/0.png -max-memory 64M
case_ "SFO set + 5 gigapixel requests, 2 photos" absurd.json -uri photo
