#!/usr/bin/env python3
"""The nine-derivative set of bench/peers.sh over many files, in libvips' best use: one process, every
(file, derivative) pair a task in a thread pool as wide as the cores this process may use, each a
shrink-on-load `thumbnail`. The scaling benchmark runs it under taskset beside iiif-process.

Usage: vips_corpus.py SRC_DIR OUT_DIR FILE...
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pyvips

Q = 85
# label: (width, height, crop) as in bench/peers.sh; grey marks its b-w variants.
SET = {
    "k": (2048, 1536, None), "b": (1024, 768, None), "c": (800, 600, None), "dc": (800, 600, "grey"),
    "z": (640, 480, None), "n": (320, 240, None), "s": (320, 320, "attention"),
    "ds": (320, 320, "attention grey"),
}


def one(src, out, label):
    w, h, how = SET.get(label, (None, None, None))
    if label == "o":
        img = pyvips.Image.new_from_file(src).autorot()
    else:
        kw = {"height": h}
        if how and "attention" in how:
            kw["crop"] = "attention"
        else:
            kw["size"] = "down"
        img = pyvips.Image.thumbnail(src, w, **kw)
        if how and "grey" in how:
            img = img.colourspace("b-w")
    img.write_to_file(f"{out}/{label}.jpg", Q=Q)


def main():
    src_dir, out_dir, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    cores = len(os.sched_getaffinity(0))
    # libvips' own worker threads per operation: one, since the pool already fills every core.
    pyvips.cache_set_max(0)
    tasks = []
    for f in files:
        out = os.path.join(out_dir, f)
        os.makedirs(out, exist_ok=True)
        for label in ["o", *SET]:
            tasks.append((os.path.join(src_dir, f), out, label))
    with ThreadPoolExecutor(max_workers=cores) as pool:
        for r in [pool.submit(one, *t) for t in tasks]:
            r.result()


if __name__ == "__main__":
    main()
