"""The fake API of the page tests, held to the real OpenAPI schema."""

from __future__ import annotations

import json
import re

import httpx
import pytest

import api_client
from tests.utils.fake_api import (
    CAT_STROKES,
    DRAWING,
)


@pytest.fixture(scope="module")
def openapi() -> dict:
    from api.main import create_app

    return create_app().openapi()


def operation(schema: dict, method: str, path: str) -> dict:
    for template, ops in schema["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) and method.lower() in ops:
            return ops[method.lower()]
    raise AssertionError(f"the fake answers {method} {path}, which the real API does not have")


def conforms(schema: dict, part: dict | None, value, what: str) -> None:
    import jsonschema

    if not part:
        return
    # Refs point into the document's components: validate with them alongside.
    jsonschema.validate(value, {**part, "components": schema["components"]}, cls=jsonschema.Draft202012Validator)


def check_exchange(schema: dict, request: httpx.Request, response: httpx.Response) -> None:
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    op = operation(schema, request.method, request.url.path)
    known = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    assert set(request.url.params) <= known, f"{where}: query {set(request.url.params) - known} unknown"
    if request.content and response.status_code != 422:  # what a player typed may break a rule: then a 422
        body_schema = op["requestBody"]["content"]["application/json"]["schema"]
        conforms(schema, body_schema, json.loads(request.content), f"{where} request")
    answer = op["responses"].get(str(response.status_code))
    assert answer is not None, f"{where}: the real API never answers {response.status_code} here"
    media = response.headers.get("content-type", "").split(";")[0]
    if response.status_code == 204:
        return
    assert media in answer.get("content", {media: None}), f"{where}: {media} not in {list(answer['content'])}"
    if media == "application/json":
        conforms(schema, answer.get("content", {}).get(media, {}).get("schema"), response.json(), where)


def test_fake_api_matches_the_real_openapi_schema(fake, openapi):
    """Every call the pages make, answered by the fake, must fit the real app's schema (no drift)."""
    fake.available = ["cnn", "rnn", "ensemble"]
    api_client.classes()
    api_client.models()
    api_client.limits()
    api_client.predict(CAT_STROKES, "cnn", 5, True)
    saved = api_client.submit("cat", "player", CAT_STROKES, DRAWING["canvas"], [{"label": "cat", "probability": 0.8}])
    api_client.submissions("cat", 12, 0)
    api_client.submission_labels()
    api_client.thumbnail(saved["id"])
    with pytest.raises(api_client.ApiRejected):
        api_client.delete_submission(saved["id"], "wrong")  # 403
    api_client.delete_submission(saved["id"], saved["delete_token"])  # 204
    with pytest.raises(api_client.ApiRejected):
        api_client.delete_submission(saved["id"], saved["delete_token"])  # 404
    api_client.post_score("Ada", 3, 6, 71.5)
    with pytest.raises(api_client.ApiRejected):
        api_client.post_score("<b>", 3, 6, 71.5)  # 422
    api_client.scores(10)
    with pytest.raises(api_client.ApiRejected):
        api_client.predict(CAT_STROKES, "cnn", fake.max_top_k + 1)  # 422
    fake.mode = "loading"
    with pytest.raises(api_client.ApiUnavailable):
        api_client.predict(CAT_STROKES, "cnn", 3)  # 503
    assert len(fake.exchanges) == 16
    for request, response in fake.exchanges:
        check_exchange(openapi, request, response)
