"""The download path, against a local HTTP server that serves files in the bucket's layout."""

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.utils.fixtures import FIXTURES
from training.data import read_bitmaps
from training.download import DownloadError, download, download_file, main, official_categories


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus byte ranges, like the real bucket."""

    def log_message(self, *args):
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        if not rng:
            return super().send_head()
        data = Path(self.translate_path(self.path)).read_bytes()
        start = int(rng.split("=")[1].split("-")[0])
        if start >= len(data):
            self.send_error(416)
            return None
        self.send_response(206)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        import io

        return io.BytesIO(data[start:])


@pytest.fixture
def bucket(tmp_path):
    root = tmp_path / "bucket"
    (root / "numpy_bitmap").mkdir(parents=True)
    (root / "simplified").mkdir()
    np.save(root / "numpy_bitmap" / "cat.npy", np.load(FIXTURES / "pairs" / "cat.npy"))
    import gzip

    (root / "simplified" / "hot dog.ndjson").write_bytes(
        gzip.decompress((FIXTURES / "pairs" / "dog.simplified.ndjson.gz").read_bytes())
    )
    handler = functools.partial(_RangeHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_download_categories_into_reader_layout(bucket, tmp_path):
    root, url = bucket
    out = tmp_path / "data"
    paths = download(["cat"], ["numpy_bitmap"], out, base_url=url, progress=False)
    paths += download(["hot dog"], ["simplified"], out, base_url=url, progress=False)
    assert paths == [out / "numpy_bitmap" / "cat.npy", out / "simplified" / "hot dog.ndjson"]
    assert read_bitmaps(paths[0]).shape == (25, 784)
    assert paths[1].read_bytes() == (root / "simplified" / "hot dog.ndjson").read_bytes()
    assert not list(out.rglob("*.part"))


def test_resume_from_partial_file(bucket, tmp_path):
    root, url = bucket
    whole = (root / "numpy_bitmap" / "cat.npy").read_bytes()
    dest = tmp_path / "cat.npy"
    (tmp_path / "cat.npy.part").write_bytes(whole[:5000])
    download_file(f"{url}/numpy_bitmap/cat.npy", dest)
    assert dest.read_bytes() == whole


def test_missing_category_is_a_clear_error(bucket, tmp_path):
    _, url = bucket
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(["unicorn"], ["numpy_bitmap"], tmp_path, base_url=url, progress=False)
    assert not (tmp_path / "numpy_bitmap" / "unicorn.npy").exists()


def test_all_345_in_parallel_then_resumed(bucket, tmp_path, capsys):
    """``--all``: the official list, fetched several at a time; a rerun after an interruption
    finishes the partial files and fetches nothing twice."""
    root, url = bucket
    names = official_categories()
    assert len(names) == 345 and len(set(names)) == 345 and "cat" in names and "The Mona Lisa" in names
    whole = (root / "numpy_bitmap" / "cat.npy").read_bytes()
    for name in names:
        (root / "numpy_bitmap" / f"{name}.npy").write_bytes(whole)
    out = tmp_path / "data"
    (out / "numpy_bitmap").mkdir(parents=True)
    (out / "numpy_bitmap" / "dog.npy.part").write_bytes(whole[:3000])  # an earlier run stopped here
    main(["--all", "--data-dir", str(out), "--base-url", url, "--jobs", "6"])
    files = sorted(p.name for p in (out / "numpy_bitmap").iterdir())
    assert files == sorted(f"{n}.npy" for n in names)
    assert all((out / "numpy_bitmap" / f).read_bytes() == whole for f in files)
    assert "345 files" in capsys.readouterr().out
    before = {f: (out / "numpy_bitmap" / f).stat().st_mtime_ns for f in files}
    main(["--all", "--data-dir", str(out), "--base-url", url])
    assert before == {f: (out / "numpy_bitmap" / f).stat().st_mtime_ns for f in files}


def test_failed_files_are_named_and_the_others_kept(bucket, tmp_path):
    _, url = bucket
    with pytest.raises(DownloadError, match=r"1 of 2 files failed:\n.*unicorn.npy: HTTP 404"):
        download(["unicorn", "cat"], ["numpy_bitmap"], tmp_path, base_url=url, progress=False, jobs=2)
    assert (tmp_path / "numpy_bitmap" / "cat.npy").is_file()


def test_names_outside_the_official_list_are_refused(bucket, tmp_path, capsys):
    _, url = bucket
    with pytest.raises(SystemExit):
        main(["unicorn", "--data-dir", str(tmp_path), "--base-url", url])
    assert "not in the official list: unicorn" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path)])
