"""What each layer around /predict costs: the ASGI app driven in-process (no HTTP, no client), with
every middleware, then without each one in turn, side by side in one run.

    .venv/bin/python -m bench.middleware [--requests 3000] [--rounds 5]

A bitmap request (the fixtures' first cat) is sent straight to the app's ASGI callable; each variant
gets ``--rounds`` alternating rounds of ``--requests`` requests and the median µs per request is
printed, with the model call alone for scale, and the whole app once more with the network's
answer kept (what the request costs besides the network). What HTTP parsing costs (uvicorn,
httptools) is not in these figures: bench/peers.py measures whole servers.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from bench.harness import cat_body

LAYERS = ("AccessMiddleware", "HeadAsGet", "Cors", "BodySizeLimit", "PredictLane")


def scope(body: bytes) -> dict:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def drive(app, body: bytes, n: int) -> float:
    """Seconds per request over ``n`` requests, checking each answered 200."""
    request = scope(body)
    statuses = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.perf_counter()
    for _ in range(n):
        await app(dict(request), receive, send)
    elapsed = time.perf_counter() - started
    assert set(statuses) == {200}, set(statuses)
    return elapsed / n


def without(app, layer: str | None):
    """The app with its middleware stack rebuilt without ``layer``."""
    app.user_middleware = [m for m in app.state.all_middleware if m.cls.__name__ != layer]
    app.middleware_stack = app.build_middleware_stack()
    return app


async def main_async(args: argparse.Namespace) -> None:
    from api.main import create_app

    app = create_app()
    app.state.all_middleware = list(app.user_middleware)
    body = cat_body()
    async with app.router.lifespan_context(app):
        variants = [None, *LAYERS]
        runs: dict[str | None, list[float]] = {v: [] for v in variants}
        await drive(without(app, None), body, 300)  # warm
        for _ in range(args.rounds):
            for v in variants:
                runs[v].append(await drive(without(app, v), body, args.requests))
        model = app.state.models.by_name["prototypes"]
        from models.inputs import Inputs

        x = Inputs(bitmaps=np.zeros((1, 28, 28), np.float32) + 1)
        started = time.perf_counter()
        for _ in range(args.requests):
            model.predict(x)
        model_us = (time.perf_counter() - started) / args.requests * 1e6
        # Everything but the network: its runner answers a kept output at once.
        network, kept = model.cnn, model.cnn.run_probabilities
        answer = kept(x.bitmaps[..., None])
        network.run_probabilities = lambda _: answer
        rest = [await drive(without(app, None), body, args.requests) for _ in range(args.rounds)]
        network.run_probabilities = kept
    full = np.median(runs[None]) * 1e6
    print(f"ASGI app in-process, bitmap /predict, {args.rounds} x {args.requests} requests per variant, medians\n")
    print("| variant | µs per request | the layer's cost µs (negative: what it saves) |")
    print("|---|---:|---:|")
    print(f"| every layer | {full:.0f} | |")
    for v in LAYERS:
        us = np.median(runs[v]) * 1e6
        print(f"| without {v} | {us:.0f} | {full - us:.0f} |")
    print(f"| the model call alone (prototypes, nothing taught) | {model_us:.0f} | |")
    print(f"| every layer, the network's answer kept (all but the network) | {np.median(rest) * 1e6:.0f} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
