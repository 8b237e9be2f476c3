"""Training data at scale: prepare, tf.data and training steps on stand-in datasets of 0.2 M to 10 M drawings.

    .venv/bin/python bench/training_scale.py                        # 1x, 10x, 50x (~16 GB free disk at 50x)
    .venv/bin/python bench/training_scale.py --scales 1 10 --steps 100

SYNTHETIC, FOR SCALE ONLY: the stand-in data repeats every drawing of the shared ``numpy_bitmap``
categories k times (same 78 categories, k times the drawings per category, so each category's file
grows as the real dataset's do). No model trained on it means anything; it measures time, memory
and disk. For each scale it runs, each in its own process, sampling the resident memory of the
process and its children every 0.2 s:

- ``python -m training.prepare --kinds bitmap`` (two worker processes): wall time, drawings/s, peak RSS
  (main + workers, summed), shard size on disk;
- the training input pipeline alone (``training.shards``: interleave, shuffle, parse, augment, class
  weights) for a fixed number of batches: drawings/s;
- the shipped CNN's training steps on that pipeline (``keras fit`` for a fixed number of steps):
  steps/s, drawings/s, peak RSS.

The work folder (default under /tmp) is deleted scale by scale and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.harness import REPO, rss_mb, tree

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH = 128


def make_standin(source: Path, out: Path, factor: int) -> int:
    """Write ``numpy_bitmap/<category>.npy`` with every drawing of ``source`` repeated ``factor`` times."""
    folder = out / "numpy_bitmap"
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in sorted((source / "numpy_bitmap").glob("*.npy")):
        rows = np.load(path, mmap_mode="r")
        n = len(rows) * factor
        with open(folder / path.name, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, 784)})
            for _ in range(factor):  # one copy of the file at a time: the bench itself stays small
                f.write(np.ascontiguousarray(rows).tobytes())
        total += n
    return total


def run_measured(cmd: list[str]) -> tuple[float, float, str, float]:
    """Run ``cmd``; (wall seconds, peak RSS in MB of it and its children summed, stdout, CPU seconds).

    CPU seconds (user + system of the command and every process it waited for) do not depend on
    how many other jobs share the machine; wall time does.
    """
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    peak = 0
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, rss_mb(tree(proc)))
        time.sleep(0.2)
    reader.join()
    wall = time.monotonic() - start
    out = "".join(lines)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-3000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, peak, out, usage.ru_utime + usage.ru_stime - cpu0


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------
# Child processes: the input pipeline alone, and training steps on it
# ------------------------------------------------------------------------------------------------


def child(kind: str, shard_dir: str, steps: int, warmup: int) -> None:
    import keras

    from training import shards
    from training.cnn import make_augmenter, make_deepdraw
    from training.fitting import weights_for_counts

    keras.utils.set_random_seed(0)
    data = shards.ShardSet(shard_dir, "bitmap")
    weights = weights_for_counts(data.class_counts("train"), 0.5)
    ds = data.bitmaps("train", BATCH, shuffle=True, seed=0, repeat=True, augment=make_augmenter(), weights=weights)
    if kind == "data":
        it = iter(ds)
        for _ in range(warmup):
            next(it)
        t0 = time.perf_counter()
        for _ in range(steps):
            next(it)
        seconds = time.perf_counter() - t0
    else:
        model = make_deepdraw(len(data.classes))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(ds, epochs=1, steps_per_epoch=warmup, verbose=0)  # tracing and the first batches
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
        seconds = time.perf_counter() - t0
    print("RESULT " + json.dumps({"steps": steps, "seconds": seconds}))


def child_result(out: str) -> dict:
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def measure(factor: int, args: argparse.Namespace) -> dict:
    work = args.work_dir / f"x{factor}"
    shutil.rmtree(work, ignore_errors=True)
    src = work / "standin"
    t0 = time.monotonic()
    drawings = make_standin(args.data_dir, src, factor)
    print(f"x{factor}: stand-in of {drawings:,} drawings written in {time.monotonic() - t0:.0f} s", flush=True)
    shard_dir = work / "shards"
    py = sys.executable
    prepare = [py, "-m", "training.prepare", "--data-dir", str(src), "--out", str(shard_dir), "--kinds", "bitmap"]
    load = os.getloadavg()[0]
    wall, rss, _, cpu = run_measured([*prepare, "--workers", str(args.workers)])
    row = {
        "scale": f"{factor}x",
        "drawings": drawings,
        "load": load,
        "prepare_s": wall,
        "prepare_per_s": drawings / wall,
        "prepare_per_cpu_s": drawings / cpu,
        "prepare_rss_mb": rss,
        "disk_gb": du(shard_dir) / 1e9,
    }
    print(f"x{factor}: prepare {wall:.0f} s, {drawings / wall:,.0f} drawings/s, peak RSS {rss:.0f} MB", flush=True)
    script = str(Path(__file__).resolve())
    base = [py, script, "--child-shards", str(shard_dir), "--warmup", str(args.warmup)]
    _, data_rss, out, _ = run_measured([*base, "--child", "data", "--steps", str(args.data_steps)])
    result = child_result(out)
    row["data_per_s"] = result["steps"] * BATCH / result["seconds"]
    row["data_rss_mb"] = data_rss
    _, train_rss, out, _ = run_measured([*base, "--child", "train", "--steps", str(args.steps)])
    result = child_result(out)
    row["train_steps_per_s"] = result["steps"] / result["seconds"]
    row["train_per_s"] = row["train_steps_per_s"] * BATCH
    row["train_rss_mb"] = train_rss
    print(f"x{factor}: " + json.dumps(row), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return row


def table(rows: list[dict], args: argparse.Namespace) -> str:
    head = (
        "| stand-in (synthetic) | drawings | load avg. | prepare wall | prepare drawings/s (per CPU-s) "
        "| prepare peak RSS | shards on disk | tf.data alone drawings/s | training steps/s (drawings/s) "
        "| tf.data ÷ training | training peak RSS |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['scale']} | {r['drawings']:,} | {r['load']:.1f} | {r['prepare_s']:.0f} s "
            f"| {r['prepare_per_s']:,.0f} ({r['prepare_per_cpu_s']:,.0f}) "
            f"| {r['prepare_rss_mb']:,.0f} MB | {r['disk_gb']:.2f} GB | {r['data_per_s']:,.0f} "
            f"| {r['train_steps_per_s']:.2f} ({r['train_per_s']:,.0f}) | {r['data_per_s'] / r['train_per_s']:.1f}× "
            f"| {r['train_rss_mb']:,.0f} MB |"
        )
    first, last = rows[0], rows[-1]
    lines.append("")
    lines.append(
        f"Batch {BATCH}; {args.steps} training steps and {args.data_steps} input batches per scale after "
        f"{args.warmup} warm-up; prepare with {args.workers} worker processes; load avg. = the machine's "
        f"1-minute load (on {os.cpu_count()} cores) when prepare started. Peak RSS {last['scale']} ÷ "
        f"{first['scale']}: prepare {last['prepare_rss_mb'] / first['prepare_rss_mb']:.2f}×, training "
        f"{last['train_rss_mb'] / first['train_rss_mb']:.2f}×, input pipeline alone "
        f"{last['data_rss_mb'] / first['data_rss_mb']:.2f}×."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "quickdraw")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/deepdraw-training-scale"))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--steps", type=int, default=150, help="training steps measured per scale")
    parser.add_argument("--data-steps", type=int, default=600, help="input batches measured per scale")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", choices=["data", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--child-shards", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.child_shards, args.steps, args.warmup)
        return
    if not (args.data_dir / "numpy_bitmap").is_dir():
        sys.exit(f"no numpy_bitmap/ in {args.data_dir}")
    rows = []
    try:
        for factor in args.scales:
            rows.append(measure(factor, args))
    finally:
        shutil.rmtree(args.work_dir, ignore_errors=True)
    print()
    print(table(rows, args))


if __name__ == "__main__":
    main()
