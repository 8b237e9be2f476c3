"""Download Quick, Draw! categories from Google's public bucket (for machines with internet).

    python -m training.download --all --data-dir data/quickdraw                  # all 345, numpy_bitmap
    python -m training.download cat dog --format numpy_bitmap simplified --data-dir data/quickdraw

Files land where the readers expect them (``<data-dir>/<format>/<category>.<ext>``). Files are
fetched several at a time under one progress bar. Downloads resume from a ``.part`` file and are
renamed into place only when complete, so an interrupted run never leaves a truncated file that
looks finished: run the same command again and it goes on where it stopped. ``--all`` takes the
official category list (``training/categories.txt``, from the dataset's repository).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

DEFAULT_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/full"
EXTENSIONS = {"numpy_bitmap": ".npy", "simplified": ".ndjson", "raw": ".ndjson"}
CATEGORIES_FILE = Path(__file__).with_name("categories.txt")
CHUNK = 1 << 16
JOBS = 8  # files at once: the bucket serves each connection well below a home line's speed


class DownloadError(RuntimeError):
    pass


def official_categories() -> list[str]:
    """The 345 category names of the official list, in its order."""
    return [line.strip() for line in CATEGORIES_FILE.read_text().splitlines() if line.strip()]


def category_url(base_url: str, fmt: str, category: str) -> str:
    return f"{base_url.rstrip('/')}/{fmt}/{urllib.parse.quote(category)}{EXTENSIONS[fmt]}"


class Progress:
    """One bar for a whole download: bytes fetched of the bytes known so far (each file's size is
    added when its answer arrives), and the files finished."""

    def __init__(self, files: int, enabled: bool = True):
        self.bar = tqdm(total=0, unit="B", unit_scale=True, disable=not enabled, desc="download")
        self.files, self.done = files, 0
        self.lock = threading.Lock()

    def expect(self, size: int, already: int) -> None:
        with self.lock:
            self.bar.total += size
            self.bar.update(already)

    def advance(self, n: int) -> None:
        with self.lock:
            self.bar.update(n)

    def finish_file(self) -> None:
        with self.lock:
            self.done += 1
            self.bar.set_postfix_str(f"{self.done}/{self.files} files")

    def close(self) -> None:
        self.bar.close()


def download_file(url: str, dest: Path, timeout: float = 30.0, progress: Progress | None = None) -> Path:
    """Fetch ``url`` into ``dest``: resumable (HTTP Range on ``dest.part``), atomic rename at the end."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part is already whole
            os.replace(part, dest)
            return dest
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise DownloadError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        if progress is not None:
            progress.expect(total or 0, offset)
        try:
            with open(part, "ab" if offset else "wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    if progress is not None:
                        progress.advance(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except (OSError, TimeoutError) as exc:
            raise DownloadError(f"{url}: {exc}; run again to resume") from None
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"{url}: got {part.stat().st_size} of {total} bytes; run again to resume")
    os.replace(part, dest)
    return dest


def download(
    categories: list[str],
    formats: list[str],
    data_dir: Path,
    base_url: str = DEFAULT_BASE_URL,
    progress: bool = True,
    jobs: int = JOBS,
) -> list[Path]:
    """Every (format, category) file, ``jobs`` at a time. Files that fail do not stop the others;
    ``DownloadError`` then names each of them (what was fetched stays, and a rerun resumes)."""
    wanted = [(fmt, c) for fmt in formats for c in categories]
    bar = Progress(len(wanted), progress)

    def fetch(item: tuple[str, str]) -> Path | DownloadError:
        fmt, category = item
        dest = Path(data_dir) / fmt / f"{category}{EXTENSIONS[fmt]}"
        try:
            return download_file(category_url(base_url, fmt, category), dest, progress=bar)
        except DownloadError as exc:
            return exc
        finally:
            bar.finish_file()

    try:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            results = list(pool.map(fetch, wanted))
    finally:
        bar.close()
    failed = [str(r) for r in results if isinstance(r, DownloadError)]
    if failed:
        raise DownloadError(f"{len(failed)} of {len(wanted)} files failed:\n  " + "\n  ".join(failed))
    return [r for r in results if isinstance(r, Path)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.download", description=__doc__.split("\n")[0])
    parser.add_argument("categories", nargs="*", help="category names as in the official list, e.g. cat 'hot dog'")
    parser.add_argument("--all", action="store_true", help="every category of the official list (345)")
    parser.add_argument("--format", nargs="+", choices=sorted(EXTENSIONS), default=["numpy_bitmap"], dest="formats")
    parser.add_argument("--data-dir", type=Path, default=Path("data/quickdraw"))
    parser.add_argument("--base-url", default=os.environ.get("QUICKDRAW_BASE_URL", DEFAULT_BASE_URL))
    parser.add_argument("--jobs", type=int, default=JOBS, help="files fetched at once")
    args = parser.parse_args(argv)
    if args.all == bool(args.categories):
        parser.error("name categories, or --all for every one")
    categories = official_categories() if args.all else args.categories
    unknown = sorted(set(categories) - set(official_categories()))
    if unknown:
        parser.error(f"not in the official list: {', '.join(unknown)} (see {CATEGORIES_FILE})")
    try:
        paths = download(categories, args.formats, args.data_dir, args.base_url, jobs=args.jobs)
    except DownloadError as exc:
        sys.exit(f"error: {exc}")
    print(f"{len(paths)} files in {args.data_dir}")


if __name__ == "__main__":
    main()
