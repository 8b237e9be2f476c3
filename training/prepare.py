"""Official Quick, Draw! files -> sharded TFRecord files and a manifest, once; training streams them.

    python -m training.prepare --data-dir ../shared/quickdraw --out data/shards/quickdraw
    python -m training.prepare --data-dir gs://bucket/quickdraw --out gs://bucket/shards   # needs TF's gs plugin

Two kinds of record, each in its own shards, one category per shard so categories convert in
parallel and a training run can pick any subset:

- ``bitmap/<split>/<category>-NNNNN.tfrecord`` from ``numpy_bitmap/*.npy``: ``bitmap`` (784 bytes).
- ``strokes/<split>/<category>-NNNNN.tfrecord`` from every stroke folder the RNN reads, in this
  order: ``simplified/``, ``raw/``, ``simplified_kaggle/`` (``.ndjson[.gz]``), ``sketchrnn/`` (``.npz``),
  ``strokes_extra/`` (``.ndjson[.gz]``), normalised by ``sketch.strokes.normalize`` (the RNN's and the
  API's form), deduplicated by ``key_id`` then by content (``training.stroke_data.unique_drawings``):
  ``points`` (uint8 x, y pairs, 0-255), ``stroke_lengths``. A cap keeps a category's drawings of
  smallest ``training.data.cap_order``, as the RNN always has.

A record holds no label: its shard's category is the label, numbered by the classes a training run
picks, so the same shards serve any subset of categories.

The split is ``training.data.split_of`` on the same content as before (bitmap bytes; normalised
strokes), decided here once. Streaming: a bitmap file is read in chunks of rows, an ndjson file
line by line (a sketch-rnn ``.npz`` whole: one category's file), so memory does not grow with a
category's size (beyond one set of 8-byte content hashes per stroke category, for deduplication
and the cap; a capped stroke category is read twice). Resumable: a shard is written to ``.tmp`` and
renamed when complete, a finished shard is not written again, and a category whose sources have
not changed since its last complete run (``_done/<kind>/<category>.json``) is skipped. The
manifest is written last, atomically, and lists every shard: training reads only what it lists,
so a half-written shard never reaches it. Paths go through ``tf.io.gfile``: ``gs://`` and ``s3://``
work where TensorFlow's file-system plugins are installed (``tensorflow-io`` for s3).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

from training.data import SPLITS, TEST_PERCENT, VAL_PERCENT, DataError, open_binary, select_categories
from training.records import (
    AUGMENTED_COPIES,
    KINDS,
    STROKES_VERSION,
    ShardWriter,
    absolute,
    bitmap_items,
    default_shard_dir,
    fs,
    is_rendered,
    is_shard_dir,
    join,
    list_sources,
    rendered_items,
)
from training.stroke_data import strokes_items

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FORMAT_VERSION = 1
SHARD_SIZE = 20_000  # records per shard: ~16 MB of bitmaps, many shards to interleave


def fingerprint(path: str) -> dict:
    """Cheap identity of a source file (size, mtime): decides whether a finished category is current."""
    stat = fs(path).stat(path)
    return {"size": int(stat.length), "mtime_ns": int(stat.mtime_nsec)}


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open_binary(path) as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _done_path(job: dict) -> str:
    return join(job["out_dir"], "_done", job["kind"], f"{job['category'].replace('/', '_')}.json")


def _options(job: dict) -> dict:
    options = {"max_per_class": job["max_per_class"], "shard_size": job["shard_size"], "format": FORMAT_VERSION}
    if job["kind"] == "strokes":
        options["strokes_version"] = STROKES_VERSION  # older stroke shards are not current
    elif is_rendered(job["files"]):
        options["augmented_copies"] = job["augmented_copies"]
    return options


def finished_entry(job: dict) -> dict | None:
    """The manifest entry of a category whose shards are complete and current, else None."""
    done_path = _done_path(job)
    gfile = fs(done_path)
    if not gfile.exists(done_path):
        return None
    entry = json.loads(gfile.GFile(done_path).read())
    return entry if _is_current(entry, _options(job), {f: fingerprint(f) for f in job["files"]}) else None


def convert_category(job: dict) -> dict:
    """Write one category's shards (run in a worker process); returns its manifest entry."""
    kind, category, files, out_dir = job["kind"], job["category"], job["files"], job["out_dir"]
    done_path = _done_path(job)
    gfile = fs(done_path)
    sources = {f: fingerprint(f) for f in files}
    options = _options(job)
    # Shards of an interrupted run are reused only when it had the same sources and options.
    started_path = done_path.replace("/_done/", "/_started/")
    started = json.dumps({"options": options, "sources": sources}, sort_keys=True)
    if gfile.exists(done_path) or (gfile.exists(started_path) and gfile.GFile(started_path).read() != started):
        for split in SPLITS:
            for old in gfile.glob(join(out_dir, kind, split, f"{category.replace('/', '_')}-*.tfrecord")):
                gfile.remove(old)
        if gfile.exists(done_path):
            gfile.remove(done_path)
    for folder in [join(out_dir, kind, s) for s in SPLITS] + [join(out_dir, "_started", kind)]:
        gfile.makedirs(folder)
    _write_atomic(started_path, started)
    t0 = time.monotonic()
    writers = {s: ShardWriter(out_dir, kind, s, category, job["shard_size"]) for s in SPLITS}
    skipped: dict[str, int] = {}
    per_source: dict[str, int] = {}
    if kind == "bitmap" and is_rendered(files):
        items = rendered_items(files, job["max_per_class"], job["augmented_copies"])
    elif kind == "bitmap":
        items = bitmap_items(files, job["max_per_class"])
    else:
        items = strokes_items(files, job["max_per_class"], skipped, per_source)
    for split, make in items:
        writer = writers[split]
        writer.add(None if writer.done else make())
    for writer in writers.values():
        writer.flush()
    entry = {
        "category": category,
        "options": options,
        "counts": {s: w.count for s, w in writers.items()},
        "shards": {s: w.files for s, w in writers.items()},
        "skipped": skipped,
        "per_source": per_source,
        "sources": {f: {**sources[f], "sha256": _file_sha256(f)} for f in files},
        "seconds": round(time.monotonic() - t0, 2),
        "reused_shards": sum(w.reused for w in writers.values()),
    }
    gfile.makedirs(join(out_dir, "_done", kind))
    _write_atomic(done_path, json.dumps(entry, indent=1))
    return entry


def _is_current(entry: dict, options: dict, sources: dict) -> bool:
    """A finished category is current when its options match and its sources are the same files
    (same size, and the same mtime or else the same content)."""
    old = entry["sources"]
    if entry["options"] != options or {f: s["size"] for f, s in old.items()} != {
        f: s["size"] for f, s in sources.items()
    }:
        return False
    return all(old[f]["mtime_ns"] == s["mtime_ns"] for f, s in sources.items()) or all(
        old[f]["sha256"] == _file_sha256(f) for f in sources
    )


def _write_atomic(path: str, text: str) -> None:
    gfile = fs(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    with gfile.GFile(tmp, "w") as f:
        f.write(text)
    gfile.rename(tmp, path, overwrite=True)


def prepare(
    data_dir: str | Path,
    out_dir: str | Path,
    categories: list[str] | None = None,
    kinds: tuple[str, ...] = ("bitmap", "strokes"),
    max_per_class: int | None = None,
    workers: int = 2,
    shard_size: int = SHARD_SIZE,
    log=print,
    augmented_copies: int = AUGMENTED_COPIES,
) -> dict:
    """Convert (or bring up to date) the shards of every wanted category; returns the manifest.

    ``augmented_copies``: training re-renderings of each stroke drawing of a rendered category."""
    data_dir, out_dir = absolute(data_dir), str(out_dir)
    t0 = time.monotonic()
    jobs = []
    found: dict[str, dict[str, list[str]]] = {}
    for kind in kinds:
        try:
            available = list_sources(data_dir, kind)
        except DataError:
            if len(kinds) > 1:
                continue  # a folder with only bitmaps (or only strokes) is fine
            raise
        found[kind] = select_categories(available, categories)
    if not found:
        folders = [f + "/" for kind in kinds for f in KINDS[kind]]
        raise DataError(f"no data files in {data_dir} (looked in {', '.join(folders)})")
    for kind, wanted in found.items():
        for category in sorted(wanted):
            files = wanted[category]
            jobs.append(
                {
                    "kind": kind,
                    "category": category,
                    "files": files,
                    "out_dir": out_dir,
                    "max_per_class": max_per_class,
                    "shard_size": shard_size,
                    "augmented_copies": augmented_copies,
                    "size": sum(fingerprint(f)["size"] for f in files),
                }
            )
    jobs.sort(key=lambda j: -j["size"])  # largest first: the pool ends together
    fs(out_dir).makedirs(out_dir)
    finished = {id(j): finished_entry(j) for j in jobs}
    pending = [j for j in jobs if finished[id(j)] is None]
    converted: dict[int, dict] = {}
    if workers > 1 and len(pending) > 1:
        # spawn, not fork: TensorFlow's threads do not survive a fork.
        with ProcessPoolExecutor(min(workers, len(pending)), mp_context=get_context("spawn")) as pool:
            for job, entry in zip(pending, pool.map(convert_category, pending), strict=True):
                converted[id(job)] = entry
                _progress(log, entry, len(converted), len(pending))
    else:
        for job in pending:
            converted[id(job)] = convert_category(job)
            _progress(log, converted[id(job)], len(converted), len(pending))
    results = [finished[id(j)] or converted[id(j)] for j in jobs]
    log(f"{len(jobs) - len(pending)} category files already current, {len(pending)} converted")
    manifest = build_manifest(data_dir, found, jobs, results, max_per_class, shard_size)
    if is_shard_dir(out_dir):  # keep the other kind's listing (e.g. strokes when this run made bitmaps)
        old = json.loads(fs(out_dir).GFile(join(out_dir, "manifest.json")).read())
        if old.get("format_version") == FORMAT_VERSION and old.get("max_per_class") == max_per_class:
            manifest["kinds"] = {**old["kinds"], **manifest["kinds"]}
    _write_atomic(join(out_dir, "manifest.json"), json.dumps(manifest, indent=1))
    total = sum(sum(e["counts"].values()) for e in results)
    log(f"{out_dir}: {total} drawings in {len(results)} category files ({time.monotonic() - t0:.1f} s)")
    return manifest


def _progress(log, entry: dict, done: int, total: int) -> None:
    log(f"[{done}/{total}] {entry['category']}: {sum(entry['counts'].values())} drawings ({entry['seconds']} s)")


def build_manifest(data_dir, found, jobs, results, max_per_class, shard_size) -> dict:
    by_key = {(j["kind"], j["category"]): r for j, r in zip(jobs, results, strict=True)}
    kinds = {}
    for kind, wanted in found.items():
        classes = sorted(wanted)
        entries = [by_key[(kind, c)] for c in classes]
        kinds[kind] = {
            "classes": classes,
            "counts": {c: e["counts"] for c, e in zip(classes, entries, strict=True)},
            "shards": {c: e["shards"] for c, e in zip(classes, entries, strict=True)},
            "skipped": {c: e["skipped"] for c, e in zip(classes, entries, strict=True) if e["skipped"]},
            "sources": {f: s for e in entries for f, s in e["sources"].items()},
        }
        if kind == "strokes":
            kinds[kind]["strokes_version"] = STROKES_VERSION
            kinds[kind]["per_source"] = {c: e["per_source"] for c, e in zip(classes, entries, strict=True)}
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_dir": data_dir,
        "max_per_class": max_per_class,
        "shard_size": shard_size,
        "split": f"content hash: {TEST_PERCENT}% test, {VAL_PERCENT}% val, rest train",
        "records": {
            "bitmap": {"bitmap": "bytes, uint8 28x28 (784)"},
            "strokes": {
                "points": "bytes, uint8 (x, y) pairs of the normalised strokes, 0-255",
                "stroke_lengths": "int64 list, points per stroke",
            },
        },
        "kinds": kinds,
    }


def ensure_shards(
    data_dir: str | Path,
    kind: str,
    categories: list[str] | None = None,
    max_per_class: int | None = None,
    shards_dir: str | Path | None = None,
    workers: int = 1,
) -> str:
    """Shards of ``kind`` for a training run: ``data_dir`` itself when it already holds shards, else
    prepared from its official files (only what is missing or out of date is converted).

    In the training process itself by default (``workers=1``): a process pool would start its
    workers from whatever ``__main__`` the caller has; ``python -m training.prepare`` is the
    parallel way.
    """
    if is_shard_dir(data_dir):
        if max_per_class is not None:
            raise DataError(f"{data_dir} holds prepared shards: --max-per-class applies when preparing them")
        return str(data_dir)
    out = str(shards_dir or default_shard_dir(data_dir, max_per_class))
    prepare(data_dir, out, categories, (kind,), max_per_class, workers)
    return out


def data_hash(kind_manifest: dict) -> str:
    """One short hash of a kind's source files: identifies the data a model saw."""
    h = hashlib.sha256()
    for path, source in sorted(kind_manifest["sources"].items()):
        h.update(path.rsplit("/", 1)[-1].encode() + source["sha256"].encode())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="../shared/quickdraw", help="folder (or gs:// URL) of official files")
    parser.add_argument("--out", help="shard folder (or gs:// URL); default: the one training.train uses")
    parser.add_argument("--categories", nargs="*", help="category names (default: all)")
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=sorted(KINDS))
    parser.add_argument("--max-per-class", type=int, default=None, help="take at most N drawings per category")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (categories in parallel)")
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE, help="records per shard")
    args = parser.parse_args(argv)
    out = args.out or default_shard_dir(args.data_dir, args.max_per_class)
    try:
        prepare(
            args.data_dir,
            out,
            args.categories,
            tuple(args.kinds),
            args.max_per_class,
            args.workers,
            args.shard_size,
        )
    except DataError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
