"""Export the drawings players kept, in the official Quick, Draw! formats, for training.

    python -m training.export_submissions --database-url postgresql+psycopg://user:pw@host/db --out data/player

Writes ``<out>/simplified/<category>.ndjson`` (the dataset's keys: key_id, word, countrycode,
timestamp, recognized, drawing), ``<out>/numpy_bitmap/<category>.npy`` (uint8 (N, 784), rendered
by ``sketch.raster`` exactly as the dataset's bitmaps) and ``<out>/counts.json``; the same
drawings in the same order in both formats. Only submissions whose label the player chose or
confirmed (``label_source`` player/confirmed) are exported; deleted ones are gone from the
database and so from every export. Nothing about the player is written: the country code is
empty, the key is the submission's id. A new export replaces the previous one's two folders.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from sketch.raster import render_simplified
from sketch.strokes import from_dataset_format
from store.db import DEFAULT_DATABASE_URL, Database, StoreUnavailableError, reason
from store.submissions import exportable
from store.tables import EXPORTED_SOURCES, Submission

FORMATS = ("simplified", "numpy_bitmap")


def safe_category(label: str) -> bool:
    """Whether a label can be a file name in the output folder (labels are free text)."""
    return (
        bool(label)
        and not label.startswith(".")
        and not any(c in label for c in "/\\\x00")
        and label.isprintable()
        and label == label.strip()
    )


def dataset_line(row: Submission) -> dict:
    """A ``simplified`` line: the dataset's keys, nothing about the player."""
    guesses = row.predictions or []
    top = max(guesses, key=lambda p: p.get("probability", 0.0), default=None)
    created = datetime.fromisoformat(row.created_at)
    return {
        "key_id": str(row.id),
        "word": row.label,
        "countrycode": "",
        "timestamp": created.strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
        # As in the game: did the model's top guess (when the client sent it) name the label?
        "recognized": top is not None and top.get("label") == row.label,
        "drawing": row.simplified,
    }


def bitmap(simplified: list) -> np.ndarray:
    return render_simplified(from_dataset_format(simplified)).reshape(-1)


def write_category(folder: Path, category: str, rows: list[Submission]) -> None:
    with open(folder / "simplified" / f"{category}.ndjson", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(dataset_line(row), ensure_ascii=False, separators=(",", ":")) + "\n")
    np.save(folder / "numpy_bitmap" / f"{category}.npy", np.stack([bitmap(r.simplified) for r in rows]))


def export(database: Database, out: Path) -> dict:
    """Write the export into a fresh folder beside ``out``, then swap it in; returns the counts."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        for fmt in FORMATS:
            (work / fmt).mkdir()
        counts: Counter[str] = Counter()
        skipped = 0
        category, batch = None, []
        with database.session() as session:
            # Rows come grouped by label: one category's drawings are in memory at a time.
            for row in exportable(session):
                if not safe_category(row.label):
                    skipped += 1
                    continue
                if row.label != category and batch:
                    write_category(work, category, batch)
                    batch = []
                category = row.label
                batch.append(row)
                counts[category] += 1
            if batch:
                write_category(work, category, batch)
        summary = {
            "total": sum(counts.values()),
            "categories": dict(sorted(counts.items())),
            "label_sources": list(EXPORTED_SOURCES),
            "skipped_unusable_labels": skipped,
        }
        (work / "counts.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        for name in (*FORMATS, "counts.json"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(work / name, target)
        return summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export_submissions", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        help="the service's database (default: $DATABASE_URL, else %(default)s)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (simplified/, numpy_bitmap/)")
    args = parser.parse_args(argv)
    try:
        database = Database(args.database_url, migrate=False)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        summary = export(database, args.out)
    except StoreUnavailableError as exc:
        print(f"export from {database.name} failed: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"export failed on {database.name}: {reason(exc)}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    width = max((len(c) for c in summary["categories"]), default=8)
    for category, n in summary["categories"].items():
        print(f"{category:<{width}}  {n:>7,}")
    print(
        f"{'total':<{width}}  {summary['total']:>7,}  drawings in {len(summary['categories'])} categories -> {args.out}"
    )
    if summary["skipped_unusable_labels"]:
        print(f"skipped {summary['skipped_unusable_labels']} whose label cannot be a file name")
    return 0


if __name__ == "__main__":
    sys.exit(main())
