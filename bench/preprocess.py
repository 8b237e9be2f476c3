"""Preprocessing speed and fidelity, today's ``sketch/`` against an earlier commit's, in one run.

    .venv/bin/python bench/preprocess.py [--baseline REV] [--shared ../shared/quickdraw] [--repeat N]

Per-stage medians (parse, normalise, render, sequence, whole drawing) for the median official raw
drawing of the fixtures (about 180 points) and for the largest official ones, and the 400x400 canvas
PNG path; both versions timed in alternating blocks, so that machine load hits them alike. Then
fidelity against Google's own bitmaps: every stroke/bitmap pair in the fixtures, and, when
``--shared`` exists, every pair that can be found there (``pairs/``, and ``simplified_kaggle`` lines
whose rendering matches a ``numpy_bitmap`` row of the same category: see ``match_pairs``).
The baseline is read with ``git show REV:sketch/...`` into a throwaway package.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.harness import FIXTURES, REPO, read_ndjson

BASELINE = "ab034052"  # main before the cairo renderer and the vectorised normalisation
PAIR_CATEGORIES = ("cat", "airplane", "dog")
# Grey levels, through the baseline's renderer (so the renderer under test does not pick its own pairs):
# the same drawings scored at most 2.5 there, the nearest different drawing 6.2.
MATCH_MAE = 4.0


def load_baseline(rev: str) -> object:
    """``sketch`` as it was at ``rev``, importable as ``sketch_baseline``."""
    root = Path(tempfile.mkdtemp(prefix="sketch_baseline_"))
    pkg = root / "sketch_baseline"
    pkg.mkdir()
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{rev}:sketch"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in names:
        if name.endswith(".py"):
            src = subprocess.run(
                ["git", "show", f"{rev}:sketch/{name}"], cwd=REPO, check=True, capture_output=True
            ).stdout
            (pkg / name).write_bytes(src.replace(b"from sketch.", b"from sketch_baseline."))
    # Registered as a package of its own, without touching sys.path.
    spec = importlib.util.spec_from_file_location(
        "sketch_baseline", pkg / "__init__.py", submodule_search_locations=[str(pkg)]
    )
    sys.modules["sketch_baseline"] = package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    return {m: importlib.import_module(f"sketch_baseline.{m}") for m in ("strokes", "raster", "sequence", "image")}


def current() -> dict:
    return {m: importlib.import_module(f"sketch.{m}") for m in ("strokes", "raster", "sequence", "image")}


def stages(mods: dict, drawing: list) -> dict[str, Callable[[], object]]:
    s, r, q = mods["strokes"], mods["raster"], mods["sequence"]
    parsed = s.parse_strokes(drawing)
    norm = s.normalize(parsed)

    def whole() -> None:
        n = s.normalize(s.parse_strokes(drawing))
        r.render_simplified(n)
        q.normalized_to_sequence(n)

    return {
        "parse": lambda: s.parse_strokes(drawing),
        "normalise": lambda: s.normalize(parsed),
        "render": lambda: r.render_simplified(norm),
        "sequence": lambda: q.normalized_to_sequence(norm),
        "whole drawing": whole,
    }


def medians(old: Callable, new: Callable, repeat: int, block: int = 20) -> tuple[float, float, float, float]:
    """Median ms per call of each, wall clock and CPU time.

    The versions take turns in blocks of ``block`` calls, the first call of each block not counted:
    turns keep machine load fair to both, blocks keep one version from timing the other's cold caches.
    CPU time is printed too because this machine is shared: wall time then includes waiting for a core.
    """
    wall: tuple[list, list] = ([], [])
    cpu: tuple[list, list] = ([], [])
    for _ in range(max(repeat // block, 1)):
        for i, f in enumerate((old, new)):
            f()
            for _ in range(block):
                c0, t0 = time.process_time(), time.perf_counter()
                f()
                wall[i].append(time.perf_counter() - t0)
                cpu[i].append(time.process_time() - c0)
    return tuple(float(np.median(x)) * 1e3 for x in (wall[0], wall[1], cpu[0], cpu[1]))


def row(times: tuple[float, float, float, float]) -> str:
    wall_old, wall_new, cpu_old, cpu_new = times
    wall = f"{wall_old:.3f} | {wall_new:.3f} | {wall_old / wall_new:.1f}x"
    return f"{wall} | {cpu_old:.3f} | {cpu_new:.3f} | {cpu_old / cpu_new:.1f}x"


def canvas_png(drawing: list, size: int = 400, width: int = 12, margin: int = 40) -> bytes:
    """A drawing as a browser canvas would export it: black round pen on white, RGBA."""
    strokes = [np.array(s[:2], dtype=float).T for s in drawing]
    pts = np.concatenate(strokes)
    lo, ext = pts.min(0), float((pts.max(0) - pts.min(0)).max()) or 1.0
    img = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    for s in strokes:
        p = [tuple((q - lo) * (size - 2 * margin) / ext + margin) for q in s]
        if len(p) > 1:
            draw.line(p, fill=(0, 0, 0, 255), width=width, joint="curve")
        for x, y in p:
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=(0, 0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def fidelity(render: Callable, pairs: list[tuple[np.ndarray, list]]) -> str:
    """MAE (grey levels), share of bit-identical bitmaps, mean Pearson r against the official rows."""
    maes, same, rs = [], [], []
    for row, drawing in pairs:
        img = render(drawing).astype(float).ravel()
        ref = row.astype(float).ravel()
        maes.append(np.abs(img - ref).mean())
        same.append(bool((img == ref).all()))
        rs.append(np.corrcoef(img, ref)[0, 1])
    return f"MAE {np.mean(maes):5.3f} (max {np.max(maes):5.2f}), identical {np.mean(same):6.1%}, r {np.mean(rs):.4f}"


def fixture_pairs() -> tuple[list, list]:
    """(simplified pairs, raw pairs) from tests/fixtures: ``pairs/`` and the matched Kaggle lines."""
    simplified, raw = [], []
    for c in PAIR_CATEGORIES:
        rows = np.load(FIXTURES / "pairs" / f"{c}.npy")
        simplified += [
            (b, line["drawing"])
            for b, line in zip(rows, read_ndjson(FIXTURES / "pairs" / f"{c}.simplified.ndjson.gz"), strict=True)
        ]
        raw += [
            (b, line["drawing"])
            for b, line in zip(
                rows, read_ndjson(FIXTURES / "pairs" / f"{c}.raw.ndjson.gz"), strict=False
            )  # the airplane raw file holds 23 of the 25
        ]
    rows = np.load(FIXTURES / "pairs_matched.npy")
    simplified += [
        (b, line["drawing"]) for b, line in zip(rows, read_ndjson(FIXTURES / "pairs_matched.ndjson.gz"), strict=True)
    ]
    return simplified, raw


def match_pairs(shared: Path, render: Callable) -> list[dict]:
    """Kaggle simplified lines whose rendering matches a numpy_bitmap row of their category.

    The Kaggle copy has no key_id, so the drawing itself is the key: the nearest official row by
    squared distance, kept when it is the same drawing (mean absolute error under ``MATCH_MAE``).
    """
    found = []
    for path in sorted((shared / "simplified_kaggle").glob("*.ndjson.gz")):
        word = path.name.removesuffix(".ndjson.gz")
        rows = [
            np.load(p)
            for p in (shared / f / f"{word}.npy" for f in ("numpy_bitmap", "numpy_bitmap_samples"))
            if p.exists()
        ]
        if not rows:
            continue
        bitmaps = np.concatenate(rows).astype(np.float32)
        lines = read_ndjson(path)
        drawn = np.stack([render(line["drawing"]).ravel() for line in lines]).astype(np.float32)
        d2 = (drawn**2).sum(1)[:, None] + (bitmaps**2).sum(1)[None, :] - 2 * drawn @ bitmaps.T
        for i, j in enumerate(d2.argmin(axis=1)):
            if np.abs(drawn[i] - bitmaps[j]).mean() < MATCH_MAE:
                found.append(
                    {
                        "word": word,
                        "drawing": lines[i]["drawing"],
                        "kaggle_line": i,
                        "bitmap": bitmaps[j].astype(np.uint8),
                    }
                )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "quickdraw")
    parser.add_argument("--repeat", type=int, default=400, help="timed calls per stage and version")
    parser.add_argument(
        "--write-matched", action="store_true", help="rewrite tests/fixtures/pairs_matched.* from --shared"
    )
    args = parser.parse_args()

    old, new = load_baseline(args.baseline), current()
    print(f"# bench/preprocess.py  baseline {args.baseline} vs working tree  ({time.strftime('%Y-%m-%d %H:%M')})")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}; median ms per call\n")

    raw = [line["drawing"] for c in PAIR_CATEGORIES for line in read_ndjson(FIXTURES / "pairs" / f"{c}.raw.ndjson.gz")]
    largest = [line["drawing"] for line in read_ndjson(FIXTURES / "strokes_largest_raw.ndjson.gz")]
    points = [sum(len(s[0]) for s in d) for d in raw]
    median = raw[int(np.argsort(points)[len(points) // 2])]
    cases = [(f"median raw drawing ({sum(len(s[0]) for s in median)} points)", median)]
    cases += [(f"largest official raw drawing ({sum(len(s[0]) for s in d)} points)", d) for d in largest[:2]]
    print("| drawing | stage | baseline ms | now ms | speed-up | baseline CPU ms | now CPU ms | CPU speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, drawing in cases:
        for (stage, f_old), f_new in zip(stages(old, drawing).items(), stages(new, drawing).values(), strict=True):
            print(f"| {name} | {stage} | {row(medians(f_old, f_new, args.repeat))} |")
    png = canvas_png(read_ndjson(FIXTURES / "pairs" / "cat.simplified.ndjson.gz")[0]["drawing"])
    times = medians(
        lambda: old["image"].image_bytes_to_bitmap(png),
        lambda: new["image"].image_bytes_to_bitmap(png),
        max(args.repeat // 4, 20),
    )
    print(f"| 400x400 canvas PNG, pen 12 | PNG bytes -> 28x28 | {row(times)} |")

    print("\nFidelity against Google's numpy_bitmap rows: mean absolute error in grey levels (worst drawing),")
    print("share of bit-identical bitmaps, mean Pearson r")
    simplified, raw_pairs = fixture_pairs()

    def render_with(mods: dict) -> Callable:
        return lambda d: mods["raster"].render_simplified(mods["strokes"].parse_strokes(d))

    def pipeline(mods: dict) -> Callable:
        return lambda d: mods["raster"].strokes_to_bitmap(mods["strokes"].parse_strokes(d))

    def compare(label: str, f_old: Callable, f_new: Callable, pairs: list) -> None:
        print(f"{label}\n  baseline: {fidelity(f_old, pairs)}\n  now:      {fidelity(f_new, pairs)}")

    compare(f"fixtures, {len(simplified)} simplified strokes -> render", render_with(old), render_with(new), simplified)
    compare(f"fixtures, {len(raw_pairs)} raw strokes -> normalise + render", pipeline(old), pipeline(new), raw_pairs)
    for pen in (4, 8, 12, 20, 28):
        images = [(row, canvas_png(d, width=pen)) for row, d in simplified[:75]]
        label = f"fixtures, 75 canvas PNGs 400x400, pen {pen} -> image path"
        compare(label, old["image"].image_bytes_to_bitmap, new["image"].image_bytes_to_bitmap, images)
    if args.shared.is_dir():
        shared_pairs, shared_raw = [], []
        for c in PAIR_CATEGORIES:
            rows = np.load(args.shared / "pairs" / f"{c}.npy")
            for kind, out in (("simplified", shared_pairs), ("raw", shared_raw)):
                lines = read_ndjson(args.shared / "pairs" / f"{c}.{kind}.ndjson.gz")
                out += [(b, line["drawing"]) for b, line in zip(rows, lines, strict=False)]
        matched = match_pairs(args.shared, render_with(old))
        shared_pairs += [(m["bitmap"], m["drawing"]) for m in matched]
        label = (
            f"shared: pairs/ + {len(matched)} Kaggle lines matched to numpy_bitmap rows, simplified strokes -> render"
        )
        compare(label, render_with(old), render_with(new), shared_pairs)
        compare("shared: pairs/ raw strokes -> normalise + render", pipeline(old), pipeline(new), shared_raw)
        if args.write_matched:
            np.save(FIXTURES / "pairs_matched.npy", np.stack([m["bitmap"] for m in matched]))
            text = "".join(json.dumps({k: m[k] for k in ("word", "kaggle_line", "drawing")}) + "\n" for m in matched)
            (FIXTURES / "pairs_matched.ndjson.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
            print(f"  wrote tests/fixtures/pairs_matched.* ({len(matched)} pairs)")


if __name__ == "__main__":
    main()
