"""Whatever arrives, the API answers 2xx or 4xx with a reason, never 5xx: generated bodies,
parameters and paths (hypothesis) against every route."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import read_model
from tests.api_support import key, serve_api

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
FIELDS = ["channel", "reference", "category", "description", "grid_id", "lat", "long", "address", "attributes", "reporter", "urgent"]
INTAKE = st.fixed_dictionaries({}, optional={f: JSON for f in FIELDS} | {"channel": st.sampled_from(["hotline", "qr", "x"]),
                                                                          "category": st.sampled_from(["tree-trimming", "noise", "?"])})
ACTIONS = st.sampled_from(["accept", "resolve", "escalate", "dispatch", "decline", "request_extension",
                           "decide_extension", "assign", "urge", "feedback", "review", "nope"])
TEXT = st.text(min_size=1, max_size=80)
FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
async def api(dev_env, demo, pg_server):
    async with read_model(pg_server, demo) as pool:
        async with serve_api(dev_env, demo, pool, rate_limit_address="100000/minute", rate_limit_key="100000/minute") as a:
            r = await a.http.post("/v1/issues", headers=key("hotline-12345"), json={
                "channel": "hotline", "reference": "robust-1", "category": "tree-trimming",
                "grid_id": "heping-a1-c1-g1", "description": "x"})
            a.issue_id = r.json()["issue_id"]
            yield a


def no_5xx(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        body = r.json()
        assert (body.get("error") if isinstance(body, dict) else body[0]["description"]), body


async def test_generated_intake_bodies(api):
    # hypothesis drives sync functions: collect the examples, then send them.
    examples: list[dict] = []

    @FAST
    @given(INTAKE)
    def collect(body):
        examples.append(body)

    collect()
    for body in examples:
        no_5xx(await api.http.post("/v1/issues", json=body, headers=key("hotline-12345")))


async def test_generated_action_bodies_and_paths(api):
    examples: list[tuple] = []

    @FAST
    @given(ACTIONS, JSON, st.sampled_from(["own", "other"]) | TEXT)
    def collect(action, body, issue):
        examples.append((action, body, issue))

    collect()
    for action, body, issue in examples:
        issue_id = quote({"own": api.issue_id, "other": "hotline-nothing"}.get(issue, issue), safe="")
        r = await api.http.post(
            f"/v1/issues/{issue_id}/actions/{action}", content=json.dumps(body),
            headers=key("supervisor") | {"content-type": "application/json"},
        )
        no_5xx(r)


async def test_generated_query_parameters(api):
    examples: list[dict] = []

    @FAST
    @given(st.dictionaries(st.sampled_from(["stage", "owner", "overdue", "limit", "offset", "street", "status",
                                            "start_date", "end_date", "page", "page_size", "service_code",
                                            "service_request_id", "jurisdiction_id"]), TEXT, max_size=5))
    def collect(params):
        examples.append(params)

    collect()
    for params in examples:
        no_5xx(await api.http.get("/v1/issues", params=params, headers=key("supervisor")))
        no_5xx(await api.http.get("/open311/v2/requests.json", params=params))


async def test_generated_open311_posts(api):
    examples: list[dict] = []

    @FAST
    @given(st.dictionaries(st.sampled_from(["service_code", "lat", "long", "address_string", "address_id", "description",
                                            "first_name", "phone", "email", "attribute[time_of_day]"]), TEXT, max_size=6))
    def collect(form):
        examples.append(form)

    collect()
    for form in examples:
        no_5xx(await api.http.post("/open311/v2/requests.json", data=form | {"api_key": "key-open311-client"}))


@pytest.mark.parametrize("path", ["/v1/issues/" + "x" * 3000, "/v1/issues/%00", "/v1/issues/a%2Fb", "/open311/v2/requests/" + "y" * 3000 + ".json"])
async def test_odd_paths(api, path):
    no_5xx(await api.http.get(path, headers=key("supervisor")))


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/v1/issues", {"params": {"stage": "grid\x00"}}),
        ("get", "/open311/v2/requests.json", {"params": {"service_code": "\x00"}}),
        ("post", "/v1/issues", {"json": {"channel": "hotline", "reference": "nul-1", "category": "tree-trimming",
                                        "grid_id": "heping-a1-c1-g1", "description": "a\x00b"}}),
        ("post", "/open311/v2/requests.json", {"data": {"api_key": "key-open311-client", "service_code": "tree-trimming",
                                                        "address_id": "heping-a1-c1-g1", "description": "a\x00b"}}),
    ],
)
async def test_nul_characters_are_refused(api, method, path, kwargs):
    r = await getattr(api.http, method)(path, headers=key("hotline-12345"), **kwargs)
    assert 400 <= r.status_code < 500, r.text
