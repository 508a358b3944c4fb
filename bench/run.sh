#!/usr/bin/env bash
# Time iiif-process against the peers a user would reach for instead (libvips, ImageMagick; djpeg as the
# decode-only floor), check its resizes against libvips', and time a -skip-existing rerun. See bench/README.md.
# Usage (from anywhere): bench/run.sh [quality|quality-jp2|scaling|tiles|jp2|ab]
#   quality                   only the resampling quality table (section 5b), no timings
#   quality-jp2               the same table for the corpus saved as JPEG 2000 (vips jp2ksave: lossy, 512 px tiles),
#                             whose derivatives below the full image come from the file's resolution level 1
#   scaling                   only the scaling table: the corpus on 1, 2, 4, ... cores (taskset), iiif-process and
#                             libvips (pyvips, bench/vips_corpus.py), wall s, CPU-s and peak RSS per core count
#   SCALING_CORES="1 2 16"    core counts for scaling (default: 1, 2, 4, ... up to nproc, and nproc)
#   tiles                     only zoomable images: the hero's IIIF tiles vs `vips dzsave --layout iiif3` (tiles.md)
#   jp2                       only the JPEG 2000 master: a 100 MP JP2 made from the hero, the nine derivatives by
#                             iiif-process and by vips-par, and the six below full size (k b c dc z n) by each,
#                             time and peak RSS (section 3b)
#   BENCH_BASELINE=old/bin    with jp2: the same two sets by an earlier release binary too, alternated
#   ab                        only before and after: the hero and the corpus by this build and by BENCH_BASELINE (the
#                             release binary of an earlier version), alternated, wall s and peak RSS (ab.md)
#   RUNS=5                    rounds; each round runs every command once, in turn, so noise hits all of them alike
#   BENCH_CORPUS=bench-corpus corpus directory (fetched by bench/fetch-corpus.sh unless already complete)
#   BENCH_OUT=bench-out       where results.md and times.tsv are written
set -euo pipefail
# The peers must be the real ones: a stand-in convert may sit earlier in PATH (e.g. /usr/local/bin).
export PATH=/usr/bin:/bin:$PATH
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
mode=${1:-all}
[[ $mode = all || $mode = quality || $mode = quality-jp2 || $mode = scaling || $mode = tiles || $mode = jp2 ||
  $mode = ab ]] ||
  { echo "usage: bench/run.sh [quality|quality-jp2|scaling|tiles|jp2|ab]" >&2; exit 2; }
if [ "$mode" = ab ] || { [ "$mode" = jp2 ] && [ -n "${BENCH_BASELINE:-}" ]; }; then
  [ -x "${BENCH_BASELINE:-}" ] || { echo "$mode: BENCH_BASELINE must name an earlier iiif-process binary" >&2; exit 2; }
  BENCH_BASELINE=$(cd "$(dirname "$BENCH_BASELINE")" && pwd)/$(basename "$BENCH_BASELINE")
fi
RUNS=${RUNS:-5}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive integer" >&2; exit 2; }
corpus=${BENCH_CORPUS:-$root/bench-corpus}
results=${BENCH_OUT:-$root/bench-out}
say() { printf '%s\n' "$*" >&2; }

# 1. Peers.
need=()
[ -x /usr/bin/vips ] || need+=(libvips-tools)
{ [ -x /usr/bin/convert ] && [ -x /usr/bin/compare ] && [ -x /usr/bin/identify ]; } || need+=(imagemagick)
[ -x /usr/bin/djpeg ] || need+=(libjpeg-turbo-progs)
[ -x /usr/bin/time ] || need+=(time)
[ -x /usr/bin/exiftool ] || need+=(libimage-exiftool-perl)
if ((${#need[@]})); then
  say "installing ${need[*]}"
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
convert --version | grep -q ImageMagick || { echo "convert in PATH is not ImageMagick" >&2; exit 1; }

# 2. Corpus.
"$here/fetch-corpus.sh" "$corpus" >/dev/null
corpus=$(cd "$corpus" && pwd)
files=(hero.jpg)
for f in "$corpus"/photos/*.jpg; do files+=("photos/${f##*/}"); done
((${#files[@]} > 1)) || { echo "no photos in $corpus/photos" >&2; exit 1; }

# 3. Build.
# BENCH_CARGO_FLAGS='--no-default-features --features pure-rust' measures the pure-Rust JPEG codecs instead of libjpeg-turbo.
# shellcheck disable=SC2086
(cd "$root" && cargo build --release --quiet ${BENCH_CARGO_FLAGS:-})
bin=${CARGO_TARGET_DIR:-$root/target}/release/iiif-process
[[ $bin = /* ]] || bin=$root/$bin
instructions=$root/instructions.example.json

work=$(mktemp -d "${TMPDIR:-/tmp}/iiif-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$results"
: >"$work/times"

# A config like config.example.json (services, dither/crisp qualities) reading the corpus and writing to $2.
make_config() {
  python3 - "$root/config.example.json" "$corpus" "$2" >"$1" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["images"]["source"]["path"] = sys.argv[2]
cfg["derivatives"]["cache"]["path"] = sys.argv[3]
json.dump(cfg, sys.stdout, indent=2)
PY
}
make_config "$work/config.json" "$work/ours"

# Peers on many files: one file after another, as a loop in a shell script would.
cat >"$work/peer-loop.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
peers=$1 tool=$2 src=$3 out=$4
shift 4
for f in "$@"; do "$peers" "$tool" "$src/$f" "$out/$f"; done
SH
chmod +x "$work/peer-loop.sh"

ours=("$bin" -config "$work/config.json" -instructions "$instructions" -quiet)
uri_args=()
for f in "${files[@]}"; do uri_args+=(-uri "$f"); done

# timed KEY CMD...: run CMD with fresh output directories, append "KEY wall_s maxrss_kib" to $work/times.
timed() {
  local key=$1
  shift
  rm -rf "$work/ours" "$work/peer"
  mkdir -p "$work/ours" "$work/peer"
  if ! /usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null 2>"$work/err"; then
    say "$key failed:"
    cat "$work/err" "$work/t" >&2
    exit 1
  fi
  printf '%s %s\n' "$key" "$(tail -n 1 "$work/t")" >>"$work/times"
}

# 3b. A JPEG 2000 master: the hero scaled to just under 100 MP (13330x7497; the default -max-output-pixels is
# 100 MP, and the full-size `o` must fit) and saved by libvips as a tiled (1024x1024), lossy (Q 45, libvips'
# default) JP2, the kind an image server keeps. Both tools make the nine derivatives from it; vips' thumbnail
# loads a lower resolution level of the JP2 where it can (its shrink-on-load), iiif-process always the full one.
if [ "$mode" = jp2 ]; then
  master=$corpus/hero-100mp.jp2
  if [ ! -s "$master" ]; then
    say "making $master"
    vips resize "$corpus/hero.jpg" "$work/big.v" 2.3635
    vips jp2ksave "$work/big.v" "$master" --tile-width 1024 --tile-height 1024 --Q 45
    rm -f "$work/big.v"
  fi
  jw=$(vipsheader -f width "$master") jh=$(vipsheader -f height "$master")
  : >"$work/times"
  cat "$master" >/dev/null
  # The six derivatives below full size: nothing needs the full image, so iiif-process decodes level 1 alone.
  small="k b c dc z n"
  python3 - "$instructions" "$small" >"$work/small.json" <<'PY'
import json, sys
ins = json.load(open(sys.argv[1]))
print(json.dumps({k: ins[k] for k in sys.argv[2].split()}))
PY
  small_ours=("$bin" -config "$work/config.json" -instructions "$work/small.json" -quiet)
  say "timing: $RUNS rounds of the ${jw}x$jh JP2"
  for ((r = 1; r <= RUNS; r++)); do
    say "round $r/$RUNS"
    timed "nine/iiif-process" "${ours[@]}" -uri hero-100mp.jp2
    timed "nine/vips-par" "$here/peers.sh" vips-par "$master" "$work/peer"
    timed "six/iiif-process" "${small_ours[@]}" -uri hero-100mp.jp2
    timed "six/vips-par" env PEER_ONLY="$small" "$here/peers.sh" vips-par "$master" "$work/peer"
    if [ -n "${BENCH_BASELINE:-}" ]; then
      timed "nine/baseline" "$BENCH_BASELINE" "${ours[@]:1}" -uri hero-100mp.jp2
      timed "six/baseline" "$BENCH_BASELINE" "${small_ours[@]:1}" -uri hero-100mp.jp2
    fi
  done
  cp "$work/times" "$results/jp2-times.tsv"
  rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  python3 - "$work/times" "$RUNS" "$jw" "$jh" "$(nproc)" "$rev" "$(vips --version)" \
    "$(stat -c %s "$master")" >"$results/jp2.md" <<'PY'
import statistics as st, sys
times, runs, w, h, nproc, rev, vips, size = sys.argv[1:9]
rows = {}
for line in open(times):
    key, wall, rss = line.split()
    rows.setdefault(key, []).append((float(wall), int(rss)))
mp = int(w) * int(h) / 1e6
out = ["# iiif-process benchmark: a JPEG 2000 master", "",
       f"nproc {nproc}; iiif-process ({rev}); {vips}. {w}x{h} ({mp:.1f} MP) tiled lossy JP2 of "
       f"{int(size) / 2**20:.0f} MiB made from the hero; the nine derivatives of instructions.example.json, and "
       f"the six of them below full size (k b c dc z n). Median of {runs} rounds.", "",
       "| set | tool | median wall s | min-max s | peak RSS MiB median | peak RSS MiB max |",
       "|---|---|--:|--:|--:|--:|"]
for key, v in rows.items():
    walls = [x for x, _ in v]
    rss = [r / 1024 for _, r in v]
    out.append(f"| {key.split('/')[0]} | {key.split('/')[1]} | {st.median(walls):.2f} | {min(walls):.2f}-{max(walls):.2f} | "
               f"{st.median(rss):.0f} | {max(rss):.0f} |")
print("\n".join(out))
PY
  cat "$results/jp2.md"
  exit 0
fi

# Before and after: this build and an earlier one on the same work, alternated in every round.
if [ "$mode" = ab ]; then
  base=("$BENCH_BASELINE" "${ours[@]:1}")
  cat "$corpus/hero.jpg" "$corpus"/photos/*.jpg >/dev/null
  timed warmup "${ours[@]}" -uri hero.jpg
  timed warmup "${base[@]}" -uri hero.jpg
  : >"$work/times"
  say "timing: $RUNS rounds of 4 commands"
  for ((r = 1; r <= RUNS; r++)); do
    say "round $r/$RUNS"
    timed hero/this "${ours[@]}" -uri hero.jpg
    timed hero/baseline "${base[@]}" -uri hero.jpg
    timed corpus/this "${ours[@]}" "${uri_args[@]}"
    timed corpus/baseline "${base[@]}" "${uri_args[@]}"
  done
  cp "$work/times" "$results/ab-times.tsv"
  python3 - "$work/times" "$RUNS" "$BENCH_BASELINE" >"$results/ab.md" <<'PY'
import statistics as st, sys
times, runs, baseline = sys.argv[1:4]
rows = {}
for line in open(times):
    key, wall, rss = line.split()
    rows.setdefault(key, []).append((float(wall), int(rss)))
med = {k: st.median(w for w, _ in v) for k, v in rows.items()}
print(f"Median of {runs} rounds, alternated. this: the build of this tree; baseline: {baseline}.\n")
print("| job | this s | baseline s | this / baseline | this RSS MiB | baseline RSS MiB |")
print("|---|--:|--:|--:|--:|--:|")
for job in ("hero", "corpus"):
    t, b = med[f"{job}/this"], med[f"{job}/baseline"]
    rss = lambda k: st.median(r for _, r in rows[k]) / 1024
    print(f"| {job} | {t:.3f} | {b:.3f} | {t / b:.3f} | {rss(job + '/this'):.0f} | {rss(job + '/baseline'):.0f} |")
PY
  cat "$results/ab.md"
  exit 0
fi

hero_ours=("${ours[@]}" -uri hero.jpg)
hero_vips=("$here/peers.sh" vips-par "$corpus/hero.jpg" "$work/peer")
hero_magick=("$here/peers.sh" magick "$corpus/hero.jpg" "$work/peer")
hero_djpeg=(djpeg -outfile /dev/null "$corpus/hero.jpg")
corpus_ours=("${ours[@]}" "${uri_args[@]}")
corpus_vips=("$work/peer-loop.sh" "$here/peers.sh" vips-par "$corpus" "$work/peer" "${files[@]}")
corpus_magick=("$work/peer-loop.sh" "$here/peers.sh" magick "$corpus" "$work/peer" "${files[@]}")

# Resampling quality: plain full-image downscales of every corpus file, each made as usual (from its rung of the
# reduction ladder) and again with the hidden -from-full-resolution (Lanczos3 straight from the full decode, the
# reference), both lossless PNG, compared by PSNR. Writes "file width height dB" lines to $work/resample.
resample_quality() {
  local sizes=(320 480 640 800 1024 1280 1600 2048)
  python3 - "${sizes[@]}" >"$work/resample.json" <<'PY'
import json, sys
print(json.dumps({f"w{w}": {"size": f"{w},", "format": "png"} for w in sys.argv[1:]}))
PY
  make_config "$work/config-r.json" "$work/r-ours"
  make_config "$work/config-ref.json" "$work/r-ref"
  rm -rf "$work/r-ours" "$work/r-ref"
  "$bin" -config "$work/config-r.json" -instructions "$work/resample.json" -quiet "${uri_args[@]}" >"$work/r-report.json"
  "$bin" -config "$work/config-ref.json" -instructions "$work/resample.json" -quiet -from-full-resolution \
    "${uri_args[@]}" >/dev/null
  : >"$work/resample"
  for f in "${files[@]}"; do
    fw=$(vipsheader -f width "$corpus/$f")
    for w in "${sizes[@]}"; do
      ((w < fw)) || continue # downscales only
      rel=$f/full/$w,/0/color.png
      # compare prints the metric on stderr and exits 1 when the images differ; identical images give inf.
      db=$(compare -metric PSNR "$work/r-ours/$rel" "$work/r-ref/$rel" null: 2>&1 >/dev/null || true)
      printf '%s %s %s\n' "$f" "$w" "${db%% *}" >>"$work/resample"
    done
  done
}

# The table of resample_quality's lines: per width and overall, median and minimum PSNR.
resample_table() {
  python3 - "$work/resample" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for f, w, v in rows:
    by.setdefault(int(w), []).append((float(v), f))
fmt = lambda v: "identical" if v == float("inf") else f"{v:.1f}"
out = ["| width | files | median dB | min dB | lowest |", "|--:|--:|--:|--:|---|"]
for w in sorted(by):
    vals = sorted(by[w])
    out.append(f"| {w} | {len(vals)} | {fmt(st.median(v for v, _ in vals))} | {fmt(vals[0][0])} | {vals[0][1]} |")
every = sorted(v for vs in by.values() for v, _ in vs)
out.append(f"| all | {len(every)} | {fmt(st.median(every))} | {fmt(every[0])} | |")
reduced = [v for v in every if v != float("inf")]
if reduced:
    out.append(f"| all but identical | {len(reduced)} | {fmt(st.median(reduced))} | {fmt(reduced[0])} | |")
print("\n".join(out))
PY
}

# Zoomable images of the hero: a IIIF 3.0 Level 0 tile set (512 px tiles, JPEG quality 85) by iiif-process alone,
# with the 9-derivative set in the same run (one decode), and by libvips' dzsave with the same tile size and quality.
if [ "$mode" = tiles ]; then
  # An instruction set cannot be empty: the smallest derivative of the set rides along.
  echo '{"n": {"size": "!320,240", "format": "jpg"}}' >"$work/n.json"
  tiles_ours=("$bin" -config "$work/config.json" -instructions "$work/n.json" -quiet -tiles -uri hero.jpg)
  tiles_both=("${ours[@]}" -tiles -uri hero.jpg)
  tiles_vips=(vips dzsave "$corpus/hero.jpg" "$work/peer/hero" --layout iiif3 --tile-size 512 --overlap 0
    --suffix '.jpg[Q=85]')
  cat "$corpus/hero.jpg" >/dev/null
  count() { find "$1" -name '*.jpg' | wc -l; }
  timed warmup "${tiles_vips[@]}"
  files_vips=$(count "$work/peer")
  timed warmup "${tiles_ours[@]}"
  files_ours=$(count "$work/ours")
  rm -f "$work/times"
  say "timing: $RUNS rounds of 5 commands"
  for ((r = 1; r <= RUNS; r++)); do
    say "round $r/$RUNS"
    timed hero-tiles+n/iiif-process "${tiles_ours[@]}"
    timed hero-tiles/vips-dzsave "${tiles_vips[@]}"
    timed hero-tiles+9-derivatives/iiif-process "${tiles_both[@]}"
    # The floor under any tool that decodes the hero once: libjpeg-turbo's decode alone, and its entropy decode
    # alone (at 1/8 scale a progressive JPEG still reads every scan, but the inverse DCT is nearly free).
    timed hero-decode/djpeg djpeg -outfile /dev/null "$corpus/hero.jpg"
    timed hero-entropy-decode/djpeg-scale-1:8 djpeg -scale 1/8 -outfile /dev/null "$corpus/hero.jpg"
  done
  python3 - "$work/times" "$RUNS" "$files_ours" "$files_vips" >"$results/tiles.md" <<'PY'
import statistics as st, sys
times, runs, files_ours, files_vips = sys.argv[1:5]
rows = {}
for line in open(times):
    key, wall, rss = line.split()
    rows.setdefault(key, []).append((float(wall), int(rss)))
med = {k: st.median(w for w, _ in v) for k, v in rows.items()}
vips = med["hero-tiles/vips-dzsave"]
print(f"Median of {runs} rounds. hero: one 17.9 MP progressive JPEG; 512 px tiles, JPEG quality 85; iiif-process writes "
      f"{files_ours} JPEGs (tiles, sizes, full/max, and the 320 px n thumbnail: an instruction set cannot be empty), vips dzsave --layout iiif3 {files_vips}.\n")
print("| job | tool | median wall s | vs vips dzsave | peak RSS MiB |")
print("|---|---|--:|--:|--:|")
for key, v in rows.items():
    job, tool = key.split("/")
    print(f"| {job} | {tool} | {med[key]:.2f} | {med[key] / vips:.2f} | {st.median(r for _, r in v) / 1024:.0f} |")
PY
  cat "$results/tiles.md"
  exit 0
fi

if [ "$mode" = quality ]; then
  say "resampling quality"
  resample_quality
  resample_table
  exit 0
fi

# The same table for JPEG 2000 masters: each corpus file saved by libvips as the lossy, tiled JP2 an image server
# keeps; made as usual, rungs 1 and below come from the file's resolution level 1, the reference from its full
# decode.
if [ "$mode" = quality-jp2 ]; then
  say "resampling quality of the corpus as JPEG 2000"
  jp2_corpus=$work/jp2-corpus
  jp2_files=()
  for f in "${files[@]}"; do
    mkdir -p "$(dirname "$jp2_corpus/$f")"
    vips jp2ksave "$corpus/$f" "$jp2_corpus/${f%.*}.jp2" --tile-width 512 --tile-height 512
    jp2_files+=("${f%.*}.jp2")
  done
  corpus=$jp2_corpus
  files=("${jp2_files[@]}")
  uri_args=()
  for f in "${files[@]}"; do uri_args+=(-uri "$f"); done
  resample_quality
  resample_table
  exit 0
fi

# Scaling: the whole corpus, all nine derivatives and the services, restricted to the first N cores with taskset
# (both tools size their thread pools from the cores they may use), best of RUNS rounds per count. libvips runs
# as bench/vips_corpus.py: one process, a thread pool over every (file, derivative) pair, shrink-on-load.
scaling() {
  local pyvips_venv=${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/pyvips-3.2.0
  if ! "$pyvips_venv/bin/python" -c 'import pyvips' 2>/dev/null; then
    rm -rf "$pyvips_venv"
    python3 -m venv "$pyvips_venv"
    "$pyvips_venv/bin/pip" install -q pyvips==3.2.0
  fi
  local n=$(nproc) counts=() c=1
  if [ -n "${SCALING_CORES:-}" ]; then
    read -r -a counts <<<"$SCALING_CORES"
  else
    while ((c < n)); do counts+=("$c"); c=$((c * 2)); done
    counts+=("$n")
  fi
  : >"$work/scaling"
  for c in "${counts[@]}"; do
    ((c >= 1 && c <= n)) || { say "SCALING_CORES: $c is not between 1 and $n"; exit 2; }
    local cpus=0-$((c - 1))
    for ((r = 1; r <= RUNS; r++)); do
      for tool in iiif-process libvips; do
        rm -rf "$work/ours" "$work/peer"
        mkdir -p "$work/ours" "$work/peer"
        if [ $tool = iiif-process ]; then
          cmd=(taskset -c "$cpus" "${corpus_ours[@]}")
        else
          cmd=(env VIPS_CONCURRENCY=1 taskset -c "$cpus" "$pyvips_venv/bin/python" "$here/vips_corpus.py"
            "$corpus" "$work/peer" "${files[@]}")
        fi
        /usr/bin/time -f '%e %U %S %M' -o "$work/t" "${cmd[@]}" >/dev/null 2>"$work/err" ||
          { say "scaling $tool on $c cores failed:"; cat "$work/err" >&2; exit 1; }
        printf '%s %s %s\n' "$c" "$tool" "$(tail -n 1 "$work/t")" >>"$work/scaling"
      done
    done
  done
  python3 - "$work/scaling" "${#files[@]}" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    c, tool, wall, user, sys_, rss = line.split()
    key = (int(c), tool)
    row = (float(wall), float(user) + float(sys_), int(rss) / 1024)
    if key not in best or row[0] < best[key][0]:
        best[key] = row
files = int(sys.argv[2])
counts = sorted({c for c, _ in best})
base = {t: best[(counts[0], t)] for t in ("iiif-process", "libvips")}
print(f"Corpus ({files} files, 9 derivatives each; best of the rounds). Speed-up against {counts[0]} core(s); "
      "CPU-s per file is user + system time over the file count.")
print()
print("| cores | iiif-process s | speed-up | CPU-s | CPU-s per file | peak RSS MiB | libvips s | speed-up | CPU-s "
      "| peak RSS MiB | iiif-process / libvips |")
print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for c in counts:
    o, v = best[(c, "iiif-process")], best[(c, "libvips")]
    print(f"| {c} | {o[0]:.2f} | {base['iiif-process'][0] / o[0]:.1f}x | {o[1]:.1f} | {o[1] / files:.2f} | "
          f"{o[2]:.0f} | {v[0]:.2f} | {base['libvips'][0] / v[0]:.1f}x | {v[1]:.1f} | {v[2]:.0f} | "
          f"{o[0] / v[0]:.2f} |")
PY
}
if [ "$mode" = scaling ]; then
  say "scaling"
  scaling | tee "$results/scaling.md"
  exit 0
fi

# Warm-up (untimed): sources into the page cache, each hero command once; keep ours' hero report and derivatives.
cat "$corpus/hero.jpg" "$corpus"/photos/*.jpg >/dev/null
timed warmup "${hero_vips[@]}"
timed warmup "${hero_magick[@]}"
timed warmup "${hero_djpeg[@]}"
make_config "$work/config-q.json" "$work/q"
"$bin" -config "$work/config-q.json" -instructions "$instructions" -quiet -uri hero.jpg >"$work/hero-report.json"
rm -f "$work/times"

# 4. Rounds.
# Full-size derivatives of the hero, one format each: GIF's quantiser and WebP's encoder against PNG's deflate.
full_formats=(png gif webp)
for f in "${full_formats[@]}"; do printf '{"%s": {"format": "%s"}}' "$f" "$f" >"$work/full-$f.json"; done

say "timing: $RUNS rounds of $((7 + ${#full_formats[@]})) commands, ${#files[@]} files in the corpus job"
for ((r = 1; r <= RUNS; r++)); do
  say "round $r/$RUNS"
  timed hero/iiif-process "${hero_ours[@]}"
  timed hero/vips-par "${hero_vips[@]}"
  timed hero/magick "${hero_magick[@]}"
  timed hero/djpeg "${hero_djpeg[@]}"
  timed corpus/iiif-process "${corpus_ours[@]}"
  timed corpus/vips-par "${corpus_vips[@]}"
  timed corpus/magick "${corpus_magick[@]}"
  for f in "${full_formats[@]}"; do
    timed "hero-full-$f/iiif-process" "$bin" -config "$work/config.json" -instructions "$work/full-$f.json" -quiet \
      -uri hero.jpg
  done
done

# 5. Resizes of the hero, ours vs vips thumbnail at our output's dimensions.
say "quality"
: >"$work/quality"
python3 - "$work/hero-report.json" k b c z n >"$work/labels" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["hero.jpg"]
for label in sys.argv[2:]:
    w, h = r["dimensions"][label]
    print(label, w, h, r["uris"][label])
PY
while read -r label w h rel <&3; do
  a=$work/q/$rel
  b=$work/vips-$label.jpg
  vips thumbnail "$corpus/hero.jpg" "${b}[Q=85]" "$w" --height "$h" --size down
  # vips copies the source's EXIF and XMP (~49 KB here) into every thumbnail and iiif-process does not, so the
  # sizes are compared without them; the pixels are the same.
  vips thumbnail "$corpus/hero.jpg" "$work/vips-$label-strip.jpg[Q=85,strip]" "$w" --height "$h" --size down
  # The ceiling of this measure: two independent q85 encodes differ by their JPEG noise, so also measure vips'
  # own q85 thumbnail against its lossless one.
  vips thumbnail "$corpus/hero.jpg" "$work/vips-$label-lossless.png" "$w" --height "$h" --size down
  # A yardstick for the PSNR: how far ImageMagick's resize is from vips' at the same size.
  convert "$corpus/hero.jpg" -auto-orient -resize "${w}x$h!" -quality 85 "$work/magick-$label.jpg"
  read -r a_w a_h < <(identify -format '%w %h\n' "$a")
  read -r b_w b_h < <(identify -format '%w %h\n' "$b")
  if [ "$a_w $a_h" != "$w $h" ]; then
    say "ours' $label is ${a_w}x$a_h but its report says ${w}x$h"
    exit 1
  fi
  note=-
  if [ "$b_w $b_h" != "$w $h" ]; then
    note="vips made ${b_w}x$b_h, resized to ${w}x$h"
    convert "$b" -resize "${w}x$h!" -quality 85 "$work/vips-$label-fit.jpg"
    b=$work/vips-$label-fit.jpg
  fi
  # compare prints the metric on stderr and exits 1 when the images differ.
  psnr=$(compare -metric PSNR "$a" "$b" null: 2>&1 >/dev/null || true)
  yard=$(compare -metric PSNR "$work/magick-$label.jpg" "$b" null: 2>&1 >/dev/null || true)
  ceil=$(compare -metric PSNR "$work/vips-$label.jpg" "$work/vips-$label-lossless.png" null: 2>&1 >/dev/null || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "${w}x$h" "${psnr%% *}" "${yard%% *}" "${ceil%% *}" "$(stat -c %s "$a")" \
    "$(stat -c %s "$work/vips-$label-strip.jpg")" "$(stat -c %s "$work/vips-$label.jpg")" "$note" >>"$work/quality"
done 3<"$work/labels"

# 5b. Resampling quality of the reduction ladder.
say "resampling quality"
resample_quality

# 6. Rerun of a finished corpus job. -report stores the services' results, so a finished source is skipped
# without decoding it.
say "rerun"
: >"$work/rerun"
rm -rf "$work/ours"
mkdir -p "$work/ours"
/usr/bin/time -f '%e %M' -o "$work/t" "$bin" -config "$work/config.json" -instructions "$instructions" -quiet \
  -report "${uri_args[@]}" >/dev/null
printf 'first %s\n' "$(tail -n 1 "$work/t")" >>"$work/rerun"
for ((r = 1; r <= RUNS; r++)); do
  /usr/bin/time -f '%e %M' -o "$work/t" "$bin" -config "$work/config.json" -instructions "$instructions" -quiet \
    -report -skip-existing "${uri_args[@]}" >/dev/null
  printf 'rerun %s\n' "$(tail -n 1 "$work/t")" >>"$work/rerun"
done

# 7. Report.
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- 2>/dev/null || rev="$rev+dirty"
versions="$("$bin" --version 2>/dev/null || echo iiif-process) ($rev); vips $(vips --version | sed 's/^vips-//'); \
$(convert --version | head -n 1 | sed 's/^Version: //; s/ https.*//'); djpeg $(dpkg-query -W -f '${Version}' libjpeg-turbo-progs 2>/dev/null || echo '?')"
header="$(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), CPU ${cpu:-unknown}; $versions"
mp=$(cd "$corpus" && identify -format '%w %h\n' "${files[@]}" 2>/dev/null |
  python3 -c 'import sys; print(round(sum(int(w) * int(h) for w, h in map(str.split, sys.stdin)) / 1e6, 1))')
cp "$work/times" "$results/times.tsv"
resample_table >"$work/resample-table"
python3 - "$work/times" "$work/quality" "$work/rerun" "$RUNS" "${#files[@]}" "$mp" "$header" "$work/resample-table" >"$results/results.md" <<'PY'
import statistics as st, sys
times, quality, rerun, runs, nfiles, mp, header, resample = sys.argv[1:9]
rows = {}
for line in open(times):
    key, wall, rss = line.split()
    rows.setdefault(key, []).append((float(wall), int(rss)))
med = {k: st.median(w for w, _ in v) for k, v in rows.items()}
out = ["# iiif-process benchmark", "", header, "",
       f"Median of {runs} rounds, commands alternated within each round. hero: one 17.9 MP JPEG, 9 derivatives "
       f"(o k b c dc z n s ds). corpus: hero + {int(nfiles) - 1} photos ({mp} MP in all), one iiif-process run vs a loop "
       "running the peer per file. djpeg only decodes the hero (the floor). Ratio < 1: iiif-process is faster.", "",
       "| job | tool | median wall s | min-max s | iiif-process / tool | peak RSS MiB median | peak RSS MiB max |",
       "|---|---|--:|--:|--:|--:|--:|"]
for key in rows:
    job, tool = key.split("/")
    walls = [w for w, _ in rows[key]]
    rss = [r / 1024 for _, r in rows[key]]
    ratio = "-" if tool == "iiif-process" else f"{med[job + '/iiif-process'] / med[key]:.2f}"
    out.append(f"| {job} | {tool} | {med[key]:.2f} | {min(walls):.2f}-{max(walls):.2f} | {ratio} | "
               f"{st.median(rss):.0f} | {max(rss):.0f} |")
out += ["", "Peak RSS is that of the largest single process (GNU time); vips-par runs two vips processes at once.",
        "", "## Resizes of the hero: iiif-process vs `vips thumbnail hero.jpg out.jpg[Q=85] W --height H --size down`", "",
        "PSNR against vips' thumbnail at iiif-process' output size (both JPEG quality 85); for scale, the PSNR of "
        "ImageMagick's `-resize WxH!` (quality 85) against the same thumbnail, and of vips' own q85 thumbnail against its "
        "lossless one (the JPEG noise of one encode: two independent encodes cannot agree much better). Sizes: vips' file without the EXIF and "
        "XMP it copies from the source (`[Q=85,strip]`, same pixels), and as written.", "",
        "| label | size | PSNR dB iiif-process vs vips | PSNR dB magick vs vips | PSNR dB vips q85 vs lossless | iiif-process KiB | vips KiB stripped "
        "| iiif-process / vips | vips KiB as written | note |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
for line in open(quality):
    label, size, psnr, yard, ceil, a, b, b_meta, note = line.rstrip("\n").split("\t")
    a, b, b_meta = int(a), int(b), int(b_meta)
    out.append(f"| {label} | {size} | {psnr} | {yard} | {ceil} | {a / 1024:.0f} | {b / 1024:.0f} | {a / b:.2f} | "
               f"{b_meta / 1024:.0f} | {note} |")
first, reruns = None, []
for line in open(rerun):
    kind, wall, _ = line.split()
    if kind == "first":
        first = float(wall)
    else:
        reruns.append(float(wall))
out += ["", "## Resampling quality", "",
        "Plain downscales (`full/W,`, lossless PNG) of every corpus file narrower than its source, PSNR against the "
        "same derivative made with `-from-full-resolution` (Lanczos3 straight from the full decode).", ""]
out += open(resample).read().splitlines()
r = st.median(reruns)
out += ["", f"Rerun of the finished corpus job with `-skip-existing` (and `-report`): median {r:.2f} s over {len(reruns)} "
        f"runs vs {first:.2f} s for its first run, {100 * r / first:.1f}% of the first run's time.", ""]
print("\n".join(out))
PY
cat "$results/results.md"
