"""A fake Deep Draw API at the HTTP boundary (an httpx.MockTransport) for the Streamlit page tests,
and helpers to run a page with AppTest. ``tests/test_frontend_contract.py`` holds the fake to the
real OpenAPI schema."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

import api_client

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
THRESHOLD = 0.62  # the fake default model's Challenge threshold

CLASSES = ["airplane", "apple", "banana", "bicycle", "cat", "dog", "fish", "house"]
# A cat as the sketchpad sends it: two strokes (head, then an ear), canvas pixels.
CAT_STROKES = [
    [[100.0, 150.0, 200.0, 100.0], [200.0, 100.0, 200.0, 200.0]],
    [[110.0, 120.0, 140.0], [150.0, 110.0, 140.0]],
]
DRAWING = {"strokes": CAT_STROKES, "canvas": {"width": 360, "height": 360}, "image": None}
CREATED = "2026-11-30T04:00:00+00:00"
# A 1x1 PNG: what a thumbnail looks like to the page.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAG7buVgAAAABJRU5ErkJggg==")


class FakeApi:
    """Answers like the Deep Draw API (the contract test at the end of this file holds it to the real schema)."""

    def __init__(self):
        self.mode = "up"  # "up", "down" (connection refused), "slow" (timeout), "loading" (503)
        self.available = ["cnn"]
        self.top = "cat"
        self.top_probability = 0.8
        # What the explanation names: the strokes whose removal changes the guess, and the guess then.
        self.counterfactual: dict | None = {"remove": [0], "label": "house"}
        self.max_top_k = 50
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []
        self.submissions: list[dict] = []
        self.scores: list[dict] = []

    def _probabilities(self, top_k: int) -> list[dict]:
        others = [c for c in CLASSES if c != self.top]
        rest = 1 - self.top_probability
        probs = [self.top_probability] + [rest / 2 ** (i + 1) for i in range(len(others))]
        return [{"label": c, "probability": p} for c, p in zip([self.top, *others], probs, strict=True)][:top_k]

    def _explanation(self, strokes: list) -> dict:
        removed = self.counterfactual["remove"] if self.counterfactual else []
        parts = [
            {"index": i, "drop": 0.5 if i in removed else 0.05, "label_without": self.top} for i in range(len(strokes))
        ]
        if self.counterfactual and len(removed) == 1:
            parts[removed[0]]["label_without"] = self.counterfactual["label"]
        return {
            "label": self.top,
            "probability": self.top_probability,
            "strokes": parts,
            "strokes_total": len(strokes),
            "counterfactual": self.counterfactual,
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "slow":
            raise httpx.ReadTimeout("timed out", request=request)
        response = self.answer(request)
        self.exchanges.append((request, response))
        return response

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path, method = request.url.path, request.method
        if self.mode == "loading":
            return httpx.Response(503, json={"detail": "no model is loaded: model store is empty"})
        if path == "/classes":
            return httpx.Response(200, json={"cnn": CLASSES, "all": [{"label": c, "kind": "trained"} for c in CLASSES]})
        if path == "/limits":
            limits = {"max_batch_items": 64, "max_body_bytes": 2_000_000, "max_points": 20_000}
            return httpx.Response(200, json={"max_top_k": self.max_top_k, **limits, "max_image_pixels": 16_777_216})
        if path == "/models":
            meta = {
                name: {
                    "name": name,
                    "version": "20261124-1200",
                    "kind": name,
                    "classes": CLASSES,
                    "metrics": {"split": "test", "top1": 0.8123, "top5": 0.9456, "macro_f1": 0.8},
                    "runtime": "onnx",
                    "challenge": {
                        "threshold": THRESHOLD,
                        "prompts": CLASSES,
                        "recall": [round(0.9 - 0.05 * i, 2) for i in range(len(CLASSES))],
                    },
                }
                for name in self.available
            }
            defaults = dict.fromkeys(("strokes", "bitmap", "image"), self.available[0])
            return httpx.Response(
                200, json={"models": meta, "available": self.available, "defaults": defaults, "errors": {}}
            )
        if path == "/predict":
            if body["top_k"] > self.max_top_k:
                return httpx.Response(422, json={"detail": f"top_k must be between 1 and {self.max_top_k}"})
            out = {
                "predictions": self._probabilities(body["top_k"]),
                "model": {"name": body.get("model", self.available[0]), "version": "20261124-1200"},
                "timings_ms": {"preprocess": 0.5, "inference": 1.0},
            }
            if body.get("return_bitmap"):
                out["bitmap"] = [[255 if 8 < r < 20 and 8 < c < 20 else 0 for c in range(28)] for r in range(28)]
            if body.get("explain"):
                out["explanation"] = self._explanation(body["strokes"])
            return httpx.Response(200, json=out)
        if path == "/submissions" and method == "POST":
            item = {"id": len(self.submissions) + 1, "created_at": CREATED, "simplified": [], **body}
            self.submissions.append(item)
            return httpx.Response(201, json={**item, "delete_token": f"token-{item['id']}"})
        if path == "/submissions" and method == "GET":
            label = request.url.params.get("label")
            limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
            items = [
                {k: v for k, v in s.items() if k not in ("strokes", "simplified")}
                | {
                    "strokes_count": len(s["strokes"]),
                    "points_count": sum(len(stroke[0]) for stroke in s["strokes"]),
                    "thumbnail": f"/submissions/{s['id']}/thumbnail.png",
                }
                for s in reversed(self.submissions)
                if label in (None, s["label"])
            ]
            page = {"items": items[offset : offset + limit], "total": len(items), "limit": limit, "offset": offset}
            return httpx.Response(200, json=page)
        if path == "/submissions/stats":
            labels: dict[str, int] = {}
            for s in self.submissions:
                labels[s["label"]] = labels.get(s["label"], 0) + 1
            return httpx.Response(200, json={"total": len(self.submissions), "labels": labels})
        if match := re.fullmatch(r"/submissions/(\d+)/thumbnail.png", path):
            return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        if (match := re.fullmatch(r"/submissions/(\d+)", path)) and method == "DELETE":
            ids = [s["id"] for s in self.submissions]
            sid = int(match.group(1))
            if sid not in ids:
                return httpx.Response(404, json={"detail": f"no submission {sid}"})
            if request.headers.get("X-Delete-Token") != f"token-{sid}":
                return httpx.Response(403, json={"detail": "wrong delete token"})
            self.submissions = [s for s in self.submissions if s["id"] != sid]
            return httpx.Response(204)
        if path == "/scores" and method == "POST":
            if not re.fullmatch(r"[A-Za-z0-9 _.-]{1,24}", body["name"]):
                return httpx.Response(422, json={"detail": "name must be 1-24 letters, digits, spaces, _ - or ."})
            item = {"id": len(self.scores) + 1, **body, "created_at": CREATED}
            self.scores.append(item)
            return httpx.Response(201, json=item)
        if path == "/scores" and method == "GET":
            ranked = sorted(self.scores, key=lambda s: (-s["rounds_won"], s["total_seconds"]))
            return httpx.Response(200, json={"items": ranked[: int(request.url.params.get("limit", 10))]})
        return httpx.Response(404, json={"detail": "Not Found"})

    def bodies(self, path: str) -> list[dict]:
        return [json.loads(r.content) for r, _ in self.exchanges if r.url.path == path and r.content]

    def predict_bodies(self) -> list[dict]:
        return self.bodies("/predict")


@pytest.fixture
def fake():
    fake = FakeApi()
    api_client.transport = httpx.MockTransport(fake.handler)
    api_client.reset()
    yield fake
    api_client.transport = None
    api_client.reset()


def app(page: str | None = None, drawing: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(FRONTEND / "app.py"), default_timeout=30)
    if drawing is not None:
        at.session_state["drawing"] = drawing
    if page:
        at.switch_page(f"views/{page}.py")
    return at.run()


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "subheader", "caption", "info", "error", "warning", "success")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def charts(at: AppTest) -> list[str]:
    """The alt text of each chart on the page: it lists the guesses shown."""
    return [chart.proto.alt for chart in at.get("vega_lite_chart")]


def shifted(dx: float) -> dict:
    return {**DRAWING, "strokes": [[[x + dx for x in xs], ys] for xs, ys in CAT_STROKES]}
