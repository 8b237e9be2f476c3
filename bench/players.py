"""How many players drawing at once one core holds: live guesses as the Draw page makes them.

    .venv/bin/python bench/players.py [--players 10 20 40 ...] [--seconds 8] [--page challenge] [--taught 1]

One API process (``uvicorn api.main:app``, the shipped models, the default model) pinned to one
core; the players in another process pinned to the other. Each player replays real drawings from
``tests/fixtures/pairs/*.raw.ndjson.gz`` at the pace they were drawn (their own timestamps, in
canvas pixels), as the sketchpad asks for guesses: ``POST /predict`` with the strokes so far and
``top_k`` 3, at most one request in flight, the next one as soon as the answer is in and new ink is
there, but no sooner than the page's interval after the previous start. On the Draw page
(``--page draw``, the default) every pen lift also asks why, as the sketchpad does: ``POST
/predict`` with the strokes so far, ``top_k`` 5 and ``"explain": true``, on a connection of its
own; the Challenge page (``--page challenge``) makes live guesses only. A player pauses between
drawings. The delay of a point is from when it was drawn to the answer that first includes it;
each level of players prints its guesses and explanations per second, the median and 95th
percentile delay, the 95th percentile of an explanation's answer time, the server's CPU and any
answer that was not a 200. The verdict is the most players whose p95 delay, and on the Draw page
the p95 of an explanation's answer time too, stay within the target.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.harness import FIXTURES, api_command, cpu_seconds, free_port, read_ndjson, request_bytes, running, tree

INTERVAL_S = 0.120  # the sketchpad's least time between two live guesses (frontend/sketchpad.py)
TARGET_P95_S = 0.150
PAUSE_S = 1.0  # between two drawings of one player
SERVER_CORE, CLIENT_CORE = 0, 1


def drawings() -> list[tuple[list, np.ndarray]]:
    """Each raw fixture drawing: its strokes ``[[x...], [y...]]`` and every point's time (s) since it began."""
    out = []
    for path in sorted((FIXTURES / "pairs").glob("*.raw.ndjson.gz")):
        for line in read_ndjson(path):
            strokes = [[list(s[0]), list(s[1])] for s in line["drawing"]]
            times = np.concatenate([np.asarray(s[2], float) for s in line["drawing"]])
            out.append((strokes, (times - times.min()) / 1000.0))
    return out


def body(strokes: list, drawn: int) -> bytes:
    """The request for the first ``drawn`` points."""
    kept, left = [], drawn
    for xs, ys in strokes:
        if left <= 0:
            break
        kept.append([xs[:left], ys[:left]])
        left -= len(xs)
    return request_bytes("POST", "/predict", {"strokes": kept, "top_k": 3})


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line[15:]) for line in head.split(b"\r\n") if line[:15].lower() == b"content-length:")
    await reader.readexactly(length)
    return head[9:12]


class Connection:
    """One keep-alive connection, opened again when the server has closed it for being idle (as a
    browser does): ``ask`` sends a request and gives the answer's status."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def ask(self, request: bytes) -> bytes:
        for retry in (False, True):
            self.streams = self.streams or await asyncio.open_connection("127.0.0.1", self.port)
            self.streams[1].write(request)
            try:
                return await _answer(self.streams[0])
            except (asyncio.IncompleteReadError, ConnectionResetError):
                self.close()
                if retry:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.streams:
            self.streams[1].close()
            self.streams = None


async def player(port: int, pool: list, first: int, deadline: float, out: dict, explain: bool) -> None:
    connection = Connection(port)
    index, loop = first, asyncio.get_running_loop()
    try:
        while loop.time() < deadline:
            strokes, times = pool[index % len(pool)]
            begun, answered, last_start = loop.time(), 0, -INTERVAL_S
            lifts = asyncio.create_task(pen_lifts(port, strokes, times, begun, deadline, out)) if explain else None
            while answered < len(times) and loop.time() < deadline:
                now = loop.time()
                drawn = int(np.searchsorted(times, now - begun, side="right"))
                if drawn <= answered:  # nothing new: wait for the next point
                    await asyncio.sleep(max(begun + times[answered] - now, 0.001))
                    continue
                if now < last_start + INTERVAL_S:
                    await asyncio.sleep(last_start + INTERVAL_S - now)
                    continue
                last_start = now
                out["statuses"].append(await connection.ask(body(strokes, drawn)))
                done = loop.time()
                out["delays"].extend(done - (begun + times[answered:drawn]))
                answered = drawn
            if lifts:
                await lifts
            index += 1
            await asyncio.sleep(PAUSE_S)
    finally:
        connection.close()


async def pen_lifts(port: int, strokes: list, times: np.ndarray, begun: float, deadline: float, out: dict) -> None:
    """The Draw page's question at each pen lift: why, for the strokes so far (its own connection)."""
    loop = asyncio.get_running_loop()
    ends = np.cumsum([len(xs) for xs, _ in strokes]) - 1
    connection = Connection(port)
    try:
        for k, end in enumerate(ends):
            await asyncio.sleep(max(begun + times[end] - loop.time(), 0))
            if loop.time() >= deadline:
                break
            start = loop.time()
            request = request_bytes("POST", "/predict", {"strokes": strokes[: k + 1], "top_k": 5, "explain": True})
            out["statuses"].append(await connection.ask(request))
            out["explained_s"].append(loop.time() - start)
    finally:
        connection.close()


def _players(port: int, count: int, seconds: float, explain: bool, send) -> None:
    """In its own process, on its own core: ``count`` players for ``seconds``."""
    os.sched_setaffinity(0, {CLIENT_CORE})
    pool = drawings()

    async def main() -> dict:
        out: dict = {"delays": [], "statuses": [], "explained_s": []}
        deadline = asyncio.get_running_loop().time() + seconds
        # Players start spread over one interval, each on another drawing.
        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(player(port, pool, i * 7, deadline, out, explain)))
            await asyncio.sleep(INTERVAL_S / count)
        await asyncio.gather(*tasks)
        return out

    out = asyncio.run(main())
    out["statuses"] = [s.decode() for s in out["statuses"]]
    send.send(out)


def _p(values: list, q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if len(values) else float("nan")


def level(port: int, server, count: int, seconds: float, explain: bool) -> dict:
    receive, send = mp.Pipe(duplex=False)
    procs = tree(server)
    cpu0 = cpu_seconds(procs)
    client = mp.Process(target=_players, args=(port, count, seconds, explain, send))
    client.start()
    while not receive.poll(1.0):  # a players' process that fails sends nothing: stop, not wait forever
        if not client.is_alive():
            raise SystemExit(f"the players' process failed (exit code {client.exitcode}): its traceback is above")
    out = receive.recv()
    client.join()
    explained = len(out["explained_s"])
    return {
        "players": count,
        "guesses_per_s": (len(out["statuses"]) - explained) / seconds,
        "explained_per_s": explained / seconds,
        "p50_ms": _p(out["delays"], 50),
        "p95_ms": _p(out["delays"], 95),
        "explain_p95_ms": _p(out["explained_s"], 95),
        "server_cpu": (cpu_seconds(procs) - cpu0) / seconds,  # the server idles while players load
        "not_200": sum(s != "200" for s in out["statuses"]),
    }


def teach(port: int, count: int) -> None:
    """``count`` categories taught as a player teaches them (``POST /categories``, 5 real drawings each):
    with any taught, each guess also computes the drawing's embedding."""
    import httpx

    pool = [strokes for strokes, _ in drawings()]
    for i in range(count):
        examples = [pool[(5 * i + k) % len(pool)] for k in range(5)]
        response = httpx.post(
            f"http://127.0.0.1:{port}/categories", json={"name": f"taught {i}", "drawings": examples}, timeout=60
        )
        response.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, nargs="+", default=[20, 60, 100, 120, 130, 140, 150, 200])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--page",
        choices=["draw", "challenge"],
        default="draw",
        help="draw: live guesses and an explanation at each pen lift; challenge: live guesses only",
    )
    parser.add_argument(
        "--taught", type=int, default=0, help="categories players taught before the run (5 real drawings each)"
    )
    args = parser.parse_args()
    explain = args.page == "draw"
    if os.cpu_count() < 2:
        raise SystemExit("needs two cores: one for the server, one for the players")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"DATABASE_URL": f"sqlite:///{tmp}/players.db", "MIGRATE_ON_START": "true", "ACCESS_LOG": "false"}
        command = ["taskset", "-c", str(SERVER_CORE), *api_command(port)]
        with running(command, port, Path(tmp) / "api.log", env=env) as api:
            teach(port, args.taught)
            level(port, api.proc, 2, 2.0, explain)  # warm-up
            print(f"One API process on core {SERVER_CORE} (`uvicorn api.main:app`, default model, access log off,")
            print(f"{args.taught} categories taught);")
            print(f"players on core {CLIENT_CORE}, on the {args.page} page; a live guess at most every ", end="")
            print(
                f"{INTERVAL_S * 1000:.0f} ms each" + (", and an explanation at each pen lift.\n" if explain else ".\n")
            )
            print(
                "| players | guesses/s | explanations/s | p50 delay ms | p95 delay ms | explanation p95 ms "
                "| server CPU (cores) | not 200 |"
            )
            print("|---:|---:|---:|---:|---:|---:|---:|---:|")
            held = 0
            for count in args.players:
                r = level(port, api.proc, count, args.seconds, explain)
                print(
                    f"| {r['players']} | {r['guesses_per_s']:.0f} | {r['explained_per_s']:.0f} | {r['p50_ms']:.1f} | "
                    f"{r['p95_ms']:.1f} | {r['explain_p95_ms']:.1f} | {r['server_cpu']:.2f} | {r['not_200']} |",
                    flush=True,
                )
                explained_in_time = not explain or r["explain_p95_ms"] <= TARGET_P95_S * 1000
                if r["p95_ms"] <= TARGET_P95_S * 1000 and explained_in_time and not r["not_200"]:
                    held = max(held, count)
    print(
        f"\nHeld with p95 <= {TARGET_P95_S * 1000:.0f} ms: {held} players drawing at once on one core "
        f"({args.page} page)."
    )


if __name__ == "__main__":
    main()
