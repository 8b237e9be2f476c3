"""Teaching and deleting categories while others predict and list them, on two workers sharing a
SQLite file: never a 5xx, never "database is locked", and every answered teach is stored."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

from tests.test_categories import examples, letter
from tests.utils.servers import running_api

SECONDS = 12


def test_teach_and_delete_race_predictions_and_listings(tmp_path):
    statuses: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def record(what: str, resp: httpx.Response) -> None:
        with lock:
            statuses[(what, resp.status_code)] += 1
            if resp.status_code >= 500:
                failures.append(f"{what} {resp.status_code}: {resp.text[:200]}")

    with running_api(f"sqlite:///{tmp_path}/race.db", tmp_path / "api.log", workers=2) as url:
        deadline = time.monotonic() + SECONDS

        def teacher(t: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                i = 0
                while time.monotonic() < deadline:
                    name = f"race {t} {i}"
                    resp = client.post("/categories", json={"name": name, "drawings": examples("K", 3, i)})
                    record("teach", resp)
                    if resp.status_code == 201:
                        token = {"X-Delete-Token": resp.json()["delete_token"]}
                        record("delete", client.delete(f"/categories/{name}", headers=token))
                    i += 1

        def reader() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                while time.monotonic() < deadline:
                    body = {"strokes": letter("K", 12, seed=7), "model": "prototypes"}
                    record("predict", client.post("/predict", json=body))
                    record("classes", client.get("/classes"))
                    record("categories", client.get("/categories"))

        threads = [threading.Thread(target=teacher, args=(t,)) for t in range(3)]
        threads += [threading.Thread(target=reader) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        left = httpx.get(f"{url}/categories", timeout=30).json()["items"]

    assert not failures, failures[:5]
    assert statuses[("teach", 201)] >= 3 and statuses[("delete", 204)] == statuses[("teach", 201)], statuses
    assert {status for (_, status) in statuses} <= {200, 201, 204}, statuses
    assert left == []  # every category taught was deleted by its teacher
