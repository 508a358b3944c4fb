#!/usr/bin/env bash
# What a JPEG 2000's lower resolution levels give a small derivative, against Lanczos3 from the file's full
# decode: the measure behind making a JP2's rungs below the full image from its level 1 and Lanczos3 halvings of
# it (`bench/run.sh quality-jp2` measures those) rather than from deeper levels. Each FILE is saved with
# `vips jp2ksave` (lossy, 512x512 tiles); for each width of 320 to 2048 px below its own, the deepest level at
# least as large as the output (what libvips' thumbnail loads) and the deepest at least twice as large (the
# ladder's headroom) are decoded with opj_decompress -r, placed where the full image lies on them (a level's
# samples sit on the even pixels of the level above) and resized by Lanczos3 (Pillow), then compared by PSNR.
# Needs vips (libvips-tools), opj_decompress (libopenjp2-tools) and python3; Pillow and NumPy are installed in a
# cached virtualenv. Usage (from anywhere): bench/jp2-levels.sh FILE...   (default: the corpus' hero and photos)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
corpus=${BENCH_CORPUS:-$here/../bench-corpus}
(($#)) || set -- "$corpus/hero.jpg" "$corpus"/photos/*.jpg
venv=${XDG_CACHE_HOME:-$HOME/.cache}/iiif-process/pillow-13.0.0
if ! "$venv/bin/python" -c 'import PIL, numpy' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pillow==13.0.0 numpy==2.4.6
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "| file | width | level >= output | dB | level >= 2x output | dB |"
echo "|---|--:|--:|--:|--:|--:|"
for f in "$@"; do
  vips jp2ksave "$f" "$work/m.jp2" --tile-width 512 --tile-height 512 2>/dev/null
  "$venv/bin/python" - "$work/m.jp2" "$(basename "$f")" "$work" <<'PY' | tee -a "$work/rows"
import math, subprocess, sys
import numpy as np
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
jp2, name, work = sys.argv[1:4]
levels = {}
def level(k):
    if k not in levels:
        out = f"{work}/r{k}.png"
        subprocess.run(["opj_decompress", "-i", jp2, "-o", out, "-r", str(k)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        levels[k] = Image.open(out).convert("RGB")
    return levels[k]
def psnr(a, b):
    mse = ((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2).mean()
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)
full = level(0)
W, H = full.size
for w in [320, 480, 640, 800, 1024, 1280, 1600, 2048]:
    if w >= W:
        continue
    h = round(H * w / W)
    ref = full.resize((w, h), Image.LANCZOS)
    need = max(w / W, h / H)
    row = [name, str(w)]
    for headroom in (1, 2):
        k = 0
        while need * headroom * 2 ** (k + 1) <= 1 + 1e-9:
            k += 1
        if k == 0:
            row += ["full", "-"]
            continue
        lv = level(k)
        s = 1 / 2 ** k
        o = 0.5 - 0.5 * s  # the centre of level pixel j is the centre of full pixel j * 2^k
        lw, lh = lv.size
        # The last column and row repeated once: the image's right and bottom edges map up to half a pixel past it.
        pad = Image.new("RGB", (lw + 1, lh + 1))
        pad.paste(lv, (0, 0))
        pad.paste(lv.crop((lw - 1, 0, lw, lh)), (lw, 0))
        pad.paste(pad.crop((0, lh - 1, lw + 1, lh)), (0, lh))
        got = pad.resize((w, h), Image.LANCZOS, box=(o, o, o + W * s, o + H * s))
        row += [str(k), f"{psnr(got, ref):.1f}"]
    print("| " + " | ".join(row) + " |")
PY
  rm -f "$work"/*.png
done
# Per column, over the downscales made from a level: how many, the median and the lowest.
python3 - "$work/rows" <<'PY'
import statistics as st, sys
cols = {"level >= output": [], "level >= 2x output": []}
for line in open(sys.argv[1]):
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    for (name, vals), (lv, db) in zip(cols.items(), [(c[2], c[3]), (c[4], c[5])]):
        if lv != "full":
            vals.append(float(db))
print()
for name, vals in cols.items():
    print(f"{name}: {len(vals)} downscales, median {st.median(vals):.1f} dB, lowest {min(vals):.1f} dB")
PY
