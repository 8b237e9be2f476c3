"""Download Quick, Draw! categories from Google's public bucket (for machines with internet).

    python -m training.download cat dog --format numpy_bitmap simplified --data-dir data/quickdraw

Files land where the readers expect them (``<data-dir>/<format>/<category>.<ext>``). Downloads
resume from a ``.part`` file and are renamed into place only when complete, so an interrupted
run never leaves a truncated file that looks finished.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

DEFAULT_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/full"
EXTENSIONS = {"numpy_bitmap": ".npy", "simplified": ".ndjson", "raw": ".ndjson"}
CHUNK = 1 << 16


class DownloadError(RuntimeError):
    pass


def category_url(base_url: str, fmt: str, category: str) -> str:
    return f"{base_url.rstrip('/')}/{fmt}/{urllib.parse.quote(category)}{EXTENSIONS[fmt]}"


def download_file(url: str, dest: Path, timeout: float = 30.0, progress: bool = True) -> Path:
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
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar,
        ):
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"{url}: got {part.stat().st_size} of {total} bytes; run again to resume")
    os.replace(part, dest)
    return dest


def download(
    categories: list[str], formats: list[str], data_dir: Path, base_url: str = DEFAULT_BASE_URL, progress: bool = True
) -> list[Path]:
    paths = []
    for fmt in formats:
        for category in categories:
            dest = Path(data_dir) / fmt / f"{category}{EXTENSIONS[fmt]}"
            paths.append(download_file(category_url(base_url, fmt, category), dest, progress=progress))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.download", description=__doc__.split("\n")[0])
    parser.add_argument("categories", nargs="+", help="category names as in the official list, e.g. cat 'hot dog'")
    parser.add_argument("--format", nargs="+", choices=sorted(EXTENSIONS), default=["numpy_bitmap"], dest="formats")
    parser.add_argument("--data-dir", type=Path, default=Path("data/quickdraw"))
    parser.add_argument("--base-url", default=os.environ.get("QUICKDRAW_BASE_URL", DEFAULT_BASE_URL))
    args = parser.parse_args(argv)
    try:
        for path in download(args.categories, args.formats, args.data_dir, args.base_url):
            print(path)
    except DownloadError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
