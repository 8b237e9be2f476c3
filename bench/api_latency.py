"""API latency and throughput: the real server under uvicorn, driven from another process.

    .venv/bin/python bench/api_latency.py [--workers 2] [--seconds 6]

Starts ``uvicorn api.main:app`` on 127.0.0.1 (a free port), waits for /ready, then for every input
kind runs 1 and 16 concurrent keep-alive clients in a separate process and prints p50/p90/p99 and
requests/s. The client is a minimal asyncio HTTP/1.1 loop so that it costs the server's cores as
little as possible (both share this machine). Only loopback traffic; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import (
    FIXTURES,
    REPO,
    NotReady,
    Started,
    api_command,
    cpu_seconds,
    free_port,
    request_bytes,
    running,
    tree,
)


async def _client(port: int, req: bytes, deadline: float, max_requests: int, out: list, errors: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline and len(out) < max_requests:
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            out.append(time.perf_counter() - t0)
            if head[9:12] != b"200":
                errors.append(head[9:12].decode())
    finally:
        writer.close()


def run_load(port: int, req: bytes, clients: int, seconds: float, max_requests: int) -> dict:
    """Runs in its own process: ``clients`` keep-alive connections for ``seconds``."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> dict:
        # Warm-up, not measured.
        warm: list = []
        await asyncio.gather(*[_client(port, req, time.perf_counter() + 0.5, 200, warm, []) for _ in range(clients)])
        lat: list = []
        errors: list = []
        start = time.perf_counter()
        await asyncio.gather(*[_client(port, req, start + seconds, max_requests, lat, errors) for _ in range(clients)])
        elapsed = time.perf_counter() - start
        ms = np.array(lat) * 1000
        return {
            "n": len(lat),
            "errors": len(errors),
            "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)),
            "rps": len(lat) / elapsed,
            "served": len(warm) + len(lat),
        }

    return asyncio.run(main())


def bodies(models: list[str]) -> dict[str, tuple[str, str, dict | None]]:
    """One real drawing (a cat from the fixtures) in every input form."""
    from PIL import Image, ImageDraw

    lines = gzip.decompress((FIXTURES / "pairs" / "cat.simplified.ndjson.gz").read_bytes()).splitlines()
    cat = json.loads(lines[0])["drawing"]
    canvas = [[[x * 1.5 + 20 for x in xs], [y * 1.5 + 20 for y in ys]] for xs, ys in cat]
    bitmap = np.load(FIXTURES / "pairs" / "cat.npy")[0].reshape(28, 28).tolist()
    img = Image.new("RGB", (400, 400), "white")
    draw = ImageDraw.Draw(img)
    for xs, ys in canvas:
        draw.line(list(zip(xs, ys, strict=True)), fill="black", width=10, joint="curve")
    import io

    buf = io.BytesIO()
    img.save(buf, "PNG")
    cases = {
        "health": ("GET", "/health", None),
        "bitmap": ("POST", "/predict", {"bitmap": bitmap}),
        "image": ("POST", "/predict", {"image": base64.b64encode(buf.getvalue()).decode()}),
    }
    # Strokes through every model the server lists (GET /ready), the default one first.
    cases["strokes"] = ("POST", "/predict", {"strokes": canvas})
    for name in models:
        cases[f"strokes {name}"] = ("POST", "/predict", {"strokes": canvas, "model": name})
    return cases


def table(server: Started, args: argparse.Namespace) -> None:
    """Every input at every client count, ``--repeats`` runs each: the median run, and every run's req/s."""
    print(
        "| input | clients | requests | p50 ms | p90 ms | p99 ms | req/s | server CPU ms/req | errors "
        "| req/s of each run |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        for name, (method, path, body) in bodies(list(server.answer["models"])).items():
            if args.cases and name not in args.cases:
                continue
            req = request_bytes(method, path, body)
            for clients in args.clients:
                load = (server.port, req, clients, args.seconds, 200_000)
                runs = []
                for _ in range(args.repeats):
                    cpu = cpu_seconds(tree(server.proc))
                    run = pool.apply(run_load, load)
                    run["cpu_ms"] = (cpu_seconds(tree(server.proc)) - cpu) * 1000 / max(run["served"], 1)
                    runs.append(run)
                # The kernel spreads keep-alive connections unevenly over the workers, so runs vary:
                # show the median run and every run's throughput.
                r = sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]
                each = " / ".join(f"{run['rps']:.0f}" for run in runs)
                print(
                    f"| {name} | {clients} | {r['n']} | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} "
                    f"| {r['rps']:.0f} | {np.median([run['cpu_ms'] for run in runs]):.3f} "
                    f"| {sum(run['errors'] for run in runs)} | {each} |",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one per core)")
    parser.add_argument(
        "--launcher",
        choices=["serve", "serve-shared", "uvicorn"],
        default="serve",
        help="serve: python -m api.serve (a SO_REUSEPORT socket per worker); serve-shared: api.serve with one "
        "socket shared by the workers; uvicorn: uvicorn --workers (its own supervisor, one shared socket)",
    )
    parser.add_argument("--cases", nargs="+", help="only these inputs (e.g. bitmap strokes); default all")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per case")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the median run (by req/s) is shown")
    parser.add_argument("--model-store", default=str(REPO / "model_store"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still stop the server (finally) when stopped

    port = free_port()
    env = {"MODEL_STORE": args.model_store, "DATABASE_URL": "sqlite:////tmp/deepdraw-bench.db"}
    quiet = ["--log-level", "warning"]
    if args.launcher == "serve":
        command = api_command(port, args.workers, *quiet)
    elif args.launcher == "serve-shared":
        command = api_command(port, args.workers, *quiet, "--socket", "shared")
    else:
        command = api_command(port, None, "--workers", str(args.workers), *quiet, "--no-access-log")
    # The server's own output (one JSON access-log line per request) goes to a file, not between the figures.
    server_log = Path(tempfile.gettempdir()) / f"deepdraw-bench-server-{port}.log"
    try:
        with running(command, port, server_log, env=env) as server:
            print(
                f"python {' '.join(command[1:])}: models {server.answer['models']}, {os.cpu_count()} cores, "
                f"{args.seconds:.0f} s per case, ACCESS_LOG={os.environ.get('ACCESS_LOG', 'true')}, "
                f"server log {server_log}\n"
            )
            table(server, args)
    except NotReady as e:
        sys.exit(f"server did not become ready: {e}")


if __name__ == "__main__":
    main()
