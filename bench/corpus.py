#!/usr/bin/env python3
"""Generate a deterministic static-site corpus for the benchmarks.

    corpus.py OUT_DIR FILES [--seed N] [--big-mib M]

The same seed and size always give the same bytes. The mix looks like a built site:
- HTML pages (5-50 KB) in nested section directories, some with index.html;
- fingerprinted CSS and JS bundles;
- images (20-500 KB) and fonts, as incompressible bytes;
- a few files over the multipart threshold (M MiB each, default 70);
- names with spaces and Unicode.
It prints one JSON line: {"files": ..., "bytes": ...}.
"""

import argparse
import hashlib
import json
import os
import random
import sys

WORDS = ("harbour tide sail mast keel rope anchor chart compass bow stern deck hull wave "
         "current reef lighthouse voyage crew cargo port starboard galley knot").split()
SECTIONS = ["blog", "docs", "news", "guides", "reference", "team", "events", "archive"]
ODD_NAMES = ["read me.html", "café/menu.html", "日本語/ページ.html", "über uns/index.html", "a+b/plus.html"]


def html_page(rng, title, size):
    words = []
    total = 0
    while total < size:
        word = rng.choice(WORDS)
        words.append(word)
        total += len(word) + 1
    body = " ".join(words)
    paragraphs = "\n".join(f"<p>{body[i:i + 400]}</p>" for i in range(0, len(body), 400))
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
            f"<link rel=stylesheet href=/assets/site.css></head><body><h1>{title}</h1>\n{paragraphs}\n</body></html>\n").encode()


def noise(rng, size):
    # Incompressible, deterministic bytes: a hash chain is fast enough in pure Python.
    out = bytearray()
    seed = rng.getrandbits(64).to_bytes(8, "little")
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "little")).digest() * 32
        counter += 1
    return bytes(out[:size])


def plan(files, rng, big_mib):
    """Yield (relative path, kind, size) for `files` files."""
    big = max(1, files // 5000) if files >= 2000 else 0
    fixed = [("assets/site.%s.css" % hashlib.md5(str(files).encode()).hexdigest()[:8], "css", 40_000),
             ("assets/app.%s.js" % hashlib.sha1(str(files).encode()).hexdigest()[:8], "js", 120_000),
             ("assets/site.css", "css", 40_000)]
    fixed += [(f"assets/fonts/font-{i}.woff2", "font", 60_000 + i * 1000) for i in range(4)]
    fixed += [(name, "html", 8_000) for name in ODD_NAMES]
    fixed += [(f"media/video-{i}.mp4", "big", big_mib * 1024 * 1024) for i in range(big)]
    yield from fixed[:files]
    remaining = files - min(files, len(fixed))
    for i in range(remaining):
        section = SECTIONS[i % len(SECTIONS)]
        group = (i // len(SECTIONS)) // 50
        roll = rng.random()
        if roll < 0.66:
            yield f"{section}/{group:04d}/page-{i}/index.html", "html", rng.randint(5_000, 50_000)
        elif roll < 0.74:
            yield f"{section}/{group:04d}/item-{i}.html", "html", rng.randint(5_000, 50_000)
        elif roll < 0.85:
            # Log-uniform over 20-500 KB: many thumbnails, few large photos.
            yield f"images/{section}/{group:04d}/img-{i}.webp", "image", int(20_000 * 25 ** rng.random())
        else:
            yield f"assets/chunks/chunk-{i}.{hashlib.md5(str(i).encode()).hexdigest()[:8]}.js", "js", rng.randint(2_000, 60_000)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("files", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--big-mib", type=int, default=70)
    args = parser.parse_args()
    rng = random.Random(args.seed * 1_000_003 + args.files)
    total = 0
    count = 0
    for rel, kind, size in plan(args.files, rng, args.big_mib):
        path = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind == "html":
            data = html_page(rng, rel, size)
        elif kind in ("css", "js"):
            data = ("/* %s */\n" % rel + "a{b:c}\n" * (size // 7)).encode()
        else:
            data = noise(rng, size)
        with open(path, "wb") as f:
            f.write(data)
        total += len(data)
        count += 1
    json.dump({"files": count, "bytes": total}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
