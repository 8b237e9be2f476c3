"""What a hostile 2 MB body costs the server: CPU, memory, and /health latency while it works.

    .venv/bin/python -m bench.hostile_bodies

Starts one API process (``uvicorn api.main:app``) on 127.0.0.1, sends each body shape below to
each route it targets, and prints per request: the status, the server's CPU seconds (from
/proc/<pid>/stat) and its peak RSS growth (VmHWM), then sends 4 of the costliest shape at once and
measures /health meanwhile. Goals (issue: hardening): < 0.5 s CPU and < 100 MB per body, /health
within 50 ms with 4 in flight. Only loopback traffic; every request has a timeout.
"""

from __future__ import annotations

import base64
import json
import struct
import tempfile
import threading
import time
import zlib
from pathlib import Path

import httpx

from bench.harness import running_api

LIMIT = 2_000_000


def _fill(prefix: str, item: str, suffix: str) -> bytes:
    """``prefix + item, item, ... + suffix`` just under the body limit."""
    n = (LIMIT - len(prefix) - len(suffix)) // (len(item) + 1)
    return (prefix + ",".join([item] * n) + suffix).encode()


def _png_16bit_rgba(side: int) -> str:
    """A valid PNG of ``side`` x ``side`` 16-bit RGBA pixels, all zero: ~128 MB decoded, ~130 KB sent."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + side * 8)  # filter byte + 4 channels x 2 bytes
    pixels = zlib.compressobj(9)
    data = b"".join(pixels.compress(row) for _ in range(side)) + pixels.flush()
    header = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def _zigzag(points: int) -> str:
    xs = [0 if i % 2 else 255 for i in range(points)]
    ys = [i * 255 / points for i in range(points)]
    return json.dumps({"strokes": [[xs, ys]]})


def _submission(strokes: list) -> bytes:
    return json.dumps({"label": "cat", "strokes": strokes, "canvas": {"width": 400, "height": 400}}).encode()


def shapes() -> dict[str, tuple[str, bytes]]:
    """name -> (route, body), each at most 2 MB."""
    return {
        "batch of empty items": ("/predict/batch", _fill('{"items": [', "{}", "]}")),
        "batch of 26 zigzags": ("/predict/batch", ('{"items": [' + ",".join([_zigzag(1500)] * 26) + "]}").encode()),
        "many one-point strokes": ("/predict", _fill('{"strokes": [', "[[1],[1]]", "]}")),
        "zigzag of 20,000 points": ("/predict", _zigzag(20_000).encode()),
        "deep nesting": ("/predict", b'{"strokes": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        "long label": ("/submissions", json.dumps({"label": "x" * 1_900_000, "strokes": [], "canvas": {}}).encode()),
        "many numbers in a bitmap": ("/predict", _fill('{"bitmap": [', "1", "]}")),
        "PNG header 4096x4096": ("/predict", json.dumps({"image": _png_16bit_rgba(4096)}).encode()),
        "submission zigzag": (
            "/submissions",
            json.dumps(
                {
                    "label": "cat",
                    "strokes": json.loads(_zigzag(20_000))["strokes"],
                    "canvas": {"width": 400, "height": 400},
                }
            ).encode(),
        ),
    }


def _proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / 100
    hwm = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )
    return cpu, hwm * 1024


def main() -> None:
    bodies = shapes()
    with tempfile.TemporaryDirectory() as tmp, running_api(f"sqlite:///{tmp}/s.db", Path(tmp) / "api.log") as api:
        url, pid = api.url, api.proc.pid
        headers = {"content-type": "application/json"}
        print(f"server pid {pid}; bodies up to {LIMIT:,} bytes\n")
        print("| body | route | bytes | status | server CPU s | peak RSS growth MB |")
        print("|---|---|---:|---:|---:|---:|")
        costs = {}
        with httpx.Client(base_url=url, timeout=60) as http:
            for name, (route, body) in bodies.items():
                cpu0, hwm0 = _proc_stats(pid)
                try:
                    status = http.post(route, content=body, headers=headers).status_code
                except httpx.TimeoutException:
                    status = "timeout (60 s)"
                cpu1, hwm1 = _proc_stats(pid)
                costs[name] = cpu1 - cpu0
                print(
                    f"| {name} | {route} | {len(body):,} | {status} | {cpu1 - cpu0:.3f} | {(hwm1 - hwm0) / 2**20:.1f} |"
                )
            worst = max(costs, key=costs.get)
            route, body = bodies[worst]
            threads = [
                threading.Thread(target=lambda: httpx.post(f"{url}{route}", content=body, headers=headers, timeout=60))
                for _ in range(4)
            ]
            for t in threads:
                t.start()
            waits = []
            while any(t.is_alive() for t in threads):
                t0 = time.perf_counter()
                http.get("/health")
                waits.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.005)
            for t in threads:
                t.join()
        waits.sort()
        print(
            f"\n/health while 4 x '{worst}' were in flight: {len(waits)} probes, "
            f"median {waits[len(waits) // 2]:.1f} ms, max {waits[-1]:.1f} ms"
        )


if __name__ == "__main__":
    main()
