"""The one module that talks to the Deep Draw API.

Every failure becomes an ``ApiError`` whose message is written for the player: the pages show it
with ``st.error``/``st.info`` and never a traceback. Nothing failed is cached, so the app
recovers by itself as soon as the API answers again.
"""

from __future__ import annotations

import os

import httpx
import streamlit as st

DEFAULT_API_URL = "http://127.0.0.1:8000"
# Predictions take milliseconds; a server that needs seconds is treated as down, not waited for.
TIMEOUT = httpx.Timeout(5.0, connect=2.0)

# Tests put an httpx.MockTransport here (then call ``reset()``) to fake the API at the HTTP boundary.
transport: httpx.BaseTransport | None = None


class ApiError(Exception):
    """A call to the API failed; ``str(exc)`` says why in a sentence a player can read."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ApiUnavailable(ApiError):
    """The API is down, slow, or not ready yet (no model loaded): try again later."""


class ApiRejected(ApiError):
    """The API refused this request (4xx): the message names the problem, e.g. an empty drawing."""


def api_url() -> str:
    return os.environ.get("API_URL", DEFAULT_API_URL).rstrip("/")


@st.cache_resource(show_spinner=False)
def get_client(base_url: str) -> httpx.Client:
    # One keep-alive connection pool per process, shared by every session.
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, transport=transport)


def reset() -> None:
    """Forget the client and every cached answer (tests, or after changing ``transport``)."""
    get_client.clear()
    classes.clear()
    models.clear()
    limits.clear()
    predict.clear()
    thumbnail.clear()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else response.reason_phrase or f"HTTP {response.status_code}"


def _request(method: str, path: str, **kwargs) -> httpx.Response:
    url = api_url()
    try:
        response = get_client(url).request(method, path, **kwargs)
    except httpx.TimeoutException:
        raise ApiUnavailable(f"The API at {url} did not answer in time; it may be busy or starting.") from None
    except httpx.TransportError:
        raise ApiUnavailable(f"The API at {url} cannot be reached; is it running?") from None
    if response.status_code >= 500:
        raise ApiUnavailable(f"The API is not ready: {_detail(response)}", response.status_code)
    if response.status_code >= 400:
        raise ApiRejected(_detail(response), response.status_code)
    return response


def _call(method: str, path: str, **kwargs) -> dict:
    response = _request(method, path, **kwargs)
    try:
        return response.json()
    except ValueError:
        raise ApiUnavailable(f"The API at {api_url()} answered something that is not JSON.") from None


@st.cache_data(ttl=30, show_spinner=False)
def classes() -> list[str]:
    """Every category the API answers (built-in and taught), or the CNN's when it lists no such set."""
    listing = _call("GET", "/classes")
    names = [c["label"] for c in listing["all"]] if "all" in listing else listing.get("cnn")
    if not names:
        # Raised rather than returned, so an API without a model yet is not cached as "no classes".
        raise ApiUnavailable("The API has no model loaded yet; it is probably still starting.")
    return names


@st.cache_data(ttl=30, show_spinner=False)
def models() -> dict:
    """``GET /models``: metadata per model, the names ``/predict`` accepts (``available``), load errors."""
    out = _call("GET", "/models")
    if not out["available"]:
        errors = "; ".join(out["errors"].values())
        raise ApiUnavailable("The API has no model loaded yet" + (f": {errors}" if errors else "."))
    return out


def challenge() -> dict:
    """The default model's Challenge settings (its card's ``challenge``: threshold, prompts by recall)."""
    out = models()
    name = out["defaults"].get("strokes")
    spec = out["models"].get(name, {}).get("challenge") if name else None
    if not spec:
        raise ApiUnavailable(f"The API's default model ({name or 'none'}) has no Challenge settings.")
    return spec


@st.cache_data(ttl=300, show_spinner=False)
def limits() -> dict:
    """``GET /limits``: the API's published input limits (``max_top_k`` and the rest)."""
    return _call("GET", "/limits")


# A drawing is predicted again on every rerun of its page (any click): the same strokes are answered
# from this cache, and a new stroke is a new key.
@st.cache_data(ttl=600, max_entries=512, show_spinner=False)
def predict(
    strokes: list | None, model: str | None = None, top_k: int = 5, return_bitmap: bool = False, explain: bool = False
) -> dict:
    """``POST /predict`` with the drawing's strokes, by ``model`` or else the API's default (the player's);
    with ``explain``, the answer says what each stroke did (``explanation``)."""
    if not strokes:
        raise ApiRejected("empty drawing: nothing to guess yet")
    body = {"strokes": strokes, "top_k": top_k, "return_bitmap": return_bitmap}
    if explain:
        body["explain"] = True
    if model is not None:
        body["model"] = model
    return _call("POST", "/predict", json=body)


def submit(label: str, label_source: str, strokes: list, canvas: dict, predictions: list | None = None) -> dict:
    """``POST /submissions``: the stored submission with its ``id`` and ``delete_token``, once it is on disk.

    ``label_source`` says who gave the label ("player" chose it, "confirmed" the shown label):
    only such drawings go back into training.
    """
    body = {"label": label, "label_source": label_source, "strokes": strokes, "canvas": canvas}
    if predictions:
        body["predictions"] = [{"label": p["label"], "probability": p["probability"]} for p in predictions]
    return _call("POST", "/submissions", json=body)


def submissions(label: str | None = None, limit: int = 12, offset: int = 0) -> dict:
    """``GET /submissions``: one page of kept drawings, newest first, with the ``total``."""
    params: dict = {"limit": limit, "offset": offset}
    if label:
        params["label"] = label
    return _call("GET", "/submissions", params=params)


def submission_labels() -> dict[str, int]:
    """``GET /submissions/stats``: how many drawings each label has."""
    return _call("GET", "/submissions/stats")["labels"]


@st.cache_data(ttl=3600, max_entries=1024, show_spinner=False)
def thumbnail(submission_id: int, size: int = 112) -> bytes:
    """``GET /submissions/{id}/thumbnail.png``: the drawing rendered by the API from its strokes."""
    return _request("GET", f"/submissions/{submission_id}/thumbnail.png", params={"size": size}).content


def delete_submission(submission_id: int, token: str) -> None:
    """``DELETE /submissions/{id}`` with the token given at creation."""
    _request("DELETE", f"/submissions/{submission_id}", headers={"X-Delete-Token": token})


def post_score(name: str, rounds_won: int, rounds_played: int, total_seconds: float) -> dict:
    """``POST /scores``: the stored score (the API checks the name and the bounds)."""
    body = {"name": name, "rounds_won": rounds_won, "rounds_played": rounds_played, "total_seconds": total_seconds}
    return _call("POST", "/scores", json=body)


def scores(limit: int = 10) -> list[dict]:
    """``GET /scores``: the leaderboard, most rounds won first, then the fastest."""
    return _call("GET", "/scores", params={"limit": limit})["items"]
