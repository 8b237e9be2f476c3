"""python -m api.serve for real: supervised workers, connection deadlines and body limits.

Workers are killed with SIGKILL, the supervisor too; the deadlines and limits are driven with raw
sockets (a client that trickles, stalls or sends chunked bodies, as a hostile one would).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.utils.fixtures import official_drawings
from tests.utils.servers import REPO, api_env
from tests.utils.serving import ApiServer, alive, children

SUBMISSION = {"label": "cat", "strokes": [[[0, 40, 80, 120], [0, 60, 0, 60]]], "canvas": {"width": 256, "height": 256}}
BITMAP = {"bitmap": [0] * 300 + [255] * 184 + [0] * 300}


# --- supervision -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("standby", "limit_s"),
    # Without the warm standby a new worker must load its models first: seconds on a busy machine.
    [(True, 5), (False, 20)],
    ids=["standby", "no-standby"],
)
def test_killed_worker_is_replaced_under_load_and_nothing_acknowledged_is_lost(tmp_path, standby, limit_s):
    with ApiServer(tmp_path, workers=2, standby=standby) as server:
        before = server.workers_pids()
        stop = threading.Event()
        acked: list[int] = []
        ready: list[tuple[float, int | str]] = []  # (start, status or error) of every /ready probe

        def submit() -> None:
            # A new connection per request, so the kernel spreads them over both workers.
            while not stop.is_set():
                try:
                    r = httpx.post(f"{server.url}/submissions", json=SUBMISSION, timeout=10)
                except httpx.HTTPError:
                    continue  # in flight on the killed worker: not acknowledged
                if r.status_code == 201:
                    acked.append(r.json()["id"])

        def probe() -> None:
            # /ready is honest: whenever it says ready, a prediction on a new connection succeeds.
            while not stop.is_set():
                # Timed from its start: a probe in flight at the kill may fail late on a busy machine.
                started = time.monotonic()
                try:
                    r = httpx.get(f"{server.url}/ready", timeout=5)
                    outcome: int | str = r.status_code
                    if r.status_code == 200:
                        assert httpx.post(f"{server.url}/predict", json=BITMAP, timeout=5).status_code == 200
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                ready.append((started, outcome))
                time.sleep(0.02)

        threads = [threading.Thread(target=submit) for _ in range(3)] + [threading.Thread(target=probe)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.5)
            served = {line.get("pid") for line in server.log_lines()} & before  # both workers, by now
            victim = min(served)
            os.kill(victim, signal.SIGKILL)
            killed, killed_at = time.monotonic(), time.time()
            replaced_after = None
            while replaced_after is None and time.monotonic() - killed < 30:
                time.sleep(0.2)
                # When a process that had not served before answered its first request, by the
                # server's own clock (the test's threads share 2 busy cores: polling adds delays).
                first = [line["ts"] for line in server.log_lines() if line.get("pid") not in served | {None}]
                if first:
                    replaced_after = min(first) - killed_at
            # Keep the load on until the probe has answered a few more times (slow on a busy machine).
            while time.monotonic() - killed < 30 and len([t for t, _ in ready if t > killed + 0.5]) < 3:
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        print(f"worker {victim} killed; a new worker served requests {replaced_after} s later")
        assert replaced_after is not None and replaced_after < limit_s
        assert len(server.workers_pids()) == server.processes and victim not in server.workers_pids()
        # Only probes in flight at the kill may fail; every answer /ready gave was 200 (and true).
        late_failures = [o for t, o in ready if t > killed + 0.5 and o != 200]
        assert not late_failures, late_failures
        assert [o for t, o in ready if t > killed + 0.5].count(200) >= 3  # it kept answering, and truly
        # Nothing acknowledged is lost.
        assert len(acked) >= 10
        with httpx.Client(base_url=server.url, timeout=10) as http:
            missing = [i for i in acked if http.get(f"/submissions/{i}").status_code != 200]
            assert not missing
            restarts = [m for m in http.get("/metrics").text.splitlines() if m.startswith("deepdraw_worker_restarts")]
            assert restarts == ["deepdraw_worker_restarts_total 1.0"]


def test_a_hung_worker_is_replaced(tmp_path):
    """A worker stopped with SIGSTOP still takes connections on its socket; the supervisor hears its
    loop go silent, kills it and lets the standby serve: /health answers every probe again."""
    with ApiServer(tmp_path, workers=2) as server:
        for _ in range(20):  # new connections: both serving workers answer some (the standby none)
            httpx.get(f"{server.url}/health", timeout=5)
        victim = min({line.get("pid") for line in server.log_lines()} & server.workers_pids())
        os.kill(victim, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            while alive(victim) and time.monotonic() - stopped < 30:
                time.sleep(0.2)
            replaced_after = time.monotonic() - stopped
            assert not alive(victim), "the stopped worker was never killed"
            assert replaced_after < 10
            # Every new connection is answered now (a stopped worker's socket would hold some).
            probes = [httpx.get(f"{server.url}/health", timeout=2).status_code for _ in range(40)]
            assert probes == [200] * 40
            assert len(server.workers_pids()) == server.processes and victim not in server.workers_pids()
            assert "has not answered for" in server.log_path.read_text()
        finally:
            if alive(victim):
                os.kill(victim, signal.SIGCONT)
        print(f"worker {victim} stopped; killed and replaced {replaced_after:.1f} s later")


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def test_large_images_take_turns_so_memory_stays_bounded(tmp_path):
    """A small PNG of 4096x4096 pixels decodes to hundreds of MB of work: such images are gated by
    their pixels (read from the header), one at a time per worker, however many arrive at once."""
    import base64
    import io
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image, ImageDraw

    picture = Image.new("L", (4096, 4096), 255)
    ImageDraw.Draw(picture).ellipse((800, 800, 3300, 3300), outline=0, width=60)
    buf = io.BytesIO()
    picture.save(buf, "PNG", optimize=True)
    body = {"image": base64.b64encode(buf.getvalue()).decode()}
    assert len(buf.getvalue()) < 200_000  # small on the wire
    with ApiServer(tmp_path, workers=1, standby=False) as server:
        (worker,) = server.workers_pids()
        httpx.post(f"{server.url}/predict", json=body, timeout=60)  # warm: the first decode's peak
        before = _peak_rss_mb(worker)
        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda _: httpx.post(f"{server.url}/predict", json=body, timeout=120), range(6)))
        grew = _peak_rss_mb(worker) - before
    assert [r.status_code for r in statuses] == [200] * 6
    print(f"6 concurrent 4096x4096 images: peak RSS grew {grew:.0f} MB")
    assert grew < 150  # one decode at a time: no more than the warm-up's peak, give or take


def test_large_bodies_are_parsed_off_the_event_loop(tmp_path):
    """8 legal-size (2 MB) teaches at once, each refused only once parsed (two drawings, three
    needed): /health keeps answering meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    axis = ",".join(["123.5"] * 20_000)
    stroke = f"[[{axis}], [{axis}]]"
    body = f'{{"name": "big", "drawings": [[{",".join([stroke] * 7)}], [[[1, 2], [1, 2]]]]}}'.encode()
    assert 1_500_000 < len(body) < 2_000_000
    with ApiServer(tmp_path, workers=1, standby=False) as server:
        probes: list[float] = []
        done, connected = threading.Event(), threading.Event()

        def probe() -> None:
            with httpx.Client(timeout=10) as client:
                # Connected before the uploads begin: the probes time /health, not a TCP handshake.
                assert client.get(f"{server.url}/health").status_code == 200
                connected.set()
                while not done.is_set():
                    started = time.monotonic()
                    assert client.get(f"{server.url}/health").status_code == 200
                    probes.append(time.monotonic() - started)
                    time.sleep(0.02)

        prober = threading.Thread(target=probe)
        prober.start()
        assert connected.wait(10)
        try:
            with ThreadPoolExecutor(8) as pool:
                post = lambda _: httpx.post(  # noqa: E731
                    f"{server.url}/categories", content=body, headers={"content-type": "application/json"}, timeout=60
                )
                answers = list(pool.map(post, range(8)))
        finally:
            done.set()
            prober.join()
    assert [r.status_code for r in answers] == [422] * 8
    assert "drawings: List should have at least 3 items" in answers[0].json()["detail"]
    print(f"/health during 8 x 2 MB teaches: {len(probes)} probes, worst {max(probes) * 1000:.0f} ms")
    # A probe may wait for the one parse in progress (pydantic holds the GIL: ~50 ms idle, 250+ ms on
    # 2 busy cores); where the parse runs is checked without a clock below.
    assert max(probes) < 1.0


def test_a_large_body_is_parsed_in_the_thread_pool_a_small_one_on_the_loop(client, monkeypatch):
    """Deterministic half of the test above: whether ``api.bodies`` parses on the event loop."""
    import asyncio

    from api import bodies

    where: list[str] = []
    validate = bodies._validate

    def spy(model, raw):
        try:
            asyncio.get_running_loop()
            where.append("loop")
        except RuntimeError:
            where.append("thread pool")
        return validate(model, raw)

    monkeypatch.setattr(bodies, "_validate", spy)
    axis = ",".join(["123.5"] * 20_000)
    stroke = f"[[{axis}], [{axis}]]"
    big = f'{{"name": "big", "drawings": [[{",".join([stroke] * 7)}], [[[1, 2], [1, 2]]]]}}'.encode()  # as above
    assert len(big) > bodies.LARGE_BODY_BYTES
    small = b'{"name": "small", "drawings": [[[[1, 2], [1, 2]]]]}'
    for content in (big, small):
        assert (
            client.post("/categories", content=content, headers={"content-type": "application/json"}).status_code == 422
        )
    assert where == ["thread pool", "loop"]


def test_killing_the_supervisor_leaves_no_orphan(tmp_path):
    server = ApiServer(tmp_path, workers=2).start()
    assert server.proc is not None
    family = children(server.proc.pid)
    assert len(server.workers_pids()) == server.processes  # 2 workers and the standby
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in family):
        time.sleep(0.1)
    assert not [p for p in family if alive(p)]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)


def _run_serve(port: int, tmp_path: Path) -> subprocess.CompletedProcess:
    env = api_env(f"sqlite:///{tmp_path}/x.db")
    command = [sys.executable, "-m", "api.serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_second_instance_on_the_same_port_is_refused(tmp_path):
    with ApiServer(tmp_path, workers=2) as server:
        workers = server.workers_pids()
        second = _run_serve(server.port, tmp_path)
        assert second.returncode != 0
        assert "another api.serve already serves port" in second.stderr
        assert server.workers_pids() == workers
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200


def test_port_held_by_another_program_is_refused(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        result = _run_serve(other.getsockname()[1], tmp_path)
    assert result.returncode != 0
    assert "is already in use" in result.stderr and "refusing to share" in result.stderr


# --- deadlines and body limits (raw sockets against one server with 1 s deadlines) --------------

DEADLINE_S = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"TIMEOUT_KEEP_ALIVE_S": "1", "TIMEOUT_HEADER_S": "1", "TIMEOUT_BODY_S": "1", "MAX_HEADER_BYTES": "8192"}
    env |= {"TIMEOUT_SEND_S": "1"}
    with ApiServer(tmp_path_factory.mktemp("serve"), workers=1, env=env) as s:
        yield s


def _connect(server: ApiServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def _read_all(sock: socket.socket, limit_s: float = 10) -> tuple[bytes, float]:
    """Everything until the server closes the connection, and how long that took."""
    start = time.monotonic()
    data = b""
    sock.settimeout(limit_s)
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - start


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _json_detail(response: bytes) -> str:
    import json

    return json.loads(response.split(b"\r\n\r\n", 1)[1])["detail"]


def test_connection_idle_before_its_first_request_is_closed(server):
    with _connect(server) as sock:
        data, took = _read_all(sock)
    assert data == b"" and took < DEADLINE_S + 3


def test_keep_alive_connection_is_closed_when_idle(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        data, took = _read_all(sock)
    assert data.startswith(b"HTTP/1.1 200") and took < DEADLINE_S + 3


def test_slow_headers_get_408_however_steadily_they_trickle(server):
    request = b"GET /health HTTP/1.1\r\nHost: t\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with _connect(server) as sock:
        start = time.monotonic()
        for byte in request:  # one byte every 50 ms: 11 s for the whole head if nobody stops it
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if select.select([sock], [], [], 0.05)[0]:
                break
        data, _ = _read_all(sock)
        took = time.monotonic() - start
    assert _status(data) == 408 and "headers not received within 1 s" in _json_detail(data)
    assert took < DEADLINE_S + 3


def test_oversized_headers_get_431(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        data, _ = _read_all(sock)
    assert _status(data) == 431 and "headers larger than 8192 bytes" in _json_detail(data)


def test_a_client_that_stops_reading_is_dropped(server):
    """Answers asked for and never read: the connection goes once the send buffer stays full."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        sock.connect(("127.0.0.1", server.port))
        request = b"GET /openapi.json HTTP/1.1\r\nHost: t\r\n\r\n"
        sock.sendall(request * 200)  # pipelined: megabytes of answers queue up on the server
        time.sleep(DEADLINE_S + 2)
        data, took = _read_all(sock, limit_s=5)
    assert took < 5  # closed by the server, not by our read timeout
    assert data.count(b"HTTP/1.1 200") < 200


def test_stalled_body_gets_408(server):
    with _connect(server) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            + b'{"bitmap": ['
        )
        data, took = _read_all(sock)
    assert _status(data) == 408 and _json_detail(data) == "request body not received within 1 s"
    assert took < DEADLINE_S + 3


def test_chunked_body_over_the_limit_gets_413(server):
    limit = 2_000_000
    chunk = b"0," * 32_768
    head = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    with _connect(server) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n" % (12, b'{"bitmap": ['))
        sent = 12
        while sent < 3 * limit and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                break
            sent += len(chunk)
        data, _ = _read_all(sock)
    assert _status(data) == 413, data[:300]
    assert _json_detail(data) == f"request body too large: limit is {limit} bytes"


def test_gzip_body_gets_415(server):
    import gzip

    r = httpx.post(
        f"{server.url}/predict",
        content=gzip.compress(b'{"bitmap": [0]}'),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 415
    assert r.json() == {"detail": "Content-Encoding 'gzip' is not supported: send the body uncompressed"}


def test_undecodable_body_gets_400_naming_utf8(server):
    r = httpx.post(
        f"{server.url}/predict", content=b'{"model": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json() == {"detail": "request body is not UTF-8 (byte 11: invalid start byte); send UTF-8 JSON"}


def test_a_forked_worker_explains_with_a_helper_of_its_own(server):
    """The worker is forked from the supervisor: its explanations share their rows with its own helper thread."""
    strokes = next(d for d in official_drawings() if len(d) >= 12)
    plain = httpx.post(f"{server.url}/predict", json={"strokes": strokes, "top_k": 5}, timeout=30).json()
    explained = httpx.post(f"{server.url}/predict", json={"strokes": strokes, "top_k": 5, "explain": True}, timeout=30)
    assert explained.status_code == 200, explained.text
    assert explained.json()["predictions"] == plain["predictions"]
    assert [s["index"] for s in explained.json()["explanation"]["strokes"]] == list(range(len(strokes)))


def test_body_limits_leave_good_requests_alone(server):
    r = httpx.post(f"{server.url}/predict", json=BITMAP)
    assert r.status_code == 200 and r.json()["predictions"]
    # A declared Content-Length over the limit is refused before a byte of the body is read.
    r = httpx.post(f"{server.url}/predict", content=b" " * 2_000_001, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"].startswith("request body too large")
