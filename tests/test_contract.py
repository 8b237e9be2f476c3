"""The OpenAPI contract tells the truth: schemathesis against a real server, and a fuzz of extremes.

Every operation of the published schema gets generated requests (valid and invalid); every answer
must be a documented status with a body matching its declared schema, and never a 5xx. Some rules
cannot be written in JSON Schema (a stroke's x and y lists of the same length, base64 that decodes
to a picture, seconds bounded by the rounds played), so schemathesis' own
``positive_data_acceptance`` check is left out; instead a schema-valid request may be refused only
for those rules, and once a request obeys them, most must be accepted.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections import Counter
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from PIL import Image, ImageDraw
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from store.tables import MAX_SECONDS_PER_ROUND, MIN_SECONDS_PER_ROUND
from tests.utils.servers import running_api

EXAMPLES_PER_OPERATION = 60
REQUESTS = {"sent": 0}


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    with running_api(f"sqlite:///{tmp}/submissions.db", tmp / "api.log") as url:
        yield url


def _schema():
    """The published schema, built in-process (no models needed); requests go to the live server."""
    from api.main import create_app

    # An invalid request may also be refused for its size (413) or its encoding (415).
    config = SchemathesisConfig.from_dict(
        {
            "checks": {
                "negative_data_rejection": {"expected-statuses": ["400", "403", "404", "405", "413", "415", "422"]}
            }
        }
    )
    return schemathesis.openapi.from_dict(create_app().openapi(), config=config)


SCHEMA = _schema()
OPERATIONS = {op.ok().label: op.ok() for op in SCHEMA.get_all_operations()}


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_keeps_its_contract(label, mode, live_api):
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=OPERATIONS[label].as_strategy(mode))
    def check(case):
        REQUESTS["sent"] += 1
        case.call_and_validate(
            base_url=live_api, session=session, excluded_checks=[positive_data_acceptance], timeout=30
        )

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.NEGATIVE:
            pytest.skip(f"{label} takes no input that could be made invalid")
        raise


# Rules JSON Schema cannot state (or that depend on what is stored): a schema-valid request may be
# refused for these, with a 4xx naming the rule. Any other refusal means the schema is silent on a
# rule the API enforces.
UNSTATED = re.compile(
    "|".join(
        [
            r"have different lengths",  # a stroke's x and y (and t) lists of one length
            r"too many points",  # points summed over strokes, or over a batch's items
            r"image (is not valid base64|is empty|could not be decoded|too large)",  # a picture in the base64
            r"must not hold invisible characters|mixes scripts",  # store.names
            r"name is too long|name must be 1-\d+ characters",  # counted after spaces are collapsed
            r"rounds_won \(\d+\) > rounds_played|total_seconds \(",  # one field bounded by another
            r"exists already|is already a category|taught categories \(at most",  # what is stored: 409
            r"^no (submission|taught category)",  # ids and names that are not stored: 404
            r"X-Delete-Token is missing or does not match",  # a stored one, without its secret: 403
        ]
    )
)
WRITES = [label for label in sorted(OPERATIONS) if label.split()[0] in ("POST", "DELETE") or "{" in label]
# Operations whose answer does not hang on what is stored: once a request obeys the rules above
# that a client can obey (equal x and y, a picture in the base64, seconds that fit the rounds),
# most schema-valid requests must be accepted.
STATELESS = [label for label in WRITES if label.startswith("POST")]


def _picture() -> str:
    image = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(image).ellipse((8, 8, 56, 56), outline=0, width=3)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


PICTURE = _picture()


def _same_length_axes(stroke: list) -> list:
    """A stroke's axes padded to the longest with their last value (0 for an empty one)."""
    n = max(len(axis) for axis in stroke)
    return [axis + [axis[-1] if axis else 0.0] * (n - len(axis)) for axis in stroke]


def obey_unstated_rules(value, key: str = ""):
    """A generated body changed only where it breaks a rule JSON Schema cannot state."""
    if isinstance(value, dict):
        value = {k: obey_unstated_rules(v, k) for k, v in value.items()}
        if "rounds_played" in value and "total_seconds" in value:
            rounds = value["rounds_played"]
            value["rounds_won"] = min(value.get("rounds_won", 0), rounds)
            low, high = MIN_SECONDS_PER_ROUND * rounds, MAX_SECONDS_PER_ROUND * rounds
            value["total_seconds"] = min(max(value["total_seconds"], low), high)
        return value
    if key == "image" and isinstance(value, str):
        return PICTURE
    if key == "strokes" and isinstance(value, list):
        return [_same_length_axes(stroke) for stroke in value]
    if key == "drawings" and isinstance(value, list):
        return [[_same_length_axes(stroke) for stroke in drawing] for drawing in value]
    if isinstance(value, list):
        return [obey_unstated_rules(v, key) for v in value]
    return value


def _positive_answers(label: str, live_api: str, fix) -> list[tuple[int, str]]:
    session = requests.Session()
    answers: list[tuple[int, str]] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    @given(case=OPERATIONS[label].as_strategy(GenerationMode.POSITIVE))
    def check(case):
        if fix and isinstance(case.body, dict):
            case.body = obey_unstated_rules(case.body)
        response = case.call(base_url=live_api, session=session, timeout=30)
        detail = response.json().get("detail", "") if response.status_code >= 400 else ""
        answers.append((response.status_code, str(detail)))
        if fix and label == "POST /categories" and response.status_code == 201:
            # Taught names are unique: the next example may reuse this one, so it goes again.
            taught = response.json()
            gone = session.delete(
                f"{live_api}/categories/{quote(taught['name'], safe='')}",
                headers={"X-Delete-Token": taught["delete_token"]},
                timeout=30,
            )
            assert gone.status_code == 204, gone.text

    check()
    return answers


def _accepted(label: str, answers: list[tuple[int, str]], how: str) -> int:
    """How many were accepted; fails when one was refused for a rule the schema states."""
    gaps = [(status, detail) for status, detail in answers if status >= 400 and not UNSTATED.search(detail)]
    accepted = sum(status < 300 for status, _ in answers)
    print(f"{label}{how}: {accepted} of {len(answers)} schema-valid requests accepted")
    assert not gaps, gaps[:5]
    return accepted


@pytest.mark.parametrize("label", WRITES)
def test_schema_valid_requests_are_refused_only_for_rules_the_schema_cannot_state(label, live_api):
    _accepted(label, _positive_answers(label, live_api, fix=False), "")


@pytest.mark.parametrize("label", STATELESS)
def test_most_schema_valid_requests_are_accepted_once_they_obey_the_unstated_rules(label, live_api):
    answers = _positive_answers(label, live_api, fix=True)
    accepted = _accepted(label, answers, ", unstated rules obeyed")
    assert accepted > len(answers) / 2, Counter(detail for status, detail in answers if status >= 300).most_common(5)


def test_enough_requests_were_sent():
    """The run above is not a token one (this test runs after it, in file order)."""
    assert REQUESTS["sent"] >= 1000, REQUESTS


# --- extreme numbers and strings, structure-aware ------------------------------------------------

EXTREME_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e308, -1e308, 1.7976931348623157e308]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
STRANGE_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u202e", "😀" * 40, " ", "\n", "cat" * 30]),
)
AXIS = st.lists(EXTREME_FLOATS, min_size=0, max_size=40)


@st.composite
def strokes(draw):
    n = draw(st.integers(1, 6))
    out = []
    for _ in range(n):
        k = draw(st.integers(0, 40))
        xs = draw(st.lists(EXTREME_FLOATS, min_size=k, max_size=k))
        ys = draw(st.lists(EXTREME_FLOATS, min_size=k, max_size=k))
        out.append([xs, ys])
    return out


def _json_text(value) -> str:
    """JSON by hand, so lone surrogates travel as \\ud800 escapes the way a hostile client sends them."""
    import json

    return json.dumps(value, ensure_ascii=True)


@pytest.fixture(scope="module")
def http(live_api):
    with httpx.Client(base_url=live_api, timeout=30, headers={"content-type": "application/json"}) as c:
        yield c


def _post(http, path: str, body) -> httpx.Response:
    resp = http.post(path, content=_json_text(body))
    assert resp.status_code < 500, f"{path} {resp.status_code}: {resp.text[:300]}"
    assert isinstance(resp.json()["detail"] if resp.status_code >= 400 else resp.json(), str | dict)
    return resp


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(drawing=strokes(), model=st.one_of(st.none(), STRANGE_TEXT, st.sampled_from(["cnn", "rnn", "ensemble"])))
def test_extreme_strokes_never_give_a_5xx(http, drawing, model):
    body = {"strokes": drawing} | ({} if model is None else {"model": model})
    resp = _post(http, "/predict", body)
    if resp.status_code == 200:
        probs = [p["probability"] for p in resp.json()["predictions"]]
        assert all(math.isfinite(p) and 0 <= p <= 1 for p in probs)
    _post(http, "/predict/batch", {"items": [body, body]})


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(drawing=strokes(), label=STRANGE_TEXT, pred_label=STRANGE_TEXT, prob=EXTREME_FLOATS)
def test_strange_submissions_are_stored_as_acknowledged_or_refused(http, drawing, label, pred_label, prob):
    body = {
        "label": label,
        "strokes": drawing,
        "canvas": {"width": 400, "height": 400},
        "predictions": [{"label": pred_label, "probability": prob}],
    }
    resp = _post(http, "/submissions", body)
    if resp.status_code == 201:
        stored = http.get(f"/submissions/{resp.json()['id']}")
        assert stored.status_code == 200, stored.text
        assert stored.json()["label"] == resp.json()["label"]
        assert stored.json()["predictions"] == resp.json()["predictions"]


@pytest.mark.parametrize("path", ["/submissions", "/predict"])
def test_405_names_every_method_served(http, path):
    resp = http.request("PUT", path)
    assert resp.status_code == 405
    allowed = set(resp.headers["allow"].split(", "))
    assert {"POST"} <= allowed
    if path == "/submissions":
        assert {"GET", "POST"} <= allowed
